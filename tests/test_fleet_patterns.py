"""Patterns measured from simulated runs, checked against the simulator's truth.

The simulator knows what a tuner cannot: its true VE and the ECU's (``sim/vehicles.py``),
the knock limit against the spark table, that lambda does not depend on IAT (speed
density without IAT compensation error), and it can be given an ECU that runs lean on
closed throttle. Each test states the truth first and checks the measured pattern.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.fleet.analyze import analyze_log
from core.frames import Block
from tests.fleet_sim import make_sim, record_sim, scale_ecu_ve, truth_at


def _patterns(data, kind):
    return [p for p in data.patterns if p["kind"] == kind]


def test_ve_change_per_cell_and_region_matches_the_true_ve_error(tmp_path: Path) -> None:
    sim = make_sim("steady", 11)
    path = record_sim(tmp_path / "steady.dynolog", sim, run_id="r")
    data = analyze_log(path, vehicle="v", run_id="r")
    cells = data.cells
    ok = cells["hits"] >= 50
    truth_ratio = truth_at(
        sim, sim.model.tables.ve_error_ratio(), cells["rpm"][ok], cells["map_kpa"][ok]
    )
    err_pct = (cells["lambda_ratio"][ok] - truth_ratio) * 100.0
    assert ok.sum() >= 40
    assert np.median(np.abs(err_pct)) < 1.0, err_pct
    # region figures are the hit-weighted mean of the cells' truth
    for p in _patterns(data, "ve_change"):
        sel = ok & (cells["rpm"] >= p["rpm_lo"]) & (cells["rpm"] <= p["rpm_hi"])
        sel &= (cells["map_kpa"] >= p["map_lo_kpa"]) & (cells["map_kpa"] <= p["map_hi_kpa"])
        if sel.sum() < 3:
            continue
        truth = truth_at(
            sim, sim.model.tables.ve_error_ratio(), cells["rpm"][sel], cells["map_kpa"][sel]
        )
        expected = float(np.average((truth - 1.0) * 100.0, weights=cells["hits"][sel]))
        assert abs(p["value"] - expected) < 1.0, (p["region"], p["value"], expected)
        assert p["samples"] > 0


def test_knock_cells_are_where_the_spark_table_exceeds_the_knock_limit(tmp_path: Path) -> None:
    sim = make_sim("pulls", 5)
    path = record_sim(tmp_path / "pulls.dynolog", sim, run_id="r")
    data = analyze_log(path, vehicle="v", run_id="r")
    knock = _patterns(data, "knock_cell")
    assert knock, "the simulator's default tune knocks in the high-MAP midrange"
    t = sim.model.tables
    excess = t.spark_deg - t.knock_limit_deg  # > 0: past the knock limit at 30 degC IAT
    rpm = np.array([p["rpm_lo"] for p in knock])
    kpa = np.array([p["map_lo_kpa"] for p in knock])
    events = np.array([p["events"] for p in knock])
    at = truth_at(sim, excess, rpm, kpa)
    # knock events happen where the tune is past the limit (a cell's edge or hot air allow ~2 deg)
    assert events[at > -2.0].sum() >= 0.9 * events.sum(), list(
        zip(rpm, kpa, events, at, strict=True)
    )
    worst = knock[int(np.argmax(events))]
    assert 2500 <= worst["rpm_lo"] <= 4500 and worst["map_lo_kpa"] >= 85
    for p in knock:
        advice = json.loads(p["detail"])["timing_advice_deg"]
        assert advice <= -1.0 and advice <= -p["value"] + 1e-9


def test_heat_soak_finds_no_drift_where_there_is_none_and_recovers_an_injected_one(
    tmp_path: Path,
) -> None:
    # Truth 1: the simulator's lambda does not depend on IAT.
    plain = analyze_log(
        record_sim(tmp_path / "a.dynolog", make_sim("street", 3), run_id="a"),
        vehicle="v",
        run_id="a",
    )
    (heat,) = _patterns(plain, "heat_soak")
    detail = json.loads(heat["detail"])
    assert detail["iat_rise_c"] > 5.0
    assert abs(heat["value"]) < max(3.0 * detail["slope_se"], 0.3)

    # Truth 2: the same run with lambda leaning 2 % per 10 degC of IAT above 30 degC.
    k = 0.002

    def drift(block: Block) -> Block:
        cols = dict(block.columns)
        cols["lambda"] = cols["lambda"] * (1.0 + k * (cols["iat_c"] - 30.0))
        cols["afr"] = cols["lambda"] * 14.7
        return Block(block.source, block.t, cols)

    drifted = analyze_log(
        record_sim(tmp_path / "b.dynolog", make_sim("street", 3), run_id="b", transform=drift),
        vehicle="v",
        run_id="b",
    )
    (heat,) = _patterns(drifted, "heat_soak")
    assert heat["value"] == pytest.approx(2.0, abs=0.4)
    assert heat["samples"] > 1000


def test_decel_lean_spikes_found_only_when_the_ecu_runs_lean_off_throttle(tmp_path: Path) -> None:
    # Truth 1: the stock simulated ECU is rich or on target on closed-throttle decels.
    stock = analyze_log(
        record_sim(tmp_path / "s.dynolog", make_sim("street", 4), run_id="s"),
        vehicle="v",
        run_id="s",
    )
    assert sum(p["events"] for p in _patterns(stock, "decel_lean")) == 0
    # Truth 2: no fuel cut and an ECU VE 20 % low below 40 kPa: decels run lean by 1/0.8.
    sim = make_sim("street", 4, tuning={"dfco_on_rpm": 1e9, "dfco_off_rpm": 1e9})
    scale_ecu_ve(sim, lambda rpm, kpa: np.where(kpa <= 40.0, 0.8, 1.0))
    lean = analyze_log(record_sim(tmp_path / "l.dynolog", sim, run_id="l"), vehicle="v", run_id="l")
    spikes = [p for p in _patterns(lean, "decel_lean") if p["events"] > 0]
    assert spikes
    assert sum(p["events"] for p in spikes) >= 5
    top = max(spikes, key=lambda p: p["events"])
    assert top["rpm_lo"] >= 1500  # the cruise decels, not idle
    enrich = json.loads(top["detail"])["enrichment_pct"]
    assert 12.0 <= enrich <= 40.0  # about 1 / 0.8 - 1 = 25 % at the peak


def test_front_rear_imbalance_per_cell_matches_the_injected_field(tmp_path: Path) -> None:
    sim = make_sim("steady", 8)

    def field(rpm: np.ndarray, kpa: np.ndarray) -> np.ndarray:
        # rear richer by up to 6 % of lambda in the midrange, a known smooth field
        return (
            -0.06 * np.exp(-(((rpm - 3000.0) / 1200.0) ** 2)) * np.clip((kpa - 40.0) / 50.0, 0, 1)
        )

    def wbs(block: Block) -> tuple[np.ndarray, np.ndarray]:
        lam = block.columns["lambda"].astype(np.float64)
        d = field(
            block.columns["rpm"].astype(np.float64), block.columns["map_kpa"].astype(np.float64)
        )
        return lam * (1.0 - d / 2.0), lam * (1.0 + d / 2.0)

    record = {"widebands": {"front": "wbf", "rear": "wbr"}}
    path = record_sim(tmp_path / "two.dynolog", sim, run_id="r", record=record, widebands=wbs)
    data = analyze_log(path, vehicle="v", run_id="r")
    imb = _patterns(data, "imbalance")
    assert len(imb) >= 30
    rpm = np.array([p["rpm_lo"] for p in imb])
    kpa = np.array([p["map_lo_kpa"] for p in imb])
    measured = np.array([p["value"] for p in imb])
    lam = np.array(
        [
            data.cells["lambda_mean"][(data.cells["rpm"] == r) & (data.cells["map_kpa"] == m)][0]
            for r, m in zip(rpm, kpa, strict=True)
        ]
    )
    truth = field(rpm, kpa) * lam * 14.7
    assert np.median(np.abs(measured - truth)) < 0.1
    worst = imb[int(np.argmin(measured))]
    assert 2000 <= worst["rpm_lo"] <= 4000 and worst["map_lo_kpa"] >= 70
