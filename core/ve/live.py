"""The live VE correction view: what ``dynoai ve`` would change, from the session's grid.

During a session the dashboard shows, per cell, the change the correction would make
now (measured / target lambda, within authority, only where confident, locks and
smoothing applied): the same :func:`core.ve.correct.correct_table` on the snapshot's
grid. The change in percent does not depend on the base VE, so the view needs no tune;
exporting a table does (see :func:`live_result`).
"""

from __future__ import annotations

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.view import GridView
from core.tune import Table, Tune
from core.ve.correct import CellEvidence, VeTableResult, correct_table
from core.ve.result import VeResult
from core.ve.settings import VeSettings


def grid_evidence(grid: GridView) -> CellEvidence:
    """Per-cell ratio, confidence and hits from a snapshot's grid view."""
    ratio = 1.0 + np.asarray(grid.afr_error_pct, dtype=np.float64) / 100.0
    conf = grid.confidence
    return CellEvidence(
        ratio, np.asarray(conf, dtype=np.float64), np.asarray(grid.hits, dtype=np.int64)
    )


def grid_axes(grid: GridView) -> TableAxes:
    return TableAxes(np.asarray(grid.rpm_axis), np.asarray(grid.map_axis))


def same_axes(a: TableAxes, b: TableAxes) -> bool:
    """Equal breakpoints up to the rounding a tune file applies (0.001 rpm or kPa)."""
    return a.shape == b.shape and bool(
        np.allclose(a.rpm, b.rpm, rtol=0.0, atol=1e-3)
        and np.allclose(a.map_kpa, b.map_kpa, rtol=0.0, atol=1e-3)
    )


def live_table(grid: GridView, settings: VeSettings) -> VeTableResult:
    """The correction as change % per cell on the grid's axes (base VE taken as 100)."""
    axes = grid_axes(grid)
    base = Table(axes, np.full(axes.shape, 100.0), "live")
    return correct_table(base, grid_evidence(grid), settings, decimals=None)


def live_result(grid: GridView, tune: Tune, settings: VeSettings, decimals: int = 1) -> VeResult:
    """The tune corrected from the session's grid (grid and tune on the same axes).

    The session bins the combined lambda, so a twin's two tables get the same ratios
    here; ``dynoai ve`` after the session splits them by cylinder.
    """
    if not same_axes(grid_axes(grid), tune.axes):
        raise ValueError("the session's grid is not on the tune's axes")
    ev = grid_evidence(grid)
    tables = {
        k: correct_table(t, ev, settings, name=k, decimals=decimals)
        for k, t in tune.ve_tables().items()
    }
    notes = (
        ("corrected from the live session's combined lambda",) if tune.ve_rear is not None else ()
    )
    return VeResult(tune, tables, runs=("live session",), notes=notes)


__all__ = ["grid_axes", "grid_evidence", "live_result", "live_table", "same_axes"]
