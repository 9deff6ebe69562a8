"""GridView: the read-only per-cell arrays a snapshot carries to the dashboard and exports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class GridView:
    """Read-only copy of the coverage grid's per-cell arrays, rows = MAP, columns = rpm."""

    rpm_axis: F64
    map_axis: F64
    hits: I64
    weight: F64
    dwell_s: F64
    afr_mean: F64
    """Weighted mean AFR per cell (NaN where no data)."""
    lambda_mean: F64
    afr_error_pct: F64
    """(measured lambda / target lambda - 1) x 100 per cell: + lean, - rich (NaN where unknown)."""
    knock_events: I64
    hit_target: int
    covered_pct: float
    covered_cells: int
    confidence: F64
    """Per-cell confidence 0..1 (core.coverage.confidence); 1 = covered."""
