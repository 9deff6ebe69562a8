"""One WOT pull as a dyno sheet: binned, smoothed power, torque and mixture vs rpm.

Split out of the original ``core/dynosheet.py``: turning one pull's fused
columns into curves and peaks is the core of the sheet; the weather factor
comes from ``correction``. Samples are averaged in ``bin_rpm`` bins, then
smoothed with a centred moving average ``smoothing_rpm`` wide (NaN ignored),
so two sheets can be compared with the window stated in rpm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import STOICH_GASOLINE, W_PER_HP
from core.dynosheet.correction import Correction, correction_for, rounded

F64 = npt.NDArray[np.float64]

BIN_RPM = 50.0
DEFAULT_SMOOTHING_RPM = 250.0
MIN_BINS = 3
"""A pull needs this many rpm bins with data to make a curve."""


@dataclass(frozen=True, slots=True)
class PullSheet:
    """One WOT pull's curves (arrays share the ``rpm`` bins) and peaks."""

    index: int
    t_start: float
    t_stop: float
    rpm: F64
    power_hp: F64
    """Corrected, smoothed power per rpm bin (NaN where no power or torque was logged)."""
    torque_nm: F64
    lambda_: F64
    afr: F64
    drum_kph: F64
    power_hp_observed: F64
    """Smoothed, before correction."""
    correction: Correction
    smoothing_rpm: float
    cut_short: bool = False
    """The data ended during the pull (end of a log, or the run stopped mid-pull)."""

    @property
    def has_power(self) -> bool:
        return bool(np.isfinite(self.power_hp).any())

    def peak(self, what: str) -> tuple[float | None, float | None]:
        """(value, rpm) of the peak of ``power_hp`` or ``torque_nm``; (None, None) if none."""
        arr = self.power_hp if what == "power_hp" else self.torque_nm
        if not np.isfinite(arr).any():
            return None, None
        i = int(np.nanargmax(arr))
        return float(arr[i]), float(self.rpm[i])

    def summary_line(self, short: bool = False) -> str:
        """One line for the dashboard after the pull.

        ``short``: without the rpm range and the correction, for an 80-column alarm line
        (the peaks and the AFR span are what a tuner reads off it between pulls).
        """
        hp, hp_rpm = self.peak("power_hp")
        nm, nm_rpm = self.peak("torque_nm")
        afr = self.afr[np.isfinite(self.afr)]
        parts = [
            f"Pull {self.index}:"
            if short
            else f"Pull {self.index}: {self.rpm[0]:.0f}-{self.rpm[-1]:.0f} rpm"
        ]
        if hp is not None and nm is not None:
            parts.append(f"{hp:.1f} hp @ {hp_rpm:.0f}")
            parts.append(f"{nm:.1f} N·m @ {nm_rpm:.0f}")
        else:
            parts.append("no power/torque logged")
        if afr.size:
            parts.append(f"AFR {afr.min():.1f}-{afr.max():.1f}")
        if not short:
            parts.append(
                f"CF {self.correction.factor:.3f}" if self.correction.baro_kpa else "uncorrected"
            )
        if self.cut_short:
            parts.append("cut short")
        return " · ".join(parts).replace(": · ", ": ", 1)

    def to_dict(self) -> dict[str, Any]:
        hp, hp_rpm = self.peak("power_hp")
        nm, nm_rpm = self.peak("torque_nm")
        return {
            "index": self.index,
            "t_start": round(self.t_start, 3),
            "t_stop": round(self.t_stop, 3),
            "rpm": _list(self.rpm, 0),
            "power_hp": _list(self.power_hp, 2),
            "torque_nm": _list(self.torque_nm, 2),
            "lambda": _list(self.lambda_, 4),
            "afr": _list(self.afr, 2),
            "drum_kph": _list(self.drum_kph, 2),
            "power_hp_observed": _list(self.power_hp_observed, 2),
            "peak_power_hp": rounded(hp, 2),
            "peak_power_rpm": rounded(hp_rpm, 0),
            "peak_torque_nm": rounded(nm, 2),
            "peak_torque_rpm": rounded(nm_rpm, 0),
            "correction_factor": round(self.correction.factor, 4),
            "correction": self.correction.to_dict(),
            "cut_short": self.cut_short,
        }


