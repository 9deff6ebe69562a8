import numpy as np
import pytest

from core.frames import Block, concat
from core.fusion import Fuser


def _collect(fuser: Fuser, blocks: list[Block]) -> Block:
    out = [b for b in (fuser.push(blk) for blk in blocks) if b is not None]
    tail = fuser.flush()
    if tail is not None:
        out.append(tail)
    return concat(out)


def _ecu_and_wb(n: int = 200, rate_hz: float = 100.0) -> Block:
    t = np.arange(n) / rate_hz
    rpm = 2000 + 10 * np.arange(n, dtype=float)
    lam = 0.8 + 0.001 * np.arange(n, dtype=np.float64)
    return Block("sim", t, {"rpm": rpm, "map_kpa": np.full(n, 90.0), "lambda": lam})


def test_single_source_without_delay_passes_rows_through():
    blk = _ecu_and_wb()
    fused = _collect(Fuser(lambda_delay_s=0.0), [blk])
    np.testing.assert_array_equal(fused.t, blk.t)
    np.testing.assert_array_equal(fused.column("rpm"), blk.column("rpm"))
    np.testing.assert_allclose(fused.column("lambda"), blk.column("lambda"))
    np.testing.assert_allclose(fused.column("afr"), blk.column("lambda") * 14.7)


def test_lambda_is_shifted_back_by_the_transport_delay():
    blk = _ecu_and_wb()
    fused = _collect(Fuser(lambda_delay_s=0.05), [blk])
    # the row at t takes the lambda measured 5 samples (50 ms) later
    lam = fused.column("lambda")
    np.testing.assert_allclose(lam[:-5], blk.column("lambda")[5:])
    assert fused.t.size == blk.t.size


def test_rows_wait_for_the_delayed_lambda_before_release():
    fuser = Fuser(lambda_delay_s=0.05)
    blk = _ecu_and_wb(100)
    first = fuser.push(blk.slice(0, 50))
    assert first is not None
    # rows whose lambda (t + 50 ms) has not arrived yet are held back
    assert first.t[-1] <= blk.t[49] - 0.05 + 1e-9
    assert np.isfinite(first.column("lambda")).all()


def test_block_grouping_does_not_change_the_rows():
    blk = _ecu_and_wb(500)
    whole = _collect(Fuser(lambda_delay_s=0.09), [blk])
    pieces = [blk.slice(i, i + 3) for i in range(0, 500, 3)]
    split = _collect(Fuser(lambda_delay_s=0.09), pieces)
    np.testing.assert_array_equal(whole.t, split.t)
    for name in ("rpm", "map_kpa", "lambda"):
        np.testing.assert_array_equal(whole.column(name), split.column(name))


def test_two_sources_fuse_by_zero_order_hold_and_go_stale():
    fuser = Fuser(lambda_delay_s=0.0, stale_s={"lambda": 0.3}, expect_mixture=True)
    ecu = Block("ecu", np.array([0.0, 0.1, 0.2]), {"rpm": np.array([3000.0, 3100, 3200])})
    wb = Block("wb", np.array([0.05]), {"lambda": np.array([0.9])})
    ecu2 = Block("ecu", np.array([0.3, 0.5]), {"rpm": np.array([3300.0, 3500])})
    fused = _collect(fuser, [ecu, wb, ecu2])
    rows = dict(zip(fused.t.tolist(), fused.column("lambda").tolist(), strict=True))
    rpm_rows = dict(zip(fused.t.tolist(), fused.column("rpm").tolist(), strict=True))
    assert rows[0.1] == pytest.approx(0.9)
    assert rows[0.3] == pytest.approx(0.9)  # 0.25 s old: still fresh
    assert np.isnan(rows[0.5])  # 0.45 s old: stale, never reused
    assert np.isnan(rows[0.0])  # before the first wideband sample
    # a lambda-only sample is not an engine-state sample: it makes no row of its own
    assert 0.05 not in rpm_rows
    assert rpm_rows == {0.0: 3000.0, 0.1: 3100.0, 0.2: 3200.0, 0.3: 3300.0, 0.5: 3500.0}


