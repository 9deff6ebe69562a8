"""The next-test planner on simulated candidates: gain in trusted cells per honest minute.

Every candidate test is run on the simulator through the real pipeline
(a ``core.plan.testsim.CandidateModel``; ``sim.testsim`` implements it), so its
expected data per cell is what the filters
keep. Its gain is how much it raises the *confidence* of the cells (0..1: hits,
settled dwell and the standard error of the mean lambda together, see
:func:`confidence`), weighted by cell priority::

    gain = sum_cells weight(priority) x (confidence(now + expected) - confidence(now))

A covered cell gains nothing, a cell that has hits but not yet a steady mean
still gains, and a test whose samples the filters reject (a tip-in) gains little.
Minutes are physics (``sim.testsim``): getting there from the current
operating point, the test, a WOT pull's heat-soak cool-down. Suggestions are
ranked by gain per minute.

Tip-ins are not offered as coverage tests: their transient samples are what the
accel-enrichment and hold-off filters reject, and the steady data before and after
the snap is a two-step hold, which the hold composer offers on its own when those
rows need data. (They remain a detected test type for learning.)

Steady-state holds are composed per column from the per-step simulation: the
planner proposes exactly the MAP steps that still gain, so a column with three
rows short of data is a 9-second hold, not a 40-second one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.coverage.regions import Region, axis_arrays, priority_map
from core.plan.candidates import Constraints
from core.plan.learning import Calibration
from core.plan.testmodels import ENVIRONMENT
from core.plan.testsim import (
    ADDITIVE,
    HOLD_STEP_S,
    CandidateModel,
    ModelKey,
)
from core.plan.types import FilteredTest, PlanView, Suggestion, Target

F64 = npt.NDArray[np.float64]

WOT_START_RPM = 2000.0
"""Where a WOT pull starts on the dyno (in gear, loaded)."""
MIDRANGE_TOP_RPM = 4500.0
SWEEP_START_RPM = 1500.0
IDLE_MAX_RPM = 1600.0
IDLE_MAX_MAP_KPA = 45.0
IDLE_S = 30.0
CRUISE_S = 300.0
MIN_STEP_GAIN = 0.25
"""A MAP step joins a hold when it raises weighted confidence by at least this much
(a quarter of a priority-3 cell): below that the 3 s it costs are better spent elsewhere."""
PLAN_WEIGHT = (0.0, 10.0, 6.0, 1.0)
"""Planning weight of a cell's confidence by priority (index 1..3). Priority 1 and 2 are
what a tuner must have before the bike leaves; priority 3 is polish, worth a step only
when nothing more important is left (see MIN_STEP_RATE)."""
SETTLE_AT_FIRST_S = 2.0
"""The operator settles at the first MAP step for this long (``transition_s``'s settle):
the first step of a hold collects that much more data than the others."""
MIN_STEP_RATE = 1.0
"""A MAP step joins a hold only if it gains at least this fraction of the best test's gain
per second: a step that fills a low-priority cell slowly costs more dyno time than it earns."""
HOLD_ROUNDS = 4
MAX_SUGGESTIONS = 40


def confidence(arrays: Mapping[str, F64], rule: CoverageRule) -> F64:
    """Per-cell confidence 0..1 of additive grid arrays (broadcasts over candidates).

    The grid's own rule (:class:`core.coverage.confidence.CoverageRule`) on the mean and
    standard deviation the grid would compute from these sums.
    """
    w = arrays["lam_weight"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(w > 0, arrays["lam_wsum"] / w, np.nan)
        std = np.sqrt(np.maximum(np.where(w > 0, arrays["lam_wsum2"] / w, np.nan) - mean**2, 0.0))
    return rule.confidence(arrays["hits"], arrays["dwell_s"], w, mean, std)


def cell_value(conf: F64) -> F64:
    """What a cell's confidence is worth to the tuner: half for progress, half for trusted.

    A cell is only usable for correction once it is trusted, so finishing a cell
    that is at 0.9 is worth more than starting one at 0: topping up is not starved.
    """
    return np.asarray(0.5 * conf + 0.5 * (conf >= 1.0), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Recipe:
    """What the operator does for one suggestion (the guided operator runs exactly this).

    Attributes:
        test_type: Planner test type.
        rpm_lo: Start rpm (hold rpm).
        rpm_hi: End rpm (equal to ``rpm_lo`` for a hold).
        map_steps: MAP steps of a hold, the MAP of a sweep, (from, to) of a tip-in.
        seconds: Length of an idle or cruise.
    """

    test_type: str
    rpm_lo: float
    rpm_hi: float
    map_steps: tuple[float, ...] = ()
    seconds: float = 0.0

    @property
    def description(self) -> str:
        t = self.test_type
        if t == "wot_pull":
            return f"WOT pull {self.rpm_lo:.0f}-{self.rpm_hi:.0f} rpm, then cool down"
        if t in ("steady_state", "idle_low_map") and self.map_steps:
            steps = " ".join(f"{m:.0f}" for m in self.map_steps)
            return f"hold {self.rpm_lo:.0f} rpm: MAP {steps} kPa, {HOLD_STEP_S:g} s each"
        if t == "idle_low_map":
            return f"idle in neutral {self.seconds:.0f} s"
        if t == "part_throttle_sweep":
            return (
                f"part-throttle sweep {self.rpm_lo:.0f}-{self.rpm_hi:.0f} rpm "
                f"at {self.map_steps[0]:.0f} kPa"
            )
        if t == "tip_in":
            return (
                f"tip-in {self.map_steps[0]:.0f}-{self.map_steps[1]:.0f} kPa "
                f"at {self.rpm_lo:.0f} rpm"
            )
        return f"street cruise {self.seconds / 60.0:.0f} min"


@dataclass(slots=True)
class _Cand:
    recipe: Recipe
    arrays: dict[str, F64]
    minutes: float
    gain: float = 0.0
    per_cell: F64 = field(default_factory=lambda: np.zeros(0))


def top_rpm(model: CandidateModel, axes_rpm: F64, constraints: Constraints) -> float:
    """The highest rpm a test may use: the table, ``max_rpm`` and the engine's redline."""
    _, hi = constraints.rpm_window(axes_rpm)
    return min(hi, model.redline_rpm())


def plan_model(
    arrays: Mapping[str, F64],
    knock_events: npt.ArrayLike | None,
    model: CandidateModel,
    regions: tuple[Region, ...] | list[Region],
    constraints: Constraints,
    calibration: Calibration,
    pulls_done: int,
    rule: CoverageRule,
    *,
    operating_point: Mapping[str, float] | None = None,
) -> PlanView:
    """Rank candidate tests by weighted confidence gained per minute.

    Args:
        arrays: Current coverage, the :data:`core.plan.testsim.ADDITIVE` arrays (flat).
        knock_events: Knock events per cell (raises priority), or None.
        model: The simulated candidates of this vehicle (``sim.testsim.SimCandidates``):
            preset, axes, filter limits and logging rate in ``model.key``.
        regions: Priority regions.
        constraints: The vehicle's constraints.
        calibration: Learned fill-rate factors per test type.
        pulls_done: WOT pulls done in this session (``max_pulls_per_session``).
        rule: When a cell counts as covered.
        operating_point: Latest ``rpm`` / ``map_kpa``: where the next test starts from.
    """
    key = model.key
    axes = key.axes
    rpm_axis, map_axis = axis_arrays(axes)
    prio = priority_map(axes, regions, knock_events)
    weights = np.asarray(PLAN_WEIGHT, dtype=np.float64)[np.clip(prio, 1, 3)].ravel()
    weights = weights * calibration.stall_weights(rpm_axis, map_axis)
    now = {k: np.asarray(arrays[k], dtype=np.float64).ravel() for k in ADDITIVE}
    conf0 = confidence(now, rule)
    value0 = cell_value(conf0)
    op = operating_point or {}
    rpm_now = float(op.get("rpm", math.nan))
    start_rpm = rpm_now if math.isfinite(rpm_now) and rpm_now > IDLE_MAX_RPM else None
    cands, filtered = _candidates(model, rpm_axis, map_axis, constraints, pulls_done, start_rpm)

    reach = calibration.reach(rpm_axis, map_axis)

    def gain_of(add: Mapping[str, F64], factor: float) -> tuple[float, F64]:
        scale = factor * reach
        after = {k: now[k] + scale * add[k] for k in ADDITIVE}
        per_cell = weights * np.maximum(cell_value(confidence(after, rule)) - value0, 0.0)
        return float(per_cell.sum()), per_cell

    chosen: list[_Cand] = []
    for cand in cands:
        factor = calibration.factor(cand.recipe.test_type)
        cand.gain, cand.per_cell = gain_of(cand.arrays, factor)
        if cand.gain > 0:
            chosen.append(cand)
    columns = _columns(
        model, rpm_axis, map_axis, constraints, filtered, calibration, now, value0, weights,
        reach, rule,
    )  # fmt: skip
    # A step is worth its time only if it gains at least MIN_STEP_RATE as fast as the best
    # test on offer (the opportunity cost of dyno time). Dropping slow steps makes the
    # best test faster, which raises the floor: a few rounds settle it.
    floor = MIN_STEP_GAIN
    for _ in range(HOLD_ROUNDS):
        holds = _holds(columns, model, start_rpm, floor)
        rates = [c.gain / (60.0 * c.minutes) for c in chosen + holds if c.minutes > 0]
        if not rates:
            break
        floor = MIN_STEP_RATE * max(rates) * HOLD_STEP_S
    holds = _holds(columns, model, start_rpm, floor, gain_of)
    chosen += holds
    suggestions = _rank(chosen, prio.ravel(), axes.shape[1], calibration, reach, weights)
    if not now["hits"].any():
        # Opening plan (no data at all): idle / low-MAP work first. A tuner checks that a
        # new engine idles and its wideband reads before loading it, and the engine is at
        # idle now, so that work is also the shortest move.
        suggestions = tuple(sorted(suggestions, key=lambda s: s.test_type != "idle_low_map"))
    if suggestions:
        suggestions = (_refined(suggestions[0], model, calibration, reach, op), *suggestions[1:])
    targets, instruction = _targets(conf0, prio, weights, rpm_axis, map_axis, constraints, op)
    return PlanView(
        suggestions=suggestions,
        filtered=tuple(filtered),
        targets=targets,
        instruction=instruction,
        prediction_error_pct=calibration.mean_error_pct,
    )


def _candidates(
    model: CandidateModel,
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    pulls_done: int,
    start_rpm: float | None,
) -> tuple[list[_Cand], list[FilteredTest]]:
    """Every non-hold candidate with its simulated data, and those the constraints removed."""
    cands: list[_Cand] = []
    filtered: list[FilteredTest] = []
    r_lo, _ = constraints.rpm_window(rpm_axis)
    m_lo, m_hi = constraints.map_window(map_axis)
    r_hi = top_rpm(model, rpm_axis, constraints)
    env = constraints.environment

    def offer(recipe: Recipe, reason: str | None = None) -> None:
        where = ENVIRONMENT[recipe.test_type]
        if reason is None and where != "both" and env not in ("both", where):
            reason = f"environment {env}: needs the {where}"
        if reason:
            filtered.append(FilteredTest(recipe.test_type, recipe.description, reason))
            return
        arrays = model.recipe(recipe)
        minutes = model.recipe_minutes(recipe, start_rpm)
        cands.append(_Cand(recipe, dict(arrays), minutes))

    start = max(WOT_START_RPM, r_lo)
    cap = constraints.max_pulls_per_session
    for stop in sorted({r_hi, min(r_hi, MIDRANGE_TOP_RPM)}, reverse=True):
        recipe = Recipe("wot_pull", start, stop)
        reason = None
        if stop - start < 1000.0:
            reason = (
                f"max_rpm: only {max(stop - start, 0):.0f} rpm left for a WOT pull, 1000 needed"
            )
        elif constraints.max_map_kpa is not None and constraints.max_map_kpa < 90.0:
            reason = f"max_map_kpa {constraints.max_map_kpa:g} < WOT MAP"
        elif cap is not None and pulls_done >= cap:
            reason = f"max_pulls_per_session {cap} reached ({pulls_done} done)"
        offer(recipe, reason)
    sweep_start = max(SWEEP_START_RPM, r_lo)
    if r_hi - sweep_start >= 1000.0:
        for m in map_axis[(map_axis >= max(m_lo, 40.0)) & (map_axis <= min(m_hi, 85.0))]:
            offer(Recipe("part_throttle_sweep", sweep_start, r_hi, (float(m),)))
    offer(Recipe("idle_low_map", 0.0, 0.0, (), IDLE_S))
    offer(Recipe("street_cruise", 0.0, 0.0, (), CRUISE_S))
    return cands, filtered


@dataclass(slots=True)
class _Column:
    """One rpm column's hold steps and what each would gain now."""

    rpm: float
    rows: tuple[float, ...]
    steps: tuple[dict[str, F64], ...]
    gains: F64
    factor: float
    test_type: str


_PAIRS: dict[tuple[ModelKey, float, tuple[float, ...]], tuple[Any, Any, dict[str, F64]]] = {}
_PAIRS_KEPT = 4096


def _pairs(
    model: CandidateModel, rpm: float, rows: tuple[float, ...]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, F64]]:
    """The column's steps as sparse (step, cell, values): a step touches only a few cells."""
    cache_key = (model.key, rpm, rows)
    hit = _PAIRS.get(cache_key)
    if hit is not None:
        return hit
    steps = model.column(rpm, rows)
    step_idx: list[npt.NDArray[np.int64]] = []
    cell_idx: list[npt.NDArray[np.int64]] = []
    vals: dict[str, list[F64]] = {k: [] for k in ADDITIVE}
    for i, step in enumerate(steps):
        touched = np.flatnonzero(step["hits"] + step["lam_weight"] > 0)
        step_idx.append(np.full(touched.size, i))
        cell_idx.append(touched)
        for k in ADDITIVE:
            vals[k].append(step[k][touched])
    out = (
        np.concatenate(step_idx).astype(np.int64),
        np.concatenate(cell_idx).astype(np.int64),
        {k: np.concatenate(v) for k, v in vals.items()},
    )
    if len(_PAIRS) >= _PAIRS_KEPT:
        _PAIRS.clear()
    _PAIRS[cache_key] = out
    return out


