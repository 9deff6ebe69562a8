"""Damage and fuzz figures for the .dynolog reader (issue 10).

1. Samples kept after ONE flipped bit in a 60 s live-like recording (ECU 100 Hz +
   wideband 12.5 Hz, 30 ms engine ticks, markers), over many random flips.
   Target: mean >= 95 %. Then the worst place for a flip: one bit inside each schema
   record (2 random bits per record); the writer repeats schema records every 4 block
   records, so a lost one costs about a second. Target: worst >= 95 %.
2. A structure-aware fuzz (tests/faultkit.py: re-framed records with valid
   checksums around hostile values, lying lengths, duplicated / reordered /
   deleted records, truncation, bit flips) through what ``dynoai replay`` does:
   read, derive the config from the header, fuse, filter, bin.
   Target: 0 crashes in 10,000 cases (any exception but a clean LogFileError /
   ConfigError is a crash).

Run: python bench/bench_dynolog_faults.py [--flips 1000] [--cases 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faultkit import flip_trials, fuzz, live_recording, schema_flip_trials  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=1000, help="random one-bit flips (1000)")
    parser.add_argument("--cases", type=int, default=10000, help="fuzz cases (10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "live.dynolog"
        samples = live_recording(live, seconds=60.0)
        started = time.perf_counter()
        kept = flip_trials(live, args.flips, seed=args.seed)
        spent = time.perf_counter() - started
        kept.sort()
        print(
            f"flipped bit, 60 s recording ({samples} samples, {live.stat().st_size} bytes), "
            f"{args.flips} trials in {spent:.1f} s:"
        )
        print(
            f"  samples kept: mean {100 * statistics.mean(kept):.2f} % (target >= 95 %), "
            f"median {100 * statistics.median(kept):.2f} %, "
            f"1st percentile {100 * kept[len(kept) // 100]:.2f} %, worst {100 * kept[0]:.2f} %"
            f" (target >= 95 %) {'OK' if kept[0] >= 0.95 else 'MISS'}"
        )
        in_schema = sorted(schema_flip_trials(live, bits_per_record=2, seed=args.seed))
        print(
            f"  flip inside a schema record ({len(in_schema)} trials): worst "
            f"{100 * in_schema[0]:.2f} % kept (target >= 95 %) "
            f"{'OK' if in_schema[0] >= 0.95 else 'MISS'}, "
            f"mean {100 * statistics.mean(in_schema):.2f} %"
        )
        seed_file = Path(tmp) / "seed.dynolog"
        live_recording(seed_file, seconds=2.0, marker_every_s=0.5)
        crashes: list[str] = []
        started = time.perf_counter()
        count = fuzz(
            seed_file, args.cases, seed=args.seed, on_crash=lambda n, e: crashes.append(f"{n}: {e}")
        )
        spent = time.perf_counter() - started
        print(
            f"structure-aware fuzz: {count} crashes in {args.cases} cases (target 0), {spent:.0f} s"
        )
        for line in crashes[:10]:
            print(f"  case {line}")


if __name__ == "__main__":
    main()
