"""Logs as each tuning tool writes them: detected from content, right clock, channels, units.

The fixtures are written from each format's public description (see
tests/data/README.md for what each follows and why no real file is committed);
every one holds a pull with known values, so the tests check the exact canonical
numbers, the duration and the clock each tool's file implies.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pytest

from core.formats import LogImportError, open_log
from core.formats.decode import detect_encoding

DATA = Path(__file__).parent / "data"
N = 12
RPM = 2000.0 + 250.0 * np.arange(N)
MAP_KPA = 60.0 + 3.5 * np.arange(N)
TPS = 40.0 + 5.0 * np.arange(N)
LAMBDA = 0.898 - 0.0034 * np.arange(N)
CLT_C = 85.0 + 0.25 * np.arange(N)


def _conv(log: object) -> dict[str, str]:
    return {m.canonical: m.conversion for m in log.summary.mapped}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "flavour", "rows", "duration_s"),
    [
        ("haltech_nsp.csv", "Haltech NSP CSV", 12, 0.55),
        ("emu_pro.csv", "ECUMaster EMU CSV", 24, 0.46),
        ("emu_black.csv", "ECUMaster EMU CSV", 12, 0.55),
        ("romraider_plx.csv", "RomRaider logger CSV", 12, 2.2),
        ("romraider_wideband.csv", "RomRaider logger CSV", 12, 0.55),
        ("ecutek.csv", "EcuTek / ProECU CSV", 12, 1.1),
        ("evoscan.csv", "EvoScan CSV", 12, 0.88),
        ("torque.csv", "Torque Pro CSV", 12, 5.5),
        ("carscanner.csv", "Car Scanner CSV", 48, 2.9),
    ],
)
def test_tool_detected_with_its_clock(
    name: str, flavour: str, rows: int, duration_s: float
) -> None:
    log = open_log(DATA / name)
    assert log.summary.format_name == flavour
    assert log.summary.rows == rows
    assert log.summary.duration_s == pytest.approx(duration_s, abs=1e-6)
    assert log.summary.clock  # the summary says where the time came from
    assert np.all(np.diff(log.t_s) > 0)


def test_haltech_types_scale_raw_integers_and_clock_crosses_midnight() -> None:
    log = open_log(DATA / "haltech_nsp.csv")
    c = log.columns
    assert c["rpm"] == pytest.approx(RPM)
    assert c["map_kpa"] == pytest.approx(MAP_KPA)  # AbsPressure x 0.1
    assert c["tps_pct"] == pytest.approx(TPS)  # Percentage x 0.1
    assert c["clt_c"] == pytest.approx(CLT_C, abs=0.06)  # Temperature 0.1 K -> degC
    assert c["lambda"] == pytest.approx(LAMBDA, abs=6e-4)  # AFR type x 0.001 = lambda
    assert c["batt_v"][0] == pytest.approx(13.8)  # mV
    assert log.t_s == pytest.approx(0.05 * np.arange(N))  # 23:59:59.500 -> 00:00:00.050
    assert "midnight" in log.summary.clock
    assert "Haltech Elite 2500" in log.header.metadata["info"]


def test_emu_pro_paths_and_sparse_rows() -> None:
    log = open_log(DATA / "emu_pro.csv")
    c = log.columns
    assert c["rpm"][:4] == pytest.approx([2000, 2125, 2250, 2375])
    assert c["map_kpa"][:2] == pytest.approx([60.0, 60.0])  # blank = not sampled: held
    assert c["lambda"][::2] == pytest.approx(LAMBDA, abs=6e-4)
    assert any(n.startswith("sparse rows: map_kpa") for n in log.summary.notes)


def test_emu_black_decimal_commas() -> None:
    c = open_log(DATA / "emu_black.csv").columns
    assert c["map_kpa"] == pytest.approx(MAP_KPA)
    assert c["lambda"] == pytest.approx(LAMBDA, abs=6e-4)
    assert c["spark_deg"] == pytest.approx(20.0 + np.arange(N))  # "Ign. angle"


def test_romraider_plx_semicolons_decimal_commas_bar() -> None:
    """The issue's log: 'no rpm column found' before; PLX Engine Speed is the rpm."""
    log = open_log(DATA / "romraider_plx.csv")
    c = log.columns
    assert c["rpm"] == pytest.approx(RPM)
    assert c["map_kpa"] == pytest.approx(MAP_KPA, abs=0.051)  # bar, 3 decimals
    assert c["lambda"] == pytest.approx(LAMBDA, abs=0.006)  # Lambda unit, 2 decimals
    assert _conv(log)["map_kpa"] == "bar -> kPa x 100"
    assert log.t_s[-1] == pytest.approx(2.2)  # msec -> s
    assert "no throttle: accel-enrichment filter off" in log.summary.lacks


