"""Coverage exports: JSON (a versioned contract), CSV (one row per cell), ASCII heatmap.

``dynoai coverage`` prints these, the headless summary uses the text heatmap, and
other tools read the JSON, so the JSON keys are a documented contract with a format
tag; a change of meaning gets a new tag, new keys may be added. The text heatmap is
pure ASCII so it reads the same on a serial console, over SSH and in a log file.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from core.coverage.grid import CoverageGrid

FORMAT_TAG = "dynoai.coverage/1"

CSV_COLUMNS = (
    "map_kpa", "rpm", "map_index", "rpm_index", "hits", "weight", "dwell_s",
    "afr_mean", "lambda_mean", "afr_error_pct", "knock_events", "covered",
)  # fmt: skip
"""Header of :func:`grid_to_csv`."""

TEXT_VIEWS = ("hits", "afr", "afr_error", "knock", "dwell")
"""Views :func:`grid_to_text` can draw."""


def _table(values: np.ndarray, digits: int | None) -> list[list[Any]]:
    """2-D list (rows = MAP, columns = rpm); NaN -> None, floats rounded."""
    if digits is None:
        return [[int(v) for v in row] for row in values]
    return [[None if math.isnan(v) else round(float(v), digits) for v in row] for row in values]


def _all_rejects(grid: CoverageGrid, rejects: Mapping[str, int]) -> dict[str, int]:
    merged = {str(k): int(v) for k, v in rejects.items()}
    for reason, count in grid.rejects.items():
        merged.setdefault(reason, int(count))
    return merged


def grid_to_json(grid: CoverageGrid, *, samples: int, rejects: Mapping[str, int]) -> dict[str, Any]:
    """The coverage as a JSON-ready dict (``json.dumps`` it; no NaN, only null).

    Keys (2-D lists are rows = MAP breakpoints low to high, columns = rpm breakpoints):

    * ``format``: ``"dynoai.coverage/1"``.
    * ``rpm_axis``, ``map_axis``: breakpoints (rpm, kPa).
    * ``hit_target``, ``min_dwell_s``, ``max_lambda_se_pct``: the coverage rule (a cell
      is covered when it has the hits AND the settled dwell AND a mean lambda with at
      most that standard error; see ``core.coverage.confidence``).
    * ``stoich``: AFR of lambda 1 used for ``afr_mean``.
    * ``hits``: samples whose nearest cell it is (int).
    * ``weight``: bilinear sample weight (3 decimals).
    * ``dwell_s``: seconds in the cell (3 decimals).
    * ``afr_mean``: weighted mean AFR (2 decimals), null where no lambda was binned.
    * ``lambda_mean``, ``lambda_std``: weighted mean and spread of lambda (4 decimals).
    * ``afr_error_pct``: (measured / target lambda - 1) x 100, + lean, - rich
      (2 decimals), null where no target was known.
    * ``knock_events``: knock events (int); ``knock_retard_max``: degrees (2 decimals).
    * ``confidence``: 0..1 per cell under the rule (3 decimals); 1 = covered.
    * ``covered_pct`` (2 decimals), ``covered_cells``: cells with confidence 1.
    * ``samples``: samples seen (as passed by the caller); ``samples_binned``.
    * ``rejects``: reason -> count; the caller's filter counts plus the grid's
      ``outside_table`` (unless the caller's mapping already has it).
    """
    return {
        "format": FORMAT_TAG,
        "rpm_axis": [float(v) for v in grid.axes.rpm],
        "map_axis": [float(v) for v in grid.axes.map_kpa],
        "hit_target": grid.hit_target,
        "min_dwell_s": grid.rule.min_dwell_s,
        "max_lambda_se_pct": grid.rule.max_lambda_se_pct,
        "stoich": grid.stoich,
        "hits": _table(grid.hits, None),
        "weight": _table(grid.weight, 3),
        "dwell_s": _table(grid.dwell_s, 3),
        "afr_mean": _table(grid.afr_mean(), 2),
        "lambda_mean": _table(grid.lambda_mean(), 4),
        "lambda_std": _table(grid.lambda_std(), 4),
        "afr_error_pct": _table(grid.afr_error_pct(), 2),
        "knock_events": _table(grid.knock_events, None),
        "knock_retard_max": _table(grid.knock_retard_max, 2),
        "confidence": _table(grid.confidence(), 3),
        "covered_pct": round(grid.covered_pct(), 2),
        "covered_cells": grid.covered_cells(),
        "samples": int(samples),
        "samples_binned": grid.samples_binned,
        "rejects": _all_rejects(grid, rejects),
    }


def grid_to_csv(grid: CoverageGrid) -> str:
    """Long format, one row per cell (MAP-major), header :data:`CSV_COLUMNS`; NaN -> empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    afr, lam, err = grid.afr_mean(), grid.lambda_mean(), grid.afr_error_pct()
    covered = grid.covered_mask()

    def num(v: float, digits: int) -> str:
        return "" if math.isnan(v) else f"{v:.{digits}f}"

    for mi, map_kpa in enumerate(grid.axes.map_kpa):
        for ri, rpm in enumerate(grid.axes.rpm):
            writer.writerow(
                (
                    f"{map_kpa:g}", f"{rpm:g}", mi, ri, int(grid.hits[mi, ri]),
                    num(grid.weight[mi, ri], 3), num(grid.dwell_s[mi, ri], 3),
                    num(afr[mi, ri], 2), num(lam[mi, ri], 4), num(err[mi, ri], 2),
                    int(grid.knock_events[mi, ri]), int(covered[mi, ri]),
                )
            )  # fmt: skip
    return out.getvalue()


# -- text heatmap ---------------------------------------------------------------------


def _fit_int(v: float, width: int) -> str:
    """An integer in ``width`` chars, abbreviated with k/M when it does not fit."""
    for scale, suffix in ((1, ""), (1e3, "k"), (1e6, "M")):
        s = f"{round(v / scale):d}{suffix}"
        if len(s) <= width:
            return s
    return "+" * width


def _fit_float(v: float, width: int, decimals: int, signed: bool = False) -> str:
    """A float with as many of ``decimals`` as fit in ``width`` chars."""
    for d in range(decimals, -1, -1):
        s = f"{v:+.{d}f}" if signed else f"{v:.{d}f}"
        if len(s) <= width:
            return s
    return ("+" if v > 0 else "-") * width if signed else _fit_int(v, width)


def _cell_formatter(
    view: str, grid: CoverageGrid, width: int
) -> tuple[np.ndarray, Callable[[float], str], str]:
    """(values, formatter, legend) for one view; NaN/zero cells print as '.'."""
    if view == "hits":
        return grid.hits, lambda v: _fit_int(v, width), "samples per cell"
    if view == "afr":
        afr = grid.afr_mean()
        if width >= 4:
            return afr, lambda v: _fit_float(v, width, 1), "mean AFR"
        return afr * 10.0, lambda v: _fit_int(v, width), "mean AFR x10 (147 = 14.7)"
    if view == "afr_error":
        return (
            grid.afr_error_pct(),
            lambda v: _fit_float(v, width, 1, signed=True),
            "AFR error % vs target (+ lean, - rich)",
        )
    if view == "knock":
        return grid.knock_events, lambda v: _fit_int(v, width), "knock events"
    if view == "dwell":
        return grid.dwell_s, lambda v: _fit_float(v, width, 1), "seconds in cell"
    raise ValueError(f"heatmap view {view!r}: choose one of {', '.join(TEXT_VIEWS)}")


def _label(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:g}"


def grid_to_text(
    grid: CoverageGrid,
    view: str = "hits",
    *,
    width_limit: int | None = None,
    marks: Mapping[tuple[int, int], str] | None = None,
) -> str:
    """An ASCII heatmap: MAP rows high (top) to low, rpm columns, one number per cell.

    Each cell is a right-aligned number followed by a marker column: ``*`` for a
    covered cell (confidence 1: hits, settled dwell, lambda SE), blank otherwise, so covered cells stand out;
    ``.`` is a cell with nothing to show. ``marks`` maps (map_index, rpm_index)
    to a one-character mark (e.g. ``@`` for the current cell, ``1`` for the next
    target) drawn in the marker column; a longer mark replaces the number. The cell
    width is chosen to fit ``width_limit`` (default 80) columns; 16 rpm columns fit.
    """
    limit = 80 if width_limit is None else int(width_limit)
    n_map, n_rpm = grid.axes.shape
    map_labels = [_label(v) for v in grid.axes.map_kpa]
    label_w = max(3, *(len(s) for s in map_labels))
    cell_w = max(3, min(7, (limit - label_w - 1) // n_rpm))
    value_w = cell_w - 1
    values, fmt, legend = _cell_formatter(view, grid, value_w)
    covered = grid.covered_mask()
    marks = marks or {}

    lines = [
        _ascii(f"{legend}; '*' = covered, '.' = none"),
    ]
    if marks:
        lines.append(_ascii("marks: " + " ".join(sorted({m for m in marks.values() if m}))))
    for mi in range(n_map - 1, -1, -1):
        cells = []
        for ri in range(n_rpm):
            v = float(values[mi, ri])
            text = "." if math.isnan(v) or v == 0.0 else fmt(v)
            marker = "*" if covered[mi, ri] else " "
            mark = _ascii(marks.get((mi, ri), ""))
            if len(mark) == 1:
                marker = mark
            elif mark:
                text = mark[:value_w]
            cells.append(text.rjust(value_w) + marker)
        lines.append((map_labels[mi].rjust(label_w) + "|" + "".join(cells)).rstrip())
    lines.append(" " * label_w + "+" + "-" * (cell_w * n_rpm))
    lines.extend(_rpm_header(grid, label_w, cell_w))
    lines.append(
        f"covered {grid.covered_pct():.1f} % ({grid.covered_cells()}/{grid.axes.n_cells} cells), "
        f"{grid.samples_binned} samples binned; rows kPa, columns rpm"
    )
    rule = grid.rule
    lines.append(
        f"covered = >= {rule.hit_target} hits, >= {rule.min_dwell_s:g} s settled, "
        f"mean lambda standard error <= {rule.max_lambda_se_pct:g} %"
    )
    return "\n".join(lines) + "\n"


def _rpm_header(grid: CoverageGrid, label_w: int, cell_w: int) -> list[str]:
    """The rpm labels under the columns, staggered over two lines when one is too tight."""
    labels = [_label(v) for v in grid.axes.rpm]
    pad = " " * (label_w + 1)
    if max(len(s) for s in labels) < cell_w:
        return [pad + "".join(s.rjust(cell_w - 1) + " " for s in labels).rstrip()]
    rows = []
    for parity in (0, 1):
        line = pad
        for ri, s in enumerate(labels):
            if ri % 2 != parity:
                continue
            end = label_w + (ri + 1) * cell_w  # right edge of this column's number
            line = line.ljust(end - len(s)) + s if len(line) <= end - len(s) else line
        rows.append(line.rstrip())
    return rows


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


__all__ = ["CSV_COLUMNS", "FORMAT_TAG", "TEXT_VIEWS", "grid_to_csv", "grid_to_json", "grid_to_text"]
