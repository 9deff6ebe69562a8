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
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from core.dynosheet import PullSheet
from dynoai_tui.tui.screens.dashboard import COMPACT_BELOW
from dynoai_tui.tui.widgets.footer import FittingFooter

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


TICK_MANTISSAS = (1.0, 2.0, 2.5, 5.0)
"""Tick steps are one of these times a power of ten (500 / 1000 rpm, 10 / 20 hp)."""


def nice_ticks(low: float, high: float, max_count: int) -> tuple[list[float], list[str]]:
    """Round ticks from ``low`` to ``high``, at most ``max_count``, and their labels.

    plotext divides the axis evenly from the data's ends: "2575.0  3387.5  4200.0" on
    the rpm axis, where a dyno sheet reads 3000 / 4000 / 5000.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return [], []
    if high - low <= 1e-6 * max(1.0, abs(high)):  # a flat line: plotext's own tick
        return [], []
    count = max(1, max_count)
    exponent = int(np.floor(np.log10((high - low) / count)))
    steps = [m * 10.0**e for e in range(exponent, exponent + 3) for m in TICK_MANTISSAS]
    for step in steps:  # the finest step whose ticks fit
        first = np.ceil(low / step - 1e-9) * step
        ticks = [float(t) for t in np.arange(first, high + step * 1e-9, step)]
        if len(ticks) <= count:
            break
    digits = next((d for d in range(6) if abs(round(step, d) - step) < step * 1e-6), 6)
    ticks = [round(t, digits) for t in ticks]
    return ticks, [f"{t:.{digits}f}" for t in ticks]


LAST_HP_COLOR = "red"
LAST_NM_COLOR = "cyan"
EARLIER_GREYS = (250, 246, 243, 240, 238)
"""256-colour greys of the earlier pulls, the newest lightest, so the legend tells them apart."""


def pull_colors(shown: Sequence[PullSheet]) -> list[tuple[str | int, str | int]]:
    """(power colour, torque colour) of each drawn pull, in plotext's terms."""
    colors: list[tuple[str | int, str | int]] = []
    earlier = len(shown) - 1
    for i in range(len(shown)):
        if i == earlier:
            colors.append((LAST_HP_COLOR, LAST_NM_COLOR))
        else:
            grey = EARLIER_GREYS[min(earlier - 1 - i, len(EARLIER_GREYS) - 1)]
            colors.append((grey, grey))
    return colors


def _rich(color: str | int) -> str:
    return f"color({color})" if isinstance(color, int) else color


def legend_text(shown: Sequence[PullSheet]) -> Text:
    """The plot's legend, one line above it: every drawn pull by its number and colour.

    Outside the plot because plotext draws its legend in the top left corner of the
    data, where a pull's low-rpm torque peak is (QA: the peak sat under it), and it
    named only the last pull while the earlier ones were drawn in grey.
    """
    text = Text()
    if not shown:
        return text
    colors = pull_colors(shown)
    last = shown[-1]
    hp, nm = colors[-1]
    text.append("━ ", _rich(hp)).append(f"hp #{last.index}  ")
    text.append("━ ", _rich(nm)).append(f"N·m #{last.index}")
    if len(shown) > 1:
        text.append("  · earlier, hp and N·m:", "dim")
        for pull, (grey, _) in zip(shown[:-1], colors[:-1], strict=True):
            text.append("  ━ ", _rich(grey)).append(f"#{pull.index}", _rich(grey))
    return text


class SheetPlot(PlotextPlot):
    """A plot over rpm whose ticks are round numbers, placed for the size it is drawn at."""

    x_range: tuple[float, float] = (np.nan, np.nan)
    y_ranges: dict[str, tuple[float, float]]

    def _set_ranges(self, x: list[float], y_by_side: dict[str, list[float]]) -> None:
        self.x_range = (min(x), max(x)) if x else (np.nan, np.nan)
        self.y_ranges = {side: (min(y), max(y)) for side, y in y_by_side.items() if y}

    def render(self) -> RenderResult:
        plt = self.plt
        width, height = self.size
        ticks, labels = nice_ticks(*self.x_range, max_count=max(2, (width - 12) // 12))
        if ticks:
            plt.xticks(ticks, labels)
        for side, (low, high) in getattr(self, "y_ranges", {}).items():
            # a blank row between ticks; the title, frame and x-axis take five rows
            ticks, labels = nice_ticks(low, high, max_count=max(2, (height - 5) // 2 + 1))
            if ticks:
                plt.yticks(ticks, labels, yside=side)
        return super().render()


class PowerPlot(SheetPlot):
    """Power (left axis) and torque (right axis) vs rpm; the legend is the line above it."""

    def show_pulls(self, pulls: Sequence[PullSheet]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        shown = list(pulls)[-(MAX_OVERLAID + 1) :]
        xs: list[float] = []
        sides: dict[str, list[float]] = {"left": [], "right": []}
        for pull, (hp_color, nm_color) in zip(shown, pull_colors(shown), strict=True):
            x, hp = _finite(pull.rpm, pull.power_hp)
            xt, nm = _finite(pull.rpm, pull.torque_nm)
            if x:
                plt.plot(x, hp, color=hp_color, marker="braille")
            if xt:
                plt.plot(xt, nm, color=nm_color, marker="braille", yside="right")
            xs += x + xt
            sides["left"] += hp
            sides["right"] += nm
        self._set_ranges(xs, sides)
        plt.xlabel("rpm")
        plt.ylabel("hp", yside="left")  # type: ignore[call-arg]
        plt.ylabel("N·m", yside="right")  # type: ignore[call-arg]
        self.refresh()


class AfrPlot(SheetPlot):
    """AFR vs rpm of the same pulls (last in colour)."""

    def show_pulls(self, pulls: Sequence[PullSheet]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        shown = list(pulls)[-(MAX_OVERLAID + 1) :]
        xs: list[float] = []
        afrs: list[float] = []
        for pull, (hp_color, _) in zip(shown, pull_colors(shown), strict=True):
            x, afr = _finite(pull.rpm, pull.afr)
            if x:
                plt.plot(x, afr, color="green" if pull is shown[-1] else hp_color, marker="braille")
            xs += x
            afrs += afr
        self._set_ranges(xs, {"left": afrs})
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
        yield Static(id="pulls-legend")
        yield PowerPlot(id="plot-power")
        yield AfrPlot(id="plot-afr")
        yield Static(id="pulls-peaks")
        yield FittingFooter()

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
        shown = self.pulls[-(MAX_OVERLAID + 1) :]
        self.query_one("#pulls-legend", Static).update(legend_text(shown))
        self.query_one(PowerPlot).show_pulls(self.pulls)
        self.query_one(AfrPlot).show_pulls(self.pulls)
        self.query_one("#pulls-peaks", Static).update(peaks_text(self.pulls, 3 if rows < 40 else 6))
