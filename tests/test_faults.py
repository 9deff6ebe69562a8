"""Fault stories end to end (issue 10): what a tuner's data survives.

Each test reproduces a failure found by the reliability pass and fails on the code
before the fix: a flipped byte, a partial-recording replay, hostile recordings.
The engine stories (store locked, disks full) are further down.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import core.session
from core.record import LogFileError, LogHeader, LogReader, LogWriter
from core.record.format import frame, frame_length, unframe
from core.session import Session
from core.source import SourceState
from core.store import VehicleStore
from core.vehicle import VehicleConfig
from drivers.registry import create_sources
from dynoai_tui.commands.common import make_tracker
from tests.faultkit import flip_trials, fuzz, live_recording, record_spans

ROOT = Path(__file__).resolve().parents[1]
DYNOAI = [sys.executable, "-m", "dynoai_tui.cli"]


def dynoai(*args: str, cwd: Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DYNOAI_DATA_DIR": str(store)}
    return subprocess.run(
        [*DYNOAI, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env
    )


# -- flipped byte --------------------------------------------------------------------


def test_one_flipped_bit_in_a_60_s_recording_keeps_95_percent_of_samples(tmp_path: Path) -> None:
    # Before: the reader stopped at the first bad record, keeping ~50 % on average.
    path = tmp_path / "live.dynolog"
    live_recording(path, seconds=60.0)
    kept = flip_trials(path, trials=120, seed=11)
    assert statistics.mean(kept) >= 0.95, statistics.mean(kept)
    assert statistics.median(kept) >= 0.99


def test_structure_aware_fuzz_of_the_reader_and_replay_path_never_crashes(tmp_path: Path) -> None:
    # bench/bench_dynolog_faults.py runs 10,000 cases; CI runs a slice with another seed.
    seed = tmp_path / "seed.dynolog"
    live_recording(seed, seconds=2.0, marker_every_s=0.5)
    crashes: list[str] = []
    assert fuzz(seed, 150, seed=5, on_crash=lambda n, e: crashes.append(f"{n}: {e}")) == 0, crashes


# -- hostile headers and blocks -------------------------------------------------------


def _header_file(path: Path, **changes: object) -> Path:
    header = LogHeader(
        created_at=1.0,
        sources={"ecu": {"uri": "sim:", "channels": {"rpm": "rpm", "map_kpa": "kPa"}}},
        axes={"rpm": [1000.0, 2000.0], "map_kpa": [30.0, 100.0]},
        metadata={"stoich": 14.7, "hit_target": 10},
    ).to_record()
    for key, value in changes.items():
        if key in ("stoich", "hit_target", "lambda_delay_ms"):
            header["metadata"][key] = value
        else:
            header[key] = value
    path.write_bytes(frame(header))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stoich": 0.0}, "stoich 0.0 is outside 5..20"),
        ({"stoich": float("nan")}, "stoich nan is outside"),
        ({"stoich": float("inf")}, "stoich inf is outside"),
        ({"hit_target": 0}, "hit_target 0 is outside 1..100000"),
        ({"hit_target": 1.5}, "hit_target 1.5 is not a whole number"),
        ({"lambda_delay_ms": -5}, "lambda_delay_ms -5 is outside"),
        ({"sources": {"ecu": {"uri": "sim:", "channels": "rpm"}}}, "channels are not a map"),
        ({"axes": {"rpm": [float(i + 1) for i in range(5000)], "map_kpa": [1.0, 2.0]}},
         "5000 breakpoints, at most 64"),
    ],
)  # fmt: skip
def test_header_values_out_of_range_are_one_clear_error(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = _header_file(tmp_path / "hostile.dynolog", **change)
    with pytest.raises(LogFileError, match=message.replace("(", r"\(").replace(".", r"\.")) as exc:
        LogReader(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_hostile_header_through_the_cli_is_exit_2(tmp_path: Path) -> None:
    axes = {
        "rpm": [float(i + 1) for i in range(5000)],
        "map_kpa": [float(i + 1) for i in range(5000)],
    }
    path = _header_file(tmp_path / "big-axes.dynolog", axes=axes)
    done = dynoai("replay", str(path), "--headless", cwd=tmp_path, store=tmp_path / "store")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "at most 64" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_few_kilobytes_cannot_claim_millions_of_samples(tmp_path: Path) -> None:
    # Before: one 58 KB block of 5 M samples x 1 channel decoded to ~80 MB of float64
    # (555 MB peak through the replay); the reader now refuses blocks over 4 MiB decoded.
    path = tmp_path / "bomb.dynolog"
    header = LogHeader(created_at=1.0, sources={"ecu": {"uri": "x", "channels": {"rpm": ""}}})
    with LogWriter(path, header):
        pass
    n = 5_000_000
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = packer.compress(bytes(12 * n)) + packer.flush()
    with path.open("ab") as fh:
        fh.write(frame({"k": "s", "i": 0, "s": "ecu", "c": ["rpm"]}))
        fh.write(frame({"k": "b", "i": 0, "n": n, "z": 1, "p": payload}))
    assert path.stat().st_size < 80_000
    tracemalloc.start()
    try:
        with LogReader(path) as reader:
            assert list(reader) == []
            rec = reader.recovery
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, peak
    assert rec.skips == 1 and "more than the 4194304-byte limit" in rec.first_skip


def test_config_refuses_huge_axes_and_fractional_hit_target(tmp_path: Path) -> None:
    from core.config import ConfigError
    from core.vehicle import parse_config_text

    axis = ", ".join(str(500 + 25 * i) for i in range(300))
    with pytest.raises(ConfigError, match="rpm axis: 300 breakpoints, at most 64"):
        parse_config_text(f"[axes]\nrpm = [{axis}]\nmap_kpa = [20, 100]\n")
    with pytest.raises(ConfigError, match=r"hit_target: expected a whole number of hits, got 1\.5"):
        parse_config_text("[vehicle]\nhit_target = 1.5\n")
    assert parse_config_text("[vehicle]\nhit_target = 12.0\n").hit_target == 12


# -- partial-recording replay (the `r r` story) --------------------------------------------


def _live_run_with_two_segments(tmp_path: Path, store: VehicleStore) -> tuple[Path, Path]:
    """``dynoai run --vehicle V2 --record a.dynolog``, then ``r`` ``r`` after a while."""
    first, second = tmp_path / "a.dynolog", tmp_path / "V2-second.dynolog"
    cfg = VehicleConfig().with_overrides(name="V2")
    run_id = "live-run-0001"
    tracker = make_tracker(cfg, store, run_id=run_id, log_path=str(first.resolve()))
    sources = create_sources(["sim:?scenario=pulls&duration=90&speed=max&seed=4"])
    session = Session(sources, config=cfg, tracker=tracker, record_path=first, run_id=run_id)
    toggled: list[bool] = []

    def press_r_twice() -> bool:
        if not toggled and session.snapshot.elapsed_s >= 60.0:
            session.stop_recording()  # r
            session.start_recording(second)  # r: a second recording starts
            toggled.append(True)
        return False

    session.run_to_end(should_stop=press_r_twice)
    assert toggled and sources[0].status.state is SourceState.FINISHED
    return first, second


def test_replaying_a_second_segment_never_shrinks_the_live_run(tmp_path: Path) -> None:
    data = tmp_path / "store"
    store = VehicleStore(data)
    first, second = _live_run_with_two_segments(tmp_path, store)
    cfg = VehicleConfig()
    live = store.cumulative_grid("V2", cfg.axes, cfg.hit_target)
    assert live.covered_pct() > 0 and len(store.list_runs("V2")) == 1

    done = dynoai("replay", str(second), "--headless", "--vehicle", "V2", cwd=tmp_path, store=data)
    assert done.returncode == 0, done.stderr
    assert "already counts" in done.stderr and "not added again" in done.stdout
    after = VehicleStore(data).cumulative_grid("V2", cfg.axes, cfg.hit_target)
    assert after.covered_pct() == live.covered_pct()  # before the fix: 6.6 % -> 0.4 %
    assert int(after.hits.sum()) == int(live.hits.sum())

    # --rebuild re-bins the live run from BOTH of its segments: nothing lost
    done = dynoai("coverage", "--vehicle", "V2", "--rebuild", cwd=tmp_path, store=data)
    assert done.returncode == 0, done.stderr
    rebuilt = VehicleStore(data).cumulative_grid("V2", cfg.axes, cfg.hit_target)
    assert int(rebuilt.hits.sum()) == int(live.hits.sum())


def test_replaying_the_same_segment_of_an_unknown_run_counts_once(tmp_path: Path) -> None:
    recorded = tmp_path / "rec-store"
    first, second = _live_run_with_two_segments(tmp_path, VehicleStore(recorded))
    data = tmp_path / "other-store"  # a second laptop: the live run is not in this store
    for _ in range(2):
        done = dynoai(
            "replay", str(second), "--headless", "--vehicle", "V2", cwd=tmp_path, store=data
        )
        assert done.returncode == 0, done.stderr
    runs = VehicleStore(data).list_runs("V2")
    assert len(runs) == 1 and runs[0].run_id.startswith("live-run-0001:")


def test_a_partial_replay_of_a_legacy_recording_cannot_replace_the_whole_run(
    tmp_path: Path,
) -> None:
    # Recordings made before segment ids carry only the live run id.
    data = tmp_path / "store"
    store = VehicleStore(data)
    first, _ = _live_run_with_two_segments(tmp_path, store)
    cfg = VehicleConfig()
    live_hits = int(store.cumulative_grid("V2", cfg.axes, cfg.hit_target).hits.sum())
    raw = first.read_bytes()
    spans = record_spans(raw)
    head, size = frame_length(raw, 0) or (0, 0)
    body = unframe(raw[head : head + size])
    del body["metadata"]["segment_id"]
    legacy = tmp_path / "legacy-part.dynolog"
    legacy.write_bytes(frame(body) + raw[spans[0][1] : spans[len(spans) // 4][1]])
    done = dynoai("replay", str(legacy), "--headless", "--vehicle", "V2", cwd=tmp_path, store=data)
    assert done.returncode == 0, done.stderr
    assert "cannot replace the whole run" in done.stderr
    after = VehicleStore(data).cumulative_grid("V2", cfg.axes, cfg.hit_target)
    assert int(after.hits.sum()) == live_hits


def test_replay_json_output_is_unchanged_by_store_refusal(tmp_path: Path) -> None:
    data = tmp_path / "store"
    _, second = _live_run_with_two_segments(tmp_path, VehicleStore(data))
    out = tmp_path / "cov.json"
    done = dynoai(
        "replay", str(second), "--headless", "--vehicle", "V2", "--coverage-json", str(out),
        cwd=tmp_path, store=data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["samples"] > 0


# -- the engine under store and disk faults -------------------------------------------


class StoreLock:
    """Another program holding the vehicle store's write lock from ``start_s`` to ``stop_s``."""

    def __init__(self, path: Path, start_s: float, stop_s: float) -> None:
        self.path, self.start_s, self.stop_s = path, start_s, stop_s
        self.held = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        time.sleep(self.start_s)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        self.held.set()
        time.sleep(self.stop_s - self.start_s)
        db.execute("COMMIT")
        db.close()


