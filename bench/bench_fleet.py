"""Fleet scale: 10,000 sessions exported to Parquet, fleet queries on DuckDB, first-session priors.

How the 10,000 sessions are made (cheaply, and said exactly):

1. Real: ``REAL_PER_PRESET`` sessions per simulator preset (V-twin and inline four)
   are simulated sample by sample at 100 Hz: for the V-twin, ``GUIDED`` of them are
   first sessions of other bikes run by the planner (the tests it chose in the
   ``bench/bench_planner.py`` loop, replayed as one continuous session), the rest run
   the scenarios pulls / steady / street in turn for ``REAL_S`` seconds (different
   seeds = different ECU VE errors and noise); all are written as
   .dynolog recordings and analysed by ``core.fleet.analyze`` (fusion, filters, grid,
   test detection, patterns): the export path a shop's runs take.
2. Synthetic: each of the 10,000 sessions copies a real session of its build's preset
   and varies it: a build from ``BUILDS`` (engine family, displacement, stage, cam, ...),
   a shop (4) and vehicle (400, 25 sessions each over 2 days), conditions (ambient
   10-40 degC, altitude 0-2000 m -> baro, humidity); per cell hits ~ Poisson(hits x s)
   with s ~ U(0.6, 1.4) (a longer or shorter session), the measured lambda ratio
   x (1 + the build's VE offset for the cell's region + N(0, 1 %)), knock events
   ~ Poisson(events x the build's knock factor); tests' predicted hits x s and actual
   x s x U(0.9, 1.1); pattern values shifted the same way.
3. Export: all 10,000 through ``core.fleet.writer.write_runs`` (the writer
   ``dynoai export`` uses), Hive-partitioned by shop/vehicle/date.

Measured against targets: fleet coverage and fill-rate queries <= 1 s each (cold,
right after connecting, and warm); export throughput (analysis of real recordings
and Parquet writing, sessions/s); dataset size per session.

First-session gain: a new V-twin of a known model plans its first session from
empty coverage (the loop of ``bench/bench_planner.py``: the planner's top test is
simulated through fusion, filters and the grid until 80 % of priority-1/2 cells
are covered) with the generic prior and with the fleet priors for its model, for
``NEW_BIKES`` new bikes (seeds the fleet never saw). Printed: dyno minutes, tests,
and the prediction error of the first 5 tests.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.fleet import queries as q  # noqa: E402
from core.fleet.analyze import RunData, analyze_log  # noqa: E402
from core.fleet.pattern_rows import REGIONS  # noqa: E402
from core.fleet.writer import write_runs  # noqa: E402
from core.plan.learning import Calibration  # noqa: E402

SESSIONS = 10_000
REAL_PER_PRESET = 12
REAL_S = 150.0
BENCH_STORE = "00000000bec40000"
"""The store id the bench exports as (one store writes all 10,000 sessions)."""
GUIDED = 8
"""V-twin real sessions that are planner-guided first sessions of other bikes (seeds)."""
SHOPS = ("main-street", "north-dyno", "coast-moto", "desert-tune")
VEHICLES = 400
NEW_BIKES = 3
QUERY_TARGET_S = 1.0

BUILDS: tuple[dict[str, Any], ...] = (
    # preset, model, family, ci, stage, cr, cam, int/exh dur, lsa, exhaust, octane, VE offset/region %
    dict(preset="vtwin", model="TC103 Stage 1", engine_family="twin_cam", ci=103, stage=1, cr=9.6,
         cam="stock", dur=(220, 220), lsa=110, exhaust="2-into-2", octane=91, ve=(3, 4, 5, 6), knock=0.8),
    dict(preset="vtwin", model="TC103 S&S 475", engine_family="twin_cam", ci=103, stage=2, cr=10.5,
         cam="S&S 475", dur=(228, 228), lsa=106, exhaust="2-into-1", octane=91, ve=(12, 15, 19, 22), knock=1.2),
    dict(preset="vtwin", model="TC110 Stage 3", engine_family="twin_cam", ci=110, stage=3, cr=10.8,
         cam="S&S 585", dur=(240, 240), lsa=104, exhaust="2-into-1", octane=93, ve=(14, 18, 24, 28), knock=1.5),
    dict(preset="vtwin", model="M8 107 Stage 1", engine_family="milwaukee_eight", ci=107, stage=1, cr=10.0,
         cam="stock", dur=(218, 226), lsa=108, exhaust="2-into-2", octane=91, ve=(2, 3, 4, 5), knock=0.7),
    dict(preset="vtwin", model="M8 114 Stage 2", engine_family="milwaukee_eight", ci=114, stage=2, cr=10.5,
         cam="Woods 222", dur=(234, 238), lsa=106, exhaust="2-into-1", octane=93, ve=(10, 13, 17, 20), knock=1.1),
    dict(preset="vtwin", model="M8 131 Stage 4", engine_family="milwaukee_eight", ci=131, stage=4, cr=11.0,
         cam="SE8-550", dur=(250, 252), lsa=102, exhaust="true dual", octane=93, ve=(18, 24, 30, 35), knock=1.8),
    dict(preset="vtwin", model="Evo 80 stock", engine_family="evolution", ci=80, stage=0, cr=8.5,
         cam="stock", dur=(214, 214), lsa=108, exhaust="2-into-2", octane=87, ve=(0, 0, 0, 0), knock=0.5),
    dict(preset="vtwin", model="XL1200 Stage 1", engine_family="sportster", ci=73, stage=1, cr=10.0,
         cam="stock", dur=(220, 222), lsa=106, exhaust="2-into-2", octane=91, ve=(3, 4, 5, 6), knock=0.9),
    dict(preset="car", model="2.0 I4 NA", engine_family="inline_four", ci=122, stage=0, cr=10.2,
         cam="stock", dur=(232, 232), lsa=112, exhaust="4-2-1", octane=95, ve=(0, 0, 0, 0), knock=0.6),
    dict(preset="car", model="2.0 I4 cams", engine_family="inline_four", ci=122, stage=2, cr=10.2,
         cam="264/264", dur=(264, 264), lsa=110, exhaust="4-1", octane=98, ve=(-4, 3, 8, 12), knock=1.0),
)  # fmt: skip


def guided_specs(seed0: int) -> list[Any]:
    """The tests the planner chooses for a bike's first session (generic prior), in order."""
    from bench.planner_loop import GOAL, MAX_MIN, Bench, planner_choice

    bench = Bench(learn=True)
    specs = []
    while bench.progress() < GOAL and bench.minutes < MAX_MIN:
        spec = planner_choice(bench)
        specs.append(spec)
        bench.run(spec, seed=seed0 + bench.tests)
    return specs


