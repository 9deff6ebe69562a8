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

The planner is split by job: ``recipe`` (what the operator runs), ``value``
(confidence and gain), ``holds`` (the hold composer), ``ranking`` (suggestions
and targets); this module generates the candidates and runs the rounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.coverage.regions import Region, axis_arrays, priority_map
from core.plan.candidates import Constraints
from core.plan.holds import MIN_STEP_GAIN, HoldColumn, compose_holds, hold_columns
from core.plan.learning import Calibration
from core.plan.ramps import ramp_walks, same_walk
from core.plan.ranking import rank_suggestions, refine_top, target_cells
from core.plan.recipe import IDLE_MAX_MAP_KPA, IDLE_MAX_RPM, Recipe, running_rpm, top_rpm
from core.plan.route import plan_walk
from core.plan.sweeps import SweepRows, charged_spans, compose_sweep, sweep_rows
from core.plan.testmodels import ENVIRONMENT
from core.plan.testsim import ADDITIVE, HOLD_STEP_S, CandidateModel
from core.plan.types import FilteredTest, PlanView, Suggestion
from core.plan.value import PLAN_WEIGHT, Candidate, cell_value, confidence, value_gain

F64 = npt.NDArray[np.float64]

WOT_START_RPM = 2000.0
"""Where a WOT pull starts on the dyno (in gear, loaded)."""
MIDRANGE_TOP_RPM = 4500.0
SWEEP_START_RPM = 1500.0
IDLE_S = 30.0
CRUISE_S = 300.0
MIN_GAIN_PER_MIN = 1.0
"""A test is offered only if it gains at least this much a minute: one priority-3 cell made
trusted (a tenth of a priority-1 cell). Below that the dyno time, the heat and the engine's
wear are worth more. A headless guided run (`dynoai log --source "sim:?scenario=guided"`)
that had covered everything it could reach ran "WOT pull 2000-4500 rpm" eight times over for
the 105-kPa cells the V-twin's WOT MAP only touches (gain 0.2 in 1.5 min each)."""
TARGET_SHARE = 0.25
"""A next target cell is one a test on offer raises by at least this share of its value."""
NOTHING_WORTH_IT = "covered as far as this engine reaches: no test gains a cell a minute"
"""The line when cells remain untrusted but no test is worth its time (:data:`MIN_GAIN_PER_MIN`)."""
SHEET_PULL = "covered as far as this engine reaches: now {test} for the dyno sheet"
"""The line when the coverage is done and this session has no pull yet (:func:`_sheet_pull`)."""
NO_CELL_IN_LIMITS = "no test reaches a cell inside the constraints ({limits}): check them"
"""The line when the constraints leave no cell any test on offer reaches (:func:`_in_window`)."""
MIN_STEP_RATE = 1.0
"""A MAP step joins a hold only if it gains at least this fraction of the best test's gain
per second: a step that fills a low-priority cell slowly costs more dyno time than it earns."""
HOLD_ROUNDS = 4
SCOPES = ("all", "opening")
"""What a plan is chosen from: every candidate, or the opening work alone (see plan_model)."""


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
    scope: str = "all",
    reuse: Suggestion | None = None,
    running: Suggestion | None = None,
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
        scope: ``all`` (every candidate) or ``opening``: the idle / low-MAP work alone
            (holds at or below ``IDLE_MAX_RPM`` and ``IDLE_MAX_MAP_KPA``, and idling in
            neutral), which an empty vehicle's plan ranks first. It simulates ~1/15 of
            what a full plan needs, so a session plans its first tests from it while
            the rest warms up (``sim.guided``, ``core.plan.tracker``).
        reuse: A top suggestion refined earlier (``ranking.refine_top``: re-simulated
            from the operating point, the prediction checked against the test that
            follows). When the top is the same recipe, its prediction is taken as is
            instead of simulated again. A tracker passes its last one while a test runs:
            a serpentine's engine passes a new (rpm, MAP) start every second, each a
            whole serpentine simulated (2/3 of the demo's CPU during row sweeps), and
            the prediction that counts is the one made before the test began.
        running: The test the tuner is running (the line follows it): the target cells
            lead with its cells instead of the top suggestion's.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    prio = priority_map(model.key.axes, regions, knock_events)
    rpm_axis, map_axis = axis_arrays(model.key.axes)
    weights = np.asarray(PLAN_WEIGHT, dtype=np.float64)[np.clip(prio, 1, 3)].ravel()
    weights = (
        weights
        * calibration.stall_weights(rpm_axis, map_axis)
        * _in_window(rpm_axis, map_axis, constraints)
    )
    now = {k: np.asarray(arrays[k], dtype=np.float64).ravel() for k in ADDITIVE}
    value0 = cell_value(confidence(now, rule))
    must = np.clip(prio, 1, 3).ravel() <= 2
    args = (
        model, prio, now, constraints, calibration, pulls_done, rule, operating_point, scope,
        reuse, running,
    )  # fmt: skip
    if np.any(must & (weights > 0) & (value0 < 1.0)):
        # Priority-3 cells are polish: while a priority-1/2 cell is untrusted, a test (or a
        # hold step, a sweep row) is valued on those cells alone, so no minute goes to
        # polish that the must-have cells could use. Only when no test gains a step's worth
        # of them (the rest are out of reach, or stalled and discounted) is polish planned.
        view = _plan(*args, np.where(must, weights, 0.0), weights, last=False)
        if view.suggestions and view.suggestions[0].expected_gain >= MIN_STEP_GAIN:
            return _knock_tagged(view, knock_events)
    return _knock_tagged(_plan(*args, weights, weights), knock_events)


def _in_window(rpm_axis: F64, map_axis: F64, constraints: Constraints) -> F64:
    """1 for the cells inside the constraints' rpm and MAP window, 0 outside (flat).

    A cell the tuner ruled out is no work: with min_rpm 6000 and min_map_kpa 300 the
    list offered "street cruise 5 min" (gain 305) and an idle in neutral, for cells at
    2000-4000 rpm and 950 rpm.
    """
    r_lo, r_hi = constraints.rpm_window(rpm_axis)
    m_lo, m_hi = constraints.map_window(map_axis)
    cols = (rpm_axis >= r_lo) & (rpm_axis <= r_hi)
    rows = (map_axis >= m_lo) & (map_axis <= m_hi)
    return (rows[:, None] & cols[None, :]).astype(np.float64).ravel()


def _knock_tagged(view: PlanView, knock_events: npt.ArrayLike | None) -> PlanView:
    """``view`` with each suggestion's cells where knock was seen (``Suggestion.knock_cells``).

    The car demo's 95-kPa holds at 5000-7000 rpm knocked (the bell rang, the count
    climbed) and the list offered the next one there without a word.
    """
    if knock_events is None:
        return view
    knock = np.asarray(knock_events)
    if not knock.any():
        return view
    tagged = tuple(
        replace(
            s, knock_cells=tuple((m, r) for m, r, h in s.expected_hits if h > 0 and knock[m, r] > 0)
        )
        for s in view.suggestions
    )
    return replace(view, suggestions=tagged)


def _plan(
    model: CandidateModel,
    prio: npt.NDArray[np.int64],
    now: dict[str, F64],
    constraints: Constraints,
    calibration: Calibration,
    pulls_done: int,
    rule: CoverageRule,
    operating_point: Mapping[str, float] | None,
    scope: str,
    reuse: Suggestion | None,
    running: Suggestion | None,
    weights: F64,
    target_weights: F64,
    last: bool = True,
) -> PlanView:
    """The plan with these per-cell planning weights (targets use ``target_weights``).

    ``last``: no other pass follows (the must-have cells' pass is followed by one with
    the polish when it finds nothing worth a step): only then may a session that has no
    pull yet end on one (:func:`_sheet_pull`).
    """
    key = model.key
    axes = key.axes
    rpm_axis, map_axis = axis_arrays(axes)
    conf0 = confidence(now, rule)
    value0 = cell_value(conf0)
    op = operating_point or {}
    start_rpm = running_rpm(op, rpm_axis)
    only_opening = scope == "opening"
    cands, filtered = _candidates(
        model, rpm_axis, map_axis, constraints, pulls_done, start_rpm, only_opening
    )

    reach = calibration.reach(rpm_axis, map_axis, simulated=True)

    def conf_of(add: Mapping[str, F64], factor: float) -> F64:
        scale = factor * reach
        return confidence({k: now[k] + scale * add[k] for k in ADDITIVE}, rule)

    def gain_of(add: Mapping[str, F64], factor: float) -> tuple[float, F64]:
        per_cell = value_gain(weights, value0, conf_of(add, factor))
        return float(per_cell.sum()), per_cell

    chosen: list[Candidate] = []
    for cand in cands:
        factor = calibration.model_factor(cand.recipe.test_type)
        cand.gain, cand.per_cell = gain_of(cand.arrays, factor)
        if cand.gain > 0:
            chosen.append(cand)
    ramps = (
        []
        if only_opening
        else ramp_walks(
            model,
            constraints,
            rule,
            calibration,
            weights,
            conf0,
            start_rpm,
            gain_of,
            float(op.get("map_kpa", math.nan)),
            conf_of,
        )
    )
    hold_rpm = rpm_axis[rpm_axis <= IDLE_MAX_RPM] if only_opening else rpm_axis
    columns = hold_columns(
        model, hold_rpm, map_axis, constraints, filtered, calibration, now, value0, weights,
        reach, rule, IDLE_MAX_MAP_KPA if only_opening else 100.0,
    )  # fmt: skip
    sweeps = (
        []
        if only_opening
        else sweep_rows(model, constraints, rule, calibration, now, value0, weights, reach)
    )
    holds = _compose(chosen, columns, sweeps, model, start_rpm, gain_of)
    walk = None
    serpentine = any(h.recipe.test_type == "part_throttle_sweep" for h in holds)
    if not now["hits"].any():
        chosen += ramps  # from empty every column needs data: the ramps' walk has no rival
    elif serpentine or ramps:
        # From a partly covered grid the serpentine ramps across rows other data already
        # half filled, and MAP ramps roll through every cell of their span, while column
        # holds run only the steps still untrusted: plan the walk each way (the holds'
        # floor set without the serpentine; the ramps with those holds) and keep the one
        # that adds more per second of its whole walk. On a tie the holds alone are the
        # plan (neither is then a stop of the walk), then the serpentine.
        alone = (
            _compose(chosen, columns, [], model, start_rpm, gain_of, holds) if serpentine else holds
        )
        others = [c for c in chosen if c.recipe.test_type != "part_throttle_sweep"]
        options = [(others, alone)]
        if serpentine:
            options.append((chosen, holds))
        if ramps:
            options.append((others + ramps, alone))
        walks = [plan_walk(c + h, model, start_rpm) for c, h in options]
        both = min(w.gain if w is not None else 0.0 for w in walks)
        best = min(
            (i for i, w in enumerate(walks) if w is not None),
            key=lambda i: (walks[i].mean_seconds_to(both), i),  # type: ignore[union-attr]
            default=None,
        )
        if best is not None:
            chosen, holds = list(options[best][0]), options[best][1]
            walk = walks[best] if len(options) > 1 else None
    if not now["hits"].any():
        # Opening plan: the idle/low-MAP holds are offered whatever the floor (see
        # below), over the low-MAP steps that make their own cell trusted.
        idle_cols = [
            replace(c, gains=np.where(_completes(c, rpm_axis, map_axis, rule), c.gains, 0.0))
            for c in columns
            if c.test_type == "idle_low_map"
        ]
        have = {h.recipe.rpm_lo for h in holds if h.recipe.test_type != "part_throttle_sweep"}
        opening = compose_holds(idle_cols, model, start_rpm, MIN_STEP_GAIN, gain_of)
        # (before the serpentines, as they were listed)
        rows = [h for h in holds if h.recipe.test_type == "part_throttle_sweep"]
        holds = [h for h in holds if h.recipe.test_type != "part_throttle_sweep"]
        holds += [h for h in opening if h.recipe.rpm_lo not in have] + rows
    chosen += holds
    lead = chosen[walk.first].recipe if walk is not None else None
    chosen = _worth_a_minute(chosen, filtered)
    suggestions = rank_suggestions(chosen, prio.ravel(), axes.shape[1], calibration, reach, weights)
    if walk is None:
        opens = None if now["hits"].any() else _opening_test(model.idle_rpm())
        walk = plan_walk(chosen, model, start_rpm, opens)
        lead = chosen[walk.first].recipe if walk is not None else None
    if lead is not None:
        # the first step of the best walk over the remaining work leads (``route``)
        suggestions = tuple(sorted(suggestions, key=lambda s: s.recipe != lead))
    sheet = None
    if not suggestions and last and not only_opening and pulls_done == 0:
        sheet = _sheet_pull(cands, weights)
        if sheet is not None:
            filtered = [f for f in filtered if f.description != sheet.recipe.description]
            suggestions = rank_suggestions(
                [sheet], prio.ravel(), axes.shape[1], calibration, reach, weights
            )
    if not now["hits"].any():
        # Opening plan (no data at all): idle / low-MAP work first. A tuner checks that a
        # new engine idles and its wideband reads before loading it, and the engine is at
        # idle now, so that work is also the shortest move.
        # Only the idle work worth the time leads: "idle in neutral 30 s" (0.02 of the best
        # rate) sat fifth, over the P1 walk and holds, in `dynoai plan --vehicle NEW`.
        suggestions = tuple(
            sorted(
                suggestions,
                key=lambda s: s.test_type != "idle_low_map" or s.efficiency < OPENING_MIN_EFF,
            )
        )
    if suggestions:
        top = suggestions[0]
        if reuse is not None and reuse.recipe == top.recipe:
            top = replace(top, expected_hits=reuse.expected_hits, minutes=reuse.minutes)
        elif reuse is not None and same_walk(reuse.recipe, top.recipe):
            top = replace(top, expected_hits=reuse.expected_hits)  # the rest of the walk
        else:
            top = refine_top(top, model, calibration, reach, op, rule, now)
        suggestions = (top, *suggestions[1:])
    # the next cells are those the tests on offer fill: a cell no test worth its time
    # brings a quarter of the way (the V-twin's pull touches 6000 rpm on its way to a
    # 5800 redline) is no place to send the tuner
    filled = np.zeros(axes.n_cells, dtype=bool)
    for c in chosen:
        filled |= (c.per_cell >= TARGET_SHARE * weights) & (weights > 0)
    first = None
    leader = running if running is not None else suggestions[0] if suggestions else None
    if leader is not None:
        # mid-walk the demo listed "Next cells: 5500/95 5000/95", the re-made plan's top,
        # while the walk rolled 4500 rpm
        first = _from_start(leader, rpm_axis, map_axis)
    targets, instruction = target_cells(
        conf0, prio, target_weights, rpm_axis, map_axis, constraints, op, reachable=filled,
        first=first,
    )  # fmt: skip
    if sheet is not None:
        instruction = SHEET_PULL.format(test=sheet.recipe.description)
    reachable = (
        ()  # the opening pass simulates the idle work alone: it does not know the rest
        if only_opening
        else _reachable_cells(
            lambda: [c.arrays for c in cands] + [st for col in columns for st in col.steps],
            conf0,
            rule,
            (key, constraints, rule),
        )
    )
    if not suggestions:
        reached = _filled(
            [c.arrays for c in cands + holds] + [st for col in columns for st in col.steps],
            axes.n_cells,
        )
        if np.any(reached & (target_weights > 0) & (conf0 < 1.0)):
            instruction = NOTHING_WORTH_IT
        elif not np.any(reached & (target_weights > 0)):
            # nothing any test reaches is inside the window: the constraints, not the
            # coverage, leave no work ("all reachable cells are covered" at 0 %)
            instruction = NO_CELL_IN_LIMITS.format(limits=_limits(constraints))
    return PlanView(
        suggestions=suggestions,
        filtered=tuple(filtered),
        targets=targets,
        instruction=instruction,
        prediction_error_pct=calibration.mean_error_pct,
        reachable=reachable,
    )


OPENING_MIN_EFF = 0.1
"""An empty vehicle's idle / low-MAP tests lead its list when their gain per minute is at
least this share of the best test's (the holds there run at ~0.3)."""


def _from_start(s: Suggestion, rpm_axis: F64, map_axis: F64) -> F64:
    """Per cell (flat): how far each cell ``s`` fills is from where it begins, in cells; inf elsewhere.

    The start is its recipe's first stop and first MAP (a hold's first step, a walk's
    first ramp), else the low end of its ranges.
    """
    recipe = s.recipe
    rpm0 = float(recipe.start_rpm) if isinstance(recipe, Recipe) else s.rpm_range[0]
    steps = recipe.map_steps if isinstance(recipe, Recipe) else ()
    map0 = float(steps[0]) if steps else s.map_range[0]
    c0 = int(np.argmin(np.abs(rpm_axis - rpm0)))
    r0 = int(np.argmin(np.abs(map_axis - map0)))
    out = np.full(map_axis.size * rpm_axis.size, np.inf)
    for r, c in s.cells:
        out[r * rpm_axis.size + c] = abs(c - c0) + abs(r - r0)
    return out


def _opening_test(idle_rpm: float) -> Callable[[Recipe], bool]:
    """Which tests may open an empty vehicle's walk: idle / low-MAP work from its idle up.

    A tuner checks that a new engine idles and its wideband reads before loading it, so
    the opening plan starts with that work (``_plan``), and which of it leads is the
    walk's choice (``route.plan_walk``): the one that suits the route after it, not the
    best rate of its own. A hold under the idle speed is not an opening: the V-twin
    (idle 950) held at 750 rpm sits on its MAP floor (~37 kPa), where the engine's noise
    decides which cell the lowest step fills (``sim.testsim.simulate_live_from``).
    """

    def opens(recipe: Recipe) -> bool:
        if recipe.test_type != "idle_low_map":
            return False
        return not recipe.map_steps or recipe.rpm_lo >= idle_rpm

    return opens


def _limits(constraints: Constraints) -> str:
    """Every rpm and MAP constraint set ("min_rpm 6000, min_map_kpa 300"), or "none"."""
    named = [
        f"{name} {value:g}"
        for name in ("min_rpm", "max_rpm", "min_map_kpa", "max_map_kpa")
        if (value := getattr(constraints, name)) is not None
    ]
    return ", ".join(named) or "none"


def _rpm_limits(constraints: Constraints) -> str:
    """The rpm constraints that narrow the window ("min_rpm 6000, max_rpm 6500"), or the engine."""
    named = [
        f"{name} {value:g}"
        for name, value in (("min_rpm", constraints.min_rpm), ("max_rpm", constraints.max_rpm))
        if value is not None
    ]
    return ", ".join(named) or "the engine's rpm range"


def _sheet_pull(cands: list[Candidate], weights: F64) -> Candidate | None:
    """The widest WOT pull on offer into the constraints' window (cells with ``weights``).

    Once the cells are covered as far as the engine reaches, a session with no pull yet
    ends on one: it gains the grid little (holds at WOT trusted those cells), but it is
    the power and torque curve a tuner prints for the customer and checks the WOT mixture
    across the range with. QA watched the demo cover 56 % and stop with "covered as far
    as this engine reaches" and "pulls 0": a session no tuner calls done.
    """
    pulls = [
        c
        for c in cands
        if c.recipe.test_type == "wot_pull" and np.any((c.arrays["hits"] > 0) & (weights > 0))
    ]
    return max(pulls, key=lambda c: c.recipe.rpm_hi - c.recipe.rpm_lo, default=None)


def _worth_a_minute(chosen: list[Candidate], filtered: list[FilteredTest]) -> list[Candidate]:
    """The tests that gain at least :data:`MIN_GAIN_PER_MIN`; the rest are listed as filtered."""
    kept = []
    for c in chosen:
        if c.gain >= MIN_GAIN_PER_MIN * max(c.minutes, 1e-6):
            kept.append(c)
        else:
            why = f"gains {c.gain:.1f} in {c.minutes:.1f} min, under {MIN_GAIN_PER_MIN:g} a minute"
            filtered.append(FilteredTest(c.recipe.test_type, c.recipe.description, why))
    return kept


def _reachable_cells(
    tests: Callable[[], Iterable[Mapping[str, F64]]],
    conf0: F64,
    rule: CoverageRule,
    key: Hashable,
) -> tuple[bool, ...]:
    """Per cell: trusted now, or one of ``tests()`` (their ADDITIVE arrays) alone trusts it.

    The holds are offered at every MAP row the engine holds in each column (not only the
    rows still needing data), the idle, the pulls, the sweeps: what the engine of this
    kind reaches under the constraints (``PlanView.reachable``). What the tests reach
    does not change with the coverage, so it is worked out once per ``key`` (the model,
    the constraints, the rule): judged every re-plan it doubled a 32x32 re-plan's 24 ms.
    """
    reach = _REACH.get(key)
    if reach is None:
        reach = np.zeros(np.asarray(conf0).shape, dtype=bool)
        for arrays in tests():
            reach |= confidence(arrays, rule) >= REACH_CONF
        if len(_REACH) >= REACH_KEEP:
            _REACH.clear()
        _REACH[key] = reach
    return tuple((reach | (np.asarray(conf0, dtype=np.float64) >= 1.0)).tolist())


_REACH: dict[Hashable, npt.NDArray[np.bool_]] = {}
"""What the tests on offer reach, per (model key, constraints, rule) (:func:`_reachable_cells`)."""
REACH_KEEP = 16
"""Keys kept before the cache starts again (a session has one; a fleet's plans a few)."""
REACH_CONF = 0.9
"""A test that alone brings a cell this far reaches it: a hold step runs until its cell is
trusted, and its model stops at the edge (the V-twin's 1000/40 at 0.96 of its dwell)."""


def _filled(tests: Iterable[Mapping[str, F64]], n_cells: int) -> npt.NDArray[np.bool_]:
    """Cells at least one of ``tests`` (their ADDITIVE arrays) puts data in."""
    out = np.zeros(n_cells, dtype=bool)
    for arrays in tests:
        out |= arrays["hits"] > 0
    return out


def _compose(
    chosen: list[Candidate],
    columns: list[HoldColumn],
    sweeps: list[SweepRows],
    model: CandidateModel,
    start_rpm: float | None,
    gain_of: Callable[[Mapping[str, F64], float], tuple[float, F64]],
    known: list[Candidate] | None = None,
) -> list[Candidate]:
    """The holds and serpentines on offer, each step worth its time against the best test.

    ``known``: holds already valued (a hold with the same recipe is not valued again).
    """
    # A step (a MAP step of a hold, a row of a sweep) is worth its time only if it gains
    # at least MIN_STEP_RATE as fast as the best test on offer (the opportunity cost of
    # dyno time). Dropping slow steps makes the best test faster, which raises the
    # floor: a few rounds settle it.
    floor = MIN_STEP_GAIN
    for _ in range(HOLD_ROUNDS):
        composed = compose_holds(columns, model, start_rpm, floor)
        serps = []
        for sweep in sweeps:
            rows = compose_sweep(sweep, model, start_rpm, floor / HOLD_STEP_S, MIN_STEP_GAIN)
            serps += [(sweep, rows)] if rows is not None else []
        composed += charged_spans(serps, columns, model)
        rates = [c.gain / (60.0 * c.minutes) for c in chosen + composed if c.minutes > 0]
        if not rates:
            break
        floor = MIN_STEP_RATE * max(rates) * HOLD_STEP_S
    if known:
        # value exactly only the columns whose hold differs from a known one
        have = {c.recipe: c for c in known}
        cheap = {c.recipe.rpm_lo: c for c in compose_holds(columns, model, start_rpm, floor)}
        todo = [col for col in columns if col.rpm in cheap and cheap[col.rpm].recipe not in have]
        fresh = {c.recipe.rpm_lo: c for c in compose_holds(todo, model, start_rpm, floor, gain_of)}
        holds = [
            have.get(c.recipe) or fresh[rpm]
            for rpm, c in cheap.items()
            if c.recipe in have or rpm in fresh
        ]
    else:
        holds = compose_holds(columns, model, start_rpm, floor, gain_of)
    serps = []
    for sweep in sweeps:
        rows = compose_sweep(sweep, model, start_rpm, floor / HOLD_STEP_S, MIN_STEP_GAIN, gain_of)
        if rows is not None and rows.gain > 0:
            serps.append((sweep, rows))
    return holds + charged_spans(serps, columns, model, gain_of, start_rpm)


def _completes(
    col: HoldColumn, rpm_axis: F64, map_axis: F64, rule: CoverageRule
) -> npt.NDArray[np.bool_]:
    """Per step of ``col``: a low-MAP step that alone makes its own cell trusted."""
    c = int(np.argmin(np.abs(rpm_axis - col.rpm)))
    out = np.zeros(len(col.rows), dtype=bool)
    for i, (m, step) in enumerate(zip(col.rows, col.steps, strict=True)):
        cell = int(np.argmin(np.abs(map_axis - m))) * rpm_axis.size + c
        one = {k: step[k][cell : cell + 1] for k in ADDITIVE}
        out[i] = m <= IDLE_MAX_MAP_KPA and bool(confidence(one, rule)[0] >= 1.0)
    return out


def _candidates(
    model: CandidateModel,
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    pulls_done: int,
    start_rpm: float | None,
    opening: bool = False,
) -> tuple[list[Candidate], list[FilteredTest]]:
    """Every non-hold candidate with its simulated data, and those the constraints removed.

    ``opening``: idling in neutral only (the opening work's one non-hold test).
    """
    cands: list[Candidate] = []
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
        cands.append(Candidate(recipe, dict(arrays), minutes))

    if opening:
        offer(Recipe("idle_low_map", 0.0, 0.0, (), IDLE_S))
        return cands, filtered
    start = max(WOT_START_RPM, r_lo)
    cap = constraints.max_pulls_per_session
    # (the midrange pull only where it ends above the start: with min_rpm 6000 the list
    # read "WOT pull 6000-4500 rpm")
    stops = {s for s in (r_hi, min(r_hi, MIDRANGE_TOP_RPM)) if s > start} or {r_hi}
    for stop in sorted(stops, reverse=True):
        recipe = Recipe("wot_pull", start, max(stop, start))
        reason = None
        if stop <= start:
            reason = (
                f"{_rpm_limits(constraints)}: the pull would start at {start:.0f} rpm, "
                f"above its top of {stop:.0f} (1000 rpm of pull needed)"
            )
        elif stop - start < 1000.0:
            reason = (
                f"{_rpm_limits(constraints)}: only {stop - start:.0f} rpm "
                "left for a WOT pull, 1000 needed"
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
