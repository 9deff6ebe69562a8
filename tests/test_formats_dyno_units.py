"""Dyno exports without units: power/torque units from P = T·ω, baro from its magnitude.

Format source: PROTOCOLS §7, "WinPEP 8 / Power Core CSV export" (channel names
``(DWRT CPU) Engine RPM``, ``(DWRT CPU) Power``, ``(DWRT CPU) Torque``, ``(DWRT
ATMO) Pressure``, ``(DWRT ATMO) Temperature 1``, ``WB Volts Petrol AFR``; first
column ``Time`` in seconds at 20 Hz; "The file carries no units"), from the
public sample bgriggs/wrl-dyno-check ``DemoRuns/RunFile_40.csv`` (not committed;
no licence). Every file here is written by the test from that description with
our own values; the relations checked are hp = lb·ft x rpm / 5252 (PROTOCOLS
§7, "Other dynos") and kW = N·m x rpm / 9549 (P = T·ω).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.formats import open_log
from core.formats.dynounits import baro_unit, pair_constant, power_torque_units

HEADER = (
    "Time,(DWRT CPU) Engine RPM,(DWRT CPU) Power,(DWRT CPU) Torque,"
    "WB Volts Petrol AFR,(DWRT ATMO) Pressure,(DWRT ATMO) Temperature 1"
)
RPM = np.arange(2500.0, 6500.0, 10.0)
TORQUE = 90.0 + 10.0 * np.sin((RPM - 2500.0) / 1300.0)  # a torque curve, 80..100


def _export(path: Path, power: np.ndarray, torque: np.ndarray, baro: float, air: float) -> Path:
    rows = [HEADER]
    for i, rpm in enumerate(RPM):
        rows.append(
            f"{i * 0.05:.2f},{rpm:.0f},{power[i]:.2f},{torque[i]:.2f},12.80,{baro:g},{air:g}"
        )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _conversion(log, canonical: str) -> str:
    return next(m.conversion for m in log.summary.mapped if m.canonical == canonical)


def test_us_export_reads_torque_in_lbft_baro_in_inhg_air_in_degf(tmp_path: Path) -> None:
    # QA: 42.84 hp at 2500 rpm with torque 90 fits only hp = lb·ft x rpm / 5252, yet the
    # import said "(DWRT CPU) Torque -> torque_nm (no unit in log, taken as N·m)"
    power = TORQUE * RPM / 5252.0
    log = open_log(_export(tmp_path / "us.csv", power, TORQUE, 29.92, 77.0))
    c = log.columns
    assert log.summary.format_name == "Dynojet WinPEP export"
    assert c["torque_nm"][0] == pytest.approx(TORQUE[0] * 1.35582, rel=1e-4)
    assert c["power_hp"][0] == pytest.approx(power[0], abs=0.01)
    assert "5252 fits hp and lb·ft" in _conversion(log, "torque_nm")
    assert c["baro_kpa"][0] == pytest.approx(101.32, abs=0.01)
    assert "inHg" in _conversion(log, "baro_kpa")
    assert c["ambient_c"][0] == pytest.approx(25.0)  # the dyno's weather module, not IAT
    assert "iat_c" not in c
    assert c["afr"][0] == pytest.approx(12.8) and "lambda" in c
    assert log.summary.unmapped == []


def test_metric_export_reads_power_in_kw_and_keeps_nm_and_degc(tmp_path: Path) -> None:
    power_kw = TORQUE * RPM / 9549.3
    log = open_log(_export(tmp_path / "metric.csv", power_kw, TORQUE, 1013.0, 25.0))
    c = log.columns
    assert c["power_hp"][0] == pytest.approx(power_kw[0] / 0.745700, rel=1e-3)
    assert c["torque_nm"][0] == pytest.approx(TORQUE[0])
    assert "kW" in _conversion(log, "power_hp")
    assert c["baro_kpa"][0] == pytest.approx(101.3)
    assert "mbar" in _conversion(log, "baro_kpa")
    assert c["ambient_c"][0] == pytest.approx(25.0)  # metric log: no degF guess


def test_hp_with_nm_keeps_canonical_units_and_says_the_twin_pair(tmp_path: Path) -> None:
    power = TORQUE * RPM / pair_constant("hp", "N·m")
    log = open_log(_export(tmp_path / "mixed.csv", power, TORQUE, 101.0, 20.0))
    assert log.columns["torque_nm"][0] == pytest.approx(TORQUE[0])
    assert log.columns["power_hp"][0] == pytest.approx(power[0], abs=0.01)
    assert "kW and lb·ft would fit as well" in _conversion(log, "torque_nm")


def test_power_and_torque_that_fit_no_pair_are_a_warning(tmp_path: Path) -> None:
    power = TORQUE * RPM / 3000.0  # no unit pair gives 3000
    log = open_log(_export(tmp_path / "odd.csv", power, TORQUE, 101.0, 20.0))
    assert log.columns["torque_nm"][0] == pytest.approx(TORQUE[0])
    warning = [n for n in log.summary.notes if n.startswith("warning:")]
    assert len(warning) == 1 and "fits no unit pair" in warning[0] and "3000" in warning[0]


def test_labelled_power_leaves_only_torque_to_the_data() -> None:
    rpm = np.full(10, 4000.0)
    torque = np.full(10, 100.0)
    hp = torque * rpm / 5252.0
    assert power_torque_units(hp, torque, rpm, power_known=True, torque_known=False)[:2] == (
        "hp",
        "lb·ft",
    )
    # power known in hp rules out kW: kW x N·m data then fits nothing
    kw_like = torque * rpm / 9549.3
    unit = power_torque_units(kw_like, torque, rpm, power_known=True, torque_known=False)
    assert unit[0] == "" and unit[2].endswith("none of 7121 (hp, N·m), 5252 (hp, lb·ft)")


@pytest.mark.parametrize(
    ("median", "unit"),
    [(29.92, "inHg"), (24.5, "inHg"), (14.7, "psi"), (101.3, "kPa"), (1013.0, "mbar"),
     (0.98, "bar"), (400.0, ""), (3.0, "")],
)  # fmt: skip
def test_baro_unit_from_magnitude(median: float, unit: str) -> None:
    assert baro_unit(np.full(5, median))[0] == unit


def test_a_wideband_voltage_is_no_afr(tmp_path: Path) -> None:
    path = tmp_path / "volts.csv"
    rows = ["Time,(DWRT CPU) Engine RPM,WB Volts Petrol AFR"]
    rows += [f"{i * 0.05:.2f},{3000 + i},{2.4 + 0.001 * i:.3f}" for i in range(50)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    log = open_log(path)
    assert "afr" not in log.columns and "lambda" not in log.columns
    assert any("no AFR (a sensor voltage?)" in n for n in log.summary.notes)
