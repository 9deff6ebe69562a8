"""MAP ramps: one slow roll of the throttle per rpm column, the absorber stepping between them.

A column hold steps MAP and pays, per column, a move to it, a settle and a release;
a row serpentine pays one turn per row, but ramping rpm up at light load asks the
engine for torque it does not have. MAP ramps walk the midrange column by column
from the top rpm down: the absorber holds a column while the operator rolls the
throttle from one end of the MAP span to the other, each cell passed in the rule's
settled dwell with a margin (:data:`DWELL_MARGIN`), then the absorber brakes the
engine to the next column at that MAP and the operator rolls back the other way.
Every turn is a brake at a steady throttle, and a roll is far slower than the ECU's
accel-enrichment threshold (~5 kPa/s against ~30 on the simulator's ECU, and a
throttle rate well under the ``accel_enrich`` filter's), so rolling on keeps its
samples as rolling off does. What the walk adds is simulated through the pipeline
(``CandidateModel.ramps``, every column both ways), so a column the engine cannot
follow is worth what it really adds.

On the V-twin from empty, the walk over 2000-4500 rpm at 50-95 kPa makes the 54
midrange cells trusted in ~75 s of dyno time, where the column holds take ~95 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.plan.candidates import Constraints
from core.plan.holds import MIN_STEP_GAIN
from core.plan.learning import Calibration
from core.plan.recipe import Recipe, table_window
from core.plan.sweeps import FROM_RPM
from core.plan.testsim import CandidateModel
from core.plan.value import Candidate

F64 = npt.NDArray[np.float64]

TEST_TYPE = "map_ramps"
DWELL_MARGIN = 1.1
"""Each cell is passed in the rule's settled dwell times this: the lambda transport delay
and the samples at a cell's edges eat into the pass."""
MIN_MAP_KPA = 45.0
"""The lowest row a ramp rolls to (below it the midrange engine cannot be held loaded)."""
TOP_MARGIN_KPA = 3.5
"""A ramp's top stays this far under the engine's wide-open MAP: nearer, the throttle is
most of the way open for the last kPa and the operator can no longer roll it steadily."""
MIN_COLUMNS = 2
"""One column alone is a hold (the hold composer offers it)."""
AT_COLUMN_RPM = 150.0
"""The engine within this of a column is on it (the instruction's tolerance)."""
MAP_TOL_KPA = 2.5
"""A row within this of the engine's MAP is the one it is in (half a 5-kPa row)."""
MIN_COLUMN_CELLS = 2
"""A column joins the walk when it still needs at least this many cells of the span."""
PASS_KPA_S = 15.0
"""How fast a ramp rolls past a cell whose data is already trusted (a street session
trusts much of the light-load midrange): half the simulator ECU's MAP-rate accel trigger
(30 kPa/s) and a throttle rate far under the ``accel_enrich`` filter's, so the next cell
that needs data is entered clean. A 5-kPa cell is passed in 0.33 s instead of 1.1."""
PASS_TPS_SHARE = 0.5
"""...and the throttle at no more than this share of the ``accel_enrich`` filter's rate
(``FilterLimits.max_tps_rate_pct_s``, 40 %/s by default; it counts a fast closing too)."""


