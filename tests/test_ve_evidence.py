"""Evidence through the pipeline: trims, tune targets, per-cylinder passes."""

from __future__ import annotations

import numpy as np
import pytest

from core.coverage.axes import TableAxes
from core.frames import Block
from core.tune import Table, Tune
from core.ve import VeSettings
from core.ve.evidence import bin_pass, correct_recordings, cylinder_view
from core.vehicle import VehicleConfig

AXES = TableAxes(np.array([2000.0, 3000.0, 4000.0]), np.array([50.0, 70.0, 90.0]))
CONFIG = VehicleConfig(axes=AXES, lambda_delay_ms=0.0)
UNITS = {
    "rpm": "rpm",
    "map_kpa": "kPa",
    "tps_pct": "%",
    "clt_c": "°C",
    "lambda": "λ",
    "lambda_front": "λ",
    "lambda_rear": "λ",
    "fuel_trim_pct": "%",
}


def hold(seconds: float = 5.0, **columns: float) -> Block:
    n = int(seconds * 100)
    t = np.arange(n) / 100.0
    base = {"rpm": 3000.0, "map_kpa": 70.0, "tps_pct": 30.0, "clt_c": 90.0}
    base.update(columns)
    return Block("ecu", t, {k: np.full(n, v) for k, v in base.items()})


def test_trim_multiplies_and_tune_target_fills_a_missing_target() -> None:
    target = Table(AXES, np.full(AXES.shape, 0.90))
    block = hold(**{"lambda": 0.95, "fuel_trim_pct": 4.0})  # the ECU adds 4 %: still lean
    grids = bin_pass([([("ecu", UNITS)], [block])], CONFIG, AXES, target=target)
    ev = grids.evidence()
    assert ev.ratio[1, 1] == pytest.approx(0.95 * 1.04 / 0.90, rel=1e-6)
    assert ev.hits[1, 1] > 300 and ev.confidence[1, 1] == 1.0


def test_inactive_trim_and_logged_target_win() -> None:
    target = Table(AXES, np.full(AXES.shape, 0.80))
    block = hold(**{"lambda": 0.95, "fuel_trim_pct": np.nan, "lambda_target": 0.95})
    ev = bin_pass([([("ecu", UNITS)], [block])], CONFIG, AXES, target=target).evidence()
    assert ev.ratio[1, 1] == pytest.approx(1.0, rel=1e-6)


def test_cylinder_view_maps_the_sensor_onto_lambda() -> None:
    block = hold(**{"lambda": 0.9, "lambda_front": 0.88, "lambda_rear": 0.92, "afr": 13.2})
    front = cylinder_view(block, "front")
    assert front.columns["lambda"][0] == 0.88
    assert "lambda_front" not in front.columns and "afr" not in front.columns
    both = cylinder_view(block, None)
    assert both.columns["lambda"][0] == 0.9 and "lambda_rear" not in both.columns


def test_twin_tune_gets_one_pass_per_cylinder() -> None:
    ve = Table(AXES, np.full(AXES.shape, 80.0))
    tune = Tune(ve=ve, ve_rear=ve, target_lambda=ve.with_values(np.full(AXES.shape, 0.9)))
    block = hold(**{"lambda": 0.9, "lambda_front": 0.9 * 1.04, "lambda_rear": 0.9 * 0.97})
    result = correct_recordings(tune, [([("ecu", UNITS)], [block])], CONFIG, VeSettings())
    assert result.tables["ve"].ve_new[1, 1] == pytest.approx(83.2)
    assert result.tables["ve_rear"].ve_new[1, 1] == pytest.approx(77.6)
    assert not result.notes
    # Without per-cylinder lambda both tables follow the combined sensor, with a note.
    plain = {k: v for k, v in UNITS.items() if k not in ("lambda_front", "lambda_rear")}
    one = hold(**{"lambda": 0.9 * 1.02})
    result = correct_recordings(tune, [([("ecu", plain)], [one])], CONFIG, VeSettings())
    assert result.tables["ve_rear"].ve_new[1, 1] == pytest.approx(81.6)
    assert "combined lambda" in result.notes[0]


def test_closed_loop_simulator_trims_carry_the_correction() -> None:
    from core.frames import concat
    from sim.ecu import base_tune, true_ve_tables
    from sim.scenarios import SteadyHold
    from sim.simulation import sim_channel_units
    from sim.source import run_segments
    from sim.vehicles import get_vehicle

    tune = base_tune("car", seed=5)
    truth = true_ve_tables(get_vehicle("car"), tune.axes)["ve"].values
    # The rpm column (2000-4500) where the base tune is furthest off at 45-65 kPa.
    rows = [list(tune.axes.map_kpa).index(m) for m in (45.0, 55.0, 65.0)]
    cols = [i for i, rpm in enumerate(tune.axes.rpm) if 2000 <= rpm <= 4500]
    off = np.abs(tune.ve.values / truth - 1.0)
    r = max(cols, key=lambda i: float(off[rows, i].min()))
    rpm = float(tune.axes.rpm[r])
    assert off[rows, r].min() > 0.03
    segs = [SteadyHold(rpm, (45.0, 55.0, 65.0), hold_s=6.0)]
    blocks = list(run_segments(segs, "car", seed=5, tune=tune, closed_loop=True))
    c = concat(blocks).columns
    active = np.isfinite(c["fuel_trim_pct"])
    # The loop pulls lambda onto the target: lambda alone says almost nothing now.
    assert np.median(np.abs(c["lambda"][active] / c["lambda_target"][active] - 1.0)) < 0.01
    assert np.nanmax(np.abs(c["fuel_trim_pct"])) > 2.0
    config = VehicleConfig(kind="car", axes=tune.axes)
    result = correct_recordings(
        tune, [([("sim", sim_channel_units(closed_loop=True))], blocks)], config
    )
    for map_kpa in (45.0, 55.0, 65.0):
        m = list(tune.axes.map_kpa).index(map_kpa)
        t = result.tables["ve"]
        assert t.reason[m, r] == "changed"
        before = abs(t.ve_base[m, r] / truth[m, r] - 1.0)
        after = abs(t.ve_new[m, r] / truth[m, r] - 1.0)
        assert after < 0.01 and after < 0.3 * before, (map_kpa, before, after)
