"""Which canonical channel a column's name means (and which columns are left out).

Split out of ``mapping``: reading a name is one job — normalise it, try the
forms with and without a device prefix, suffix or bracketed qualifier, look each
up in :data:`core.formats.aliases.ALIASES` — and deciding what a column is *not*
(a narrowband O2, a boost gauge to make absolute) belongs with it. The unit is
consulted only where the name alone cannot tell (a wideband analog input logged
in lambda or AFR).
"""

from __future__ import annotations

import re

from core.formats.aliases import ALIASES
from core.formats.units import AFR_UNITS, LAMBDA_UNITS, unit_key

_BY_ALIAS: dict[str, str] = {alias: canon for canon, names in ALIASES.items() for alias in names}


def normalise(name: str) -> str:
    """Lower-case, units in brackets dropped, punctuation folded to single spaces."""
    name = re.sub(r"\(.*?\)|\[.*?\]", " ", name)
    name = re.sub(r"[^0-9a-z]+", " ", name.lower())
    return name.strip()


_LOCATION = re.compile(
    r"^(bank|sensor|cyl(inder)?|b|s)\s*\d+(\s*(sensor|s)\s*\d+)?$", re.IGNORECASE
)
"""A bracket naming where a sensor sits ("Bank 1  Sensor 1"), which is no unit."""


def split_name_unit(header: str) -> tuple[str, str]:
    """``"Engine Speed (rpm)"`` -> ``("Engine Speed", "rpm")``; no brackets -> empty unit.

    OBDLink writes the sensor's place last, "O2 sensor lambda wide range (current
    probe)  (Bank 1  Sensor 1)": such a bracket stays part of the name.
    """
    m = re.match(r"^\s*(.*?)\s*[(\[]([^()\[\]]*)[)\]]\s*$", header)
    if m and m.group(1) and not _LOCATION.match(m.group(2).strip()):
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


def wideband_by_unit(name: str, unit: str) -> str | None:
    """A column in lambda or AFR from a wideband device (an analog input named after it)."""
    key = unit_key(unit)
    if key not in LAMBDA_UNITS and key not in AFR_UNITS:
        return None
    norm = _with_qualifiers(name)
    if "target" in norm or "command" in norm or not _WIDEBAND_DEVICES.search(norm):
        return None
    return "lambda" if key in LAMBDA_UNITS else "afr"


def is_boost(name: str) -> bool:
    """A pressure relative to the atmosphere (boost, relative MAP)."""
    return any(key in _BOOST_NAMES for key in _candidates(name))


def is_narrowband(name: str, unit: str) -> bool:
    """A narrowband O2 sensor: volts around 0.45, never a lambda to bin."""
    key = normalise(name)
    if unit_key(unit) in LAMBDA_UNITS | AFR_UNITS or re.search(r"\b(wide|wideband|wb|uego)\b", key):
        return False
    if unit_key(unit) in ("v", "mv", "volts", "volt") and (
        "o2" in key or "oxygen" in key or "lambda" in key or "afr" in key
    ):
        return True
    return bool(_NARROWBAND.search(key))
