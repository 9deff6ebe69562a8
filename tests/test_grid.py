import numpy as np
import pytest

from core.coverage.axes import AxesError, TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.filters import FilterChain
from core.coverage.grid import ARRAY_NAMES, CoverageGrid, GridError
from core.frames import Block

AXES = TableAxes(np.array([1000.0, 2000.0, 4000.0]), np.array([20.0, 60.0, 100.0]))


def block(rows: list[dict[str, float]], t0: float = 0.0, dt: float = 0.01) -> Block:
    return Block.from_rows("t", [(t0 + i * dt, r) for i, r in enumerate(rows)])


def test_one_sample_on_a_breakpoint_goes_wholly_to_that_cell():
    grid = CoverageGrid(AXES)
    assert grid.update(block([{"rpm": 2000.0, "map_kpa": 60.0, "lambda": 0.9}])) == 1
    assert grid.hits[1, 1] == 1 and grid.hits.sum() == 1
    assert grid.weight[1, 1] == 1.0 and grid.weight.sum() == 1.0
    # the last breakpoints too (the interval index is clamped, the fraction is 1)
    grid.update(block([{"rpm": 4000.0, "map_kpa": 100.0, "lambda": 0.9}]))
    assert grid.hits[2, 2] == 1 and grid.weight[2, 2] == 1.0


def test_bilinear_split_at_known_points_sums_to_one_per_sample():
    grid = CoverageGrid(AXES)
    grid.update(block([{"rpm": 1500.0, "map_kpa": 40.0}]))  # centre of 4 cells
    assert np.allclose(grid.weight[:2, :2], 0.25)
    grid = CoverageGrid(AXES)
    grid.update(block([{"rpm": 2500.0, "map_kpa": 30.0}]))  # 1/4 along rpm, 1/4 along MAP
    expected = np.zeros((3, 3))
    expected[0, 1], expected[0, 2] = 0.75 * 0.75, 0.75 * 0.25
    expected[1, 1], expected[1, 2] = 0.25 * 0.75, 0.25 * 0.25
    assert np.allclose(grid.weight, expected)
    assert grid.hits[0, 1] == 1  # nearest cell
    rng = np.random.default_rng(0)
    n = 5000
    many = Block("t", np.arange(n, dtype=np.float64) * 0.01, {"rpm": rng.uniform(500, 5000, n),
                                             "map_kpa": rng.uniform(0, 120, n)})  # fmt: skip
    grid = CoverageGrid(AXES)
    assert grid.update(many) == n
    assert np.isclose(grid.weight.sum(), n) and grid.hits.sum() == n


def test_half_a_cell_outside_counts_as_outside_table_at_all_edges():
    grid = CoverageGrid(AXES)
    rows = [
        {"rpm": 500.0, "map_kpa": 60.0},  # exactly half a cell out: binned to the edge
        {"rpm": 499.0, "map_kpa": 60.0},
        {"rpm": 5001.0, "map_kpa": 60.0},
        {"rpm": 2000.0, "map_kpa": -1.0},
        {"rpm": 2000.0, "map_kpa": 121.0},
        {"rpm": 5000.0, "map_kpa": 120.0},
    ]
    assert grid.update(block(rows)) == 2
    assert grid.rejects["outside_table"] == 4
    assert grid.hits[1, 0] == 1 and grid.weight[1, 0] == 1.0
    assert grid.hits[2, 2] == 1 and grid.weight[2, 2] == 1.0


def test_known_lambda_mean_and_std_and_missing_lambda():
    grid = CoverageGrid(AXES, stoich=14.7)
    nan = float("nan")
    rows = [{"rpm": 1000.0, "map_kpa": 20.0, "lambda": lam} for lam in (0.9, 1.1, 0.9, 1.1, nan)]
    grid.update(block(rows))
    assert grid.hits[0, 0] == 5  # the NaN-lambda sample still counts as a hit
    assert grid.lambda_mean()[0, 0] == pytest.approx(1.0)
    assert grid.lambda_std()[0, 0] == pytest.approx(0.1)
    assert grid.afr_mean()[0, 0] == pytest.approx(14.7)
    assert np.isnan(grid.lambda_mean()[2, 2])
    assert np.isnan(grid.afr_error_pct()[0, 0])  # no target known


