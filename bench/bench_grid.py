"""Grid ingest benchmark: FilterChain.apply + CoverageGrid.update on one core.

Rows are a realistic dyno session at 100 Hz, repeated: warm-up idle, tip-ins,
part-throttle sweeps, steady-state holds and WOT pulls with decel/fuel cut between
them; lambda follows a target with sensor noise, knock appears at high load.

Two figures:
* large blocks (65,536 samples, replay / import): target >= 5 M samples/s;
* engine-tick blocks of 3 samples (100 Hz at a 30 ms tick): samples/s and the
  cost per block in microseconds (the engine tick's budget is 20-50 ms).

Run: ``python bench/bench_grid.py [--samples N] [--tick-samples N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.coverage.axes import TableAxes  # noqa: E402
from core.coverage.filters import FilterChain  # noqa: E402
from core.coverage.grid import CoverageGrid  # noqa: E402
from core.frames import Block  # noqa: E402

RATE_HZ = 100.0
CYCLE_S = 120.0
TARGET_LARGE = 5e6


def session_rows(n: int, t0: float, seed: int) -> dict[str, np.ndarray]:
    """n samples of a repeating 120 s dyno cycle starting at time t0 (seconds)."""
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n) / RATE_HZ
    ph = np.mod(t, CYCLE_S)
    tps = np.empty(n)
    rpm = np.empty(n)
    # 0-10 s idle, 10-40 s tip-ins every 5 s, 40-70 s part-throttle sweep,
    # 70-90 s steady holds, 90-100 s WOT pull, 100-104 s decel, 104-120 s cruise.
    idle = ph < 10
    tip = (ph >= 10) & (ph < 40)
    sweep = (ph >= 40) & (ph < 70)
    hold = (ph >= 70) & (ph < 90)
    wot = (ph >= 90) & (ph < 100)
    decel = (ph >= 100) & (ph < 104)
    cruise = ph >= 104
    tps[idle], rpm[idle] = 1.0, 900.0
    k = np.mod(ph[tip] - 10, 5.0)
    tps[tip] = np.where(k < 0.3, 5 + 100 * k, np.where(k < 3, 35.0, 8.0))
    rpm[tip] = 1800 + 900 * np.minimum(k, 3) / 3
    s = (ph[sweep] - 40) / 30
    tps[sweep], rpm[sweep] = 20 + 10 * np.sin(s * 7), 1500 + 4000 * s
    h = ph[hold] - 70
    tps[hold], rpm[hold] = 10 + 15 * np.floor(h / 4), 3000.0
    w = (ph[wot] - 90) / 10
    tps[wot], rpm[wot] = 100.0, 2000 + 4800 * w
    d = (ph[decel] - 100) / 4
    tps[decel], rpm[decel] = 0.5, 6800 - 4500 * d
    c = ph[cruise] - 104
    tps[cruise], rpm[cruise] = 15 + 3 * np.sin(c), 2500 + 300 * np.sin(c / 3)
    rpm += rng.normal(0, 15, n)
    tps = np.clip(tps + rng.normal(0, 0.2, n), 0, 100)
    map_kpa = np.clip(22 + 0.8 * tps + 0.002 * (rpm - 2000) * (tps > 50), 18, 104)
    map_kpa += rng.normal(0, 0.5, n)
    lambda_target = np.where(map_kpa > 80, 0.87, np.where(map_kpa < 40, 1.0, 0.95))
    lam = lambda_target * (1 + 0.03 * np.sin(rpm / 700)) + rng.normal(0, 0.01, n)
    lam[decel] = 1.7  # fuel cut: the wideband reads free air
    clt_c = np.minimum(40 + t / 10, 90.0)
    retard = np.where((map_kpa > 90) & (np.mod(t, 7.3) < 0.05), 2.0, 0.0)
    knock_count = np.cumsum(np.diff(retard, prepend=0.0) > 0) + 0.0
    return {
        "rpm": rpm,
        "map_kpa": map_kpa,
        "tps_pct": tps,
        "lambda": lam,
        "lambda_target": lambda_target,
        "clt_c": clt_c,
        "iat_c": np.full(n, 30.0),
        "knock_retard_deg": retard,
        "knock_count": knock_count,
        "dfco": (decel & (tps < 2)).astype(np.float64),
        "t": t,
    }


def block_batches(total: int, block_size: int, seed: int) -> Iterator[list[Block]]:
    """Blocks in batches of ~1 M samples, so memory stays small for 10 M samples."""
    chunk = (1 << 20) // block_size * block_size
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        rows = session_rows(n, start / RATE_HZ, seed + start)
        t = rows.pop("t")
        yield [
            Block(
                "bench",
                t[b0 : b0 + block_size],
                {k: v[b0 : b0 + block_size] for k, v in rows.items()},
            )
            for b0 in range(0, n, block_size)
        ]


def run(total: int, block_size: int, seed: int) -> tuple[float, int, CoverageGrid, FilterChain]:
    """Seconds spent in FilterChain.apply + CoverageGrid.update only (not making rows)."""
    chain = FilterChain()
    grid = CoverageGrid(TableAxes.default())
    elapsed = 0.0
    n_blocks = 0
    for blocks in block_batches(total, block_size, seed):
        start = time.perf_counter()
        for block in blocks:
            grid.update(block, chain.apply(block))
        elapsed += time.perf_counter() - start
        n_blocks += len(blocks)
    return elapsed, n_blocks, grid, chain


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--tick-samples", type=int, default=300_000)
    args = ap.parse_args()

    elapsed, _, grid, chain = run(args.samples, 65_536, seed=7)
    rate = args.samples / elapsed
    ok = rate >= TARGET_LARGE
    print(
        f"grid ingest, 65,536-sample blocks: {rate / 1e6:.1f} M samples/s "
        f"(target >= {TARGET_LARGE / 1e6:.0f} M/s) {'OK' if ok else 'TOO SLOW'}"
    )
    print(
        f"  {args.samples:,} samples, {grid.samples_binned:,} binned, "
        f"covered {grid.covered_pct():.1f} %, rejects {dict(chain.rejects, **grid.rejects)}"
    )

    elapsed, n_blocks, _, _ = run(args.tick_samples, 3, seed=11)
    print(
        f"grid ingest, 3-sample blocks: {args.tick_samples / elapsed / 1e3:.0f} k samples/s, "
        f"{elapsed / n_blocks * 1e6:.0f} us per block "
        f"(an engine tick of 20-50 ms carries one such block per source)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
