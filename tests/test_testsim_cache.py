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
