"""Vehicle presets and the engine's tables (true VE, the ECU's VE, targets, spark).

The simulator needs two VE tables because tuning is the act of making the ECU's
table match the engine: the *true* VE is what the engine breathes, the ECU's VE is
what the ECU believes, and the measured lambda moves by their ratio. The ECU's
error is a smooth, seeded field of a few percent (a real base map is wrong in broad
hills and valleys, not cell-to-cell noise). Spark is a near-MBT table that is a few
degrees past the knock limit in the high-MAP midrange, so a default run shows knock
where a tuner expects it.

All tables live on one uniform model grid (rpm x MAP) so the stepping loop can
find the cell once per step and interpolate every table with the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


class SimParamError(ValueError):
    """A bad simulator parameter (vehicle, scenario, rate, duration). Message is for people."""


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One engine on one dyno; every figure is the engine as it really is."""

    name: str
    description: str
    displacement_l: float
    idle_rpm: float
    redline_rpm: float
    rev_limit_rpm: float
    imep_per_ve_kpa: float
    """Gross indicated mean effective pressure at 100 % VE, 100 kPa MAP, best mixture."""
    fmep_kpa: tuple[float, float, float]
    """Friction MEP = a + b * krpm + c * krpm^2 (Chen-Flynn form without the pressure term)."""
    engine_inertia_kgm2: float
    """Crank, flywheel and clutch alone (neutral)."""
    coupled_inertia_kgm2: float
    """Engine + wheel + drum referred to the crank in the dyno gear (sets the pull rate)."""
    overall_ratio: float
    """Engine revolutions per wheel revolution in the dyno gear."""
    wheel_radius_m: float
    throttle_area_max: float
    """Throttle effective area at WOT, in units where the engine pump term is krpm x VE."""
    idle_air_area: float
    """Idle bypass area that holds idle speed when warm (the idle controller trims it)."""
    ve_peak: float
    ve_peak_rpm: float
    spark_idle_deg: float
    spark_rise_deg: float
    """Extra advance gained from idle to the top of the advance ramp (at WOT)."""
    spark_light_load_deg: float
    """Extra advance at zero MAP over WOT (light load burns slowly)."""
    knock_dip_deg: float
    """How far the knock limit drops below the WOT limit at the midrange knock peak."""
    knock_peak_rpm: float
    rated_power_kw: float
    baro_kpa: float = 100.8
    ambient_c: float = 25.0
    cylinder_split_pct: float = 0.0
    """Front/rear true VE difference of a twin, % (0 = cylinders alike); see sim.ecu."""


VEHICLES: dict[str, Vehicle] = {
    "vtwin": Vehicle(
        name="vtwin",
        description="1.87 L 45-degree V-twin, idle 950, redline 5800 (bike on a drum dyno)",
        displacement_l=1.87,
        idle_rpm=950.0,
        redline_rpm=5800.0,
        rev_limit_rpm=6000.0,
        imep_per_ve_kpa=1420.0,
        fmep_kpa=(97.0, 15.0, 3.0),
        engine_inertia_kgm2=0.12,
        coupled_inertia_kgm2=3.0,
        overall_ratio=4.4,
        wheel_radius_m=0.33,
        throttle_area_max=230.0,
        idle_air_area=0.42,
        ve_peak=0.93,
        ve_peak_rpm=3200.0,
        spark_idle_deg=12.0,
        spark_rise_deg=17.0,
        spark_light_load_deg=13.0,
        knock_dip_deg=4.5,
        knock_peak_rpm=3500.0,
        rated_power_kw=75.0,
        cylinder_split_pct=4.0,
    ),
    "car": Vehicle(
        name="car",
        description="2.0 L inline four, idle 800, redline 7000 (car on a hub/drum dyno)",
        displacement_l=2.0,
        idle_rpm=800.0,
        redline_rpm=7000.0,
        rev_limit_rpm=7200.0,
        imep_per_ve_kpa=1500.0,
        fmep_kpa=(90.0, 13.0, 2.5),
        engine_inertia_kgm2=0.15,
        coupled_inertia_kgm2=2.6,
        overall_ratio=4.1,
        wheel_radius_m=0.31,
        throttle_area_max=330.0,
        idle_air_area=0.36,
        ve_peak=0.98,
        ve_peak_rpm=4800.0,
        spark_idle_deg=14.0,
        spark_rise_deg=20.0,
        spark_light_load_deg=14.0,
        knock_dip_deg=4.0,
        knock_peak_rpm=3600.0,
        rated_power_kw=120.0,
    ),
}
"""Vehicle presets by name; ``vtwin`` is the default."""


def get_vehicle(name: str) -> Vehicle:
    try:
        return VEHICLES[name or "vtwin"]
    except KeyError:
        known = ", ".join(VEHICLES)
        raise SimParamError(f"unknown vehicle {name!r}; choose one of: {known}") from None


MODEL_RPM_MIN = 500.0
"""The engine tables' first rpm (:func:`build_tables`): the lowest rpm the model knows."""
MODEL_MAP_MIN_KPA = 10.0
"""The engine tables' first MAP (:func:`build_tables`)."""


def max_map_kpa(vehicle: Vehicle) -> float:
    """The highest MAP ``vehicle`` reaches: the barometer.

    Every preset is naturally aspirated: the model's manifold fills through the
    throttle from the atmosphere (``sim.model.map_steady_kpa``), so MAP never passes
    ``baro_kpa``. A boosted preset would raise this.
    """
    return vehicle.baro_kpa


