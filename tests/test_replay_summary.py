"""`dynoai replay --headless`: the summary's vehicle line and next test tell what the
store holds and what `dynoai plan` says after the replay.

In-process (``dynoai_tui.cli.main``), so the simulated candidates are simulated once
for the whole module, not once per command.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynoai_tui.cli import main
from tests.fleet_sim import make_sim, record_sim


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A steady-state session, a pulls session and a copy of the pulls one cut in half."""
    d = tmp_path_factory.mktemp("replaysum")
    steady = record_sim(d / "steady.dynolog", make_sim("steady", 4), run_id="steady-run")
    pulls = record_sim(d / "pulls.dynolog", make_sim("pulls", 7), run_id="pulls-run")
    cut = d / "pulls-cut.dynolog"
    data = pulls.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # a copy cut short: the first ~210 s of 420
    return {"steady": steady, "pulls": pulls, "cut": cut}


def dynoai(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def line(out: str, key: str) -> str:
    """The summary line ``key`` with the lines it wrapped onto at 80 columns joined back."""
    lines = out.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key} "))
    whole = [lines[i]]
    for more in lines[i + 1 :]:
        if not more.startswith(" " * 14) or not more.strip():
            break
        whole.append(more.strip())
    return " ".join(whole)


def trusted(vehicle_line: str) -> str:
    """'77 of 256' from 'vehicle  30.1 % (77 of 256 cells trusted, ...)'."""
    return vehicle_line.split("(", 1)[1].split(" cells", 1)[0]


def test_a_partial_replay_of_a_stored_run_reports_the_run_the_store_kept(
    logs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.store import VehicleStore

    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "store"))
    dynoai(capsys, "replay", str(logs["steady"]), "--headless", "--vehicle", "V")
    whole = dynoai(capsys, "replay", str(logs["pulls"]), "--headless", "--vehicle", "V")
    store = VehicleStore(tmp_path / "store")
    stored_hits = int(store.run_grid("V", "pulls-run").hits.sum())  # type: ignore[union-attr]
    before = line(whole, "vehicle")

    part = dynoai(capsys, "replay", str(logs["cut"]), "--headless", "--vehicle", "V")
    # the store kept the whole run (a part of a run never replaces it) ...
    assert int(store.run_grid("V", "pulls-run").hits.sum()) == stored_hits  # type: ignore[union-attr]
    # ... and the summary says so in its vehicle line, with the store's numbers: it had
    # counted the stored steady run plus this part (76 of 256) while the store held 77
    vehicle = line(part, "vehicle")
    assert trusted(vehicle) == trusted(before), (before, vehicle)
    assert "as stored: run pulls-ru kept, not replaced by this part of it" in vehicle
    plan = json.loads(dynoai(capsys, "coverage", "--vehicle", "V", "--format", "json"))
    assert f"{plan['covered_pct']:.1f} %" in vehicle
    # the note says why the replay was a part (the cut), not the refusal again
    assert "truncated tail ignored" in line(part, "note")


def test_a_replay_stopped_early_reports_the_run_the_store_kept(
    logs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "store"))
    dynoai(capsys, "replay", str(logs["steady"]), "--headless", "--vehicle", "S")
    whole = dynoai(capsys, "replay", str(logs["pulls"]), "--headless", "--vehicle", "S")
    # the same log again in real time, stopped (SIGTERM) a few seconds in
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynoai_tui.cli", "replay", str(logs["pulls"]), "--headless",
         "--vehicle", "S", "--speed", "1", "--status-format", "kv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert proc.stderr is not None
    statuses = 0
    while statuses < 3:  # three status lines (one a second): a few seconds of data binned
        got = proc.stderr.readline()
        assert got, "the replay ended before it was stopped"
        statuses += got.startswith("status ")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    vehicle = line(out, "vehicle")
    assert trusted(vehicle) == trusted(line(whole, "vehicle")), vehicle
    assert "run pulls-ru kept, not replaced by this part of it" in vehicle
    assert line(out, "note").endswith("SIGTERM")


def test_a_replayed_segment_of_a_stored_live_run_is_not_counted_twice_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "store"))
    dynoai(
        capsys, "log", "--source", "sim:?speed=max&duration=60&scenario=steady&seed=2",
        "--out", str(tmp_path / "live.dynolog"), "--vehicle", "L",
    )  # fmt: skip
    stored = json.loads(dynoai(capsys, "coverage", "--vehicle", "L", "--format", "json"))
    out = dynoai(capsys, "replay", str(tmp_path / "live.dynolog"), "--headless", "--vehicle", "L")
    vehicle = line(out, "vehicle")
    # the live run counts this recording: the store did not add it again, and the
    # summary counted it once (it had summed the live run and its own replay)
    assert "already counts this recording, not added again" in vehicle
    assert f"{stored['covered_pct']:.1f} %" in vehicle, (stored["covered_pct"], vehicle)


def expected_next_test(plan: dict) -> str:
    """The first test of `dynoai plan --json` as the summary words it."""
    s = plan["suggestions"][0]
    knock = "⚠ knock seen there: " if s["knock_cells"] else ""
    return f"next test     {knock}{s['description']} ({s['minutes']:.1f} min, {s['band']})"


