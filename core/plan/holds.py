"""Steady-state holds composed per rpm column from the per-step simulation.

Split out of ``simplan``: composing a hold is its own decision. Each MAP step of
a column is simulated once (cached as sparse (step, cell, value) triples, since
a step touches only a few cells) and valued against the current grid; a hold
takes exactly the steps that still gain at least the floor, so a column with
three rows short of data is a 9-second hold, not a 40-second one.

Steps are live (``CandidateModel.live_column``): the operator moves on when the
cell turns trusted, at most ``HOLD_STEP_S``, so each step is modelled with the data
and seconds it takes until then.

Decision: a hold's MAP steps run from the highest down. Opening the throttle for the
next step up fires the ECU's accel enrichment, whose decay the filters wait out
(``accel_enrich``, ``transient_holdoff``) before the step's cell gets data; closing
it a little fires none. Watched live on the simulator, a step down settled in 1.2 s
where a step up took 2.2 s (V-twin, 4500 rpm, 50-75 kPa; the car at 3000 rpm
1.2-1.7 s against 2.4 s), and the opening step rides up on the throttle anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.plan.candidates import Constraints
from core.plan.learning import Calibration
from core.plan.recipe import IDLE_MAX_MAP_KPA, IDLE_MAX_RPM, Recipe, top_rpm
from core.plan.testsim import ADDITIVE, HOLD_STEP_S, CandidateModel, ModelKey
from core.plan.types import FilteredTest
from core.plan.value import Candidate, confidence, value_gain

F64 = npt.NDArray[np.float64]

MIN_STEP_GAIN = 0.25
"""A MAP step joins a hold when it raises weighted confidence by at least this much
(a quarter of a priority-3 cell): below that the 3 s it costs are better spent elsewhere."""
MIN_STEP_S = 0.5
"""Shortest a step is charged in the floor (a cell trusted at once still costs the MAP step)."""
HOLD_FLOOR_ROW_KPA = 5.0
"""A step this far under the engine's torque floor (``CandidateModel.min_hold_map_kpa``)
may still be the nearest row to a MAP the engine holds; further under, none is."""
SETTLE_AT_FIRST_S = 2.0
"""The operator settles at the first MAP step for this long (``transition_s``'s settle):
the first step of a hold has that much of its data before the step's own time starts."""


@dataclass(slots=True)
class HoldColumn:
    """One rpm column's hold steps and what each would gain now."""

    rpm: float
    rows: tuple[float, ...]
    steps: tuple[dict[str, F64], ...]
    seconds: tuple[float, ...]
    """Each step's live length (until its cell is trusted, at most ``HOLD_STEP_S``)."""
    gains: F64
    factor: float
    test_type: str


_PAIRS: dict[
    tuple[ModelKey, float, tuple[float, ...], CoverageRule], tuple[Any, Any, dict[str, F64]]
] = {}
_PAIRS_KEPT = 4096


def _pairs(
    model: CandidateModel, rpm: float, rows: tuple[float, ...], rule: CoverageRule
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, F64]]:
    """The column's steps as sparse (step, cell, values): a step touches only a few cells."""
    cache_key = (model.key, rpm, rows, rule)
    hit = _PAIRS.get(cache_key)
    if hit is not None:
        return hit
    steps, _ = model.live_column(rpm, rows, rule)
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


def hold_columns(
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
    top_kpa: float = 100.0,
) -> list[HoldColumn]:
    """Every column a hold may use, with each MAP step's gain (sparse, vectorised).

    ``top_kpa``: the highest MAP step (the opening work holds up to ``IDLE_MAX_MAP_KPA``).
    """
    out: list[HoldColumn] = []
    if constraints.environment == "street":
        filtered.append(
            FilteredTest("steady_state", "steady-state holds", "environment street: needs a dyno")
        )
        return out
    m_lo, m_hi = constraints.map_window(map_axis)
    r_lo, _ = constraints.rpm_window(rpm_axis)
    r_hi = top_rpm(model, rpm_axis, constraints)
    # steps from the highest MAP down (see the module docstring)
    rows = tuple(float(m) for m in map_axis[::-1] if m_lo <= m <= m_hi and m <= top_kpa)
    # a live step whose cell is trusted ends at once: whatever its modelled data would
    # add around it (the settle, the neighbours) never comes, so it is worth nothing
    trusted = np.append(confidence(now, rule) >= 1.0, False)  # [-1]: off the table
    lugged: list[float] = []
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
        factor = calibration.model_factor(test_type)
        step_idx, cell_idx, vals = _pairs(model, rpm, rows, rule)
        scale = factor * reach[cell_idx]
        after = {k: now[k][cell_idx] + scale * vals[k] for k in ADDITIVE}
        gained = value_gain(weights[cell_idx], value0[cell_idx], confidence(after, rule))
        gains = np.bincount(step_idx, gained, minlength=len(rows)).astype(np.float64)
        steps, seconds = model.live_column(rpm, rows, rule)
        own = model.key.axes.flat_index(np.full(len(rows), rpm), np.asarray(rows, np.float64))
        # Under the engine's torque floor a step is no hold: stepping down to it, the rpm
        # sags while MAP dips by (the operator's 20 kPa at 2500 rpm on the V-twin, whose
        # floor there is 27 kPa: the cell nearest the floor is still held, one row under).
        floor = model.min_hold_map_kpa(rpm) - HOLD_FLOOR_ROW_KPA
        gains[~_reached(own, steps, rule) | trusted[own] | (np.asarray(rows) < floor)] = 0.0
        if constraints.lug_rpm and rpm < constraints.lug_rpm:
            lugging = np.asarray(rows) > IDLE_MAX_MAP_KPA
            if np.any(gains[lugging] > 0.0):
                lugged.append(rpm)
            gains[lugging] = 0.0
        out.append(HoldColumn(rpm, rows, steps, seconds, gains, factor, test_type))
    if lugged:
        filtered.append(
            FilteredTest(
                "steady_state",
                f"holds above {IDLE_MAX_MAP_KPA:g} kPa at {', '.join(f'{r:.0f}' for r in lugged)} rpm",
                f"lug_rpm {constraints.lug_rpm:g}: loaded there, the engine lugs on the drum",
            )
        )
    return out


