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

Accumulating is here; turning the accumulated evidence into rows is in
``core.fleet.pattern_rows`` (one function per kind).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.fleet.pattern_rows import (
    DECEL_RPM_BAND,
    DECEL_TPS_MAX,
    Pattern,
    decel_lean,
    heat_soak,
    imbalance,
    knock,
    ve_change,
    ve_change_tables,
)
from core.frames import Block

F64 = npt.NDArray[np.float64]

DECEL_RPM_RATE = -100.0
"""rpm/s: a row is a decel when the engine slows at least this fast with the throttle shut."""
RATE_WINDOW_S = 0.2
EVENT_GAP_S = 0.5
"""Lean rows closer than this belong to one event."""
LEAN_MARGIN = 0.10
DFCO_SETTLE_S = 0.2


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
        out += ve_change(self.axes, self._ratio_sum, self._ratio_n)
        out += knock(self.axes, np.asarray(hits).ravel(), np.asarray(knock_events).ravel(),
                     np.asarray(knock_retard_max, dtype=np.float64).ravel())  # fmt: skip
        out += heat_soak(self._heat, self._iat_t, self.axes.n_cells)
        out += decel_lean(self._decel)
        out += imbalance(self.axes, self.widebands, self._raw, self._rows_for_imbalance,
                         self.lambda_delay_s, self.stoich)  # fmt: skip
        if ve_tables is not None:
            out += ve_change_tables(ve_tables)
        return out


def default_widebands(sources: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The first two sources that give lambda/AFR and no rpm (dedicated widebands)."""
    out = []
    for name, info in sources.items():
        channels = info.get("channels", {}) if isinstance(info, Mapping) else {}
        if ("lambda" in channels or "afr" in channels) and "rpm" not in channels:
            out.append(name)
    return tuple(out[:2])