def _columns(
    model: CandidateModel,
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    filtered: list[FilteredTest],
    calibration: Calibration,
    now: Mapping[str, F64],
    value0: F64,
    weights: F64,
    reach: F64,
    rule: CoverageRule,
) -> list[_Column]:
    """Every column a hold may use, with each MAP step's gain (sparse, vectorised)."""
    out: list[_Column] = []
    if constraints.environment == "street":
        filtered.append(
            FilteredTest("steady_state", "steady-state holds", "environment street: needs a dyno")
        )
        return out
    m_lo, m_hi = constraints.map_window(map_axis)
    r_lo, _ = constraints.rpm_window(rpm_axis)
    r_hi = top_rpm(model, rpm_axis, constraints)
    rows = tuple(float(m) for m in map_axis if m_lo <= m <= m_hi and m <= 100.0)
    for rpm in rpm_axis:
        rpm = float(rpm)
        if rpm > r_hi or rpm < r_lo:
            limit = "max_rpm" if rpm > r_hi else "min_rpm"
            value = constraints.max_rpm if rpm > r_hi else constraints.min_rpm
            if value is not None:
                filtered.append(
                    FilteredTest(
                        "steady_state",
                        f"holds at {rpm:.0f} rpm",
                        f"{limit} {value:g} excludes {rpm:.0f}",
                    )
                )
            continue
        if not rows:
            continue
        test_type = "idle_low_map" if rpm <= IDLE_MAX_RPM else "steady_state"
        factor = calibration.factor(test_type)
        step_idx, cell_idx, vals = _pairs(model, rpm, rows)
        scale = factor * reach[cell_idx]
        after = {k: now[k][cell_idx] + scale * vals[k] for k in ADDITIVE}
        gained = weights[cell_idx] * np.maximum(
            cell_value(confidence(after, rule)) - value0[cell_idx], 0.0
        )
        gains = np.bincount(step_idx, gained, minlength=len(rows)).astype(np.float64)
        out.append(_Column(rpm, rows, model.column(rpm, rows), gains, factor, test_type))
    return out


