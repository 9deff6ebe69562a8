"""Shared test rig: drive simulator segments through fusion, filters, grid and a tracker."""

from __future__ import annotations

from core.coverage.axes import TableAxes
from core.coverage.filters import FilterChain
from core.coverage.grid import CoverageGrid
from core.coverage.regions import DEFAULT_REGIONS
from core.fusion import Fuser
from core.plan.planner import Constraints
from core.plan.tracker import VehicleTracker
from core.source import SourceEvent
from sim.simulation import Simulation
from sim.vehicles import get_vehicle


def run_sim(segments, *, seed=3, tracker=None, axes=None, block=5):
    """Run ``segments`` at 100 Hz; returns (grid, events, tracker)."""
    axes = axes or TableAxes.default()
    grid = CoverageGrid(axes)
    chain = FilterChain()
    fuser = Fuser(0.09, expect_mixture=True)
    if tracker is None:
        tracker = VehicleTracker(
            axes=axes,
            hit_target=10,
            regions=DEFAULT_REGIONS,
            constraints=Constraints(max_rpm=5800),
            store=None,
            vehicle="sim",
            run_id="run",
            log_path=None,
        )
    sim = Simulation(get_vehicle("vtwin"), segments, seed=seed, rate_hz=100.0)
    events: list[SourceEvent] = []
    while (raw := sim.next_block(block)) is not None:
        rows = fuser.push(raw)
        if rows is None or not len(rows):
            continue
        result = chain.apply(rows)
        grid.update(rows, result)
        events += tracker.on_rows(rows, result, grid)
    return grid, events, tracker