def _live_session(
    tmp_path: Path, store: VehicleStore, seconds: float, record: Path
) -> tuple[Session, object]:
    cfg = VehicleConfig().with_overrides(name="bike")
    tracker = make_tracker(cfg, store, run_id="live", log_path=str(record))
    sources = create_sources([f"sim:?speed=1&duration={seconds:g}&seed=3"])
    return Session(sources, config=cfg, tracker=tracker, record_path=record, run_id="live"), tracker


def _run_live(session: Session, until_s: float) -> list[str]:
    """Run the session in real time; returns every alarm seen on the way."""
    session.start()
    seen: set[str] = set()
    deadline = time.monotonic() + until_s + 20
    while not session.snapshot.finished and time.monotonic() < deadline:
        seen.update(session.snapshot.alarms)
        time.sleep(0.05)
    return sorted(seen)


def _seconds_lost(path: Path, expected_samples: int, rate_hz: float = 100.0) -> float:
    from core.record import read_log

    _, blocks, _, recovery = read_log(path)
    assert recovery.complete, recovery.message
    return (expected_samples - sum(len(b) for b in blocks)) / rate_hz


@pytest.mark.slow
def test_store_locked_across_a_checkpoint_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the checkpoint's StoreError killed the engine thread: the recording stopped
    # (29.6 s of 100 s lost), the status froze and SIGTERM exited 0 without a summary.
    monkeypatch.setattr(core.session, "CHECKPOINT_INTERVAL_S", 1.0)
    store = VehicleStore(tmp_path / "store", busy_timeout_s=0.2)
    out = tmp_path / "live.dynolog"
    session, tracker = _live_session(tmp_path, store, 6.0, out)
    lock = StoreLock(store.path, 0.5, 3.5)  # across the checkpoints at 1, 2 and 3 s
    lock.thread.start()
    alarms = _run_live(session, 6.0)
    final = session.stop()
    lock.thread.join()
    assert any(a.startswith("STORE NOT SAVED (retrying)") and "busy" in a for a in alarms), alarms
    assert final.samples_total == 600 and session.not_saved == []
    assert _seconds_lost(out, 600) == 0.0
    runs = VehicleStore(tmp_path / "store").list_runs("bike")
    assert len(runs) == 1 and runs[0].final and runs[0].hits_total == int(final.grid.hits.sum())


