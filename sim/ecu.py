"""The simulated ECU's tune, and the truth it hides, on real ECU axes.

By default the simulator's ECU fuels from its own fine model grid (see
:mod:`sim.vehicles`). Given a :class:`core.tune.Tune` it fuels from that tune's VE
and target tables the way a real ECU does: bilinear interpolation between the
tune's breakpoints. The tune is sampled onto the model grid once; when its
breakpoints lie on the model grid (multiples of 250 rpm and 5 kPa, as the default
axes do) that is exact, because a bilinear table sampled at finer grid lines and
interpolated again is the same surface.

V-twin: the front and rear cylinders breathe differently (exhaust scavenging and
header length; the reference sessions saw ~2 % overall and up to ~1 AFR in the
midrange). The model's stepping loop runs on the mean cylinder; each cylinder's
lambda is the mean lambda times (its true VE / its ECU VE) / (mean true / mean ECU),
which in steady state is exactly air / fuel of that cylinder. A base tune for the
twin carries two identical VE tables, as a kit map does: it knows nothing of the
imbalance, the widebands find it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.coverage.axes import TableAxes
from core.tune import Table, Tune
from sim.vehicles import F64, EngineTables, Vehicle, build_tables, get_vehicle


def cylinder_split(vehicle: Vehicle, rpm: F64, map_kpa: F64) -> F64:
    """(front - rear) / mean true VE: a base difference plus a midrange part-load hump."""
    if vehicle.cylinder_split_pct <= 0.0:
        return np.zeros(np.broadcast(rpm, map_kpa).shape)
    hump = np.exp(-(((rpm - 3000.0) / 900.0) ** 2) - ((map_kpa - 70.0) / 20.0) ** 2)
    out: F64 = vehicle.cylinder_split_pct / 100.0 * (0.5 + hump)
    return out


def _model_points(tables: EngineTables) -> tuple[F64, F64]:
    rpm, map_kpa = np.meshgrid(tables.rpm_axis, tables.map_axis_kpa)
    return rpm, map_kpa


def with_cylinders(vehicle: Vehicle, tables: EngineTables) -> EngineTables:
    """Tables with per-cylinder true VE (front/rear) for a twin; unchanged otherwise."""
    if vehicle.cylinder_split_pct <= 0.0:
        return tables
    rpm, map_kpa = _model_points(tables)
    d = cylinder_split(vehicle, rpm, map_kpa)
    return replace(
        tables,
        ve_true_front=tables.ve_true * (1.0 + d / 2.0),
        ve_true_rear=tables.ve_true * (1.0 - d / 2.0),
    )


def apply_tune(vehicle: Vehicle, tables: EngineTables, tune: Tune) -> EngineTables:
    """The ECU now fuels from ``tune``: VE (front/rear on a twin) and, if given, targets."""
    tables = with_cylinders(vehicle, tables)
    rpm, map_kpa = _model_points(tables)
    front = tune.ve.at(rpm, map_kpa) / 100.0
    rear = tune.ve_rear.at(rpm, map_kpa) / 100.0 if tune.ve_rear is not None else front
    target = (
        tune.target_lambda.at(rpm, map_kpa)
        if tune.target_lambda is not None
        else tables.lambda_target
    )
    spark = tune.spark.at(rpm, map_kpa) if tune.spark is not None else tables.spark_deg
    twin = tables.ve_true_front is not None
    return replace(
        tables,
        ve_ecu=(front + rear) / 2.0 if twin else front,
        lambda_target=target,
        spark_deg=spark,
        ve_ecu_front=front if twin else None,
        ve_ecu_rear=rear if twin else None,
    )


def true_ve_tables(vehicle: Vehicle, axes: TableAxes) -> dict[str, Table]:
    """The engine's real VE (percent) at ``axes``' breakpoints: {"ve"} or {"ve", "ve_rear"}.

    Looked up on the model grid exactly as the engine breathes in the simulation.
    """
    tables = with_cylinders(vehicle, build_tables(vehicle, 0))
    rpm, map_kpa = np.meshgrid(axes.rpm, axes.map_kpa)
    if tables.ve_true_front is None or tables.ve_true_rear is None:
        return {
            "ve": Table(axes, 100.0 * model_lookup(tables, tables.ve_true, rpm, map_kpa), "true")
        }
    return {
        "ve": Table(
            axes, 100.0 * model_lookup(tables, tables.ve_true_front, rpm, map_kpa), "true front"
        ),
        "ve_rear": Table(
            axes, 100.0 * model_lookup(tables, tables.ve_true_rear, rpm, map_kpa), "true rear"
        ),
    }


def base_tune(
    vehicle: Vehicle | str, seed: int = 1, axes: TableAxes | None = None, ve_error_pct: float = 10.0
) -> Tune:
    """The simulated ECU's base tune on ``axes`` (default: the product's default axes).

    VE is the model's seeded ECU error field (peak ``ve_error_pct``, broad hills and
    valleys like a real kit map) sampled at the breakpoints; targets are the model's.
    A twin gets two identical VE tables (front, rear).
    """
    v = get_vehicle(vehicle) if isinstance(vehicle, str) else vehicle
    ax = axes if axes is not None else TableAxes.default()
    tables = build_tables(v, seed, max_error=ve_error_pct / 100.0)
    rpm, map_kpa = np.meshgrid(ax.rpm, ax.map_kpa)
    ve = Table(
        ax, np.round(100.0 * model_lookup(tables, tables.ve_ecu, rpm, map_kpa), 1), "veTable1"
    )
    target = Table(
        ax, np.round(model_lookup(tables, tables.lambda_target, rpm, map_kpa), 3), "afrTable1"
    )
    spark = Table(
        ax, np.round(model_lookup(tables, tables.spark_deg, rpm, map_kpa), 1), "advanceTable1"
    )
    rear = ve if v.cylinder_split_pct > 0.0 else None
    return Tune(
        ve=ve,
        ve_rear=rear,
        target_lambda=target,
        spark=spark,
        source=f"simulated {v.name} ECU, seed {seed}",
    )


def model_lookup(tables: EngineTables, table: F64, rpm: F64, map_kpa: F64) -> F64:
    """Vectorised bilinear lookup on the model grid, identical to the stepping loop's."""
    r0, dr = float(tables.rpm_axis[0]), float(tables.rpm_axis[1] - tables.rpm_axis[0])
    m0, dm = float(tables.map_axis_kpa[0]), float(tables.map_axis_kpa[1] - tables.map_axis_kpa[0])
    nr, nm = tables.rpm_axis.size, tables.map_axis_kpa.size
    x = np.clip((np.asarray(rpm) - r0) / dr, 0.0, nr - 1.000001)
    y = np.clip((np.asarray(map_kpa) - m0) / dm, 0.0, nm - 1.000001)
    i, j = x.astype(np.int64), y.astype(np.int64)
    fx, fy = x - i, y - j
    a = table[j, i] + (table[j, i + 1] - table[j, i]) * fx
    b = table[j + 1, i] + (table[j + 1, i + 1] - table[j + 1, i]) * fx
    out: F64 = a + (b - a) * fy
    return out


def cylinder_factors(tables: EngineTables, rpm: F64, map_kpa: F64) -> tuple[F64, F64] | None:
    """Per-sample (front, rear) lambda multipliers relative to the mean cylinder, or None."""
    tf, tr = tables.ve_true_front, tables.ve_true_rear
    ef, er = tables.ve_ecu_front, tables.ve_ecu_rear
    if tf is None or tr is None or ef is None or er is None:
        return None
    mean = model_lookup(tables, tables.ve_true, rpm, map_kpa) / model_lookup(
        tables, tables.ve_ecu, rpm, map_kpa
    )
    front = model_lookup(tables, tf, rpm, map_kpa) / model_lookup(tables, ef, rpm, map_kpa)
    rear = model_lookup(tables, tr, rpm, map_kpa) / model_lookup(tables, er, rpm, map_kpa)
    return front / mean, rear / mean


__all__ = [
    "apply_tune",
    "base_tune",
    "cylinder_factors",
    "cylinder_split",
    "model_lookup",
    "true_ve_tables",
    "with_cylinders",
]
