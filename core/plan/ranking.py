"""Turn valued candidates into the plan the tuner sees: ranked suggestions and target cells.

Split out of ``simplan``: ranking by gain per minute, re-simulating the top
suggestion from the current operating point (the prediction that is checked
afterwards), and choosing the heatmap's target cells are presentation of a
result already computed, separate from generating and valuing candidates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.plan.candidates import Constraints
from core.plan.learning import Calibration
from core.plan.recipe import Recipe, running_rpm
from core.plan.testsim import ADDITIVE, CandidateModel
from core.plan.types import Suggestion, Target
from core.plan.value import Candidate

F64 = npt.NDArray[np.float64]

MAX_SUGGESTIONS = 40
HOLD_TYPES = ("steady_state", "idle_low_map")


def rank_suggestions(
    cands: list[Candidate],
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
        hits = calibration.model_factor(c.recipe.test_type) * reach * c.arrays["hits"]
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


def refine_top(
    top: Suggestion,
    model: CandidateModel,
    calibration: Calibration,
    reach: F64,
    op: Mapping[str, float],
    rule: CoverageRule | None = None,
    now: Mapping[str, F64] | None = None,
) -> Suggestion:
    """The top suggestion's prediction re-simulated from where the engine is now.

    Candidates are ranked on models run from idle; the one the tuner is asked to run
    next gets its exact trajectory from the current operating point (rpm rounded to
    250, MAP to 5 kPa, so a steady engine hits the cache), because that prediction
    is the one checked against what the test then adds. With ``rule`` a hold's steps
    end when their cell is trusted, as the live operator runs them, and a walk's
    settle at its first stop too.
    """
    recipe = top.recipe
    if not isinstance(recipe, Recipe):
        return top
    rpm = running_rpm(op, np.asarray(model.key.axes.rpm, dtype=np.float64))
    map_kpa = float(op.get("map_kpa", math.nan))
    if rpm is not None:
        start: float | None = round(rpm / 250.0) * 250.0
        start_map = round((map_kpa if math.isfinite(map_kpa) else 50.0) / 5.0) * 5.0
    else:
        start, start_map = None, 35.0
    minutes = top.minutes
    live = recipe.test_type in HOLD_TYPES and recipe.map_steps
    if rule is not None and (live or recipe.hold_steps or recipe.columns):
        # a step ends when its cell is trusted: a cell that already has data (a ride
        # up the range passes the cells above it) ends its step sooner; so does the
        # settle at a MAP-ramp walk's first stop (``sim.testsim.recipe_segments``)
        arrays, seconds = model.hold_from(
            recipe, start, start_map, rule, _step_cells(model, recipe, now)
        )
        minutes = round(seconds / 60.0, 2)
    else:
        arrays = model.recipe_from(recipe, start, start_map)
    hits = calibration.model_factor(recipe.test_type) * reach * arrays["hits"]
    n_rpm = model.key.axes.shape[1]
    expected = tuple(
        (int(j // n_rpm), int(j % n_rpm), round(float(hits[j]), 1))
        for j in np.flatnonzero(hits >= 0.5)
    )
    return replace(top, expected_hits=expected, minutes=minutes)


def _step_cells(
    model: CandidateModel, recipe: Recipe, now: Mapping[str, F64] | None
) -> dict[int, tuple[float, ...]] | None:
    """The data the hold's step cells already have (cell -> ADDITIVE values), or None."""
    if now is None:
        return None
    axes = model.key.axes
    rpm_axis = np.asarray(axes.rpm, dtype=np.float64)
    map_axis = np.asarray(axes.map_kpa, dtype=np.float64)
    # a serpentine's closing hold is held where its last row ends
    rpm, steps = (
        (recipe.end_rpm, recipe.hold_steps)
        if recipe.hold_steps
        else (recipe.rpm_lo, recipe.map_steps)
    )
    c = int(np.argmin(np.abs(rpm_axis - rpm)))
    out = {}
    for m in steps:
        cell = int(np.argmin(np.abs(map_axis - m))) * rpm_axis.size + c
        values = tuple(round(float(now[k][cell]), 3) for k in ADDITIVE)
        if any(values):
            out[cell] = values
    return out or None


def target_cells(
    conf0: F64,
    prio: npt.NDArray[np.int64],
    weights: F64,
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    op: Mapping[str, float],
    reachable: npt.NDArray[np.bool_] | None = None,
    first: F64 | None = None,
) -> tuple[tuple[Target, ...], str]:
    """The most valuable cells not yet trusted (the heatmap's markers).

    ``reachable`` (flat): the cells some test on offer puts data in. Without it every cell
    inside the constraints is a target, including ones above the redline or below the
    engine's closed-throttle MAP ("go to 6500 rpm, 95 kPa" on a V-twin that stops at 5800).
    ``first`` (flat): for the cells the top suggestion fills, how far each is from where
    it begins (``inf`` elsewhere); they are listed before the rest, nearest first, so the
    targets and the "go to" line lead where the list's first test does (the opening plan
    listed "hold 1000 rpm: MAP 40 35 30 kPa" first under "target cells 2000/50, ...,
    from idle: go to 2000 rpm, 50 kPa").
    """
    lo_r, hi_r = constraints.rpm_window(rpm_axis)
    lo_m, hi_m = constraints.map_window(map_axis)
    ok = (
        ((map_axis >= lo_m) & (map_axis <= min(hi_m, 100.0)))[:, None]
        & ((rpm_axis >= lo_r) & (rpm_axis <= hi_r))[None, :]
    ).ravel()
    if reachable is not None and reachable.size == ok.size:
        ok = ok & reachable
    score = np.where(ok, weights * (1.0 - conf0), 0.0)
    lead = np.full(score.size, np.inf)
    if first is not None and first.size == score.size:
        lead = np.where(score > 0, first, np.inf)
    order = np.lexsort((-score, lead))[:5]
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
