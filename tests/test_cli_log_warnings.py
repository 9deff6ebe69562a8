"""Every command that reads a log warns when the log is cut short, damaged or has no wideband.

QA: ``dynoai ve`` used a truncated .dynolog without a word (exit 0, ``notes: []``) while
``replay`` and ``coverage`` on the same file warned "recovered 40 blocks ... bytes of
truncated tail ignored"; and corrected nothing from a CSV without a lambda column
("0 of 256 cells changed ... 232 without data", exit 0) without saying why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from core.frames import Block
from core.record import read_log
from dynoai_tui.cli import main

DATA = Path(__file__).parent / "data"
TRUNCATED = re.compile(
    r"dynoai: warning: (\S*/)?cut\.dynolog: recovered \d+ blocks \(\d+ samples, [\d.]+ s\) "
    r"and \d+ events; \d+ bytes of truncated tail ignored"
)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base tune, a 30 s simulator log, the same log cut at 100000 bytes, and a CSV
    of that log without its wideband (the columns a tool with no wideband logs)."""
    d = tmp_path_factory.mktemp("logs")
    assert main(["sim", "--write-tune", str(d / "base.msq"), "--seed", "6"]) == 0
    whole = d / "s.dynolog"
    assert main(["sim", "--duration", "30", "--out", str(whole), "--seed", "2"]) == 0
    data = whole.read_bytes()
    assert len(data) > 100_000
    (d / "cut.dynolog").write_bytes(data[:100_000])
    _, blocks, _, _ = read_log(whole)
    rows = [
        f"{t:.3f},{rpm:.0f},{kpa:.1f},{tps:.1f},{clt:.1f}"
        for b in blocks
        if isinstance(b, Block) and len(b)
        for t, rpm, kpa, tps, clt in zip(
            b.t,
            b.columns["rpm"],
            b.columns["map_kpa"],
            b.columns["tps_pct"],
            b.columns["clt_c"],
            strict=True,
        )  # fmt: skip
    ]
    (d / "noafr.csv").write_text("Time,RPM,MAP,TPS,CLT\n" + "\n".join(rows) + "\n")
    # a real MLG (tests/data/README.md) cut inside a data block
    (d / "cut.mlg").write_bytes((DATA / "markers.mlg").read_bytes()[:8000])
    return d


@pytest.fixture(autouse=True)
def in_logs(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(logs)
    monkeypatch.setenv("DYNOAI_DATA_DIR", str(logs / "store"))


def run(d: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("dynoai: warning:")]


@pytest.mark.parametrize(
    "argv",
    [
        ("ve", "--tune", "base.msq", "--log", "cut.dynolog"),
        ("ve", "--tune", "base.msq", "--log", "cut.dynolog", "--format", "json"),
        ("coverage", "cut.dynolog"),
        ("replay", "cut.dynolog", "--headless"),
        ("report", "cut.dynolog"),
    ],
)
def test_a_truncated_recording_gets_the_same_warning_from_every_reader(
    logs: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, out, err = run(logs, capsys, *argv)
    assert code == 0, err
    said = [ln for ln in warnings(err) if TRUNCATED.fullmatch(ln)]
    assert len(said) == 1, err
    if "json" in argv:
        notes = json.loads(out)["notes"]
        assert said[0].removeprefix("dynoai: warning: ") in notes


def test_a_vehicle_built_from_a_truncated_log_warns_on_rebuild_and_ve(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(logs, capsys, "replay", "cut.dynolog", "--headless", "--vehicle", "cutv")
    assert code == 0 and any(TRUNCATED.fullmatch(ln) for ln in warnings(err)), err
    for argv in (
        ("coverage", "--vehicle", "cutv", "--rebuild"),
        ("ve", "--vehicle", "cutv", "--tune", "base.msq"),
    ):
        code, _, err = run(logs, capsys, *argv)
        assert code == 0, err
        assert sum(1 for ln in warnings(err) if TRUNCATED.fullmatch(ln)) == 1, (argv, err)


@pytest.mark.parametrize(
    "argv",
    [
        ("import", "cut.mlg", "--out", "cut-mlg.dynolog", "--force"),
        ("ve", "--tune", "base.msq", "--log", "cut.mlg"),
        ("coverage", "cut.mlg"),
    ],
)
def test_a_damaged_foreign_log_gets_its_warning_line(
    logs: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, _, err = run(logs, capsys, *argv)
    assert code == 0, err
    assert warnings(err) == [
        "dynoai: warning: cut.mlg: damaged log: file ends inside a block "
        "(143 bytes at the end ignored)"
    ], err


def test_ve_from_a_log_without_a_wideband_is_one_error_line(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(logs, capsys, "ve", "--tune", "base.msq", "--log", "noafr.csv")
    assert code == 2 and out == ""
    assert err == (
        "dynoai: error: noafr.csv: no wideband lambda/AFR: nothing to correct fuel against\n"
    )
    code, _, err = run(
        logs, capsys, "ve", "--tune", "base.msq", "--log", "noafr.csv", "--log", "noafr.csv"
    )
    assert code == 2
    assert err.endswith(
        "none of the 2 logs has a wideband lambda/AFR: nothing to correct fuel against\n"
    )


def test_ve_warns_of_the_log_without_a_wideband_among_others(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("ve", "--tune", "base.msq", "--log", "noafr.csv", "--log", "s.dynolog")
    code, out, err = run(logs, capsys, *argv, "--format", "json")
    assert code == 0, err
    line = "noafr.csv: no wideband lambda/AFR: nothing to correct fuel against"
    assert warnings(err) == [f"dynoai: warning: {line}"]
    result = json.loads(out)
    assert line in result["notes"]
    # the log with a wideband still counts: the warning is about the other one
    assert np.asarray(result["hits"]).sum() > 0
