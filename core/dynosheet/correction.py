"""Weather correction of a dyno pull: SAE J1349 and STD (SAE J607), and what they used.

Split out of the dyno sheet: the correction is a pure function of baro, intake
temperature and humidity, with its own published formulas and references (see
the package docstring), so it is testable and citable on its own. A missing
input is never silently assumed: the :class:`Correction` carries a note saying
which input was missing and what was used instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CORRECTIONS = ("sae", "std", "none")
CORRECTION_NAMES = {"sae": "SAE J1349", "std": "STD (SAE J607)", "none": "uncorrected"}


def saturation_kpa(temp_c: float) -> float:
    """Saturation vapour pressure of water over liquid (Buck 1996), kPa."""
    return 0.61121 * math.exp((18.678 - temp_c / 234.5) * (temp_c / (257.14 + temp_c)))


def sae_j1349_factor(dry_kpa: float, temp_c: float) -> float:
    return 1.18 * (99.0 / dry_kpa) * math.sqrt((temp_c + 273.0) / 298.0) - 0.18


def std_factor(dry_kpa: float, temp_c: float) -> float:
    return (101.325 / dry_kpa) * math.sqrt((temp_c + 273.15) / 288.7)


def rounded(value: float | None, digits: int) -> float | None:
    """``value`` rounded for JSON, None when missing or not finite."""
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


@dataclass(frozen=True, slots=True)
class Correction:
    """The weather correction applied to one pull and what it was computed from."""

    method: str
    """``sae``, ``std`` or ``none``."""
    factor: float
    """Multiplies observed power and torque."""
    sae_factor: float | None
    std_factor: float | None
    baro_kpa: float | None
    air_temp_c: float | None
    humidity_pct: float | None
    vapour_kpa: float | None
    note: str
    """Which inputs were missing or assumed."""

    @property
    def name(self) -> str:
        return CORRECTION_NAMES[self.method]

    def describe(self) -> str:
        if self.method == "none" or self.baro_kpa is None:
            return f"uncorrected ({self.note})" if self.note else "uncorrected"
        rh = "dry air" if self.humidity_pct is None else f"{self.humidity_pct:.0f}% RH"
        temp = "" if self.air_temp_c is None else f", {self.air_temp_c:.1f} °C"
        note = f"; {self.note}" if self.note else ""
        return f"{self.name} CF {self.factor:.3f} from {self.baro_kpa:.1f} kPa{temp}, {rh}{note}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "factor": round(self.factor, 4),
            "sae_j1349_factor": rounded(self.sae_factor, 4),
            "std_factor": rounded(self.std_factor, 4),
            "inputs": {
                "baro_kpa": rounded(self.baro_kpa, 2),
                "air_temp_c": rounded(self.air_temp_c, 2),
                "humidity_pct": rounded(self.humidity_pct, 1),
                "vapour_kpa": rounded(self.vapour_kpa, 3),
            },
            "note": self.note,
        }


def correction_for(
    method: str,
    baro_kpa: float | None,
    air_temp_c: float | None,
    humidity_pct: float | None,
) -> Correction:
    """The correction for these conditions (NaN / None inputs are said to be missing)."""
    baro = baro_kpa if baro_kpa is not None and math.isfinite(baro_kpa) else None
    temp = air_temp_c if air_temp_c is not None and math.isfinite(air_temp_c) else None
    rh = humidity_pct if humidity_pct is not None and math.isfinite(humidity_pct) else None
    if baro is None:
        return Correction("none", 1.0, None, None, None, temp, rh, None, "no baro logged")
    notes = []
    if temp is None:
        notes.append("no intake temperature logged: 25 °C assumed")
        temp = 25.0
    if rh is None:
        notes.append("no humidity logged")
    vapour = (rh or 0.0) / 100.0 * saturation_kpa(temp)
    dry = baro - vapour
    sae, std = sae_j1349_factor(dry, temp), std_factor(dry, temp)
    factor = {"sae": sae, "std": std, "none": 1.0}[method]
    return Correction(method, factor, sae, std, baro, temp, rh, vapour, "; ".join(notes))
