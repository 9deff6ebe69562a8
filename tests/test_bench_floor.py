"""The physics floor printed beside each row of ``bench/bench_planner.py`` (issue 11).

The floor is the least settled data any operator needs to bring the goal to 80 / 95 %
from a start's coverage: computed from the coverage rule and the simulator (a settled
hold per column, read every 0.1 s), with zero travel. Checked on a small table so the
holds run in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np

from bench import bench_planner as bp
from core.coverage.axes import TableAxes
from core.coverage.filters import FilterLimits
from core.plan.candidates import Constraints
from core.plan.testsim import ADDITIVE, ModelKey
from core.plan.value import confidence

AXES = TableAxes.linear(2000, 3500, 4, 50, 80, 4)
KEY = ModelKey("vtwin", AXES, FilterLimits(), 50.0)
EMPTY = {k: np.zeros(AXES.n_cells) for k in ADDITIVE}


def test_each_cell_needs_the_rules_dwell_and_a_trusted_start_needs_nothing() -> None:
    need = bp.cell_floor_s(KEY, Constraints(), EMPTY)
    held = np.isfinite(need)
    assert held.sum() >= 12  # the 16 cells' holds make most of them trusted
    # the rule asks for 1 s of settled dwell: no cell turns trusted on less
    assert np.all(need[held] >= bp.RULE.min_dwell_s - 1e-9)
    assert np.all(need[held] <= bp.GOAL_HOLD_S)
    # a start that already trusts a cell: that cell needs nothing more
    cell = int(np.flatnonzero(held)[0])
    base = {k: v.copy() for k, v in EMPTY.items()}
    base["hits"][cell], base["dwell_s"][cell] = 200.0, 4.0
    base["lam_weight"][cell], base["lam_wsum"][cell] = 200.0, 200 * 0.9
    base["lam_wsum2"][cell] = 200 * (0.9**2 + 0.001**2)
    assert confidence(base, bp.RULE)[cell] >= 1.0
    assert bp.cell_floor_s(KEY, Constraints(), base)[cell] == 0.0


def test_floor_sums_the_cheapest_cells_to_each_goal_fraction() -> None:
    need = bp.cell_floor_s(KEY, Constraints(), EMPTY)
    goal = np.isfinite(need)
    floor = bp.floor_seconds(KEY, Constraints(), goal, EMPTY)
    cheapest = np.sort(need[goal])
    for g in bp.GOALS:
        k = math.ceil(g * goal.sum() - 1e-9)
        assert floor[g] == float(cheapest[:k].sum())
    assert floor[0.8] <= floor[0.95]
    # max_rpm below a column: its cells are out of reach, never cheaper
    capped = bp.cell_floor_s(KEY, Constraints(max_rpm=3000.0), EMPTY)
    top = [m * 4 + 3 for m in range(4)]  # the 3500-rpm column
    assert np.all(np.isinf(capped[top]))


def test_every_cell_a_hold_of_its_own_covers_is_in_the_goal() -> None:
    # Under the lowest rows a low column cannot be held: the rpm sags under the step and,
    # stepping up from there, stays under the column. The goal's holds ran from the lowest
    # row up only, and left out the V-twin's 1500-rpm cells at 30-40 kPa, which a hold of
    # their own (or from above, as the planner and the experts' top-down holds run them)
    # makes trusted. The goal is every cell the engine can be made to cover.
    axes = TableAxes.linear(1000, 1500, 3, 20, 45, 6)
    key = ModelKey("vtwin", axes, FilterLimits(), 50.0)
    goal = bp.goal_cells(key, Constraints())
    vehicle = bp.get_vehicle("vtwin")
    alone = np.zeros(axes.n_cells, dtype=bool)
    for i, rpm in enumerate(axes.rpm):
        for j, m in enumerate(axes.map_kpa):
            settle = bp.sc.transition_s(vehicle, None, float(rpm))
            hold = bp.sc.SteadyHold(float(rpm), (float(m),), hold_s=bp.GOAL_HOLD_S, settle_s=settle)
            sim = bp.Simulation(vehicle, (hold,), seed=13, rate_hz=50.0)
            (step,) = bp.run_windows(key, sim, [settle, settle + bp.GOAL_HOLD_S])
            alone[j * 3 + i] = confidence(step, bp.RULE)[j * 3 + i] >= 1.0
    assert alone[[3 * j + 2 for j in (2, 3, 4)]].all()  # 1500 rpm at 30, 35, 40 kPa
    assert not np.any(alone & ~goal), np.flatnonzero(alone & ~goal)


def test_the_expert_going_straight_on_drops_only_the_releases_between_holds() -> None:
    # the bench's "no release" expert: a hold followed by another goes straight on to it,
    # and the routine's last hold (or one before a pull or an idle) still closes the throttle
    from sim import scenarios as sc
    from sim.live import with_live_steps

    holds = (sc.SteadyHold(2000.0, (95.0, 85.0)), sc.SteadyHold(2500.0, (95.0,)))
    segs = with_live_steps((*holds, sc.WotPull(2000.0, 5000.0), *holds))
    released = [i for i, s in enumerate(segs) if isinstance(s, sc.Release)]
    assert len(released) == 4
    straight = bp.straight_on(segs)
    kinds = [type(s).__name__ for s in straight]
    assert kinds == [
        "LiveStep", "LiveStep", "LiveStep", "Release", "WotPull",
        "LiveStep", "LiveStep", "LiveStep", "Release",
    ]  # fmt: skip
