"""Dyno sheet: power, torque and mixture vs rpm for every WOT pull, weather corrected.

After every pull a dyno operator looks at the power and torque curves, the peaks
and the mixture, over the previous pulls (what WinPEP or Power Core show). This
module turns the engine's fused rows plus the pull detector's ``wot_pull``
events into one :class:`PullSheet` per pull, the same way live (the dashboard's
pulls screen) and offline (``dynoai report``): :class:`SheetTap` wraps the
session's tracker, sees every fused block and every pull event, and hands them
to a :class:`DynoSheetBuilder`. Nothing here re-fuses or re-detects anything.

Curves: samples of the pull (from the detected start to the top rpm) are
averaged in ``bin_rpm`` (50 rpm) bins, then smoothed with a centred moving
average ``smoothing_rpm`` wide (default 250 rpm, i.e. 5 bins; 0 = raw bin
means). That is the knob WinPEP calls smoothing, stated here as a window in rpm
so two sheets can be compared. Torque comes from the ``torque_nm`` channel (or
from power and rpm when only power is logged), power from ``power_hp`` (or from
torque); drum speed and lambda are averaged in the same bins.

Weather correction (what the sheet says it used, and from which inputs):

* **SAE J1349** (June 1990 revision, the form dyno software uses): reference
  99 kPa dry air, 25 degC::

      CF = 1.18 * (99 / Pd) * sqrt((T + 273) / 298) - 0.18

* **STD** (the older SAE J607 "standard"): 29.92 inHg (101.325 kPa) dry air,
  60 degF (15.6 degC)::

      CF = (101.325 / Pd) * sqrt((T + 273.15) / 288.7)

  Public descriptions of both: Dynomite Dynamometer, "Corrected Horsepower"
  (dynomitedynamometer.com/dyno-tech-talk/corrected-horsepower.htm) and
  B. Bowling, "standard corrections", DIY-EFI list, 1 Mar 1995.

``Pd`` is the dry-air pressure, baro minus water vapour pressure; ``T`` the
intake air temperature. Inputs are the medians over the pull of ``baro_kpa``
and ``iat_c`` and, when logged, ``humidity_pct`` (else the given humidity, else
dry air, which the sheet says). Vapour pressure = RH x saturation pressure
(Buck 1996: ``0.61121 exp((18.678 - T/234.5) (T / (257.14 + T)))`` kPa). With no
baro logged the sheet is uncorrected (CF 1, said so).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import STOICH_GASOLINE
from core.frames import Block
from core.source import SourceEvent

F64 = npt.NDArray[np.float64]

HP_W = 745.699872
BIN_RPM = 50.0
DEFAULT_SMOOTHING_RPM = 250.0
CORRECTIONS = ("sae", "std", "none")
CORRECTION_NAMES = {"sae": "SAE J1349", "std": "STD (SAE J607)", "none": "uncorrected"}
KEEP_S = 180.0
"""Seconds of fused rows kept for the pull in progress (a WOT pull lasts < 30 s)."""
MIN_BINS = 3
"""A pull needs this many rpm bins with data to make a curve."""
_CHANNELS = (
    "rpm", "power_hp", "torque_nm", "lambda", "drum_speed_kph", "baro_kpa", "iat_c",
    "humidity_pct",
)  # fmt: skip


def saturation_kpa(temp_c: float) -> float:
    """Saturation vapour pressure of water over liquid (Buck 1996), kPa."""
    return 0.61121 * math.exp((18.678 - temp_c / 234.5) * (temp_c / (257.14 + temp_c)))


def sae_j1349_factor(dry_kpa: float, temp_c: float) -> float:
    return 1.18 * (99.0 / dry_kpa) * math.sqrt((temp_c + 273.0) / 298.0) - 0.18


def std_factor(dry_kpa: float, temp_c: float) -> float:
    return (101.325 / dry_kpa) * math.sqrt((temp_c + 273.15) / 288.7)


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
        temp = "" if self.air_temp_c is None else f", {self.air_temp_c:.1f} C"
        note = f"; {self.note}" if self.note else ""
        return f"{self.name} CF {self.factor:.3f} from {self.baro_kpa:.1f} kPa{temp}, {rh}{note}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "factor": round(self.factor, 4),
            "sae_j1349_factor": _r(self.sae_factor, 4),
            "std_factor": _r(self.std_factor, 4),
            "inputs": {
                "baro_kpa": _r(self.baro_kpa, 2),
                "air_temp_c": _r(self.air_temp_c, 2),
                "humidity_pct": _r(self.humidity_pct, 1),
                "vapour_kpa": _r(self.vapour_kpa, 3),
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
        notes.append("no intake temperature logged: 25 C assumed")
        temp = 25.0
    if rh is None:
        notes.append("no humidity logged")
    vapour = (rh or 0.0) / 100.0 * saturation_kpa(temp)
    dry = baro - vapour
    sae, std = sae_j1349_factor(dry, temp), std_factor(dry, temp)
    factor = {"sae": sae, "std": std, "none": 1.0}[method]
    return Correction(method, factor, sae, std, baro, temp, rh, vapour, "; ".join(notes))


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

    def summary_line(self) -> str:
        """One line for the dashboard after the pull."""
        hp, hp_rpm = self.peak("power_hp")
        nm, nm_rpm = self.peak("torque_nm")
        afr = self.afr[np.isfinite(self.afr)]
        parts = [f"Pull {self.index}: {self.rpm[0]:.0f}-{self.rpm[-1]:.0f} rpm"]
        if hp is not None and nm is not None:
            parts.append(f"{hp:.1f} hp @ {hp_rpm:.0f}")
            parts.append(f"{nm:.1f} N·m @ {nm_rpm:.0f}")
        else:
            parts.append("no power/torque logged")
        if afr.size:
            parts.append(f"AFR {afr.min():.1f}-{afr.max():.1f}")
        parts.append(
            f"CF {self.correction.factor:.3f}" if self.correction.baro_kpa else "uncorrected"
        )
        if self.cut_short:
            parts.append("cut short")
        return " · ".join(parts)

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
            "peak_power_hp": _r(hp, 2),
            "peak_power_rpm": _r(hp_rpm, 0),
            "peak_torque_nm": _r(nm, 2),
            "peak_torque_rpm": _r(nm_rpm, 0),
            "correction_factor": round(self.correction.factor, 4),
            "correction": self.correction.to_dict(),
            "cut_short": self.cut_short,
        }


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


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
        power = np.where(np.isfinite(power), power, torque * omega / HP_W)
        torque = np.where(np.isfinite(torque), torque, power * HP_W / omega)
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
        _median(cols.get("iat_c")),
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


class DynoSheetBuilder:
    """Keeps the recent fused rows and cuts a :class:`PullSheet` at each WOT ``pull_stop``.

    Fed from the engine thread; ``pulls`` is an immutable tuple swapped by
    reference, so the UI reads it from its own thread without a lock.
    """

    def __init__(
        self,
        *,
        stoich: float = STOICH_GASOLINE,
        smoothing_rpm: float = DEFAULT_SMOOTHING_RPM,
        correction: str = "sae",
        humidity_pct: float | None = None,
    ) -> None:
        if correction not in CORRECTIONS:
            raise ValueError(f"correction {correction!r} is not one of {', '.join(CORRECTIONS)}")
        self.stoich = stoich
        self.smoothing_rpm = smoothing_rpm
        self.correction = correction
        self.humidity_pct = humidity_pct
        self.pulls: tuple[PullSheet, ...] = ()
        self._rows: deque[dict[str, F64]] = deque()

    def reset(self) -> None:
        """A replay seek: the data restarts, and so do the pulls."""
        self._rows.clear()
        self.pulls = ()

    def feed(
        self, block: Block, events: Iterable[SourceEvent] = (), *, cut_short: bool = False
    ) -> list[PullSheet]:
        """Take fused rows and the events the detector emitted for them; return new sheets.

        ``cut_short``: these events close pulls because the data ended, not the pull.
        """
        if len(block):
            cols = {"t": block.t}
            for name in _CHANNELS:
                if name in block.columns:
                    cols[name] = block.columns[name]
            self._rows.append(cols)
            newest = float(block.t[-1])
            while self._rows and float(self._rows[0]["t"][-1]) < newest - KEEP_S:
                self._rows.popleft()
        made = []
        for event in events:
            if event.kind == "pull_stop" and event.data.get("test_type") == "wot_pull":
                t0 = float(event.data.get("t_start", event.t))
                sheet = self._cut(t0, event.t, cut_short)
                if sheet is not None:
                    made.append(sheet)
                    self.pulls = (*self.pulls, sheet)
        return made

    def _cut(self, t0: float, t1: float, cut_short: bool) -> PullSheet | None:
        pieces = [r for r in self._rows if r["t"][-1] >= t0 and r["t"][0] <= t1]
        if not pieces:
            return None
        names = set().union(*(p.keys() for p in pieces))
        cols: dict[str, F64] = {}
        for name in names:
            cols[name] = np.concatenate([p.get(name, np.full(p["t"].size, np.nan)) for p in pieces])
        sel = (cols["t"] >= t0) & (cols["t"] <= t1)
        cols = {k: v[sel] for k, v in cols.items()}
        if "rpm" not in cols:
            return None
        return pull_sheet(
            len(self.pulls) + 1,
            cols,
            stoich=self.stoich,
            smoothing_rpm=self.smoothing_rpm,
            correction=self.correction,
            humidity_pct=self.humidity_pct,
            cut_short=cut_short,
        )


class SheetTap:
    """Wraps the session's tracker: every fused block and pull event also feeds a builder.

    The engine calls ``on_rows`` with the fused, filtered rows; the wrapped
    tracker detects pulls there, and the tap passes the same rows and events on.
    Everything else is the wrapped tracker's.
    """

    def __init__(self, inner: Any, builder: DynoSheetBuilder) -> None:
        self.inner = inner
        self.sheet = builder

    def on_rows(self, block: Block, result: Any, grid: Any) -> list[SourceEvent]:
        events: list[SourceEvent] = self.inner.on_rows(block, result, grid)
        self.sheet.feed(block, events)
        return events

    def restart_run(self) -> None:
        self.sheet.reset()
        self.inner.restart_run()

    def finish(self, grid: Any, stats: Mapping[str, object]) -> None:
        # The pull in progress at the end of the data is closed by the detector here.
        for event in self.inner.detector.flush() if hasattr(self.inner, "detector") else ():
            self.sheet.feed(Block("fused", np.empty(0), {}), [event], cut_short=True)
        self.inner.finish(grid, stats)

    def plan(self, grid: Any, values: Mapping[str, float]) -> Any:
        return self.inner.plan(grid, values)

    def checkpoint(self, grid: Any) -> None:
        self.inner.checkpoint(grid)

    def set_constraints(self, constraints: Any) -> None:
        self.inner.set_constraints(constraints)

    def __getattr__(self, name: str) -> Any:
        # Everything the tap does not change is the wrapped tracker's (checked
        # predictions, calibration, warm-up of the candidate models, ...).
        return getattr(self.inner, name)

    @property
    def pulls_done(self) -> int:
        return int(self.inner.pulls_done)

    @property
    def pulls_max(self) -> int | None:
        return self.inner.pulls_max


def sheet_to_dict(
    pulls: Sequence[PullSheet], *, source: str, vehicle: str, stoich: float, correction: str
) -> dict[str, Any]:
    """The JSON contract of ``dynoai report --format json`` (see docs/report.md)."""
    return {
        "format": "dynoai-dynosheet",
        "version": 1,
        "source": source,
        "vehicle": vehicle,
        "stoich": stoich,
        "correction": correction,
        "correction_name": CORRECTION_NAMES[correction],
        "bin_rpm": BIN_RPM,
        "smoothing_rpm": pulls[0].smoothing_rpm if pulls else None,
        "pulls": [p.to_dict() for p in pulls],
    }


def sheet_to_text(pulls: Sequence[PullSheet], *, title: str, step_rpm: float = 250.0) -> str:
    """A plain-text dyno sheet: peaks per pull, then each pull's table every ``step_rpm``."""
    if not pulls:
        return f"{title}\nno WOT pull found"
    lines = [title, ""]
    lines.append(" pull  rpm range    peak power      peak torque      AFR range   correction")
    for p in pulls:
        hp, hp_rpm = p.peak("power_hp")
        nm, nm_rpm = p.peak("torque_nm")
        afr = p.afr[np.isfinite(p.afr)]
        afr_range = f"{afr.min():.1f}-{afr.max():.1f}" if afr.size else "--"
        power = f"{hp:6.1f} hp @ {hp_rpm:4.0f}" if hp is not None else "      --        "
        torque = f"{nm:6.1f} Nm @ {nm_rpm:4.0f}" if nm is not None else "      --        "
        cut = " (cut short: the data ended during the pull)" if p.cut_short else ""
        lines.append(
            f" {p.index:4d}  {p.rpm[0]:4.0f}-{p.rpm[-1]:4.0f}  {power}  {torque}  "
            f"{afr_range:>10}   {p.correction.describe()}{cut}"
        )
    smoothing = pulls[0].smoothing_rpm
    lines.append("")
    lines.append(
        f"curves: {BIN_RPM:.0f} rpm bins, smoothed over {smoothing:.0f} rpm"
        if smoothing
        else f"curves: {BIN_RPM:.0f} rpm bins, not smoothed"
    )
    for p in pulls:
        lines.append("")
        lines.append(f"pull {p.index}")
        lines.append("   rpm   power hp  torque Nm    AFR  lambda  drum km/h")
        marks = np.arange(math.ceil(p.rpm[0] / step_rpm) * step_rpm, p.rpm[-1] + 1, step_rpm)
        for mark in marks:
            i = int(np.argmin(np.abs(p.rpm - mark)))
            lines.append(
                f"  {p.rpm[i]:4.0f}  {_fmt(p.power_hp[i], 9, 1)}  {_fmt(p.torque_nm[i], 9, 1)}"
                f"  {_fmt(p.afr[i], 5, 1)}  {_fmt(p.lambda_[i], 6, 3)}  {_fmt(p.drum_kph[i], 9, 1)}"
            )
    return "\n".join(lines)


def _fmt(value: float, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if math.isfinite(value) else "--".rjust(width)
