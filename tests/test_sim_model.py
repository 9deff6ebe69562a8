"""Simulator physics: determinism, plausibility, and each effect a tuner relies on."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from core.channels import CHANNELS, power_hp_from_torque
from core.frames import Block, concat
from sim.delay import DelayLine
from sim.scenarios import SteadyHold, TipIn, WotPull, build_scenario
from sim.simulation import SIM_CHANNELS, WIDEBAND_LEAN_RAIL_LAMBDA, Simulation
from sim.source import generate, run_segments
from sim.vehicles import SimParamError, get_vehicle


def _run(sim: Simulation, block: int = 500) -> Block:
    return concat(list(iter(lambda: sim.next_block(block), None)))


@functools.cache
def _scenario(name: str, vehicle: str = "vtwin", seed: int = 1) -> tuple[Block, Simulation]:
    v = get_vehicle(vehicle)
    sim = Simulation(v, build_scenario(name, v).segments, seed=seed)
    return _run(sim), sim


def test_same_seed_same_blocks_and_block_size_does_not_matter() -> None:
    a = concat(list(generate(seed=7, duration_s=40.0, block_s=0.5)))
    b = concat(list(generate(seed=7, duration_s=40.0, block_s=0.02)))
    assert len(a) == len(b) == 4000
    np.testing.assert_array_equal(a.t, b.t)
    for name in SIM_CHANNELS:
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=name)


def test_different_seed_different_blocks() -> None:
    a = concat(list(generate(seed=1, duration_s=10.0)))
    b = concat(list(generate(seed=2, duration_s=10.0)))
    assert not np.array_equal(a.columns["lambda"], b.columns["lambda"])
    assert not np.array_equal(a.columns["map_kpa"], b.columns["map_kpa"])


@pytest.mark.parametrize(
    ("scenario", "vehicle"),
    [
        ("pulls", "vtwin"),
        ("steady", "vtwin"),
        ("street", "vtwin"),
        ("idle", "vtwin"),
        ("pulls", "car"),
    ],
)
def test_every_channel_canonical_and_plausible(scenario: str, vehicle: str) -> None:
    block, _ = _scenario(scenario, vehicle)
    assert set(block.columns) == set(SIM_CHANNELS)
    for name, values in block.columns.items():
        ch = CHANNELS[name]
        assert np.all(np.isfinite(values)), name
        assert values.min() >= ch.lo and values.max() <= ch.hi, (name, values.min(), values.max())
    np.testing.assert_allclose(block.columns["afr"], block.columns["lambda"] * 14.7)
    expected_hp = np.maximum(
        power_hp_from_torque(block.columns["torque_nm"], block.columns["rpm"]), 0.0
    )
    np.testing.assert_allclose(block.columns["power_hp"], expected_hp)


def test_idle_stays_at_idle() -> None:
    block, _ = _scenario("idle")
    rpm, map_kpa = block.columns["rpm"], block.columns["map_kpa"]
    assert abs(np.median(rpm) - 950.0) < 30.0
    assert np.all(np.abs(rpm - 950.0) < 100.0)
    assert 28.0 < np.median(map_kpa) < 36.0
    assert np.all(block.columns["knock_count"] == 0)
    assert np.all(block.columns["dfco"] == 0)


def test_pulls_reach_wot_and_sweep_the_rev_range() -> None:
    block, _ = _scenario("pulls")
    c = block.columns
    assert c["map_kpa"].max() > 95.0
    wot = c["tps_pct"] > 95.0
    assert np.ptp(c["rpm"][wot]) >= 2500.0
    # One pull (2500 -> 5800 rpm on the vtwin) takes 6-10 s on the inertia drum.
    edges = np.flatnonzero(np.diff(wot.astype(int)))
    first_s = (edges[1] - edges[0]) / 100.0
    assert 6.0 <= first_s <= 10.0
    assert 0.5 * c["power_hp"].max() < np.median(c["power_hp"][wot])
    assert c["drum_speed_kph"].max() > 120.0


def test_lean_where_ecu_ve_is_low_cellwise() -> None:
    block, sim = _scenario("steady")
    c = block.columns
    tables = sim.model.tables
    # Steady samples only: fuelled, no enrichment, MAP settled, lambda delay passed.
    map_smooth = np.convolve(c["map_kpa"], np.ones(25) / 25.0, mode="same")
    d_map_kpa_s = np.abs(np.gradient(map_smooth)) * 100.0
    keep = (c["dfco"] == 0) & (c["accel_enrich_pct"] < 0.5) & (d_map_kpa_s < 3.0)
    rpm_i = np.rint((c["rpm"] - tables.rpm_axis[0]) / 250.0).astype(int)
    map_i = np.rint((c["map_kpa"] - tables.map_axis_kpa[0]) / 5.0).astype(int)
    cells = map_i * 1000 + rpm_i
    measured = c["lambda"] / c["lambda_target"]
    means_measured, means_expected = [], []
    for cell in np.unique(cells[keep]):
        sel = keep & (cells == cell)
        if sel.sum() < 100:
            continue
        means_measured.append(measured[sel].mean())
        means_expected.append(tables.ve_error_ratio()[cell // 1000, cell % 1000])
    assert len(means_measured) >= 15
    r = np.corrcoef(means_measured, means_expected)[0, 1]
    assert r > 0.8, r
    # Lean (ratio > 1) exactly where the ECU underestimates VE, by about the same amount.
    err = np.array(means_measured) - np.array(means_expected)
    assert np.median(np.abs(err)) < 0.015


def _knock_events_at(block: Block) -> np.ndarray:
    return np.flatnonzero(np.diff(block.columns["knock_count"]) > 0) + 1


def test_knock_in_high_map_midrange_not_at_light_load() -> None:
    heavy = concat(list(run_segments([SteadyHold(3500.0, (95.0, 100.0), hold_s=10.0)], seed=3)))
    light = concat(list(run_segments([SteadyHold(3000.0, (40.0, 55.0), hold_s=10.0)], seed=3)))
    assert heavy.columns["knock_count"][-1] >= 3
    assert heavy.columns["knock_retard_deg"].max() >= 2.0
    assert light.columns["knock_count"][-1] == 0
    block, _ = _scenario("pulls")
    at = _knock_events_at(block)
    assert at.size >= 6
    assert np.all(block.columns["map_kpa"][at] > 80.0)
    assert np.all((block.columns["rpm"][at] > 2000.0) & (block.columns["rpm"][at] < 5000.0))


def test_knock_retard_decays_after_events() -> None:
    block = concat(list(run_segments([SteadyHold(3500.0, (100.0, 40.0), hold_s=12.0)], seed=5)))
    retard = block.columns["knock_retard_deg"]
    assert retard.max() >= 2.0
    assert retard[-100:].max() == 0.0  # 12 s at light load: decayed back to the table


def test_hot_intake_air_knocks_more() -> None:
    v = get_vehicle("vtwin")
    counts = []
    for iat_c in (30.0, 55.0):
        sim = Simulation(v, [SteadyHold(3500.0, (85.0,), hold_s=30.0, settle_s=2.0)], seed=4)
        # A heat-soaked intake: air temperature and the metal that heats it.
        sim.model.iat_c = iat_c
        sim.model.soak_c = v.ambient_c + (iat_c - v.ambient_c) / 0.45
        counts.append(_run(sim).columns["knock_count"][-1])
    assert counts[1] > counts[0] + 3


def test_lambda_delay_line_shifts_the_mixture_exactly() -> None:
    v = get_vehicle("vtwin")
    plan = [TipIn(3000.0, 40.0, 80.0, settle_s=3.0), WotPull(2500.0, 5800.0, setup_s=3.0)]
    for rate_hz, shift in ((100.0, 9), (1000.0, 90)):
        runs = [
            _run(Simulation(v, plan, seed=2, rate_hz=rate_hz, lambda_delay_s=d, sensor_noise=False))
            for d in (0.0, 0.09)
        ]
        now, late = runs[0].columns["lambda"], runs[1].columns["lambda"]
        np.testing.assert_allclose(late[shift:], now[:-shift], rtol=1e-9)
        assert not np.allclose(late, now)


TIP_S = TipIn(3000.0, 40.0, 85.0).duration_s() - 3.0 - 2.0 - 1.5
"""When the tip-in segment snaps the throttle open."""


def test_fuelling_step_shows_in_lambda_about_the_delay_later() -> None:
    v = get_vehicle("vtwin")
    for delay_s in (0.09, 0.25):
        sim = Simulation(v, [TipIn(3000.0, 40.0, 85.0)], lambda_delay_s=delay_s)
        c = _run(sim).columns
        step = (
            round(TIP_S * 100.0)
            + np.flatnonzero(c["accel_enrich_pct"][round(TIP_S * 100.0) :] > 0.0)[0]
        )
        base = c["lambda"][step - 50 : step].mean()
        seen = np.flatnonzero(np.abs(c["lambda"][step:] / base - 1.0) > 0.01)[0]
        assert delay_s <= seen / 100.0 <= delay_s + 0.06, (delay_s, seen)


@pytest.mark.parametrize(("delay_s", "rate_hz"), [(0.09, 30.0), (0.09, 100.0), (0.0375, 1000.0)])
def test_delay_line_is_exact_for_fractional_delays(delay_s: float, rate_hz: float) -> None:
    line = DelayLine(delay_s, rate_hz)
    t = np.arange(400) / rate_hz
    x = 3.0 + 2.0 * t  # a ramp: linear interpolation must then be exact
    out = np.concatenate([line.push(x[i : i + 7]) for i in range(0, 400, 7)])
    warm = int(np.ceil(delay_s * rate_hz)) + 1
    np.testing.assert_allclose(out[warm:], 3.0 + 2.0 * (t[warm:] - delay_s), atol=1e-12)


def test_decel_fuel_cut_rails_the_wideband_lean() -> None:
    block, _ = _scenario("pulls")
    c = block.columns
    cut = c["dfco"] == 1
    assert cut.any()
    assert np.all(c["tps_pct"][cut] < 2.0) and np.all(c["rpm"][cut] > 1200.0)
    assert np.mean(c["lambda"][cut] == WIDEBAND_LEAN_RAIL_LAMBDA) > 0.7
    assert np.all(c["lambda"][~cut & (c["rpm"] < 1100)] < 1.2)  # idle is not railed


def test_tip_in_enrichment_goes_richer_briefly() -> None:
    sim = Simulation(get_vehicle("vtwin"), [TipIn(3000.0, 40.0, 85.0)], seed=9)
    c = _run(sim).columns
    start = (
        round(TIP_S * 100.0)
        + np.flatnonzero(c["accel_enrich_pct"][round(TIP_S * 100.0) :] > 0.0)[0]
    )
    assert c["accel_enrich_pct"].max() > 5.0
    ratio = c["lambda"] / c["lambda_target"]
    before = ratio[start - 50 : start].mean()
    window = ratio[start + 9 : start + 60]
    later = ratio[start + 150 : start + 250].mean()
    assert window.min() < later - 0.03  # richer than the settled mixture at the new load
    assert np.all(c["accel_enrich_pct"][start + 200 : start + 250] < 1.0)
    assert abs(before - 1.0) < 0.1


def test_eddy_dyno_holds_rpm_and_operator_reaches_map() -> None:
    steps = (50.0, 70.0, 90.0)
    block = concat(list(run_segments([SteadyHold(3000.0, steps, hold_s=5.0)], seed=1)))
    c = block.columns
    settle_s = SteadyHold(3000.0, steps).duration_s() - 3 * 5.0 - 1.5
    for i, target in enumerate(steps):
        end = round((settle_s + (i + 1) * 5.0) * 100.0)
        seg = slice(end - 150, end)
        assert abs(np.median(c["rpm"][seg]) - 3000.0) < 20.0
        assert abs(np.median(c["map_kpa"][seg]) - target) < 2.0


def test_iat_and_clt_rise_over_a_pulls_session() -> None:
    block, _ = _scenario("pulls")
    c = block.columns
    assert c["iat_c"][-2000:].mean() > c["iat_c"][:2000].mean() + 3.0
    assert c["clt_c"][-2000:].mean() > c["clt_c"][:2000].mean() + 8.0
    assert c["clt_c"].max() < 105.0


def test_1000_hz_works() -> None:
    block = concat(list(generate(rate_hz=1000.0, duration_s=8.0, block_s=0.25)))
    assert len(block) == 8000
    np.testing.assert_allclose(np.diff(block.t), 0.001)
    assert abs(np.median(block.columns["rpm"]) - 950.0) < 50.0


def test_segment_durations_are_exact_and_realistic() -> None:
    plan = [WotPull(2500.0, 5800.0), SteadyHold(3000.0, (40.0, 60.0)), TipIn(2500.0, 40.0, 80.0)]
    total_s = sum(seg.duration_s("vtwin") for seg in plan)
    block = concat(list(run_segments(plan, seed=1)))
    assert len(block) == sum(round(seg.duration_s("vtwin") * 100.0) for seg in plan)
    assert abs(len(block) / 100.0 - total_s) < 0.05
    assert 15.0 < plan[0].duration_s("vtwin") < 35.0
    assert build_scenario("pulls").duration_s() > 300.0


def test_bad_parameters_raise_clear_errors() -> None:
    with pytest.raises(SimParamError, match="unknown vehicle 'bike'"):
        list(generate(vehicle="bike"))
    with pytest.raises(SimParamError, match="unknown scenario") as bad:
        generate(scenario="drag")
    assert "guided" in str(bad.value)  # a choice the list had left out
    with pytest.raises(SimParamError, match="1 to 1000 Hz"):
        generate(rate_hz=2000.0)
    with pytest.raises(SimParamError, match="more than 0"):
        generate(duration_s=-5.0)
    with pytest.raises(SimParamError, match="at least one MAP step"):
        SteadyHold(3000.0, ())


def test_a_hold_under_the_engines_floor_sags_without_flapping_the_throttle() -> None:
    # Found in a headless guided run: "hold 5500 rpm: MAP 40 kPa" on the V-twin, whose floor
    # on the drum there is 42 kPa (sim.scenarios.min_hold_map_kpa: the drum's drag is
    # ~14 N.m at 5500 rpm). The rpm sagged 150 rpm, the operator rolled on to ride up again,
    # closed to the step, and so on: accel enrichment every cycle, no sample kept for 9
    # minutes. Once there, the operator holds the step's MAP and the rpm sags.
    from core.coverage.filters import REASONS, FilterChain
    from sim.scenarios import min_hold_map_kpa

    assert min_hold_map_kpa("vtwin", 5500.0) > 40.0 > min_hold_map_kpa("vtwin", 1000.0)
    hold = SteadyHold(5500.0, (95.0, 38.0), hold_s=8.0)
    block = concat(list(run_segments([hold], seed=1)))
    step_start = hold.duration_s() - 1.5 - 8.0
    late = block.t >= step_start + 3.0
    tail = block.t < hold.duration_s() - 1.5
    window = late & tail
    tps = block.columns["tps_pct"][window]
    assert float(tps.max() - tps.min()) < 5.0  # one throttle, no rolling on and off
    assert float(np.median(block.columns["rpm"][window])) < 5500.0 - 100.0  # it sagged
    result = FilterChain().apply(block)
    accel = REASONS.index("accel_enrich") + 1
    assert int(np.count_nonzero(result.reason[window] == accel)) == 0


def test_a_step_after_an_unreachable_one_starts_from_the_throttle_stop() -> None:
    # Found checking the live demo's predictions: "hold 750 rpm: MAP 40 35" predicted from
    # 1000 rpm at 30 kPa (the operating point rounded to 5 kPa, under the engine's ~31-kPa
    # closed-throttle MAP there) put ~350 hits in the 35-kPa cell, from 31 kPa ~250, and
    # the engine then added 270. Under the unreachable target the operator's trim had wound
    # to -30 %, and the throttle stayed shut ~4 s into the next step. A hand at the stop
    # does not keep pushing: the next step starts the same as after a reachable one.
    def reached_40_s(first_kpa: float) -> float:
        first = SteadyHold(1000.0, (first_kpa,), hold_s=4.0)
        block = concat(list(run_segments([first, SteadyHold(750.0, (40.0,), hold_s=6.0)], seed=1)))
        t0 = first.duration_s()
        up = (block.t >= t0) & (block.columns["map_kpa"] >= 39.0)
        return float(block.t[up][0]) - t0

    floor = reached_40_s(35.0)
    assert reached_40_s(25.0) < floor + 0.5
    assert reached_40_s(30.0) < floor + 0.5
