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
from dataclasses import dataclass, field

import numpy as np

from core import channels as ch

F64 = ch.FloatArray

# Canonical channel -> names other tools use for it (compared after normalise()).
_ALIASES: dict[str, tuple[str, ...]] = {
    "rpm": (
        "rpm",
        "engine speed",
        "engine rpm",
        "engspeed",
        "rpm value",
        "motor rpm",
        "2byterpm",
        "engine rpm sae",
        "ecu engine speed",
        "eng speed",
        "rpms",
    ),
    "map_kpa": (
        "map",
        "manifold absolute pressure",
        "manifold abs pressure",
        "manifold pressure",
        "intake manifold absolute pressure",
        "manifold air pressure",
        "map kpa",
        "manifold absolute pressure 2 bar",
        "manifold absolute pressure 3 bar",
        "intake manifold pressure",
        "manifold absolute pressure map",
        "intake manifold absolute pressure map",
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
        "tps1",
        "tps 1",
        "throttle position 1",
        "throttle position manifold",
        "absolute throttle position",
        "relative throttle position",
        "throttle position relative",
        "throttle position absolute",
        "throttle pos 1",
        "tps main",
    ),
    "lambda": (
        "lambda",
        "lambda 1",
        "lambda1",
        "wideband lambda",
        "wb lambda",
        "lambda avg",
        "o2 wideband",
        "wideband o2",
        "wideband",
        "wb o2",
        "uego",
        "lambda actual",
        "measured lambda",
        "lambda measured",
        "lambda bank 1",
        "lambda sensor 1",
        "wb eq ratio",
        "wideband eq ratio",
        "wideband equivalence ratio",
        "lambda 1 measured",
    ),
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
        "air fuel ratio measured",
        "afr measured",
        "uego afr",
        "afr bank 1",
        "air fuel ratio bank 1",
        "wideband afr 1",
    ),
    "afr_target": (
        "afr target",
        "target afr",
        "afr tgt",
        "afrtgt",
        "commanded afr",
        "afr target 1",
        "air fuel ratio commanded",
        "commanded air fuel ratio",
        "target air fuel ratio",
        "afr commanded",
        "afr demand",
    ),
    "lambda_target": (
        "lambda target",
        "target lambda",
        "lambda tgt",
        "commanded lambda",
        "lambda demand",
        "lambda commanded",
        "commanded equivalence ratio",
        "equivalence ratio commanded",
        "commanded eq ratio",
        "fuel air commanded equivalence ratio",
        "commanded equiv ratio",
        "target equivalence ratio",
    ),
    "knock_count": (
        "knock",
        "knock count",
        "knock events",
        "knock cnt",
        "knock sum",
        "knock level",
        "knocksum",
        "knock sum count",
    ),
    "knock_retard_deg": (
        "knock retard",
        "kr",
        "knock retard deg",
        "spark retard",
        "timing retard",
        "knock correction",
        "knock corr",
        "feedback knock correction",
        "fbkc",
        "ignition timing knock correction",
        "knock retard total",
        "total knock retard",
        "ignition knock retard",
        "knock ignition correction",
        "knock retard cyl 1",
    ),
    "stft_pct": (
        "stft",
        "short term fuel trim",
        "short term ft",
        "short term fuel trim 1",
        "fuel trim short term",
        "st trim",
        "a f correction 1",
        "af correction 1",
        "stft 1",
    ),
    "ltft_pct": (
        "ltft",
        "long term fuel trim",
        "long term ft",
        "long term fuel trim 1",
        "fuel trim long term",
        "lt trim",
        "a f learning 1",
        "af learning 1",
        "ltft 1",
    ),
    "maf_gs": (
        "maf",
        "mass airflow",
        "mass air flow",
        "mass airflow sensor",
        "maf rate",
        "maf air flow rate",
        "mass air flow rate",
        "airflow",
        "air flow",
        "maf airflow",
    ),
    "load_pct": (
        "engine load",
        "load",
        "calculated load",
        "calculated engine load",
        "calculated load value",
        "absolute load",
        "absolute load value",
        "engine load absolute",
        "engine load calculated",
    ),
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
        "ignition angle",
        "ign angle",
        "timingadv",
        "timing adv",
        "ignition timing advance",
        "ignition timing advance for 1 cylinder",
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


