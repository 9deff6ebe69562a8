"""Planning quality on the simulator: dyno minutes until 80 % of priority-1 and -2 cells are covered.

From empty coverage, three ways of choosing the next test are run on the V-twin
simulator (every test simulated sample by sample through fusion, the filters and
the coverage grid):

* planner: always the planner's top suggestion, learning from every detected test;
* fixed: a tuner's routine without a planner: a WOT pull, then steady-state holds
  walking the table row band by row band (low rpm to high), a WOT pull every 4 holds;
* random: a uniformly random pick among the same candidates (mean of 3 seeds).

Minutes = simulated seconds (incl. the cool-down after WOT pulls) + setup minutes
per test. Targets: planner <= 0.6 x fixed and <= 0.5 x random.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.coverage.axes import TableAxes  # noqa: E402
from core.coverage.grid import CoverageGrid  # noqa: E402
from core.coverage.regions import DEFAULT_REGIONS, priority_map  # noqa: E402
from core.pipeline import Pipeline  # noqa: E402
from core.plan.candidates import candidate_specs  # noqa: E402
from core.plan.learning import Calibration  # noqa: E402
from core.plan.planner import Constraints, plan_arrays  # noqa: E402
from core.plan.testmodels import COOLDOWN_MIN, SETUP_MIN, STEADY_STEP_S, TIP_IN_HOLD_S, TestSpec  # noqa: E402
from core.plan.tracker import VehicleTracker  # noqa: E402
from core.vehicle import VehicleConfig  # noqa: E402
from sim import scenarios as sc  # noqa: E402
from sim.simulation import Simulation, sim_channel_units  # noqa: E402
from sim.vehicles import get_vehicle  # noqa: E402

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


def run_until_goal(choose: Callable[[Bench], TestSpec], learn: bool) -> Bench:
    bench = Bench(learn)
    while bench.progress() < GOAL and bench.minutes < MAX_MIN:
        bench.run(choose(bench), seed=1000 + bench.tests)
    return bench


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


def fixed_routine() -> Iterator[TestSpec]:
    specs, _ = candidate_specs(AXES.rpm, AXES.map_kpa, CONSTRAINTS, 97.0)
    wot = next(s for s in specs if s.test_type == "wot_pull")
    holds = [s for s in specs if s.test_type == "steady_state"]
    holds.sort(key=lambda s: (s.map_lo_kpa, s.rpm_lo))  # row band by row band, low rpm first
    while True:
        yield wot
        for i, hold in enumerate(holds):
            yield hold
            if i % 4 == 3:
                yield wot


def main() -> None:
    planner = run_until_goal(planner_choice, learn=True)
    routine = fixed_routine()
    fixed = run_until_goal(lambda b: next(routine), learn=False)
    specs, _ = candidate_specs(AXES.rpm, AXES.map_kpa, CONSTRAINTS, 97.0)
    randoms = []
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        randoms.append(
            run_until_goal(lambda b, rng=rng: specs[int(rng.integers(len(specs)))], learn=False)
        )
    random_min = float(np.mean([r.minutes for r in randoms]))

    def line(name: str, b: Bench) -> str:
        reached = (
            ""
            if b.progress() >= GOAL
            else f" (stopped at {MAX_MIN:.0f} min, {100 * b.progress():.0f} %)"
        )
        return f"{name:<8} {b.minutes:6.1f} min, {b.tests:3d} tests{reached}"

    print(
        f"goal: {100 * GOAL:.0f} % of the {int(GOAL_MASK.sum())} priority-1/2 cells covered (>= {HIT_TARGET} hits)"
    )
    print(line("planner", planner))
    print(line("fixed", fixed))
    print(
        f"random   {random_min:6.1f} min (mean of 3 seeds: "
        + ", ".join(f"{r.minutes:.1f}" for r in randoms)
        + ")"
    )
    r_fixed = planner.minutes / fixed.minutes
    r_random = planner.minutes / random_min
    print(f"planner / fixed:  {r_fixed:.2f} (target <= 0.60) {'OK' if r_fixed <= 0.6 else 'MISS'}")
    print(
        f"planner / random: {r_random:.2f} (target <= 0.50) {'OK' if r_random <= 0.5 else 'MISS'}"
    )
    err = planner.calibration.mean_error_pct
    print(
        f"planner prediction error (mean of recent tests): {err:.1f} %" if err is not None else ""
    )


if __name__ == "__main__":
    main()