def real_sessions(tmp: Path) -> tuple[dict[str, list[RunData]], float]:
    """V-twin: GUIDED planner-guided sessions + scenario sessions; car: scenario sessions."""
    from bench.planner_loop import VEHICLE, segments_for
    from sim.simulation import Simulation
    from tests.fleet_sim import make_sim, record_sim

    tmp.mkdir(parents=True, exist_ok=True)
    real: dict[str, list[RunData]] = {"vtwin": [], "car": []}
    analyse_s = 0.0
    scenarios = ("pulls", "steady", "street")
    for preset in real:
        for i in range(REAL_PER_PRESET):
            seed = 100 + i
            if preset == "vtwin" and i < GUIDED:
                segments = [
                    seg for spec in guided_specs(10_000 * (i + 1)) for seg in segments_for(spec)
                ]
                sim = Simulation(VEHICLE, segments, seed=seed, rate_hz=100.0)
            else:
                sim = make_sim(scenarios[i % 3], seed, vehicle=preset, duration_s=REAL_S)
            path = record_sim(tmp / f"{preset}-{i}.dynolog", sim, run_id=f"{preset}-{i}")
            t0 = time.perf_counter()
            real[preset].append(analyze_log(path, vehicle=preset, run_id=f"{preset}-{i}"))
            analyse_s += time.perf_counter() - t0
    return real, analyse_s


def region_of(rpm: np.ndarray, kpa: np.ndarray) -> np.ndarray:
    out = np.full(rpm.shape, -1)
    for k, (_, r0, r1, m0, m1) in enumerate(REGIONS):
        out[(out < 0) & (rpm > r0) & (rpm <= r1) & (kpa >= m0) & (kpa < m1)] = k
    return out


