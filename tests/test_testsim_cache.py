"""The top suggestion's from-here prediction is cached sparse (issue 10's soak).

``simulate_from`` gains a cache entry for every operating point the engine visits,
so over a long run its cache kept filling; dense, an entry was 6 x 256 float64
(~12 kB). Sparse it holds only the cells the test touches, and what callers get is
the same dense, read-only arrays.
"""

from __future__ import annotations

import numpy as np

from core.plan.recipe import Recipe
from core.plan.testsim import ADDITIVE, model_key
from core.vehicle import VehicleConfig
from sim.testsim import SimCandidates, _simulate_from_sparse, recipe_segments, run_windows


def test_from_here_prediction_is_cached_sparse_and_returned_dense() -> None:
    key = model_key(VehicleConfig(), None)
    recipe = Recipe("wot_pull", 2000.0, 5800.0)
    got = SimCandidates(key).recipe_from(recipe, 3000.0, 50.0)
    cells, values = _simulate_from_sparse(key, recipe_segments(recipe, key.kind), 3000.0, 50.0)
    assert set(got) == set(ADDITIVE) == set(values)
    assert 0 < cells.size < key.axes.n_cells // 4
    cached = cells.nbytes + sum(v.nbytes for v in values.values())
    assert cached < sum(a.nbytes for a in got.values()) / 4
    for k, dense in got.items():
        assert dense.shape == (key.axes.n_cells,) and not dense.flags.writeable
        assert np.array_equal(dense[cells], values[k])
        outside = np.ones(key.axes.n_cells, dtype=bool)
        outside[cells] = False
        assert not dense[outside].any()
    assert got["hits"].sum() > 0


def test_run_windows_is_what_the_sparse_cache_holds() -> None:
    """The dense arrays equal a fresh simulation of the same test (nothing lost)."""
    from sim.scenarios import SteadyHold, chain, transition_s
    from sim.simulation import Simulation
    from sim.vehicles import get_vehicle

    key = model_key(VehicleConfig(), None)
    recipe = Recipe("steady_state", 3000.0, 3000.0, (50.0, 70.0, 95.0))
    segments = recipe_segments(recipe, key.kind)
    got = SimCandidates(key).recipe_from(recipe, 2500.0, 40.0)
    vehicle = get_vehicle(key.kind)
    segs = chain(list(segments), vehicle, 2500.0)
    lead = (SteadyHold(2500.0, (40.0,), hold_s=2.0, settle_s=transition_s(vehicle, None, 2500.0)),)
    sim = Simulation(vehicle, lead + segs, seed=7, rate_hz=key.rate_hz)
    lead_s = sum(s.duration_s(vehicle) for s in lead)
    total_s = lead_s + sum(s.duration_s(vehicle) for s in segs)
    (want,) = run_windows(key, sim, [lead_s, total_s])
    for k in ADDITIVE:
        assert np.array_equal(got[k], want[k]), k


