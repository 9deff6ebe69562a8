"""Small CLI breakages from issue 16, each pinned: messages name the flag, exits agree."""

from __future__ import annotations

import re
import time
from pathlib import Path

from core.record.replay import ReplaySource
from core.session import Session
from core.source import SourceURI
from dynoai_tui.commands.replay import log_length_s
from tests.test_cli import dynoai


def test_sim_already_exists_names_overwrite(tmp_path: Path):
    (tmp_path / "a.dynolog").write_bytes(b"keep")
    res = dynoai("sim", "--out", "a.dynolog", "--duration", "2", cwd=tmp_path)
    assert res.returncode == 2 and "already exists" in res.stderr and "--overwrite" in res.stderr
    assert (tmp_path / "a.dynolog").read_bytes() == b"keep"


def test_import_already_exists_names_force(tmp_path: Path):
    assert dynoai("sim", "--out", "s.dynolog", "--duration", "2", cwd=tmp_path).returncode == 0
    (tmp_path / "s.csv").write_text("time,rpm\n0,1000\n0.1,1100\n")
    (tmp_path / "out.dynolog").write_bytes(b"keep")
    res = dynoai("import", "s.csv", "--out", "out.dynolog", cwd=tmp_path)
    assert res.returncode == 2 and "already exists" in res.stderr and "--force" in res.stderr
    assert (tmp_path / "out.dynolog").read_bytes() == b"keep"


def test_constraints_of_a_new_vehicle_answer_like_plan(tmp_path: Path):
    """A new bike: plan gives the opening plan (issue 11), constraints the defaults; both say so."""
    plan = dynoai("plan", "--vehicle", "nosuch", cwd=tmp_path)
    shown = dynoai("constraints", "--vehicle", "nosuch", cwd=tmp_path)
    assert plan.returncode == shown.returncode == 0
    assert "no vehicle named 'nosuch' yet" in shown.stderr and shown.stderr.count("\n") == 1
    assert "max_rpm" in shown.stdout
    assert "nosuch" not in dynoai("vehicle", "list", cwd=tmp_path).stdout  # nothing created
    made = dynoai("constraints", "--vehicle", "nosuch", "--set", "max_rpm=5800", cwd=tmp_path)
    assert made.returncode == 0  # setting a constraint creates the vehicle, as plan suggests
    assert dynoai("constraints", "--vehicle", "nosuch", cwd=tmp_path).returncode == 0
    # lug_rpm: its default shown, "none" stored as no limit and read back as that
    assert re.search(r"lug_rpm\s+1500", shown.stdout), shown.stdout
    off = dynoai("constraints", "--vehicle", "nosuch", "--set", "lug_rpm=none", cwd=tmp_path)
    assert off.returncode == 0
    again = dynoai("constraints", "--vehicle", "nosuch", cwd=tmp_path).stdout
    assert re.search(r"lug_rpm\s+no limit", again), again


def test_vehicle_reset_asks_or_needs_yes(tmp_path: Path):
    assert dynoai("constraints", "--vehicle", "bike", "--set", "max_rpm=5800",
                  cwd=tmp_path).returncode == 0  # fmt: skip
    res = dynoai("vehicle", "reset", "bike", cwd=tmp_path)  # stdin is not a terminal here
    assert res.returncode == 2 and "--yes" in res.stderr and "removed" not in res.stdout
    res = dynoai("vehicle", "reset", "bike", "--yes", cwd=tmp_path)
    assert res.returncode == 0 and "removed 0 run(s)" in res.stdout


def test_replay_length_and_sample_counts_after_a_seek(tmp_path: Path):
    log = tmp_path / "r.dynolog"
    assert dynoai("sim", "--out", str(log), "--duration", "40", cwd=tmp_path).returncode == 0
    source = ReplaySource(SourceURI(f"replay:{log}?speed=50", "replay", str(log), {}), "replay")
    source.speed, source.realtime = 50.0, True
    length_s = log_length_s(source)
    assert length_s is not None and abs(length_s - 40.0) < 0.1
    session = Session([source])
    session.start()
    try:
        deadline = time.monotonic() + 10
        while session.snapshot.elapsed_s < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        source.seek(-1000.0)  # back to the start: the run restarts
        deadline = time.monotonic() + 10
        while session.snapshot.elapsed_s < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        final = session.stop()
    received = sum(info.samples for info in final.sources)
    assert final.samples_total == received
    assert received < 3000  # counted from the seek, not from the first pass as well


def test_bell_and_status_flags_are_offered(tmp_path: Path):
    for command in ("run", "replay", "log"):
        res = dynoai(command, "--help", cwd=tmp_path)
        assert res.returncode == 0 and "--no-bell" in res.stdout, command
    for command in ("log", "replay"):
        assert "--status-format" in dynoai(command, "--help", cwd=tmp_path).stdout


def test_log_help_and_readme_name_the_default_recording_the_code_writes(tmp_path: Path):
    # QA: log --help said dynoai-<time>.dynolog, the README dynoai-<date>-<time>.dynolog
    shown = " ".join(dynoai("log", "--help", cwd=tmp_path).stdout.split())
    found = re.search(r"default: (dynoai-\S+), e\.g\. (dynoai-[\w.-]+?)\)", shown)
    assert found, shown
    form, example = found.groups()
    assert form == "dynoai-<date>-<time>.dynolog"
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert f"`{form}`" in readme and f"`{example}`" in readme
    done = dynoai("log", "--duration", "0.3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (written,) = [p.name for p in tmp_path.glob("*.dynolog")]
    assert re.fullmatch(re.sub(r"\d", r"\\d", re.escape(example)), written), (written, example)
    assert re.search(rf"recording +{re.escape(written)}", done.stdout)