_DEVICE_PREFIXES = (
    "plx ",
    "innovate ",
    "lc 1 ",
    "lc 2 ",
    "lc1 ",
    "lc2 ",
    "mts ",
    "aem ",
    "zeitronix ",
    "zt 2 ",
    "zt 3 ",
    "zt2 ",
    "zt3 ",
    "ecu ",
    "obd ",
    "sae ",
    "pcm ",
    "ext ",
    "external ",
)
"""Prefixes of external devices (wideband controllers) and channel groups, tried off."""
_SUFFIXES = (" sae", " bank 1", " b1", " 1", " b1s1", " bank 1 sensor 1", " avg", " value")

_BOOST_NAMES = {
    "boost",
    "boost pressure",
    "manifold relative pressure",
    "manifold gauge pressure",
    "relative pressure",
    "turbo boost vacuum gauge",
    "turbo boost",
    "boost vacuum",
    "psig",
    "manifold pressure gauge",
    "intake manifold relative pressure",
    "boost psi",
    "map gauge",
    "manifold relative pressure corrected",
}
"""Pressure relative to the atmosphere: made absolute with baro when no MAP is logged."""

_NARROWBAND = re.compile(
    r"(^|\b)(o2|oxygen|o2s\d*)\b(?!.*\b(wide|wideband|wb|uego|lambda|afr)\b)"
    r"|narrow ?band|^o2(front|rear)$|^o2 ?s\d|o2 b\d ?s\d"
)


def _with_qualifiers(name: str) -> str:
    """Like normalise, but words in brackets kept: Torque's "Air Fuel Ratio(Commanded)"."""
    return re.sub(r"[^0-9a-z]+", " ", name.lower()).strip()


def _candidates(name: str) -> list[str]:
    """Normalised forms of a column name to look up, most specific first.

    A bracketed word inside a name can change what it means ("Air Fuel
    Ratio(Commanded)" is the target, "(Measured)" the sensor), so the form that
    keeps it is tried before the one that drops it as if it were a unit.
    """
    key = normalise(name)
    out = [key]
    full = _with_qualifiers(name)
    if full != key and re.search(r"[a-z]", full.replace(key, "", 1)):
        out.insert(0, full)
    if "/" in name:
        parts = [normalise(p) for p in name.split("/") if normalise(p)]
        if parts:
            out += [" ".join(parts[-2:]), parts[-1]]
    for form in out:  # grows while stripped: "innovate lc 1 afr" -> "lc 1 afr" -> "afr"
        for prefix in _DEVICE_PREFIXES:
            if form.startswith(prefix) and form[len(prefix) :] not in out:
                out.append(form[len(prefix) :])
    for form in list(out):
        for suffix in _SUFFIXES:
            if form.endswith(suffix) and len(form) > len(suffix):
                out.append(form[: -len(suffix)])
    return out


def canonical_for(name: str) -> str | None:
    """The canonical channel a column name means, or None when it is not one we use."""
    for key in _candidates(name):
        hit = _BY_ALIAS.get(key)
        if hit is not None:
            return hit
    key = normalise(name)
    if key.endswith(("engine speed", "engine rpm")):
        return "rpm"
    return None


_WIDEBAND_DEVICES = re.compile(
    r"\b(aem|plx|innovate|lc ?1|lc ?2|zeitronix|zt ?2|uego|wideband|wb|wb ?o2|wbo2|lambda|afr|o2)\b"
)


