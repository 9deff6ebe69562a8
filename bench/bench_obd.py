"""OBD throughput: complete {RPM, MAP, TPS, IAT, CLT} rows per second against the
ELM327-emulator, our Elm327Source (multi-PID requests) versus python-OBD
(``obd.OBD(port, fast=True)`` querying the five commands in a loop), same run.

Target: ours >= 3x python-OBD. Run: ``python bench/bench_obd.py [--seconds 20]``.
The emulator answers in about a millisecond, so this measures the per-row cost on
our side of the serial line (round trips and parsing), not a real car's ECU.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.source import Source  # noqa: E402
from drivers.registry import create_source  # noqa: E402
from tests.elm_emulator import running_emulator  # noqa: E402

FIVE = ("rpm", "map_kpa", "tps_pct", "iat_c", "clt_c")
TARGET_RATIO = 3.0


ROUNDS = 4
"""The two contenders take turns (ROUNDS each) so load from other work on a shared
machine hits both alike."""


def ours_round(src: Source, seconds: float) -> tuple[int, float]:
    rows = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        block = src.read(0.1)
        if block is None:
            continue
        cols = [block.column(name) for name in FIVE]
        rows += sum(all(not math.isnan(col[i]) for col in cols) for i in range(len(block)))
    return rows, time.monotonic() - start


def obd_round(connection: Any, commands: list[Any], seconds: float) -> tuple[int, float]:
    rows = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        responses = [connection.query(cmd) for cmd in commands]
        rows += all(not r.is_null() for r in responses)
    return rows, time.monotonic() - start


def compare(pty: str, seconds: float) -> tuple[float, float]:
    import obd

    logging.getLogger("obd").setLevel(logging.CRITICAL)
    src = create_source(f"elm327:{pty}?pids=0C,0B,11,0F,05")
    src.open()
    src.close()  # python-OBD needs the port; we reopen for each round
    connection = obd.OBD(pty, fast=True, timeout=1)
    if not connection.is_connected():
        raise SystemExit(f"python-OBD could not connect to {pty}: {connection.status()}")
    connection.close()
    cmds = [obd.commands[name] for name in ("RPM", "INTAKE_PRESSURE", "THROTTLE_POS",
                                             "INTAKE_TEMP", "COOLANT_TEMP")]  # fmt: skip
    totals = {"ours": [0, 0.0], "obd": [0, 0.0]}
    for _ in range(ROUNDS):
        src.open()
        try:
            rows, spent = ours_round(src, seconds / ROUNDS)
        finally:
            src.close()
        totals["ours"][0] += rows
        totals["ours"][1] += spent
        connection = obd.OBD(pty, fast=True, timeout=1)
        try:
            rows, spent = obd_round(connection, cmds, seconds / ROUNDS)
        finally:
            connection.close()
        totals["obd"][0] += rows
        totals["obd"][1] += spent
    return totals["ours"][0] / totals["ours"][1], totals["obd"][0] / totals["obd"][1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per contender")
    args = parser.parse_args()
    with running_emulator() as pty:
        ours_rate, theirs_rate = compare(pty, args.seconds)
    ratio = ours_rate / theirs_rate if theirs_rate > 0 else math.inf
    verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"OBD complete rows, ours (Elm327Source, multi-PID): {ours_rate:8.1f} rows/s")
    print(f"OBD complete rows, python-OBD 0.7 (fast=True):     {theirs_rate:8.1f} rows/s")
    print(f"OBD ours / python-OBD: {ratio:.1f}x (target >= {TARGET_RATIO:g}x) {verdict}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
