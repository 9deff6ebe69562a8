"""Shared test rig: drive simulator segments through the engine's Pipeline and a tracker."""

from __future__ import annotations

from core.coverage.axes import TableAxes
from core.coverage.regions import DEFAULT_REGIONS
from core.pipeline import Pipeline
from core.plan.planner import Constraints
from core.plan.tracker import VehicleTracker
from core.source import SourceEvent
from core.vehicle import VehicleConfig
from sim.simulation import Simulation, sim_channel_units
from sim.vehicles import get_vehicle


def run_sim(segments, *, seed=3, tracker=None, axes=None, block=5):
    """Run ``segments`` at 100 Hz; returns (grid, events, tracker)."""
    axes = axes or TableAxes.default()
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
    events: list[SourceEvent] = []

    def on_rows(rows, result, grid):
        events.extend(tracker.on_rows(rows, result, grid))

    pipeline = Pipeline(
        VehicleConfig(lambda_delay_ms=90.0, axes=axes),
        [("sim", sim_channel_units())],
        on_rows=on_rows,
    )
    sim = Simulation(get_vehicle("vtwin"), segments, seed=seed, rate_hz=100.0)
    while (raw := sim.next_block(block)) is not None:
        pipeline.push(raw)
    return pipeline.grid, events, tracker
