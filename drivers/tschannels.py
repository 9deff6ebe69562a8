"""ECU channel names onto canonical channels, in canonical units, for any TunerStudio ini.

Speeduino, rusEFI and MegaSquirt name the same quantity differently (``map`` /
``MAPValue``; ``coolant`` / ``coolant`` / ``coolant`` with °C, °C x0.01 and °F x10
scalings): the ini gives the scaling and units, this table gives the meaning.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.tsdefs import EcuIni

CANONICAL_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rpm", ("rpm", "RPMValue")),
    ("map_kpa", ("map", "MAPValue")),
    ("tps_pct", ("tps", "TPSValue", "throttle")),
    ("afr", ("afr", "AFRValue", "afr1")),
    ("lambda", ("lambdaValue", "lambda1", "lambda")),
    ("afr_target", ("afrTarget", "currentTargetAfr", "afrtgt1")),
    ("lambda_target", ("targetLambda", "lambdaTarget")),
    ("spark_deg", ("advance", "ignitionAdvance")),
    ("iat_c", ("iat", "intake", "mat")),
    ("clt_c", ("coolant", "clt")),
    ("baro_kpa", ("baro", "baroPressure", "barometer")),
    ("batt_v", ("batteryVoltage", "VBatt")),
    ("knock_count", ("knockEventCount", "knockCount")),
    ("knock_retard_deg", ("knockCor", "knockRetard")),
    ("vehicle_speed_kph", ("vss", "vehicleSpeedKph")),
    ("ve_pct", ("veCurr", "veValue", "veCurr1")),
    ("pw_ms", ("pulseWidth", "pulseWidth1", "actualLastInjection")),
    ("gear", ("gear", "tcuCurrentGear")),
    ("dfco", ("DFCOOn", "dfcoActive")),
)
"""Canonical channel -> the ECU channel names that carry it (Speeduino, rusEFI, MS2/3)."""
CANONICAL_UNITS = {
    "rpm": "rpm", "map_kpa": "kPa", "tps_pct": "%", "afr": "AFR", "lambda": "λ",
    "afr_target": "AFR", "lambda_target": "λ", "spark_deg": "deg", "iat_c": "°C",
    "clt_c": "°C", "baro_kpa": "kPa", "batt_v": "V", "knock_count": "count",
    "knock_retard_deg": "deg", "vehicle_speed_kph": "km/h", "ve_pct": "%", "pw_ms": "ms",
    "gear": "", "dfco": "flag",
}  # fmt: skip
TEMPERATURES = ("iat_c", "clt_c")
PRESSURES = ("map_kpa", "baro_kpa")


def _temperature_to_c(units: str, assume_c: bool) -> Callable[[float], float]:
    u = units.strip().lower().replace("°", "").replace("deg", "").strip()
    if u in ("f", "fahrenheit") or (not u and not assume_c):
        return lambda v: (v - 32.0) / 1.8
    return lambda v: v


def _pressure_to_kpa(units: str) -> Callable[[float], float]:
    u = units.strip().lower()
    if u == "psi":
        return lambda v: v * 6.894757293168361
    if u == "bar":
        return lambda v: v * 100.0
    return lambda v: v


def _same(value: float) -> float:
    return value


def map_channels(ini: EcuIni) -> dict[str, tuple[str, Callable[[float], float]]]:
    """Canonical channel -> (ECU channel, conversion to the canonical unit), for what the ini has."""
    available = set(ini.fields) | set(ini.computed_order)
    units = {n: f.units for n, f in ini.fields.items()}
    units.update({n: c.units for n, c in ini.computed.items()})
    assume_c = "CELSIUS" in ini.symbols
    mapping: dict[str, tuple[str, Callable[[float], float]]] = {}
    for canonical, names in CANONICAL_SOURCES:
        name = next((n for n in names if n in available), None)
        if name is None:
            continue
        conv: Callable[[float], float] = _same
        if canonical in TEMPERATURES:
            conv = _temperature_to_c(units.get(name, ""), assume_c)
        elif canonical in PRESSURES:
            conv = _pressure_to_kpa(units.get(name, ""))
        elif canonical == "vehicle_speed_kph" and units.get(name, "").lower() == "mph":

            def conv(v: float) -> float:
                return v * 1.609344

        mapping[canonical] = (name, conv)
    return mapping


def needed_end(ini: EcuIni, names: set[str]) -> int:
    """Bytes of the block to read so that ``names`` (and what they are computed from) decode."""
    todo, seen, end = list(names), set(), 0
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in ini.fields:
            fdef = ini.fields[name]
            end = max(end, fdef.offset + fdef.size)
        elif name in ini.computed:
            todo.extend(ini.computed[name].expr.names)
    return end
