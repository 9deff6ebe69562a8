"""The guided operator and its commands: the loop closed in the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.coverage.confidence import CoverageRule
from core.coverage.grid import CoverageGrid
from core.plan.value import confidence
from core.store import VehicleStore
from core.vehicle import VehicleConfig
from sim.guided import guided_blocks, guided_operator
from sim.scenarios import Cruise, Idle
from sim.simulation import Simulation
from sim.vehicles import get_vehicle

CLI = [sys.executable, "-m", "dynoai_tui.cli"]


def test_guided_operator_runs_the_top_suggestion_and_checks_each_prediction() -> None:
    op = guided_operator("vtwin", 50.0, seed=3)
    blocks = list(guided_blocks(op, 150.0))
    assert sum(len(b) for b in blocks) == 150 * 50
    assert len(op.checked) >= 3
    first = op.checked[0]
    # predicted before the test ran; the first one on an empty vehicle within +-30 %
    assert abs(first.predicted_hits - first.actual_hits) <= 0.3 * first.actual_hits
    assert abs(first.predicted_min - first.actual_min) <= 0.1 * first.actual_min + 0.02
    assert first.test_type == "idle_low_map"  # the opening plan: idle / low-MAP first
    assert op.errors_by_type()
    # every test is one the planner proposed, and coverage grows test by test
    trusted = confidence(op.arrays(), CoverageRule()) >= 1.0
    assert trusted.sum() > 40


def test_guided_starts_from_stored_coverage_without_changing_the_store(tmp_path: Path) -> None:
    store = VehicleStore(tmp_path)
    cfg = VehicleConfig(name="bike")
    sim = Simulation(get_vehicle("vtwin"), (Idle(5.0), Cruise(120.0)), seed=2, rate_hz=50.0)
    from core.plan.testsim import ModelKey
    from sim.testsim import pipeline

    pipe = pipeline(ModelKey("vtwin", cfg.axes, cfg.filters, 50.0))
    while (block := sim.next_block(50)) is not None:
        pipe.push(block)
    grid: CoverageGrid = pipe.grid
    store.add_run("bike", "street-1", grid, log_path=None, started_at=0.0, duration_s=125.0,
                  stats={}, final=True)  # fmt: skip
    runs_before = store.list_runs("bike")
    out = tmp_path / "g.dynolog"
    done = subprocess.run(
        [*CLI, "sim", "--scenario", "guided", "--vehicle", "bike", "--data-dir", str(tmp_path),
         "--out", str(out), "--duration", "150", "--rate", "50"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "predicted" in done.stdout and "prediction error" in done.stdout
    assert store.list_runs("bike") == runs_before
    # the street session already filled cruise cells: the operator starts elsewhere
    first = done.stdout.splitlines()[1]
    assert "idle in neutral" not in first


def test_plan_for_a_new_vehicle_is_the_opening_plan(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "plan", "--vehicle", "newbike", "--data-dir", str(tmp_path), "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["opening"] is True and data["runs"] == 0
    kinds = [s["test_type"] for s in data["suggestions"]]
    assert kinds[0] in ("idle_low_map", "wot_pull")
    assert "tip_in" not in kinds
    assert data["suggestions"][0]["expected_hits"]
    assert data["prediction_errors_by_type"] == []
    text = subprocess.run(
        [*CLI, "plan", "--vehicle", "newbike", "--data-dir", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert text.returncode == 0
    assert text.stdout.startswith("vehicle newbike has no runs yet: opening plan")
    assert np.isfinite(data["covered_pct"])