def test_a_full_speed_replay_names_the_next_test_dynoai_plan_names_after_it(
    logs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "store"))
    for name in ("steady", "pulls", "cut"):  # a new vehicle, a stored one, a kept run
        out = dynoai(capsys, "replay", str(logs[name]), "--headless", "--vehicle", "P")
        plan = json.loads(dynoai(capsys, "plan", "--vehicle", "P", "--json"))
        assert line(out, "next test") == expected_next_test(plan), name
        assert "quick estimate" not in out
    # without --vehicle: the plan on the replayed coverage, the test `dynoai plan` names
    # once the same log is stored under a new vehicle
    alone = dynoai(capsys, "replay", str(logs["pulls"]), "--headless")
    dynoai(capsys, "replay", str(logs["pulls"]), "--headless", "--vehicle", "Q")
    plan = json.loads(dynoai(capsys, "plan", "--vehicle", "Q", "--json"))
    assert line(alone, "next test") == expected_next_test(plan)
    assert "quick estimate" not in alone


def test_a_signal_during_the_end_of_replay_plan_prints_the_summary_at_once() -> None:
    from dynoai_tui.commands.headless import run_unless_stopped

    def slow_plan() -> str:
        os.kill(os.getpid(), signal.SIGTERM)  # the tuner's kill while the plan is worked out
        time.sleep(30)
        return "plan"

    started = time.monotonic()
    assert run_unless_stopped(slow_plan) is None
    assert time.monotonic() - started < 10
    assert run_unless_stopped(lambda: "plan") == "plan"
    with pytest.raises(ZeroDivisionError):  # a planner bug is not swallowed
        run_unless_stopped(lambda: 1 // 0)


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_a_long_end_of_replay_plan_says_so_on_a_terminal_and_not_on_a_pipe() -> None:
    """A tuner over SSH read the ~5-s silent end-of-replay plan as a hang (QA); a
    status parser reading stderr through a pipe gets no extra line."""
    from dynoai_tui.commands.headless import NOTICE_AFTER_S, run_unless_stopped

    def slow() -> str:
        time.sleep(NOTICE_AFTER_S + 0.4)
        return "plan"

    for tty, told in ((True, "planning\n"), (False, "")):
        out = _Terminal(tty)
        assert run_unless_stopped(slow, "planning", out) == "plan"
        assert out.getvalue() == told
    quick = _Terminal(True)
    assert run_unless_stopped(lambda: "plan", "planning", quick) == "plan"
    assert quick.getvalue() == ""  # a quick plan says nothing


def test_the_summary_wraps_at_the_terminals_width_and_at_80_on_a_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # QA: after the TUI, a 160-column terminal got the summary wrapped at 80 (read as
    # fragments); a 50-column one got 80-column lines the terminal wrapped mid-word
    from core.session import Session
    from drivers.registry import create_sources
    from dynoai_tui.commands.headless import summary_text, summary_width

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    snap = Session(
        create_sources(["sim:vtwin?scenario=pulls&seed=1&speed=max&duration=45"])
    ).run_to_end()
    for columns in (50, 160):
        monkeypatch.setenv("COLUMNS", str(columns))
        assert summary_width(Tty()) == columns
        assert summary_width(io.StringIO()) == 80  # a pipe or a file: the same text anywhere
        text = summary_text(snap, recording_path=None, width=summary_width(Tty()))
        widest = max(len(ln) for ln in text.splitlines())
        assert widest <= columns
        if columns == 160:  # the alarm lines (~90 columns) stay whole
            assert widest > 80, text
    monkeypatch.setenv("COLUMNS", "20")
    assert summary_width(Tty()) == 40  # never narrower than a label and a few words


def test_the_dashboards_replay_summary_names_the_next_test_headless_names(
    logs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # QA: quitting the dashboard's replay printed "next test: hold 1500 rpm" (the live
    # plan from where the replay stood), `replay --headless` of the same file "hold 1000"
    import dynoai_tui.tui.app as app
    from dynoai_tui.commands.headless import summary_text

    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "store"))
    headless = dynoai(capsys, "replay", str(logs["steady"]), "--headless")

    def dashboard(session, *, next_test=None, **_kw):  # what run_tui does around the app
        final = session.run_to_end()
        assert next_test is not None
        print(summary_text(next_test(final), recording_path=None))
        return 0

    monkeypatch.setattr(app, "run_tui", dashboard)
    shown = dynoai(capsys, "replay", str(logs["steady"]), "--speed", "1000")
    assert line(shown, "next test") == line(headless, "next test")


def test_a_replay_stopped_part_way_warns_of_no_damage_in_a_whole_file(
    logs: dict[str, Path], tmp_path: Path
) -> None:
    # QA: Ctrl-C in `replay --headless --speed 5` warned "s.dynolog: recovered 35 blocks
    # (1750 samples, 17.5 s) and 1 events; file complete" of a whole file
    env = {**os.environ, "DYNOAI_DATA_DIR": str(tmp_path / "store")}

    def stopped(path: Path) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynoai_tui.cli", "replay", str(path), "--headless",
             "--speed", "20", "--status-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert proc.stderr is not None
        for raw in proc.stderr:  # the first status: the replay is under way
            if raw.startswith("{"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "note          SIGINT" in out, err
        return err

    assert "recovered" not in stopped(logs["pulls"])
    # ...and the cut copy, stopped before its cut, has met no damage yet either
    assert "recovered" not in stopped(logs["cut"])