def _list(arr: F64, digits: int) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), digits) for v in arr]


def _smooth(values: F64, bins: int) -> F64:
    """Centred moving average over ``bins`` neighbours, ignoring NaN (edges use what exists)."""
    if bins <= 1:
        return values
    ok = np.isfinite(values)
    kernel = np.ones(bins)
    num = np.convolve(np.where(ok, values, 0.0), kernel, mode="same")
    den = np.convolve(ok.astype(np.float64), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(ok, out, np.nan)


def _median(arr: F64 | None) -> float | None:
    if arr is None:
        return None
    ok = arr[np.isfinite(arr)]
    return float(np.median(ok)) if ok.size else None


def _air_temp(cols: Mapping[str, F64]) -> float | None:
    """The air temperature for the weather correction: the dyno's own (``ambient_c``), else IAT.

    A dyno corrects with its weather station's reading (WinPEP's DWRT ATMO module);
    the ECU's IAT is the fallback when no weather module is logged.
    """
    ambient = _median(cols.get("ambient_c"))
    return ambient if ambient is not None else _median(cols.get("iat_c"))


def pull_sheet(
    index: int,
    cols: Mapping[str, F64],
    *,
    stoich: float = STOICH_GASOLINE,
    smoothing_rpm: float = DEFAULT_SMOOTHING_RPM,
    correction: str = "sae",
    humidity_pct: float | None = None,
    bin_rpm: float = BIN_RPM,
    cut_short: bool = False,
) -> PullSheet | None:
    """The sheet of one pull from its fused columns (``t``, ``rpm``, ...); None if too short."""
    t, rpm = cols["t"], cols["rpm"]
    n = t.size
    nan = np.full(n, np.nan)
    power = cols.get("power_hp", nan)
    torque = cols.get("torque_nm", nan)
    omega = rpm * (2.0 * np.pi / 60.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.where(np.isfinite(power), power, torque * omega / W_PER_HP)
        torque = np.where(np.isfinite(torque), torque, power * W_PER_HP / omega)
    ok = np.isfinite(rpm) & (rpm > 0)
    if ok.sum() < 2:
        return None
    lo = math.floor(float(rpm[ok].min()) / bin_rpm)
    idx = np.floor(rpm / bin_rpm).astype(np.int64) - lo
    nbins = int(idx[ok].max()) + 1

    def binned(values: F64) -> F64:
        good = ok & np.isfinite(values)
        total = np.bincount(idx[good], weights=values[good], minlength=nbins)
        count = np.bincount(idx[good], minlength=nbins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    counts = np.bincount(idx[ok], minlength=nbins)
    keep = counts > 0
    if keep.sum() < MIN_BINS:
        return None
    centres: F64 = ((np.arange(nbins) + lo + 0.5) * bin_rpm).astype(np.float64)
    width = max(1, round(smoothing_rpm / bin_rpm)) if smoothing_rpm > 0 else 1
    if width > 1 and width % 2 == 0:
        width += 1  # a centred window has an odd number of bins

    def curve(values: F64) -> F64:
        return _smooth(binned(values)[keep], width)

    lam = cols.get("lambda", nan)
    corr = correction_for(
        correction,
        _median(cols.get("baro_kpa")),
        _air_temp(cols),
        _median(cols.get("humidity_pct")) if "humidity_pct" in cols else humidity_pct,
    )
    power_obs = curve(power)
    lam_curve = curve(lam)
    return PullSheet(
        index=index,
        t_start=float(t[0]),
        t_stop=float(t[-1]),
        rpm=centres[keep],
        power_hp=power_obs * corr.factor,
        torque_nm=curve(torque) * corr.factor,
        lambda_=lam_curve,
        afr=lam_curve * stoich,
        drum_kph=curve(cols.get("drum_speed_kph", nan)),
        power_hp_observed=power_obs,
        correction=corr,
        smoothing_rpm=(width * bin_rpm) if width > 1 else 0.0,
        cut_short=cut_short,
    )