@dataclass(frozen=True, slots=True)
class EngineTables:
    """All tables on one uniform grid, shape [n_map, n_rpm].

    Attributes:
        rpm_axis: Uniform rpm breakpoints.
        map_axis_kpa: Uniform MAP breakpoints.
        ve_true: What the engine really breathes (fraction, 1.0 = 100 %).
        ve_ecu: What the ECU believes (fraction); differs by a smooth seeded error.
        lambda_target: ECU target lambda.
        spark_deg: ECU spark table (before knock retard).
        mbt_deg: Minimum advance for best torque (the engine's optimum).
        knock_limit_deg: Knock-limited advance at 30 degC intake air.
    """

    rpm_axis: F64
    map_axis_kpa: F64
    ve_true: F64
    ve_ecu: F64
    lambda_target: F64
    spark_deg: F64
    mbt_deg: F64
    knock_limit_deg: F64
    ve_true_front: F64 | None = None
    """Per-cylinder true VE of a twin (None: the model's cylinders are alike)."""
    ve_true_rear: F64 | None = None
    ve_ecu_front: F64 | None = None
    """The ECU's per-cylinder VE when it runs a tune with front/rear tables."""
    ve_ecu_rear: F64 | None = None

    def ve_error_ratio(self) -> F64:
        """True VE / ECU VE per grid point: >1 means the engine runs lean there."""
        return self.ve_true / self.ve_ecu


def _ramp(x: F64) -> F64:
    return np.clip(x, 0.0, 1.0)


def true_ve(vehicle: Vehicle, rpm: F64, map_kpa: F64) -> F64:
    """The engine's volumetric efficiency: a torque-peak hump, a tuning ripple, load falloff."""
    span_lo = vehicle.ve_peak_rpm - 300.0
    span_hi = vehicle.rev_limit_rpm + 1500.0 - vehicle.ve_peak_rpm
    d = rpm - vehicle.ve_peak_rpm
    shape = np.where(d < 0, 1.0 - 0.32 * (d / span_lo) ** 2, 1.0 - 0.30 * (d / span_hi) ** 2)
    ripple = 0.025 * np.sin(2.0 * np.pi * (rpm - 1200.0) / 2600.0)
    # Residual gas: during valve overlap exhaust at ~baro flows back into a manifold at
    # MAP, so the fresh charge shrinks as baro / MAP grows (strongly at closed throttle).
    residual = 1.0 - 0.08 * (100.0 / np.clip(map_kpa, 5.0, 200.0) - 1.0)
    load = np.clip(residual, 0.1, 1.02)
    return np.clip(vehicle.ve_peak * (shape + ripple) * load, 0.2, 1.2)


def ecu_error_field(rpm_norm: F64, map_norm: F64, seed: int, max_error: float = 0.08) -> F64:
    """A smooth seeded relative error field (a few broad hills), peak magnitude ``max_error``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEC0]))
    field = np.zeros(np.broadcast(rpm_norm, map_norm).shape)
    for _ in range(5):
        fr, fm = rng.uniform(0.3, 1.4, size=2)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        amp = rng.uniform(0.5, 1.0)
        field += amp * np.cos(2.0 * np.pi * (fr * rpm_norm + fm * map_norm) + phase)
    peak = float(np.max(np.abs(field)))
    return field * (max_error / peak) if peak > 0 else field


def build_tables(vehicle: Vehicle, seed: int, max_error: float = 0.08) -> EngineTables:
    """Build every table for ``vehicle``; only the ECU's VE error depends on ``seed``.

    ``max_error`` is the peak relative error of the ECU's VE (0.08 = 8 %).
    """
    rpm_axis = np.arange(MODEL_RPM_MIN, vehicle.rev_limit_rpm + 501.0, 250.0)
    map_axis = np.arange(MODEL_MAP_MIN_KPA, 111.0, 5.0)
    rpm, map_kpa = np.meshgrid(rpm_axis, map_axis)
    ve = true_ve(vehicle, rpm, map_kpa)
    rpm_norm = (rpm - rpm_axis[0]) / (rpm_axis[-1] - rpm_axis[0])
    map_norm = (map_kpa - map_axis[0]) / (map_axis[-1] - map_axis[0])
    ve_ecu = ve / (1.0 + ecu_error_field(rpm_norm, map_norm, seed, max_error))

    afr_target = (
        14.5
        - 1.5 * _ramp((map_kpa - 60.0) / 30.0)
        - 0.2 * _ramp((map_kpa - 85.0) / 15.0) * _ramp((rpm - 4000.0) / 1000.0)
    )
    lambda_target = afr_target / 14.7

    load = np.clip(map_kpa / 100.0, 0.0, 1.1)
    ramp = _ramp((rpm - vehicle.idle_rpm) / 2300.0)
    mbt = (
        vehicle.spark_idle_deg
        + vehicle.spark_rise_deg * ramp
        + vehicle.spark_light_load_deg * (1.0 - load)
    )
    # The tune runs 1 degree short of MBT, and retards idle for stability (ECUs do:
    # idle speed then has torque in reserve, which is also why idle MAP sits near 33 kPa).
    idle_zone = _ramp(1.0 - (rpm - vehicle.idle_rpm) / 800.0) * _ramp((60.0 - map_kpa) / 20.0)
    spark = mbt - 1.0 - 10.0 * idle_zone
    bump = np.exp(-(((rpm - vehicle.knock_peak_rpm) / 1000.0) ** 2))
    knock_limit = mbt + 18.0 * (0.95 - load) - vehicle.knock_dip_deg * bump
    return EngineTables(rpm_axis, map_axis, ve, ve_ecu, lambda_target, spark, mbt, knock_limit)
