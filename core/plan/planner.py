"""The next-test planner: constraints, candidate tests, expected gain per minute, live targets.

Every candidate test (``core.plan.candidates``) is simulated through the vehicle's real
axes to get expected hits per cell, scaled by the fill-rate factor learned for
its test type (``core.plan.learning``). Its gain is what it would add towards the hit
target where hits are still missing, weighted by cell priority:

    gain = multiplier(test type) x sum_cells weight(priority) x min(expected, deficit) / target

so diminishing returns come from the deficit, not from a fudge factor, and a test
over already-covered cells is worth nothing. Efficiency is gain per minute
(setup and cool-down included) normalised to 0..1 over this plan's candidates.
Suggestions are ranked by the priority their gain mostly comes from, then by
efficiency: a tuner fills the knock-sensitive midrange before polishing the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.coverage.regions import Region, axis_arrays, priority_map, weight_map
from core.plan.candidates import Constraints, candidate_matrix
from core.plan.learning import Calibration
from core.plan.testmodels import MULTIPLIER, TestSpec, expected_hits
from core.plan.types import PlanView, Suggestion, Target

__all__ = ["Constraints", "band_for", "live_targets", "plan", "plan_arrays"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MAX_TARGETS = 5
"""Live target cells published per plan."""
DEFAULT_HIT_TARGET = 10


def band_for(efficiency: float) -> str:
    """``high`` (>= 0.7), ``medium`` (0.4-0.7) or ``low`` (< 0.4)."""
    if efficiency >= 0.7:
        return "high"
    return "medium" if efficiency >= 0.4 else "low"


def _hit_target(grid: Any, hit_target: int | None) -> int:
    if hit_target is not None:
        return int(hit_target)
    return int(getattr(grid, "hit_target", DEFAULT_HIT_TARGET))


def plan(
    grid_cumulative: Any,
    axes: TableAxes,
    regions: tuple[Region, ...] | list[Region],
    constraints: Constraints,
    calibration: Calibration | None,
    pulls_done: int,
    *,
    operating_point: Mapping[str, float] | None = None,
    hit_target: int | None = None,
) -> PlanView:
    """Rank the candidate tests against the vehicle's cumulative coverage.

    Args:
        grid_cumulative: ``CoverageGrid`` (needs ``hits`` and ``knock_events``).
        axes: The table axes the grid is binned into.
        regions: Priority regions.
        constraints: The vehicle's constraints.
        calibration: Learned fill rates (None: an unlearned vehicle).
        pulls_done: WOT pulls already done in this session.
        operating_point: Latest fused values (``rpm``, ``map_kpa``) for the live instruction.
        hit_target: Hits that make a cell covered (default: the grid's own).
    """
    return plan_arrays(
        np.asarray(grid_cumulative.hits),
        np.asarray(grid_cumulative.knock_events),
        axes,
        regions,
        constraints,
        calibration or Calibration(),
        pulls_done,
        _hit_target(grid_cumulative, hit_target),
        operating_point=operating_point,
    )


def plan_arrays(
    hits: npt.ArrayLike,
    knock_events: npt.ArrayLike | None,
    axes: TableAxes,
    regions: tuple[Region, ...] | list[Region],
    constraints: Constraints,
    calibration: Calibration,
    pulls_done: int,
    hit_target: int,
    *,
    operating_point: Mapping[str, float] | None = None,
    redline_rpm: float | None = None,
) -> PlanView:
    """:func:`plan` on plain arrays (rows = MAP, columns = rpm).

    ``redline_rpm``: the engine's limit when known (``candidates.candidate_specs``).
    """
    rpm_axis, map_axis = axis_arrays(axes)
    hits_arr = np.asarray(hits, dtype=np.float64)
    prio = priority_map(axes, regions, knock_events)
    weights = weight_map(prio).ravel()
    deficit = np.maximum(hit_target - hits_arr, 0.0).ravel()
    specs, model, filtered = candidate_matrix(
        axes,
        constraints,
        calibration.wot_map_kpa,
        calibration.sample_rate_hz,
        pulls_done,
        redline_rpm,
    )
    suggestions: list[Suggestion] = []
    if specs:
        factors = np.array([calibration.factor(s.test_type) for s in specs])
        model = _apply_leads(model, specs, calibration, axes)
        model = model * calibration.reach(rpm_axis, map_axis)[None, :]
        mult = np.array([MULTIPLIER[s.test_type] for s in specs])
        minutes = np.array([s.minutes for s in specs])
        filled = np.minimum(model * factors[:, None], deficit[None, :])
        per_cell = filled * weights[None, :] / hit_target
        gain = mult * per_cell.sum(axis=1)
        per_min = gain / minutes
        best = float(per_min.max())
        efficiency = per_min / best if best > 0 else np.zeros_like(per_min)
        flat_prio = prio.ravel()
        n_rpm = rpm_axis.size
        for i in np.nonzero(gain > 0)[0]:
            by_level = [float(per_cell[i, flat_prio == p].sum()) for p in (1, 2, 3)]
            level = int(np.argmax(by_level)) + 1
            cell_idx = np.nonzero(filled[i] >= 0.5)[0]
            spec = specs[i]
            eff = float(round(efficiency[i], 4))
            suggestions.append(
                Suggestion(
                    test_type=spec.test_type,
                    description=spec.description,
                    rpm_range=(spec.rpm_lo, spec.rpm_hi),
                    map_range=(spec.map_lo_kpa, spec.map_hi_kpa),
                    minutes=round(spec.minutes, 2),
                    expected_gain=round(float(gain[i]), 3),
                    efficiency=eff,
                    band=band_for(eff),
                    priority=level,
                    cells=tuple((int(c // n_rpm), int(c % n_rpm)) for c in cell_idx),
                )
            )
    suggestions.sort(key=lambda s: (s.priority, -s.efficiency, -s.expected_gain))
    targets, instruction = live_targets(
        hits_arr,
        prio,
        constraints,
        operating_point or {},
        axes=axes,
        hit_target=hit_target,
        wot_map_kpa=calibration.wot_map_kpa,
    )
    return PlanView(
        suggestions=tuple(suggestions),
        filtered=tuple(filtered),
        targets=targets,
        instruction=instruction,
        prediction_error_pct=calibration.mean_error_pct,
    )


def live_targets(
    grid: Any,
    priority_map: I64,
    constraints: Constraints,
    operating_point: Mapping[str, float],
    *,
    axes: TableAxes | None = None,
    hit_target: int | None = None,
    wot_map_kpa: float | None = None,
    limit: int = MAX_TARGETS,
) -> tuple[tuple[Target, ...], str]:
    """The top cells to visit now and one plain instruction from the operating point.

    Cells are scored by priority weight x deficit; only cells reachable under the
    constraints (and not above the MAP the engine reaches at WOT) are offered.
    Among equal scores the cell nearest the operating point comes first, so the
    instruction asks for the smallest move.

    Args:
        grid: A ``CoverageGrid`` (``hits``, ``axes``, ``hit_target``) or a hits array
            (then ``axes`` and ``hit_target`` are required).
        priority_map: Priority per cell from :func:`core.coverage.regions.priority_map`.
        constraints: The vehicle's constraints.
        operating_point: Latest fused values; ``rpm`` and ``map_kpa`` are used.
        axes: Table axes when ``grid`` is a plain array.
        hit_target: Hits per covered cell when ``grid`` is a plain array.
        wot_map_kpa: MAP at wide-open throttle; rows above it are unreachable.
        limit: Number of targets.
    """
    if isinstance(grid, np.ndarray):
        hits = grid.astype(np.float64)
        if axes is None:
            raise ValueError("live_targets needs axes when given a plain hits array")
    else:
        hits = np.asarray(grid.hits, dtype=np.float64)
        axes = axes if axes is not None else grid.axes
    target = _hit_target(grid, hit_target)
    rpm_axis, map_axis = axis_arrays(axes)
    deficit = np.maximum(target - hits, 0.0)
    reachable = _reachable(rpm_axis, map_axis, constraints, wot_map_kpa)
    score = np.where(reachable, weight_map(priority_map) * deficit, 0.0)
    rpm_now = float(operating_point.get("rpm", np.nan))
    map_now = float(operating_point.get("map_kpa", np.nan))
    rpm_step = float(np.mean(np.diff(rpm_axis))) if rpm_axis.size > 1 else 1.0
    map_step = float(np.mean(np.diff(map_axis))) if map_axis.size > 1 else 1.0
    if np.isfinite(rpm_now) and np.isfinite(map_now):
        dist = np.hypot(
            (rpm_axis[None, :] - rpm_now) / rpm_step, (map_axis[:, None] - map_now) / map_step
        )
    else:
        dist = np.zeros_like(score)
    here = _own_cell(rpm_axis, map_axis, rpm_now, map_now)
    if here is not None and score[here] > 0:
        # the tuner is filling the cell the engine is in: it stays first until covered (its
        # shrinking deficit had ranked it under untouched cells after two hits, and the
        # line sent him on from a cell it had asked him to fill)
        score = score.copy()
        score[here] = float(score.max()) + 1.0
    rows, cols = np.nonzero(score > 0)
    order = np.lexsort((dist[rows, cols], -score[rows, cols]))[:limit]
    targets = tuple(
        Target(
            map_index=int(r),
            rpm_index=int(c),
            rpm=float(rpm_axis[c]),
            map_kpa=float(map_axis[r]),
            priority=int(priority_map[r, c]),
            deficit=int(np.ceil(deficit[r, c])),
        )
        for r, c in zip(rows[order], cols[order], strict=True)
    )
    if not targets:
        return (), "all reachable cells are covered"
    return targets, _instruction(targets[0], rpm_now, map_now, rpm_step, map_step)


def _own_cell(
    rpm_axis: F64, map_axis: F64, rpm_now: float, map_now: float
) -> tuple[int, int] | None:
    """(map index, rpm index) of the cell the engine is in (within half a step), or None."""
    if not (np.isfinite(rpm_now) and np.isfinite(map_now)) or not rpm_axis.size:
        return None
    c = int(np.argmin(np.abs(rpm_axis - rpm_now)))
    r = int(np.argmin(np.abs(map_axis - map_now)))
    rpm_half = 0.5 * float(np.min(np.diff(rpm_axis))) if rpm_axis.size > 1 else np.inf
    map_half = 0.5 * float(np.min(np.diff(map_axis))) if map_axis.size > 1 else np.inf
    if abs(rpm_axis[c] - rpm_now) > rpm_half or abs(map_axis[r] - map_now) > map_half:
        return None
    return r, c


def _reachable(
    rpm_axis: F64, map_axis: F64, constraints: Constraints, wot_map_kpa: float | None
) -> npt.NDArray[np.bool_]:
    lo_r, hi_r = constraints.rpm_window(rpm_axis)
    lo_m, hi_m = constraints.map_window(map_axis)
    if wot_map_kpa is not None and map_axis.size > 1:
        hi_m = min(hi_m, wot_map_kpa + 0.5 * float(np.min(np.diff(map_axis))))
    cols = (rpm_axis >= lo_r) & (rpm_axis <= hi_r)
    rows = (map_axis >= lo_m) & (map_axis <= hi_m)
    return np.asarray(rows[:, None] & cols[None, :], dtype=np.bool_)


def _instruction(
    t: Target, rpm_now: float, map_now: float, rpm_step: float, map_step: float
) -> str:
    if not (np.isfinite(rpm_now) and np.isfinite(map_now)):
        return f"go to {t.rpm:.0f} rpm, {t.map_kpa:.0f} kPa ({t.deficit} hits to go)"
    rpm_ok = abs(rpm_now - t.rpm) <= 0.5 * rpm_step
    map_ok = abs(map_now - t.map_kpa) <= 0.5 * map_step
    if rpm_ok and map_ok:
        return f"hold {t.rpm:.0f} rpm at {t.map_kpa:.0f} kPa ({t.deficit} hits to go)"
    rpm_part = (
        f"hold {t.rpm:.0f} rpm"
        if rpm_ok
        else f"{'raise' if t.rpm > rpm_now else 'lower'} rpm to {t.rpm:.0f}"
    )
    map_part = (
        f"hold MAP at {t.map_kpa:.0f} kPa"
        if map_ok
        else f"{'raise' if t.map_kpa > map_now else 'lower'} MAP to {t.map_kpa:.0f} kPa"
    )
    return f"{rpm_part}, {map_part}"


def _apply_leads(
    model: F64, specs: tuple[TestSpec, ...], calibration: Calibration, axes: TableAxes
) -> F64:
    """Re-simulate the candidates whose test type has a learned lead (settling) time."""
    leads = {t: calibration.lead_s(t) for t in {s.test_type for s in specs}}
    if not any(v > 0 for v in leads.values()):
        return model
    out = model.copy()
    rate = calibration.sample_rate_hz
    for i, spec in enumerate(specs):
        lead = leads[spec.test_type]
        if lead > 0:
            out[i] = expected_hits(spec, axes, rate, lead)
    return out
