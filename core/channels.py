"""Canonical channel names, their units, and unit conversions.

Every source (driver, simulator, importer) maps what it reads onto these names
before a sample leaves it, so the engine, the grid, the recorder and the UI only
ever see one vocabulary. Lambda is the canonical mixture channel; AFR is derived
from it with a configurable stoichiometric ratio (fuel dependent), because a
wideband measures lambda and only displays AFR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

STOICH_GASOLINE = 14.7
"""Stoichiometric AFR of pump gasoline; the default for AFR display."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One canonical channel."""

    name: str
    """Canonical name, snake_case with the unit as suffix where it has one."""
    unit: str
    """Unit shown to the user."""
    label: str
    """Short human label for gauges and tables."""
    stale_s: float
    """A held value older than this is NaN in fused rows (zero-order hold limit)."""
    lo: float
    """Lowest physically plausible value (for sanity checks and gauge scales)."""
    hi: float
    """Highest physically plausible value."""


def _c(name: str, unit: str, label: str, stale_s: float, lo: float, hi: float) -> Channel:
    return Channel(name, unit, label, stale_s, lo, hi)


CHANNELS: dict[str, Channel] = {
    c.name: c
    for c in (
        _c("rpm", "rpm", "RPM", 0.5, 0.0, 20000.0),
        _c("map_kpa", "kPa", "MAP", 0.5, 0.0, 400.0),
        _c("tps_pct", "%", "TPS", 0.5, 0.0, 100.0),
        _c("lambda", "λ", "Lambda", 0.5, 0.5, 2.0),
        _c("lambda_front", "λ", "λ front", 0.5, 0.5, 2.0),
        _c("lambda_rear", "λ", "λ rear", 0.5, 0.5, 2.0),
        _c("fuel_trim_pct", "%", "Fuel trim", 0.5, -50.0, 50.0),
        _c("afr", "AFR", "AFR", 0.5, 7.0, 25.0),
        _c("lambda_target", "λ", "λ target", 2.0, 0.5, 2.0),
        _c("afr_target", "AFR", "AFR target", 2.0, 7.0, 25.0),
        _c("knock_count", "count", "Knock", 1.0, 0.0, 1e6),
        _c("knock_retard_deg", "deg", "Knock retard", 1.0, 0.0, 30.0),
        _c("iat_c", "°C", "IAT", 5.0, -40.0, 150.0),
        _c("clt_c", "°C", "CLT", 5.0, -40.0, 150.0),
        _c("spark_deg", "deg", "Advance", 0.5, -20.0, 60.0),
        _c("power_hp", "hp", "Power", 0.5, 0.0, 2000.0),
        _c("torque_nm", "N·m", "Torque", 0.5, -200.0, 3000.0),
        _c("drum_speed_kph", "km/h", "Drum", 0.5, 0.0, 400.0),
        _c("vehicle_speed_kph", "km/h", "Speed", 1.0, 0.0, 400.0),
        _c("baro_kpa", "kPa", "Baro", 10.0, 50.0, 110.0),
        _c("humidity_pct", "%", "Humidity", 10.0, 0.0, 100.0),
        _c("ambient_c", "°C", "Ambient", 10.0, -40.0, 60.0),
        _c("batt_v", "V", "Battery", 5.0, 0.0, 20.0),
        _c("egt_c", "°C", "EGT", 1.0, 0.0, 1200.0),
        _c("o2_pct", "%", "O2", 1.0, -35.0, 35.0),
        _c("ve_pct", "%", "VE", 0.5, 0.0, 250.0),
        _c("pw_ms", "ms", "Pulse width", 0.5, 0.0, 50.0),
        _c("accel_enrich_pct", "%", "Accel enrich", 0.5, 0.0, 500.0),
        _c("dfco", "flag", "Fuel cut", 0.5, 0.0, 1.0),
        _c("gear", "", "Gear", 2.0, 0.0, 10.0),
        _c("maf_gs", "g/s", "MAF", 0.5, 0.0, 700.0),
        _c("load_pct", "%", "Load", 0.5, 0.0, 100.0),
        _c("stft_pct", "%", "STFT", 1.0, -100.0, 100.0),
        _c("ltft_pct", "%", "LTFT", 10.0, -100.0, 100.0),
    )
}
"""All canonical channels by name. Anything else a source reads is not canonical."""

MIXTURE_CHANNELS = ("lambda", "afr")
"""Channels measured by the wideband, shifted back by the lambda transport delay."""

CYLINDER_LAMBDA = {"front": "lambda_front", "rear": "lambda_rear"}
"""Per-cylinder wideband channels of a twin (one sensor per header, or the ECU's two O2s).

``fuel_trim_pct`` is the ECU's closed-loop correction, + = adding fuel; NaN or absent
when the loop is open. VE correction multiplies measured / target lambda by (1 + trim).
"""


def is_canonical(name: str) -> bool:
    return name in CHANNELS


FloatArray = npt.NDArray[np.float64]


def lambda_from_afr(afr: FloatArray | float, stoich: float = STOICH_GASOLINE) -> FloatArray:
    return np.asarray(afr, dtype=np.float64) / stoich


def afr_from_lambda(lam: FloatArray | float, stoich: float = STOICH_GASOLINE) -> FloatArray:
    return np.asarray(lam, dtype=np.float64) * stoich


def kpa_from_psi(psi: FloatArray | float) -> FloatArray:
    return np.asarray(psi, dtype=np.float64) * 6.894757293168361


def kpa_from_bar(bar: FloatArray | float) -> FloatArray:
    return np.asarray(bar, dtype=np.float64) * 100.0


def kpa_from_inhg(inhg: FloatArray | float) -> FloatArray:
    return np.asarray(inhg, dtype=np.float64) * 3.386388640341


def c_from_f(deg_f: FloatArray | float) -> FloatArray:
    return (np.asarray(deg_f, dtype=np.float64) - 32.0) * (5.0 / 9.0)


def c_from_k(kelvin: FloatArray | float) -> FloatArray:
    return np.asarray(kelvin, dtype=np.float64) - 273.15


def nm_from_lbft(lbft: FloatArray | float) -> FloatArray:
    return np.asarray(lbft, dtype=np.float64) * 1.3558179483314004


W_PER_HP = 745.699872
"""Mechanical horsepower (550 ft·lbf/s), the hp the project shows everywhere."""


def hp_from_kw(kw: FloatArray | float) -> FloatArray:
    return np.asarray(kw, dtype=np.float64) * (1000.0 / W_PER_HP)


def kph_from_mph(mph: FloatArray | float) -> FloatArray:
    return np.asarray(mph, dtype=np.float64) * 1.609344


def power_hp_from_torque(torque_nm: FloatArray | float, rpm: FloatArray | float) -> FloatArray:
    """Mechanical power from torque and speed: P[W] = T[N·m] · ω[rad/s]."""
    watts = np.asarray(torque_nm, dtype=np.float64) * np.asarray(rpm, dtype=np.float64)
    return watts * (2.0 * np.pi / 60.0) / W_PER_HP
