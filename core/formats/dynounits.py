"""Units of columns a log does not label, read from the data: power/torque pairs and weather.

A dyno's CSV export names its channels but carries no units: WinPEP 8 / Power
Core write ``(DWRT CPU) Power``, ``(DWRT CPU) Torque``, ``(DWRT ATMO) Pressure``
in whatever units the operator's display was set to (PROTOCOLS §7, "The file
carries no units"; bgriggs/wrl-dyno-check ``DemoRuns/RunFile_40.csv``). Taking
every such column in the canonical unit read a US export's 90 lb·ft as 90 N·m
and its 29.92 inHg as 29.92 kPa. The data can tell:

* power and torque are one measurement (P = T·ω), so ``T·rpm / P`` is a constant
  fixed by the unit pair: 5252 for hp and lb·ft, 9549 for kW and N·m, 7121 for
  hp and N·m, 7043 for kW and lb·ft (the last two are 1 % apart: data cannot
  tell them apart, and the canonical pair, hp and N·m, is kept and said so);
* a barometer reads 50-110 kPa, so its magnitude names the unit (inHg ~30,
  psi ~14.7, mbar ~1000, bar ~1);
* an air temperature without unit is taken in degF only when the same log's
  other unlabelled columns were found in US units (a dyno exports one unit
  system), never from its magnitude alone: 60 C is an ordinary intake temperature.

Each decision is written into the column's conversion text for the import
summary, and a pair that fits no units is a note (a warning), never a guess.
"""

from __future__ import annotations

import numpy as np

from core import channels as ch

F64 = ch.FloatArray

K_HP_NM = 60.0 * ch.W_PER_HP / (2.0 * np.pi)
"""T[N·m]·rpm / P[hp] for any pull: 7120.9 (P = T·ω)."""
_KW_PER_HP = ch.W_PER_HP / 1000.0
_NM_PER_LBFT = float(ch.nm_from_lbft(1.0))
FIT_TOLERANCE = 0.04
"""Largest relative distance of the median T·rpm/P from a unit pair's constant to fit it."""
MIN_RPM = 1000.0
"""Samples below this rpm are not used for the fit (a few hp at idle is mostly rounding)."""

_PAIRS: tuple[tuple[str, str], ...] = (
    ("hp", "N·m"),
    ("hp", "lb·ft"),
    ("kW", "N·m"),
    ("kW", "lb·ft"),
)
"""(power, torque) unit pairs, the canonical one first (kept when two fit alike)."""


def pair_constant(power_unit: str, torque_unit: str) -> float:
    """T·rpm / P in the given units: 5252 for hp and lb·ft, 9549 for kW and N·m."""
    power_to_hp = 1.0 / _KW_PER_HP if power_unit == "kW" else 1.0
    torque_to_nm = _NM_PER_LBFT if torque_unit == "lb·ft" else 1.0
    return K_HP_NM * power_to_hp / torque_to_nm


def power_torque_units(
    power: F64, torque: F64, rpm: F64, *, power_known: bool, torque_known: bool
) -> tuple[str, str, str]:
    """The units of unlabelled power / torque columns that make P = T·ω hold.

    Args:
        power: Power values, in hp when ``power_known`` (converted by its unit), else raw.
        torque: Torque values, in N·m when ``torque_known``, else raw.
        rpm: Engine speed of the same rows.
        power_known: The log gave power's unit (it stays hp).
        torque_known: The log gave torque's unit (it stays N·m).

    Returns:
        ``(power_unit, torque_unit, why)``: the pair chosen (``"hp"``/``"kW"``,
        ``"N·m"``/``"lb·ft"``) and one phrase saying how; ``power_unit`` is empty
        when the data fits no pair (``why`` then says what it was).
    """
    ok = (
        np.isfinite(power)
        & np.isfinite(torque)
        & np.isfinite(rpm)
        & (rpm >= MIN_RPM)
        & (np.abs(power) > 1e-6)
        & (np.abs(torque) > 1e-6)
    )
    if int(ok.sum()) < 3:
        return "", "", "too few rows with power, torque and rpm to tell their units"
    ratio = float(np.median(torque[ok] * rpm[ok] / power[ok]))
    pairs = [
        (p, t)
        for p, t in _PAIRS
        if (p == "hp" or not power_known) and (t == "N·m" or not torque_known)
    ]
    fits = [(p, t) for p, t in pairs if abs(ratio / pair_constant(p, t) - 1.0) <= FIT_TOLERANCE]
    if not fits:
        expected = ", ".join(f"{pair_constant(p, t):.0f} ({p}, {t})" for p, t in pairs)
        return "", "", f"torque x rpm / power is {ratio:.0f}, none of {expected}"
    p, t = fits[0]
    why = f"torque x rpm / power = {ratio:.0f} fits {p} and {t} ({pair_constant(p, t):.0f})"
    if len(fits) > 1:
        others = " or ".join(f"{op} and {ot}" for op, ot in fits[1:])
        why += f"; {others} would fit as well, canonical units kept"
    return p, t, why


_BARO_RANGES: tuple[tuple[str, float, float, float], ...] = (
    ("bar", 0.5, 1.1, 100.0),
    ("psi", 7.2, 16.0, float(ch.kpa_from_psi(1.0))),
    ("inHg", 16.0, 32.5, float(ch.kpa_from_inhg(1.0))),
    ("kPa", 50.0, 110.0, 1.0),
    ("mbar", 500.0, 1100.0, 0.1),
)
"""Unit, range of a barometer's reading in it (50-110 kPa), and kPa per unit."""


def baro_unit(values: F64) -> tuple[str, float]:
    """The unit an unlabelled barometer reads in, from its median, and kPa per unit.

    ``("", 1.0)`` when the median is no barometer reading in any of them. Psi and
    inHg meet at 16 (110 kPa in psi, 54 kPa in inHg: 5 km up): taken as psi.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "", 1.0
    median = float(np.median(finite))
    for unit, lo, hi, kpa in _BARO_RANGES:
        if lo <= median <= hi:
            return unit, kpa
    return "", 1.0


US_UNITS = frozenset({"lb·ft", "inHg", "psi"})
"""Units found from the data that say the log was written in US units (so temperatures in degF)."""


def air_temp_in_f(values: F64) -> bool:
    """Plausible as an air temperature in degF (-40..160 F): the log's US units may apply."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and float(finite.min()) >= -40.0 and float(finite.max()) <= 160.0
