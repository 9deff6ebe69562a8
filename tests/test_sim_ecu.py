"""The simulated ECU runs a tune; it can write its base tune and the true VE it hides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from core.frames import concat
from core.tune import parse_table_text, read_tune
from sim.ecu import base_tune, true_ve_tables
from sim.scenarios import SteadyHold
from sim.simulation import SIM_CHANNELS
from sim.source import generate, run_segments
from sim.vehicles import get_vehicle


def _steady_ratio(block_columns: dict[str, np.ndarray], name: str, t0: int) -> float:
    c = block_columns
    return float(np.median((c[name] / c["lambda_target"])[t0:]))


def test_base_tune_is_off_the_truth_in_places_and_twin_has_two_tables() -> None:
    tune = base_tune("vtwin", seed=4)
    truth = true_ve_tables(get_vehicle("vtwin"), tune.axes)
    assert tune.ve_rear is not None and set(truth) == {"ve", "ve_rear"}
    off = np.abs(tune.ve.values / truth["ve"].values - 1.0)
    assert 0.05 <= off.max() <= 0.15
    assert np.mean(off > 0.02) > 0.3  # broad hills and valleys, not a few cells
    car = base_tune("car", seed=4)
    assert car.ve_rear is None


def test_each_cylinder_reads_its_own_true_over_ecu_ratio() -> None:
    tune = base_tune("vtwin", seed=2)
    truth = true_ve_tables(get_vehicle("vtwin"), tune.axes)
    # Hold 3000 rpm at 70 kPa: both are breakpoints of the default axes.
    blocks = run_segments([SteadyHold(3000.0, (70.0,), hold_s=8.0)], seed=2, tune=tune)
    c = concat(list(blocks)).columns
    assert {"lambda_front", "lambda_rear"} <= set(c)
    m, r = list(tune.axes.map_kpa).index(70.0), list(tune.axes.rpm).index(3000.0)
    t0 = len(c["rpm"]) - 500  # the last 5 s of the hold, 1.5 s release excluded below
    sel = slice(t0 - 150, len(c["rpm"]) - 150)
    for name, key in (("lambda_front", "ve"), ("lambda_rear", "ve_rear")):
        expected = truth[key].values[m, r] / tune.ve_tables()[key].values[m, r]
        measured = float(np.median((c[name] / c["lambda_target"])[sel]))
        assert abs(measured / expected - 1.0) < 0.006, (name, measured, expected)
    # The front/rear difference is the modelled imbalance (several percent at 3000/70).
    assert np.median(c["lambda_front"][sel] / c["lambda_rear"][sel]) > 1.03


def test_without_a_tune_the_simulator_is_unchanged() -> None:
    block = next(generate("vtwin", "pulls", seed=1, duration_s=2.0))
    assert tuple(block.columns) == SIM_CHANNELS


def test_cli_writes_tune_and_truth_and_runs_on_a_tune(tmp_path: Path) -> None:
    def dynoai(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dynoai_tui.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = dynoai("sim", "--write-tune", "base.msq", "--write-true-ve", "true.csv", "--seed", "5")
    assert done.returncode == 0, done.stderr
    tune = read_tune(tmp_path / "base.msq")
    np.testing.assert_allclose(tune.ve.values, base_tune("vtwin", seed=5).ve.values)
    truth = parse_table_text((tmp_path / "true.csv").read_text())
    assert truth.axes == tune.axes
    assert (tmp_path / "true-rear.csv").exists()
    done = dynoai("sim", "--tune", "base.msq", "--out", "run.dynolog", "--duration", "5")
    assert done.returncode == 0, done.stderr
    bad = dynoai("sim", "--tune", "missing.msq", "--out", "x.dynolog", "--duration", "5")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "dynoai: error: missing.msq: no such file"
    again = dynoai("sim", "--write-tune", "base.msq")
    assert again.returncode == 2 and "--overwrite" in again.stderr
