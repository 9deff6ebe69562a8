"""Sample filters: which samples are steady enough to tune from.

A fuel-table cell should only learn from samples where the engine is warm, the
wideband is alive, and the fuelling is what the table says: no accel enrichment,
no fuel cut, and not in the half second after a throttle transient while the
wall film and the sensor settle. Every rejected sample is counted under exactly
one reason (the first in :data:`REASONS` that applies) so the tuner sees why data
did not count.

The chain is stateful across the successive blocks of one stream: the throttle
rate, the hold-off after a transient, the dwell time and knock edges all need the
samples before the block (an engine tick may hand over just three samples). Each
block is processed with whole-array numpy operations; there is no Python loop per
sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import CHANNELS
from core.config import ConfigError
from core.frames import Block

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]

REASONS: tuple[str, ...] = (
    "stale_channel",
    "engine_not_running",
    "cold",
    "decel_fuel_cut",
    "wideband_dead",
    "wideband_railed",
    "accel_enrich",
    "transient_holdoff",
)
"""Reject reasons in evaluation order; a sample counts once, under the first that applies.
Fuel cut comes before the wideband checks: in fuel cut the sensor reads pure air,
which is no fault of the sensor, and "railed" would send the tuner looking for one.
(``outside_table`` is counted by the grid, after these.)"""


@dataclass(frozen=True)
class FilterLimits:
    """Limits deciding which samples count (vehicle config ``[filters]``)."""

    min_running_rpm: float = 400.0
    """Below this the engine is cranking or stopped (``engine_not_running``)."""
    min_clt_c: float = 60.0
    """Coolant below this is warm-up enrichment (``cold``); skipped when there is no clt_c."""
    lambda_min: float = 0.6
    """Wideband readings below this are a dead or unheated sensor (``wideband_dead``)."""
    lambda_max: float = 1.6
    """Readings above this are the lean rail: free air, misfire, overrun (``wideband_railed``)."""
    max_tps_rate_pct_s: float = 40.0
    """Throttle opening faster than this (%/s) triggers accel enrichment (``accel_enrich``);
    closing faster is decel enleanment (``decel_fuel_cut``)."""
    tps_rate_window_s: float = 0.1
    """Throttle rate is measured over this span so 0.4 % TPS quantisation is not a transient."""
    max_accel_enrich_pct: float = 1.0
    """ECU accel enrichment (extra fuel %, 0 = inactive) above this is ``accel_enrich``."""
    decel_tps_max_pct: float = 2.0
    """Closed throttle, for overrun detection when the ECU reports no dfco flag."""
    decel_min_rpm: float = 1500.0
    """Closed throttle above this rpm is overrun, not idle."""
    decel_max_map_kpa: float = 35.0
    """... and with MAP below this (manifold vacuum of an overrun)."""
    transient_holdoff_s: float = 0.5
    """Samples this soon after an accel/decel event are ``transient_holdoff``."""
    max_dwell_s: float = 0.1
    """A sample's dwell (time since the previous sample) is clipped to this, so a gap
    in the data is not credited to one cell."""
    required_channels: tuple[str, ...] = ("rpm", "map_kpa", "lambda")
    """NaN (stale or missing) in any of these rejects the sample (``stale_channel``)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "required_channels":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"filters.{f.name}: expected a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"filters.{f.name}: must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        for name in ("lambda_min", "max_dwell_s", "tps_rate_window_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"filters.{name}: must be greater than 0")
        if self.lambda_max <= self.lambda_min:
            raise ConfigError(
                f"filters.lambda_max: {self.lambda_max:g} must be greater than "
                f"lambda_min {self.lambda_min:g}"
            )
        req = self.required_channels
        if isinstance(req, str) or not isinstance(req, (tuple, list)):
            raise ConfigError(f"filters.required_channels: expected a list of names, got {req!r}")
        for name in req:
            if not isinstance(name, str) or name not in CHANNELS:
                raise ConfigError(
                    f"filters.required_channels: {name!r} is not a canonical channel name"
                )
        object.__setattr__(self, "required_channels", tuple(req))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> FilterLimits:
        """From a config table; an unknown key or a bad value is a ConfigError naming it."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"filters: expected a table of limits, got {d!r}")
        known = {f.name for f in fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(
                    f"filters.{key}: unknown filter limit (known: {', '.join(sorted(known))})"
                )
        return cls(**dict(d))


@dataclass(frozen=True)
class FilterResult:
    """What the chain decided for one block (arrays as long as the block).

    Attributes:
        keep: True where the sample may be binned.
        dwell_s: Time since the previous sample of the stream, clipped to max_dwell_s
            (0 for the very first sample).
        knock_events: 1 where a knock event starts at this sample.
        reason: 0 where kept, else 1 + the index in REASONS of the reason it was rejected for.
    """

    keep: Mask
    dwell_s: F64
    knock_events: I64
    reason: I8 = field(default_factory=lambda: np.zeros(0, dtype=np.int8))


_EMPTY = np.zeros(0, dtype=np.float64)


class FilterChain:
    """Stateful, vectorised filter over the successive blocks of one stream."""

    def __init__(self, limits: FilterLimits | None = None) -> None:
        self.limits = limits if limits is not None else FilterLimits()
        self.rejects: dict[str, int] = dict.fromkeys(REASONS, 0)
        """Rejected samples per reason since the last reset."""
        self.samples_seen = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new session): carried samples, timers and counts."""
        self.rejects = dict.fromkeys(REASONS, 0)
        self.samples_seen = 0
        self._last_t = math.nan
        self._last_event_t = -math.inf
        self._tps_hist_t = _EMPTY
        self._tps_hist = _EMPTY
        self._last_knock_count = math.nan
        self._last_knock_retard = math.nan

    # -- the chain ----------------------------------------------------------------------

    def apply(self, block: Block) -> FilterResult:
        """Decide keep/reject for every sample of ``block`` and count the rejects."""
        lim = self.limits
        n = len(block)
        t = block.t
        cols = block.columns
        if n == 0:
            return FilterResult(
                np.zeros(0, bool), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int8)
            )

        if t[0] < self._last_t:
            # The clock went backwards (a source restarted): carried timers are meaningless.
            self._last_t = math.nan
            self._last_event_t = -math.inf
            self._tps_hist_t = self._tps_hist = _EMPTY
        rpm = block.column("rpm")
        accel, decel = self._transients(block, rpm)
        events = accel | decel
        holdoff = self._holdoff(t, events)

        conditions: dict[str, Mask] = {}
        stale = np.zeros(n, dtype=bool)
        for name in lim.required_channels:
            col = cols.get(name)
            if col is None:
                stale[:] = True
                break
            stale |= np.isnan(col)
        conditions["stale_channel"] = stale
        conditions["engine_not_running"] = rpm < lim.min_running_rpm
        clt = cols.get("clt_c")
        if clt is not None:
            conditions["cold"] = clt < lim.min_clt_c
        lam = cols.get("lambda")
        if lam is not None:
            conditions["wideband_dead"] = lam < lim.lambda_min
            conditions["wideband_railed"] = lam > lim.lambda_max
        conditions["accel_enrich"] = accel
        conditions["decel_fuel_cut"] = decel
        conditions["transient_holdoff"] = holdoff

        reason = np.zeros(n, dtype=np.int8)
        keep = np.ones(n, dtype=bool)
        for code, name in enumerate(REASONS, start=1):
            cond = conditions.get(name)
            if cond is None:
                continue
            hit = cond & keep
            count = int(np.count_nonzero(hit))
            if count:
                self.rejects[name] += count
                reason[hit] = code
                keep &= ~cond
        self.samples_seen += n

        dwell_s = self._dwell(t)
        knock = self._knock_events(block)
        return FilterResult(keep, dwell_s, knock, reason)

    # -- pieces -------------------------------------------------------------------------

    def _tps_rate(self, t: F64, tps: F64) -> F64:
        """Throttle rate in %/s over ``tps_rate_window_s``, using the previous block's tail."""
        window_s = self.limits.tps_rate_window_s
        finite = np.isfinite(tps)
        t_new, tps_new = (t, tps) if finite.all() else (t[finite], tps[finite])
        t_all = np.concatenate((self._tps_hist_t, t_new))
        tps_all = np.concatenate((self._tps_hist, tps_new))
        rate = np.full(t.shape, np.nan)
        if t_all.size:
            # For each sample, the latest sample at least one window earlier (or the
            # oldest there is, at the start of the stream).
            j = np.searchsorted(t_all, t - window_s, side="right") - 1
            np.maximum(j, 0, out=j)
            dt = t - t_all[j]
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(dt > 0, (tps - tps_all[j]) / dt, 0.0)
            keep_from = max(int(np.searchsorted(t_all, t_all[-1] - window_s, "right")) - 1, 0)
            self._tps_hist_t = t_all[keep_from:].copy()
            self._tps_hist = tps_all[keep_from:].copy()
        return rate

    def _transients(self, block: Block, rpm: F64) -> tuple[Mask, Mask]:
        """(accel, decel) event masks: enrichment/fast opening, fuel cut/fast closing."""
        lim = self.limits
        n = len(block)
        cols = block.columns
        accel = np.zeros(n, dtype=bool)
        decel = np.zeros(n, dtype=bool)
        tps = cols.get("tps_pct")
        if tps is not None:
            rate = self._tps_rate(block.t, tps)
            accel |= rate > lim.max_tps_rate_pct_s
            decel |= rate < -lim.max_tps_rate_pct_s
            overrun = tps < lim.decel_tps_max_pct
            overrun &= rpm > lim.decel_min_rpm
            overrun &= block.column("map_kpa") < lim.decel_max_map_kpa
        else:
            overrun = np.zeros(n, dtype=bool)
        ae = cols.get("accel_enrich_pct")
        if ae is not None:
            accel |= ae > lim.max_accel_enrich_pct
        dfco = cols.get("dfco")
        if dfco is not None:
            # The ECU's own flag wins where it is known; infer from the throttle elsewhere.
            overrun = np.where(np.isnan(dfco), overrun, dfco > 0.5)
        decel |= overrun
        return accel, decel

    def _holdoff(self, t: F64, events: Mask) -> Mask:
        """True within ``transient_holdoff_s`` after the latest accel/decel event."""
        holdoff_s = self.limits.transient_holdoff_s
        if not events.any():
            if t[0] - self._last_event_t >= holdoff_s:
                return np.zeros(t.shape, dtype=bool)
            return (t - self._last_event_t) < holdoff_s
        event_t = np.where(events, t, -np.inf)
        event_t[0] = max(event_t[0], self._last_event_t)
        last_event_t = np.maximum.accumulate(event_t)
        self._last_event_t = float(last_event_t[-1])
        result: Mask = (t - last_event_t) < holdoff_s
        return result

    def _dwell(self, t: F64) -> F64:
        dwell = np.diff(t, prepend=t[0] if math.isnan(self._last_t) else self._last_t)
        np.clip(dwell, 0.0, self.limits.max_dwell_s, out=dwell)
        self._last_t = float(t[-1])
        return dwell

    def _knock_events(self, block: Block) -> I64:
        """1 where the knock counter rose, else where knock retard rose from <= 0 to > 0."""
        count = block.columns.get("knock_count")
        if count is not None:
            prev, self._last_knock_count = _previous_finite(count, self._last_knock_count)
            rose = count > prev
        else:
            retard = block.columns.get("knock_retard_deg")
            if retard is None:
                return np.zeros(len(block), dtype=np.int64)
            prev, self._last_knock_retard = _previous_finite(retard, self._last_knock_retard)
            rose = (retard > 0.0) & (prev <= 0.0)
        return rose.astype(np.int64)


def _previous_finite(values: F64, carried: float) -> tuple[F64, float]:
    """For each sample, the latest finite value before it (``carried`` from earlier blocks).

    Returns the array and the new carried value (NaN until a finite value was seen).
    """
    if not np.isnan(values).any():
        prev = np.empty_like(values)
        prev[0] = carried
        prev[1:] = values[:-1]
        return prev, float(values[-1])
    joined = np.concatenate(([carried], values))
    idx = np.where(np.isfinite(joined), np.arange(joined.size), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = joined[idx]
    return filled[:-1], float(filled[-1])


__all__ = ["REASONS", "FilterChain", "FilterLimits", "FilterResult"]