def test_afr_error_sign_lean_is_positive_with_either_target_channel():
    grid = CoverageGrid(AXES, stoich=14.7)
    grid.update(block([{"rpm": 1000.0, "map_kpa": 20.0, "lambda": 0.99, "lambda_target": 0.9}]))
    grid.update(block([{"rpm": 4000.0, "map_kpa": 100.0, "lambda": 0.85, "afr_target": 12.5}]))
    err = grid.afr_error_pct()
    assert err[0, 0] == pytest.approx(10.0)  # lean by 10 %
    assert err[2, 2] == pytest.approx((0.85 / (12.5 / 14.7) - 1) * 100)
    assert err[2, 2] < 0  # rich


def test_knock_is_recorded_across_a_block_boundary_even_in_rejected_samples():
    chain = FilterChain()
    grid = CoverageGrid(AXES)
    base = {"rpm": 4000.0, "map_kpa": 100.0, "lambda": 0.85, "clt_c": 90.0}
    first = block([{**base, "knock_count": 3.0}, {**base, "knock_count": 3.0}])
    second = block(
        [{**base, "knock_count": 4.0, "knock_retard_deg": 2.5},
         {**base, "knock_count": 4.0, "clt_c": 20.0, "knock_retard_deg": 4.0},
         {**base, "knock_count": 5.0, "clt_c": 20.0}],
        t0=0.02,
    )  # fmt: skip
    for b in (first, second):
        grid.update(b, chain.apply(b))
    assert grid.knock_events[2, 2] == 2
    assert grid.knock_retard_max[2, 2] == 4.0
    assert grid.hits[2, 2] == 3  # the two cold samples are not binned for fuel
    assert grid.last_seen_t[2, 2] == pytest.approx(0.02)


def test_filter_result_keep_mask_is_respected_and_dwell_comes_from_it():
    chain = FilterChain()
    grid = CoverageGrid(AXES)
    b = block([{"rpm": 2000.0, "map_kpa": 60.0, "lambda": lam} for lam in (0.9, 2.0, 0.9)], dt=0.05)
    assert grid.update(b, chain.apply(b)) == 2
    # dwell is time since the previous sample of the stream, rejected or not: 0 + 0.05 s
    assert grid.dwell_s[1, 1] == pytest.approx(0.05)
    with pytest.raises(GridError):
        grid.update(b.slice(0, 2), chain.apply(b))


def random_block(n: int, seed: int) -> Block:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.005, 0.02, n))
    tps = np.clip(np.cumsum(rng.normal(0, 0.3, n)) % 100, 0, 100)
    knock = np.cumsum(rng.random(n) < 0.01).astype(float)
    return Block("s", t, {
        "rpm": 700 + 50 * tps + rng.normal(0, 30, n), "map_kpa": 15 + 0.95 * tps,
        "lambda": np.where(rng.random(n) < 0.01, np.nan, rng.uniform(0.8, 1.05, n)),
        "lambda_target": np.where(tps > 70, 0.87, 0.95), "tps_pct": tps,
        "knock_count": knock, "knock_retard_deg": np.where(rng.random(n) < 0.02, 3.0, 0.0),
        "clt_c": np.linspace(55, 90, n),
    })  # fmt: skip


def assert_same(a: CoverageGrid, b: CoverageGrid) -> None:
    for name in ARRAY_NAMES:
        x, y = getattr(a, name), getattr(b, name)
        if x.dtype.kind == "i":
            assert np.array_equal(x, y), name
        else:
            assert np.allclose(x, y, rtol=1e-12, atol=1e-12, equal_nan=True), name
    assert a.samples_binned == b.samples_binned


