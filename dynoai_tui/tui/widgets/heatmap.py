"""The coverage heatmap: one widget, drawn line by line.

A 16 x 16 (or 32 x 32) fuel table as 256+ child widgets or a DataTable would cost a
layout pass per update; instead the widget keeps the per-cell colour level and text
as small numpy/str arrays, builds one :class:`Strip` per table row, and caches each
row by what it shows, so a frame where only the operating cell moved rebuilds two
rows and repaints only those lines (the textual ``checker04`` pattern). Colours
come from component classes so the theme (and the .tcss file) decides them.

Rows are MAP (highest MAP at the top, like a dyno chart), columns are rpm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.coverage.view import GridView
from core.plan.types import Target
from core.ve.live import live_table
from core.ve.settings import VeSettings

VIEWS: tuple[str, ...] = ("hits", "afr", "afr_error", "ve_change", "knock", "dwell")
COVERAGE_VIEWS = frozenset({"hits", "knock", "dwell"})
"""Views of the vehicle's coverage (its stored runs with this one, when it has some):
what the planner works from. The mixture views (AFR, AFR error, VE correction) stay
this run's: a stored run ran on the tune before this one's corrections."""
"""Heatmap views, in the order the cycle key steps through them."""

VIEW_TITLES: dict[str, str] = {
    "hits": "hits",
    "afr": "mean AFR",
    "afr_error": "AFR error % (+ lean)",
    "ve_change": "VE correction % (~ extrapolated, L locked, blue: not confident; e: export)",
    "knock": "knock events",
    "dwell": "dwell s",
}

# Colour levels (index into LEVEL_CLASSES); computed per snapshot with numpy.
EMPTY, S1, S2, S3, S4, COVERED, OK, LEAN1, LEAN2, RICH1, RICH2, KNOCK1, KNOCK2 = range(13)
LEVEL_CLASSES: tuple[str, ...] = (
    "heatmap--empty",
    "heatmap--s1",
    "heatmap--s2",
    "heatmap--s3",
    "heatmap--s4",
    "heatmap--covered",
    "heatmap--ok",
    "heatmap--lean1",
    "heatmap--lean2",
    "heatmap--rich1",
    "heatmap--rich2",
    "heatmap--knock1",
    "heatmap--knock2",
)
REGION_CLASSES: dict[int, str] = {
    1: "heatmap--region1",
    2: "heatmap--region2",
    3: "heatmap--region3",
}

AFR_OK_PCT = 2.0
"""Within this AFR error of target a cell counts as on target."""
AFR_FAR_PCT = 5.0
"""Beyond this AFR error a cell is strongly lean / rich."""

LABEL_W = 4
"""Width of the MAP axis label column ("105 ")."""
SIDE_RESERVE = 34
"""Columns the heatmap leaves for the suggestions panel when it sizes itself."""
"""Width of the MAP axis label column ("105 ")."""

IntArray = npt.NDArray[np.int64]


def _ve_levels(
    grid: GridView, settings: VeSettings, cell_w: int = 7
) -> tuple[IntArray, list[list[str]]]:
    """Levels and texts of the VE correction view, fitted to ``cell_w`` characters.

    Change % coloured like the AFR error where the correction changes the cell (the
    cells the export writes a number for), ``~`` before it where smoothing extrapolated
    it, confidence shading (s1..s4) with the raw error where there are hits but not yet
    confidence, ``L`` for locked cells, ``·`` where there are no hits. Cut to the cell,
    ``~+12`` read ``~+1`` at 3 columns: a value that does not fit saturates as in the
    other views, an extrapolated one is shown as ``~`` alone (its colour gives the sign).
    """
    res = live_table(grid, settings)
    ch = res.change_pct
    moved = (res.reason == "changed") | (res.reason == "clipped") | res.extrapolated
    levels = np.full(ch.shape, EMPTY, dtype=np.int64)
    shade = np.clip(np.ceil(res.confidence * 4.0), 1, 4).astype(np.int64)
    levels = np.where(res.reason == "low_confidence", shade, levels)
    levels = np.where(moved, OK, levels)
    levels = np.where(moved & (ch > AFR_OK_PCT), LEAN1, levels)
    levels = np.where(moved & (ch > AFR_FAR_PCT), LEAN2, levels)
    levels = np.where(moved & (ch < -AFR_OK_PCT), RICH1, levels)
    levels = np.where(moved & (ch < -AFR_FAR_PCT), RICH2, levels)
    texts: list[list[str]] = []
    for m in range(ch.shape[0]):
        row = []
        for r in range(ch.shape[1]):
            why = res.reason[m, r]
            if res.locked[m, r]:
                row.append("L")
            elif moved[m, r] and res.extrapolated[m, r]:
                text = f"~{_signed(ch[m, r])}"
                row.append(text if len(text) < cell_w else "~")
            elif moved[m, r]:
                row.append(_fitted(_signed(ch[m, r]), cell_w))
            elif why == "low_confidence":
                row.append(_fitted(_signed((res.ratio[m, r] - 1.0) * 100.0), cell_w))
            else:
                row.append("·")
        texts.append(row)
    return levels, texts


def _levels(view: str, grid: GridView) -> IntArray:
    """Colour level per cell for one view, vectorised."""
    hits = grid.hits
    levels = np.full(hits.shape, EMPTY, dtype=np.int64)
    if view in ("hits", "dwell"):
        if view == "hits":
            frac = grid.confidence  # hits, settled dwell and lambda SE together
        else:
            top = float(np.nanmax(grid.dwell_s)) if grid.dwell_s.size else 0.0
            frac = grid.dwell_s / top if top > 0 else np.zeros(hits.shape)
        steps = np.clip(np.ceil(frac * 4.0), 1, 4).astype(np.int64)
        levels = np.where(hits > 0, steps, EMPTY)
        if view == "hits":
            levels = np.where(grid.confidence >= 1.0, COVERED, levels)
        return levels
    if view == "knock":
        knock = grid.knock_events
        levels = np.where(hits > 0, OK, EMPTY)
        levels = np.where(knock > 0, KNOCK1, levels)
        return np.where(knock >= 5, KNOCK2, levels)
    err = grid.afr_error_pct
    known = np.isfinite(err)
    safe = np.where(known, err, 0.0)
    levels = np.where(known, OK, EMPTY)
    levels = np.where(known & (safe > AFR_OK_PCT), LEAN1, levels)
    levels = np.where(known & (safe > AFR_FAR_PCT), LEAN2, levels)
    levels = np.where(known & (safe < -AFR_OK_PCT), RICH1, levels)
    return np.where(known & (safe < -AFR_FAR_PCT), RICH2, levels)


def _signed(v: float) -> str:
    """A whole percent with its sign; one that rounds to zero is "0" (QA: "-0", "+0")."""
    text = f"{v:+.0f}"
    return "0" if text in ("+0", "-0") else text


def _count(n: int, room: int) -> str:
    """A count in ``room`` characters, one scale at every width, never ambiguous.

    As is while it fits, then whole hundreds ("5h": 500-599, only in 2 characters),
    then whole thousands ("5k": 5000-5999), then saturated. QA at 80 columns: "++"
    stood for 100-999 hits and for 10 000 or more, while 1000-9999 read "1k".."9k".
    """
    text = str(n)
    if len(text) <= room:
        return text
    for div, unit in ((100, "h"), (1000, "k")):
        short = f"{n // div}{unit}"
        if n // div < 10 ** (room - 1) and (unit == "k" or n < 1000):
            return short
    return "+" * room


def afr_decade(afr_mean: npt.NDArray[np.float64]) -> int:
    """The tens of most cells' AFR (1 for 10.0..19.9), left out where a cell is narrow."""
    tenths = np.round(afr_mean[np.isfinite(afr_mean)] * 10.0)
    return int(np.median(tenths) // 100) if tenths.size else 1


def _afr(v: float, room: int, decade: int) -> str:
    """Mean AFR to a tenth: "12.5", else without its tens ("2.5", then "25": 1x.x)."""
    text = f"{v:.1f}"
    if len(text) <= room:
        return text
    tens, rest = divmod(round(v * 10.0), 100)
    if tens != decade:  # another decade than most cells': saturate ("--" richer)
        return ("-" if tens < decade else "+") * room
    short = f"{rest / 10.0:.1f}"
    return short if len(short) <= room else f"{rest:02d}"


def _dwell(d: float, room: int) -> str:
    """Dwell to a tenth of a second: "1.2", else tenths ("12") under 10 s, else whole."""
    text = f"{d:.1f}"
    if len(text) <= room and d < 10:
        return text
    if room == 2:  # "27" would read 2.7 s
        return str(round(d * 10.0)) if round(d * 10.0) < 100 else "++"
    return f"{d:.0f}"


def _fmt(view: str, cell_w: int, decade: int = 1) -> Callable[[float], str]:
    """The formatter of one cell value for a view at a cell width (one blank column kept)."""
    room = cell_w - 1
    if view in ("hits", "knock"):
        return lambda n: _count(int(n), room)
    if view == "afr":
        return lambda v: _afr(v, room, decade)
    if view == "afr_error":
        return _signed
    return lambda d: _dwell(d, room)


def scale_note(view: str, cell_w: int, decade: int = 1) -> str:
    """What a narrow cell's short form means, for the view's title ("" when it is plain)."""
    room = cell_w - 1
    if view == "hits" and room == 2:
        return "5h = 5xx, 5k = 5xxx"
    if view == "afr":
        value = decade * 10 + (2.5 if decade else 6.8)
        example = _afr(value, room, decade)
        pattern = f"{decade}x.x" if decade else "x.x"
        return "" if example == f"{value:.1f}" else f"{pattern}: {example} = {value:.1f}"
    if view == "dwell" and room == 2:
        return "tenths: 12 = 1.2 s"
    return ""


VIEW_VALUES: dict[str, str] = {
    "hits": "hits",
    "afr": "afr_mean",
    "afr_error": "afr_error_pct",
    "knock": "knock_events",
    "dwell": "dwell_s",
}


OUT_OF_REACH = " "
"""A cell with no data that no test on offer reaches (``Heatmap.update_grid``)."""


def _fitted(text: str, cell_w: int) -> str:
    """Every value leaves at least one blank column between cells; wider ones saturate."""
    return text if len(text) < cell_w else ("-" if text.startswith("-") else "+") * (cell_w - 1)


def _texts(view: str, grid: GridView, cell_w: int) -> list[list[str]]:
    """The text of each cell for one view, fitted to ``cell_w`` characters ("·" = no data)."""
    fmt = _fmt(view, cell_w, afr_decade(grid.afr_mean) if view == "afr" else 1)
    values = getattr(grid, VIEW_VALUES[view]).tolist()
    seen = (grid.hits > 0).tolist()
    return [
        [
            ("·" if not s else "?" if math.isnan(v) else _fitted(fmt(v), cell_w))
            for v, s in zip(vrow, srow, strict=True)
        ]
        for vrow, srow in zip(values, seen, strict=True)
    ]


def _rpm_label(rpm: float, width: int) -> str:
    if width >= 5:
        return f"{rpm:.0f}"
    k = rpm / 1000.0
    return f"{k:.1f}" if k < 10 else f"{k:.0f}"


class Heatmap(ScrollView, can_focus=False):
    """RPM x MAP coverage table, colour by value, with the live cell and targets marked."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *LEVEL_CLASSES,
        *REGION_CLASSES.values(),
        "heatmap--current",
        "heatmap--target",
        "heatmap--axis",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.view = "hits"
        """Which per-cell quantity colours and labels the cells."""
        self.overlay = False
        """Cells coloured by region priority (red P1 / yellow P2 / blue P3), not by value."""
        self.current_cell: tuple[int, int] | None = None
        """(map_index, rpm_index) of the operating point as last drawn."""
        self.target_cells: frozenset[tuple[int, int]] = frozenset()
        """(map_index, rpm_index) of the planner's next cells as last drawn."""
        self._grid: GridView | None = None
        """The grid the view shows now (:meth:`_shown_grid`)."""
        self._run_grid: GridView | None = None
        self._vehicle_grid: GridView | None = None
        self._reachable: tuple[bool, ...] = ()
        self._priority: IntArray | None = None
        self._levels: IntArray = np.zeros((0, 0), dtype=np.int64)
        self._texts: list[list[str]] = []
        self._row_keys: list[object] = []
        self._strip_cache: dict[object, Strip] = {}
        self._styles: dict[str, Style] = {}
        self._geom_key: tuple[int, int, int, int] = (-1, -1, -1, -1)
        self._geom: tuple[int, int] = (3, 1)
        self._afr_decade = 1
        """Tens of the AFR shown, which narrow cells leave out (:func:`scale_note`)."""
        self.ve_settings = VeSettings()
        """Authority, locks and threshold of the VE correction view (the vehicle's ``[ve]``)."""

    # ---- state from the app -------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """(n_map, n_rpm) of the grid shown, (0, 0) before the first snapshot."""
        return (
            (0, 0) if self._grid is None else (self._grid.hits.shape[0], self._grid.hits.shape[1])
        )

    def set_priority_map(self, priority: IntArray | None) -> None:
        """Region priority per cell (1..3), same shape as the grid, for the overlay."""
        self._priority = None if priority is None else np.asarray(priority, dtype=np.int64)
        self._redraw()

    def set_view(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"heatmap view {view!r} is not one of {', '.join(VIEWS)}")
        self.view = view
        self._redraw()

    def cycle_view(self) -> str:
        self.set_view(VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)])
        return self.view

    def toggle_overlay(self) -> bool:
        self.overlay = not self.overlay
        self._redraw()
        self.refresh()  # the key line under the axis too, with or without a priority map
        return self.overlay

    def update_grid(
        self,
        grid: GridView,
        current: tuple[int, int] | None,
        targets: Sequence[Target],
        vehicle: GridView | None = None,
        reachable: Sequence[bool] = (),
    ) -> None:
        """Take a new grid from the snapshot; repaint only the lines that changed.

        ``vehicle``: the coverage with the vehicle's stored runs (``Snapshot.vehicle_grid``),
        shown in the :data:`COVERAGE_VIEWS`. ``reachable``: ``PlanView.reachable``; a cell
        with no data that no test reaches is left blank, not dotted like one waiting for
        data (QA: the 105-kPa row and the columns over the redline read as work to do).
        """
        self._run_grid = grid
        self._vehicle_grid = vehicle
        self._reachable = tuple(reachable)
        self.current_cell = current
        self.target_cells = frozenset((t.map_index, t.rpm_index) for t in targets)
        self._redraw()

    # ---- geometry -----------------------------------------------------------

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """As wide as the cells need at the largest cell width that leaves the side panel room."""
        n_rpm = max(self.shape[1], 1)
        avail = container.width - SIDE_RESERVE - 2
        cell_w = int(min(7, max(3, (avail - LABEL_W) // n_rpm)))
        return LABEL_W + n_rpm * cell_w + 1

    @property
    def cell_w(self) -> int:
        """Characters per cell, from the width the layout gave the widget (3..7)."""
        return self._geometry()[0]

    @property
    def row_h(self) -> int:
        """Lines per MAP row: 2 when the widget is tall enough, else 1."""
        return self._geometry()[1]

    def _geometry(self) -> tuple[int, int]:
        region = self.scrollable_content_region
        n_map, n_rpm = self.shape
        key = (region.width, region.height, n_map, n_rpm)
        if self._geom_key != key:
            cell_w = int(min(7, max(3, (region.width - LABEL_W) // max(n_rpm, 1))))
            row_h = 2 if n_map and region.height >= 2 * n_map + 1 else 1
            self._geom_key, self._geom = key, (cell_w, row_h)
        return self._geom

    def _shown_grid(self) -> GridView | None:
        if self.view in COVERAGE_VIEWS and self._vehicle_grid is not None:
            return self._vehicle_grid
        return self._run_grid

    @property
    def shows_stored(self) -> bool:
        """The view shows the vehicle's stored runs with this one."""
        return self.view in COVERAGE_VIEWS and self._vehicle_grid is not None

    @property
    def view_title(self) -> str:
        """The view's name with what its narrow short form means ("mean AFR · 1x.x: ...")."""
        note = scale_note(self.view, self.cell_w, self._afr_decade)
        return f"{VIEW_TITLES[self.view]} · {note}" if note else VIEW_TITLES[self.view]

    @property
    def scale_note(self) -> str:
        """What the view's narrow short form means, "" when the cells show plain values."""
        return scale_note(self.view, self.cell_w, self._afr_decade)

    def _set_title(self) -> None:
        # QA: "o" swapped colours with no word on screen; the key line under the axis
        # shows the colours, the title the state (cut first where the border is short)
        regions = " · regions P1/P2/P3" if self.overlay else ""
        title = f"MAP kPa × rpm · {self.view_title}{regions}"
        if self.border_title != title:  # a border change repaints the whole widget
            self.border_title = title

    def _redraw(self) -> None:
        self._grid = self._shown_grid()
        if self._grid is None:
            self._set_title()
            return
        cell_w, row_h = self._geometry()
        if self.view == "afr":
            self._afr_decade = afr_decade(self._grid.afr_mean)
        self._set_title()
        if self.view == "ve_change":
            self._levels, self._texts = _ve_levels(self._grid, self.ve_settings, cell_w)
        else:
            self._levels = _levels(self.view, self._grid)
            self._texts = _texts(self.view, self._grid, cell_w)
        n_map, n_rpm = self.shape
        if len(self._reachable) == n_map * n_rpm:
            for r, row in enumerate(self._texts):
                for c, text in enumerate(row):
                    if text == "·" and not self._reachable[r * n_rpm + c]:
                        row[c] = OUT_OF_REACH
        self.virtual_size = Size(LABEL_W + n_rpm * cell_w, n_map * row_h + 1)
        keys = [self._row_key(r, cell_w) for r in range(n_map)]
        changed = [
            i for i, k in enumerate(keys) if i >= len(self._row_keys) or self._row_keys[i] != k
        ]
        self._row_keys = keys
        if len(self._strip_cache) > 4 * max(n_map, 1) + 64:
            self._strip_cache.clear()
        if self.is_mounted and changed:
            width = self.size.width
            scroll_y = int(self.scroll_offset.y)
            self.refresh(
                *(Region(0, (n_map - 1 - r) * row_h - scroll_y, width, row_h) for r in changed),
                Region(0, n_map * row_h - scroll_y, width, 2),  # the axis and key lines
            )

    def on_mount(self) -> None:
        self._set_title()

    def on_resize(self) -> None:
        self._row_keys = []
        self._strip_cache.clear()
        self._redraw()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip_cache.clear()
        self._styles = {}

    def _style(self, name: str) -> Style:
        """Widget style + component class ``name``, cached until the CSS changes."""
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style + self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def _row_key(self, r: int, cell_w: int) -> object:
        cur = self.current_cell
        cur_col = cur[1] if cur is not None and cur[0] == r else -1
        targets = tuple(sorted(c for (m, c) in self.target_cells if m == r))
        prio = (
            tuple(self._priority[r].tolist())
            if self.overlay and self._priority is not None and self._priority.shape == self.shape
            else None
        )
        return (
            r,
            self.view,
            cell_w,
            tuple(self._levels[r].tolist()),
            tuple(self._texts[r]),
            cur_col,
            targets,
            prio,
        )

    # ---- drawing ------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        y += scroll_y
        n_map, _ = self.shape
        _, row_h = self._geom
        width = self.size.width
        if self._grid is None or y > n_map * row_h + 1 or (y > n_map * row_h and not self.overlay):
            return Strip.blank(width, self._style("heatmap--axis"))
        if y == n_map * row_h + 1:
            key: object = ("regions",)
            cached = self._strip_cache.get(key)
            if cached is None:
                cached = self._strip_cache[key] = self._regions_strip()
        elif y == n_map * row_h:
            key = ("axis", self._grid.rpm_axis.tobytes(), self._geom)
            cached = self._strip_cache.get(key)
            if cached is None:
                cached = self._strip_cache[key] = self._axis_strip()
        else:
            r = n_map - 1 - y // row_h
            key = (self._row_keys[r], y % row_h)
            cached = self._strip_cache.get(key)
            if cached is None:
                cached = self._strip_cache[key] = self._row_strip(r, first_line=y % row_h == 0)
        if scroll_x == 0 and cached.cell_length == width:
            return cached
        return cached.crop_extend(scroll_x, scroll_x + width, self._style("heatmap--axis"))

    def _row_strip(self, r: int, *, first_line: bool) -> Strip:
        assert self._grid is not None
        cell_w, _ = self._geom
        label = f"{self._grid.map_axis[r]:.0f}" if first_line else ""
        segments = [Segment(label.rjust(LABEL_W - 1) + " ", self._style("heatmap--axis"))]
        prio = self._priority if self.overlay and self._priority is not None else None
        if prio is not None and prio.shape != self.shape:
            prio = None
        if prio is not None:
            names = [REGION_CLASSES.get(p, "heatmap--region3") for p in prio[r].tolist()]
        else:
            names = [LEVEL_CLASSES[v] for v in self._levels[r].tolist()]
        styles = {name: self._style(name) for name in set(names)}
        texts = self._texts[r]
        cur = self.current_cell
        cur_col = cur[1] if cur is not None and cur[0] == r else -1
        target_cols = {c for (m, c) in self.target_cells if m == r}
        pieces: list[tuple[str, Style]] = []
        for c, name in enumerate(names):
            if c in target_cols or c == cur_col:
                pieces.extend(self._marked_cell(texts[c], name, c in target_cols, c == cur_col))
            else:
                pieces.append((texts[c].center(cell_w), styles[name]))
        if not first_line:  # the second line of a tall row: the colours, no text
            pieces = [(" " * len(text), style) for text, style in pieces]
        run_text: list[str] = []
        run_style: Style | None = None
        for text, style in pieces:
            if style is not run_style and run_text:
                segments.append(Segment("".join(run_text), run_style))
                run_text = []
            run_style = style
            run_text.append(text)
        if run_text:
            segments.append(Segment("".join(run_text), run_style))
        return Strip(segments, LABEL_W + cell_w * len(names))

    def _marked_cell(
        self, text: str, name: str, target: bool, current: bool
    ) -> list[tuple[str, Style]]:
        """A target and / or the operating cell: its value whole beside the marks.

        The target's ``◆`` takes the cell's blank column, before the value, in the
        target colour (QA: "◆9", "◆+" cut the value to its last digit); brackets mark
        the operating cell where they fit, reverse video always.
        """
        cell_w, _ = self._geom
        style = self.rich_style + self.get_component_rich_style(name)
        if current:
            style += self.get_component_rich_style("heatmap--current")
        room = cell_w - 1 if target else cell_w
        if current and len(text) + 2 <= room:
            text = f"[{text}]"
        if not target:
            return [(text.center(cell_w), style)]
        mark = style + self.get_component_rich_style("heatmap--target")
        if text == "·":  # no data yet: the mark alone, where the dot was
            return [("◆".center(cell_w), mark)]
        return [("◆", mark), (text.center(room), style)]

    def _regions_strip(self) -> Strip:
        """The key line of the regions overlay: what each colour means, in that colour."""
        segments = [Segment("regions ", self._style("heatmap--axis"))]
        for priority, what in ((1, " P1 first "), (2, " P2 "), (3, " P3 ")):
            segments.append(Segment(what, self._style(REGION_CLASSES[priority])))
            segments.append(Segment(" ", self._style("heatmap--axis")))
        segments.append(Segment("(o hides)", self._style("heatmap--axis")))
        return Strip(segments)

    def _axis_strip(self) -> Strip:
        assert self._grid is not None
        cell_w, _ = self._geometry()
        parts = ["rpm".ljust(LABEL_W)]
        rpm_axis = self._grid.rpm_axis
        step = 1 if cell_w >= 4 else 2
        for c in range(0, rpm_axis.size, step):
            span = cell_w * min(step, rpm_axis.size - c)
            parts.append(_rpm_label(float(rpm_axis[c]), cell_w).center(cell_w).ljust(span)[:span])
        text = "".join(parts)
        return Strip([Segment(text, self._style("heatmap--axis"))], len(text))
