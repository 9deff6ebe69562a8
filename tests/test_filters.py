import numpy as np
import pytest

from core.config import ConfigError
from core.coverage.filters import REASONS, FilterChain, FilterLimits
from core.frames import Block, concat

GOOD = {"rpm": 3000.0, "map_kpa": 60.0, "lambda": 0.95, "tps_pct": 10.0, "clt_c": 85.0,
        "accel_enrich_pct": 0.0}  # fmt: skip


def rows_block(rows: list[tuple[float, dict[str, float]]]) -> Block:
    return Block.from_rows("test", [(t, {**GOOD, **over}) for t, over in rows])


def code(reason: str) -> int:
    return REASONS.index(reason) + 1


def test_every_reason_with_a_crafted_block_and_each_sample_counted_once():
    nan = float("nan")
    block = rows_block(
        [
            (0.0, {}),
            (1.0, {"rpm": nan, "clt_c": 20.0}),  # stale wins over cold
            (2.0, {"lambda": nan}),
            (3.0, {"rpm": 200.0, "clt_c": 20.0}),  # not running wins over cold
            (4.0, {"clt_c": 40.0}),
            (5.0, {"lambda": 0.3, "accel_enrich_pct": 10.0}),  # dead wins over accel
            (6.0, {"lambda": 2.0}),
            (7.0, {"accel_enrich_pct": 10.0}),
            (7.3, {}),  # 0.3 s after the enrichment: hold-off
            (8.0, {}),
            (9.0, {"tps_pct": 1.0, "map_kpa": 25.0}),  # closed-throttle overrun
            (9.4, {}),
            (10.0, {}),
        ]
    )
    chain = FilterChain()
    res = chain.apply(block)
    expected: list[int | str] = [0, "stale_channel", "stale_channel", "engine_not_running", "cold",
                "wideband_dead", "wideband_railed", "accel_enrich", "transient_holdoff", 0,
                "decel_fuel_cut", "transient_holdoff", 0]  # fmt: skip
    assert list(res.reason) == [code(e) if isinstance(e, str) else 0 for e in expected]
    assert list(res.keep) == [e == 0 for e in expected]
    assert chain.rejects == {
        "stale_channel": 2, "engine_not_running": 1, "cold": 1, "wideband_dead": 1,
        "wideband_railed": 1, "accel_enrich": 1, "decel_fuel_cut": 1, "transient_holdoff": 2,
    }  # fmt: skip
    assert sum(chain.rejects.values()) == len(block) - int(res.keep.sum())


def test_cold_check_skipped_without_clt_and_missing_required_channel_is_stale():
    block = Block.from_rows("t", [(0.0, {"rpm": 3000.0, "map_kpa": 60.0, "lambda": 0.9})])
    assert FilterChain().apply(block).keep.all()
    no_lambda = Block.from_rows("t", [(0.0, {"rpm": 3000.0, "map_kpa": 60.0})])
    chain = FilterChain()
    assert not chain.apply(no_lambda).keep.any()
    assert chain.rejects["stale_channel"] == 1


def ramp_block(t: np.ndarray, tps: np.ndarray) -> Block:
    n = t.size
    return Block("t", t, {"rpm": np.full(n, 3000.0), "map_kpa": np.full(n, 60.0),
                          "lambda": np.full(n, 0.95), "tps_pct": tps})  # fmt: skip


def test_throttle_snap_rejects_ramp_then_holds_off_but_noise_and_slow_roll_pass():
    t = np.arange(300) * 0.01
    tps = np.interp(t, [0.0, 1.0, 1.2, 3.0], [10.0, 10.0, 60.0, 60.0])
    res = FilterChain().apply(ramp_block(t, tps))
    before = t < 1.0
    assert res.keep[before].all()
    # Rate over 0.1 s: 2.5 %/s after 10 ms is below the limit, 5 % after 20 ms is not.
    during = (t > 1.015) & (t <= 1.2)
    assert (res.reason[during] == code("accel_enrich")).all()
    # The rate window still sees the ramp until ~1.28 s, then 0.5 s of hold-off.
    assert (res.reason[(t > 1.3) & (t < 1.75)] == code("transient_holdoff")).all()
    assert res.keep[t > 1.8].all()

    quantised = 30.0 + 0.4 * (np.arange(300) % 2)  # 8-bit TPS flicker at 100 Hz
    assert FilterChain().apply(ramp_block(t, quantised)).keep.all()
    slow = 10.0 + 10.0 * t  # 10 %/s part-throttle roll
    assert FilterChain().apply(ramp_block(t, slow)).keep.all()


