"""Small pure sub-models of the simulator: table lookup, mixture and loss curves, constants.

Kept apart from :mod:`sim.model` so the stepping loop reads as the physics it runs,
and so the constants of the sub-models (wall film, accel enrichment, knock, dyno)
are one typed place to look up or change.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.vehicles import EngineTables


@dataclass(frozen=True, slots=True)
class ModelTuning:
    """Constants of the sub-models that are not a property of one vehicle."""

    throttle_rate_pct_s: float = 600.0
    operator_gain_pct_s_per_kpa: float = 2.0
    film_fraction: float = 0.12
    """Share of injected fuel that lands on the port wall at WOT (scales with MAP)."""
    film_tau_s: float = 0.15
    wideband_tau_s: float = 0.06
    """Sensor response (first order) on top of the transport delay."""
    ae_threshold_kpa_s: float = 30.0
    ae_gain_pct_per_kpa_s: float = 0.045
    ae_max_pct: float = 60.0
    ae_tau_s: float = 0.35
    dfco_on_rpm: float = 1500.0
    dfco_off_rpm: float = 1300.0
    knock_rate_per_deg_hz: float = 0.8
    knock_rate_per_deg2_hz: float = 0.4
    knock_step_deg: float = 2.0
    knock_max_retard_deg: float = 10.0
    knock_decay_deg_s: float = 1.0
    knock_iat_deg_per_c: float = 0.15
    dyno_tau_s: float = 0.15
    absorber_max_nm: float = 800.0
    accessory_nm: float = 2.0


def mixture_efficiency(lam: float) -> float:
    """Torque per unit air vs lambda: best near 0.88, falling off lean faster than rich."""
    d = lam - 0.88
    eff = 1.0 - (0.6 if d < 0.0 else 1.3) * d * d
    return max(eff, 0.0)


def drum_drag_nm(rpm: float) -> float:
    """Tyre rolling loss and drum windage referred to the crank."""
    krpm = rpm / 1000.0
    return 3.0 + 0.35 * krpm * krpm


class Grid:
    """Bilinear lookup on the uniform model grid with plain floats (fast in a scalar loop)."""

    def __init__(self, tables: EngineTables) -> None:
        r, m = tables.rpm_axis, tables.map_axis_kpa
        self.r0, self.dr, self.nr = float(r[0]), float(r[1] - r[0]), r.size
        self.m0, self.dm, self.nm = float(m[0]), float(m[1] - m[0]), m.size
        self.ve_true = tables.ve_true.tolist()
        self.ve_ecu = tables.ve_ecu.tolist()
        self.lam_t = tables.lambda_target.tolist()
        self.spark = tables.spark_deg.tolist()
        self.mbt = tables.mbt_deg.tolist()
        self.klim = tables.knock_limit_deg.tolist()

    def locate(self, rpm: float, map_kpa: float) -> tuple[int, int, float, float]:
        x = min(max((rpm - self.r0) / self.dr, 0.0), self.nr - 1.000001)
        y = min(max((map_kpa - self.m0) / self.dm, 0.0), self.nm - 1.000001)
        i, j = int(x), int(y)
        return i, j, x - i, y - j

    @staticmethod
    def interp(table: list[list[float]], cell: tuple[int, int, float, float]) -> float:
        i, j, fx, fy = cell
        row0, row1 = table[j], table[j + 1]
        a = row0[i] + (row0[i + 1] - row0[i]) * fx
        b = row1[i] + (row1[i + 1] - row1[i]) * fx
        return a + (b - a) * fy

    def lookup(self, table: list[list[float]], rpm: float, map_kpa: float) -> float:
        return self.interp(table, self.locate(rpm, map_kpa))
