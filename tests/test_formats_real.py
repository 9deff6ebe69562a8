"""Real logs written by other tools, under licences that allow redistribution.

Each file in tests/data/real/ was written by the tool named in its test (not by
us); its origin, commit and licence are in tests/data/README.md. The expected
values are read from the file's own raw text (quoted in each test), so the
tests check that the importer turns what the tool wrote into the right clock,
channels and units, not that it agrees with itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.formats import open_log

REAL = Path(__file__).parent / "data" / "real"


def _conv(log: object) -> dict[str, str]:
    return {m.canonical: m.conversion for m in log.summary.mapped}  # type: ignore[attr-defined]


def _orig(log: object) -> dict[str, str]:
    return {m.canonical: m.original for m in log.summary.mapped}  # type: ignore[attr-defined]


def test_torque_pro_tracklog() -> None:
    """Torque Pro trackLog export (iPzard/torque-pro-assistant, MIT): two drives.

    Device Time runs 28-Oct-2024 13:50:51.185 .. 15:46:46.432 with a pause of
    13:50:53.539 -> 15:46:36.640 between the two; '-' marks a PID not read.
    """
    log = open_log(REAL / "torque_pro_trackLog.csv")
    s = log.summary
    assert s.format_name == "Torque Pro CSV"
    assert s.rows == 30
    assert "Device Time" in s.clock
    # 15:46:46.432 - 13:50:51.185, from the file's own Device Time column
    assert s.duration_s == pytest.approx(6955.247, abs=1e-3)
    assert s.longest_gap_s == pytest.approx(6943.101, abs=1e-3)
    assert np.all(np.diff(log.t_s) > 0)
    c = log.columns
    # "Engine RPM(rpm)": 777 in the first row, 3118 the highest (15:46:37.696)
    assert c["rpm"][0] == pytest.approx(777.0)
    assert np.nanmax(c["rpm"]) == pytest.approx(3118.0)
    # "Engine Coolant Temperature(°F)": 195.8 degF = 91.0 degC
    assert c["clt_c"][0] == pytest.approx(91.0)
    assert _conv(log)["clt_c"] == "degF -> degC"
    # "Relative Throttle Position(%)" 4.31 -> 0.39 %
    assert c["tps_pct"][0] == pytest.approx(4.31)
    assert c["tps_pct"][-1] == pytest.approx(0.39)
    # "Air Fuel Ratio(Commanded)(:1)" is the ECU's target, never the measured
    # mixture; "Commanded Equivalence Ratio(lambda)" is the lambda target.
    assert _orig(log)["afr_target"] == "Air Fuel Ratio(Commanded)"
    assert _orig(log).get("afr") != "Air Fuel Ratio(Commanded)"
    assert _orig(log).get("lambda") != "Air Fuel Ratio(Commanded)"
    assert c["afr_target"][-1] == pytest.approx(14.08)
    assert c["lambda_target"][-1] == pytest.approx(1.0)
    # "Air Fuel Ratio(Measured)(:1)" is '-' in every row: no wideband reading
    assert np.all(np.isnan(c.get("lambda", np.array([np.nan]))))
    # The car never answered the MAP or wideband PIDs: the grid is told so,
    # rather than the mapped-but-empty columns passing for data.
    assert np.all(np.isnan(c["map_kpa"]))
    assert any(x.startswith("no MAP") and "never holds a value" in x for x in s.lacks)
    assert any(x.startswith("no wideband") for x in s.lacks)
    # "Turbo Boost & Vacuum Gauge(psi)" reads -14.65 at idle: Torque's MAP - baro
    # with no MAP reading, i.e. minus the atmosphere. It must not become MAP.
    assert "Turbo Boost & Vacuum Gauge" in s.unmapped


def test_torque_pro_tracklog_2014() -> None:
    """An older Torque Pro trackLog (Stampede10343/Torque-Log-Grapher, MIT), 1 Hz.

    Metric units this time: "Intake Manifold Pressure(kPa)", "(°C)"; first row
    27-Sep-2014 13:40:39.474, last kept row 13:41:08.469.
    """
    log = open_log(REAL / "torque_pro_trackLog_2014.csv")
    s = log.summary
    assert s.format_name == "Torque Pro CSV"
    assert s.rows == 30
    assert s.duration_s == pytest.approx(28.995, abs=1e-3)
    assert s.sample_rate_hz == pytest.approx(1.0, abs=0.01)
    c = log.columns
    # row 1: load 6.67 %, CLT 77.0 C, MAP 43.0 kPa, 870.25 rpm, 10 deg, IAT 37 C
    assert c["map_kpa"][0] == pytest.approx(43.0)
    assert _conv(log)["map_kpa"] == ""  # already kPa
    assert c["rpm"][0] == pytest.approx(870.25)
    assert c["clt_c"][0] == pytest.approx(77.0)
    assert c["iat_c"][0] == pytest.approx(37.0)
    assert c["spark_deg"][0] == pytest.approx(10.0)
    # 13:40:59.469: 1661 rpm at 73 kPa, the highest load in the excerpt
    i = int(np.argmax(c["rpm"]))
    assert c["rpm"][i] == pytest.approx(1661.0)
    assert c["map_kpa"][i] == pytest.approx(73.0)
    assert log.t_s[i] == pytest.approx(19.995, abs=1e-3)
    # no throttle and no wideband PID logged: said, not guessed
    assert "no throttle: accel-enrichment filter off" in s.lacks
    assert any(x.startswith("no wideband") for x in s.lacks)
    # "Fuel trim bank 1 sensor 2(%)" = 99.22: the O2 sensor's trim PID, sensor
    # not used. Never read as STFT.
    assert "stft_pct" not in c


# The channel rows of a real VCM Scanner export (superky13/minMaxLogValuesHPTuners,
# ky13_small_log.csv, commit 184f6ed). That repository has no licence, so the
# file is not committed: only its [Channel Information] names and units are
# used here, with data rows of our own, to keep what the real file taught.
_HPT_IDS = "0,12,6,3,20,68,11,16,17,2630,36,66,5,51"
_HPT_NAMES = (
    "Offset,Engine RPM (SAE),Short Term Fuel Trim Bank 1 (SAE),Fuel System #1 Status (SAE),"
    "O2 Voltage B1S1 (SAE),Equivalence Ratio Commanded (SAE),"
    "Intake Manifold Absolute Pressure (SAE),Mass Airflow (SAE),Throttle Position (SAE),"
    "Knock Retard,WB EQ Ratio 1 (SAE),Intake Air Temp (SAE),Engine Coolant Temp (SAE),"
    "Barometric Pressure (SAE)"
)
_HPT_UNITS = "s,rpm,%,,V,λ,psi,lb/min,%,°,λ,°F,°F,psi"


def test_vcm_scanner_wideband_eq_ratio_and_text_status(tmp_path: Path) -> None:
    rows = [
        "0.171,3000,1.5,CL - Normal,0.85,1,10,2,40,0,0.98,95,197.6,14.5037743897",
        "0.194,3100,1.5,OL - Drive,0.86,0.85,11,2.2,60,0.5,0.86,95,197.6,14.5037743897",
        "0.223,3200,,OL - Drive,0.87,0.85,12,2.4,80,1,0.85,95,197.6,14.5037743897",
    ]
    text = (
        "HP Tuners CSV Log File\nVersion: 1.0\n\n[Log Information]\n"
        "Creation Time: 5/4/2022 7:52:11 PM\nNotes: \n\n[Channel Information]\n"
        f"{_HPT_IDS}\n{_HPT_NAMES}\n{_HPT_UNITS}\n\n[Channel Data]\n" + "\n".join(rows) + "\n"
    )
    path = tmp_path / "vcm.csv"
    path.write_text(text, encoding="utf-8")
    log = open_log(path)
    s = log.summary
    assert s.format_name == "HP Tuners VCM Scanner CSV"
    c = log.columns
    # "WB EQ Ratio 1 (SAE)" in λ is the wideband (SAE J1979 PID 0x24), not a target
    assert _orig(log)["lambda"] == "WB EQ Ratio 1 (SAE)"
    assert c["lambda"] == pytest.approx([0.98, 0.86, 0.85])
    assert _orig(log)["lambda_target"] == "Equivalence Ratio Commanded (SAE)"
    assert not any(x.startswith("no wideband") for x in s.lacks)
    # narrowband volts are never lambda
    assert any("O2 Voltage B1S1" in n and "narrowband" in n for n in s.notes)
    # the words in "Fuel System #1 Status" are not a channel sampled in sparse rows
    assert not any("channels logged in sparse rows" in n for n in s.notes)
    assert "Fuel System #1 Status (SAE)" in s.unmapped
    # psi -> kPa: 10 psi = 68.95 kPa; 14.5037743897 psi baro = 100.0 kPa
    assert c["map_kpa"][0] == pytest.approx(68.948, abs=1e-3)
    assert c["baro_kpa"][0] == pytest.approx(100.0, abs=1e-4)
    assert c["clt_c"][0] == pytest.approx(92.0)


# The header of a real EvoScan log (got-gutch/got-gutch-evolution
# cars/2003-evo-viii/logs/EvoScanDataLog_2014.08.17_15.22.33.csv @ df080c5, no
# licence, not committed), cut to the columns the rules touch; the rows are ours.
_EVOSCAN_HEADER = (
    "LogID,LogEntryDate,LogEntryTime,LogEntrySeconds,LogNotes,TPS,RPM,TimingAdv,"
    "CoolantTemp,Speed,MAP,AirTemp,Baro,AirFlow,AFRMAP"
)


def test_evoscan_airflow_is_a_frequency_not_grams(tmp_path: Path) -> None:
    """EvoScan writes no units; its AirFlow is the Karman MAF frequency (Hz).

    In the real log AirFlow reads 150 at 2562 rpm part throttle and 1493.75 at
    7187 rpm, all multiples of 6.25 (MUT 0x1A): taken as g/s that is 1.5 kg/s.
    """
    rows = [
        "1,2024-05-01,10:00:00.10000,0.1,,30,2500,30,185,30,35,88,97.02,156.25,14.7",
        "2,2024-05-01,10:00:00.22000,0.22,,100,4000,15,185,40,47,88,97.02,1006.25,10.2",
        "3,2024-05-01,10:00:00.34000,0.34,,100,6000,18,185,60,47,88,97.02,1400,9.8",
    ]
    path = tmp_path / "EvoScanDataLog.csv"
    path.write_text(_EVOSCAN_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    log = open_log(path)
    s = log.summary
    assert s.format_name == "EvoScan CSV"
    assert "maf_gs" not in log.columns
    assert "AirFlow" in s.unmapped
    assert any(n.startswith("AirFlow: unit 'Hz'") for n in s.notes)
    assert s.duration_s == pytest.approx(0.24)
    assert log.columns["rpm"] == pytest.approx([2500, 4000, 6000])


def test_unitless_maf_beyond_obd_range_is_not_grams(tmp_path: Path) -> None:
    """A generic CSV's unit-less MAF column is g/s only inside J1979's 0-655.35 g/s."""
    path = tmp_path / "plain.csv"
    path.write_text("Time,RPM,MAF\n0.0,2000,150\n0.1,4000,900\n0.2,6000,1500\n")
    log = open_log(path)
    assert "maf_gs" not in log.columns
    assert any(n.startswith("MAF: no unit in log and values up to 1500") for n in log.summary.notes)
    path.write_text("Time,RPM,MAF\n0.0,2000,15\n0.1,4000,90\n0.2,6000,150\n")
    assert open_log(path).columns["maf_gs"] == pytest.approx([15, 90, 150])
    # an explicit --map wins over the plausibility check
    path.write_text("Time,RPM,MAF\n0.0,2000,150\n0.1,4000,900\n0.2,6000,1500\n")
    forced = open_log(path, channel_map={"maf_gs": "MAF"})
    assert forced.columns["maf_gs"] == pytest.approx([150, 900, 1500])


def test_car_scanner_russian_names_rpm_by_unit(tmp_path: Path) -> None:
    """Car Scanner in Russian: the signal names say nothing to us, the units do.

    Header, signal names and units as in a real Car Scanner log
    (rootofevil/carscannerlogs test/2021-11-19 16-45-25.csv @ 65da9cd, no
    licence, not committed); the values are ours.
    """
    rows = [
        '"60338.071981";"Обороты двигателя";"994";"rpm"',
        '"60338.308981";"Скорость автомобиля";"0";"km/h"',
        '"60338.507981";"Температура охлаждающей жидкости";"60";"℃"',
        '"60338.884981";"Пройденный путь";"0";"km"',
        '"60338.884981";"Пройденный путь (общий)";"12";"km"',
        '"60339.071981";"Обороты двигателя";"2400";"rpm"',
    ]
    path = tmp_path / "2021-11-19 16-45-25.csv"
    text = '"SECONDS";"PID";"VALUE";"UNITS"\n' + "\n".join(rows) + "\n"
    path.write_text(text, encoding="utf-8")
    log = open_log(path)
    s = log.summary
    assert s.format_name == "Car Scanner CSV"
    assert _orig(log)["rpm"] == "Обороты двигателя"
    assert "the only column in rpm" in _conv(log)["rpm"]
    assert s.duration_s == pytest.approx(1.0)
    # "(общий)" (total) belongs to the name when the log has a units column
    assert "Пройденный путь (общий)" in s.unmapped
    assert "Пройденный путь" in s.unmapped


def test_rpm_by_unit_only_when_unambiguous(tmp_path: Path) -> None:
    """Two columns in rpm, or a turbine speed, are no engine speed guess."""
    path = tmp_path / "tcu.csv"
    path.write_text("Time (msec);Turbine Revolution Speed (rpm);ATF Temperature (C)\n0;704;88\n")
    with pytest.raises(Exception, match="no engine speed"):
        open_log(path)
    path.write_text("Time (s),Drehzahl (rpm),Nockenwelle (rpm)\n0,800,400\n0.1,900,450\n")
    with pytest.raises(Exception, match="no engine speed"):
        open_log(path)
    path.write_text("Time (s),Drehzahl (1/min),Kühlmittel (℃)\n0,800,80\n0.1,900,81\n")
    assert open_log(path).columns["rpm"] == pytest.approx([800, 900])


def test_obdlink_wide_range_lambda_and_location_brackets(tmp_path: Path) -> None:
    """OBDLink CSV: the last bracket can be the sensor's place, not its unit.

    Header as in a real OBDLink log (ClassicMiniDIY/UltraLog
    exampleLogs/obdlink/CSVLog_20260811_131143.csv @ cabdea4, AGPL-3.0, not
    committed); the rows are ours.
    """
    header = (
        "# StartTime = 08/11/2026 01:11:43.6990 PM\n"
        "Time (sec), Short term fuel % trim - Bank 1 (%), Long term fuel % trim - Bank 1 (%), "
        "Engine RPM (RPM), Ignition timing advance for #1 cylinder (deg), "
        "O2 sensor lambda wide range (current probe)  (Bank 1  Sensor 1), "
        "Absolute load value (%), Knocking Retard (deg)\n"
    )
    rows = ["0.000,1.5,10,2000,20,0.95,40,0", "0.500,2.0,10,3000,25,0.88,80,1.5"]
    path = tmp_path / "CSVLog.csv"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    log = open_log(path)
    c = log.columns
    assert c["lambda"] == pytest.approx([0.95, 0.88])  # J1979 wide-range O2 is lambda
    assert c["knock_retard_deg"] == pytest.approx([0, 1.5])
    assert c["stft_pct"] == pytest.approx([1.5, 2.0])
    assert log.summary.duration_s == pytest.approx(0.5)
    assert not any(x.startswith("no wideband") for x in log.summary.lacks)


def test_mhd_ambient_pressure_star_degrees_and_afr_named_lambda(tmp_path: Path) -> None:
    """MHD (BMW) CSV: '#' lines, 'Amb pressure (Bar)', '*C' for degC, 'Lambda (AFR)'.

    Header as in a real MHD N55 log (ClassicMiniDIY/UltraLog
    exampleLogs/mhd/mhd-n55-pull.csv @ 10dc4ec, AGPL-3.0, not committed), cut to
    the columns the rules touch; the rows are ours.
    """
    head = (
        "#Encoding: UTF-8\n#Ecu PRGID: 7616431\n#VIN: REDACTED\n"
        "Time,Amb pressure (Bar),Boost (Bar),Coolant (*C),IAT (*C),Lambda bank 1 (AFR),"
        "RPM (RPM),Timing Cyl. 1 (*CRK),Throttle Position\n"
    )
    rows = ["100.000,0.98,-0.5,90,30,14.7,2000,20,20", "100.125,0.98,0.6,90,31,11.76,5000,10,99"]
    path = tmp_path / "mhd.csv"
    path.write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    log = open_log(path)
    c = log.columns
    assert c["baro_kpa"] == pytest.approx([98.0, 98.0])
    # boost (gauge, bar) + the log's own ambient pressure, not a standard atmosphere
    assert c["map_kpa"] == pytest.approx([48.0, 158.0])
    assert "+ baro column" in _conv(log)["map_kpa"]
    assert c["clt_c"] == pytest.approx([90, 90])  # '*C' is degC, said without a guess
    assert not any("not recognised" in n for n in log.summary.notes)
    assert c["spark_deg"] == pytest.approx([20, 10])
    assert c["lambda"] == pytest.approx([1.0, 0.8])  # the unit (AFR) wins over the name
    assert log.summary.duration_s == pytest.approx(0.125)