def ramp_walks(
    model: CandidateModel,
    constraints: Constraints,
    rule: CoverageRule,
    calibration: Calibration,
    weights: F64,
    conf0: F64,
    start_rpm: float | None,
    gain_of: Callable[[Mapping[str, F64], float], tuple[float, F64]],
    start_map: float = math.nan,
    conf_of: Callable[[Mapping[str, F64], float], F64] | None = None,
) -> list[Candidate]:
    """The MAP-ramp walks on offer now, valued exactly: without a lead, and with one.

    The span is the rows from the lowest to the highest cell still needing data in
    the columns from :data:`core.plan.sweeps.FROM_RPM` to the engine's top rpm (a
    column joins with at least :data:`MIN_COLUMN_CELLS` such cells, and stays when
    its ramp gains that many steps' worth, :data:`core.plan.holds.MIN_STEP_GAIN`).
    The columns above the walk whose top cell still needs data are its lead: held on
    the way down the top row (a stop costs a cell and a turn where a hold there costs a
    move, a settle and a release, but the walk then rides up higher). Both are offered;
    the route chooses.

    ``conf0``: each cell's confidence now; a cell part-way there is passed in what it
    lacks (:func:`_cell_times`). ``conf_of(add, factor)``: the confidence with ``add``
    on top (the planner's scaling), for what the ride up to the walk leaves in its top
    row (:func:`_ride`); without it the ride is not counted.
    """
    if constraints.environment == "street":
        return []
    win = table_window(model, constraints)
    rpm_axis, map_axis, r_lo, cap = win.rpm_axis, win.map_axis, win.rpm_lo, win.rpm_cap
    m_lo, m_hi = win.map_lo, win.map_hi
    col_idx = [
        int(c) for c in np.flatnonzero((rpm_axis >= max(FROM_RPM, r_lo)) & (rpm_axis <= cap))
    ][::-1]
    if len(col_idx) < MIN_COLUMNS:
        return []
    top_kpa = min(model.wot_map_kpa(float(rpm_axis[c])) for c in col_idx) - TOP_MARGIN_KPA
    row_idx = [
        int(r)
        for r in np.flatnonzero((map_axis >= max(m_lo, MIN_MAP_KPA)) & (map_axis <= m_hi))
        if map_axis[r] < top_kpa
    ]
    if len(row_idx) < 2:
        return []
    n_rpm = rpm_axis.size
    need = (weights > 0) & (conf0 < 1.0)
    needed = np.array([[need[r * n_rpm + c] for r in row_idx] for c in col_idx], dtype=bool)
    joining = needed.sum(axis=1) >= MIN_COLUMN_CELLS
    if joining.sum() < MIN_COLUMNS:
        return []
    rows_needed = np.flatnonzero(needed[joining].any(axis=0))
    rows = row_idx[int(rows_needed[0]) : int(rows_needed[-1]) + 1]
    if len(rows) < 2:
        return []
    edges = _edges(map_axis, rows, top_kpa)
    cell_s = round(max(rule.min_dwell_s, 0.1) * DWELL_MARGIN, 2)
    columns = tuple(float(rpm_axis[c]) for c, j in zip(col_idx, joining, strict=True) if j)
    down, up = model.ramps(columns, edges, cell_s)
    factor = calibration.model_factor(TEST_TYPE)
    kept = [
        columns[i]
        for i in range(len(columns))
        if max(gain_of(down[i], factor)[0], gain_of(up[i], factor)[0])
        >= MIN_COLUMN_CELLS * MIN_STEP_GAIN
    ]
    if len(kept) < MIN_COLUMNS:
        return []
    top_row = rows[-1]
    lead = tuple(
        float(rpm_axis[c]) for c in col_idx if rpm_axis[c] > kept[0] and need[top_row * n_rpm + c]
    )
    steps = tuple(float(map_axis[r]) for r in reversed(rows))
    leads: tuple[tuple[float, ...], ...] = ((), lead) if lead else ((),)
    rolling = _rolling_on(start_rpm, start_map, kept[0], rows, map_axis, need, col_idx, rpm_axis)
    if rolling:
        # the engine is on the walk's first column with nothing left under it (a walk
        # under way, rolling on): the rest of the walk goes on from here, no lead
        steps, leads = steps[::-1], ((),)
    out = []
    for with_lead in leads:
        recipe = Recipe(
            TEST_TYPE, min(kept), max(kept), steps,
            columns=tuple(kept), map_edges=edges, cell_s=cell_s, lead=with_lead,
        )  # fmt: skip
        ride = None if rolling else _ride(model, recipe, start_rpm, rows[-1])
        conf = conf0 if ride is None or conf_of is None else conf_of(ride, factor)
        done = np.where(need, np.clip(conf, 0.0, 1.0), 1.0)
        have = [[float(done[r * n_rpm + _column(rpm_axis, c)]) for r in rows] for c in kept]
        recipe = replace(
            recipe,
            cell_times=_cell_times(
                model, kept, edges, cell_s, have, rule.min_dwell_s, steps[0] >= steps[-1]
            ),
        )
        uniform = model.recipe(replace(recipe, cell_times=()))
        arrays = _rolled_past(uniform, recipe, rows, rpm_axis, ride)
        cand = Candidate(recipe, arrays, model.recipe_minutes(recipe, start_rpm))
        cand.gain, cand.per_cell = gain_of(arrays, factor)
        if cand.gain > 0.0:
            out.append(cand)
    return out


