"""Map other tools' channel names and units onto the canonical vocabulary.

Every importer ends with a table of (original name, unit string, values). This
module decides which canonical channel each column becomes and converts its
values to the canonical unit, writing down each conversion in words so the
import summary can say exactly what was done ("psi -> kPa x 6.895"). The unit
comes from the log's own header; the name only chooses the channel. A column
whose unit contradicts its name on the mixture channels (an "AFR" column in
lambda) follows the unit, because the unit is what the logger measured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core import channels as ch

F64 = ch.FloatArray

# Canonical channel -> names other tools use for it (compared after normalise()).
_ALIASES: dict[str, tuple[str, ...]] = {
    "rpm": ("rpm", "engine speed", "engine rpm", "engspeed", "rpm value", "motor rpm"),
    "map_kpa": (
        "map",
        "manifold absolute pressure",
        "manifold abs pressure",
        "manifold pressure",
        "intake manifold absolute pressure",
        "manifold air pressure",
        "map kpa",
    ),
    "tps_pct": (
        "tps",
        "throttle position",
        "throttle",
        "throttle pos",
        "throttle position sensor",
        "throttle angle",
        "throttle opening",
        "throttle opening angle",
        "tp",
    ),
    "lambda": ("lambda", "lambda 1", "lambda1", "wideband lambda", "wb lambda", "lambda avg"),
    "afr": (
        "afr",
        "afr 1",
        "afr1",
        "air fuel ratio",
        "air fuel ratio 1",
        "air fuel",
        "a f ratio",
        "a f",
        "wideband afr",
        "wb afr",
        "a f sensor 1",
        "afr avg",
    ),
    "afr_target": (
        "afr target",
        "target afr",
        "afr tgt",
        "afrtgt",
        "commanded afr",
        "afr target 1",
    ),
    "lambda_target": ("lambda target", "target lambda", "lambda tgt", "commanded lambda"),
    "knock_count": (
        "knock",
        "knock count",
        "knock events",
        "knock cnt",
        "knock sum",
        "knock level",
    ),
    "knock_retard_deg": ("knock retard", "kr", "knock retard deg", "spark retard", "timing retard"),
    "iat_c": (
        "iat",
        "intake air temp",
        "intake air temperature",
        "intake temp",
        "air temp",
        "mat",
        "manifold air temp",
        "manifold air temperature",
        "charge temp",
    ),
    "clt_c": (
        "clt",
        "coolant temp",
        "coolant temperature",
        "engine coolant temp",
        "engine coolant temperature",
        "ect",
        "water temp",
        "engine temp",
        "engine temperature",
        "coolant",
    ),
    "spark_deg": (
        "timing",
        "advance",
        "ignition timing",
        "spark advance",
        "ign advance",
        "ignition advance",
        "timing advance",
        "spark",
        "ignition",
        "ignition total timing",
        "spk spark advance",
    ),
    "power_hp": ("power", "hp", "horsepower", "wheel power", "whp"),
    "torque_nm": ("torque", "tq", "wheel torque"),
    "drum_speed_kph": ("drum speed", "roller speed", "drum"),
    "vehicle_speed_kph": ("vehicle speed", "speed", "vss", "ground speed", "wheel speed"),
    "baro_kpa": ("baro", "baro pressure", "barometric pressure", "barometer", "ambient pressure"),
    "batt_v": ("battery v", "battery", "battery voltage", "batt", "system voltage", "ecu voltage"),
    "egt_c": ("egt", "exhaust gas temp", "exhaust gas temperature", "egt 1"),
    "ve_pct": ("ve", "current ve", "ve current", "volumetric efficiency"),
    "pw_ms": ("pw", "pw1", "pulse width", "injector pulse width", "inj pw", "pulsewidth"),
    "accel_enrich_pct": ("accel enrich", "ae", "accel enrichment", "tpsae"),
    "dfco": ("dfco", "fuel cut", "decel fuel cut"),
    "gear": ("gear", "current gear"),
}

_BY_ALIAS: dict[str, str] = {alias: canon for canon, names in _ALIASES.items() for alias in names}


def normalise(name: str) -> str:
    """Lower-case, units in brackets dropped, punctuation folded to single spaces."""
    name = re.sub(r"\(.*?\)|\[.*?\]", " ", name)
    name = re.sub(r"[^0-9a-z]+", " ", name.lower())
    return name.strip()


def split_name_unit(header: str) -> tuple[str, str]:
    """``"Engine Speed (rpm)"`` -> ``("Engine Speed", "rpm")``; no brackets -> empty unit."""
    m = re.match(r"^\s*(.*?)\s*[(\[]([^()\[\]]*)[)\]]\s*$", header)
    if m and m.group(1):
        return m.group(1), m.group(2).strip()
    return header.strip(), ""


def canonical_for(name: str) -> str | None:
    """The canonical channel a column name means, or None when it is not one we use."""
    return _BY_ALIAS.get(normalise(name))


@dataclass(frozen=True, slots=True)
class _Conv:
    canonical: str
    fn: Callable[[F64], F64] | None
    text: str


def _unit_key(unit: str) -> str:
    u = unit.strip().lower().replace("°", "deg").replace("·", "").replace(" ", "")
    return u.replace("deg.", "deg")


_PRESSURE: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
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

_UNIT_TABLES: dict[str, dict[str, tuple[Callable[[F64], F64] | None, str]]] = {
    "map_kpa": _PRESSURE,
    "baro_kpa": _PRESSURE,
    "iat_c": _TEMP,
    "clt_c": _TEMP,
    "egt_c": _TEMP,
    "torque_nm": _TORQUE,
    "power_hp": _POWER,
    "drum_speed_kph": _SPEED,
    "vehicle_speed_kph": _SPEED,
    "pw_ms": _TIME_MS,
}

_LAMBDA_UNITS = {"lambda", "λ", "lam"}
_AFR_UNITS = {"afr", "a/f", "o2", ":1"}


def conversion_for(canonical: str, unit: str) -> _Conv:
    """How a column of ``unit`` becomes ``canonical`` (which may switch lambda <-> AFR)."""
    key = _unit_key(unit)
    if canonical in ("afr", "lambda", "afr_target", "lambda_target"):
        target = "lambda" in canonical
        if key in _LAMBDA_UNITS and not target:
            canonical = "lambda" if canonical == "afr" else "lambda_target"
        elif key in _AFR_UNITS and target:
            canonical = "afr" if canonical == "lambda" else "afr_target"
        return _Conv(canonical, None, "")
    table = _UNIT_TABLES.get(canonical)
    want = ch.CHANNELS[canonical].unit
    if table is None or not key:
        note = f"no unit in log, taken as {want}" if table is not None else ""
        return _Conv(canonical, None, note)
    if key in table:
        fn, text = table[key]
        return _Conv(canonical, fn, text)
    return _Conv(canonical, None, f"unit {unit!r} not recognised, taken as {want}")


@dataclass(frozen=True, slots=True)
class MappedChannel:
    """One original column that became a canonical channel."""

    original: str
    canonical: str
    conversion: str = ""
    """What was done to the values, in words; empty when they were already canonical."""


@dataclass(slots=True)
class MappingResult:
    """An imported log's columns mapped onto canonical channels, with what was left out."""

    columns: dict[str, F64]
    mapped: list[MappedChannel]
    unmapped: list[str]


