"""From a run's accumulated evidence to pattern rows: one function per pattern kind.

Split out of ``patterns``: :class:`~core.fleet.patterns.PatternAccumulator`
streams the run's rows into sums and lists; turning those into rows (region
means, the heat-soak regression, decel bands, the front/rear imbalance per
cell) is pure arithmetic on what was collected, so it lives here as functions
of plain arrays that can be read and checked without feeding a stream. The
methods are described in the ``patterns`` module docstring.
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


def cell_centres(axes: TableAxes) -> tuple[F64, F64]:
    """Rpm and MAP of every cell, flat in the grid's order."""
    rpm_c, map_c = np.meshgrid(axes.rpm, axes.map_kpa)
    return rpm_c.ravel(), map_c.ravel()


def ve_change(axes: TableAxes, ratio_sum: F64, ratio_n: F64) -> list[Pattern]:
    """Per region, the hit-weighted mean over cells of measured/target lambda - 1 (%)."""
    rpm_c, map_c = cell_centres(axes)
    n = ratio_n
    ok = n >= MIN_CELL_HITS
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (ratio_sum / n - 1.0) * 100.0
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


def knock(axes: TableAxes, hits: Any, events: Any, retard: F64) -> list[Pattern]:
    """Cells with knock events: the largest retard and the timing advice."""
    rpm_c, map_c = cell_centres(axes)
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


def heat_soak(
    heat: Sequence[tuple[F64, F64, npt.NDArray[np.int64], F64]],
    iat_t: Sequence[tuple[F64, F64]],
    n_cells: int,
) -> list[Pattern]:
    """IAT rise over the run and the within-cell lambda drift per 10 degC."""
    if not heat or not iat_t:
        return []
    ratio = np.concatenate([h[0] for h in heat])
    iat = np.concatenate([h[1] for h in heat])
    cell = np.concatenate([h[2] for h in heat])
    if ratio.size < HEAT_MIN_ROWS:
        return []
    t_all = np.concatenate([x[0] for x in iat_t])
    iat_all = np.concatenate([x[1] for x in iat_t])
    n_cells = n_cells
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


def decel_lean(decel: Mapping[tuple[int, int], Sequence[float]]) -> list[Pattern]:
    """Per rpm band and TPS band: decel rows, lean events, peak lambda and the enrichment."""
    out = []
    for (band, tps_band), (rows, lean_rows, events, peak) in sorted(decel.items()):
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


def imbalance(
    axes: TableAxes,
    widebands: Sequence[str],
    raw: Mapping[str, Sequence[tuple[F64, F64]]],
    rows: Sequence[tuple[F64, npt.NDArray[np.int64]]],
    lambda_delay_s: float,
    stoich: float,
) -> list[Pattern]:
    """Per cell, rear minus front AFR read at the row time plus the transport delay."""
    if len(widebands) < 2 or not rows:
        return []
    streams = []
    for name in widebands:
        parts = raw[name]
        if not parts:
            return []
        t = np.concatenate([p[0] for p in parts])
        lam = np.concatenate([p[1] for p in parts])
        order = np.argsort(t, kind="stable")
        streams.append((t[order], lam[order]))
    t_rows = np.concatenate([r[0] for r in rows])
    cell = np.concatenate([r[1] for r in rows])
    at = t_rows + lambda_delay_s
    values = []
    for t, lam in streams:
        v = np.interp(at, t, lam, left=np.nan, right=np.nan)
        # no reading within 0.5 s: stale, not used
        j = np.clip(np.searchsorted(t, at), 1, len(t) - 1)
        gap = np.minimum(np.abs(t[j] - at), np.abs(t[j - 1] - at))
        v[gap > 0.5] = np.nan
        values.append(v)
    ok = np.isfinite(values[0]) & np.isfinite(values[1])
    delta = (values[1] - values[0]) * stoich
    n_cells = axes.n_cells
    cnt = np.bincount(cell[ok], minlength=n_cells)
    total = np.bincount(cell[ok], delta[ok], n_cells)
    rpm_c, map_c = cell_centres(axes)
    out = []
    for i in np.flatnonzero(cnt >= IMBALANCE_MIN_ROWS):
        out.append(
            Pattern(
                "imbalance", float(total[i] / cnt[i]), "AFR rear - front", int(cnt[i]),
                rpm_lo=float(rpm_c[i]), rpm_hi=float(rpm_c[i]),
                map_lo_kpa=float(map_c[i]), map_hi_kpa=float(map_c[i]),
                detail={"front": widebands[0], "rear": widebands[1]},
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


def iter_patterns(patterns: Iterable[Pattern]) -> list[dict[str, Any]]:
    return [p.row() for p in patterns]
