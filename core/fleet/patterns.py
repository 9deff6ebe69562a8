"""Patterns measured from one run's data, each with the amount of data behind it.

The training-data guide lists what a model can learn from a session: VE change by
region, knock cells and the timing taken, heat soak, decel lean spikes, front/rear
imbalance. Each is measured here from the run's fused rows (the same rows the
engine binned), never typed in, and each row says how many samples and events
back it, so a fleet query can weigh or drop thin evidence.

Methods (checked against the simulator's truth in ``tests/test_fleet_patterns.py``):

* ``ve_change``: per region, the hit-weighted mean over cells of measured/target
  lambda - 1 (in %): the VE change the data asks for, since in speed-density
  lambda = target x trueVE / ecuVE. With VE tables before/after (``dynoai ve``),
  ``ve_change_tables`` gives the change actually made, per region.
* ``knock_cell``: cells with knock events: events, the largest retard the ECU
  applied, and the timing advice (pull that much, at least 1 deg, rounded up to 0.5).
* ``heat_soak``: IAT rise over the run and the lambda drift it causes, as a
  within-cell regression (each sample's lambda ratio and IAT minus its cell's
  means), so the VE error field and the IAT-load correlation do not pose as drift.
  Slope in % lambda per 10 degC with its standard error.
* ``decel_lean``: closed-throttle decel rows with fuel on (not in fuel cut, and
  ``DFCO_SETTLE_S`` after it so the wideband's recovery from the air reading is not
  counted) where lambda exceeds its target by ``LEAN_MARGIN``; per 500-rpm band and
  TPS band: rows, lean events, peak lambda, and the enrichment that brings the peak
  back to target.
* ``imbalance``: with two widebands (``[widebands]`` in the record, else the first
  two mixture-only sources), per cell the rear minus front AFR from both streams
  read at the row's time plus the transport delay (negative: rear richer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.frames import Block

F64 = npt.NDArray[np.float64]

REGIONS: tuple[tuple[str, float, float, float, float], ...] = (
    # name, rpm_lo, rpm_hi, map_lo_kpa, map_hi_kpa (the guide's four VE regions)
    ("idle", 0.0, 1500.0, 0.0, 45.0),
    ("cruise", 1500.0, 4000.0, 30.0, 70.0),
    ("midrange", 2000.0, 4500.0, 70.0, 90.0),
    ("wot", 0.0, 1e9, 90.0, 1e9),
)
MIN_CELL_HITS = 5
"""Cells with fewer kept samples do not enter region means."""
DECEL_TPS_MAX = 3.0
DECEL_RPM_RATE = -100.0
"""rpm/s: a row is a decel when the engine slows at least this fast with the throttle shut."""
RATE_WINDOW_S = 0.2
EVENT_GAP_S = 0.5
"""Lean rows closer than this belong to one event."""
LEAN_MARGIN = 0.10
DFCO_SETTLE_S = 0.2
DECEL_RPM_BAND = 500.0
IMBALANCE_MIN_ROWS = 20
HEAT_MIN_ROWS = 200


@dataclass(frozen=True, slots=True)
class Pattern:
    """One measured pattern row (see docs/fleet.md, table ``patterns``)."""

    kind: str
    value: float
    unit: str
    samples: int
    """Rows behind the figure."""
    events: int = 0
    rpm_lo: float = math.nan
    rpm_hi: float = math.nan
    map_lo_kpa: float = math.nan
    map_hi_kpa: float = math.nan
    tps_lo: float = math.nan
    tps_hi: float = math.nan
    region: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "detail"}
        out["detail"] = json.dumps(self.detail, sort_keys=True, default=float)
        return out


class PatternAccumulator:
    """Streams a run's fused rows (and raw wideband blocks); :meth:`finish` gives patterns."""

    def __init__(
        self,
        axes: TableAxes,
        *,
        stoich: float = 14.7,
        lambda_delay_s: float = 0.0,
        widebands: Sequence[str] = (),
    ) -> None:
        self.axes = axes
        self.stoich = stoich
        self.lambda_delay_s = lambda_delay_s
        self.widebands = tuple(widebands[:2])
        n = axes.n_cells
        self._ratio_sum = np.zeros(n)
        self._ratio_n = np.zeros(n)
        self._heat: list[tuple[F64, F64, npt.NDArray[np.int64], F64]] = []
        self._iat_t: list[tuple[F64, F64]] = []
        self._decel: dict[tuple[int, int], list[float]] = {}
        self._tail: tuple[F64, F64] = (np.empty(0), np.empty(0))
        self._last_lean_t = -math.inf
        self._dfco_off_t = -math.inf
        self._raw: dict[str, list[tuple[F64, F64]]] = {name: [] for name in self.widebands}
        self._rows_for_imbalance: list[tuple[F64, npt.NDArray[np.int64]]] = []

    # -- feeding ----------------------------------------------------------------

    def feed_raw(self, block: Block) -> None:
        """A source's raw block (for the front/rear wideband streams)."""
        if block.source not in self._raw or len(block) == 0:
            return
        if "lambda" in block.columns:
            lam = np.asarray(block.columns["lambda"], dtype=np.float64)
        elif "afr" in block.columns:
            lam = np.asarray(block.columns["afr"], dtype=np.float64) / self.stoich
        else:
            return
        self._raw[block.source].append((np.asarray(block.t, dtype=np.float64), lam))

    def feed_cell_ratios(self, mean_ratio: npt.ArrayLike, counts: npt.ArrayLike) -> None:
        """Per-cell mean measured/target lambda and sample counts from a stored grid.

        For a run whose recording is gone: ``ve_change`` still comes out of its grid
        (heat soak, decel and imbalance need the rows and do not).
        """
        ratio = np.asarray(mean_ratio, dtype=np.float64).ravel()
        n = np.asarray(counts, dtype=np.float64).ravel()
        ok = np.isfinite(ratio) & (n > 0)
        self._ratio_sum[ok] += ratio[ok] * n[ok]
        self._ratio_n[ok] += n[ok]

    def feed(self, rows: Block, keep: npt.NDArray[np.bool_]) -> None:
        """Fused rows and the filters' keep mask."""
        if len(rows) == 0:
            return
        cols = rows.columns
        rpm, map_kpa = rows.column("rpm"), rows.column("map_kpa")
        map_idx, rpm_idx = self.axes.nearest(rpm, map_kpa)
        inside = map_idx >= 0
        cell = np.where(inside, map_idx * self.axes.shape[1] + rpm_idx, -1).astype(np.int64)
        lam = cols.get("lambda")
        target = cols.get("lambda_target")
        sel = keep & inside
        if lam is not None and target is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = lam / target
            ok = sel & np.isfinite(ratio)
            np.add.at(self._ratio_sum, cell[ok], ratio[ok])
            np.add.at(self._ratio_n, cell[ok], 1.0)
            iat = cols.get("iat_c")
            if iat is not None:
                ok_h = ok & np.isfinite(iat)
                self._heat.append((ratio[ok_h], iat[ok_h], cell[ok_h], rows.t[ok_h]))
        iat = cols.get("iat_c")
        if iat is not None:
            running = np.isfinite(iat) & (rpm > 300.0)
            self._iat_t.append((rows.t[running], iat[running]))
        if lam is not None:
            self._feed_decel(rows, rpm, lam, target)
        if self.widebands:
            self._rows_for_imbalance.append((rows.t[sel], cell[sel]))

    def _feed_decel(self, rows: Block, rpm: F64, lam: F64, target: F64 | None) -> None:
        tps = rows.columns.get("tps_pct")
        if tps is None:
            return
        t = rows.t
        dfco = rows.columns.get("dfco")
        # rpm rate over RATE_WINDOW_S (sample-to-sample noise would pose as decel), with the
        # previous block's tail carried over
        hist_t = np.concatenate((self._tail[0], t))
        hist_r = np.concatenate((self._tail[1], rpm))
        keep_tail = hist_t >= t[-1] - RATE_WINDOW_S - 0.05
        self._tail = (hist_t[keep_tail], hist_r[keep_tail])
        before = np.interp(t - RATE_WINDOW_S, hist_t, hist_r, left=np.nan)
        rate = (rpm - before) / RATE_WINDOW_S
        in_cut = (dfco > 0.5) if dfco is not None else np.zeros(len(t), bool)
        # time since fuel came back on (settle hold-off), carried over blocks
        last = np.maximum.accumulate(np.where(in_cut, t, -np.inf))
        last = np.maximum(last, self._dfco_off_t)
        if in_cut.any():
            self._dfco_off_t = float(t[np.flatnonzero(in_cut)[-1]])
        since_on = t - last
        decel = (tps < DECEL_TPS_MAX) & ~in_cut & np.isfinite(lam)
        decel &= since_on > DFCO_SETTLE_S
        tgt = target if target is not None else np.ones(len(t))
        with np.errstate(invalid="ignore"):
            decel &= rate < DECEL_RPM_RATE
            lean = decel & (lam > tgt * (1.0 + LEAN_MARGIN))
        for i in np.flatnonzero(decel):
            key = (int(rpm[i] // DECEL_RPM_BAND), 0 if tps[i] < 1.0 else 1)
            acc = self._decel.setdefault(key, [0.0, 0.0, 0.0, 0.0])  # rows, lean rows, events, peak
            acc[0] += 1
            if lean[i]:
                acc[1] += 1
                if t[i] - self._last_lean_t > EVENT_GAP_S:
                    acc[2] += 1
                self._last_lean_t = float(t[i])
                ratio = float(lam[i] / tgt[i]) if np.isfinite(tgt[i]) else float(lam[i])
                acc[3] = max(acc[3], ratio)

    # -- results ----------------------------------------------------------------

    def finish(
        self,
        hits: npt.ArrayLike,
        knock_events: npt.ArrayLike,
        knock_retard_max: npt.ArrayLike,
        ve_tables: Mapping[str, np.ndarray] | None = None,
    ) -> list[Pattern]:
        out: list[Pattern] = []
        out += self._ve_change(np.asarray(hits).ravel())
        out += self._knock(np.asarray(hits).ravel(), np.asarray(knock_events).ravel(),
                           np.asarray(knock_retard_max, dtype=np.float64).ravel())  # fmt: skip
        out += self._heat_soak()
        out += self._decel_patterns()
        out += self._imbalance()
        if ve_tables is not None:
            out += ve_change_tables(ve_tables)
        return out

    def _cells(self) -> tuple[F64, F64]:
        rpm_c, map_c = np.meshgrid(self.axes.rpm, self.axes.map_kpa)
        return rpm_c.ravel(), map_c.ravel()

    def _ve_change(self, hits: npt.NDArray[Any]) -> list[Pattern]:
        rpm_c, map_c = self._cells()
        n = self._ratio_n
        ok = n >= MIN_CELL_HITS
        with np.errstate(divide="ignore", invalid="ignore"):
            change = (self._ratio_sum / n - 1.0) * 100.0
        out = []
        for name, r0, r1, m0, m1 in REGIONS:
            sel = ok & (rpm_c > r0) & (rpm_c <= r1) & (map_c >= m0) & (map_c < m1)
            if not sel.any():
                continue
            w = n[sel]
            value = float(np.sum(change[sel] * w) / np.sum(w))
            spread = float(np.sqrt(np.sum(w * (change[sel] - value) ** 2) / np.sum(w)))
            out.append(
                Pattern(
                    "ve_change", value, "% VE", int(w.sum()), region=name,
                    rpm_lo=float(rpm_c[sel].min()), rpm_hi=float(rpm_c[sel].max()),
                    map_lo_kpa=float(map_c[sel].min()), map_hi_kpa=float(map_c[sel].max()),
                    detail={"cells": int(sel.sum()), "cell_spread_pct": spread,
                            "source": "measured lambda / target"},
                )
            )  # fmt: skip
        return out

    def _knock(self, hits: Any, events: Any, retard: F64) -> list[Pattern]:
        rpm_c, map_c = self._cells()
        out = []
        for i in np.flatnonzero(events > 0):
            advice = -math.ceil(max(float(retard[i]), 1.0) * 2.0) / 2.0
            out.append(
                Pattern(
                    "knock_cell", float(retard[i]), "deg retard", int(hits[i]), int(events[i]),
                    rpm_lo=float(rpm_c[i]), rpm_hi=float(rpm_c[i]),
                    map_lo_kpa=float(map_c[i]), map_hi_kpa=float(map_c[i]),
                    detail={"timing_advice_deg": advice},
                )
            )  # fmt: skip
        return out

    def _heat_soak(self) -> list[Pattern]:
        if not self._heat or not self._iat_t:
            return []
        ratio = np.concatenate([h[0] for h in self._heat])
        iat = np.concatenate([h[1] for h in self._heat])
        cell = np.concatenate([h[2] for h in self._heat])
        if ratio.size < HEAT_MIN_ROWS:
            return []
        t_all = np.concatenate([x[0] for x in self._iat_t])
        iat_all = np.concatenate([x[1] for x in self._iat_t])
        n_cells = self.axes.n_cells
        cnt = np.bincount(cell, minlength=n_cells).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_r = np.bincount(cell, ratio, n_cells) / cnt
            mean_i = np.bincount(cell, iat, n_cells) / cnt
        dx = iat - mean_i[cell]
        dy = ratio / mean_r[cell] - 1.0
        sxx = float(np.sum(dx * dx))
        start = iat_all[t_all <= t_all[0] + 30.0]
        iat0 = float(np.median(start))
        peak = float(np.percentile(iat_all, 99))
        rise = peak - iat0
        reach = np.flatnonzero(iat_all >= iat0 + 0.9 * rise) if rise > 0 else np.array([0])
        soak_min = float(t_all[reach[0]] - t_all[0]) / 60.0 if reach.size else math.nan
        if sxx <= 1e-6:
            slope = se = math.nan
        else:
            slope = float(np.sum(dx * dy)) / sxx
            resid = dy - slope * dx
            dof = max(ratio.size - int(np.count_nonzero(cnt)) - 1, 1)
            se = math.sqrt(float(np.sum(resid * resid)) / dof / sxx)
        return [
            Pattern(
                "heat_soak", slope * 1000.0, "% lambda per 10 degC", int(ratio.size),
                detail={"iat_initial_c": iat0, "iat_peak_c": peak, "iat_rise_c": rise,
                        "soak_time_min": soak_min, "slope_se": se * 1000.0,
                        "iat_spread_in_cells_c": math.sqrt(sxx / ratio.size)},
            )
        ]  # fmt: skip

    def _decel_patterns(self) -> list[Pattern]:
        out = []
        for (band, tps_band), (rows, lean_rows, events, peak) in sorted(self._decel.items()):
            enrich = (peak - 1.0) * 100.0 if lean_rows else 0.0
            out.append(
                Pattern(
                    "decel_lean", peak if lean_rows else math.nan, "peak lambda / target",
                    int(rows), int(events),
                    rpm_lo=band * DECEL_RPM_BAND, rpm_hi=(band + 1) * DECEL_RPM_BAND,
                    tps_lo=0.0 if tps_band == 0 else 1.0,
                    tps_hi=1.0 if tps_band == 0 else DECEL_TPS_MAX,
                    detail={"lean_rows": int(lean_rows), "enrichment_pct": enrich},
                )
            )  # fmt: skip
        return out

    def _imbalance(self) -> list[Pattern]:
        if len(self.widebands) < 2 or not self._rows_for_imbalance:
            return []
        streams = []
        for name in self.widebands:
            parts = self._raw[name]
            if not parts:
                return []
            t = np.concatenate([p[0] for p in parts])
            lam = np.concatenate([p[1] for p in parts])
            order = np.argsort(t, kind="stable")
            streams.append((t[order], lam[order]))
        t_rows = np.concatenate([r[0] for r in self._rows_for_imbalance])
        cell = np.concatenate([r[1] for r in self._rows_for_imbalance])
        at = t_rows + self.lambda_delay_s
        values = []
        for t, lam in streams:
            v = np.interp(at, t, lam, left=np.nan, right=np.nan)
            # no reading within 0.5 s: stale, not used
            j = np.clip(np.searchsorted(t, at), 1, len(t) - 1)
            gap = np.minimum(np.abs(t[j] - at), np.abs(t[j - 1] - at))
            v[gap > 0.5] = np.nan
            values.append(v)
        ok = np.isfinite(values[0]) & np.isfinite(values[1])
        delta = (values[1] - values[0]) * self.stoich
        n_cells = self.axes.n_cells
        cnt = np.bincount(cell[ok], minlength=n_cells)
        total = np.bincount(cell[ok], delta[ok], n_cells)
        rpm_c, map_c = self._cells()
        out = []
        for i in np.flatnonzero(cnt >= IMBALANCE_MIN_ROWS):
            out.append(
                Pattern(
                    "imbalance", float(total[i] / cnt[i]), "AFR rear - front", int(cnt[i]),
                    rpm_lo=float(rpm_c[i]), rpm_hi=float(rpm_c[i]),
                    map_lo_kpa=float(map_c[i]), map_hi_kpa=float(map_c[i]),
                    detail={"front": self.widebands[0], "rear": self.widebands[1]},
                )
            )  # fmt: skip
        return out


def ve_change_tables(tables: Mapping[str, np.ndarray]) -> list[Pattern]:
    """VE change made by the tune, per region: mean of after / before - 1 over its cells (%)."""
    rpm_c, map_c = np.meshgrid(tables["rpm"], tables["map_kpa"])
    before, after = np.asarray(tables["ve_before"]), np.asarray(tables["ve_after"])
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (after / before - 1.0) * 100.0
    out = []
    for name, r0, r1, m0, m1 in REGIONS:
        sel = (rpm_c > r0) & (rpm_c <= r1) & (map_c >= m0) & (map_c < m1) & np.isfinite(change)
        if sel.any():
            out.append(
                Pattern(
                    "ve_change_tables", float(np.mean(change[sel])), "% VE", int(sel.sum()),
                    region=name, detail={"source": "VE tables before/after"},
                )
            )  # fmt: skip
    return out


def default_widebands(sources: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The first two sources that give lambda/AFR and no rpm (dedicated widebands)."""
    out = []
    for name, info in sources.items():
        channels = info.get("channels", {}) if isinstance(info, Mapping) else {}
        if ("lambda" in channels or "afr" in channels) and "rpm" not in channels:
            out.append(name)
    return tuple(out[:2])


def iter_patterns(patterns: Iterable[Pattern]) -> list[dict[str, Any]]:
    return [p.row() for p in patterns]
