"""Session records, the Parquet export and the fleet queries, end to end as a tuner runs them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.fleet.record import RecordError, parse_toml, to_toml
from core.record import read_log

DYNOAI = [sys.executable, "-m", "dynoai_tui.cli"]
RECORD = """
shop = "Main Street V-Twin"
tuner = "dave"
notes = "rear runs rich at cruise"
[build]
model = "TC103 S&S 475"
engine_family = "Twin Cam"
displacement_ci = 103
compression_ratio = 10.5
stage = 2
exhaust = "2-into-1"
fuel_octane = 91
[build.cam]
profile = "S&S 475"
intake_duration_deg = 228
exhaust_duration_deg = 228
lsa_deg = 106
[conditions]
ambient_f = 75
baro_inhg = 29.92
humidity_pct = 45
altitude_ft = 500
[dyno]
type = "Dynojet 250i"
load_type = "inertia"
fan_airflow_cfm = 5000
warmup_min = 10
"""


def dynoai(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None):
    full = {**os.environ, "DYNOAI_DATA_DIR": str(cwd / "store"), **(env or {})}
    return subprocess.run([*DYNOAI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=full, input=stdin)  # fmt: skip


def test_record_validation_names_the_key_and_converts_units() -> None:
    record = parse_toml(RECORD)
    assert record.build.engine_family == "twin_cam"
    assert record.build.displacement_cc == pytest.approx(103 * 16.387064, abs=1e-3)
    assert record.conditions.ambient_c == pytest.approx(23.889, abs=1e-3)
    assert record.conditions.baro_kpa == pytest.approx(101.321, abs=1e-3)
    assert record.conditions.altitude_m == pytest.approx(152.4)
    assert record.build.cam.overlap_deg() == pytest.approx(16.0)  # (228 + 228) / 2 - 2 x 106
    assert parse_toml(to_toml(record)) == record
    bad = {
        "[build]\ncam_profile = 'x'": "build.cam_profile",
        "[build]\nstage = 7": "build.stage",
        "[build]\nstage = 'two'": "build.stage",
        "[build]\nengine_family = 'rotary'": "build.engine_family",
        "[conditions]\nambient_c = 20\nambient_f = 70": "conditions.ambient_f",
        "[dyno]\nload_type = 'magic'": "dyno.load_type",
        "[conditions]\nhumidity_pct = 140": "conditions.humidity_pct",
        "colour = 'red'": "colour",
        "[build\n": "not valid TOML",
    }
    for text, key in bad.items():
        with pytest.raises(RecordError, match=key.replace(".", r"\.")):
            parse_toml(text, "f.toml")


def test_vehicle_edit_show_and_the_header_of_new_recordings(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(RECORD, encoding="utf-8")
    env = {"VISUAL": ""}
    # the "editor" copies good.toml over the file it is given
    env["EDITOR"] = f"{sys.executable} -c \"import sys,shutil; shutil.copy('{good}', sys.argv[1])\""
    done = dynoai("vehicle", "edit", "fxbb", cwd=tmp_path, env=env, stdin="")
    assert done.returncode == 0, done.stderr
    assert "session record saved" in done.stdout
    shown = json.loads(dynoai("vehicle", "show", "fxbb", "--json", cwd=tmp_path).stdout)
    assert shown["record"]["build"]["stage"] == 2
    assert shown["record"]["dyno"]["fan_airflow_cfm"] == 5000
    assert "widebands.front" in shown["missing"]

    # a bad edit: one line naming the key, exit 2, nothing saved, the edit kept for --from
    bad = tmp_path / "bad.toml"
    bad.write_text(RECORD.replace("stage = 2", "stage = 9"), encoding="utf-8")
    env["EDITOR"] = f"{sys.executable} -c \"import sys,shutil; shutil.copy('{bad}', sys.argv[1])\""
    done = dynoai("vehicle", "edit", "fxbb", cwd=tmp_path, env=env, stdin="")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "build.stage = 9" in done.stderr
    kept = Path(done.stderr.split("--from ")[1].strip())
    assert "stage = 9" in kept.read_text(encoding="utf-8")
    shown = json.loads(dynoai("vehicle", "show", "fxbb", "--json", cwd=tmp_path).stdout)
    assert shown["record"]["build"]["stage"] == 2
    kept.unlink()

    done = dynoai("log", "--vehicle", "fxbb", "--source", "sim:?speed=max&duration=10",
                  "--out", "a.dynolog", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    header, _, _, _ = read_log(tmp_path / "a.dynolog")
    assert header.metadata["session_record"]["build"]["model"] == "TC103 S&S 475"
    assert header.metadata["session_record"]["shop"] == "Main Street V-Twin"


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two vehicles of one model (records) and one without, a few sim runs each."""
    root = tmp_path_factory.mktemp("fleet")
    (root / "rec.toml").write_text(RECORD, encoding="utf-8")
    for vehicle in ("bike-a", "bike-b"):
        assert dynoai("vehicle", "edit", vehicle, "--from", "rec.toml", cwd=root).returncode == 0
    runs = [("bike-a", "steady", 2), ("bike-a", "pulls", 3), ("bike-b", "steady", 4),
            ("other", "street", 5)]  # fmt: skip
    for i, (vehicle, scenario, seed) in enumerate(runs):
        done = dynoai("log", "--vehicle", vehicle, "--out", f"r{i}.dynolog", "--source",
                      f"sim:?speed=max&duration=90&scenario={scenario}&seed={seed}", cwd=root)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return root


