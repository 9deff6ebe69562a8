"""Import speed and memory: a ~4 MB MLG log and a 100 MB CSV log.

MLG: builds a valid MLVLG v2 file with core.formats.mlg_writer (mixed field types
like a rusEFI / Speeduino log, 50 Hz, a marker every 1000 records, the 10 us stamp
wrapping every 0.655 s), then times open_log + iterating every block and marker;
target <= 1 s. Then the same file damaged: 1 MB of zeros and 1 MB of random bytes
inserted, and one byte flipped in every 20th record (1350 resynchronisations);
the records outside the damage must all come back, also within 1 s (the scan
after damage is linear in the damaged span).

CSV: writes a 100 MB RomRaider-style log (``Time (msec)`` then 24 ``Name (unit)``
columns, 3-decimal values, 100 Hz) and imports it with open_log in a fresh
process, which reports the wall time and its peak RSS above the RSS before the
call (numpy and pyarrow already loaded); targets >= 50 MB/s and peak memory < 3x
the file size. ``--csv-mb N`` changes the size (``--csv-mb 0`` skips it). The
machine's load average is printed beside the figure: on a shared 2-core box the
parse gets a fraction of a core.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.formats import open_log  # noqa: E402
from core.formats.mlg import parse_header, read_mlg  # noqa: E402
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


CSV_TARGET_MBPS = 50.0
CSV_MEMORY_FACTOR = 3.0
_CSV_NAMES = [
    "Engine Speed (rpm)",
    "Manifold Absolute Pressure (kPa)",
    "Throttle Opening Angle (%)",
    "AEM UEGO AFR (AFR)",
    "Coolant Temperature (C)",
    "Intake Air Temperature (C)",
    "Ignition Total Timing (degrees)",
    "Knock Correction (degrees)",
    "A/F Correction #1 (%)",
    "A/F Learning #1 (%)",
    "Mass Airflow (g/s)",
    "Engine Load (%)",
    "Vehicle Speed (km/h)",
    "Battery Voltage (V)",
    "Injector Duty Cycle (%)",
    "Fuel Pressure (psi)",
    "Wastegate Duty (%)",
    "Target Boost (psi)",
    "Atmospheric Pressure (kPa)",
    "Gear Position",
    "Primary Wastegate Duty (%)",
    "Oil Temperature (C)",
    "Exhaust Gas Temperature (C)",
    "Intake VVT Angle (degrees)",
]


def build_csv(path: Path, megabytes: float) -> int:
    """A RomRaider-style 100 Hz log of about ``megabytes`` MB; returns the row count."""
    rng = np.random.default_rng(3)
    block = 5000
    table = rng.random((block, len(_CSV_NAMES))) * 1000.0
    table[:, 0] = 1500 + 5000 * rng.random(block)
    bodies = [",".join(f"{v:.3f}" for v in row) for row in table]
    rows = 0
    target = int(megabytes * 1e6)
    with path.open("w", encoding="ascii", newline="\n") as fh:
        fh.write("Time (msec)," + ",".join(_CSV_NAMES) + "\n")
        written = 0
        while written < target:
            chunk = "".join(f"{10 * (rows + k)},{bodies[k]}\n" for k in range(block))
            fh.write(chunk)
            written += len(chunk)
            rows += block
    return rows


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import pyarrow.csv  # the library's own pages are not per-byte memory: loaded before the baseline
from core.formats import open_log
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0
before = rss('VmRSS:')
start, cpu = time.perf_counter(), time.process_time()
log = open_log({path!r})
took, cpu = time.perf_counter() - start, time.process_time() - cpu
print(took, rss('VmHWM:') - before, log.summary.rows, log.summary.duration_s, len(log.columns), cpu)
"""


def bench_csv(tmp: Path, megabytes: float) -> bool:
    import subprocess

    path = tmp / "bench.csv"
    rows = build_csv(path, megabytes)
    size = path.stat().st_size
    root = str(Path(__file__).resolve().parent.parent)
    best_s, best_cpu, peak = float("inf"), float("inf"), 0
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD.format(root=root, path=str(path))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        took, grew, got_rows, duration = float(out[0]), int(out[1]), int(out[2]), float(out[3])
        best_cpu = min(best_cpu, float(out[5]))
        assert got_rows == rows, (got_rows, rows)
        assert abs(duration - (rows - 1) * 0.01) < 1e-6, duration
        best_s = min(best_s, took)
        peak = max(peak, grew)
    mbps = size / 1e6 / best_s
    factor = peak / size
    ok = mbps >= CSV_TARGET_MBPS and factor < CSV_MEMORY_FACTOR
    load = os.getloadavg()[0]
    print(
        f"CSV import (load average {load:.1f} on {os.cpu_count()} cores): {size / 1e6:.0f} MB, {rows} rows x {len(_CSV_NAMES) + 1} columns in "
        f"{best_s:.2f} s = {mbps:.0f} MB/s (target >= {CSV_TARGET_MBPS:g} MB/s; "
        f"{size / 1e6 / best_cpu:.0f} MB per CPU-second); peak memory "
        f"+{peak / 1e6:.0f} MB = {factor:.2f}x the file (target < {CSV_MEMORY_FACTOR:g}x) "
        f"{'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    csv_mb = 100.0
    if "--csv-mb" in sys.argv:
        csv_mb = float(sys.argv[sys.argv.index("--csv-mb") + 1])
    if csv_mb > 0:
        with tempfile.TemporaryDirectory() as tmp:
            bench_csv(Path(tmp), csv_mb)
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
        bench_damaged(path)
    return 0


def bench_damaged(path: Path) -> None:
    clean = path.read_bytes()
    header = parse_header(clean, "bench")
    stride = header.record_bytes + 5
    rng = np.random.default_rng(11)
    data = bytearray(clean)
    flipped = 0
    p = header.data_start
    for k in range(RECORDS):  # walk the blocks (markers between) to flip inside records
        if data[p] == 1:
            p += 54
        if k % 20 == 10:
            data[p + 4 + int(rng.integers(0, header.record_bytes))] ^= 0x5A
            flipped += 1
        p += stride
    cut_a, cut_b = len(data) // 3, 2 * len(data) // 3
    damaged = (
        bytes(data[:cut_a])
        + bytes(1_000_000)
        + bytes(data[cut_a:cut_b])
        + rng.integers(0, 256, 1_000_000, dtype=np.uint8).tobytes()
        + bytes(data[cut_b:])
    )
    path.write_bytes(damaged)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        raw = read_mlg(path)
        best = min(best, time.perf_counter() - start)
    # each inserted stretch lands inside one record (or on a marker/boundary)
    expected = RECORDS - flipped
    verdict = "OK" if best <= TARGET_S and raw.t_s.size >= expected - 2 else "MISSED"
    print(
        f"MLG damaged import: {best:.3f} s for {len(damaged) / 1e6:.1f} MB "
        f"({flipped} flipped records + 2 x 1 MB inserted): {raw.t_s.size} of {RECORDS} records "
        f"(at least {expected - 2} expected), '{raw.damage[0]}' (target <= {TARGET_S:g} s) {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
