"""Units in other tools' logs and how each becomes the canonical channel's unit.

Split out of ``mapping``: a conversion is chosen from the unit string alone
(the log's header says what the logger measured), so the unit tables and
:func:`conversion_for` need nothing from the name rules. Each conversion carries
its own words ("psi -> kPa x 6.895") for the import summary. A raw signal unit
(volts, Hz) is refused rather than converted: it is not the quantity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import channels as ch

F64 = ch.FloatArray


@dataclass(frozen=True, slots=True)
class Conversion:
    """How one column becomes a canonical channel: the channel ("" = refused), the function, the words."""

    canonical: str
    fn: Callable[[F64], F64] | None
    text: str


def unit_key(unit: str) -> str:
    u = unit.strip().lower().replace("℃", "degc").replace("℉", "degf")
    u = u.replace("°", "deg").replace("·", "").replace(" ", "")
    if u.startswith("*"):  # MHD writes the degree sign as '*': '*C', '*CRK', '*'
        u = "deg" + u[1:]
    u = u.replace("deg.", "deg")
    return "deg" if u in ("degree", "deg") else u


PRESSURE: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "kpa": (None, ""),
    "kpaa": (None, ""),
    "bar": (ch.kpa_from_bar, "bar -> kPa x 100"),
    "psi": (ch.kpa_from_psi, "psi -> kPa x 6.895"),
    "psia": (ch.kpa_from_psi, "psi -> kPa x 6.895"),
    "inhg": (ch.kpa_from_inhg, "inHg -> kPa x 3.386"),
}
_TEMP: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "c": (None, ""),
    "degc": (None, ""),
    "celsius": (None, ""),
    "f": (ch.c_from_f, "degF -> degC"),
    "degf": (ch.c_from_f, "degF -> degC"),
    "fahrenheit": (ch.c_from_f, "degF -> degC"),
    "k": (ch.c_from_k, "K -> degC"),
    "kelvin": (ch.c_from_k, "K -> degC"),
}
_TORQUE: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "nm": (None, ""),
    "n-m": (None, ""),
    "lbft": (ch.nm_from_lbft, "lb-ft -> N·m x 1.356"),
    "lb-ft": (ch.nm_from_lbft, "lb-ft -> N·m x 1.356"),
    "ftlb": (ch.nm_from_lbft, "lb-ft -> N·m x 1.356"),
    "ft-lb": (ch.nm_from_lbft, "lb-ft -> N·m x 1.356"),
    "ft-lbs": (ch.nm_from_lbft, "lb-ft -> N·m x 1.356"),
    "lbf-ft": (ch.nm_from_lbft, "lb-ft -> N·m x 1.356"),
}
_POWER: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "hp": (None, ""),
    "whp": (None, ""),
    "bhp": (None, ""),
    "kw": (ch.hp_from_kw, "kW -> hp / 0.7457"),
    "ps": (lambda v: np.asarray(v, dtype=np.float64) * 0.98632, "PS -> hp x 0.9863"),
}
_SPEED: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "kph": (None, ""),
    "km/h": (None, ""),
    "kmh": (None, ""),
    "mph": (ch.kph_from_mph, "mph -> km/h x 1.609"),
}
_TIME_MS: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "ms": (None, ""),
    "msec": (None, ""),
    "us": (lambda v: np.asarray(v, dtype=np.float64) / 1000.0, "us -> ms / 1000"),
    "s": (lambda v: np.asarray(v, dtype=np.float64) * 1000.0, "s -> ms x 1000"),
}

_PERCENT: dict[str, tuple[Callable[[F64], F64] | None, str]] = {"%": (None, ""), "pct": (None, "")}
_DEGREES: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    k: (None, "")
    for k in ("deg", "degrees", "degca", "ca", "degbtdc", "btdc", "°", "degcrank", "degcrk")
}
_MAF: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    "g/s": (None, ""),
    "gm/s": (None, ""),
    "grams/sec": (None, ""),
    "g/sec": (None, ""),
    "kg/h": (lambda v: np.asarray(v, dtype=np.float64) / 3.6, "kg/h -> g/s / 3.6"),
    "kg/hr": (lambda v: np.asarray(v, dtype=np.float64) / 3.6, "kg/h -> g/s / 3.6"),
    "lb/min": (lambda v: np.asarray(v, dtype=np.float64) * 7.5599, "lb/min -> g/s x 7.560"),
    "lbs/min": (lambda v: np.asarray(v, dtype=np.float64) * 7.5599, "lb/min -> g/s x 7.560"),
}
_RAW_SIGNAL_UNITS = {"v", "mv", "volts", "volt", "hz", "khz", "adc", "counts", "raw"}
"""Units of a sensor's raw signal: a column in these is not the physical quantity."""