def test_throttle_snap_closed_is_decel():
    t = np.arange(200) * 0.01
    tps = np.interp(t, [0.0, 1.0, 1.1, 2.0], [60.0, 60.0, 20.0, 20.0])
    res = FilterChain().apply(ramp_block(t, tps))
    assert (res.reason[(t > 1.0) & (t <= 1.1)] == code("decel_fuel_cut")).all()


def test_throttle_rate_sees_previous_block_when_blocks_are_tiny():
    t = np.arange(300) * 0.01
    tps = np.interp(t, [0.0, 1.0, 1.2, 3.0], [10.0, 10.0, 60.0, 60.0])
    whole = FilterChain().apply(ramp_block(t, tps))
    chain = FilterChain()
    parts = [chain.apply(ramp_block(t[i : i + 3], tps[i : i + 3])) for i in range(0, 300, 3)]
    assert np.array_equal(np.concatenate([p.reason for p in parts]), whole.reason)


def test_dfco_flag_wins_where_known():
    block = rows_block(
        [(0.0, {"dfco": 1.0}), (1.0, {"dfco": 0.0, "tps_pct": 1.0, "map_kpa": 25.0}),
         (2.0, {"dfco": float("nan"), "tps_pct": 1.0, "map_kpa": 25.0}), (3.0, {"dfco": 0.0})]
    )  # fmt: skip
    res = FilterChain().apply(block)
    assert list(res.reason) == [code("decel_fuel_cut"), 0, code("decel_fuel_cut"), 0]


def test_fuel_cut_with_the_wideband_reading_air_is_fuel_cut_not_a_railed_sensor():
    block = rows_block([(0.0, {"dfco": 1.0, "lambda": 1.7}), (1.0, {"dfco": 0.0, "lambda": 1.7})])
    chain = FilterChain()
    res = chain.apply(block)
    assert list(res.reason) == [code("decel_fuel_cut"), code("wideband_railed")]
    assert chain.rejects["decel_fuel_cut"] == 1 and chain.rejects["wideband_railed"] == 1


def test_holdoff_spans_blocks():
    chain = FilterChain()
    first = rows_block([(0.0, {}), (0.9, {}), (1.0, {"accel_enrich_pct": 20.0})])
    assert list(chain.apply(first).keep) == [True, True, False]
    second = rows_block([(1.2, {}), (1.49, {}), (1.51, {}), (2.0, {})])
    res = chain.apply(second)
    assert list(res.keep) == [False, False, True, True]
    assert chain.rejects["transient_holdoff"] == 2


def test_dwell_is_stateful_across_blocks_and_clipped():
    chain = FilterChain()
    a = chain.apply(rows_block([(0.0, {}), (0.01, {}), (0.02, {})]))
    b = chain.apply(rows_block([(0.03, {}), (0.05, {}), (1.0, {})]))
    assert np.allclose(a.dwell_s, [0.0, 0.01, 0.01])
    assert np.allclose(b.dwell_s, [0.01, 0.02, 0.1])
    chain.reset()
    assert chain.apply(rows_block([(5.0, {})])).dwell_s[0] == 0.0
    assert chain.rejects == dict.fromkeys(REASONS, 0)


def test_knock_count_edges_across_block_boundary():
    chain = FilterChain()
    a = chain.apply(rows_block([(0.0, {"knock_count": 4}), (0.1, {"knock_count": 4})]))
    b = chain.apply(rows_block([(0.2, {"knock_count": 5}), (0.3, {"knock_count": float("nan")}),
                                (0.4, {"knock_count": 7}), (0.5, {"knock_count": 7})]))  # fmt: skip
    assert list(a.knock_events) == [0, 0]  # no previous sample: not an event
    assert list(b.knock_events) == [1, 0, 1, 0]
    assert b.knock_events.dtype == np.int64


