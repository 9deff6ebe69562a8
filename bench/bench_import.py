"""Import of a ~4 MB MLG log (about 27,000 records of about 80 fields): target <= 1 s.

Builds a valid MLVLG v2 file with core.formats.mlg_writer (mixed field types like a
rusEFI / Speeduino log, 50 Hz, a marker every 1000 records, the 10 us stamp wrapping
every 0.655 s), then times open_log + iterating every block and marker.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.formats import open_log  # noqa: E402
from core.formats.mlg_writer import FieldSpec, build_mlg  # noqa: E402
from core.frames import Block  # noqa: E402

RECORDS = 27_000
TARGET_S = 1.0
NAMED = [
    FieldSpec("Time", "s", 7, digits=3),
    FieldSpec("RPM", "rpm", 2),
    FieldSpec("MAP", "kPa", 2, scale=0.1, digits=1),
    FieldSpec("TPS", "%", 3, scale=0.01, digits=1),
    FieldSpec("Lambda", "", 7, digits=3),
    FieldSpec("IAT", "C", 1),
    FieldSpec("CLT", "F", 3, scale=0.1, transform=-400.0, digits=1),
    FieldSpec("Advance", "deg", 3, scale=0.02, digits=1),
    FieldSpec("Knock", "count", 0),
    FieldSpec("Vehicle Speed", "mph", 2, scale=0.01, digits=1),
]
TYPES = (0, 1, 2, 3, 0, 2, 7, 0, 2, 10)
"""Aux field types cycled (U08 S08 U16 S16 ... F32, bits): about 1.7 bytes a field, as in real logs."""


def build(path: Path) -> None:
    rng = np.random.default_rng(7)
    fields = NAMED + [
        FieldSpec(f"Aux{i}", "", TYPES[i % len(TYPES)], scale=1.0) for i in range(80 - len(NAMED))
    ]
    t = np.arange(RECORDS) * 0.02
    cols = [
        t,
        1500 + 5000 * (0.5 + 0.5 * np.sin(t / 7)),
        30 + 60 * rng.random(RECORDS),
        100 * rng.random(RECORDS),
        0.8 + 0.3 * rng.random(RECORDS),
        np.full(RECORDS, 25.0),
        np.full(RECORDS, 190.0),
        10 + 20 * rng.random(RECORDS),
        rng.integers(0, 3, RECORDS),
        60 * rng.random(RECORDS),
    ]
    cols += [rng.integers(0, 100, RECORDS).astype(np.float64) for _ in fields[len(NAMED) :]]
    stamps = np.rint(t / 1e-5).astype(np.int64) % 65536
    markers = [
        (k, int(stamps[k - 1]) + 5, f"MARK {k // 1000:03d}") for k in range(1000, RECORDS, 1000)
    ]
    path.write_bytes(build_mlg(fields, np.column_stack(cols), stamps, version=2, markers=markers))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mlg"
        build(path)
        size_mb = path.stat().st_size / 1e6
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            log = open_log(path)
            samples = sum(len(r) for r in log.records() if isinstance(r, Block))
            best = min(best, time.perf_counter() - start)
        assert samples == RECORDS, samples
        verdict = "OK" if best <= TARGET_S else "SLOW"
        print(
            f"MLG import: {best:.3f} s for {size_mb:.1f} MB, {RECORDS} records x 80 fields, "
            f"{len(log.markers)} markers ({RECORDS / best / 1e3:.0f} k records/s) "
            f"(target <= {TARGET_S:g} s) {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