_UNIT_TABLES: dict[str, dict[str, tuple[Callable[[F64], F64] | None, str]]] = {
    "tps_pct": _PERCENT,
    "stft_pct": _PERCENT,
    "ltft_pct": _PERCENT,
    "load_pct": _PERCENT,
    "ve_pct": _PERCENT,
    "knock_retard_deg": _DEGREES,
    "spark_deg": _DEGREES,
    "maf_gs": _MAF,
    "map_kpa": PRESSURE,
    "baro_kpa": PRESSURE,
    "humidity_pct": {**_PERCENT, "%rh": (None, ""), "rh": (None, "")},
    "iat_c": _TEMP,
    "ambient_c": _TEMP,
    "clt_c": _TEMP,
    "egt_c": _TEMP,
    "torque_nm": _TORQUE,
    "power_hp": _POWER,
    "drum_speed_kph": _SPEED,
    "vehicle_speed_kph": _SPEED,
    "pw_ms": _TIME_MS,
}

LAMBDA_UNITS = {"lambda", "λ", "lam", "eq", "eqratio", "phi"}
AFR_UNITS = {"afr", "a/f", "o2", ":1"}


def conversion_for(canonical: str, unit: str) -> Conversion:
    """How a column of ``unit`` becomes ``canonical`` (which may switch lambda <-> AFR).

    A column in a raw signal unit (volts, Hz) is refused: ``canonical`` is empty and
    ``text`` says why, because a MAF in Hz or an O2 in volts is not the quantity.
    """
    key = unit_key(unit)
    if key in _RAW_SIGNAL_UNITS and canonical != "batt_v":
        return Conversion("", None, f"unit {unit!r} is the sensor's raw signal, not {canonical}")
    if canonical == "load_pct" and key and key not in _PERCENT:
        return Conversion("", None, f"load in {unit!r} is not a percentage")
    if canonical in ("afr", "lambda", "afr_target", "lambda_target"):
        target = "lambda" in canonical
        if key in LAMBDA_UNITS and not target:
            canonical = "lambda" if canonical == "afr" else "lambda_target"
        elif key in AFR_UNITS and target:
            canonical = "afr" if canonical == "lambda" else "afr_target"
        return Conversion(canonical, None, "")
    table = _UNIT_TABLES.get(canonical)
    want = ch.CHANNELS[canonical].unit
    if table is None or not key:
        note = f"no unit in log, taken as {want}" if table is not None else ""
        return Conversion(canonical, None, note)
    if key in table:
        fn, text = table[key]
        return Conversion(canonical, fn, text)
    other = next((t for t in _UNIT_TABLES.values() if key in t and t is not table), None)
    if other is not None or key in ("rpm", "rev/min", "lambda", "afr", "v"):
        return Conversion("", None, f"unit {unit!r} is not a unit of {canonical} ({want})")
    return Conversion(canonical, None, f"unit {unit!r} not recognised, taken as {want}")


def is_gauge_unit(unit: str) -> bool:
    """A pressure unit read against the atmosphere (psig, kPa gauge)."""
    key = unit_key(unit)
    return "gauge" in key or key in ("psig", "kpag", "barg")