def test_romraider_innovate_aem_zeitronix_names() -> None:
    log = open_log(DATA / "romraider_wideband.csv")
    mapped = {m.original: m.canonical for m in log.summary.mapped}
    assert mapped["Innovate LC-1 AFR"] in ("afr", "lambda")
    assert log.columns["lambda"] == pytest.approx(LAMBDA, abs=6e-4)
    assert {"AEM UEGO AFR", "Zeitronix AFR"} <= set(log.summary.unmapped)  # one wideband used


def test_ecutek_ms_without_unit_knock_trims_eq_ratio() -> None:
    """The issue's log: Time in ms with no unit was read as seconds (53 min -> 37 days)."""
    log = open_log(DATA / "ecutek.csv")  # cp1252: the degree signs are single bytes
    assert log.summary.duration_s == pytest.approx(1.1)
    assert log.summary.sample_rate_hz == pytest.approx(10.0)
    assert "ms" in log.summary.clock
    c = log.columns
    assert c["tps_pct"] == pytest.approx(TPS)
    assert c["knock_retard_deg"][6] == pytest.approx(1.4) and c["knock_retard_deg"][0] == 0.0
    assert "knock correction -> retard" in _conv(log)["knock_retard_deg"]
    assert c["stft_pct"][0] == pytest.approx(1.5) and c["ltft_pct"][0] == pytest.approx(3.1)
    assert c["lambda_target"] == pytest.approx(np.full(N, 0.85))
    assert "lambda" not in c  # a target is never the measured mixture
    assert any("no wideband" in lack for lack in log.summary.lacks)


def test_evoscan_boost_made_absolute_with_baro() -> None:
    log = open_log(DATA / "evoscan.csv")
    c = log.columns
    assert c["rpm"] == pytest.approx(RPM)
    assert c["map_kpa"] == pytest.approx(MAP_KPA, abs=0.04)  # PSIG + Baro (99 kPa)
    assert "gauge -> absolute + baro column" in _conv(log)["map_kpa"]
    assert any("O2Front: narrowband" in n for n in log.summary.notes)
    assert "LogID" not in log.summary.unmapped  # bookkeeping columns are not channels


def test_torque_device_time_dashes_narrowband() -> None:
    log = open_log(DATA / "torque.csv")
    c = log.columns
    assert log.t_s == pytest.approx(0.5 * np.arange(N))
    assert log.header.created_at == pytest.approx(1709475346.0)  # 03-Mar-2024 14:15:46
    assert c["rpm"] == pytest.approx(RPM)
    assert c["map_kpa"] == pytest.approx(MAP_KPA, abs=0.04)
    assert c["lambda"][3] == c["lambda"][2]  # "-" is no value (held 0.5 s), never zero
    assert c["clt_c"] == pytest.approx(CLT_C, abs=0.03)
    assert any("O2 Volts Bank 1 sensor 1: narrowband" in n for n in log.summary.notes)
    assert "O2 Volts Bank 1 sensor 1" in log.summary.unmapped
    assert "Turbo Boost & Vacuum Gauge" in log.summary.unmapped  # MAP is logged: boost unused


def test_car_scanner_long_format_pivoted() -> None:
    log = open_log(DATA / "carscanner.csv")
    c = log.columns
    assert c["rpm"][::4] == pytest.approx(RPM)  # each PID has its own time stamp
    assert c["rpm"][1:4] == pytest.approx([RPM[0]] * 3)  # held onto the other PIDs' rows
    assert c["map_kpa"][5] == pytest.approx(MAP_KPA[1], abs=0.5)  # the second MAP sample
    assert np.isnan(c["map_kpa"][0])  # nothing to hold before the first MAP sample


def test_bluedriver_utf16_without_engine_speed_is_one_clear_line() -> None:
    assert detect_encoding((DATA / "bluedriver.csv").read_bytes()[:64]) == "utf-16"
    with pytest.raises(LogImportError) as info:
        open_log(DATA / "bluedriver.csv")
    text = str(info.value)
    assert "\n" not in text
    assert "no engine speed (rpm) column in this BlueDriver CSV" in text
    assert "Vehicle Speed" in text  # the title and date lines were skipped, the header found