def _wideband_by_unit(name: str, unit: str) -> str | None:
    """A column in lambda or AFR from a wideband device (an analog input named after it)."""
    key = _unit_key(unit)
    if key not in _LAMBDA_UNITS and key not in _AFR_UNITS:
        return None
    norm = _with_qualifiers(name)
    if "target" in norm or "command" in norm or not _WIDEBAND_DEVICES.search(norm):
        return None
    return "lambda" if key in _LAMBDA_UNITS else "afr"


def _is_gauge_unit(unit: str) -> bool:
    key = _unit_key(unit)
    return "gauge" in key or key in ("psig", "kpag", "barg")


def is_boost(name: str) -> bool:
    """A pressure relative to the atmosphere (boost, relative MAP)."""
    return any(key in _BOOST_NAMES for key in _candidates(name))


def is_narrowband(name: str, unit: str) -> bool:
    """A narrowband O2 sensor: volts around 0.45, never a lambda to bin."""
    key = normalise(name)
    if _unit_key(unit) in _LAMBDA_UNITS | _AFR_UNITS or re.search(
        r"\b(wide|wideband|wb|uego)\b", key
    ):
        return False
    if _unit_key(unit) in ("v", "mv", "volts", "volt") and (
        "o2" in key or "oxygen" in key or "lambda" in key or "afr" in key
    ):
        return True
    return bool(_NARROWBAND.search(key))


@dataclass(frozen=True, slots=True)
class _Conv:
    canonical: str
    fn: Callable[[F64], F64] | None
    text: str


def _unit_key(unit: str) -> str:
    u = unit.strip().lower().replace("°", "deg").replace("·", "").replace(" ", "")
    u = u.replace("deg.", "deg")
    return "deg" if u in ("degree", "deg") else u


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

