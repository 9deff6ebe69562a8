"""MSL and CSV flavours: detection by content, units to canonical, names to channels.

Every fixture in tests/data holds the same 12-row pull (20 Hz, 2000 -> 4750 rpm,
MAP 60 -> 98.5 kPa, AFR 13.2 falling, CLT 185 degF rising) written the way each
tool writes it, so each test checks the same canonical numbers come out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.formats import LogImportError, open_log, parse_channel_map
from core.formats.names import canonical_for, split_name_unit
from core.formats.units import conversion_for

DATA = Path(__file__).parent / "data"
RPM = 2000.0 + 250.0 * np.arange(12)
MAP_KPA = 60.0 + 3.5 * np.arange(12)
AFR = 13.2 - 0.05 * np.arange(12)
CLT_C = (185.0 + 0.5 * np.arange(12) - 32.0) * 5.0 / 9.0
T_S = 0.05 * np.arange(12)


@pytest.mark.parametrize(
    ("name", "flavour"),
    [
        ("pull.msl", "MSL (MegaLogViewer text)"),
        ("tunerstudio.csv", "TunerStudio / MegaLogViewer CSV"),
        ("romraider.csv", "RomRaider logger CSV"),
        ("hptuners.csv", "HP Tuners VCM Scanner CSV"),
        ("powervision.csv", "Power Vision long CSV"),
        ("winpep.csv", "Dynojet WinPEP export"),
    ],
)
def test_flavour_detected_and_rpm_time_exact(name: str, flavour: str) -> None:
    log = open_log(DATA / name)
    assert log.summary.format_name == flavour
    assert log.t_s == pytest.approx(T_S)
    assert log.columns["rpm"] == pytest.approx(RPM)
    assert log.summary.sample_rate_hz == pytest.approx(20.0)
    assert log.summary.gap_count == 0


@pytest.mark.parametrize(
    "name", ["pull.msl", "tunerstudio.csv", "romraider.csv", "hptuners.csv", "powervision.csv"]
)
def test_map_and_mixture_in_canonical_units(name: str) -> None:
    c = open_log(DATA / name).columns
    assert c["map_kpa"] == pytest.approx(MAP_KPA, abs=0.01)  # RomRaider: psi with 3 decimals
    assert c["lambda"] == pytest.approx(AFR / 14.7, abs=6e-4)


@pytest.mark.parametrize("name", ["pull.msl", "hptuners.csv", "powervision.csv"])
def test_fahrenheit_converted_and_stated(name: str) -> None:
    log = open_log(DATA / name)
    assert log.columns["clt_c"] == pytest.approx(CLT_C, abs=1e-6)
    conv = {m.canonical: m.conversion for m in log.summary.mapped}
    assert conv["clt_c"] == "degF -> degC"


def test_romraider_psi_and_unmapped() -> None:
    log = open_log(DATA / "romraider.csv")
    conv = {m.canonical: m.conversion for m in log.summary.mapped}
    assert conv["map_kpa"] == "psi -> kPa x 6.895"
    assert conv["lambda"] == "AFR -> lambda / 14.7"
    assert log.summary.unmapped == []
    assert conv["maf_gs"] == ""  # g/s already
    assert "psi -> kPa x 6.895" in log.summary.to_text()


def test_winpep_power_torque_drum() -> None:
    c = open_log(DATA / "winpep.csv").columns
    torque_lbft = 60.0 + 2.0 * np.arange(12)
    assert c["torque_nm"] == pytest.approx(torque_lbft * 1.3558179483314004, abs=0.01)
    assert c["power_hp"] == pytest.approx(torque_lbft * RPM / 5252.0, abs=0.006)
    assert c["drum_speed_kph"] == pytest.approx(RPM / 100.0 * 1.609344, abs=0.01)


def test_msl_marker_and_info() -> None:
    log = open_log(DATA / "pull.msl")
    assert [m.text for m in log.markers] == ["MARK 000 - Manual - Sat Jun 14 10:42:11 CEST 2023"]
    assert log.markers[0].t == pytest.approx(0.2)  # after the fifth row
    assert log.header.metadata["info"].startswith("MS3 Format 0566.05P")


def test_tunerstudio_lambda_column_kept_no_afr_invented() -> None:
    log = open_log(DATA / "tunerstudio.csv")
    assert "afr" not in log.columns
    assert log.columns["clt_c"] == pytest.approx(CLT_C, abs=0.06)  # written in C, 1 decimal


def test_explicit_map_for_plain_csv() -> None:
    spec = parse_channel_map(['time=Stamp,rpm="n_eng",map_kpa=p_manifold', "lambda=lam"])
    log = open_log(DATA / "custom.csv", channel_map=spec)
    assert log.summary.format_name == "CSV"
    assert log.t_s == pytest.approx(T_S)  # Stamp is in ms
    assert log.columns["rpm"] == pytest.approx(RPM)
    assert log.columns["map_kpa"] == pytest.approx(MAP_KPA)  # bar -> kPa
    with pytest.raises(LogImportError, match="unknown log format"):
        open_log(DATA / "custom.csv")


def test_bad_inputs_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(LogImportError, match=r"no_rpm.csv: no engine speed \(rpm\) column") as info:
        open_log(DATA / "no_rpm.csv")
    assert "\n" not in str(info.value)
    with pytest.raises(LogImportError, match="'speed' is not a channel"):
        open_log(DATA / "romraider.csv", channel_map={"speed": "Engine Speed"})
    with pytest.raises(LogImportError, match="has no column 'Nope'"):
        open_log(DATA / "romraider.csv", channel_map={"rpm": "Nope"})
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)))
    with pytest.raises(LogImportError, match="unknown log format"):
        open_log(junk)
    with pytest.raises(LogImportError, match="cannot read"):
        open_log(tmp_path / "missing.csv")
    with pytest.raises(LogImportError, match='expected channel="column name"'):
        parse_channel_map("rpm")


def test_romraider_repeated_header_and_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "rr.csv"
    path.write_text(
        "Time,Engine Speed (rpm),Manifold Absolute Pressure (psi)\n"
        "23:59:59.900,3000,10.0\n"
        "23:59:59.950,3100,10.5\n"
        "Time,Engine Speed (rpm),Manifold Absolute Pressure (psi),Coolant Temperature (C)\n"
        "00:00:00.000,3200,11.0,90\n"
    )
    log = open_log(path)
    assert log.t_s == pytest.approx([0.0, 0.05, 0.1])  # across midnight
    assert np.isnan(log.columns["clt_c"][0]) and log.columns["clt_c"][2] == 90
    assert any("header repeated" in n for n in log.summary.notes)


def test_mapping_helpers() -> None:
    assert split_name_unit("Engine Speed (rpm)") == ("Engine Speed", "rpm")
    assert canonical_for("Manifold Absolute Pressure") == "map_kpa"
    assert canonical_for("Throttle Position") == "tps_pct"
    assert canonical_for("Coolant Temp") == "clt_c"
    assert canonical_for("Timing") == canonical_for("Advance") == "spark_deg"
    assert canonical_for("Boost PSI") is None
    assert conversion_for("afr", "lambda").canonical == "lambda"  # the unit wins
    assert conversion_for("map_kpa", "inHg").text == "inHg -> kPa x 3.386"
    assert conversion_for("iat_c", "K").text == "K -> degC"


def test_a_target_of_0_in_a_csv_is_no_data(tmp_path: Path) -> None:
    # 0.0 in a target column is "no target logged", never a target of 0.0
    path = tmp_path / "targets.csv"
    path.write_text(
        "Time,RPM,MAP,AFR,AFR Target,Lambda Target\n"
        "s,rpm,kPa,AFR,AFR,lambda\n"
        "0.00,3000,60,13.1,0,0\n"
        "0.05,3010,61,13.0,13.2,0.898\n"
        "0.10,3020,62,12.9,0.0,-1\n"
        "0.15,3030,63,12.8,13.0,0.884\n"
    )
    log = open_log(path)
    afr_target, lambda_target = log.columns["afr_target"], log.columns["lambda_target"]
    assert np.isnan(afr_target[0]) and np.isnan(lambda_target[0])  # nothing before to hold
    assert not (afr_target <= 0).any() and not (lambda_target <= 0).any()
    assert afr_target[1] == 13.2 and afr_target[3] == 13.0  # real targets untouched
    conv = {m.canonical: m.conversion for m in log.summary.mapped}
    assert conv["afr_target"] == "2 values of 0: no target logged, taken as no data"
    assert np.isfinite(log.columns["afr"]).all()


BAD_CELLS = (
    "Time,RPM,MAP,TPS,AFR,Notes\n"
    "s,rpm,kPa,%,AFR,\n"
    "0.00,3000,60,40,13.1,start\n"
    "0.05,3010,61,40,ERR,\n"
    "0.10,3020,6 2,40,12.9,x\n"
    "0.15,3030,63,40,#VALUE!,\n"
    "0.20,3040,64,NaN,12.7,\n"
    "0.25,3050,65,40,inf,end\n"
)


def test_cells_that_are_not_numbers_are_counted_in_one_summary_line(tmp_path: Path) -> None:
    # QA: "ERR" or "#VALUE!" in a column read as no value and was held from the row
    # before; the summary said only "sparse rows: ... held between their samples"
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CELLS)
    log = open_log(path)
    said = [n for n in log.summary.notes if "not numbers" in n]
    assert said == [
        "4 values are not numbers, read as no value (AFR: 3, MAP: 1; e.g. 'ERR' in AFR)"
    ]
    assert "  note: " + said[0] in log.summary.to_text().splitlines()
    # the numbers around them are kept; NaN spelt out, blanks and a notes column are no news
    assert log.columns["afr"][0] == pytest.approx(13.1) and log.columns["afr"][4] == 12.7
    assert "Notes" in log.summary.unmapped


def test_one_cell_that_is_not_a_number_in_a_long_format_log(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "Time (s),Channel,Value,Units\n"
        "0.000,Engine Speed,2000,RPM\n"
        "0.000,Lambda 1,0.898,Lambda\n"
        "0.050,Engine Speed,2050,RPM\n"
        "0.050,Lambda 1,ERR,Lambda\n"
        "0.100,Engine Speed,2100,RPM\n"
        "0.100,Lambda 1,0.893,Lambda\n"
        "0.100,Status,OK,\n"
    )
    log = open_log(path)
    said = [n for n in log.summary.notes if "not a number" in n]
    assert said == [
        "1 value is not a number, read as no value (Lambda 1: 1; e.g. 'ERR' in Lambda 1)"
    ]
