"""Map other tools' channel names and units onto the canonical vocabulary.

Every importer ends with a table of (original name, unit string, values). This
module decides which canonical channel each column becomes and converts its
values to the canonical unit, writing down each conversion in words so the
import summary can say exactly what was done ("psi -> kPa x 6.895"). The unit
comes from the log's own header; the name only chooses the channel. A column
whose unit contradicts its name on the mixture channels (an "AFR" column in
lambda) follows the unit, because the unit is what the logger measured.

The name rules live in ``names`` (with the synonym table in ``aliases``) and
the unit tables in ``units``; this module combines them column by column and
applies the cross-column rules (boost made absolute, knock correction as retard,
AFR -> lambda, 100-based accel enrichment).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core import channels as ch
from core.formats.dynounits import (
    US_UNITS,
    air_temp_in_f,
    baro_unit,
    power_torque_units,
)
from core.formats.names import canonical_for, is_boost, is_narrowband, normalise, wideband_by_unit
from core.formats.units import PRESSURE, Conversion, conversion_for, is_gauge_unit, unit_key

F64 = ch.FloatArray


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
        alias = canonical_for(name) or wideband_by_unit(name, units[i])
        if alias == "map_kpa" and is_gauge_unit(units[i]):
            alias = None  # a MAP sensor read as gauge pressure is boost
            boost.append(i)
            continue
        if alias is not None and alias not in taken:
            chosen[i] = alias
            taken.add(alias)
        elif alias is None and is_boost(name):
            boost.append(i)
    rpm_by_unit = _rpm_by_unit(names, units, chosen, boost) if "rpm" not in taken else None
    if rpm_by_unit is not None:
        chosen[rpm_by_unit] = "rpm"
        taken.add("rpm")

    columns: dict[str, F64] = {}
    mapped: list[MappedChannel] = []
    unmapped: list[str] = []
    unlabelled: set[str] = set()
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
        implausible = (
            ""
            if names[i] in explicit.values()
            else _implausible_without_unit(conv, units[i], values[i])
        )
        if implausible:
            unmapped.append(name)
            notes.append(f"{name}: {implausible}; left unmapped")
            continue
        if conv.canonical in columns:
            unmapped.append(name)
            continue
        arr = np.asarray(values[i], dtype=np.float64)
        arr = conv.fn(arr) if conv.fn is not None else arr
        text = conv.text
        if conv.canonical == "knock_retard_deg":
            arr, text = _knock_as_retard(name, arr, text)
        if conv.canonical in TARGETS:
            arr, text = _no_target_as_nan(arr, text)
        if conv.canonical in ("lambda", "lambda_target") and re.search(
            r"\beq(uiv\w*)? ratio\b", normalise(name)
        ):
            extra = "equivalence ratio taken as lambda (SAE J1979)"
            text = f"{text}; {extra}" if text else extra
        if i == rpm_by_unit:
            text = "no rpm name; the only column in rpm, taken as engine speed"
        columns[conv.canonical] = arr
        mapped.append(MappedChannel(name, conv.canonical, text))
        if not units[i].strip():
            unlabelled.add(conv.canonical)

    _units_from_data(unlabelled, columns, mapped, unmapped, notes)
    _boost_as_map(names, units, values, boost, columns, mapped, unmapped, notes)
    _derive_mixture(columns, mapped, "afr", "lambda", stoich)
    _derive_mixture(columns, mapped, "afr_target", "lambda_target", stoich)
    _accel_enrich_as_extra(columns, mapped)
    return MappingResult(columns, mapped, unmapped, notes)


RPM_UNITS = frozenset({"rpm", "rev/min", "r/min", "1/min", "u/min", "tr/min", "об/мин"})
_NOT_ENGINE_SPEED = re.compile(
    r"\b(target|desired|idle|turbine|shaft|wheel|fan|pump|limit|delta|cut|launch|max|min)\b"
)


def _rpm_by_unit(
    names: Sequence[str], units: Sequence[str], chosen: Mapping[int, str], boost: list[int]
) -> int | None:
    """The engine speed when no name says so: the one column whose unit is rpm.

    A unit is language-neutral where a name is not: a Car Scanner log in Russian
    names engine speed "Обороты двигателя" but writes its unit as ``rpm``. Only a
    column with no other meaning qualifies, and only when it is the sole one in
    rpm (a gearbox log with turbine and shaft speeds gets no guess).
    """
    found = [
        i
        for i, name in enumerate(names)
        if i not in chosen
        and i not in boost
        and unit_key(units[i]) in RPM_UNITS
        and canonical_for(name) is None
        and not _NOT_ENGINE_SPEED.search(normalise(name))
    ]
    return found[0] if len(found) == 1 else None


_RANGE_WITHOUT_UNIT: dict[str, tuple[float, str]] = {
    "maf_gs": (655.35, "the OBD-II MAF range 0-655.35 g/s (SAE J1979 PID 0x10)"),
}
"""Upper bounds a unit-less column must respect to be taken in the canonical unit."""
AFR_FLOOR = 5.5
"""An unlabelled "AFR" whose median is below this is a wideband's 0-5 V output (Dynojet's
"WB Volts ..." channels), not a ratio: even methanol at full rich reads above 5.5."""


AFR_RANGE = (10.0, 20.0)
"""Where a gasoline (or ethanol-blend) AFR sits; a lambda there is 10-20 times stoich."""


def afr_in_lambda(mapped: Sequence[MappedChannel], columns: Mapping[str, F64]) -> str:
    """Why the ``lambda`` column looks like AFR, and the ``--map`` that imports it so ('' if not).

    A CSV column named "Lambda" that holds 13.2 is an AFR display: every sample lands on
    the lean rail (lambda above 1.6) and the import said only that. Not converted here:
    the tuner knows the log, the hint names the mapping to give.
    """
    lam = columns.get("lambda")
    source = next((m for m in mapped if m.canonical == "lambda"), None)
    if lam is None or source is None:
        return ""
    finite = lam[np.isfinite(lam)]
    if finite.size == 0 or not AFR_RANGE[0] <= float(np.median(finite)) <= AFR_RANGE[1]:
        return ""
    lo, hi = np.percentile(finite, [1, 99])
    name = source.original.replace('"', "")
    return (
        f"{source.original!r} reads {lo:.1f}-{hi:.1f}: that looks like AFR, not lambda "
        f'(near 1.0); if it is AFR, import it as AFR with --map afr="{name}"'
    )


def _implausible_without_unit(conv: Conversion, unit: str, values: F64) -> str:
    """Why a column with no unit cannot be in the canonical unit ('' when it can be)."""
    if unit.strip():
        return ""
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if conv.canonical in ("afr", "afr_target") and finite.size:
        median = float(np.median(finite))
        if median < AFR_FLOOR:
            return f"no unit in log and a median of {median:g} is no AFR (a sensor voltage?)"
    bound = _RANGE_WITHOUT_UNIT.get(conv.canonical)
    if bound is None:
        return ""
    if finite.size == 0 or float(finite.max()) <= bound[0]:
        return ""
    return (
        f"no unit in log and values up to {float(finite.max()):g} exceed {bound[1]}, "
        f"so not {ch.CHANNELS[conv.canonical].unit} (a raw frequency?)"
    )


def _units_from_data(
    unlabelled: set[str],
    columns: dict[str, F64],
    mapped: list[MappedChannel],
    unmapped: list[str],
    notes: list[str],
) -> None:
    """Units of unlabelled power, torque, baro and air temperature, read from the data.

    A dyno's export carries no units (PROTOCOLS §7, WinPEP 8 / Power Core CSV), so
    "taken as the canonical unit" read 90 lb·ft as 90 N·m; see ``dynounits``.
    """
    found: set[str] = set()
    if "baro_kpa" in unlabelled:
        baro = columns["baro_kpa"]
        unit, kpa_per = baro_unit(baro)
        median = float(np.nanmedian(baro)) if np.isfinite(baro).any() else math.nan
        if not unit:
            source = _drop(columns, mapped, unmapped, "baro_kpa")
            notes.append(
                f"{source}: no unit in log and a median of {median:g} is no barometer reading "
                f"in kPa, inHg, psi, mbar or bar; left unmapped"
            )
        else:
            found.add(unit)
            columns["baro_kpa"] = baro * kpa_per
            how = f" -> kPa x {kpa_per:.4g}" if unit != "kPa" else ""
            _retext(mapped, "baro_kpa", f"no unit in log; {median:g} reads as {unit}{how}")
    pair = {"power_hp", "torque_nm"}
    if pair <= columns.keys() and "rpm" in columns and pair & unlabelled:
        found |= _power_torque_from_data(unlabelled, columns, mapped, notes)
    for air in ("iat_c", "ambient_c"):
        if air in unlabelled and found & US_UNITS and air_temp_in_f(columns[air]):
            columns[air] = ch.c_from_f(columns[air])
            us = ", ".join(sorted(found & US_UNITS))
            _retext(mapped, air, f"no unit in log; degF, as the log's other units are US ({us})")


def _power_torque_from_data(
    unlabelled: set[str], columns: dict[str, F64], mapped: list[MappedChannel], notes: list[str]
) -> set[str]:
    """Power and torque units from P = T·ω (``dynounits.power_torque_units``); units found."""
    power_known, torque_known = "power_hp" not in unlabelled, "torque_nm" not in unlabelled
    p_unit, t_unit, why = power_torque_units(
        columns["power_hp"],
        columns["torque_nm"],
        columns["rpm"],
        power_known=power_known,
        torque_known=torque_known,
    )
    if not p_unit:
        names = " and ".join(m.original for m in mapped if m.canonical in ("power_hp", "torque_nm"))
        notes.append(
            f"warning: {names}: no unit in log, and the data fits no unit pair "
            f"({why}); taken as hp and N·m, check them"
        )
        return set()
    if not power_known:
        if p_unit == "kW":
            columns["power_hp"] = ch.hp_from_kw(columns["power_hp"])
        conv = " -> hp / 0.7457" if p_unit == "kW" else ""
        _retext(mapped, "power_hp", f"no unit in log; {p_unit} by torque x rpm{conv}")
    if not torque_known:
        if t_unit == "lb·ft":
            columns["torque_nm"] = ch.nm_from_lbft(columns["torque_nm"])
        conv = " -> N·m x 1.356" if t_unit == "lb·ft" else ""
        _retext(mapped, "torque_nm", f"no unit in log; {why}{conv}")
    return {p_unit, t_unit}


def _retext(mapped: list[MappedChannel], canonical: str, text: str) -> None:
    for i, m in enumerate(mapped):
        if m.canonical == canonical:
            mapped[i] = MappedChannel(m.original, canonical, text)


def _drop(
    columns: dict[str, F64], mapped: list[MappedChannel], unmapped: list[str], canonical: str
) -> str:
    """Take a mapped column back out (it is not what its name says); its original name."""
    del columns[canonical]
    source = next(m.original for m in mapped if m.canonical == canonical)
    mapped[:] = [m for m in mapped if m.canonical != canonical]
    unmapped.append(source)
    return source


TARGETS = frozenset({"afr_target", "lambda_target"})
"""Mixture targets: a non-positive value is "no target logged" (:func:`_no_target_as_nan`)."""


def _no_target_as_nan(arr: F64, text: str) -> tuple[F64, str]:
    """A target of 0 (or below) is no target: the samples become NaN, no data.

    TunerStudio writes "AFR Target" / "Lambda Target" as 0.0 when the ECU has no
    target table (markers.mlg): imported as a target of 0.0, the dashboard read
    "AFR 10.8/0.0" and its gauge had a target no engine can run at.
    """
    missing = ~(arr > 0.0) & np.isfinite(arr)
    count = int(np.count_nonzero(missing))
    if not count:
        return arr, text
    arr = np.where(missing, np.nan, arr)
    said = (
        "every value 0: no target logged, taken as no data"
        if count == arr.size
        else f"{count} values of 0: no target logged, taken as no data"
    )
    return arr, f"{text}; {said}" if text else said


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
    key = unit_key(unit).replace("(gauge)", "").replace("gauge", "")
    key = {"kpag": "kpa", "barg": "bar", "psig": "psi"}.get(key, key)
    if not key and "psi" in names[first].lower():
        key = "psi"
    if key not in PRESSURE:
        unmapped.append(names[first])
        notes.append(f"{names[first]}: boost in {unit!r} not recognised; left unmapped")
        return
    fn, text = PRESSURE[key]
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