def _holds(
    columns: list[_Column],
    model: CandidateModel,
    start_rpm: float | None,
    min_step_gain: float,
    gain_of: object = None,
) -> list[_Cand]:
    """One hold per column over the MAP steps gaining at least ``min_step_gain``.

    Without ``gain_of`` the hold's gain is the sum of its steps' (a fast estimate for
    choosing the floor); with it, the composed hold is valued exactly.
    """
    out: list[_Cand] = []
    floor = max(min_step_gain, MIN_STEP_GAIN)
    for col in columns:
        picked = np.flatnonzero(col.gains >= floor)
        if picked.size == 0:
            continue
        maps = tuple(col.rows[i] for i in picked)
        test_type = col.test_type
        if test_type == "idle_low_map" and max(maps) > IDLE_MAX_MAP_KPA:
            test_type = "steady_state"
        minutes = model.hold_minutes(start_rpm, col.rpm, len(maps))
        cand = _Cand(Recipe(test_type, col.rpm, col.rpm, maps), {}, minutes)
        if gain_of is None:
            cand.gain = float(col.gains[picked].sum())
        else:
            total = {k: np.zeros_like(col.steps[0][k]) for k in ADDITIVE}
            for n, i in enumerate(picked):
                extra = SETTLE_AT_FIRST_S / HOLD_STEP_S if n == 0 else 0.0
                for k in ADDITIVE:
                    total[k] += (1.0 + extra) * col.steps[int(i)][k]
            cand.arrays = total
            cand.gain, cand.per_cell = gain_of(total, col.factor)  # type: ignore[operator]
        out.append(cand)
    return out


