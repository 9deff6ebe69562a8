"""Vehicle coverage reports: the cumulative heatmap with the region overlay, per-region %, gaps.

``dynoai coverage --vehicle V`` shows what a tuner asks before the next session:
how much of the table is covered across every run so far, how each priority
region is doing, and which cells still need data first. These functions build
that report from a cumulative grid; the command module owns argument handling.
The JSON extends the file coverage contract (``core.coverage.export.grid_to_json``) with
``vehicle``, ``priority`` (2-D, 1..3), ``regions`` and ``gaps``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from core.coverage.export import grid_to_csv, grid_to_json, grid_to_text
from core.coverage.grid import CoverageGrid
from core.coverage.regions import Region, priority_map, ranked_gaps, region_coverage

GAPS_SHOWN = 15
PRIORITY_MARK = {1: "!", 2: "+"}
"""Marker of an uncovered priority-1 / priority-2 cell in the text heatmap."""


def _priorities(grid: CoverageGrid, regions: Sequence[Region]) -> Any:
    return priority_map(grid.axes, regions, grid.knock_events)


def vehicle_coverage_json(
    vehicle: str, grid: CoverageGrid, regions: Sequence[Region], *, runs: int = 0
) -> dict[str, Any]:
    """The file coverage JSON plus ``vehicle``, ``runs``, ``priority``, ``regions``, ``gaps``."""
    prio = _priorities(grid, regions)
    out = grid_to_json(grid, samples=grid.samples_binned, rejects={})
    out["vehicle"] = vehicle
    out["runs"] = runs
    out["priority"] = [[int(v) for v in row] for row in prio]
    out["regions"] = [
        {"name": c.name, "priority": c.priority, "cells": c.cells, "covered": c.covered,
         "covered_pct": round(c.covered_pct, 2)}
        for c in region_coverage(grid.axes, regions, grid.covered_mask())
    ]  # fmt: skip
    out["gaps"] = [
        {"map_index": g.map_index, "rpm_index": g.rpm_index, "rpm": g.rpm, "map_kpa": g.map_kpa,
         "priority": g.priority, "deficit": g.deficit}
        for g in ranked_gaps(grid.axes, grid.hits, prio, grid.hit_target)
    ]  # fmt: skip
    return out


def vehicle_coverage_csv(grid: CoverageGrid, regions: Sequence[Region]) -> str:
    """The file coverage CSV with a ``priority`` column appended."""
    prio = _priorities(grid, regions)
    rows = list(csv.reader(io.StringIO(grid_to_csv(grid))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*rows[0], "priority"])
    n_rpm = grid.axes.shape[1]
    for i, row in enumerate(rows[1:]):
        writer.writerow([*row, int(prio[i // n_rpm, i % n_rpm])])
    return out.getvalue()


def vehicle_coverage_text(
    vehicle: str,
    grid: CoverageGrid,
    regions: Sequence[Region],
    *,
    runs: int = 0,
    stale_runs: int = 0,
) -> str:
    """Heatmap of hits with uncovered priority cells marked, region coverage, ranked gaps."""
    prio = _priorities(grid, regions)
    covered = grid.covered_mask()
    marks = {
        (int(r), int(c)): PRIORITY_MARK[int(prio[r, c])]
        for r in range(prio.shape[0])
        for c in range(prio.shape[1])
        if not covered[r, c] and int(prio[r, c]) in PRIORITY_MARK
    }
    lines = [
        f"vehicle {vehicle}: {runs} run(s), {grid.covered_pct():.1f} % of cells covered "
        f"({grid.covered_cells()}/{grid.axes.n_cells})",
    ]
    if stale_runs:
        lines.append(
            f"{stale_runs} run(s) were binned on other axes and are not counted; "
            "use --rebuild to re-bin them from their logs"
        )
    lines.append("'!' = priority-1 cell still short, '+' = priority-2 cell still short")
    lines.append(grid_to_text(grid, "hits", marks=marks))
    lines.append("")
    lines.append("region               prio  cells  covered")
    for c in region_coverage(grid.axes, regions, covered):
        lines.append(f"{c.name[:20]:<20} {c.priority:>4} {c.cells:>6} {c.covered_pct:>7.1f} %")
    gaps = ranked_gaps(grid.axes, grid.hits, prio, grid.hit_target)
    lines.append("")
    if not gaps:
        lines.append("no gaps: every cell has reached the hit target")
    else:
        lines.append(
            f"gaps by priority ({len(gaps)} cells short, first {min(len(gaps), GAPS_SHOWN)}):"
        )
        for g in gaps[:GAPS_SHOWN]:
            lines.append(
                f"  P{g.priority}  {g.rpm:>6.0f} rpm  {g.map_kpa:>5.0f} kPa  {g.deficit:>3} hits to go"
            )
    return "\n".join(lines)
