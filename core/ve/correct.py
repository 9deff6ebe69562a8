"""VE correction: measured / target lambda per confident cell, within authority and locks.

The arithmetic is the one every VE tool uses: the ECU injected fuel for the air it
*believed* (its VE) and the target lambda, so the lambda it got tells how wrong the
belief was: ``VE_true = VE_ecu x lambda_measured / lambda_target`` (x (1 + trim) when
a closed loop was adding fuel; see :mod:`core.ve.evidence`). Per cell the ratio is the
weighted mean of kept samples, bilinearly split over the four breakpoints the ECU
interpolated between, so a breakpoint learns from the samples it fuelled.

What stops a cell from changing, in order (one reason per cell, reported):
``pinned`` (the tuner locked it), ``locked_idle`` / ``locked_decel`` (config),
``no_data`` (no hits: no kept sample had this as its nearest cell), ``low_confidence``
(below the threshold: too few hits, too short a settled dwell, or too noisy a mean; the
same rule the planner uses for "covered"). A change larger than the authority limit is
applied up to the limit and marked ``clipped``. Optional smoothing extends the mean
change of corrected neighbours into unvisited (no-hit) cells, halved per ring, never
beyond the authority limit, marked ``extrapolated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.tune import Table
from core.ve.settings import VeSettings

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

REASONS = (
    "changed",
    "clipped",
    "extrapolated",
    "pinned",
    "locked_idle",
    "locked_decel",
    "no_data",
    "low_confidence",
)
"""Per-cell outcome codes (``VeTableResult.reason``)."""
HELD_REASONS = ("pinned", "locked_idle", "locked_decel", "low_confidence")
"""Outcomes where there was data but the cell was held back."""


@dataclass(frozen=True)
class CellEvidence:
    """What the logs say per cell of one VE table (arrays shaped like the table).

    Attributes:
        ratio: Weighted mean of measured / target lambda (x (1 + trim)); NaN = no data.
        confidence: 0..1, the coverage grid's confidence rule.
        hits: Kept samples whose nearest cell this is.
    """

    ratio: F64
    confidence: F64
    hits: npt.NDArray[np.int64]


@dataclass(frozen=True)
class VeTableResult:
    """One corrected VE table (front, rear or the only one)."""

    name: str
    """``ve`` (front or only table) or ``ve_rear``."""
    axes: TableAxes
    ve_base: F64
    ve_new: F64
    change_pct: F64
    """(ve_new / ve_base - 1) x 100; 0 where unchanged."""
    confidence: F64
    locked: B
    extrapolated: B
    reason: npt.NDArray[np.str_]
    ratio: F64
    hits: npt.NDArray[np.int64]
    settings: VeSettings = field(repr=False)

    def counts(self) -> dict[str, int]:
        return {r: int(np.count_nonzero(self.reason == r)) for r in REASONS}

    def summary(self) -> dict[str, object]:
        """How many cells changed, by how much, which were held back and why."""
        moved = (self.reason == "changed") | (self.reason == "clipped")
        ch = np.abs(self.change_pct[moved])
        counts = self.counts()
        largest = None
        if ch.size:
            m, r = np.unravel_index(
                int(np.argmax(np.where(moved, np.abs(self.change_pct), -1))), moved.shape
            )
            largest = {
                "rpm": float(self.axes.rpm[r]),
                "map_kpa": float(self.axes.map_kpa[m]),
                "change_pct": round(float(self.change_pct[m, r]), 2),
            }
        return {
            "cells": int(self.ve_base.size),
            "changed": int(np.count_nonzero(moved)),
            "mean_abs_change_pct": round(float(ch.mean()), 2) if ch.size else 0.0,
            "max_abs_change_pct": round(float(ch.max()), 2) if ch.size else 0.0,
            "largest": largest,
            "clipped": counts["clipped"],
            "extrapolated": counts["extrapolated"],
            "held_back": {r: counts[r] for r in HELD_REASONS if counts[r]},
            "no_data": counts["no_data"],
        }


def lock_masks(axes: TableAxes, s: VeSettings) -> dict[str, B]:
    """Locked cells by reason (``pinned``, ``locked_idle``, ``locked_decel``)."""
    rpm, map_kpa = np.meshgrid(axes.rpm, axes.map_kpa)
    pinned = np.zeros(axes.shape, dtype=bool)
    for r, m in s.locked_cells:
        mi, ri = axes.nearest(r, m)
        if int(mi) >= 0:
            pinned[int(mi), int(ri)] = True
    idle = (rpm <= s.idle_rpm_max) & (map_kpa <= s.idle_map_max_kpa) if s.lock_idle else None
    decel = (rpm >= s.decel_rpm_min) & (map_kpa <= s.decel_map_max_kpa) if s.lock_decel else None
    false = np.zeros(axes.shape, dtype=bool)
    return {
        "pinned": pinned,
        "locked_idle": idle if idle is not None else false,
        "locked_decel": decel if decel is not None else false,
    }


def correct_table(
    base: Table,
    evidence: CellEvidence,
    settings: VeSettings,
    *,
    name: str = "ve",
    decimals: int | None = 1,
) -> VeTableResult:
    """Correct one VE table from its per-cell evidence (see the module docstring).

    ``decimals`` rounds the new VE to the ECU's resolution (None: no rounding), so
    the reported change is the one that will be written.
    """
    axes = base.axes
    shape = axes.shape
    checked = (
        ("ratio", evidence.ratio),
        ("confidence", evidence.confidence),
        ("hits", evidence.hits),
    )
    for label, arr in checked:
        if np.shape(arr) != shape:
            raise ValueError(f"{label} has shape {np.shape(arr)}, the table is {shape}")
    ratio = np.asarray(evidence.ratio, dtype=np.float64)
    conf = np.nan_to_num(np.asarray(evidence.confidence, dtype=np.float64), nan=0.0)
    lim = settings.max_change_pct / 100.0

    reason = np.full(shape, "no_data", dtype="<U14")
    # A cell's own data is its hits (samples nearest it: what confidence, the hits view
    # and the planner count). The bilinear split also gives a ratio to a never-visited
    # neighbour of a visited cell; counted as data, such a cell was "low_confidence"
    # (the live view printed its ratio where the hits view showed no data) and smoothing,
    # which is for cells without data, skipped it: on a 5-minute pulls log (seed 7) 26
    # zero-hit cells showed a ratio, and smoothing reached 9 cells instead of 27.
    hits = np.asarray(evidence.hits, dtype=np.int64)
    has_data = np.isfinite(ratio) & (ratio > 0) & (hits > 0)
    reason[has_data] = "low_confidence"
    eligible = has_data & (conf >= settings.min_confidence)
    reason[eligible] = "changed"
    locked = np.zeros(shape, dtype=bool)
    # Later assignments win: pinned outranks the config locks.
    for why in ("locked_decel", "locked_idle", "pinned"):
        mask = lock_masks(axes, settings)[why]
        reason[mask] = why
        locked |= mask
    eligible &= ~locked

    factor = np.ones(shape)
    factor[eligible] = np.clip(ratio[eligible], 1.0 - lim, 1.0 + lim)
    clipped = eligible & (np.abs(ratio - 1.0) > lim + 1e-12)
    reason[clipped] = "clipped"

    extrapolated = np.zeros(shape, dtype=bool)
    if settings.smooth:
        known = eligible.copy()
        for _ in range(settings.smooth_rings):
            # Only cells without confident data of their own: a held-back cell with data
            # says something else about itself than its neighbours do.
            add, values = _ring(factor, known, ~known & ~locked & ~has_data)
            if not add.any():
                break
            # Half the neighbours' mean change; the next ring halves that again.
            factor[add] = np.clip(1.0 + 0.5 * (values[add] - 1.0), 1.0 - lim, 1.0 + lim)
            extrapolated |= add
            known |= add
        reason[extrapolated] = "extrapolated"

    ve_new = base.values * factor
    if decimals is not None:
        ve_new = np.round(ve_new, decimals)
        unchanged = ~(eligible | extrapolated)
        ve_new[unchanged] = base.values[unchanged]
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(base.values > 0, (ve_new / base.values - 1.0) * 100.0, 0.0)
    return VeTableResult(
        name=name,
        axes=axes,
        ve_base=np.array(base.values),
        ve_new=ve_new,
        change_pct=change,
        confidence=np.clip(conf, 0.0, 1.0),
        locked=locked,
        extrapolated=extrapolated,
        reason=reason,
        ratio=ratio,
        hits=hits,
        settings=settings,
    )


def _ring(factor: F64, known: B, candidates: B) -> tuple[B, F64]:
    """Candidates with at least one known 4-neighbour, and the mean factor of those neighbours."""
    total = np.zeros(factor.shape)
    count = np.zeros(factor.shape)
    f = np.where(known, factor, 0.0)
    k = known.astype(float)
    total[1:, :] += f[:-1, :]
    count[1:, :] += k[:-1, :]
    total[:-1, :] += f[1:, :]
    count[:-1, :] += k[1:, :]
    total[:, 1:] += f[:, :-1]
    count[:, 1:] += k[:, :-1]
    total[:, :-1] += f[:, 1:]
    count[:, :-1] += k[:, 1:]
    add = candidates & (count > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, total / count, 1.0)
    return add, mean


__all__ = [
    "HELD_REASONS",
    "REASONS",
    "CellEvidence",
    "VeTableResult",
    "correct_table",
    "lock_masks",
]