def _rank(
    cands: list[_Cand],
    flat_prio: npt.NDArray[np.int64],
    n_rpm: int,
    calibration: Calibration,
    reach: F64,
    weights: F64,
) -> tuple[Suggestion, ...]:
    if not cands:
        return ()
    per_min = np.array([c.gain / max(c.minutes, 1e-6) for c in cands])
    best = float(per_min.max())
    order = np.argsort(-per_min, kind="stable")[:MAX_SUGGESTIONS]
    out = []
    for i in order:
        c = cands[int(i)]
        eff = float(round(per_min[i] / best, 4)) if best > 0 else 0.0
        by_level = [float(c.per_cell[flat_prio == p].sum()) for p in (1, 2, 3)]
        hits = calibration.factor(c.recipe.test_type) * reach * c.arrays["hits"]
        nz = np.flatnonzero(hits >= 0.5)
        expected = tuple((int(j // n_rpm), int(j % n_rpm), round(float(hits[j]), 1)) for j in nz)
        # cells the test should make trusted (completing a cell is worth >= half its weight)
        gained = np.flatnonzero((c.per_cell >= 0.5 * weights - 1e-9) & (weights > 0))
        r = c.recipe
        maps = r.map_steps or (0.0,)
        out.append(
            Suggestion(
                test_type=r.test_type,
                description=r.description,
                rpm_range=(r.rpm_lo, r.rpm_hi),
                map_range=(min(maps), max(maps)),
                minutes=round(c.minutes, 2),
                expected_gain=round(c.gain, 3),
                efficiency=eff,
                band="high" if eff >= 0.7 else "medium" if eff >= 0.4 else "low",
                priority=int(np.argmax(by_level)) + 1,
                cells=tuple((int(j // n_rpm), int(j % n_rpm)) for j in gained),
                expected_hits=expected,
                recipe=r,
            )
        )
    return tuple(out)


def _refined(
    top: Suggestion,
    model: CandidateModel,
    calibration: Calibration,
    reach: F64,
    op: Mapping[str, float],
) -> Suggestion:
    """The top suggestion's prediction re-simulated from where the engine is now.

    Candidates are ranked on models run from idle; the one the tuner is asked to run
    next gets its exact trajectory from the current operating point (rpm rounded to
    250, MAP to 5 kPa, so a steady engine hits the cache), because that prediction
    is the one checked against what the test then adds.
    """
    recipe = top.recipe
    if not isinstance(recipe, Recipe):
        return top
    rpm = float(op.get("rpm", math.nan))
    map_kpa = float(op.get("map_kpa", math.nan))
    if math.isfinite(rpm) and rpm > IDLE_MAX_RPM:
        start: float | None = round(rpm / 250.0) * 250.0
        start_map = round((map_kpa if math.isfinite(map_kpa) else 50.0) / 5.0) * 5.0
    else:
        start, start_map = None, 35.0
    arrays = model.recipe_from(recipe, start, start_map)
    hits = calibration.factor(recipe.test_type) * reach * arrays["hits"]
    n_rpm = model.key.axes.shape[1]
    expected = tuple(
        (int(j // n_rpm), int(j % n_rpm), round(float(hits[j]), 1))
        for j in np.flatnonzero(hits >= 0.5)
    )
    return replace(top, expected_hits=expected)


def _targets(
    conf0: F64,
    prio: npt.NDArray[np.int64],
    weights: F64,
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    op: Mapping[str, float],
) -> tuple[tuple[Target, ...], str]:
    """The most valuable cells not yet trusted (the heatmap's markers)."""
    lo_r, hi_r = constraints.rpm_window(rpm_axis)
    lo_m, hi_m = constraints.map_window(map_axis)
    ok = ((map_axis >= lo_m) & (map_axis <= min(hi_m, 100.0)))[:, None] & (
        (rpm_axis >= lo_r) & (rpm_axis <= hi_r)
    )[None, :]
    score = np.where(ok.ravel(), weights * (1.0 - conf0), 0.0)
    order = np.argsort(-score, kind="stable")[:5]
    n_rpm = rpm_axis.size
    targets = tuple(
        Target(
            map_index=int(j // n_rpm),
            rpm_index=int(j % n_rpm),
            rpm=float(rpm_axis[j % n_rpm]),
            map_kpa=float(map_axis[j // n_rpm]),
            priority=int(prio.ravel()[j]),
            deficit=int(round(100 * (1.0 - conf0[j]))),
        )  # fmt: skip
        for j in order
        if score[j] > 0
    )
    if not targets:
        return (), "all reachable cells are covered"
    t = targets[0]
    return targets, f"go to {t.rpm:.0f} rpm, {t.map_kpa:.0f} kPa"