def synthesize(real: dict[str, list[RunData]], rng: np.random.Generator) -> list[RunData]:
    out = []
    vehicle_build = [BUILDS[int(rng.integers(len(BUILDS)))] for _ in range(VEHICLES)]
    vehicle_shop = [SHOPS[int(rng.integers(len(SHOPS)))] for _ in range(VEHICLES)]
    vehicle_day = rng.integers(0, 330, VEHICLES)
    for k in range(SESSIONS):
        v = k % VEHICLES
        b = vehicle_build[v]
        tmpl = real[b["preset"]][int(rng.integers(len(real[b["preset"]])))]
        s = float(rng.uniform(0.6, 1.4))
        run_id = uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | k).hex
        day = int(vehicle_day[v] + (k // VEHICLES) % 2)
        started = 1_767_225_600.0 + day * 86400.0 + float(rng.uniform(8, 18)) * 3600.0
        alt = float(rng.uniform(0, 2000))
        ve_off = np.array(b["ve"], dtype=np.float64) / 100.0
        session = dict(tmpl.session)
        session.update(
            run_id=run_id, vehicle_name=f"bike-{v:04d}", started_at=started,
            duration_s=tmpl.session["duration_s"] * s, rows=int(tmpl.session["rows"] * s),
            rows_kept=int(tmpl.session["rows_kept"] * s), record_source="synthetic (bench_fleet)",
            model=b["model"], engine_family=b["engine_family"], displacement_cc=b["ci"] * 16.387064,
            compression_ratio=b["cr"], stage=b["stage"], cam_profile=b["cam"],
            cam_intake_duration_deg=float(b["dur"][0]), cam_exhaust_duration_deg=float(b["dur"][1]),
            cam_lsa_deg=float(b["lsa"]),
            cam_overlap_deg=(b["dur"][0] + b["dur"][1]) / 2 - 2 * b["lsa"],
            exhaust=b["exhaust"], fuel_octane=float(b["octane"]),
            ambient_c=float(rng.uniform(10, 40)), altitude_m=alt,
            baro_kpa=101.325 * (1 - 2.25577e-5 * alt) ** 5.25588,
            humidity_pct=float(rng.uniform(20, 80)), dyno_type="Dynojet 250i",
            dyno_load_type="eddy" if k % 3 == 1 else "inertia",
            fan_airflow_cfm=float(rng.choice([3000, 5000, 8000])), warmup_min=10.0,
            log_path=None,
        )  # fmt: skip
        ov = session["cam_overlap_deg"]
        session["cam_overlap_class"] = "low" if ov < 20 else "moderate" if ov < 40 else "high"
        c = {key: arr.copy() for key, arr in tmpl.cells.items()}
        c["hits"] = rng.poisson(c["hits"] * s).astype(np.int32)
        for key in ("dwell_s", "lambda_weight", "lambda_wsum", "lambda_wsum2"):
            c[key] = c[key] * s
        reg = region_of(c["rpm"], c["map_kpa"])
        bump = np.where(reg >= 0, ve_off[np.maximum(reg, 0)], 0.0)
        noise = rng.normal(0.0, 0.01, len(reg))
        c["lambda_ratio"] = (c["lambda_ratio"] * (1 + bump + noise)).astype(np.float32)
        c["knock_events"] = rng.poisson(c["knock_events"] * b["knock"]).astype(np.int32)
        c["model_hits"] = (c["model_hits"] * s).astype(np.float32)
        c["run_id"] = np.full(len(reg), run_id, dtype=object)
        c["model"] = np.full(len(reg), b["model"], dtype=object)
        tests = [
            {**t, "run_id": run_id, "model": b["model"], "model_hits": t["model_hits"] * s,
             "actual_hits": t["actual_hits"] * s * float(rng.uniform(0.9, 1.1))}
            for t in tmpl.tests
        ]  # fmt: skip
        pats = []
        for p in tmpl.patterns:
            p = {**p, "run_id": run_id, "model": b["model"]}
            if p["kind"] == "ve_change":
                idx = [r[0] for r in REGIONS].index(p["region"])
                p["value"] = p["value"] + 100 * ve_off[idx] + float(rng.normal(0, 1))
            elif p["kind"] == "knock_cell":
                p["events"] = int(rng.poisson(p["events"] * b["knock"]))
            elif p["kind"] == "heat_soak":
                p["value"] = p["value"] + float(rng.normal(0, 0.1))
            pats.append(p)
        date = time.strftime("%Y-%m-%d", time.gmtime(started))
        out.append(RunData(session, c, tests, pats, None, vehicle_shop[v], f"bike-{v:04d}", date))
    return out


def first_session(calibration: Calibration, seed0: int) -> tuple[float, int, float]:
    """(minutes to goal, tests, mean prediction error of the first 5 tests) for a new bike."""
    from bench.planner_loop import GOAL, MAX_MIN, Bench, planner_choice

    bench = Bench(learn=True)
    bench.calibration = calibration
    errors: list[float] = []
    while bench.progress() < GOAL and bench.minutes < MAX_MIN:
        before = len(bench.calibration.errors_pct)
        bench.run(planner_choice(bench), seed=seed0 + bench.tests)
        errors += bench.calibration.errors_pct[before:]
    first = errors[:5]
    return bench.minutes, bench.tests, float(np.mean(first)) if first else math.nan


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="dynoai-bench-fleet-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path) -> None:
    rng = np.random.default_rng(15)
    t0 = time.perf_counter()
    real, analyse_s = real_sessions(tmp / "logs")
    n_real = sum(len(v) for v in real.values())
    rec_s = sum(r.session["duration_s"] for v in real.values() for r in v)
    print(f"real sessions: {n_real} simulated ({rec_s / 60:.0f} min of recording) in "
          f"{time.perf_counter() - t0:.1f} s; analysis {n_real / analyse_s:.1f} sessions/s "
          f"({rec_s / analyse_s / 60:.1f} min of recording per second)")  # fmt: skip
    t0 = time.perf_counter()
    runs = synthesize(real, rng)
    print(f"synthesized {len(runs)} sessions in {time.perf_counter() - t0:.1f} s")

    out = tmp / "dataset"
    t0 = time.perf_counter()
    counts = write_runs(runs, out, store_id=BENCH_STORE)
    write_s = time.perf_counter() - t0
    per_session = counts.bytes / len(runs)
    print(f"export: {len(runs)} sessions, {counts.partitions} partitions, {counts.files} files, "
          f"{counts.bytes / 2**20:.1f} MiB in {write_s:.1f} s = {len(runs) / write_s:.0f} sessions/s")  # fmt: skip
    print(f"dataset size per session: {per_session / 1024:.1f} KiB")
    t0 = time.perf_counter()
    again = write_runs(runs, out, store_id=BENCH_STORE)
    print(
        f"re-export (idempotent, same files): {time.perf_counter() - t0:.1f} s, {again.files} files"
    )

    for name, fn in (
        ("coverage", lambda db: q.coverage(db)),
        ("fill-rates", lambda db: q.fill_rates(db)),
    ):
        db = q.connect(out)
        t0 = time.perf_counter()
        _, rows = fn(db)
        cold = time.perf_counter() - t0
        warm = min(_timed(fn, db) for _ in range(3))
        ok = "OK" if max(cold, warm) <= QUERY_TARGET_S else "MISS"
        print(f"fleet {name:<10} {len(rows):3d} rows: cold {cold:.3f} s, warm {warm:.3f} s "
              f"(target <= {QUERY_TARGET_S:.1f} s) {ok}")  # fmt: skip
    db = q.connect(out)
    t0 = time.perf_counter()
    _, ve_rows = q.patterns(db, "ve_change")
    print(f"fleet patterns ve_change: {len(ve_rows)} rows in {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    priors = q.priors(db, "TC103 S&S 475")
    print(f"priors for 'TC103 S&S 475': {priors['sessions']} sessions, {len(priors['fits'])} test types, "
          f"{time.perf_counter() - t0:.3f} s")  # fmt: skip

    print(
        f"first session of a new vehicle (V-twin, {NEW_BIKES} bikes), to 80 % of priority-1/2 cells:"
    )
    plain, fleet = [], []
    for i in range(NEW_BIKES):
        seed0 = 50_000 + 1000 * i
        plain.append(first_session(Calibration(), seed0))
        fleet.append(first_session(replace(q.calibration_from_priors(priors)), seed0))
        print(f"  bike {i}: generic prior {plain[-1][0]:5.1f} min, {plain[-1][1]} tests, "
              f"first-5 error {plain[-1][2]:.0f} %;  fleet priors {fleet[-1][0]:5.1f} min, "
              f"{fleet[-1][1]} tests, first-5 error {fleet[-1][2]:.0f} %")  # fmt: skip
    m_plain = float(np.mean([p[0] for p in plain]))
    m_fleet = float(np.mean([f[0] for f in fleet]))
    gain = 100.0 * (m_plain - m_fleet) / m_plain
    print(f"  mean: generic {m_plain:.1f} min, fleet priors {m_fleet:.1f} min: "
          f"{gain:+.1f} % shorter (target > 0) {'OK' if gain > 0 else 'MISS'}")  # fmt: skip
    e_plain = float(np.mean([p[2] for p in plain]))
    e_fleet = float(np.mean([f[2] for f in fleet]))
    print(f"  first-5-test prediction error: generic {e_plain:.0f} %, fleet priors {e_fleet:.0f} %")


def _timed(fn: Any, db: Any) -> float:
    t0 = time.perf_counter()
    fn(db)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
