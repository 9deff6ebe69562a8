"""Serpentine row sweeps: one MAP row per absorber ramp, reversing at each end.

On a load-controlled dyno the tuner can hold one throttle position (one MAP row)
while the absorber ramps rpm across the table, step to the next row at the end of
the range and ramp back down. Every cell of the row is filled in one pass with no
throttle transient between cells (the filters' hold-off fires once per row, at the
turn, instead of once per MAP step of a hold), and there is no ride back to the
start between rows. Column holds pay a transition, a settle and a release per
column and a hold-off per cell; this pays one turn per row.

The ramp rate comes from the table and the coverage rule, not from a constant:
each cell of the row must collect the rule's settled dwell in one pass, so the
rate is the narrowest cell's width (the rpm span whose nearest column it is)
divided by ``min_dwell_s`` x :data:`DWELL_MARGIN`. What a sweep over any subset
of rows adds is simulated through the pipeline (``CandidateModel.rows``, each row
in both directions), so rows the engine cannot follow at that rate (the filters
reject their samples) are worth what they really add.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.plan.candidates import Constraints
from core.plan.holds import MIN_STEP_GAIN, MIN_STEP_S, HoldColumn
from core.plan.learning import Calibration
from core.plan.recipe import Recipe, table_window
from core.plan.testsim import ADDITIVE, CandidateModel
from core.plan.value import Candidate, confidence, value_gain

F64 = npt.NDArray[np.float64]

DWELL_MARGIN = 1.25
"""Each cell's pass lasts this many times the rule's dwell: the lambda transport delay
and the samples at the cell's edges (binned to the neighbour) eat into the pass."""
RATE_STEP_RPM_S = 25.0
"""Ramp rates are rounded down to this (what a dyno's sweep-rate field takes)."""
TURN_S = 1.0
"""Seconds at the end of the range on the next row's MAP before ramping back (``RowSweeps``)."""
FROM_RPM = 2000.0
"""First column of the sweep (in gear, loaded; below it the engine lugs on the drum)."""
TOP_RPM = 4500.0
"""Last column: above it the priority cells are the WOT row, which pulls and holds fill."""
MIN_MAP_KPA = 40.0
RATE_FACTORS = (1.0, 0.5)
"""Serpentines are offered at the dwell-limited rate and at half of it: at low MAP the
engine's torque cannot follow the fast ramp up the range (the top cells then get
nothing), and the simulation says which rows need the slower one."""
MIN_ROWS = 2
"""A single row is the plain part-throttle sweep candidate; this one serpentines."""


