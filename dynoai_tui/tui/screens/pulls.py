"""The pulls screen: the dyno sheet of this session, last pull over the previous ones.

What a dyno operator looks at after every pull (WinPEP, Power Core): power and
torque over rpm, the new pull drawn bold over the earlier ones in grey, the
mixture under it, and the peaks of every pull. The curves come from
:class:`core.dynosheet.DynoSheetBuilder` (the session's SheetTap), the same
numbers ``dynoai report`` prints. Plotted with textual-plotext (Textualize's
maintained wrapper of plotext). At 80 x 24 the AFR plot is dropped; the power /
torque plot and the peak table always stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from core.dynosheet import PullSheet
from dynoai_tui.tui.screens.dashboard import COMPACT_BELOW

MAX_OVERLAID = 5
"""Previous pulls drawn under the last one (older ones stay in the table)."""
AFR_PLOT_FROM_ROWS = 30
"""Terminal rows from which the AFR plot is shown."""


def peaks_text(pulls: Sequence[PullSheet], rows: int) -> Text:
    """One line per pull, newest first, as many as ``rows`` allows."""
    text = Text()
    if not pulls:
        text.append("No WOT pull yet: do a full-throttle pull and its sheet shows here.", "dim")
        return text
    for pull in list(reversed(pulls))[: max(1, rows)]:
        style = "bold" if pull is pulls[-1] else "dim"
        text.append(pull.summary_line() + "\n", style)
    text.rstrip()
    return text


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok].tolist(), y[ok].tolist()


class PowerPlot(PlotextPlot):
    """Power (left axis) and torque (right axis) vs rpm."""

    def show_pulls(self, pulls: Sequence[PullSheet]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        shown = list(pulls)[-(MAX_OVERLAID + 1) :]
        for pull in shown:
            last = pull is shown[-1]
            x, hp = _finite(pull.rpm, pull.power_hp)
            xt, nm = _finite(pull.rpm, pull.torque_nm)
            if x:
                plt.plot(
                    x,
                    hp,
                    color="red" if last else "gray",
                    marker="braille",
                    label=f"hp #{pull.index}" if last else None,
                )
            if xt:
                plt.plot(
                    xt,
                    nm,
                    color="cyan" if last else "gray",
                    marker="braille",
                    yside="right",
                    label=f"N·m #{pull.index}" if last else None,
                )
        plt.xlabel("rpm")
        plt.ylabel("hp", yside="left")  # type: ignore[call-arg]
        plt.ylabel("N·m", yside="right")  # type: ignore[call-arg]
        if shown:
            corr = shown[-1].correction
            plt.title(f"Power & torque · {corr.name if corr.baro_kpa else 'uncorrected'}")
        else:
            plt.title("Power & torque")
        self.refresh()


class AfrPlot(PlotextPlot):
    """AFR vs rpm of the same pulls (last in colour)."""

    def show_pulls(self, pulls: Sequence[PullSheet]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        shown = list(pulls)[-(MAX_OVERLAID + 1) :]
        for pull in shown:
            x, afr = _finite(pull.rpm, pull.afr)
            if x:
                color = "green" if pull is shown[-1] else "gray"
                plt.plot(x, afr, color=color, marker="braille")
        plt.ylabel("AFR")
        plt.title("AFR")
        self.refresh()


class PullsScreen(Screen[None]):
    """Dyno sheet of the session's pulls; Esc or g goes back to the dashboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,g", "app.pop_screen", "Dashboard"),
    ]

    def __init__(self, pulls: Sequence[PullSheet] = ()) -> None:
        super().__init__(id="pulls")
        self.pulls: tuple[PullSheet, ...] = tuple(pulls)

    def compose(self) -> ComposeResult:
        yield Static(id="pulls-title")
        yield PowerPlot(id="plot-power")
        yield AfrPlot(id="plot-afr")
        yield Static(id="pulls-peaks")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.pulls)

    def on_resize(self) -> None:
        self.show(self.pulls)

    def show(self, pulls: Sequence[PullSheet]) -> None:
        """Draw these pulls (the app calls this when a pull finishes)."""
        self.pulls = tuple(pulls)
        rows = self.app.size.height
        # as the dashboard's: below 100 columns the palette hint cut the keys ("o Region")
        narrow = self.app.size.width < COMPACT_BELOW[0]
        footer = self.query_one(Footer)
        if footer.compact != narrow:
            footer.compact = narrow
            footer.show_command_palette = not narrow
            footer.refresh(recompose=True)
        self.set_class(rows < AFR_PLOT_FROM_ROWS, "-short")
        title = Text.assemble(("Dyno sheet", "bold"), f" · {len(self.pulls)} pull(s)")
        if self.pulls:
            last = self.pulls[-1]
            smoothing = f"{last.smoothing_rpm:.0f} rpm smoothing" if last.smoothing_rpm else "raw"
            title.append(f" · {last.correction.describe()} · {smoothing}", "dim")
        self.query_one("#pulls-title", Static).update(title)
        self.query_one(PowerPlot).show_pulls(self.pulls)
        self.query_one(AfrPlot).show_pulls(self.pulls)
        self.query_one("#pulls-peaks", Static).update(peaks_text(self.pulls, 3 if rows < 40 else 6))