_PERCENT: dict[str, tuple[Callable[[F64], F64] | None, str]] = {"%": (None, ""), "pct": (None, "")}
_DEGREES: dict[str, tuple[Callable[[F64], F64] | None, str]] = {
    k: (None, "") for k in ("deg", "degrees", "degca", "ca", "degbtdc", "btdc", "°", "degcrank")
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

_LAMBDA_UNITS = {"lambda", "λ", "lam", "eq", "eqratio", "phi"}
_AFR_UNITS = {"afr", "a/f", "o2", ":1"}


def conversion_for(canonical: str, unit: str) -> _Conv:
    """How a column of ``unit`` becomes ``canonical`` (which may switch lambda <-> AFR).

    A column in a raw signal unit (volts, Hz) is refused: ``canonical`` is empty and
    ``text`` says why, because a MAF in Hz or an O2 in volts is not the quantity.
    """
    key = _unit_key(unit)
    if key in _RAW_SIGNAL_UNITS and canonical != "batt_v":
        return _Conv("", None, f"unit {unit!r} is the sensor's raw signal, not {canonical}")
    if canonical == "load_pct" and key and key not in _PERCENT:
        return _Conv("", None, f"load in {unit!r} is not a percentage")
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
    other = next((t for t in _UNIT_TABLES.values() if key in t and t is not table), None)
    if other is not None or key in ("rpm", "rev/min", "lambda", "afr", "v"):
        return _Conv("", None, f"unit {unit!r} is not a unit of {canonical} ({want})")
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
    notes: list[str] = field(default_factory=list)


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
        The canonical columns, what was mapped (with conversions), what was not,
        and notes on columns deliberately left out (narrowband O2, raw signals).
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
    notes: list[str] = []
    boost: list[int] = []
    for i, name in enumerate(names):
        if i in chosen:
            continue
        if is_narrowband(name, units[i]):
            notes.append(f"{name}: narrowband O2 sensor, never used as lambda")
            continue
        alias = canonical_for(name) or _wideband_by_unit(name, units[i])
        if alias == "map_kpa" and _is_gauge_unit(units[i]):
            alias = None  # a MAP sensor read as gauge pressure is boost
            boost.append(i)
            continue
        if alias is not None and alias not in taken:
            chosen[i] = alias
            taken.add(alias)
        elif alias is None and is_boost(name):
            boost.append(i)

    columns: dict[str, F64] = {}
    mapped: list[MappedChannel] = []
    unmapped: list[str] = []
    for i, name in enumerate(names):
        choice = chosen.get(i)
        if choice is None:
            if i not in boost:
                unmapped.append(name)
            continue
        conv = conversion_for(choice, units[i])
        if not conv.canonical:
            unmapped.append(name)
            notes.append(f"{name}: {conv.text}; left unmapped")
            continue
        if conv.canonical in columns:
            unmapped.append(name)
            continue
        arr = np.asarray(values[i], dtype=np.float64)
        arr = conv.fn(arr) if conv.fn is not None else arr
        text = conv.text
        if conv.canonical == "knock_retard_deg":
            arr, text = _knock_as_retard(name, arr, text)
        if conv.canonical in ("lambda", "lambda_target") and re.search(
            r"\beq(uiv\w*)? ratio\b", normalise(name)
        ):
            extra = "equivalence ratio taken as lambda (SAE J1979)"
            text = f"{text}; {extra}" if text else extra
        columns[conv.canonical] = arr
        mapped.append(MappedChannel(name, conv.canonical, text))

    _boost_as_map(names, units, values, boost, columns, mapped, unmapped, notes)
    _derive_mixture(columns, mapped, "afr", "lambda", stoich)
    _derive_mixture(columns, mapped, "afr_target", "lambda_target", stoich)
    _accel_enrich_as_extra(columns, mapped)
    return MappingResult(columns, mapped, unmapped, notes)


def _knock_as_retard(name: str, arr: F64, text: str) -> tuple[F64, str]:
    """A knock *correction* (negative = timing pulled) becomes a positive retard.

    EcuTek, RomRaider (FBKC) and HP Tuners log knock as a correction to timing;
    the canonical channel is the retard, so -2.8 deg of correction is 2.8 deg of
    retard. A column whose name says retard, or whose values are never negative,
    is already a retard.
    """
    finite = arr[np.isfinite(arr)]
    key = normalise(name)
    is_correction = ("corr" in key or "fbkc" in key) or (
        finite.size > 0 and bool(np.any(finite < 0)) and not np.any(finite > 0)
    )
    if not is_correction or "retard" in key:
        return arr, text
    note = "knock correction -> retard: -x, floored at 0"
    return np.maximum(-arr, 0.0), f"{text}; {note}" if text else note


def _boost_as_map(
    names: Sequence[str],
    units: Sequence[str],
    values: Sequence[F64],
    boost: list[int],
    columns: dict[str, F64],
    mapped: list[MappedChannel],
    unmapped: list[str],
    notes: list[str],
) -> None:
    """Boost (pressure over the atmosphere) becomes absolute MAP when no MAP was logged."""
    if not boost:
        return
    first, rest = boost[0], boost[1:]
    unmapped.extend(names[i] for i in rest)
    if "map_kpa" in columns:
        unmapped.append(names[first])
        return
    unit = units[first].strip()
    key = _unit_key(unit).replace("(gauge)", "").replace("gauge", "")
    key = {"kpag": "kpa", "barg": "bar", "psig": "psi"}.get(key, key)
    if not key and "psi" in names[first].lower():
        key = "psi"
    if key not in _PRESSURE:
        unmapped.append(names[first])
        notes.append(f"{names[first]}: boost in {unit!r} not recognised; left unmapped")
        return
    fn, text = _PRESSURE[key]
    arr = np.asarray(values[first], dtype=np.float64)
    gauge = fn(arr) if fn is not None else arr
    if "baro_kpa" in columns:
        baro = columns["baro_kpa"]
        base = "+ baro column"
    else:
        baro = np.full(arr.shape, 101.325)
        base = "+ 101.325 kPa (no baro column: standard atmosphere assumed)"
    columns["map_kpa"] = gauge + baro
    words = f"{text}; " if text else ""
    mapped.append(MappedChannel(names[first], "map_kpa", f"{words}gauge -> absolute {base}"))


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