def test_one_big_block_equals_a_thousand_small_blocks():
    big = random_block(30_000, 5)
    one = CoverageGrid(TableAxes.default())
    chain = FilterChain()
    one.update(big, chain.apply(big))
    many = CoverageGrid(TableAxes.default())
    chain_many = FilterChain()
    for i in range(0, 30_000, 30):
        part = big.slice(i, i + 30)
        many.update(part, chain_many.apply(part))
    assert_same(one, many)
    assert one.rejects == many.rejects and chain.rejects == chain_many.rejects
    assert one.samples_binned > 10_000 and one.knock_events.sum() > 10


def test_merge_copy_and_array_round_trip():
    a, b = CoverageGrid(TableAxes.default()), CoverageGrid(TableAxes.default())
    a.update(random_block(4000, 1), FilterChain().apply(random_block(4000, 1)))
    b.update(random_block(4000, 2))
    both = CoverageGrid(TableAxes.default())
    both.update(random_block(4000, 1), FilterChain().apply(random_block(4000, 1)))
    both.update(random_block(4000, 2))
    merged = a.copy()
    merged.merge(b)
    assert_same(merged, both)
    assert a.samples_binned + b.samples_binned == merged.samples_binned

    stored = merged.to_arrays()
    back = CoverageGrid.from_arrays(TableAxes.default(), stored, hit_target=10)
    for name in ARRAY_NAMES:
        assert np.array_equal(getattr(back, name), stored[name], equal_nan=True), name
    assert back.samples_binned == merged.samples_binned
    stored["hits"][0, 0] += 100  # to_arrays hands out copies
    assert merged.hits[0, 0] != stored["hits"][0, 0]

    with pytest.raises(AxesError):
        merged.merge(CoverageGrid(AXES))
    with pytest.raises(GridError, match="missing the 'weight' array"):
        CoverageGrid.from_arrays(
            TableAxes.default(), {k: v for k, v in stored.items() if k != "weight"}
        )
    with pytest.raises(GridError, match="'hits' has shape"):
        CoverageGrid.from_arrays(AXES, stored)


def test_coverage_view_and_cell_lookup():
    grid = CoverageGrid(AXES, hit_target=3, rule=CoverageRule(min_dwell_s=0.0))
    grid.update(block([{"rpm": 2000.0, "map_kpa": 60.0, "lambda": 0.9}] * 3))
    grid.update(block([{"rpm": 1000.0, "map_kpa": 20.0, "lambda": 0.9}] * 2))
    assert grid.covered_cells() == 1 and grid.covered_pct() == pytest.approx(100 / 9)
    assert grid.covered_mask()[1, 1] and not grid.covered_mask()[0, 0]
    assert grid.cell_of(1900.0, 55.0) == (1, 1)
    assert grid.cell_of(9000.0, 55.0) is None
    view = grid.view()
    assert view.covered_cells == 1 and view.hit_target == 3
    assert view.hits[1, 1] == 3 and view.afr_mean[1, 1] == pytest.approx(0.9 * 14.7)
    with pytest.raises(ValueError):
        view.hits[0, 0] = 1
    grid.update(block([{"rpm": 1000.0, "map_kpa": 20.0}]))
    assert view.hits[0, 0] == 2  # the view is a copy


def test_flat_index_matches_nearest_and_constructor_checks():
    idx = AXES.flat_index(np.array([1000.0, 3500.0, 9000.0]), np.array([20.0, 90.0, 50.0]))
    assert list(idx) == [0, 2 * 3 + 2, -1]
    with pytest.raises(GridError, match="hit_target"):
        CoverageGrid(AXES, hit_target=0)
    with pytest.raises(GridError, match="stoich"):
        CoverageGrid(AXES, stoich=0.0)