def test_bluedriver_with_map_rpm_imports(tmp_path: Path) -> None:
    path = tmp_path / "bd.csv"
    body = (
        "BlueDriver Live Data\r\nJan 16, 2026 03:00 PM\r\nTime (s),Engine RPM (rpm),MAF (g/s)\r\n"
    )
    body += "".join(f"{0.5 * i:.1f},{800 + 10 * i},{3 + i}\r\n" for i in range(6))
    path.write_bytes(codecs.BOM_UTF16_LE + body.encode("utf-16-le"))
    log = open_log(path)
    assert log.summary.format_name == "BlueDriver CSV"
    assert log.columns["maf_gs"][-1] == 8.0
    assert any(
        lack.startswith("no MAP: the grid has no MAP axis data (maf_gs")
        for lack in log.summary.lacks
    )


def test_hptuners_sparse_rows_and_quoted_names(tmp_path: Path) -> None:
    path = tmp_path / "hpt.csv"
    path.write_text(
        "HP Tuners CSV Log File\nVersion: 1.0\n\n[Log Information]\nCreation Time: 0:00:33\n\n"
        "[Channel Information]\n0,5,17,13\n"
        'Offset,Engine RPM (SAE),"Throttle Position, Relative (SAE)",Equivalence Ratio Commanded\n'
        "s,rpm,%,λ\n\n[Channel Data]\n"
        "0.000,800,,\n0.050,,12.5,\n0.100,900,,0.85\n0.150,,13.0,\n",
        encoding="utf-8",
    )
    log = open_log(path)
    assert log.summary.format_name == "HP Tuners VCM Scanner CSV"
    c = log.columns
    assert c["rpm"][:2] == pytest.approx([800, 800])  # blank: not sampled this row, held
    assert c["tps_pct"][1] == 12.5
    assert c["lambda_target"][2] == 0.85


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("cp1252", b""),
    ],
)
@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_encodings_and_separators(tmp_path: Path, encoding: str, bom: bytes, delim: str) -> None:
    comma = delim != ","
    header = delim.join(["Time (s)", "Engine Speed (rpm)", "MAP (kPa)", "Coolant Temp (°C)"])
    rows = [
        delim.join([f"{0.1 * i:.1f}", str(1000 + 100 * i), f"{50.5 + i:.1f}", "90.5"])
        for i in range(5)
    ]
    if comma:
        rows = [r.replace(".", ",") for r in rows]
    text = "\r\n".join(["My logger v1.2", "Car: test", header, *rows]) + "\r\n"
    path = tmp_path / "log.txt"
    path.write_bytes(bom + text.encode(encoding))
    log = open_log(path)
    assert log.t_s == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert log.columns["map_kpa"] == pytest.approx(50.5 + np.arange(5))
    assert log.columns["clt_c"] == pytest.approx(np.full(5, 90.5))


@pytest.mark.parametrize(
    ("stamps", "unit", "expect_s"),
    [
        ([0, 20, 40, 60], "", 0.06),  # integer steps of 20: ms
        ([0.0, 0.02, 0.04, 0.06], "", 0.06),  # fractional: s
        ([0, 1000, 2000, 3000], "", 3.0),  # 1 Hz in ms
        ([0, 1, 2, 3], "ms", 0.003),  # the unit decides
        ([0, 1, 2, 3], "sec", 3.0),
    ],
)
def test_clock_from_unit_or_spacing(
    tmp_path: Path, stamps: list[float], unit: str, expect_s: float
) -> None:
    path = tmp_path / "c.csv"
    name = f"Time ({unit})" if unit else "Time"
    path.write_text(f"{name},RPM\n" + "".join(f"{s},{1000 + i}\n" for i, s in enumerate(stamps)))
    assert open_log(path).summary.duration_s == pytest.approx(expect_s)


def test_ambiguous_clock_is_one_error_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "amb.csv"
    path.write_text("Stamp,RPM\n" + "".join(f"{2 * i},{1000 + i}\n" for i in range(10)))
    with pytest.raises(
        LogImportError, match=r"time column 'Stamp' has no unit and steps of 2"
    ) as info:
        open_log(path, channel_map={"time": "Stamp"})
    assert "--time-unit ms|s" in str(info.value) and "\n" not in str(info.value)
    log = open_log(path, channel_map={"time": "Stamp"}, time_unit="ms")
    assert log.summary.duration_s == pytest.approx(0.018)
    assert "--time-unit" in log.summary.clock