def _reached(
    own: npt.NDArray[np.int64], steps: tuple[dict[str, F64], ...], rule: CoverageRule
) -> npt.NDArray[np.bool_]:
    """Which MAP steps the engine really holds (their own cell, ``own``, flat, gets data).

    A step's own cell must get the rule's hit target and at least half its settled
    dwell from the step itself.
    Below the lowest MAP the engine holds at an rpm (closed throttle: 31 kPa at 1000 rpm
    on the V-twin, where the dyno cannot even hold the rpm) a step's data lands in other
    cells, the idle's mostly, while the hold would name "MAP 20 kPa" for its 10 s. Stepping
    down from 25 kPa at 1500 rpm the V-twin passes 20 kPa for a moment as the rpm sags:
    12 hits but 0.24 s of dwell in a 10-s step that never made the cell trusted. Such a
    step is never offered; the cells it fed are the idle's and the reachable steps'.
    (Half the dwell: the step before it leaves its cell some on the way down.)
    """
    return np.array(
        [
            c >= 0
            and float(step["hits"][c]) >= rule.hit_target
            and float(step["dwell_s"][c]) >= 0.5 * rule.min_dwell_s
            for c, step in zip(own, steps, strict=True)
        ],
        dtype=bool,
    )


def compose_holds(
    columns: list[HoldColumn],
    model: CandidateModel,
    start_rpm: float | None,
    min_step_gain: float,
    gain_of: object = None,
) -> list[Candidate]:
    """One hold per column over the MAP steps gaining at least ``min_step_gain``.

    Without ``gain_of`` the hold's gain is the sum of its steps' (a fast estimate for
    choosing the floor); with it, the composed hold is valued exactly.
    """
    out: list[Candidate] = []
    for col in columns:
        # a step's floor grows with its live length: a cell that takes 8 s to settle
        # must be worth 8 s of the best test's rate (min_step_gain is per HOLD_STEP_S)
        step_s = np.maximum(np.asarray(col.seconds), MIN_STEP_S)
        cost = step_s / HOLD_STEP_S
        # A step left out now costs its time AND a new entry to this column later (at
        # the least: the settle at the step and the release): the floor is discounted
        # by that share, as a serpentine's row is (``sweeps.compose_sweep``).
        entry_s = 60.0 * model.hold_minutes(col.rpm, col.rpm, 0.0)
        cost = cost * step_s / (step_s + entry_s)
        floor = np.maximum(min_step_gain * cost, MIN_STEP_GAIN)
        picked = np.flatnonzero(col.gains >= floor)
        if picked.size == 0:
            continue
        maps = tuple(col.rows[i] for i in picked)
        test_type = col.test_type
        if test_type == "idle_low_map" and max(maps) > IDLE_MAX_MAP_KPA:
            test_type = "steady_state"
        # A hold starting at a later row settles there: the settle is data for that
        # cell (scaled from its live window) and its own time is that much shorter.
        # (Row 0's simulated window already starts with the ride-up and settle.)
        head = int(picked[0])
        head_s = col.seconds[head]
        scale = (SETTLE_AT_FIRST_S + head_s) / head_s if head > 0 and head_s > 0 else 1.0
        hold_s = sum(col.seconds[int(i)] for i in picked)
        if head > 0:
            hold_s -= min(head_s, SETTLE_AT_FIRST_S)
        minutes = model.hold_minutes(start_rpm, col.rpm, hold_s, maps[0])
        cand = Candidate(Recipe(test_type, col.rpm, col.rpm, maps), {}, minutes)
        if gain_of is None:
            cand.gain = float(col.gains[picked].sum())
        else:
            total = {k: np.zeros_like(col.steps[0][k]) for k in ADDITIVE}
            for i in picked:
                for k in ADDITIVE:
                    total[k] += (scale if i == head else 1.0) * col.steps[int(i)][k]
            cand.arrays = total
            cand.gain, cand.per_cell = gain_of(total, col.factor)  # type: ignore[operator]
        out.append(cand)
    return out