def test_export_is_idempotent_and_holds_the_builds_and_patterns(fleet: Path) -> None:
    import pyarrow.parquet as pq

    out = fleet / "ds1"
    done = dynoai("export", "--parquet", str(out), "--all", cwd=fleet)
    assert done.returncode == 0, done.stderr
    assert "exported 4 run(s) of 3 vehicle(s)" in done.stdout
    first = _files(out)
    assert any(k.startswith("sessions/shop=main-street-v-twin/vehicle=bike-a/date=") for k in first)
    assert any(k.startswith("sessions/shop=unknown/vehicle=other/") for k in first)
    info = json.loads((out / "_dataset.json").read_text(encoding="utf-8"))
    assert info["version"] == 1 and "ve_before" in dict(info["tables"]["sessions"])

    sessions = pq.read_table(out / "sessions").to_pylist()
    assert len(sessions) == 4
    a = [s for s in sessions if s["vehicle_name"] == "bike-a"]
    assert {s["stage"] for s in a} == {2} and a[0]["cam_overlap_deg"] == pytest.approx(16.0)
    assert a[0]["record_source"] == "recording header"
    assert all(s["ve_status"] == "not recorded" and s["ve_before"] is None for s in sessions)
    other = next(s for s in sessions if s["vehicle_name"] == "other")
    assert other["record_source"] == "none" and other["engine_family"] is None
    kinds = {p["kind"] for p in pq.read_table(out / "patterns").to_pylist()}
    assert {"ve_change", "knock_cell", "heat_soak"} <= kinds

    # re-export: byte-identical files
    assert dynoai("export", "--parquet", str(out), "--all", cwd=fleet).returncode == 0
    assert _files(out) == first
    # a vehicle reset in the store stays in the dataset (the fleet's history) until --prune
    copy = fleet / "ds2"
    shutil.copytree(out, copy)
    store_copy = fleet / "store2"
    shutil.copytree(fleet / "store", store_copy)
    env = {"DYNOAI_DATA_DIR": str(store_copy)}
    assert dynoai("vehicle", "reset", "bike-b", "--yes", cwd=fleet, env=env).returncode == 0
    done = dynoai("export", "--parquet", str(copy), "--vehicle", "bike-b", cwd=fleet, env=env)
    assert (
        done.returncode == 0 and "kept 1 run(s) no longer in the store (bike-b: 1)" in done.stdout
    )
    assert _files(copy) == first
    done = dynoai("export", "--parquet", str(copy), "--vehicle", "bike-b", "--prune", cwd=fleet,
                  env=env)  # fmt: skip
    assert done.returncode == 0 and "removed 1 run(s)" in done.stdout
    left = _files(copy)
    assert not [k for k in left if "vehicle=bike-b" in k]
    assert {k: v for k, v in first.items() if "vehicle=bike-b" not in k} == left


def test_fleet_queries_agree_with_the_store(fleet: Path) -> None:
    out = fleet / "ds3"
    assert dynoai("export", "--parquet", str(out), "--all", cwd=fleet).returncode == 0
    cov = json.loads(dynoai("fleet", "coverage", str(out), "--json", cwd=fleet).stdout)
    by_model = {row["model"]: row for row in cov}
    assert by_model["TC103 S&S 475"]["vehicles"] == 2 and by_model["TC103 S&S 475"]["sessions"] == 3

    from core.coverage.axes import TableAxes
    from core.coverage.grid import CoverageGrid
    from core.store import VehicleStore

    store = VehicleStore(fleet / "store")
    summed = CoverageGrid(TableAxes.default(), 10)
    for vehicle in ("bike-a", "bike-b"):
        summed.merge(store.cumulative_grid(vehicle, TableAxes.default(), 10))
    assert by_model["TC103 S&S 475"]["covered_cells"] == summed.covered_cells()
    assert by_model["TC103 S&S 475"]["hits"] == int(summed.hits.sum())

    rates = json.loads(dynoai("fleet", "fill-rates", str(out), "--json", cwd=fleet).stdout)
    assert {r["test_type"] for r in rates} >= {"steady_state", "wot_pull"}
    assert all(0.0 < r["fill_rate"] <= 1.5 for r in rates if r["fill_rate"] is not None)
    text = dynoai("fleet", "patterns", str(out), cwd=fleet)
    assert text.returncode == 0 and "ve_change:" in text.stdout and "knock_cell:" in text.stdout
    bad = dynoai("fleet", "patterns", str(out), "--kind", "nope", cwd=fleet)
    assert bad.returncode == 2 and "--kind 'nope'" in bad.stderr