def _nbytes(obj: object) -> int:
    if isinstance(obj, tuple):
        return sum(_nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    nbytes = getattr(obj, "nbytes", None)
    return int(nbytes) if nbytes is not None else 0


def test_every_planner_simulation_cache_holds_its_entries_sparse() -> None:
    """Hold columns, live holds, row sweeps, recipes: each LRU entry ~1/8 of dense, same answer.

    Dense and full, these LRUs (256 hold columns of ~8 steps, 64 row sweeps, ...)
    would hold ~70 MB; the hour-long soak saw them fill as slow growth.
    """
    from core.coverage.confidence import CoverageRule
    from sim import testsim

    key = model_key(VehicleConfig(), None)
    rule = CoverageRule()
    rows = (30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 95.0)
    calls = [
        (testsim.simulate_column, (key, 3000.0, rows)),
        (testsim.simulate_live_column, (key, 3500.0, rows, rule)),
        (testsim.simulate_rows, (key, 2000.0, 4000.0, 250.0, (40.0, 60.0))),
        (testsim.simulate_segments, (key, recipe_segments(Recipe("wot_pull", 2000.0, 5800.0), "vtwin"))),
        (
            testsim.simulate_live_from,
            (key, recipe_segments(Recipe("steady_state", 3000.0, 3000.0, (50.0, 70.0)), "vtwin"), 2500.0, 40.0, rule),
        ),
    ]  # fmt: skip
    for fn, args in calls:
        got = fn(*args)
        held = fn.packed(*args)  # type: ignore[attr-defined]
        want = fn.__wrapped__(*args)  # type: ignore[attr-defined]
        assert _nbytes(held) * 4 < _nbytes(want), fn.__name__
        flat_got, flat_want = _leaves(got), _leaves(want)
        assert len(flat_got) == len(flat_want) > 0
        for a, b in zip(flat_got, flat_want, strict=True):
            if isinstance(b, np.ndarray):
                assert isinstance(a, np.ndarray) and not a.flags.writeable, fn.__name__
                assert np.array_equal(a, b), fn.__name__
            else:
                assert a == b


def _leaves(obj: object) -> list[object]:
    if isinstance(obj, tuple):
        return [x for o in obj for x in _leaves(o)]
    if isinstance(obj, dict):
        return [obj[k] for k in sorted(obj)]
    return [obj]


def test_transition_cache_stays_small_when_asked_from_every_live_rpm() -> None:
    """The live planner asks from the engine's exact rpm: the LRU must not keep them all."""
    from sim.scenarios import TRANSITION_CACHE, transition_s

    for i in range(3 * TRANSITION_CACHE):
        transition_s("vtwin", 2000.0 + i * 0.37, 3500.0)
    assert transition_s.cache_info().currsize <= TRANSITION_CACHE <= 1024


def test_minute_caches_asked_from_live_rpm_stay_small_too() -> None:
    """hold_minutes, move_s and recipe_minutes are keyed by the live rpm as well (same bound)."""
    from core.plan.recipe import Recipe
    from sim.scenarios import TRANSITION_CACHE
    from sim.testsim import hold_minutes, move_s, recipe_minutes

    recipe = Recipe(test_type="wot_pull", rpm_lo=2000.0, rpm_hi=5000.0)
    for i in range(3 * TRANSITION_CACHE):
        rpm = 2000.0 + i * 0.37
        hold_minutes("vtwin", rpm, 3500.0, 6.0)
        move_s("vtwin", rpm, 3500.0)
        recipe_minutes("vtwin", recipe, rpm)
    for cached in (hold_minutes, move_s, recipe_minutes):
        assert cached.cache_info().currsize <= TRANSITION_CACHE <= 1024, cached


def test_caches_keyed_by_where_the_engine_is_fill_within_the_warm_up() -> None:
    """The from-here predictions' LRUs hold few entries (issue 10's soak).

    Their keys carry the live operating point and the data the hold's cells already
    have, so they seldom repeat: the soak's TUI added ~13 a minute to
    ``simulate_live_from``, and at 256 entries it kept growing for ~20 minutes after
    the 10-minute warm-up; at 64 it still took ~10 minutes and found 2-4 of ~140
    keys again. At 16 it is full in the first minutes; the oldest keys go first.
    """
    from core.coverage.confidence import CoverageRule
    from sim import testsim

    assert testsim.FROM_HERE_CACHE <= 16
    for cached in (testsim.simulate_live_from.packed, testsim._simulate_from_sparse):  # type: ignore[attr-defined]
        assert cached.cache_parameters()["maxsize"] == testsim.FROM_HERE_CACHE, cached
    key = model_key(VehicleConfig(), None)
    segs = recipe_segments(Recipe("steady_state", 3000.0, 3000.0, (50.0,)), key.kind)
    testsim.simulate_live_from.cache_clear()  # type: ignore[attr-defined]
    rule = CoverageRule()
    for i in range(testsim.FROM_HERE_CACHE + 8):
        # one cell's data grows between re-plans: every call is a new key
        testsim.simulate_live_from(key, segs, 2500.0, 40.0, rule, ((0, (float(i + 1),) * 6),))
    info = testsim.simulate_live_from.cache_info()  # type: ignore[attr-defined]
    assert info.currsize == testsim.FROM_HERE_CACHE
