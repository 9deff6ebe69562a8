"""Pilot tests: what the dashboard shows follows the engine, keys reach the session."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from rich.style import Style
from textual.strip import Strip

from core.coverage.filters import FilterResult
from core.coverage.grid import CoverageGrid
from core.coverage.regions import DEFAULT_REGIONS, priority_map
from core.frames import Block
from core.plan.planner import Constraints, live_targets
from core.plan.types import PlanView
from core.session import Session
from core.source import SourceEvent
from core.vehicle import VehicleConfig
from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.widgets.gauges import AfrGauge, Gauge
from dynoai_tui.tui.widgets.heatmap import LABEL_W, Heatmap
from dynoai_tui.tui.widgets.panels import SuggestionsPanel
from tests.tui.helpers import sync
from tests.tui.livefeed import PushSource, feed_until


class TargetsTracker:
    """The engine's tracker hook, planning live targets with the real planner."""

    def __init__(self, config: VehicleConfig) -> None:
        self.config = config
        self.priorities = priority_map(config.axes, DEFAULT_REGIONS)
        self.constraints = Constraints()

    def on_rows(self, block: Block, result: FilterResult, grid: CoverageGrid) -> list[SourceEvent]:
        return []

    def plan(
        self, grid: CoverageGrid, values: Mapping[str, float], *, final: bool = False
    ) -> PlanView:
        targets, instruction = live_targets(grid, self.priorities, self.constraints, values)
        return PlanView(targets=targets, instruction=instruction)

    def checkpoint(self, grid: CoverageGrid) -> None:
        pass

    def finish(self, grid: CoverageGrid, stats: Mapping[str, object]) -> None:
        pass

    def set_constraints(self, constraints: Constraints) -> None:
        self.constraints = constraints

    def restart_run(self) -> None:
        pass  # keeps no per-run memory to forget

    pulls_done = 0
    pulls_max: int | None = None


@pytest.fixture
def live() -> Iterator[tuple[Session, PushSource]]:
    source = PushSource()
    config = VehicleConfig()
    session = Session([source], config=config, tracker=TargetsTracker(config), tick_s=0.02)
    session.start()
    yield session, source
    session.stop()


def gauge(app: DynoApp, channel: str) -> Gauge:
    return app.screen.query_one(f"#gauge-{channel}", Gauge)


def style_at(strip: Strip, x: int) -> Style:
    pos = 0
    for seg in strip:
        if pos <= x < pos + len(seg.text):
            return seg.style or Style()
        pos += len(seg.text)
    raise AssertionError(f"x={x} is past the end of the line")


def cell_style(heatmap: Heatmap, map_index: int, rpm_index: int) -> Style:
    n_map, _ = heatmap.shape
    y = (n_map - 1 - map_index) * heatmap.row_h - int(heatmap.scroll_offset.y)
    x = LABEL_W + rpm_index * heatmap.cell_w + 1
    return style_at(heatmap.render_line(y), x)


@sync
async def test_gauges_follow_the_source(live: Any) -> None:
    session, source = live
    app = DynoApp(session)
    async with app.run_test(size=(120, 36)) as pilot:
        engine = {"rpm": 3012.4, "map_kpa": 61.6, "tps_pct": 35.0, "lambda": 0.95}
        await feed_until(pilot, source, engine, lambda: gauge(app, "rpm").text == "3012")
        assert gauge(app, "map_kpa").text == "62"
        assert gauge(app, "tps_pct").text == "35"
        afr = app.screen.query_one(AfrGauge)
        assert afr.text == "14.0"  # 0.95 x 14.7 stoich
        assert afr.has_class("-lean")  # target 0.88 lambda = 12.9 AFR

        engine = {"rpm": 5480.0, "map_kpa": 97.0, "tps_pct": 100.0, "lambda": 0.88}
        await feed_until(pilot, source, engine, lambda: gauge(app, "rpm").text == "5480")
        assert gauge(app, "map_kpa").text == "97"
        assert afr.has_class("-ok") and not afr.has_class("-lean")


@sync
async def test_current_cell_highlight_moves(live: Any) -> None:
    session, source = live
    app = DynoApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        heatmap = app.screen.query_one(Heatmap)
        axes = session.config.axes
        first = (int(np.argmin(abs(axes.map_kpa - 40))), int(np.argmin(abs(axes.rpm - 2000))))
        engine = {"rpm": float(axes.rpm[first[1]]), "map_kpa": float(axes.map_kpa[first[0]])}
        await feed_until(pilot, source, engine, lambda: heatmap.current_cell == first)
        await pilot.pause(0.05)
        assert cell_style(heatmap, *first).reverse

        second = (first[0] + 5, first[1] + 4)
        engine = {"rpm": float(axes.rpm[second[1]]), "map_kpa": float(axes.map_kpa[second[0]])}
        await feed_until(pilot, source, engine, lambda: heatmap.current_cell == second)
        await pilot.pause(0.05)
        assert cell_style(heatmap, *second).reverse
        assert not cell_style(heatmap, *first).reverse


@sync
async def test_target_cell_leaves_the_list_once_covered(live: Any) -> None:
    session, source = live
    app = DynoApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        heatmap = app.screen.query_one(Heatmap)
        panel = app.screen.query_one(SuggestionsPanel)
        idle = {"rpm": 3000.0, "map_kpa": 60.0}
        await feed_until(pilot, source, idle, lambda: bool(heatmap.target_cells))
        target = session.snapshot.plan.targets[0]
        label = f"{target.rpm:.0f}/{target.map_kpa:.0f}"
        assert label in panel.plain
        assert (target.map_index, target.rpm_index) in heatmap.target_cells

        at_target = {"rpm": target.rpm, "map_kpa": target.map_kpa}
        await feed_until(
            pilot,
            source,
            at_target,
            lambda: (target.map_index, target.rpm_index) not in heatmap.target_cells,
            timeout_s=6.0,
        )
        assert session.snapshot.grid.hits[target.map_index, target.rpm_index] >= 10
        assert label not in panel.plain.split("Next cells:")[-1]


@sync
async def test_stale_source_shows_dashes(live: Any) -> None:
    session, source = live
    app = DynoApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await feed_until(pilot, source, {"rpm": 2500.0}, lambda: gauge(app, "rpm").text == "2500")
        await pilot.pause(1.0)  # nothing new for longer than the rpm staleness limit
        assert gauge(app, "rpm").text == "--"
        assert gauge(app, "rpm").value is None or math.isnan(gauge(app, "rpm").value or 0)