def test_clock_time_with_midnight_rollover_and_words_in_time(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Time,RPM\n23:59:59.950,1000\n00:00:00.000,1010\n00:00:00.050,1020\n")
    assert open_log(path).t_s == pytest.approx([0.0, 0.05, 0.1])
    bad = tmp_path / "w.csv"
    bad.write_text("Time,RPM\nstart,1000\nmiddle,1010\n")
    with pytest.raises(LogImportError, match="time column 'Time' holds 'start'"):
        open_log(bad)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "only blank lines"),
        (b"Time,RPM,MAP\n", "a header but no data rows"),
        (b"Time,RPM,MAP", "a header but no data rows"),
        (b'"sig"\nTime\tRPM\ns\trpm\n', "a header but no data rows"),
        (b"Time;RPM\n" + b"x" * 5000 + b";1000\n", "a cell of 5000 characters"),
        (bytes(range(256)) * 4, "unknown log format"),
        (b"\x00\x01\x02garbage\xff" * 50, "unknown log format"),
        (b"just some words\nand more words\n", "unknown log format"),
        (
            b"Time,RPM\n" + b"".join(b"%d,1,2,3\n" % i for i in range(50)),
            "different number of cells",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, body: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(LogImportError) as info:
        open_log(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_truncated_last_row_is_a_note_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_text(
        "Time (s),RPM,MAP\n"
        + "".join(f"{0.1 * i:.1f},{1000 + i},50\n" for i in range(20))
        + "2.0,10"
    )
    log = open_log(path)
    assert log.summary.rows == 21
    assert any("cut short" in n for n in log.summary.notes)


def test_tunerstudio_units_row_with_blank_time_unit(tmp_path: Path) -> None:
    """Issue 10: a blank time unit in the units row was a KeyError (exit 1)."""
    path = tmp_path / "ts.csv"
    path.write_text('"Time";"RPM";"MAP"\n"";"rpm";"kPa"\n0.00;1000;50\n0.05;1100;52\n')
    log = open_log(path)
    assert log.summary.format_name == "TunerStudio / MegaLogViewer CSV"
    assert log.t_s == pytest.approx([0.0, 0.05])


def test_engine_never_ran_is_said(tmp_path: Path) -> None:
    path = tmp_path / "off.csv"
    path.write_text(
        "Time (s),RPM,MAP (kPa),TPS (%)\n" + "".join(f"{0.1 * i:.1f},0,101,0\n" for i in range(10))
    )
    lacks = open_log(path).summary.lacks
    assert any("engine never ran" in lack and "0 samples binned" in lack for lack in lacks)


def test_narrowband_volts_never_lambda(tmp_path: Path) -> None:
    path = tmp_path / "nb.csv"
    path.write_text("Time (s),RPM,Lambda (V),O2S1 (V)\n0.0,1000,0.45,0.45\n0.1,1100,0.8,0.8\n")
    log = open_log(path)
    assert "lambda" not in log.columns and "afr" not in log.columns
    assert {"Lambda", "O2S1"} <= set(log.summary.unmapped)


FAST_FIXTURES = [
    "emu_black.csv",
    "emu_pro.csv",
    "romraider_plx.csv",
    "romraider_wideband.csv",
    "ecutek.csv",
    "evoscan.csv",
    "torque.csv",
    "custom.csv",
    "tunerstudio.csv",
    "pull.msl",
]
SLOW_ONLY = {"ecutek.csv": "cp1252 bytes", "pull.msl": "a MARK row"}


@pytest.mark.parametrize("name", FAST_FIXTURES)
def test_arrow_fast_path_matches_text_path(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Large files go through Arrow; it must give exactly what the text path gives."""
    import core.formats as formats

    spec = {"time": "Stamp", "rpm": "n_eng"} if name == "custom.csv" else None
    slow = open_log(DATA / name, channel_map=spec)
    used: list[bool] = []
    real = formats._read_fast

    def spy(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)  # type: ignore[arg-type]
        used.append(out is not None)
        return out

    monkeypatch.setattr(formats, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(formats, "_read_fast", spy)
    fast = open_log(DATA / name, channel_map=spec)
    assert used == [name not in SLOW_ONLY]  # those need the text path
    assert fast.summary.to_text() == slow.summary.to_text()
    assert fast.t_s == pytest.approx(slow.t_s)
    for key, column in slow.columns.items():
        np.testing.assert_array_equal(fast.columns[key], column)


def test_arrow_fast_path_falls_back_on_markers_and_ragged_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import core.formats as formats

    monkeypatch.setattr(formats, "FAST_MIN_BYTES", 0)
    path = tmp_path / "m.csv"
    path.write_text("Time (s),RPM\n0.0,1000\nMARK 001\n0.1,1100\n0.2,1200,5\n0.3,1300\n")
    log = open_log(path)
    assert [m.text for m in log.markers] == ["MARK 001"]
    assert log.columns["rpm"] == pytest.approx([1000, 1100, 1200, 1300])
    assert any("different number of cells" in n for n in log.summary.notes)


def test_a_word_in_a_number_column_costs_that_cell_alone_on_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A 4 MB+ log (the Arrow path) with one "ERR" in its AFR column's first 200 rows read
    # the whole column as text: 200000 AFR values gone, "no wideband lambda/AFR (its
    # column never holds a value)". The text path keeps every number.
    import core.formats as formats

    path = tmp_path / "err.csv"
    rows = [f"{i * 0.01:.2f},{3000 + i},{13.0 + 0.1 * (i % 5):.1f}" for i in range(300)]
    rows[5] = "0.05,3005,ERR"
    path.write_text("Time (s),RPM,AFR\n" + "\n".join(rows) + "\n")
    slow = open_log(path)
    monkeypatch.setattr(formats, "FAST_MIN_BYTES", 0)
    fast = open_log(path)
    for log in (slow, fast):
        assert int(np.isfinite(log.columns["afr"]).sum()) >= 299
        assert not any("lambda" in lack for lack in log.summary.lacks), log.summary.lacks
    np.testing.assert_array_equal(fast.columns["afr"], slow.columns["afr"])


def test_mlg_with_a_header_and_no_records_is_one_line(tmp_path: Path) -> None:
    """Issue 10: an MLG with a header and no records crashed with 'internal error'."""
    from core.formats.mlg_writer import FieldSpec, build_mlg

    fields = [FieldSpec("Time", "s", 7, digits=3), FieldSpec("RPM", "rpm", 2)]
    one = build_mlg(fields, np.zeros((1, 2)), np.zeros(1, dtype=np.int64), version=2)
    path = tmp_path / "empty.mlg"
    path.write_bytes(one[: -(4 + 6 + 1)])  # drop the one record block (header, 6 bytes, checksum)
    with pytest.raises(LogImportError, match="empty.mlg: the log has a header but no data rows"):
        open_log(path)


@pytest.mark.parametrize(
    ("name", "extra", "code", "expect"),
    [
        ("bluedriver.csv", [], 2, "no engine speed (rpm) column"),
        ("ecutek.csv", [], 0, "'Time': no unit; integer steps of 100 read as ms"),
        (
            "custom.csv",
            ["--map", "time=Stamp,rpm=n_eng", "--time-unit", "ms"],
            0,
            "ms (--time-unit)",
        ),
    ],
)
def test_import_command_exit_codes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    extra: list[str],
    code: int,
    expect: str,
) -> None:
    import argparse

    from dynoai_tui.commands import import_log

    parser = argparse.ArgumentParser()
    import_log.add_arguments(parser)
    args = parser.parse_args([str(DATA / name), "--out", str(tmp_path / "o.dynolog"), *extra])
    assert import_log.run(args) == code
    out = capsys.readouterr()
    text = out.out if code == 0 else out.err
    assert expect in text
    if code:
        assert out.err.count("\n") == 1


def test_huge_cell_file_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """Issue 14: a 694 KB CSV with one 5,000-character cell took 4 GB."""
    import subprocess
    import sys

    path = tmp_path / "big.csv"
    rows = "".join(f"{0.01 * i:.2f},{1000 + i},{50 + i % 7}\n" for i in range(45000))
    path.write_text(
        "Time (s),RPM,MAP (kPa)\n" + rows[:300000] + "1.0,2," + "7" * 5000 + "\n" + rows[300000:]
    )
    assert 600_000 < path.stat().st_size < 800_000
    code = (
        "import resource, sys\n"
        "from core.formats import open_log, LogImportError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"try:\n    open_log({str(path)!r})\nexcept LogImportError as e:\n    print(e)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, grew_kb = out.stdout.strip().splitlines()
    assert "a cell of 5000 characters" in message
    assert int(grew_kb) * 1024 < 40 * path.stat().st_size  # was ~6000x


def test_hptuners_unquoted_commas_in_names_and_analog_wideband(tmp_path: Path) -> None:
    """Real VCM Scanner exports name analog inputs like 'MPVI2.1 -> AEM 30-(03x0,2340,5130)'.

    The commas inside the brackets are not separators (the ids row says how many
    channels there are), and a lambda-unit column from a wideband device is lambda.
    """
    path = tmp_path / "hpt.csv"
    path.write_text(
        "HP Tuners CSV Log File\nVersion: 1.0\n\n[Channel Information]\n0,12,2333,40101\n"
        "Offset,Engine RPM (SAE),Manifold Absolute Pressure - 2 bar,MPVI2.1 -> AEM 30-(03x0,2340,5130)\n"
        "s,rpm,kPa,lambda\n\n[Channel Data]\n"
        + "".join(
            f"{0.1 * i:.1f},{3000 + 100 * i},{80 + i},{0.85 + 0.01 * i:.2f}\n" for i in range(8)
        ),
        encoding="utf-8",
    )
    log = open_log(path)
    mapped = {m.original: m.canonical for m in log.summary.mapped}
    assert mapped["MPVI2.1 -> AEM 30-(03x0,2340,5130)"] == "lambda"
    assert mapped["Manifold Absolute Pressure - 2 bar"] == "map_kpa"
    assert log.columns["lambda"][-1] == pytest.approx(0.92)


def test_lone_corrupt_timestamp_is_dropped_not_sorted_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "spike.csv"
    rows = [f"{0.5 * i:.1f},{800 + i}" for i in range(10)]
    rows.insert(5, "16777.0,9999")  # a glitched stamp between two good rows
    path.write_text("Time (s),RPM\n" + "\n".join(rows) + "\n")
    log = open_log(path)
    assert log.summary.duration_s == pytest.approx(4.5)
    assert 9999 not in log.columns["rpm"]
    assert any("corrupt time" in n for n in log.summary.notes)


def test_replay_takes_time_unit_for_an_unlabelled_clock(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "amb.csv"
    path.write_text(
        "Stamp,RPM,MAP (kPa)\n" + "".join(f"{2 * i},{2000 + i},{60 + i}\n" for i in range(5))
    )
    cmd = [sys.executable, "-m", "dynoai_tui.cli", "replay", str(path), "--headless", "--max-speed"]
    cmd += ["--map", "time=Stamp"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--time-unit ms|s" in bad.stderr
    good = subprocess.run([*cmd, "--time-unit", "ms"], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    assert "5 received" in good.stdout


def test_gauge_map_and_boost_become_absolute() -> None:
    from core.formats.mapping import map_columns

    rpm = np.array([1000.0, 2000.0])
    gauge = map_columns(
        ["RPM", "Manifold Pressure"], ["rpm", "kPa (gauge)"], [rpm, np.array([-50.0, 50.0])]
    )
    assert gauge.columns["map_kpa"] == pytest.approx([51.325, 151.325])
    assert "101.325 kPa" in gauge.mapped[-1].conversion
    boost = map_columns(
        ["RPM", "Boost (psi)", "Baro"],
        ["rpm", "psi", "kPa"],
        [rpm, np.array([0.0, 10.0]), np.array([95.0, 95.0])],
    )
    assert boost.columns["map_kpa"] == pytest.approx([95.0, 95.0 + 68.94757])
    absolute = map_columns(
        ["RPM", "MAP", "Boost"],
        ["rpm", "kPa", "psi"],
        [rpm, np.array([90.0, 150.0]), np.array([-1.0, 7.0])],
    )
    assert absolute.columns["map_kpa"] == pytest.approx([90.0, 150.0])  # MAP logged: boost unused
    assert "Boost" in absolute.unmapped


def test_a_clock_spanning_weeks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weeks.csv"
    path.write_text("Time (s),RPM\n0,1000\n0.5,1000\n1e7,1000\n1e7,1001\n")
    with pytest.raises(LogImportError, match=r"spans 116 days .* --time-unit ms\|s"):
        open_log(path)


def test_name_and_unit_must_agree() -> None:
    from core.formats.mapping import map_columns

    rpm = np.array([1000.0, 2000.0])
    out = map_columns(
        ["RPM", "Speed", "Coolant Temp", "MAF"],
        ["rpm", "rpm", "kPa", "Hz"],
        [rpm, rpm, rpm, rpm],
    )
    assert set(out.columns) == {"rpm"}
    assert {"Speed", "Coolant Temp", "MAF"} <= set(out.unmapped)
    assert any("'rpm' is not a unit of vehicle_speed_kph" in n for n in out.notes)
    assert any("'Hz' is the sensor's raw signal" in n for n in out.notes)
