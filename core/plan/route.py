"""The walk: the remaining tests ordered as one route; the top suggestion is its first step.

Ranking one test at a time by gain per minute (travel from the current point
included) ignores the travel a choice causes for the tests after it: from a partly
covered start the greedy order jumped 1250 -> 4500 -> 3500 -> 1500 -> 5000 rpm,
riding up the range twice (each ride up from low rpm costs ~13 s on the V-twin;
braking down costs ~3 s), while a tuner's column walk rides up once.

So the planner looks over the whole remaining walk:

1. :func:`route_stops` picks the work still to do from the valued candidates:
   in order of gain per minute, each test that adds mostly cells the tests before it
   do not (:data:`NOVEL_SHARE` of its gain is new) and is worth at least
   :data:`MIN_ROUTE_RATE` of the best rate, at most :data:`ROUTE_MAX` stops.
2. :func:`walk_order` orders those stops exactly (dynamic programming over subsets)
   for the least time, each leg's seconds weighed by the gain still waiting
   (:data:`FRONT_WEIGHT`: the same total walk with the big test earlier is better).
   A leg is the move from the previous stop's end rpm to the next stop's start rpm
   (the simulator's physics, ``CandidateModel.move_s``) plus the stop's own time,
   a WOT pull's cool-down included.

The first stop is the suggestion; the walk is planned again after every test as
the coverage arrives, so each suggestion's prediction is still its own test's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.plan.recipe import Recipe
from core.plan.testsim import CandidateModel
from core.plan.value import Candidate

F64 = npt.NDArray[np.float64]

ROUTE_MAX = 10
"""Most stops in one walk. A partly covered V-twin has 11 columns of work left, and a cap
of 8 left three out of the first walks (4500 -> 4000 -> 5000 -> 5500 -> 3500 rpm rode up
twice; at 10: 4500 -> 5500 -> 5000 -> 4000 -> 3500, once). The exact order costs
2^n x n^2 steps (:func:`walk_order`: ~1 ms at 10, ~7 ms at 12, and a re-plan may walk
twice: 12 cost 10 ms of the 50-ms budget on the 32x32 bench for no further gain)."""
MIN_ROUTE_RATE = 0.25
"""A test joins the walk when its gain per minute is at least this share of the best's:
slower tests are not work the planner would choose, only padding for the route."""
NOVEL_SHARE = 0.5
"""A test joins the walk only if this share of its gain is on cells the tests already
in it do not fill (a column hold under the serpentine's rows is not extra work)."""
FRONT_WEIGHT = 1.0
"""How much a leg's seconds weigh more while gain is still waiting: each leg costs its
seconds x (1 + FRONT_WEIGHT x share of the walk's gain not yet done). 0 = shortest walk."""


@dataclass(frozen=True, slots=True)
class Stop:
    """One test of the walk: where it starts and ends, its own seconds and its gain."""

    start_rpm: float | None
    """rpm the test starts at (None: anywhere, e.g. idle in neutral)."""
    end_rpm: float | None
    """rpm the engine is left at (None: idling)."""
    own_s: float
    """Seconds of the test after the move to its start (cool-down included)."""
    gain: float
    ride_kpa: float = 0.0
    """The MAP the operator rides up at to its start (its first MAP step or row)."""


def walk_order(
    first: Sequence[float],
    legs: Sequence[Sequence[float]],
    gains: Sequence[float],
    front_weight: float = FRONT_WEIGHT,
) -> tuple[int, ...]:
    """The order of all stops with the least weighted time (exact, over subsets).

    Held-Karp dynamic programming, vectorised by subset size: ``best[S, j]`` is the
    least weighted time to run the stops in ``S`` ending with ``j``, pulled from
    ``best[S - j, i] + legs[i][j] x weight(S - j)`` over every ``i`` at once, so the
    2^n x n^2 steps run as a few array operations per subset size (~1 ms at 10 stops).

    Args:
        first: Seconds to reach and run stop j from the current point.
        legs: ``legs[i][j]``: seconds to reach and run stop j right after stop i.
        gains: Each stop's gain (weighs the legs while it is still waiting).
        front_weight: See :data:`FRONT_WEIGHT` (0: the shortest walk).
    """
    n = len(first)
    if n == 0:
        return ()
    leg = np.asarray(legs, dtype=np.float64).reshape(n, n)
    g = np.maximum(np.asarray(gains, dtype=np.float64), 0.0)
    total = float(g.sum()) or 1.0
    bits, layers = _subsets(n)
    # weight of a leg taken when the stops in the mask are done: the gain still waiting
    waiting = 1.0 + front_weight * (total - bits @ g) / total
    best = np.full((1 << n, n), math.inf)
    back = np.full((1 << n, n), -1, dtype=np.int64)
    for j in range(n):
        best[1 << j, j] = float(first[j]) * waiting[0]
    for masks, lasts, prevs in layers:
        cost = best[prevs] + leg[:, lasts].T * waiting[prevs][:, None]
        via = np.argmin(cost, axis=1)
        best[masks, lasts] = cost[np.arange(masks.size), via]
        back[masks, lasts] = via
    full = (1 << n) - 1
    last = int(np.argmin(best[full]))
    order = []
    mask = full
    while last >= 0:
        order.append(last)
        prev_i = int(back[mask, last])
        mask &= ~(1 << last)
        last = prev_i
    return tuple(reversed(order))


Subsets = tuple[npt.NDArray[np.int64], tuple[tuple[Any, Any, Any], ...]]


def _subsets(n: int) -> Subsets:
    """:func:`_build_subsets` for ``n`` stops, from one table built at the first walk.

    Every stop count up to :data:`ROUTE_MAX` is built at once (~2 ms, ~0.27 MB), so
    the planner's memory reaches its level at its first walk instead of whenever
    a session first meets a walk of 9 or 10 stops, an hour in (issue 10's soak).
    Longer walks (tests only) are built each time.
    """
    return _all_subsets()[n] if n <= ROUTE_MAX else _build_subsets(n)


@functools.lru_cache(maxsize=1)
def _all_subsets() -> tuple[Subsets, ...]:
    return tuple(_build_subsets(n) for n in range(ROUTE_MAX + 1))


def _build_subsets(n: int) -> Subsets:
    """Each subset's membership bits, and the steps of :func:`walk_order`'s programme.

    Per subset size from 2: every (subset, last stop, subset without it) as three
    arrays (~0.1 MB at 10 stops).
    """
    masks = np.arange(1 << n)
    bits = (masks[:, None] >> np.arange(n)) & 1
    size = bits.sum(axis=1)
    layers: list[tuple[Any, Any, Any]] = []
    for k in range(2, n + 1):
        mask, j = np.nonzero(bits * (size == k)[:, None])
        mask, j = mask.astype(np.int32), j.astype(np.int32)
        layers.append((mask, j, mask ^ (np.int32(1) << j)))
    return bits, tuple(layers)


def walk_seconds(
    first: Sequence[float], legs: Sequence[Sequence[float]], order: Sequence[int]
) -> float:
    """Total seconds of walking ``order`` (for tests and the bench)."""
    if not order:
        return 0.0
    out = first[order[0]]
    for a, b in zip(order, order[1:], strict=False):
        out += legs[a][b]
    return float(out)


def route_stops(cands: Sequence[Candidate]) -> list[int]:
    """Indices of ``cands`` forming the remaining work (see the module docstring, step 1)."""
    rates = [c.gain / max(c.minutes, 1e-6) if c.gain > 0 else 0.0 for c in cands]
    if not rates or max(rates) <= 0.0:
        return []
    best = max(rates)
    claimed: F64 | None = None
    out: list[int] = []
    for i in sorted(range(len(cands)), key=lambda k: -rates[k]):
        c = cands[i]
        if rates[i] < MIN_ROUTE_RATE * best or c.per_cell.size == 0:
            continue
        novel = c.gain if claimed is None else float(np.maximum(c.per_cell - claimed, 0.0).sum())
        if novel < NOVEL_SHARE * c.gain:
            continue
        claimed = c.per_cell.copy() if claimed is None else np.maximum(claimed, c.per_cell)
        out.append(i)
        if len(out) >= ROUTE_MAX:
            break
    return out


def _start(recipe: Recipe) -> float | None:
    """Where a test needs the engine first (None: anywhere, an idle in neutral)."""
    if recipe.test_type in ("idle_low_map", "street_cruise") and not recipe.map_steps:
        return None
    return recipe.start_rpm


def _ride(recipe: Recipe) -> float:
    """The MAP ridden up at to ``recipe``'s start: a hold's first step, a serpentine's first row.

    (``sim.scenarios.ride_kpa``; a WOT pull rides up at roll-on, 0 here.)
    """
    if recipe.test_type == "wot_pull" or not recipe.map_steps:
        return 0.0
    return float(recipe.map_steps[0])


@dataclass(frozen=True, slots=True)
class Walk:
    """The best walk over the remaining work: its first stop and its progress stop by stop."""

    first: int
    """Index (into the candidates) of the walk's first stop: the suggestion."""
    seconds: tuple[float, ...]
    """Seconds from now to the end of each stop in walk order (moves, cool-downs included)."""
    gains: tuple[float, ...]
    """Weighted confidence gained by the end of each stop (a cell counted once)."""

    @property
    def gain(self) -> float:
        return self.gains[-1] if self.gains else 0.0

    def seconds_to(self, gain: float) -> float:
        """Seconds until the walk has gained ``gain`` (linear within a stop; inf if never)."""
        t0, g0 = 0.0, 0.0
        for t, g in zip(self.seconds, self.gains, strict=True):
            if g >= gain:
                return t0 + (t - t0) * (gain - g0) / max(g - g0, 1e-12)
            t0, g0 = t, g
        return math.inf

    def mean_seconds_to(self, gain: float) -> float:
        """Mean over the first ``gain`` of the walk of the seconds until each part is gained.

        The area under :meth:`seconds_to` from 0 to ``gain``, over ``gain``: two walks
        reaching the same total are told apart by how soon the bulk of it arrives (the
        same weighing as :data:`FRONT_WEIGHT` in the walk's order). inf if never reached.
        """
        if gain <= 0.0:
            return 0.0
        area, t0, g0 = 0.0, 0.0, 0.0
        for t, g in zip(self.seconds, self.gains, strict=True):
            if g >= gain:
                t_at = t0 + (t - t0) * (gain - g0) / max(g - g0, 1e-12)
                return (area + (gain - g0) * (t0 + t_at) / 2.0) / gain
            area += (g - g0) * (t0 + t) / 2.0
            t0, g0 = t, g
        return math.inf


def plan_walk(
    cands: Sequence[Candidate],
    model: CandidateModel,
    start_rpm: float | None,
    opens: Callable[[Recipe], bool] | None = None,
) -> Walk | None:
    """The best walk over the remaining work (see the module docstring), or None.

    ``opens``: the walk must start with a test it accepts (the opening plan's idle /
    low-MAP work, ``simplan``); the best of those for the walk after it is the first
    stop. When the route picked none of them, the quickest-gaining one joins it.
    """
    picked = route_stops(cands)
    if not picked:
        return None
    if opens is not None and not any(opens(cands[i].recipe) for i in picked):
        opening = [i for i, c in enumerate(cands) if opens(c.recipe) and c.gain > 0]
        if opening:
            best = max(opening, key=lambda i: cands[i].gain / max(cands[i].minutes, 1e-6))
            picked = [*picked[: ROUTE_MAX - 1], best]
    stops = []
    claimed = np.zeros_like(cands[picked[0]].per_cell)
    for i in picked:
        c = cands[i]
        assert isinstance(c.recipe, Recipe)
        s = _start(c.recipe)
        ride = _ride(c.recipe)
        move = 0.0 if s is None else model.move_s(start_rpm, s, ride)
        own = max(60.0 * c.minutes - move, 0.0)
        stops.append(Stop(s, model.end_rpm(c.recipe), own, c.gain, ride))
    first = [
        st.own_s
        + (0.0 if st.start_rpm is None else model.move_s(start_rpm, st.start_rpm, st.ride_kpa))
        for st in stops
    ]
    if opens is not None and any(opens(cands[i].recipe) for i in picked):
        first = [
            f if opens(cands[i].recipe) else math.inf for f, i in zip(first, picked, strict=True)
        ]
    legs = [
        [
            b.own_s
            + (0.0 if b.start_rpm is None else model.move_s(a.end_rpm, b.start_rpm, b.ride_kpa))
            for b in stops
        ]
        for a in stops
    ]
    order = walk_order(first, legs, [st.gain for st in stops], FRONT_WEIGHT)
    seconds, gains = [], []
    for n, j in enumerate(order):
        claimed = np.maximum(claimed, cands[picked[j]].per_cell)
        seconds.append(walk_seconds(first, legs, order[: n + 1]))
        gains.append(float(claimed.sum()))
    return Walk(picked[order[0]], tuple(seconds), tuple(gains))


def first_of_walk(
    cands: Sequence[Candidate], model: CandidateModel, start_rpm: float | None
) -> int | None:
    """Index of the candidate that starts the best walk over the remaining work, or None."""
    walk = plan_walk(cands, model, start_rpm)
    return None if walk is None else walk.first
