import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from core.coverage.axes import TableAxes
from core.coverage.grid import CoverageGrid
from core.plan.learning import Calibration
from core.plan.planner import Constraints
from core.store import StoreError, VehicleStore

AXES = TableAxes.default()
ROOT = Path(__file__).resolve().parents[1]


def _grid(value: int, axes: TableAxes = AXES) -> CoverageGrid:
    g = CoverageGrid(axes)
    g.hits[:] = value
    g.knock_events[0, 0] = value
    return g


def test_add_run_is_idempotent_and_cumulative_sums_runs(tmp_path):
    store = VehicleStore(tmp_path)
    store.add_run("bike", "r1", _grid(3), final=False)
    store.add_run("bike", "r1", _grid(5))  # checkpoint replaced, not added
    store.add_run("bike", "r2", _grid(2))
    cum = store.cumulative_grid("bike", AXES, 10)
    assert int(cum.hits[4, 4]) == 7 and int(cum.knock_events[0, 0]) == 7
    assert int(store.cumulative_grid("bike", AXES, exclude_run="r2").hits[1, 1]) == 5
    runs = store.list_runs("bike")
    assert [r.run_id for r in runs] == ["r1", "r2"] and all(r.final for r in runs)
    assert store.cumulative_grid("nobody", AXES).hits.sum() == 0


def test_other_axes_do_not_mix_until_rebuilt(tmp_path):
    store = VehicleStore(tmp_path)
    other = TableAxes.linear(500, 7000, 8, 20, 100, 8)
    store.add_run("bike", "old", _grid(4, other))
    store.add_run("bike", "new", _grid(1))
    assert int(store.cumulative_grid("bike", AXES).hits[0, 0]) == 1
    assert store.stale_runs("bike", AXES) == ["old"]


def test_rebuild_rebins_runs_from_their_logs_all_or_nothing(tmp_path):
    from core.frames import Block
    from core.pipeline import Pipeline
    from core.vehicle import VehicleConfig

    store = VehicleStore(tmp_path)
    store.add_run("bike", "a", _grid(1), log_path="a.dynolog")
    store.add_run("bike", "b", _grid(1), log_path="b.dynolog")
    store.add_run("bike", "c", _grid(1))
    store.add_run("bike", "d", _grid(1), log_path="d.dynolog")
    new_axes = TableAxes.linear(1000, 6000, 6, 30, 100, 5)

    def rows(path):
        t = np.arange(0, 2, 0.01)
        yield Block(
            "fused",
            t,
            {
                "rpm": np.full(t.size, 3000.0),
                "map_kpa": np.full(t.size, 65.0),
                "lambda": np.full(t.size, 0.9),
                "clt_c": np.full(t.size, 90.0),
                "tps_pct": np.full(t.size, 30.0),
            },
        )

    def broken(path):
        if path == "b.dynolog":
            raise ValueError("b.dynolog is truncated")
        if path == "d.dynolog":
            Path("/nonexistent/d.dynolog").read_bytes()  # its log moved away
        pipeline = Pipeline(VehicleConfig(axes=new_axes))
        for block in rows(path):
            pipeline.push_rows(block)
        return pipeline.grid

    report = store.rebuild("bike", new_axes, broken)
    assert report.rebuilt == ("a",) and {m[0] for m in report.missing} == {"b", "c", "d"}
    why = dict(report.missing)  # QA: "[Errno 2] No such file or directory: '...'"
    assert why["d"] == "cannot read its recording /nonexistent/d.dynolog: no such file or directory"
    grid = store.cumulative_grid("bike", new_axes)
    assert grid.hits.sum() > 100 and grid.hits[2, 2] == grid.hits.sum()

    def explode(path):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.rebuild("bike", AXES, explode)
    assert store.cumulative_grid("bike", new_axes).hits.sum() == grid.hits.sum()


def test_constraints_calibration_config_and_reset(tmp_path):
    store = VehicleStore(tmp_path)
    assert store.get_constraints("bike") is None
    store.set_constraints("bike", Constraints(max_rpm=5800, environment="dyno"))
    store.set_config_toml("bike", "[vehicle]\nname = 'bike'\n")
    cal = Calibration()
    cal.observe("wot_pull", np.ones(3) * 10, np.ones(3) * 7)
    store.set_calibration("bike", cal)
    store.add_run("bike", "r1", _grid(3))
    assert store.get_constraints("bike") == Constraints(max_rpm=5800, environment="dyno")
    assert store.get_calibration("bike").factor("wot_pull") == cal.factor("wot_pull")
    assert store.reset_vehicle("bike") == 1
    assert store.list_runs("bike") == []
    assert store.get_calibration("bike").factor("wot_pull") == 1.0
    config_toml = store.get_config_toml("bike")
    assert config_toml is not None and config_toml.startswith("[vehicle]")
    constraints = store.get_constraints("bike")
    assert constraints is not None and constraints.max_rpm == 5800


def test_clear_errors(tmp_path):
    store = VehicleStore(tmp_path)
    store.ensure_vehicle("bike")
    with pytest.raises(StoreError, match=r"unknown vehicle 'car' \(known: bike\)"):
        store.reset_vehicle("car")
    with pytest.raises(StoreError, match="vehicle name"):
        store.add_run("", "r", _grid(1))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "vehicles.sqlite3").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database") as exc:
        VehicleStore(bad)
    assert "\n" not in str(exc.value)


def test_env_var_picks_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "env"))
    assert VehicleStore().path == tmp_path / "env" / "vehicles.sqlite3"


_WRITER = textwrap.dedent("""
    import sys
    from core.coverage.axes import TableAxes
    from core.coverage.grid import CoverageGrid
    from core.store import VehicleStore
    store = VehicleStore(sys.argv[1])
    g = CoverageGrid(TableAxes.default())
    g.hits[:] = 1
    for i in range(int(sys.argv[3])):
        store.add_run("bike", f"{sys.argv[2]}-{i}", g)
""")


@pytest.mark.slow
def test_two_processes_adding_runs_at_once_both_count(tmp_path):
    VehicleStore(tmp_path)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), name, "25"], cwd=ROOT)
        for name in ("p1", "p2")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = VehicleStore(tmp_path)
    assert len(store.list_runs("bike")) == 50
    assert int(store.cumulative_grid("bike", AXES).hits[7, 7]) == 50


_KILLED = textwrap.dedent("""
    import sys, time
    from core.store import VehicleStore
    store = VehicleStore(sys.argv[1])
    with store._connect() as db, store._write(db):
        db.execute("DELETE FROM runs WHERE vehicle = 'bike'")
        print("deleted", flush=True)
        time.sleep(60)
""")


@pytest.mark.slow
def test_killed_mid_transaction_leaves_previous_state(tmp_path):
    store = VehicleStore(tmp_path)
    store.add_run("bike", "keep", _grid(4))
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None  # stdout=PIPE
    assert child.stdout.readline().strip() == "deleted"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    time.sleep(0.1)
    assert [r.run_id for r in VehicleStore(tmp_path).list_runs("bike")] == ["keep"]