def test_knock_retard_rise_when_there_is_no_count():
    chain = FilterChain()
    a = chain.apply(
        rows_block([(0.0, {"knock_retard_deg": 0.0}), (0.1, {"knock_retard_deg": 2.0})])
    )
    b = chain.apply(rows_block([(0.2, {"knock_retard_deg": 3.0}), (0.3, {"knock_retard_deg": 0.0}),
                                (0.4, {"knock_retard_deg": 1.5})]))  # fmt: skip
    assert list(a.knock_events) == [0, 1]
    assert list(b.knock_events) == [0, 0, 1]


def random_stream(n: int, seed: int) -> Block:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.005, 0.03, n))
    tps = np.clip(np.cumsum(rng.normal(0, 1.5, n)) % 100, 0, 100)
    cols = {
        "rpm": np.where(rng.random(n) < 0.01, np.nan, 800 + 60 * tps + rng.normal(0, 50, n)),
        "map_kpa": 20 + 0.85 * tps,
        "lambda": np.where(rng.random(n) < 0.02, 1.8, rng.uniform(0.8, 1.05, n)),
        "tps_pct": tps,
        "clt_c": np.linspace(50, 90, n),
        "knock_count": np.cumsum(rng.random(n) < 0.01).astype(float),
    }
    return Block("s", t, cols)


def test_one_block_equals_many_small_blocks():
    block = random_stream(3000, 3)
    whole_chain, part_chain = FilterChain(), FilterChain()
    whole = whole_chain.apply(block)
    parts = [part_chain.apply(block.slice(i, i + 3)) for i in range(0, 3000, 3)]
    assert np.array_equal(np.concatenate([p.keep for p in parts]), whole.keep)
    assert np.allclose(np.concatenate([p.dwell_s for p in parts]), whole.dwell_s)
    assert np.array_equal(np.concatenate([p.knock_events for p in parts]), whole.knock_events)
    assert whole_chain.rejects == part_chain.rejects
    assert sum(whole_chain.rejects.values()) > 100  # the stream exercises the filters
    assert concat([block.slice(0, 5), block.slice(5, 9)]).t.size == 9


def test_limits_from_mapping_validates_every_key():
    limits = FilterLimits.from_mapping({"min_clt_c": 70, "required_channels": ["rpm", "lambda"]})
    assert limits.min_clt_c == 70.0 and limits.required_channels == ("rpm", "lambda")
    cases: list[tuple[dict[str, object], str]] = [
        ({"min_clt": 70}, "filters.min_clt: unknown filter limit"),
        ({"min_clt_c": "hot"}, "filters.min_clt_c: expected a number"),
        ({"max_dwell_s": -1}, "filters.max_dwell_s: must be a finite number >= 0"),
        ({"max_dwell_s": 0}, "filters.max_dwell_s: must be greater than 0"),
        ({"lambda_min": 1.2, "lambda_max": 1.0}, "filters.lambda_max: 1 must be greater"),
        ({"transient_holdoff_s": True}, "filters.transient_holdoff_s: expected a number"),
        ({"required_channels": ["rpm", "boost"]}, "'boost' is not a canonical channel"),
        ({"required_channels": "rpm"}, "filters.required_channels: expected a list"),
    ]
    for mapping, fragment in cases:
        with pytest.raises(ConfigError) as err:
            FilterLimits.from_mapping(mapping)
        assert fragment in str(err.value), (mapping, str(err.value))


def test_empty_block_and_clock_going_backwards():
    chain = FilterChain()
    empty = chain.apply(Block("t", np.zeros(0), {}))
    assert empty.keep.size == 0
    chain.apply(rows_block([(100.0, {"accel_enrich_pct": 20.0})]))
    # A restarted source starts its clock again: old timers must not hold it off.
    res = chain.apply(rows_block([(0.0, {}), (0.01, {})]))
    assert res.keep.all() and res.dwell_s[0] == 0.0
