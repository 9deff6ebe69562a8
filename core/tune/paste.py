"""Tables as text: read a table pasted from tuning software, write paste blocks and CSV.

What the tools put on the clipboard when a tuner copies a fuel table *with its axes*
(TunerStudio's table editor, Power Vision, HP Tuners "Copy with Axis"): one axis as
a row, the other as the first column, a corner cell that is blank or a label
("kPa/RPM"), cells separated by tabs (commas or semicolons from a spreadsheet).
The tools differ in which axis runs across, which way the load axis runs (editors
draw high load at the top) and whether the axis row comes first or last, so the
reader finds out rather than assumes: the axis whose breakpoints are larger is rpm,
and both axes are sorted ascending with the values moved along.

VE in any unit proportional to airflow works (percent, HP Tuners' g*K/kPa):
correction multiplies, so the unit never enters it.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from core.tune.table import F64, Table, Tune, TuneError

MAX_TABLE_BYTES = 4 * 1024 * 1024


def _cell(text: str) -> float | None:
    t = text.strip().strip('"').strip()
    if not t:
        return None
    try:
        return float(t.replace(",", ".")) if t.count(",") == 1 and "." not in t else float(t)
    except ValueError:
        return None


def _split(line: str) -> list[str]:
    if "\t" in line:
        return line.split("\t")
    for d in (";", ","):
        if d in line:
            return line.split(d)
    return line.split()


def parse_table_text(text: str, where: str = "table", name: str = "pasted") -> Table:
    """A :class:`Table` (rows = MAP ascending, columns = rpm ascending) from pasted text.

    Raises:
        TuneError: no axis row, ragged rows, a non-number among the values, bad axes.
    """
    rows = [_split(line.rstrip("\r\n")) for line in text.splitlines() if line.strip()]
    if len(rows) < 3:
        raise TuneError(f"{where}: a table needs an axis row and at least 2 rows of values")
    # Drop trailing empty cells (spreadsheets pad rows with delimiters).
    for r in rows:
        while len(r) > 1 and not r[-1].strip():
            r.pop()
    header_at = next((i for i in (0, len(rows) - 1) if _cell(rows[i][0]) is None), None)
    if header_at is None:
        raise TuneError(
            f"{where}: no axis row found (the first or last row should start with a blank or "
            "label cell, then the breakpoints); copy the table with its axes"
        )
    header = rows[header_at]
    body = [r for i, r in enumerate(rows) if i != header_at]
    x = [_cell(c) for c in header[1:]]
    if not x or any(v is None for v in x):
        raise TuneError(f"{where}: the axis row {header!r} is not all numbers after its first cell")
    values: list[list[float]] = []
    y: list[float] = []
    for k, r in enumerate(body, start=1):
        cells = [_cell(c) for c in r]
        if len(cells) != len(x) + 1:
            raise TuneError(
                f"{where}: row {k} has {len(cells) - 1} values, the axis row has {len(x)}"
            )
        bad = next((i for i, v in enumerate(cells) if v is None), None)
        if bad is not None:
            raise TuneError(
                f"{where}: row {k}, cell {bad + 1} ({r[bad].strip()!r}) is not a number"
            )
        y.append(float(cells[0]))  # type: ignore[arg-type]
        values.append([float(v) for v in cells[1:]])  # type: ignore[arg-type]
    xa = np.array(x, dtype=np.float64)
    ya = np.array(y, dtype=np.float64)
    grid = np.array(values, dtype=np.float64)  # [len(y), len(x)]
    if xa.max() < ya.max():  # rpm runs down the first column: transpose
        xa, ya, grid = ya, xa, grid.T
    col_order = np.argsort(xa, kind="stable")
    row_order = np.argsort(ya, kind="stable")
    return Table.of(xa[col_order], ya[row_order], grid[row_order][:, col_order], name)


def read_table_file(path: str | Path) -> Tune:
    """A tune holding one VE table from a text file (TSV / CSV copied with axes)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TuneError(f"{p}: no such file") from None
    except OSError as exc:
        raise TuneError(f"{p}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_TABLE_BYTES:
        raise TuneError(f"{p}: {len(data)} bytes is far too big for a pasted table")
    if b"\x00" in data:
        raise TuneError(f"{p}: binary data, not a pasted table")
    text = data.decode("utf-8-sig", errors="replace")
    return Tune(ve=parse_table_text(text, str(p)), source=f"{p} (pasted table)", kind="paste")


def _fmt(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}"


def paste_block(values: F64, decimals: int = 1) -> str:
    """Values only, tab-separated, highest MAP row first: the block a tuner pastes.

    Table editors (TunerStudio, Power Vision, HP Tuners) draw the load axis with high
    load at the top; select the whole table there and paste this.
    """
    out = io.StringIO()
    for row in values[::-1]:
        out.write("\t".join(_fmt(v, decimals) for v in row) + "\n")
    return out.getvalue()


def table_text(table: Table, values: F64 | None = None, sep: str = ",", decimals: int = 2) -> str:
    """Values with axes (rows = MAP ascending, first row the rpm breakpoints).

    The corner cell is ``MAP/RPM``; the text reads back with :func:`parse_table_text`
    when every value is a number. NaN is written as an empty field: no value (the
    dashboard's VE change table leaves cells it does not change empty, where "0.00"
    would read as "checked, needs no change").
    """
    vals = table.values if values is None else values
    out = io.StringIO()
    out.write(sep.join(["MAP/RPM", *(f"{r:g}" for r in table.axes.rpm)]) + "\n")
    for m, row in zip(table.axes.map_kpa, vals, strict=True):
        cells = ("" if math.isnan(v) else _fmt(v, decimals) for v in row)
        out.write(sep.join([f"{m:g}", *cells]) + "\n")
    return out.getvalue()


__all__ = ["paste_block", "parse_table_text", "read_table_file", "table_text"]
