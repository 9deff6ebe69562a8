"""Soak: resident memory of a long headless run at 1 kHz and of the TUI at 100 Hz (issue 10).

Two runs, each in its own process, for ``--minutes`` (default 60):

* headless: ``dynoai log --source sim:?rate=1000`` recording to a temporary file,
  its RSS read from /proc every few seconds;
* TUI: the dashboard (Textual, headless pilot at 160x48) on ``sim:?rate=100`` with a
  recording, the child reporting its own RSS.

Printed for each: RSS at start (after 10 s), after 10 min (or 1/6 of a shorter run,
but not before 6 min when the run is long enough: the end of warm-up), at the end,
and the growth rate after warm-up.
Target: flat after warm-up (growth <= 0.05 MB/min, i.e. <= 3 MB over an hour).

Run: python bench/bench_soak.py [--minutes 60] [--only headless|tui]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MB_PER_MIN = 0.05
START_S = 10.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def marks(seconds: float) -> tuple[float, float, float]:
    """(start, end of warm-up, end) sample times.

    Warm-up ends after 10 min of an hour, else after 1/6 of the run but not before
    6 min when the run allows: the pull tracker keeps 5 min of rows (BUFFER_S) to
    attribute hits to a test, so memory rightly grows for the first 5 minutes.
    """
    warm = 600.0 if seconds >= 3600.0 else max(seconds / 6.0, min(360.0, seconds / 2.0))
    return START_S, max(warm, START_S + 1.0), seconds - 2.0


def report(name: str, samples: list[tuple[float, float]], seconds: float) -> None:
    start, warm, end = marks(seconds)

    def at(t: float) -> tuple[float, float]:
        return min(samples, key=lambda s: abs(s[0] - t))

    (t0, r0), (t1, r1), (t2, r2) = at(start), at(warm), at(end)
    rate = (r2 - r1) / max((t2 - t1) / 60.0, 1e-9)
    verdict = "OK" if rate <= TARGET_MB_PER_MIN else "MISS"
    print(
        f"{name}: RSS {r0:.1f} MB at {t0:.0f} s, {r1:.1f} MB at {t1:.0f} s (end of warm-up), "
        f"{r2:.1f} MB at {t2:.0f} s; after warm-up {rate:+.3f} MB/min "
        f"(target <= {TARGET_MB_PER_MIN} MB/min) {verdict}"
    )


def soak_headless(seconds: float) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak.dynolog"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynoai_tui.cli", "log", "--source", "sim:?rate=1000",
             "--duration", f"{seconds:g}", "--out", str(out)],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "DYNOAI_DATA_DIR": str(Path(tmp) / "store")},
        )  # fmt: skip
        return _sample(proc, seconds)


def soak_tui(seconds: float) -> list[tuple[float, float]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--tui-child", f"{seconds:g}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return _sample(proc, seconds)


def _sample(proc: subprocess.Popen[bytes], seconds: float) -> list[tuple[float, float]]:
    t0 = time.monotonic()
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        now = time.monotonic() - t0
        try:
            samples.append((now, rss_mb(proc.pid)))
        except OSError:
            break
        time.sleep(2.0 if seconds > 120 else 0.5)
    proc.wait()
    return samples


async def tui_child(seconds: float) -> None:
    from core.session import Session
    from core.vehicle import VehicleConfig
    from drivers.registry import create_sources
    from dynoai_tui.tui.app import DynoApp

    with tempfile.TemporaryDirectory() as tmp:
        sources = create_sources(["sim:?rate=100"])
        session = Session(sources, config=VehicleConfig(), record_path=Path(tmp) / "tui.dynolog")
        session.start()
        app = DynoApp(session)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(seconds)
        session.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--only", choices=("headless", "tui"))
    parser.add_argument("--tui-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tui_child:
        asyncio.run(tui_child(args.tui_child))
        return
    seconds = args.minutes * 60.0
    if args.only != "tui":
        samples = soak_headless(seconds)
        report(f"headless 1 kHz, {args.minutes:g} min", samples, seconds)
    if args.only != "headless":
        samples = soak_tui(seconds)
        report(f"TUI 100 Hz at 160x48, {args.minutes:g} min", samples, seconds)


if __name__ == "__main__":
    main()
