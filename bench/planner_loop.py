"""The planner-in-the-loop helpers ``bench_ve`` and ``bench_fleet`` share: a V-twin
session driven test by test (each planned test run on the simulator through the
pipeline into one coverage grid), the planner's top suggestion as the next test, and
the simulator segments an operator runs for a planned test.

These lived in ``bench_planner.py`` until it moved to the guided operator
(``sim.guided``); the two benches still import them, so they live here.
"""

from __future__ import annotations

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.grid import CoverageGrid
from core.coverage.regions import DEFAULT_REGIONS, priority_map
from core.pipeline import Pipeline
from core.plan.candidates import candidate_specs
from core.plan.learning import Calibration
from core.plan.planner import Constraints, plan_arrays
from core.plan.testmodels import COOLDOWN_MIN, SETUP_MIN, STEADY_STEP_S, TIP_IN_HOLD_S, TestSpec
from core.plan.tracker import VehicleTracker
from core.vehicle import VehicleConfig
from sim import scenarios as sc
from sim.simulation import Simulation, sim_channel_units
from sim.vehicles import get_vehicle

AXES = TableAxes.default()
HIT_TARGET = 10
GOAL = 0.8
MAX_MIN = 240.0
CONSTRAINTS = Constraints(max_rpm=5800.0)
VEHICLE = get_vehicle("vtwin")
GOAL_MASK = priority_map(AXES, DEFAULT_REGIONS) <= 2


def segments_for(spec: TestSpec) -> list[sc.Segment]:
    """The simulator segments an operator would run for a planned test."""
    kind = spec.test_type
    if kind == "wot_pull":
        return [sc.WotPull(spec.rpm_lo, spec.rpm_hi), sc.CoolDown(60.0 * COOLDOWN_MIN["wot_pull"])]
    if kind == "part_throttle_sweep":
        return [sc.PartThrottleSweep(spec.map_lo_kpa, spec.rpm_lo, spec.rpm_hi)]
    if kind == "steady_state":
        return [sc.SteadyHold(spec.rpm_lo, spec.map_steps_kpa, hold_s=STEADY_STEP_S)]
    if kind == "tip_in":
        return [
            sc.TipIn(r, spec.map_lo_kpa, spec.map_hi_kpa, hold_s=TIP_IN_HOLD_S)
            for r in spec.rpm_steps
        ]
    if kind == "idle_low_map":
        return [sc.SteadyHold(r, spec.map_steps_kpa, hold_s=3.0) for r in spec.rpm_steps]
    return [sc.Cruise(spec.run_s, spec.rpm_lo, spec.rpm_hi, spec.map_lo_kpa, spec.map_hi_kpa)]


class Bench:
    def __init__(self, learn: bool) -> None:
        self.grid = CoverageGrid(AXES, HIT_TARGET)
        self.calibration = Calibration()
        self.learn = learn
        self.minutes = 0.0
        self.tests = 0

    def progress(self) -> float:
        return float(np.mean(self.grid.covered_mask()[GOAL_MASK]))

    def run(self, spec: TestSpec, seed: int) -> None:
        segs = segments_for(spec)
        sim = Simulation(VEHICLE, segs, seed=seed, rate_hz=100.0)
        tracker = VehicleTracker(
            axes=AXES, hit_target=HIT_TARGET, regions=DEFAULT_REGIONS, constraints=CONSTRAINTS,
            store=None, vehicle="bench", run_id=str(seed), log_path=None,
        )  # fmt: skip
        tracker.calibration = self.calibration
        pipeline = Pipeline(
            VehicleConfig(lambda_delay_ms=90.0, axes=AXES, hit_target=HIT_TARGET),
            [("sim", sim_channel_units())],
            on_rows=tracker.on_rows if self.learn else None,
        )
        while (raw := sim.next_block(50)) is not None:
            pipeline.push(raw)
        run_grid = pipeline.grid
        if self.learn:
            tracker.finish(run_grid, {})
        self.grid.merge(run_grid)
        self.minutes += sum(s.duration_s(VEHICLE) for s in segs) / 60.0 + SETUP_MIN[spec.test_type]
        self.tests += 1


def planner_choice(bench: Bench) -> TestSpec:
    view = plan_arrays(
        bench.grid.hits, bench.grid.knock_events, AXES, DEFAULT_REGIONS, CONSTRAINTS,
        bench.calibration, 0, HIT_TARGET,
    )  # fmt: skip
    top = view.suggestions[0]
    specs, _ = candidate_specs(AXES.rpm, AXES.map_kpa, CONSTRAINTS, bench.calibration.wot_map_kpa)
    return next(
        s for s in specs if s.description == top.description and s.test_type == top.test_type
    )
