"""Simulator recordings for the fleet tests and bench: the simulator sets the truth.

``record_sim`` runs a scenario of the built-in simulator and writes it as a
.dynolog the way ``dynoai log`` would (header with axes, delay, stoich, run id and
an optional session record). ``transform`` lets a test change what the
instruments read (a known lambda drift with IAT), and ``widebands`` adds front and
rear wideband sources whose difference is a known per-cell imbalance field.
``pace`` sets the writer's wall clock (the file must not depend on it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.coverage.axes import TableAxes
from core.frames import Block
from core.record import LogHeader, LogWriter
from sim.scenarios import build_scenario
from sim.simulation import DEFAULT_LAMBDA_DELAY_S, Simulation, sim_channel_units
from sim.vehicles import get_vehicle

Transform = Callable[[Block], Block]


def make_sim(
    scenario: str,
    seed: int,
    *,
    vehicle: str = "vtwin",
    tuning: dict[str, float] | None = None,
    duration_s: float | None = None,
) -> Simulation:
    v = get_vehicle(vehicle)
    plan = build_scenario(scenario, v)
    sim = Simulation(v, plan.segments, seed=seed, rate_hz=100.0, loop=duration_s is not None)
    if tuning:
        sim.model.tuning = dataclasses.replace(sim.model.tuning, **tuning)
    if duration_s is not None:
        sim.total_steps = round(duration_s * sim.rate_hz)
    return sim


def record_sim(
    path: Path,
    sim: Simulation,
    *,
    run_id: str,
    record: dict[str, Any] | None = None,
    transform: Transform | None = None,
    widebands: Callable[[Block], tuple[np.ndarray, np.ndarray]] | None = None,
    created_at: float = 1_767_225_600.0,
    pace: str = "machine",
) -> Path:
    sources: dict[str, dict[str, Any]] = {"sim": {"uri": "sim:", "channels": sim_channel_units()}}
    if widebands is not None:
        sources["wbf"] = {"uri": "innovate:/dev/ttyUSB0", "channels": {"lambda": "λ"}}
        sources["wbr"] = {"uri": "innovate:/dev/ttyUSB1", "channels": {"lambda": "λ"}}
    meta: dict[str, Any] = {
        "lambda_delay_ms": DEFAULT_LAMBDA_DELAY_S * 1000.0,
        "stoich": 14.7,
        "hit_target": 10,
        "run_id": run_id,
        "app": "dynoai-tui",
    }
    if record is not None:
        meta["session_record"] = record
    header = LogHeader(
        created_at=created_at,
        vehicle="sim",
        sources=sources,
        axes=TableAxes.default().to_dict(),
        metadata=meta,
    )
    # the writer's clock: "machine" = as fast as this machine simulates, "live" = wall
    # time follows the data as in a live `dynoai log`, "instant" = wall time stands still
    now = [0.0]
    clocks = {"machine": time.monotonic, "live": lambda: now[0], "instant": lambda: 0.0}
    with LogWriter(path, header, clock=clocks[pace]) as writer:
        while (block := sim.next_block(50)) is not None:
            now[0] = float(block.t[-1])
            if transform is not None:
                block = transform(block)
            writer.write_block(block)
            if widebands is not None:
                front, rear = widebands(block)
                writer.write_block(Block("wbf", block.t, {"lambda": front.astype(np.float32)}))
                writer.write_block(Block("wbr", block.t, {"lambda": rear.astype(np.float32)}))
    return path


def scale_ecu_ve(sim: Simulation, factor: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Change what the ECU believes: ``ve_ecu *= factor(rpm, map_kpa)`` on the model grid."""
    from sim.physics import Grid

    t = sim.model.tables
    rpm, map_kpa = np.meshgrid(t.rpm_axis, t.map_axis_kpa)
    sim.model.tables = dataclasses.replace(t, ve_ecu=t.ve_ecu * factor(rpm, map_kpa))
    sim.model._grid = Grid(sim.model.tables)


def truth_at(
    sim: Simulation, table: np.ndarray, rpm: np.ndarray, map_kpa: np.ndarray
) -> np.ndarray:
    """Bilinear value of a model-grid table at points (the truth a pattern is checked against)."""
    t = sim.model.tables
    out = np.empty(len(rpm))
    for k, (r, m) in enumerate(zip(rpm, map_kpa, strict=True)):
        x = np.interp(r, t.rpm_axis, np.arange(t.rpm_axis.size))
        y = np.interp(m, t.map_axis_kpa, np.arange(t.map_axis_kpa.size))
        i, j = min(int(x), t.rpm_axis.size - 2), min(int(y), t.map_axis_kpa.size - 2)
        fx, fy = x - i, y - j
        a = table[j, i] + (table[j, i + 1] - table[j, i]) * fx
        b = table[j + 1, i] + (table[j + 1, i + 1] - table[j + 1, i]) * fx
        out[k] = a + (b - a) * fy
    return out