def test_priors_seed_a_new_vehicle_of_a_known_model_only(fleet: Path) -> None:
    out = fleet / "ds4"
    assert dynoai("export", "--parquet", str(out), "--all", cwd=fleet).returncode == 0
    assert dynoai("vehicle", "edit", "bike-c", "--from", "rec.toml", cwd=fleet).returncode == 0
    done = dynoai("plan", "--vehicle", "bike-c", "--priors", str(out), cwd=fleet)
    assert done.returncode == 0, done.stderr
    assert "fleet priors from model 'TC103 S&S 475'" in done.stderr

    from core.fleet import queries as q
    from core.store import VehicleStore

    priors = q.priors(q.connect(out), "TC103 S&S 475")
    cal = VehicleStore(fleet / "store").get_calibration("bike-c")
    for kind, f in priors["fits"].items():
        assert cal.factor(kind) == pytest.approx(f["actual"] / f["model"])
    assert cal.sample_rate_hz == pytest.approx(100.0, rel=0.05)  # the simulator logs at 100 Hz
    # a vehicle with its own history keeps it
    done = dynoai("plan", "--vehicle", "bike-a", "--priors", str(out), cwd=fleet)
    assert "has its own learned fill rates" in done.stderr


def test_bad_dataset_folders_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x", encoding="utf-8")
    done = dynoai("fleet", "coverage", str(tmp_path / "junk"), cwd=tmp_path)
    assert done.returncode == 2 and "not a dynoai fleet dataset" in done.stderr
    done = dynoai("export", "--parquet", str(tmp_path / "junk"), "--all", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    done = dynoai("export", "--parquet", str(tmp_path / "ds"), "--vehicle", "ghost", cwd=tmp_path)
    assert done.returncode == 2 and "unknown vehicle 'ghost'" in done.stderr


def test_spark_reads_the_dataset_unchanged(fleet: Path) -> None:
    """Optional: only where pyspark and a Java runtime exist (not on the CI machine)."""
    pyspark = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    out = fleet / "ds5"
    assert dynoai("export", "--parquet", str(out), "--all", cwd=fleet).returncode == 0
    spark = pyspark.SparkSession.builder.master("local[1]").appName("dynoai").getOrCreate()
    try:
        sessions = spark.read.parquet(str(out / "sessions"))
        assert {"shop", "vehicle", "date", "model", "stage"} <= set(sessions.columns)
        assert sessions.count() == 4
        cells = spark.read.parquet(str(out / "cells"))
        assert cells.filter("vehicle = 'bike-a'").count() > 0
    finally:
        spark.stop()


def test_samples_are_exported_on_request_with_every_fused_row(fleet: Path) -> None:
    import pyarrow.parquet as pq

    out = fleet / "ds6"
    done = dynoai("export", "--parquet", str(out), "--vehicle", "other", "--samples", cwd=fleet)
    assert done.returncode == 0, done.stderr
    samples = pq.read_table(out / "samples").to_pydict()
    (session,) = pq.read_table(out / "sessions").to_pylist()
    assert len(samples["t_s"]) == session["rows"]
    assert sum(samples["kept"]) == session["rows_kept"]
    assert samples["t_s"][0] == 0.0 and set(samples["vehicle"]) == {"other"}


def test_a_run_whose_recording_is_gone_is_exported_from_the_stored_grid(fleet: Path) -> None:
    import pyarrow.parquet as pq

    from core.store import VehicleStore

    store = VehicleStore(fleet / "store")
    run = store.list_runs("bike-b")[0]
    assert run.log_path is not None
    log = Path(run.log_path)
    moved = log.with_suffix(".moved")
    log.rename(moved)
    try:
        out = fleet / "ds7"
        done = dynoai("export", "--parquet", str(out), "--vehicle", "bike-b", cwd=fleet)
    finally:
        moved.rename(log)
    assert done.returncode == 0, done.stderr
    assert "is missing; exported from the stored grid" in done.stderr
    (session,) = pq.read_table(out / "sessions").to_pylist()
    assert "is missing" in session["record_source"] and session["model"] == "TC103 S&S 475"
    cells = pq.read_table(out / "cells").to_pydict()
    grid = store.run_grid("bike-b", run.run_id)
    assert grid is not None
    assert sum(cells["hits"]) == int(grid.hits.sum())
    assert session["covered_cells"] == grid.covered_cells()
    kinds = {p["kind"] for p in pq.read_table(out / "patterns").to_pylist()}
    assert "ve_change" in kinds and "heat_soak" not in kinds
    assert not (out / "tests").exists() or not list((out / "tests").rglob("*.parquet"))
