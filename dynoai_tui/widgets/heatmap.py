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

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from rich.segment import Segment
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.snapshot import GridView, Target

VIEWS: tuple[str, ...] = ("hits", "afr", "afr_error", "knock", "dwell")
"""Heatmap views, in the order the cycle key steps through them."""

VIEW_TITLES: dict[str, str] = {
    "hits": "hits",
    "afr": "mean AFR",
    "afr_error": "AFR error % (+ lean)",
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


def _levels(view: str, grid: GridView) -> IntArray:
    """Colour level per cell for one view, vectorised."""
    hits = grid.hits
    levels = np.full(hits.shape, EMPTY, dtype=np.int64)
    if view in ("hits", "dwell"):
        if view == "hits":
            frac = hits / max(grid.hit_target, 1)
        else:
            top = float(np.nanmax(grid.dwell_s)) if grid.dwell_s.size else 0.0
            frac = grid.dwell_s / top if top > 0 else np.zeros(hits.shape)
        steps = np.clip(np.ceil(frac * 4.0), 1, 4).astype(np.int64)
        levels = np.where(hits > 0, steps, EMPTY)
        if view == "hits":
            levels = np.where(hits >= grid.hit_target, COVERED, levels)
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


def _texts(view: str, grid: GridView, cell_w: int) -> list[list[str]]:
    """The text of each cell for one view, fitted to ``cell_w`` characters."""
    hits = grid.hits
    out: list[list[str]] = []
    wide = cell_w >= 4
    for r in range(hits.shape[0]):
        row: list[str] = []
        for c in range(hits.shape[1]):
            if hits[r, c] <= 0:
                row.append("·")
                continue
            if view == "hits":
                n = int(hits[r, c])
                row.append(str(n) if n < 10 ** (cell_w - 1) else "+" * (cell_w - 1))
            elif view == "afr":
                afr = float(grid.afr_mean[r, c])
                row.append("?" if not np.isfinite(afr) else f"{afr:.1f}" if wide else f"{afr:.0f}")
            elif view == "afr_error":
                e = float(grid.afr_error_pct[r, c])
                row.append("?" if not np.isfinite(e) else f"{e:+.0f}")
            elif view == "knock":
                row.append(str(int(grid.knock_events[r, c])))
            else:
                d = float(grid.dwell_s[r, c])
                row.append(f"{d:.1f}" if wide and d < 10 else f"{d:.0f}")
        out.append(row)
    return out


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
        """Show priority regions (red 1 / yellow 2 / blue 3) instead of the value colours."""
        self.current_cell: tuple[int, int] | None = None
        """(map_index, rpm_index) of the operating point as last drawn."""
        self.target_cells: frozenset[tuple[int, int]] = frozenset()
        """(map_index, rpm_index) of the planner's next cells as last drawn."""
        self._grid: GridView | None = None
        self._priority: IntArray | None = None
        self._levels: IntArray = np.zeros((0, 0), dtype=np.int64)
        self._texts: list[list[str]] = []
        self._row_keys: list[object] = []
        self._strip_cache: dict[object, Strip] = {}

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
        return self.overlay

    def update_grid(
        self, grid: GridView, current: tuple[int, int] | None, targets: Sequence[Target]
    ) -> None:
        """Take a new grid from the snapshot; repaint only the lines that changed."""
        self._grid = grid
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
        n_rpm = max(self.shape[1], 1)
        return int(min(7, max(3, (self.scrollable_content_region.width - LABEL_W) // n_rpm)))

    @property
    def row_h(self) -> int:
        n_map = self.shape[0]
        return 2 if n_map and self.scrollable_content_region.height >= 2 * n_map + 1 else 1

    def _redraw(self) -> None:
        if self._grid is None:
            return
        cell_w = self.cell_w
        self._levels = _levels(self.view, self._grid)
        self._texts = _texts(self.view, self._grid, cell_w)
        n_map, n_rpm = self.shape
        self.virtual_size = Size(LABEL_W + n_rpm * cell_w, n_map * self.row_h + 1)
        keys = [self._row_key(r) for r in range(n_map)]
        changed = [
            i for i, k in enumerate(keys) if i >= len(self._row_keys) or self._row_keys[i] != k
        ]
        self._row_keys = keys
        if len(self._strip_cache) > 4 * max(n_map, 1) + 64:
            self._strip_cache.clear()
        if self.is_mounted and changed:
            row_h = self.row_h
            width = self.size.width
            scroll_y = int(self.scroll_offset.y)
            self.refresh(
                *(Region(0, (n_map - 1 - r) * row_h - scroll_y, width, row_h) for r in changed),
                Region(0, n_map * row_h - scroll_y, width, 1),
            )

    def on_resize(self) -> None:
        self._row_keys = []
        self._redraw()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip_cache.clear()

    def _row_key(self, r: int) -> object:
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
            self.cell_w,
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
        row_h = self.row_h
        width = self.size.width
        if self._grid is None or y > n_map * row_h:
            return Strip.blank(width, self.rich_style)
        if y == n_map * row_h:
            strip = self._axis_strip()
        else:
            r = n_map - 1 - y // row_h
            key = (self._row_keys[r], y % row_h)
            cached = self._strip_cache.get(key)
            if cached is None:
                cached = self._row_strip(r, first_line=y % row_h == 0)
                self._strip_cache[key] = cached
            strip = cached
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _row_strip(self, r: int, *, first_line: bool) -> Strip:
        assert self._grid is not None
        cell_w = self.cell_w
        axis = self.get_component_rich_style("heatmap--axis")
        label = f"{self._grid.map_axis[r]:.0f}" if first_line else ""
        segments = [Segment(label.rjust(LABEL_W - 1) + " ", axis)]
        current = self.get_component_rich_style("heatmap--current")
        target = self.get_component_rich_style("heatmap--target")
        prio = self._priority if self.overlay and self._priority is not None else None
        if prio is not None and prio.shape != self.shape:
            prio = None
        for c in range(self._grid.hits.shape[1]):
            if prio is not None:
                style = self.get_component_rich_style(
                    REGION_CLASSES.get(int(prio[r, c]), "heatmap--region3")
                )
            else:
                style = self.get_component_rich_style(LEVEL_CLASSES[int(self._levels[r, c])])
            text = self._texts[r][c]
            is_target = (r, c) in self.target_cells
            if is_target:
                style = style + target
                text = "◆" + text[-(cell_w - 2) :] if text != "·" else "◆"
            if self.current_cell == (r, c):
                style = style + current
                if len(text) + 2 <= cell_w:
                    text = f"[{text}]"
            body = text.center(cell_w) if first_line else " " * cell_w
            segments.append(Segment(body[:cell_w], style))
        return Strip(segments)

    def _axis_strip(self) -> Strip:
        assert self._grid is not None
        cell_w = self.cell_w
        axis = self.get_component_rich_style("heatmap--axis")
        parts = ["rpm".ljust(LABEL_W)]
        rpm_axis = self._grid.rpm_axis
        step = 1 if cell_w >= 4 else 2
        for c in range(0, rpm_axis.size, step):
            span = cell_w * min(step, rpm_axis.size - c)
            parts.append(_rpm_label(float(rpm_axis[c]), cell_w).center(cell_w).ljust(span)[:span])
        return Strip([Segment("".join(parts), axis)])