def map_columns(
    names: Sequence[str],
    units: Sequence[str],
    values: Sequence[F64],
    channel_map: Mapping[str, str] | None = None,
    stoich: float = ch.STOICH_GASOLINE,
) -> MappingResult:
    """Choose canonical channels for the columns and convert their values.

    Args:
        names: Original column names, in file order.
        units: The unit string of each column ('' when the log has none).
        values: The values of each column, as display values in the log's units.
        channel_map: Explicit canonical -> original name choices; these win over the
            alias table. Unknown canonical names or missing columns raise ValueError.
        stoich: Stoichiometric AFR used to derive lambda from AFR when the log
            carries no lambda column.

    Returns:
        The canonical columns, what was mapped (with conversions) and what was not.
    """
    explicit = dict(channel_map or {})
    explicit.pop("time", None)
    index = {n: i for i, n in reversed(list(enumerate(names)))}
    chosen: dict[int, str] = {}
    for canon, original in explicit.items():
        if canon not in ch.CHANNELS:
            raise ValueError(f"--map {canon}=...: {canon!r} is not a channel (see core.channels)")
        if original not in index:
            raise ValueError(f"--map {canon}={original!r}: the log has no column {original!r}")
        chosen[index[original]] = canon
    taken = set(chosen.values())
    for i, name in enumerate(names):
        if i in chosen:
            continue
        alias = canonical_for(name)
        if alias is not None and alias not in taken:
            chosen[i] = alias
            taken.add(alias)

    columns: dict[str, F64] = {}
    mapped: list[MappedChannel] = []
    unmapped: list[str] = []
    for i, name in enumerate(names):
        choice = chosen.get(i)
        if choice is None:
            unmapped.append(name)
            continue
        conv = conversion_for(choice, units[i])
        if conv.canonical in columns:
            unmapped.append(name)
            continue
        arr = np.asarray(values[i], dtype=np.float64)
        columns[conv.canonical] = conv.fn(arr) if conv.fn is not None else arr
        mapped.append(MappedChannel(name, conv.canonical, conv.text))

    _derive_mixture(columns, mapped, "afr", "lambda", stoich)
    _derive_mixture(columns, mapped, "afr_target", "lambda_target", stoich)
    _accel_enrich_as_extra(columns, mapped)
    return MappingResult(columns, mapped, unmapped)


def _accel_enrich_as_extra(columns: dict[str, F64], mapped: list[MappedChannel]) -> None:
    """Speeduino / MegaSquirt log accel enrichment as % of base fuel, 100 = none.

    The canonical channel is the extra fuel (0 = none), which the accel filter
    tests. A column whose most common value is exactly 100 is 100-based.
    """
    col = columns.get("accel_enrich_pct")
    if col is None:
        return
    finite = col[np.isfinite(col)]
    if finite.size == 0:
        return
    values, counts = np.unique(finite, return_counts=True)
    if values[np.argmax(counts)] != 100.0:
        return
    columns["accel_enrich_pct"] = np.maximum(col - 100.0, 0.0)
    for i, m in enumerate(mapped):
        if m.canonical == "accel_enrich_pct":
            note = "% of base fuel (100 = none) -> extra %: -100"
            text = f"{m.conversion}; {note}" if m.conversion else note
            mapped[i] = MappedChannel(m.original, m.canonical, text)


def _derive_mixture(
    columns: dict[str, F64], mapped: list[MappedChannel], afr: str, lam: str, stoich: float
) -> None:
    """Lambda is the canonical mixture channel: derive it from AFR when only AFR was logged."""
    if afr in columns and lam not in columns:
        source = next(m.original for m in mapped if m.canonical == afr)
        columns[lam] = ch.lambda_from_afr(columns[afr], stoich)
        mapped.append(MappedChannel(source, lam, f"AFR -> lambda / {stoich:g}"))