@pytest.mark.slow
def test_store_locked_past_the_end_says_not_saved_and_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dynoai_tui.commands.common import exit_code_after

    store = VehicleStore(tmp_path / "store", busy_timeout_s=0.2)
    out = tmp_path / "live.dynolog"
    session, tracker = _live_session(tmp_path, store, 2.0, out)
    tracker.finish_wait_s = 1.0  # type: ignore[attr-defined]
    lock = StoreLock(store.path, 0.2, 6.0)
    lock.thread.start()
    _run_live(session, 2.0)
    session.stop()
    assert len(session.not_saved) == 1 and "NOT saved to vehicle 'bike'" in session.not_saved[0]
    assert "busy" in session.not_saved[0]
    assert exit_code_after(session) == 4
    assert _seconds_lost(out, 200) == 0.0  # the recording is complete and closed
    lock.thread.join()


def test_stop_closes_the_recording_even_when_the_tracker_fails(tmp_path: Path) -> None:
    class BrokenTracker:
        pulls_done, pulls_max = 0, None

        def on_rows(self, *args: object) -> list[object]:
            raise RuntimeError("detector bug")

        def plan(self, *args: object, **kwargs: object) -> object:
            raise RuntimeError("planner bug")

        def checkpoint(self, *args: object) -> None:
            raise RuntimeError("checkpoint bug")

        def finish(self, *args: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    out = tmp_path / "rec.dynolog"
    sources = create_sources(["sim:?speed=max&duration=3&seed=1"])
    session = Session(sources, tracker=BrokenTracker(), record_path=out)  # type: ignore[arg-type]
    final = session.run_to_end()
    assert not session.recording
    from core.record import read_log

    _, blocks, _, recovery = read_log(out)
    assert recovery.complete and sum(len(b) for b in blocks) == final.samples_total == 300
    assert final.samples_binned > 0  # binning went on without pull detection
    assert {"pull detection", "planner", "stop"} <= set(session.faults)
    assert any(a.startswith("PULL DETECTION FAILED") for a in final.alarms)


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 kB filesystem (tmpfs), so ENOSPC / SQLITE_FULL come from the kernel."""
    mnt = tmp_path / "disk"
    if not _tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_recording_disk_full_says_so_and_exits_4(tmp_path: Path, small_disk: Path) -> None:
    # Before: exit 0 and the summary did not say the recording had stopped.
    out = small_disk / "long.dynolog"
    done = dynoai(
        "log", "--source", "sim:?speed=max&duration=600&seed=2", "--out", str(out),
        cwd=tmp_path, store=tmp_path / "store",
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("NOT SAVED"))
    assert line.startswith("NOT SAVED     recording stopped: cannot write recording")
    assert "No space left on device" in line and "the file holds what was written" in line
    assert "dynoai: warning: not saved: recording stopped" in done.stderr
    assert "samples       60000 received" in done.stdout  # the engine went on to the end
    from core.record import read_log

    _, blocks, _, _ = read_log(out)
    assert sum(len(b) for b in blocks) > 1000  # what was written before is readable


@pytest.mark.slow
def test_store_disk_full_retries_until_space_returns(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.session, "CHECKPOINT_INTERVAL_S", 0.5)
    store = VehicleStore(small_disk, busy_timeout_s=0.2)
    out = tmp_path / "live.dynolog"
    session, _ = _live_session(tmp_path, store, 4.0, out)
    filler = small_disk / "filler"  # the store's disk fills up after the run started
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    session.start()
    seen: set[str] = set()
    while not session.snapshot.finished:
        seen.update(session.snapshot.alarms)
        if session.snapshot.elapsed_s >= 2.5 and filler.exists():
            filler.unlink()  # the tuner frees space
        time.sleep(0.05)
    session.stop()
    assert any("STORE NOT SAVED (retrying)" in a for a in seen), seen
    assert any("full" in a or "disk I/O" in a for a in seen), seen
    assert session.not_saved == []
    runs = VehicleStore(small_disk).list_runs("bike")
    assert len(runs) == 1 and runs[0].final


def test_an_hour_of_idle_keeps_the_pull_detector_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: an idle (or steady) segment kept every decimated sample as Python floats
    # for as long as it lasted: ~0.15 MB/min on a dashboard left running at idle.
    import numpy as np

    import core.plan.pulls as pulls
    from core.frames import Block

    monkeypatch.setattr(pulls, "MAX_SEGMENT_POINTS", 200)
    detector = pulls.PullDetector()
    for k in range(120):  # 2 min of idle at 100 Hz in 1 s blocks
        t = k + np.arange(100) / 100
        rpm = 1000.0 + 5 * np.sin(t)
        detector.feed(Block("sim", t, {"rpm": rpm, "map_kpa": np.full(100, 35.0),
                                       "tps_pct": np.full(100, 1.0)}))  # fmt: skip
        assert detector._segment is not None and len(detector._segment.t) < 200
    detector.flush()
    (test,) = detector.drain_completed()
    assert test.test_type == "idle_low_map" and test.t_start == 0.0 and test.duration_s >= 119.9
