"""The dashboard screen: layout, size modes, and applying one Snapshot.

The screen owns no timer and no session: the app hands it the newest Snapshot
(inside ``batch_update``) and the screen pushes values down into its widgets.
Size modes are screen classes so the .tcss file decides what a small terminal
drops: ``-compact`` (below 100 x 28: one-line gauges, no history, no secondary
gauges) and ``-big`` (from 140 x 40: 3 x 3 digit primary gauges, two-line cells).
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from core.channels import STOICH_GASOLINE
from core.coverage.view import GridView
from core.snapshot import Snapshot
from dynoai_tui.commands.headless import reachable_counts
from dynoai_tui.commands.statusline import whole_percent
from dynoai_tui.tui.widgets.chart import StripChart
from dynoai_tui.tui.widgets.footer import FittingFooter
from dynoai_tui.tui.widgets.gauges import AfrGauge, Gauge, KnockGauge
from dynoai_tui.tui.widgets.heatmap import VIEW_TITLES, Heatmap
from dynoai_tui.tui.widgets.panels import (
    AlarmLine,
    InstructionLine,
    StatusHeader,
    SuggestionsPanel,
    alarm_items,
    alarm_text,
    header_text,
)

COMPACT_BELOW = (100, 28)
"""Width, height below which the compact layout is used."""
SHORT_VIEW_TITLES: dict[str, str] = {
    "afr": "mean AFR",
    "afr_error": "AFR error % (+ lean)",
    "ve_change": "VE corr % (~extrap e:export)",
    "knock": "knock events",
    "dwell": "dwell s",
}
"""The heatmap's views but the hits, as the compact header names them.

The VE view keeps the ``~`` hint: without it 80 columns had no legend at all, and a
smoothed value reads as a measured one. The demo's header while recording
("demo │ sim ● │ ● REC 0:01 11.0 kB │ pulls 0 │ ", 46 characters) leaves 32 of
the 78 inside the header's padding, and a title too long for them loses its last
word (the line wraps): "VE corr % (~ extrap; e: export)" read "... (~ extrap; e:".
"""
BIG_FROM = (140, 40)
"""Width, height from which primary gauges use large digits."""

AFR_CHART_LAMBDA = (0.68, 1.09)
"""The AFR strip's fixed scale as lambda: 10.0-16.0 AFR on gasoline, WOT mixtures to idle.

