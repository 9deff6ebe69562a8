"""MSL: the MegaLogViewer / TunerStudio ASCII log.

Layout: one or more quoted header lines (the ECU signature, ``"Capture Date: ..."``),
then a tab-separated names row, a tab-separated units row, and tab-separated data
rows. A line starting with ``MARK`` is a marker placed at the time of the row
before it. TunerStudio writes ``Time`` in seconds as the first column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.formats.model import LogImportError, RawLog
from core.formats.table import find_time_column, numeric_columns, split_row, time_seconds


def looks_like_msl(lines: list[str]) -> bool:
    """Quoted signature lines followed by a tab-separated names row with a Time column."""
    body = [ln for ln in lines if ln.strip()]
    if not body or not body[0].lstrip().startswith('"'):
        return False
    names = next((ln for ln in body if not ln.lstrip().startswith('"')), "")
    return "\t" in names and find_time_column(names.split("\t")) is not None


def read_msl(path: Path, text: str, progress: Callable[[int, int], None] | None = None) -> RawLog:
    """Parse MSL text into a RawLog."""
    lines = text.splitlines()
    at = 0
    info: list[str] = []
    while at < len(lines) and (not lines[at].strip() or lines[at].lstrip().startswith('"')):
        if lines[at].strip():
            info.append(lines[at].strip().strip('"'))
        at += 1
    if at + 1 >= len(lines):
        raise LogImportError(f"{path}: truncated MSL log (no names and units rows)")
    names = split_row(lines[at], "\t")
    units = split_row(lines[at + 1], "\t")
    units += [""] * (len(names) - len(units))
    time_idx = find_time_column(names)
    if time_idx is None:
        raise LogImportError(f"{path}: MSL log has no Time column")
    rows: list[list[str]] = []
    marks: list[tuple[int, str]] = []
    total = len(lines)
    for n, line in enumerate(lines[at + 2 :], start=at + 2):
        if not line.strip():
            continue
        if line.startswith("MARK"):
            marks.append((len(rows) - 1, line.strip()))
            continue
        rows.append(line.split("\t"))
        if progress is not None and n % 20000 == 0:
            progress(n, total)
    if progress is not None:
        progress(total, total)
    if not rows:
        raise LogImportError(f"{path}: MSL log has no data rows")
    t = time_seconds([r[time_idx] if time_idx < len(r) else "" for r in rows], units[time_idx])
    cols = numeric_columns(rows, len(names))
    keep = [i for i in range(len(names)) if i != time_idx]
    markers = [(float(t[max(i, 0)]), text) for i, text in marks]
    notes = []
    ragged = sum(1 for r in rows if len(r) != len(names))
    if ragged:
        notes.append(f"{ragged} rows had a different number of cells than the header")
    return RawLog(
        format_name="MSL (MegaLogViewer text)",
        t_s=np.asarray(t, dtype=np.float64),
        names=[names[i] for i in keep],
        units=[units[i] for i in keep],
        values=[cols[i] for i in keep],
        markers=markers,
        notes=notes,
        info="\n".join(info),
    )
