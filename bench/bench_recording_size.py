"""Recording size of .dynolog versus CSV, and LogReader throughput.

Data: 12 canonical channels at 100 Hz, sensor-like (slow random trends, a pull
every 40 s, Gaussian noise), each quantised to the resolution a real device
reports it in (rpm 1, kPa 0.1, lambda 0.001, AFR 0.01, degrees 0.1 ...), then
rounded to float32 as the engine does at ingest. Times are regular 10 ms steps
from t = 1000 s, as the simulator produces them.

CSV baseline: a header line, then one row per sample: time as '%.3f', each
channel with exactly its device resolution's decimals (rpm '%.0f', map_kpa '%.1f',
lambda '%.3f', afr '%.2f', ...), which is what a logger that does not pad writes
and what keeps CSV lossless for this data.

.dynolog: written as the live engine would, one ``write_block`` + ``tick`` per
30 ms engine tick (3 samples), with the writer's clock following the data clock;
and again in blocks of 100 samples. Targets: <= 50 % of CSV; reading a 1 h log
well under 1 s (the whole replay of 1 h through the engine must fit in 2 s).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.frames import Block  # noqa: E402
from core.record import LogHeader, LogReader, LogWriter  # noqa: E402

RATE_HZ = 100.0
DECIMALS = {
    "rpm": 0,
    "map_kpa": 1,
    "tps_pct": 1,
    "lambda": 3,
    "afr": 2,
    "knock_retard_deg": 1,
    "iat_c": 1,
    "clt_c": 1,
    "spark_deg": 1,
    "power_hp": 1,
    "torque_nm": 1,
    "drum_speed_kph": 1,
}


def sensor_data(seconds: float, seed: int = 7) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    t = 1000.0 + np.arange(n) / RATE_HZ

    def trend(scale: float, tau_s: float) -> np.ndarray:
        k = max(1, int(tau_s * RATE_HZ))
        walk = rng.standard_normal(n + k)
        return np.convolve(walk, np.ones(k) / np.sqrt(k), mode="valid")[:n] * scale

    pull = np.clip(((t % 40.0) / 40.0 - 0.5) * 2.0, 0.0, 1.0)
    rpm = 1500 + 5000 * pull + trend(200, 3) + rng.normal(0, 8, n)
    lam = 1.0 - 0.13 * pull + trend(0.01, 1) + rng.normal(0, 0.004, n)
    torque = 60 + 50 * pull + trend(2, 1) + rng.normal(0, 0.5, n)
    knock = np.where(rng.random(n) < 0.01, rng.integers(1, 5, n), 0).astype(float)
    raw = {
        "rpm": rpm,
        "map_kpa": np.clip(30 + 65 * pull + trend(3, 2) + rng.normal(0, 0.4, n), 10, 105),
        "tps_pct": np.clip(10 + 85 * pull + trend(5, 2) + rng.normal(0, 0.3, n), 0, 100),
        "lambda": lam,
        "afr": lam * 14.7,
        "knock_retard_deg": knock,
        "iat_c": 30 + trend(0.5, 30) + (t - t[0]) * 0.002 + rng.normal(0, 0.05, n),
        "clt_c": 85 + trend(0.5, 30) + rng.normal(0, 0.05, n),
        "spark_deg": 15 + 15 * pull + trend(1, 2) + rng.normal(0, 0.2, n),
        "power_hp": torque * rpm * 2 * np.pi / 60 / 745.7,
        "torque_nm": torque,
        "drum_speed_kph": rpm * 0.02 + rng.normal(0, 0.05, n),
    }
    cols = {
        name: np.round(values, DECIMALS[name]).astype(np.float32).astype(np.float64)
        for name, values in raw.items()
    }
    return t, cols


def csv_bytes(t: np.ndarray, cols: dict[str, np.ndarray]) -> int:
    out = io.StringIO()
    out.write("time_s," + ",".join(cols) + "\n")
    table = np.column_stack([t, *cols.values()])
    fmt = ["%.3f"] + [f"%.{DECIMALS[name]}f" for name in cols]
    np.savetxt(out, table, fmt=fmt, delimiter=",")
    return len(out.getvalue().encode())


def write_dynolog(path: str, t: np.ndarray, cols: dict[str, np.ndarray], block: int) -> int:
    now = [float(t[0])]
    header = LogHeader(
        created_at=time.time(),
        t0=float(t[0]),
        vehicle="bench",
        sources={"sim": {"uri": "sim:", "channels": dict.fromkeys(cols, "")}},
    )
    with LogWriter(path, header, clock=lambda: now[0], overwrite=True) as writer:
        for start in range(0, t.size, block):
            stop = min(start + block, t.size)
            writer.write_block(
                Block("sim", t[start:stop], {k: v[start:stop] for k, v in cols.items()})
            )
            now[0] = float(t[stop - 1])
            writer.tick()
    return os.path.getsize(path)


def main() -> int:
    ok = True
    t, cols = sensor_data(600.0)
    n = t.size
    csv = csv_bytes(t, cols)
    print(f"data: {n} samples x {len(cols)} channels at {RATE_HZ:.0f} Hz (10 min)")
    print(f"csv            : {csv / n:6.2f} bytes/sample")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.dynolog")
        for block in (3, 100):
            size = write_dynolog(path, t, cols, block)
            ratio = size / csv
            verdict = "OK" if ratio <= 0.5 else "MISSED"
            ok &= ratio <= 0.5
            print(
                f"dynolog blk {block:3d}: {size / n:6.2f} bytes/sample, "
                f"{100 * ratio:5.1f} % of CSV (target <= 50 %) {verdict}"
            )

        t_h, cols_h = sensor_data(3600.0, seed=11)
        write_dynolog(path, t_h, cols_h, 3)
        best = float("inf")
        samples = 0
        for _ in range(3):
            start = time.perf_counter()
            samples = 0
            with LogReader(path) as reader:
                for item in reader:
                    if isinstance(item, Block):
                        samples += len(item)
            best = min(best, time.perf_counter() - start)
        assert samples == t_h.size, (samples, t_h.size)
        verdict = "OK" if best < 1.0 else "MISSED"
        ok &= best < 1.0
        print(
            f"read 1 h log   : {best:.3f} s, {samples / best / 1e6:.2f} M samples/s "
            f"({os.path.getsize(path) / 1e6:.1f} MB; target < 1 s) {verdict}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