def run_order(n: int) -> tuple[int, ...]:
    """The order to run ``n`` rows (indices into them, ascending MAP) in a serpentine.

    Legs alternate up and down the rpm range, and the absorber can only brake: ramping
    UP at light load asks the engine for torque it does not make (at low MAP the top
    of the range falls behind the ramp and gets no data), while ramping down it only
    needs the brake. So the heavier half of the rows ramps up and the lighter half
    down, interleaved from the middle: 70 up, 50 down, 75 up, 55 down ... On the
    simulator this fills all 54 midrange cells where ascending order leaves 2-6 empty.
    """
    down = list(range(n // 2))
    up = list(range(n // 2, n))
    out: list[int] = []
    for i, u in enumerate(up):
        out.append(u)
        if i < len(down):
            out.append(down[i])
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SweepSpan:
    """The rpm range of a serpentine and its ramp rate."""

    rpm_lo: float
    rpm_hi: float
    rate_rpm_s: float

    @property
    def row_s(self) -> float:
        return (self.rpm_hi - self.rpm_lo) / self.rate_rpm_s


def sweep_span(
    rpm_axis: F64, lo_rpm: float, hi_rpm: float, cap_rpm: float, min_dwell_s: float
) -> SweepSpan | None:
    """The span covering whole columns ``lo_rpm..hi_rpm`` and the rate that fills each in one pass.

    The span runs from the lower edge of the first column's nearest range to the upper
    edge of the last's (never above ``cap_rpm``, the engine's limit), so the end columns
    get a full pass; the rate gives the narrowest column ``min_dwell_s`` x
    :data:`DWELL_MARGIN`.
    """
    axis = np.asarray(rpm_axis, dtype=np.float64)
    cols = np.flatnonzero((axis >= lo_rpm) & (axis <= hi_rpm))
    if cols.size < 2:
        return None
    edges = np.concatenate(([axis[0]], 0.5 * (axis[1:] + axis[:-1]), [axis[-1]]))
    first, last = int(cols[0]), int(cols[-1])
    start = float(edges[first]) if first > 0 else float(axis[0])
    end = float(min(edges[last + 1], cap_rpm)) if last + 1 < axis.size else float(axis[-1])
    end = max(end, float(axis[last]))
    widths = np.minimum(edges[cols + 1], end) - np.maximum(edges[cols], start)
    dwell = max(min_dwell_s, 0.1) * DWELL_MARGIN
    rate = math.floor(float(widths.min()) / dwell / RATE_STEP_RPM_S) * RATE_STEP_RPM_S
    if rate <= 0.0:
        return None
    return SweepSpan(start, end, rate)


def sweep_spans(
    rpm_axis: F64, lo_rpm: float, hi_rpm: float, cap_rpm: float, min_dwell_s: float
) -> list[tuple[SweepSpan, float | None]]:
    """The full span (:func:`sweep_span`) and, where it ramps faster, the span without an end column.

    The ramp rate is set by the narrowest column, so one narrow end column (on the
    default axes 2000 rpm is nearest for only 1875-2250) slows every row's whole pass
    (300 rpm/s where 2250-4750 alone takes 400). The span without it is offered with
    the dropped column's rpm, so the composer can charge it the hold that column then
    needs (:func:`dropped_charge`). Returns ``(span, dropped rpm or None)`` pairs.
    """
    full = sweep_span(rpm_axis, lo_rpm, hi_rpm, cap_rpm, min_dwell_s)
    if full is None:
        return []
    out: list[tuple[SweepSpan, float | None]] = [(full, None)]
    axis = np.asarray(rpm_axis, dtype=np.float64)
    cols = np.flatnonzero((axis >= lo_rpm) & (axis <= hi_rpm))
    if cols.size < 3:
        return out
    for dropped, lo, hi in (
        (axis[cols[0]], axis[cols[1]], hi_rpm),
        (axis[cols[-1]], lo_rpm, axis[cols[-2]]),
    ):
        span = sweep_span(axis, float(lo), float(hi), cap_rpm, min_dwell_s)
        if span is not None and span.rate_rpm_s > full.rate_rpm_s:
            # The ramp turns inside the dropped column (held later anyway), not on the
            # kept end column's edge, where the turn would cut that column's one pass.
            if dropped < lo:
                span = SweepSpan(float(dropped), span.rpm_hi, span.rate_rpm_s)
            else:
                span = SweepSpan(span.rpm_lo, min(float(dropped), cap_rpm), span.rate_rpm_s)
            out.append((span, float(dropped)))
    return out


@dataclass(slots=True)
class SweepRows:
    """The rows a serpentine may use, each row's data both ways and what it would gain now."""

    span: SweepSpan
    rows: tuple[float, ...]
    up: tuple[dict[str, F64], ...]
    down: tuple[dict[str, F64], ...]
    gains: F64
    factor: float
    dropped_rpm: float | None = None
    """The end column this span leaves out to ramp faster (:func:`sweep_spans`), if any."""
    rate_factor: float = 1.0
    """The share of the span's dwell-limited rate it ramps at (:data:`RATE_FACTORS`)."""
    cap_rpm: float = 0.0
    """The highest rpm a test may use (``recipe.top_rpm``): where a run-on may end."""


def sweep_rows(
    model: CandidateModel,
    constraints: Constraints,
    rule: CoverageRule,
    calibration: Calibration,
    now: Mapping[str, F64],
    value0: F64,
    weights: F64,
    reach: F64,
) -> list[SweepRows]:
    """The serpentines on offer (per rate of :data:`RATE_FACTORS` and span), rows valued now."""
    out = []
    for factor in RATE_FACTORS:
        out += _sweep_rows(
            model, constraints, rule, calibration, now, value0, weights, reach, factor
        )
    return out


def _sweep_rows(
    model: CandidateModel,
    constraints: Constraints,
    rule: CoverageRule,
    calibration: Calibration,
    now: Mapping[str, F64],
    value0: F64,
    weights: F64,
    reach: F64,
    rate_factor: float,
) -> list[SweepRows]:
    if constraints.environment == "street":
        return []
    win = table_window(model, constraints)
    rpm_axis, map_axis, r_lo, cap = win.rpm_axis, win.map_axis, win.rpm_lo, win.rpm_cap
    m_lo, m_hi = win.map_lo, win.map_hi
    rows = tuple(float(m) for m in map_axis if max(m_lo, MIN_MAP_KPA) <= m <= min(m_hi, 100.0))
    if len(rows) < MIN_ROWS:
        return []
    out = []
    lo_rpm, hi_rpm = max(FROM_RPM, r_lo), min(cap, TOP_RPM)
    for span, dropped in sweep_spans(rpm_axis, lo_rpm, hi_rpm, cap, rule.min_dwell_s):
        if span.rpm_hi - span.rpm_lo < 1000.0:
            continue
        rate = math.floor(span.rate_rpm_s * rate_factor / RATE_STEP_RPM_S) * RATE_STEP_RPM_S
        if rate <= 0.0:
            continue
        span = SweepSpan(span.rpm_lo, span.rpm_hi, rate)
        out.append(
            _valued_rows(model, span, rows, calibration, now, value0, weights, reach, rule, dropped)
        )
        out[-1].rate_factor = rate_factor
        out[-1].cap_rpm = cap
    return out


def _valued_rows(
    model: CandidateModel,
    span: SweepSpan,
    rows: tuple[float, ...],
    calibration: Calibration,
    now: Mapping[str, F64],
    value0: F64,
    weights: F64,
    reach: F64,
    rule: CoverageRule,
    dropped: float | None,
) -> SweepRows:
    up, down = model.rows(span.rpm_lo, span.rpm_hi, span.rate_rpm_s, rows)
    factor = calibration.model_factor("part_throttle_sweep")
    # a row is worth its better direction (run_order ramps light rows down, heavy ones up)
    gains = np.zeros(len(rows))
    for i in range(len(rows)):
        for row in (up[i], down[i]):
            after = {k: now[k] + factor * reach * row[k] for k in ADDITIVE}
            rise = value_gain(weights, value0, confidence(after, rule))
            gains[i] = max(gains[i], float(rise.sum()))
    return SweepRows(span, rows, up, down, gains, factor, dropped)


def compose_sweep(
    sweep: SweepRows,
    model: CandidateModel,
    start_rpm: float | None,
    floor_per_s: float,
    min_row_gain: float,
    gain_of: Callable[[Mapping[str, F64], float], tuple[float, F64]] | None = None,
) -> Candidate | None:
    """A serpentine over the rows gaining at least ``floor_per_s`` per second of their pass.

    Rows are run in :func:`run_order` (ramping up first, reversing each row). Without
    ``gain_of`` the gain is the sum of the rows' (a fast estimate for the floor);
    with it the composed sweep is valued exactly.
    """
    span = sweep.span
    row_cost_s = span.row_s + TURN_S
    # A row left out now costs its ramp AND a new entry (ride to the range, settle,
    # release) when it is run later: the floor is discounted by that share.
    alone = Recipe(
        "part_throttle_sweep", span.rpm_lo, span.rpm_hi, sweep.rows[:1], rate_rpm_s=span.rate_rpm_s
    )
    entry_s = max(60.0 * model.recipe_minutes(alone, None) - span.row_s, 0.0)
    row_floor = floor_per_s * row_cost_s * row_cost_s / (row_cost_s + entry_s)
    picked = np.flatnonzero(sweep.gains >= max(min_row_gain, row_floor))
    if picked.size < MIN_ROWS:
        return None
    order = run_order(len(picked))
    rows = tuple(sweep.rows[int(picked[i])] for i in order)
    recipe = Recipe(
        "part_throttle_sweep", span.rpm_lo, span.rpm_hi, rows, rate_rpm_s=span.rate_rpm_s
    )
    cand = Candidate(recipe, {}, model.recipe_minutes(recipe, start_rpm))
    if gain_of is None:
        cand.gain = float(sweep.gains[picked].sum())
        return cand
    total = serpentine_data(sweep, rows, model)
    cand.arrays = total
    cand.gain, cand.per_cell = gain_of(total, sweep.factor)
    return cand


def serpentine_data(
    sweep: SweepRows, rows: Sequence[float], model: CandidateModel
) -> dict[str, F64]:
    """What a serpentine over ``rows`` (MAP, in run order) adds from idle, from its rows' data.

    The entry (the ride up to the span and the settle on the first row,
    ``CandidateModel.entry``), then the rows ramping up first and reversing each row
    (``SweepRows.up`` / ``down``).
    """
    index = {m: i for i, m in enumerate(sweep.rows)}
    entry = model.entry(sweep.span.rpm_lo, rows[0])
    total = {k: np.array(entry[k], dtype=np.float64) for k in ADDITIVE}
    for n, m in enumerate(rows):
        row = (sweep.up if n % 2 == 0 else sweep.down)[index[m]]
        for k in ADDITIVE:
            total[k] += row[k]
    return total


def dropped_charge(
    sweep: SweepRows,
    cand: Candidate,
    columns: Sequence[HoldColumn],
    model: CandidateModel,
    full: Candidate | None = None,
) -> tuple[float, float]:
    """Seconds and gain of the holds a span without its end column leaves to do.

    A span without its end column (:func:`sweep_spans`) leaves cells that the full
    span would have made trusted: the dropped column's cells in the rows it runs, and
    cells next to the new turn, where the ramp reverses. With ``full`` (the full span's
    serpentine, valued per cell) those are the cells where ``full`` gains at least
    :data:`core.plan.holds.MIN_STEP_GAIN` more; without it, the dropped column's
    gaining steps in the sweep's rows. Each is charged its live hold step (at least
    :data:`core.plan.holds.MIN_STEP_S`), and each column the hold's entry (settle and
    release, ``hold_minutes`` with no move) unless it has other steps to hold anyway.
    The gain is what ``full`` gains more there (without it, those steps' gains). The
    dropped column is always charged; another column only if its hold gains at least
    the serpentine's own rate (with what is charged so far) per second.
    """
    if sweep.dropped_rpm is None:
        return 0.0, 0.0
    axes = model.key.axes
    rpm_axis = np.asarray(axes.rpm, dtype=np.float64)
    map_axis = np.asarray(axes.map_kpa, dtype=np.float64)
    n_rpm = rpm_axis.size
    need: dict[float, set[float]] = {}
    more_by_col: dict[float, float] = {}
    per_cell = full is not None and full.per_cell.size > 0 and cand.per_cell.size > 0
    if full is not None and per_cell:
        more = full.per_cell - cand.per_cell
        for cell in np.flatnonzero(more >= MIN_STEP_GAIN):
            rpm, m = float(rpm_axis[cell % n_rpm]), float(map_axis[cell // n_rpm])
            need.setdefault(rpm, set()).add(m)
            more_by_col[rpm] = more_by_col.get(rpm, 0.0) + float(more[cell])
    else:
        need[sweep.dropped_rpm] = set(cand.recipe.map_steps)
    charges: list[tuple[float, float, bool]] = []
    for col in columns:
        if col.rpm not in need:
            continue
        wanted = np.array([m in need[col.rpm] for m in col.rows], dtype=bool)
        gaining = col.gains >= MIN_STEP_GAIN
        steps = wanted if per_cell else wanted & gaining
        if not steps.any():
            continue
        seconds = float(np.maximum(np.asarray(col.seconds)[steps], MIN_STEP_S).sum())
        gain = more_by_col.get(col.rpm, 0.0) if per_cell else float(col.gains[steps].sum())
        in_rows = np.array([m in cand.recipe.map_steps for m in col.rows], dtype=bool)
        if not (gaining & ~in_rows & ~steps).any():
            seconds += 60.0 * model.hold_minutes(col.rpm, col.rpm, 0.0)
        charges.append((seconds, gain, col.rpm == sweep.dropped_rpm))
    # The dropped column's hold is always charged: its cells are why the faster span
    # differs, and a tuner holds them. Another column (where the two serpentines' turns
    # and directions leave a few cells a little apart) is charged only if its hold is
    # worth its time at the serpentine's own rate: nobody holds those cells for their
    # own sake right then, so they cost the faster span nothing (and it gains nothing
    # there). Charging each its entry had made the faster span ~10 s dearer than it ran.
    total_s = sum(c[0] for c in charges if c[2])
    total_gain = sum(c[1] for c in charges if c[2])
    others = sorted((c for c in charges if not c[2]), key=lambda c: c[1] / max(c[0], 1e-6))
    for seconds, gain, _ in reversed(others):
        rate = (cand.gain + total_gain) / max(60.0 * cand.minutes + total_s, 1e-6)
        if gain / max(seconds, 1e-6) < rate:
            break
        total_s, total_gain = total_s + seconds, total_gain + gain
    return total_s, total_gain


def closing_hold(
    sweep: SweepRows,
    cand: Candidate,
    columns: Sequence[HoldColumn],
    model: CandidateModel,
    gain_of: Callable[[Mapping[str, F64], float], tuple[float, F64]],
) -> Candidate | None:
    """The serpentine with its closing hold: the steps its end column still needs, held there.

    A span without its end column turns inside that column (:func:`sweep_spans`), so a
    serpentine with an even number of rows ends there on its last row's throttle. The
    steps that column still needs are held right then, each until trusted, before the
    throttle is released: a separate hold later pays the serpentine's release, the move
    back and a settle again (car street: 3.7 s of its 7.3 s). The steps are the column's
    live steps (``HoldColumn``) that gain at least :data:`MIN_STEP_GAIN` on top of the
    serpentine, valued exactly; the last row's throttle first (no step), then the rest
    from the highest MAP down (``core.plan.holds``). None when the serpentine does not
    end in its dropped column or nothing is left there.
    """
    recipe = cand.recipe
    if sweep.dropped_rpm is None or not isinstance(recipe, Recipe) or not cand.arrays:
        return None
    end = recipe.end_rpm
    col = next((c for c in columns if c.rpm == end == sweep.dropped_rpm), None)
    if col is None:
        return None
    serp = {k: np.asarray(cand.arrays[k], dtype=np.float64) for k in ADDITIVE}
    _, base_cell = gain_of(serp, sweep.factor)
    rpm_axis = np.asarray(model.key.axes.rpm, dtype=np.float64)
    map_axis = np.asarray(model.key.axes.map_kpa, dtype=np.float64)
    c = int(np.argmin(np.abs(rpm_axis - end)))
    kept: list[int] = []
    adds: list[dict[str, F64]] = []
    seconds = 0.0
    for i, m in enumerate(col.rows):
        if col.gains[i] < MIN_STEP_GAIN:
            continue
        # A step is held when its own cell still needs data now (its neighbours catch the
        # throttle steps' edges, which no hold of their own would be for). It is live: it
        # ends when the cell is trusted, so it costs the share of the cell's gain that the
        # serpentine has not already brought (a cell the turn filled costs only the step).
        own = int(np.argmin(np.abs(map_axis - m))) * rpm_axis.size + c
        add = {k: col.steps[i][k] * col.factor / sweep.factor for k in ADDITIVE}
        both = gain_of({k: serp[k] + add[k] for k in ADDITIVE}, sweep.factor)[1][own]
        if gain_of(add, sweep.factor)[1][own] < MIN_STEP_GAIN or both <= 0.0:
            continue
        kept.append(i)
        adds.append(add)
        share = max(both - base_cell[own], 0.0) / both
        seconds += max(float(col.seconds[i]) * float(share), MIN_STEP_S)
    if not kept:
        return None
    last = recipe.map_steps[-1]
    # the last row's throttle first, then from the highest MAP down (``core.plan.holds``)
    rows = sorted((col.rows[i] for i in kept), key=lambda m: (m != last, -m))
    total = dict(serp)
    for add in adds:
        total = {k: total[k] + add[k] for k in ADDITIVE}
    closed = Candidate(
        Recipe(
            recipe.test_type, recipe.rpm_lo, recipe.rpm_hi, recipe.map_steps,
            rate_rpm_s=recipe.rate_rpm_s, hold_steps=tuple(rows),
        ),
        total,
        cand.minutes + seconds / 60.0,
    )  # fmt: skip
    closed.gain, closed.per_cell = gain_of(total, sweep.factor)
    return closed


def run_on_end(rpm_axis: F64, rpm_hi: float, cap_rpm: float) -> float:
    """Where a last row ramping on past ``rpm_hi`` stops: the top column's upper edge under the cap.

    The columns above the span up to ``cap_rpm`` each get a full pass (as
    :func:`sweep_span` ends a span); 0 when no column lies above the span.
    """
    axis = np.asarray(rpm_axis, dtype=np.float64)
    above = np.flatnonzero((axis > rpm_hi) & (axis <= cap_rpm))
    if above.size == 0:
        return 0.0
    last = int(above[-1])
    edge = 0.5 * (axis[last] + axis[last + 1]) if last + 1 < axis.size else float(axis[last])
    return float(min(edge, cap_rpm))


def run_on(
    sweep: SweepRows,
    cand: Candidate,
    model: CandidateModel,
    start_rpm: float | None,
    gain_of: Callable[[Mapping[str, F64], float], tuple[float, F64]],
) -> Candidate | None:
    """The serpentine with its last row, ramping up, run on past the span to the top column.

    The span ends at :data:`TOP_RPM` (the WOT row above it is pull and hold work), so a
    serpentine whose last row is the WOT row leaves that row's cells above the span to
    a hold each: a move, a settle and a release per column (after the V-twin's serpentine
    from empty, 5500 and 5000 rpm at 95 kPa: ~10 s for two cells). Carried on at the same
    throttle and ramp, the row passes them on the way. An odd number of rows ends
    ramping up (:func:`run_order`: the heaviest row last); with an even number one row
    (not the heaviest) is left out so that it does, the one whose leaving gains most per
    second. Valued exactly, run-on data simulated (``CandidateModel.run_on``); None when
    no column lies above the span or nothing is gained there.
    """
    recipe = cand.recipe
    if not isinstance(recipe, Recipe) or recipe.hold_steps or not cand.arrays:
        return None
    span = sweep.span
    rpm_axis = np.asarray(model.key.axes.rpm, dtype=np.float64)
    end = run_on_end(rpm_axis, span.rpm_hi, sweep.cap_rpm)
    if end <= span.rpm_hi:
        return None
    orders = [recipe.map_steps]
    if len(recipe.map_steps) % 2 == 0:
        # one row left out (never the heaviest, the one ramping on): each way is valued
        top = max(recipe.map_steps)
        orders = []
        for left in recipe.map_steps:
            kept = sorted(m for m in recipe.map_steps if m != left)
            if left != top and len(kept) >= MIN_ROWS:
                orders.append(tuple(kept[i] for i in run_order(len(kept))))
    best: Candidate | None = None
    for rows in orders:
        total = serpentine_data(sweep, rows, model)
        on = model.run_on(span.rpm_hi, end, span.rate_rpm_s, rows[-1])
        total = {k: total[k] + on[k] for k in ADDITIVE}
        ran = Recipe(
            recipe.test_type, recipe.rpm_lo, recipe.rpm_hi, rows,
            rate_rpm_s=recipe.rate_rpm_s, run_on_rpm=end,
        )  # fmt: skip
        out = Candidate(ran, total, model.recipe_minutes(ran, start_rpm))
        out.gain, out.per_cell = gain_of(total, sweep.factor)
        if out.gain > 0.0 and (best is None or out.gain / out.minutes > best.gain / best.minutes):
            best = out
    return best


def charged_spans(
    composed: Sequence[tuple[SweepRows, Candidate]],
    columns: Sequence[HoldColumn],
    model: CandidateModel,
    gain_of: Callable[[Mapping[str, F64], float], tuple[float, F64]] | None = None,
    start_rpm: float | None = None,
) -> list[Candidate]:
    """Per ramp-rate factor, the full-span serpentine or the faster one without an end column.

    The faster span is kept only if its gain per second beats the full span's once it is
    charged the holds it leaves to do (:func:`dropped_charge`): offered uncharged, the
    walk saw only the faster ramp and left those holds beyond its horizon. With
    ``gain_of`` (exact values) the faster span also competes with its closing hold
    (:func:`closing_hold`), charged for what it still leaves.
    """
    by_factor: dict[float, list[tuple[SweepRows, Candidate]]] = {}
    for sweep, cand in composed:
        by_factor.setdefault(sweep.rate_factor, []).append((sweep, cand))
        closed = None if gain_of is None else closing_hold(sweep, cand, columns, model, gain_of)
        if closed is not None:
            by_factor[sweep.rate_factor].append((sweep, closed))
        ran = None if gain_of is None else run_on(sweep, cand, model, start_rpm, gain_of)
        if ran is not None:
            by_factor[sweep.rate_factor].append((sweep, ran))
    out: list[Candidate] = []
    for group in by_factor.values():
        full = next((c for s, c in group if s.dropped_rpm is None), None)
        best: Candidate | None = None
        best_rate = -math.inf
        for sweep, cand in group:
            extra_s, extra_gain = dropped_charge(sweep, cand, columns, model, full)
            rate = (cand.gain + extra_gain) / max(60.0 * cand.minutes + extra_s, 1e-6)
            if rate > best_rate:
                best, best_rate = cand, rate
        if best is not None:
            out.append(best)
    return out