def test_rows_do_not_depend_on_how_two_sources_interleaved():
    """Live threads and a replay hand blocks over in different orders: same rows."""
    t = np.arange(0, 3, 0.01)
    ecu = Block("ecu", t, {"rpm": 2000 + 1000 * t, "lambda": 0.9 + 0.01 * t})
    td = np.arange(0.003, 3, 0.05)
    dyno = Block("dyno", td, {"power_hp": 10 * td, "torque_nm": 50 + td})
    ecu_parts = [ecu.slice(i, i + 3) for i in range(0, len(ecu), 3)]
    dyno_parts = [dyno.slice(i, i + 1) for i in range(len(dyno))]
    live = []  # interleaved as they would arrive in real time
    for part in sorted(ecu_parts + dyno_parts, key=lambda b: b.t[0]):
        live.append(part)
    # a recording coalesces each source's blocks for up to 250 ms per record
    replayed = []
    for start in np.arange(0, 3, 0.25):
        for whole in (dyno, ecu):
            lo, hi = np.searchsorted(whole.t, [start, start + 0.25])
            replayed.append(whole.slice(int(lo), int(hi)))
    a = _collect(Fuser(0.09, sources=("ecu", "dyno")), live)
    b = _collect(Fuser(0.09, sources=("ecu", "dyno")), replayed)
    np.testing.assert_array_equal(a.t, b.t)
    for name in ("rpm", "lambda", "power_hp", "torque_nm"):
        np.testing.assert_array_equal(a.column(name), b.column(name), err_msg=name)
    assert np.isfinite(a.column("power_hp")[5:]).all()  # the dyno's power rides on ECU rows


def test_afr_only_source_is_converted_to_lambda():
    fuser = Fuser(stoich=14.7)
    blk = Block(
        "aem", np.array([0.0, 0.1]), {"afr": np.array([14.7, 12.5]), "rpm": np.array([1.0, 2.0])}
    )
    fused = _collect(fuser, [blk])
    np.testing.assert_allclose(fused.column("lambda"), [1.0, 12.5 / 14.7])


def test_rows_are_released_with_nan_when_the_wideband_falls_silent():
    fuser = Fuser(lambda_delay_s=0.1, stale_s={"lambda": 0.2})
    fuser.push(Block("wb", np.array([0.0]), {"lambda": np.array([1.0])}))
    out = fuser.push(Block("ecu", np.arange(0, 2.0, 0.1), {"rpm": np.full(20, 3000.0)}))
    assert out is not None
    # rows far older than newest - delay - stale are released even without lambda
    assert out.t.max() >= 1.5
    assert np.isnan(out.column("lambda")[-1])


def test_without_a_wideband_expected_rows_are_released_at_once():
    fuser = Fuser(lambda_delay_s=0.1)
    out = fuser.push(Block("ecu", np.array([0.0, 0.1]), {"rpm": np.array([1000.0, 1100.0])}))
    assert out is not None and out.t.size == 2
    assert "lambda" not in out.columns


def test_history_buffers_match_concatenation_and_are_not_reallocated_per_block() -> None:
    """Issue 10's 1-kHz soak: the history was reallocated whole on every block (~40 kB,
    33 times a second). Now written in place; same samples as keeping every block."""
    from core.fusion import _History

    rng = np.random.default_rng(5)
    hist = _History()
    ref_t, ref_v = np.empty(0), np.empty(0)
    buffers: set[int] = set()
    t0 = 0.0
    for i in range(3000):
        n = int(rng.integers(1, 60))
        t = t0 + np.sort(rng.uniform(0.0, 0.03, n))
        if i % 500 == 499:  # now and then a second source's block, a little in the past
            t = t - 0.05
        v = rng.normal(size=n)
        hist.add(t, v)
        all_t, all_v = np.concatenate([ref_t, t]), np.concatenate([ref_v, v])
        order = np.argsort(all_t, kind="stable")
        ref_t, ref_v = all_t[order], all_v[order]
        t0 = float(max(t[-1], t0 + 0.03))
        before = t0 - 5.0
        hist.trim(before)
        if ref_t.size >= 1024:
            cut = min(int(np.searchsorted(ref_t, before, side="left")) - 1, ref_t.size - 1)
            if cut > 0:
                ref_t, ref_v = ref_t[cut:], ref_v[cut:]
        assert np.array_equal(hist.t, ref_t) and np.array_equal(hist.v, ref_v)
        buffers.add(id(hist._t))
    probe = np.linspace(t0 - 4.0, t0, 50)
    idx = np.searchsorted(ref_t, probe + 1e-9, side="right") - 1
    want = np.where((idx >= 0) & (probe - ref_t[idx] <= 1.0), ref_v[idx], np.nan)
    assert np.array_equal(hist.at(probe, 1.0), want, equal_nan=True)
    # ~5 s of ~1 kHz rows: a handful of buffers over 3,000 blocks, not one per block
    assert len(buffers) <= 20
