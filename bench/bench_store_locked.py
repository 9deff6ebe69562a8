"""Seconds of data lost while another program holds the vehicle store locked (issue 10).

A live session (simulator at 100 Hz, real time, recording, vehicle store) runs for
``--seconds`` (120); another connection holds the store's write lock for
``--lock`` seconds (75) from ``--lock-at`` (30), across the 60 s checkpoint. The
figure is the data lost: samples missing from the recording and from the grid,
in seconds at 100 Hz. Target: 0 s (before issue 10 the engine thread died at the
checkpoint: 29.6 s of a 100 s run lost, status frozen). Also printed: whether the
store alarm was shown while locked and whether the run reached the store at the end.

Run: python bench/bench_store_locked.py [--seconds 120 --lock-at 30 --lock 75]
     (--scale 0.1 runs everything ten times shorter, checkpoint interval included)
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.session  # noqa: E402
from core.record import read_log  # noqa: E402
from core.session import Session  # noqa: E402
from core.store import VehicleStore  # noqa: E402
from core.vehicle import VehicleConfig  # noqa: E402
from drivers.registry import create_sources  # noqa: E402
from dynoai_tui.commands.common import make_tracker  # noqa: E402

RATE_HZ = 100


def hold_lock(path: Path, start_s: float, hold_s: float, held: threading.Event) -> None:
    time.sleep(start_s)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    held.set()
    time.sleep(hold_s)
    db.execute("COMMIT")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--lock-at", type=float, default=30.0)
    parser.add_argument("--lock", type=float, default=75.0)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    k = args.scale
    seconds, lock_at, lock_s = args.seconds * k, args.lock_at * k, args.lock * k
    core.session.CHECKPOINT_INTERVAL_S = 60.0 * k
    with tempfile.TemporaryDirectory() as tmp:
        store = VehicleStore(Path(tmp) / "store")
        cfg = VehicleConfig().with_overrides(name="bench")
        out = Path(tmp) / "live.dynolog"
        tracker = make_tracker(cfg, store, run_id="live", log_path=str(out))
        sources = create_sources([f"sim:?speed=1&duration={seconds:g}&seed=5&rate={RATE_HZ}"])
        session = Session(sources, config=cfg, tracker=tracker, record_path=out, run_id="live")
        held = threading.Event()
        locker = threading.Thread(
            target=hold_lock, args=(store.path, lock_at, lock_s, held), daemon=True
        )
        session.start()
        locker.start()
        alarm_seen = False
        while not session.snapshot.finished:
            alarm_seen |= any("STORE NOT SAVED" in a for a in session.snapshot.alarms)
            time.sleep(0.1)
        final = session.stop()
        locker.join()
        _, blocks, _, recovery = read_log(out)
        expected = round(seconds * RATE_HZ)
        recorded = sum(len(b) for b in blocks)
        runs = VehicleStore(Path(tmp) / "store").list_runs("bench")
        print(
            f"store locked {lock_s:.1f} s from {lock_at:.1f} s of a {seconds:.1f} s live run "
            f"(checkpoint every {core.session.CHECKPOINT_INTERVAL_S:.1f} s):"
        )
        print(
            f"  seconds lost: recording {(expected - recorded) / RATE_HZ:.2f} s, "
            f"engine {(expected - final.samples_total) / RATE_HZ:.2f} s (target 0); "
            f"recording complete: {recovery.complete}"
        )
        print(
            f"  alarm shown while locked: {alarm_seen}; run in the store at the end: "
            f"{bool(runs and runs[0].final)}; not saved: {session.not_saved or 'nothing'}"
        )


if __name__ == "__main__":
    main()
