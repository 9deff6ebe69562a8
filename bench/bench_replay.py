"""Replay of a 1 h, 100 Hz, 12-channel log, headless at max speed, end to end.

Target: <= 2 s. Three figures: the engine alone in-process, and the whole `dynoai
replay FILE --headless --max-speed` process (interpreter start, imports, reading,
fusing, filtering, binning, the end-of-replay plan, summary) twice: with an empty
simulation cache (the first replay on a machine: every candidate simulated, 4-6 s of
it) and with the cache that run left (``sim.diskcache``: every later replay and plan).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.coverage.axes import TableAxes
from core.frames import Block
from core.record import LogHeader, LogWriter
from core.record.replay import ReplaySource
from core.session import Session
from drivers.registry import SourceURI
from sim.source import generate

CHANNELS = (
    "rpm",
    "map_kpa",
    "tps_pct",
    "lambda",
    "afr_target",
    "knock_count",
    "knock_retard_deg",
    "iat_c",
    "clt_c",
    "spark_deg",
    "power_hp",
    "torque_nm",
)
TARGET_S = 2.0


def write_log(path: Path, hours: float) -> int:
    header = LogHeader(
        created_at=time.time(),
        vehicle="bench",
        sources={"sim": {"uri": "sim:", "channels": {c: "" for c in CHANNELS}}},
        axes=TableAxes.default().to_dict(),
        metadata={"lambda_delay_ms": 90.0, "stoich": 14.7, "hit_target": 10},
    )
    n = 0
    with LogWriter(path, header, overwrite=True) as writer:
        for block in generate(scenario="pulls", seed=3, duration_s=hours * 3600, block_s=1.0):
            writer.write_block(Block("sim", block.t, {c: block.columns[c] for c in CHANNELS}))
            n += len(block)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hour.dynolog"
        samples = write_log(path, args.hours)
        size_mb = path.stat().st_size / 1e6
        print(f"log: {samples} samples x {len(CHANNELS)} channels, {size_mb:.1f} MB")

        started = time.perf_counter()
        uri = SourceURI(f"replay:{path}?speed=max", "replay", str(path), {"speed": "max"})
        session = Session([ReplaySource(uri, "replay")])
        final = session.run_to_end()
        engine_s = time.perf_counter() - started
        assert final.samples_total == samples, (final.samples_total, samples)

        env = {**os.environ, "DYNOAI_CACHE_DIR": str(Path(tmp) / "cache")}
        env["DYNOAI_DATA_DIR"] = str(Path(tmp) / "data")
        command = [sys.executable, "-m", "dynoai_tui.cli", "replay", str(path), "--headless",
                   "--max-speed"]  # fmt: skip
        process_s = []
        for _ in ("cold", "warm"):
            started = time.perf_counter()
            res = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env)
            process_s.append(time.perf_counter() - started)
            if res.returncode != 0:
                raise SystemExit(res.stderr)
    rate = samples / engine_s / 1e6
    print(f"engine only:  {engine_s:.2f} s ({rate:.2f} M samples/s)")
    for label, took in zip(("empty cache", "warm cache"), process_s, strict=True):
        ok = "OK" if took <= TARGET_S else "MISSED"
        print(
            f"replay 1 h end to end (dynoai replay --headless --max-speed), {label}: "
            f"{took:.2f} s (target <= {TARGET_S:.0f} s) {ok}"
        )


if __name__ == "__main__":
    main()
