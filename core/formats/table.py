"""Helpers shared by the text importers: rows to numeric columns, and the time column.

Text logs differ in delimiter, decimal mark, whether units sit in their own row
or in brackets after the name, and how time is written (seconds, milliseconds,
or a wall-clock ``HH:MM:SS.mmm``). These helpers absorb those differences so
each flavour only has to say where its names, units and data rows are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from core.formats.mapping import normalise
from core.frames import F64

TIME_NAMES = (
    "time",
    "offset",
    "timestamp",
    "seconds",
    "elapsed time",
    "log time",
    "sample time",
    "time stamp",
)
"""Normalised column names taken as the time axis."""

_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2}(?:[.,]\d*)?)\s*$")


def sniff_delimiter(line: str) -> str:
    """The delimiter of a header line: tab, semicolon or comma (most frequent wins)."""
    counts = {d: line.count(d) for d in ("\t", ";", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def split_row(line: str, delimiter: str) -> list[str]:
    """Split one row, honouring double quotes around cells."""
    if '"' not in line:
        return [c.strip() for c in line.split(delimiter)]
    cells: list[str] = []
    cur: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(char)
    cells.append("".join(cur).strip())
    return cells


def is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", "."))
    except ValueError:
        return False
    return True


def numeric_columns(
    rows: Sequence[Sequence[str]], width: int, decimal_comma: bool = False
) -> list[F64]:
    """Columns of floats; empty or non-numeric cells become NaN."""
    padded = [list(r[:width]) + [""] * (width - len(r)) for r in rows]
    if not padded:
        return [np.zeros(0) for _ in range(width)]
    table = np.array(padded, dtype=str)
    if decimal_comma:
        table = np.char.replace(table, ",", ".")
    out = []
    for j in range(width):
        col = table[:, j]
        try:
            out.append(col.astype(np.float64))
        except ValueError:
            out.append(np.array([_to_float(c) for c in col], dtype=np.float64))
    return out


def _to_float(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def find_time_column(names: Sequence[str]) -> int | None:
    """Index of the time column by name, or None."""
    for i, name in enumerate(names):
        if normalise(name) in TIME_NAMES:
            return i
    for i, name in enumerate(names):
        if normalise(name).startswith("time "):
            return i
    return None


def time_seconds(cells: Sequence[str], unit: str, decimal_comma: bool = False) -> F64:
    """Seconds from a time column written in s, ms or as a wall clock ``HH:MM:SS.mmm``."""
    first = next((c for c in cells if c.strip()), "")
    if _CLOCK.match(first):
        return unwrap_midnight(np.array([_clock_seconds(c) for c in cells], dtype=np.float64))
    values = numeric_columns([[c] for c in cells], 1, decimal_comma)[0]
    key = unit.strip().lower()
    if key in ("ms", "msec", "millisecond", "milliseconds"):
        return values / 1000.0
    if key in ("us", "usec", "microseconds"):
        return values / 1e6
    return values


def unwrap_midnight(secs: F64) -> F64:
    """Wall-clock seconds of a log that runs past midnight: a step back of over 12 h adds a day."""
    steps = np.diff(secs, prepend=secs[:1])
    return secs + 86400.0 * np.cumsum(steps < -43200.0)


def _clock_seconds(cell: str) -> float:
    m = _CLOCK.match(cell)
    if m is None:
        return float("nan")
    h, mi, s = m.groups()
    return int(h) * 3600.0 + int(mi) * 60.0 + float(s.replace(",", "."))