def _cell_times(
    model: CandidateModel,
    columns: list[float],
    edges: tuple[float, ...],
    cell_s: float,
    done: list[list[float]],
    min_dwell_s: float,
    first_down: bool = True,
) -> tuple[tuple[float, ...], ...]:
    """Seconds through each cell (ascending) of each column, or () when every cell takes ``cell_s``.

    ``done``: each cell's confidence now (1 for a cell trusted or not wanted). A cell
    that needs nothing is rolled past at :data:`PASS_KPA_S`, and no faster than
    :data:`PASS_TPS_SHARE` of the ``accel_enrich`` filter's throttle rate: near wide-open
    the throttle moves far for a few kPa (the V-twin at 2500 rpm: 26 -> 38 % over the top
    cell's 5 kPa), and a pass at 15 kPa/s there closed it at ~35 %/s; the filter's
    hold-off after that ate into the next cell, which then fell short (0.96 s of 1).

    A cell part-way there gets the dwell it still lacks plus the same edge allowance a
    full pass has (``cell_s - min_dwell_s``), never under that pass: the car's ride up
    to 7000 rpm at 95 kPa left 0.8 s in each 95-kPa cell it passed, and the walk later
    rolled through each of them for the full 1.1 s, 0.9 s of it on a trusted cell.
    """
    limit = PASS_TPS_SHARE * model.key.limits.max_tps_rate_pct_s
    edge_s = max(cell_s - min_dwell_s, 0.0)
    out: list[tuple[float, ...]] = []
    for rpm, have in zip(columns, done, strict=True):
        tps = [model.throttle_pct(rpm, e) for e in edges]
        column = []
        for k in range(len(edges) - 1):
            pass_s = max(
                (edges[k + 1] - edges[k]) / PASS_KPA_S,
                abs(tps[k + 1] - tps[k]) / max(limit, 1e-6),
            )
            left_s = (1.0 - have[k]) * min_dwell_s + edge_s if have[k] < 1.0 else 0.0
            column.append(round(min(cell_s, max(pass_s, left_s)), 3))
        down = (len(out) % 2 == 0) == first_down
        paced = tuple(column)
        for k in range(len(column)):
            b = k + 1 if down else k - 1
            if have[k] >= 1.0 or not 0 <= b < len(column) or not 0.0 < paced[b] < cell_s:
                continue
            if abs(tps[b + 1] - tps[b]) / paced[b] >= 0.9 * limit:
                # entered straight from a pass with the throttle at its pass limit (near
                # wide-open): the throttle was still moving fast as the cell began, and
                # its first samples went to the filters' hold-off and to the cell behind
                # (the V-twin's 2500/85 after a 0.6-s pass of 95 kept 0.98 s of its 1.1);
                # it gets a second edge allowance
                column[k] = round(column[k] + edge_s, 3)
        out.append(tuple(column))
    out = _turn_short(out, done, first_down)
    if all(t >= cell_s for times in out for t in times):
        return ()
    return tuple(out)


def _turn_short(
    times: list[tuple[float, ...]], done: list[list[float]], first_down: bool
) -> list[tuple[float, ...]]:
    """``times`` with the cells each column need not pass at 0 s: its turns come early.

    A bottom turn is made in the lowest cell either column beside it still needs, a top
    turn in the highest, and the last column ends at its last cell needing data; the
    cells beyond are not passed at all (a turn holds one MAP, so a column ends where the
    next one begins). After a street session the car's walk rolled through the trusted
    50-75 kPa cells of the 2000-3500 rpm columns at both of their bottom turns, ~8 s of
    its 39 s on cells it had no use for.
    """
    n = len(times)
    if n == 0:
        return times
    cells = len(times[0])
    needs = [[k for k in range(cells) if done[i][k] < 1.0] for i in range(n)]

    def down(i: int) -> bool:
        return (i % 2 == 0) == first_down

    cur = cells - 1 if first_down else 0
    out = []
    for i in range(n):
        pair = [k for j in (i, i + 1) if j < n for k in needs[j]] if i + 1 < n else needs[i]
        if down(i):
            end = min([cur, *(k for k in pair if k <= cur)]) if pair else cur
        else:
            end = max([cur, *(k for k in pair if k >= cur)]) if pair else cur
        lo, hi = min(cur, end), max(cur, end)
        out.append(tuple(t if lo <= k <= hi else 0.0 for k, t in enumerate(times[i])))
        cur = end
    return out


def _ride(
    model: CandidateModel, recipe: Recipe, start_rpm: float | None, top_row: int
) -> dict[str, F64] | None:
    """What the ride up to the walk's first stop leaves in the top-row cells it passes, or None.

    The walk starts at its top cell's centre (``Recipe.lead_kpa``'s MAP, lead or not),
    and the operator rides up to it at that MAP (``sim.scenarios.ride_kpa``): on the
    V-twin from idle to 4500 rpm at 93 kPa the ride itself trusts the 95-kPa cells from
    2500 rpm up, which the walk then rolled through again for 1.1 s each at its top
    turns. The ride is simulated from idle (``CandidateModel.entry``, the same ride as
    the walk's own from-idle model) and kept only for the columns above ``start_rpm``.
    """
    ride_to = recipe.start_rpm
    if start_rpm is not None and start_rpm >= ride_to - AT_COLUMN_RPM:
        return None  # on the first stop already, or coming down to it
    edges = recipe.map_edges
    entry = model.entry(ride_to, round(0.5 * (edges[-2] + edges[-1]), 2))
    rpm_axis = np.asarray(model.key.axes.rpm, dtype=np.float64)
    lo = -math.inf if start_rpm is None else start_rpm + AT_COLUMN_RPM
    passed = np.zeros((model.key.axes.map_kpa.size, rpm_axis.size), dtype=bool)
    passed[top_row] = (rpm_axis > lo) & (rpm_axis <= ride_to + AT_COLUMN_RPM)
    mask = passed.ravel()
    return {k: np.where(mask, v, 0.0) for k, v in entry.items()}


