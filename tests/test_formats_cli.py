"""``dynoai import``: summary on stdout, a .dynolog that reads back, one-line errors with exit 2."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.frames import Block, concat
from core.record import LogReader
from core.source import SourceEvent
from dynoai_tui.commands import import_log as cmd_import

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cmd_import.add_arguments(parser)
    return cmd_import.run(parser.parse_args(list(argv)))


def test_import_mlg_writes_dynolog_that_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.dynolog"
    assert _run(str(DATA / "markers.mlg"), "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert (
        "MLG v1" in text and "markers: 9" in text and "Vehicle Speed -> vehicle_speed_kph" in text
    )
    with LogReader(out) as reader:
        records = list(reader)
        header = reader.header
    blocks = [r for r in records if isinstance(r, Block)]
    events = [r for r in records if isinstance(r, SourceEvent)]
    assert header.metadata["format"] == "MLG v1 (MLVLG binary)"
    assert header.metadata["stoich"] == 14.7
    assert header.sources["import"]["uri"].startswith("import:")
    assert len(events) == 9 and events[0].kind == "marker"
    joined = concat(blocks)
    assert len(joined) == 43
    assert joined.column("map_kpa")[0] == 10
    assert np.all(np.diff(joined.t) > 0)


def test_import_says_what_a_replay_bins_and_when_nothing_bins_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # QA: short.mlg (Speeduino via TunerStudio, shared/data) mapped 19 channels and the
    # summary named nothing missing, yet its replay binned 0 of 66 samples: the engine
    # sat at 431 rpm and MAP read 10 kPa (off the table)
    assert _run(str(DATA / "short.mlg"), "--out", str(tmp_path / "s.dynolog")) == 0
    text = capsys.readouterr().out
    assert "binned on the default table: 0 of 66 samples, 0 cells" in text
    assert "outside_table 58" in text and "cold 8" in text
    assert "grid will lack: every sample (rpm or MAP off the table's axes" in text
    assert "rpm 431-431, MAP 10-10 kPa" in text
    # the count is what a replay of the written file bins (the same pipeline)
    from core.pipeline import bin_log
    from core.vehicle import VehicleConfig

    assert int(bin_log(tmp_path / "s.dynolog", VehicleConfig()).grid.hits.sum()) == 0
    # a log that bins says how much, with no "every sample" line
    assert _run(str(DATA / "torque.csv"), "--out", str(tmp_path / "t.dynolog")) == 0
    text = capsys.readouterr().out
    binned = int(bin_log(tmp_path / "t.dynolog", VehicleConfig()).grid.hits.sum())
    assert binned > 0 and f"binned on the default table: {binned} of 12 samples" in text
    assert "every sample" not in text
    # markers.mlg's own check already says nothing bins: said once
    assert _run(str(DATA / "markers.mlg"), "--out", str(tmp_path / "m.dynolog")) == 0
    assert capsys.readouterr().out.count("grid will lack") == 1


def test_every_reject_reason_has_words() -> None:
    from core.coverage.filters import REASONS

    assert set(cmd_import.REJECT_WORDS) == {*REASONS, "outside_table"}


def test_import_csv_with_map_and_force(tmp_path: Path) -> None:
    out = tmp_path / "c.dynolog"
    args = [str(DATA / "custom.csv"), "--out", str(out), "--map", "time=Stamp,rpm=n_eng,lambda=lam"]
    assert _run(*args) == 0
    assert _run(*args) == 2  # exists
    assert _run(*args, "--force") == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [("no_rpm.csv", "no engine speed (rpm) column"), ("nothing-here.mlg", "cannot read")],
)
def test_bad_input_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    assert _run(str(DATA / name), "--out", str(tmp_path / "x.dynolog")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("dynoai: error:")
    assert not (tmp_path / "x.dynolog").exists()


def test_truncated_and_unknown_via_subprocess(tmp_path: Path) -> None:
    cut = tmp_path / "cut.mlg"
    cut.write_bytes((DATA / "short.mlg").read_bytes()[:500])
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"\x00\x01garbage\xff" * 20)
    code = (
        "import argparse, sys; from dynoai_tui.commands import import_log as c; "
        "p = argparse.ArgumentParser(); c.add_arguments(p); "
        "sys.exit(c.run(p.parse_args(sys.argv[1:])))"
    )
    for src, message in ((cut, "truncated MLG"), (junk, "unknown log format")):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(src), "--out", str(tmp_path / "o.dynolog")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert message in proc.stderr and proc.stderr.count("\n") == 1
        assert "Traceback" not in proc.stderr


def test_progress_bar_redraws_only_on_new_percent() -> None:
    import io

    stream = io.StringIO()
    bar = cmd_import._ProgressBar(stream, "reading x.mlg")
    for done in (0, 1, 2, 500, 1000):
        bar(done, 1000)
    bar.finish()
    frames = stream.getvalue().split("\r")[1:]
    assert [f.split("]")[1].strip() for f in frames] == ["0%", "50%", "100%"]
    assert frames[1].startswith("reading x.mlg [" + "#" * 15 + "." * 15 + "]")
    assert stream.getvalue().endswith("\n")


def _damaged_copies(tmp_path: Path) -> dict[str, Path]:
    """short.mlg (real TunerStudio MLVLG v1, see data/README.md) damaged three ways."""
    good = (DATA / "short.mlg").read_bytes()
    rng = np.random.default_rng(7)
    mid = bytearray(good)
    at = len(good) // 2
    mid[at : at + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    copies = {
        "corrupt": mid,
        "garbage": good + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "truncated": good[: len(good) // 2 + 17],
    }
    out = {}
    for name, data in copies.items():
        out[name] = tmp_path / f"{name}.mlg"
        out[name].write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("command", [["replay", "--headless"], ["coverage"], ["report"]])
def test_replay_coverage_report_of_a_damaged_mlg_say_what_import_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    # QA: import said "checksum errors (records skipped): 1" and "unknown block type 90",
    # while replay and coverage of the same file were silent; a damaged .dynolog warns
    from dynoai_tui.cli import main

    for name, path in _damaged_copies(tmp_path).items():
        assert _run(str(path), "--out", str(tmp_path / f"{name}.dynolog")) == 0
        out = capsys.readouterr().out.splitlines()
        notes = [ln[len("  note: ") :] for ln in out if ln.startswith("  note: ")]
        damage = [n for n in notes if "block" in n or "checksum" in n]
        assert damage, name
        code = main([command[0], str(path), *command[1:]])
        err = capsys.readouterr().err
        assert code == 0, (name, err)
        warnings = [ln for ln in err.splitlines() if ln.startswith("dynoai: warning:")]
        assert len(warnings) == 1, (name, err)
        assert str(path) in warnings[0] and all(d in warnings[0] for d in damage)

    assert main([command[0], str(DATA / "short.mlg"), *command[1:]]) == 0
    assert "warning" not in capsys.readouterr().err  # an intact log says nothing


def test_report_finds_the_pull_of_a_dyno_export_without_throttle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # QA: a clean 2500 -> 6490 rpm WinPEP 8 / Power Core run (PROTOCOLS §7: no throttle
    # column, no units) gave "no WOT pull found"; columns as PROTOCOLS §7 names them
    from dynoai_tui.cli import main

    rows = [
        "Time,(DWRT CPU) Engine RPM,(DWRT CPU) Power,(DWRT CPU) Torque,"
        "WB Volts Petrol AFR,(DWRT ATMO) Pressure,(DWRT ATMO) Temperature 1"
    ]
    for i in range(400):
        rpm = 2500 + 10 * i
        torque = 90 + 10 * np.sin(i / 130)
        rows.append(f"{i * 0.05:.2f},{rpm},{torque * rpm / 5252:.2f},{torque:.2f},12.8,29.92,77")
    path = tmp_path / "winpep.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["report", str(path), "--format", "json"]) == 0
    import json

    sheet = json.loads(capsys.readouterr().out)
    assert len(sheet["pulls"]) == 1
    pull = sheet["pulls"][0]
    assert pull["correction"]["inputs"]["baro_kpa"] == pytest.approx(101.32, abs=0.01)
    assert pull["correction"]["inputs"]["air_temp_c"] == pytest.approx(25.0)


def test_report_corrects_a_dyno_export_with_its_logged_humidity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # PROTOCOLS §7: the DWRT ATMO module logs "Pressure, Humidity, Temperature 1". The
    # humidity column went unmapped, so the SAE J1349 factor assumed dry air: 1.8 %
    # off at 35 °C and 70 % RH, where WinPEP's own factor uses the logged humidity.
    # A US export (hp and lb·ft) logs inHg and °F: 29.38 inHg = 99.5 kPa, 95 °F = 35 °C.
    import json

    from core.dynosheet.correction import correction_for
    from dynoai_tui.cli import main

    rows = [
        "Time,(DWRT CPU) Engine RPM,(DWRT CPU) Power,(DWRT CPU) Torque,"
        "(DWRT ATMO) Pressure,(DWRT ATMO) Humidity,(DWRT ATMO) Temperature 1"
    ]
    for i in range(400):
        rpm = 2500 + 10 * i
        torque = 90 + 10 * np.sin(i / 130)
        rows.append(f"{i * 0.05:.2f},{rpm},{torque * rpm / 5252:.2f},{torque:.2f},29.38,70,95")
    path = tmp_path / "winpep.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["report", str(path), "--format", "json"]) == 0
    inputs = json.loads(capsys.readouterr().out)["pulls"][0]["correction"]
    assert inputs["inputs"]["humidity_pct"] == pytest.approx(70.0)
    assert inputs["inputs"]["air_temp_c"] == pytest.approx(35.0)
    baro = inputs["inputs"]["baro_kpa"]
    assert baro == pytest.approx(99.5, abs=0.02)
    wet = correction_for("sae", baro, 35.0, 70.0).factor
    assert inputs["factor"] == pytest.approx(wet, abs=5e-4)
    assert wet - correction_for("sae", 99.5, 35.0, None).factor > 0.015


def test_a_lambda_column_holding_afr_names_the_map_that_imports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # QA: a CSV "Lambda" column holding 13.2 was only "lambda on the lean rail"
    t = np.arange(0.0, 20.0, 0.05)
    afr = 13.2 + 0.3 * np.sin(t)
    rows = [f"{x:.2f},3000,60.0,30.0,85.0,{a:.2f}" for x, a in zip(t, afr, strict=True)]
    src = tmp_path / "afr.csv"
    src.write_text("Time,RPM,MAP,TPS,CLT,Lambda\n" + "\n".join(rows) + "\n")
    assert _run(str(src), "--out", str(tmp_path / "a.dynolog")) == 0
    text = capsys.readouterr().out
    assert "wideband_railed" in text
    hint = next(ln for ln in text.splitlines() if ln.startswith("  lean rail:"))
    assert hint == (
        "  lean rail: 'Lambda' reads 12.9-13.5: that looks like AFR, not lambda (near 1.0); "
        'if it is AFR, import it as AFR with --map afr="Lambda"'
    )
    # the mapping it names is one the import takes, and then the samples bin
    assert _run(str(src), "--out", str(tmp_path / "b.dynolog"), "--map", 'afr="Lambda"') == 0
    text = capsys.readouterr().out
    assert "lean rail" not in text and "wideband_railed" not in text
    binned = re.search(r"binned on the default table: (\d+) of (\d+) samples", text)
    assert binned and int(binned[1]) > 0.5 * int(binned[2]), text
    # a real lambda column gets no such line
    assert _run(str(DATA / "tunerstudio.csv"), "--out", str(tmp_path / "c.dynolog")) == 0
    assert "looks like AFR" not in capsys.readouterr().out
    # a replay of the CSV itself says it too (it only counted wideband_railed)
    from dynoai_tui.cli import main

    replay = ["replay", str(src), "--headless", "--data-dir", str(tmp_path / "store")]
    assert main(replay) == 0
    err = capsys.readouterr().err
    assert f"dynoai: warning: {src}: lean rail: 'Lambda' reads 12.9-13.5" in err, err
    assert main([*replay, "--map", 'afr="Lambda"']) == 0
    assert "lean rail" not in capsys.readouterr().err
