"""Bare ``dynoai``: seconds from launch to the guided operator's first test (target <= 5 s).

    python bench/bench_demo_start.py [--sizes 80x24,160x48] [--seconds 40] [--no-profile]

Two parts:

1. The warm-up, in this process on cold caches: the opening work
   (``plan_model(scope="opening")``, what the demo's operator starts on) and the
   full plan (every candidate), with each simulation's kind, count and seconds.
2. The real program in tmux at each size (a private tmux server): the screen is read
   every 0.1 s; the engine has left idle when the header shows TPS above 2 % or rpm
   above 1100 (the V-twin idles at ~950 rpm, TPS 0), or, in the wide layouts (big
   digits), torque above 15 N·m (~9 at idle). Printed: that time beside the
   target, when the instruction line first named a test, and every instruction and
   first-panel line seen, with the second it appeared (so a fallback left on screen
   shows).

Wall-clock figures on a shared machine: run it alone; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 5.0
IDLE_RPM_MAX = 1100.0
IDLE_TPS_MAX = 2.0
IDLE_TORQUE_NM = 15.0
HEADER = re.compile(r"RPM\s+(\d+)\s+MAP\s+(\d+)\s+TPS\s+(\d+)")
"""The compact header (80 columns); wider layouts draw rpm, MAP and TPS in big digits."""
TORQUE = re.compile(r"([\d.]+) N·m")
"""The wide layouts' small torque gauge (the V-twin idles at ~9 N·m)."""


def profile_warm_up() -> None:
    """Each scope's simulations on cold caches: kind, count, seconds (this thread's CPU)."""
    from core.plan import holds
    from core.plan.learning import Calibration
    from core.plan.simplan import plan_model
    from core.plan.testsim import ADDITIVE, ModelKey
    from core.vehicle import VehicleConfig
    from sim import testsim

    names = ("simulate_segments", "simulate_live_column", "simulate_rows", "cooldown_s")
    spent: dict[str, list[float]] = defaultdict(list)
    real = {n: getattr(testsim, n) for n in names}

    def timed(name: str) -> Any:
        def call(*args: Any) -> Any:
            t0 = time.thread_time()
            out = real[name](*args)
            spent[name].append(time.thread_time() - t0)
            return out

        return call

    cfg = VehicleConfig(kind="vtwin")
    key = ModelKey("vtwin", cfg.axes, cfg.filters, 100.0, cfg.lambda_delay_ms, cfg.hit_target)
    empty = {k: np.zeros(cfg.axes.n_cells) for k in ADDITIVE}
    for n in names:
        setattr(testsim, n, timed(n))
    try:
        for name in names[:-1]:
            real[name].cache_clear()
        holds._PAIRS.clear()
        print("warm-up of the demo's V-twin at 100 Hz, cold caches (CPU seconds of this thread):")
        for scope in ("opening", "all"):
            spent.clear()
            t0, c0 = time.perf_counter(), time.thread_time()
            view = plan_model(
                empty, None, testsim.SimCandidates(key), tuple(cfg.regions), cfg.constraints,
                Calibration(), 0, cfg.coverage_rule, scope=scope,
            )  # fmt: skip
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            detail = ", ".join(
                f"{n.replace('simulate_', '')} {len(v)} x {np.mean(v):.2f} s = {sum(v):.1f} s"
                for n, v in spent.items()
                if v and sum(v) > 0.01
            )
            extra = " (after the opening's)" if scope == "all" else ""
            print(f"  {scope:8s}{extra}: {cpu:5.1f} s CPU, {wall:5.1f} s wall; {detail}")
            print(f"           top: {view.suggestions[0].description}")
    finally:
        for n in names:
            setattr(testsim, n, real[n])


def launch(size: str, seconds: float) -> dict[str, Any]:
    """Run bare ``dynoai`` in tmux at ``size``; what the screen showed, second by second."""
    cols, rows = (int(v) for v in size.split("x"))
    sock = f"bench-demo-{os.getpid()}-{size}"
    tmux = ["tmux", "-L", sock]
    home = tempfile.mkdtemp(prefix="dynoai-demo-")
    env = f"HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config"
    cmd = f"cd {ROOT} && env {env} {sys.executable} -m dynoai_tui.cli; sleep 600"
    t_launch = time.monotonic()
    subprocess.run([*tmux, "new-session", "-d", "-s", "demo", "-x", str(cols), "-y", str(rows), cmd],
                   check=True)  # fmt: skip
    seen: dict[str, float] = {}
    out: dict[str, Any] = {"left_idle_s": None, "instruction_s": None, "seen": seen}
    try:
        while (now := time.monotonic() - t_launch) < seconds:
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", "demo"], capture_output=True, text=True
            ).stdout
            lines = screen.splitlines()
            for line in lines:
                if line.startswith(" ▶"):
                    text = line.strip()
                    seen.setdefault(text, now)
                    if out["instruction_s"] is None and "simulating" not in text:
                        out["instruction_s"] = now
            panel = [ln for ln in lines if "Next tests" in ln]
            if panel:
                row = lines.index(panel[0]) + 1
                first = lines[row].split("│")[-2].strip() if lines[row].count("│") >= 2 else ""
                seen.setdefault("panel: " + first, now)
            m = next((HEADER.search(ln) for ln in lines if HEADER.search(ln)), None)
            torque = next((TORQUE.search(ln) for ln in lines if TORQUE.search(ln)), None)
            moving = m is not None and (
                float(m.group(1)) > IDLE_RPM_MAX or float(m.group(3)) > IDLE_TPS_MAX
            )
            moving |= torque is not None and float(torque.group(1)) > IDLE_TORQUE_NM
            if moving and out["left_idle_s"] is None:
                out["left_idle_s"] = now
            time.sleep(0.1)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="80x24,160x48")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if not args.no_profile:
        profile_warm_up()
    if shutil.which("tmux") is None:
        print("tmux not found: the launch part is skipped")
        return
    for size in args.sizes.split(","):
        got = launch(size.strip(), args.seconds)
        left = got["left_idle_s"]
        verdict = "MISS" if left is None or left > TARGET_S else "OK"
        shown = "never" if left is None else f"{left:.1f} s"
        print(f"\n{size}: engine left idle (first test under way) {shown} after launch "
              f"(target <= {TARGET_S:.0f} s) {verdict}")  # fmt: skip
        first = got["instruction_s"]
        print(f"  instruction named a test at {'never' if first is None else f'{first:.1f} s'}")
        for text, at in sorted(got["seen"].items(), key=lambda kv: kv[1])[:14]:
            print(f"  {at:5.1f} s  {text[:90]}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