def _rolled_past(
    uniform: Mapping[str, F64],
    recipe: Recipe,
    rows: list[int],
    rpm_axis: F64,
    ride: Mapping[str, F64] | None = None,
) -> dict[str, F64]:
    """What ``recipe`` adds, from the same walk run without quick passes (``uniform``).

    The walk with every cell at ``cell_s`` is simulated through the pipeline (cached: it
    changes only when a column or a row leaves the walk); a cell rolled past quickly
    gets its data scaled by its share of ``cell_s``. Those cells are trusted already,
    so the walk's gain is the simulated one; simulating the walk again each time a cell
    turned trusted cost ~0.3 s a re-plan (once a second mid-walk). The top suggestion's
    prediction, the one checked, is the exact walk (``ranking.refine_top``).
    """
    out = {k: np.array(v, dtype=np.float64) for k, v in uniform.items()}
    n_rpm = rpm_axis.size
    for times, col in zip(recipe.cell_times, recipe.columns, strict=False):
        c = _column(rpm_axis, col)
        for k, t in enumerate(times):
            if t < recipe.cell_s:
                j = rows[k] * n_rpm + c
                for key, v in out.items():
                    # the ride up's share of the cell is not the walk's to shorten
                    rode = min(float(ride[key][j]), v[j]) if ride is not None else 0.0
                    v[j] = rode + (v[j] - rode) * t / recipe.cell_s
    return out


def same_walk(before: object, now: object) -> bool:
    """``now`` is the rest of MAP ramps ``before`` (its columns still left, in order).

    Mid-walk the plan is made again each second, and the walk left to run loses a cell
    to the trusted ones each second: its prediction from where it began stands
    (``simplan.plan_model(reuse=)``) instead of a new walk simulated each time.
    """
    if not (isinstance(before, Recipe) and isinstance(now, Recipe)):
        return False
    if before.test_type != TEST_TYPE or now.test_type != TEST_TYPE or not now.columns:
        return False
    if now.map_edges != before.map_edges or now.cell_s != before.cell_s:
        return False
    left = iter(before.columns)
    return all(any(c == b for b in left) for c in now.columns)


def _column(rpm_axis: F64, rpm: float) -> int:
    return int(np.argmin(np.abs(rpm_axis - rpm)))


def _rolling_on(
    start_rpm: float | None,
    start_map: float,
    first: float,
    rows: list[int],
    map_axis: F64,
    need: npt.NDArray[np.bool_],
    col_idx: list[int],
    rpm_axis: F64,
) -> bool:
    """The engine sits on column ``first`` with no cell under its MAP still needing data.

    Mid-walk the plan is re-made from where the engine is; the walk left to do then
    starts on this column, and it rolls on (the line says "roll MAP up") unless cells
    under the engine still need data. Planned from the top, the list read "4000 down"
    while the line said "4000 rpm: roll MAP up".
    """
    if start_rpm is None or not math.isfinite(start_map):
        return False
    if abs(start_rpm - first) > AT_COLUMN_RPM or start_map < map_axis[rows[0]] - MAP_TOL_KPA:
        # off the column, or under the span: the throttle is shut (a hold at this rpm
        # just released), no walk is under way. Read as rolling on, the screen said
        # "5500 rpm: roll MAP up to 85 kPa" while the tuner, planning from the top, rolled
        # it down
        return False
    c = next(c for c in col_idx if rpm_axis[c] == first)
    n_rpm = rpm_axis.size
    under = [r for r in rows if map_axis[r] < start_map - MAP_TOL_KPA]
    over = [r for r in rows if map_axis[r] > start_map + MAP_TOL_KPA]
    return bool(over) and not any(need[r * n_rpm + c] for r in under)


def _edges(map_axis: F64, rows: list[int], top_kpa: float) -> tuple[float, ...]:
    """MAP bounds of ``rows`` (ascending indices): midpoints to the neighbours, the top capped."""
    out = []
    for r in rows:
        out.append(float(0.5 * (map_axis[r] + map_axis[r - 1])) if r > 0 else float(map_axis[r]))
    last = rows[-1]
    upper = (
        float(0.5 * (map_axis[last] + map_axis[last + 1])) if last + 1 < map_axis.size else 100.0
    )
    out.append(min(upper, top_kpa))
    return tuple(round(e, 2) for e in out)


__all__ = ["DWELL_MARGIN", "PASS_KPA_S", "PASS_TPS_SHARE", "TEST_TYPE", "ramp_walks", "same_walk"]