Scaled to the data, fuel cut (25.0) squashed a pull's 12.5-13.0 to the bottom line; as
lambda it suits any fuel (E85's stoich 9.8 gives 6.7-10.7).
"""

OPTIONAL_CHANNELS = ("power_hp", "torque_nm", "egt_c")
"""Gauges hidden until their channel first shows a value (a dyno source gives them)."""


DYNO = "-secondary -absent"
PULL = DYNO + " -pullgauge"
"""Classes of the dyno's gauges (power also shows in the compact layout during a pull)."""


def make_gauges() -> list[Gauge]:
    """The gauge row, primary gauges first."""
    return [
        Gauge("RPM", "rpm", "rpm", digits=5, unit_implied=True, big=True),
        Gauge("MAP", "kPa", "map_kpa", unit_implied=True, big=True),
        Gauge("TPS", "%", "tps_pct", unit_implied=True, big=True),
        AfrGauge(id="gauge-afr"),
        Gauge("Lambda", "λ", "lambda", short="Lam", decimals=2, digits=1, classes="-secondary"),
        KnockGauge(),
        Gauge("IAT", "°C", "iat_c", classes="-secondary"),
        Gauge("CLT", "°C", "clt_c", classes="-secondary"),
        Gauge("EGT", "°C", "egt_c", digits=4, classes="-secondary -absent"),
        # overrun: the absorber motoring the engine read "-47.8" beside "0.0 hp"; the
        # sheet plots only the pull, so the gauges show what the engine gives: 0 or more
        Gauge("Power", "hp", "power_hp", short="Pwr", decimals=1, floor=0.0, classes=PULL),
        Gauge("Torque", "N·m", "torque_nm", short="Trq", decimals=1, floor=0.0, classes=DYNO),
    ]


END_OF_LOG = "end of the log: ← back 10 s, space plays it again from the start"
"""The instruction line once a replay has ended (the keys that still do something)."""


def reachable_share(cov: GridView, reachable: tuple[bool, ...]) -> str:
    """The subtitle's " · 144/160 reachable", or nothing (``headless.reachable_counts``)."""
    counts = reachable_counts(cov.confidence, reachable)
    return "" if counts is None else f" · {counts[0]}/{counts[1]} reachable"


class DashboardScreen(Screen[None]):
    """Header, gauges, heatmap + suggestions, history, instruction and alarm lines."""

    def __init__(
        self,
        *,
        vehicle: str = "",
        replay: bool = False,
        replay_length_s: float | None = None,
        stoich: float | None = None,
    ) -> None:
        super().__init__(id="dashboard")
        self.replay_length_s = replay_length_s
        """Length of the replayed log (data time), shown beside the position."""
        self.vehicle = vehicle
        self.replay = replay
        self.stoich = stoich
        """AFR at lambda 1 for the vehicle's fuel (scales the AFR strip); None: the
        session's vehicle config's, else gasoline's."""
        self.gauges = make_gauges()
        self.snapshot: Snapshot | None = None
        """The snapshot shown now."""
        self.last_pull = ""
        """One-line summary of the last WOT pull's dyno sheet (set by the app)."""
        self.last_pull_short = ""
        """:attr:`last_pull` for the compact layout (:meth:`PullSheet.summary_line` short)."""

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        with Horizontal(id="gauges"):
            yield from self.gauges
        with Horizontal(id="main"):
            yield Heatmap(id="heatmap")
            with Vertical(id="side"):
                yield SuggestionsPanel(id="plan")
        with Horizontal(id="history"):
            lo_afr, hi_afr = (lam * self.afr_stoich() for lam in AFR_CHART_LAMBDA)
            yield StripChart(
                "AFR", "AFR", lo=lo_afr, hi=hi_afr, decimals=1, fixed=True, id="chart-afr"
            )
            yield StripChart("RPM", "rpm", lo=0.0, hi=6000.0, id="chart-rpm")
        yield InstructionLine(id="instruction")
        yield AlarmLine(id="alarms")
        yield FittingFooter()

    def afr_stoich(self) -> float:
        """The stoich the snapshot's AFR was computed with (the session's vehicle's)."""
        if self.stoich is not None:
            return self.stoich
        config = getattr(getattr(self.app, "session", None), "config", None)
        return float(getattr(config, "stoich", STOICH_GASOLINE))

    def on_mount(self) -> None:
        self.query_one("#side").border_title = "Next tests"
        self.apply_size(self.app.size.width, self.app.size.height)

    def on_resize(self) -> None:
        self.apply_size(self.size.width, self.size.height)

    def apply_size(self, width: int, height: int) -> None:
        """Pick the size mode for a terminal of ``width`` x ``height`` cells."""
        compact = width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]
        big = width >= BIG_FROM[0] and height >= BIG_FROM[1]
        # the list is the planner's walk, in run order; a score is that test's gain per
        # minute against the best's (QA read "1 0.28" over "2 1.00" as a wrong order)
        self.query_one("#side").border_title = (
            "Next tests" if compact else "Next tests, in walk order"
        )
        if compact == self.has_class("-compact") and big == self.has_class("-big"):
            return
        self.set_class(compact, "-compact")
        self.set_class(big, "-big")
        # at 80 columns the palette hint cut the last key's label to "q Q"
        footer = self.query_one(Footer)
        footer.compact = compact
        footer.show_command_palette = not compact
        for gauge in self.gauges:
            gauge.refresh(layout=True)
        if self.snapshot is not None:
            self.apply(self.snapshot)

    # ---- one frame ------------------------------------------------------------

    def apply(self, snap: Snapshot) -> None:
        """Push one snapshot into the widgets (the caller wraps this in batch_update)."""
        self.snapshot = snap
        values = snap.values
        heatmap = self.query_one(Heatmap)
        # first: the header names what the cells show, which depends on the grid's shape
        heatmap.update_grid(
            snap.grid, snap.current_cell, snap.plan.targets, snap.vehicle_grid, snap.plan.reachable
        )
        compact = self.has_class("-compact")
        room = self.size.width - 2  # inside the header's padding
        for view in self._short_view_titles(heatmap) if compact else [""]:
            # the view's name and legend, as much of it as fits whole: a replay's header
            # at 80 columns read "... │ hits · 5h =" (QA)
            header = header_text(
                snap,
                vehicle=self.vehicle,
                replay=self.replay,
                length_s=self.replay_length_s,
                compact=compact,
                view=view,
            )
            if header.cell_len <= room:
                break
        if not compact and header.cell_len > self.size.width:
            # the full header does not fit (a replay at 100 columns lost its position)
            header = header_text(
                snap, vehicle=self.vehicle, replay=self.replay,
                length_s=self.replay_length_s, compact=True,
            )  # fmt: skip
        self.query_one(StatusHeader).content = header
        for gauge in self.gauges:
            raw = values.get(gauge.channel, math.nan)
            if isinstance(gauge, AfrGauge):
                gauge.show_with_target(raw, values.get("afr_target", math.nan))
            elif isinstance(gauge, KnockGauge):
                gauge.show_knock(raw, values.get("knock_retard_deg", math.nan))
            else:
                gauge.show(raw)
            if gauge.channel in OPTIONAL_CHANNELS and gauge.value is not None:
                gauge.remove_class("-absent")

        cov = snap.vehicle_grid or snap.grid
        # the vehicle's stored runs are in the coverage the planner works from (said
        # first: the border cuts the subtitle's end)
        whose = ""
        if snap.vehicle_grid is not None:
            whose = (
                " with stored runs" if heatmap.shows_stored else " with stored runs (AFR: this run)"
            )
        # with stored runs the rule's reminder gives way (the border cut the subtitle to
        # "... · 35/256 cells trus…" at 120 columns)
        rule = "" if whose else " (hits, settled dwell, lambda SE)"
        reach = reachable_share(cov, snap.plan.reachable)
        if reach:
            rule = ""  # the reachable share says more than the rule's reminder
        subtitle = (
            # never a false 0 % or 100 % (one trusted cell of 256 read "0% covered")
            f"{whole_percent(cov.covered_cells, cov.hits.size)}% covered{whose}"
            f" · {cov.covered_cells}/{cov.hits.size}"
            f" cells trusted{rule}{reach}"
        )
        if heatmap.border_subtitle != subtitle:  # a border change repaints the whole widget
            heatmap.border_subtitle = subtitle

        panel = self.query_one(SuggestionsPanel)
        panel.compact = compact
        panel.plan = snap.plan

        instruction = snap.plan.instruction or "no instruction yet"
        if self.replay and snap.finished:
            # the log has ended: its last instruction ("hold WOT to 4500 rpm") stood on
            # as if the tuner still had something to do
            instruction = END_OF_LOG
        self.query_one(InstructionLine).content = Text.assemble(
            ("▶ ", "bold"), (instruction, "bold")
        )

        if not compact:
            hist = snap.history
            self.query_one("#chart-afr", StripChart).update_series(
                snap.now_t,
                hist.t_rel_s,
                hist.afr,
                hist.afr_target if np.size(hist.afr_target) else None,
            )
            self.query_one("#chart-rpm", StripChart).update_series(
                snap.now_t, hist.t_rel_s, hist.rpm
            )

        self.set_class(snap.in_pull, "-in-pull")
        alarms = alarm_text(snap)
        items = alarm_items(snap)
        active = bool(items)
        if not active and self.last_pull:
            pull = self.last_pull_short if compact else self.last_pull
            alarms = Text.assemble(("no alarms", "dim"), ("  │  ", "dim"), pull)
        self.query_one(AlarmLine).set_alarms(alarms, active=active, items=items)

    def set_heatmap_title(self) -> None:
        """The compact header's view name after a view key (the heatmap titles itself)."""
        if self.snapshot is not None:
            self.apply(self.snapshot)

    @staticmethod
    def _short_view_titles(heatmap: Heatmap) -> list[str]:
        """The view as the compact header names it, longest first, then shorter forms.

        At 80 columns the cells are 3 wide: "25" is AFR 12.5, "5h" 500 hits, and the
        header is the only title there is (the compact heatmap has no border). The full
        form names the view and what its short cell form means; when the header has no
        room for it, a view other than the hits keeps its name (what the cells show), the
        hits (the default view) their legend ("5h = 5xx"), each whole, else nothing.
        """
        name = SHORT_VIEW_TITLES.get(heatmap.view, "")
        note = heatmap.scale_note
        forms = [f"{name or VIEW_TITLES[heatmap.view]} · {note}"] if note else []
        if name:
            forms += [name, name.split(" (")[0]]
        elif note:
            forms += [note, note.split(",")[0]]
        return [*dict.fromkeys(forms), ""]
