"""Rows of a text log to numeric columns, fast and in bounded memory.

Text logs differ in delimiter, decimal mark, quoting, empty cells (sparse rows,
``-`` for "no value") and how long a row is. :func:`numeric_table` absorbs those
differences. It walks the text in chunks of about a megabyte, so the only
whole-file copies are the text itself and the float table it fills (8 bytes a
cell, allocated once from the row count); numpy's C ``loadtxt`` parses each chunk
and only a chunk it refuses (ragged rows, words in number columns) is parsed
cell by cell in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.formats.names import normalise
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
    "logentryseconds",
    "device time",
    "interval",
    "time s",
    "time ms",
    "time sec",
    "time msec",
)
"""Normalised column names taken as the time axis (in this order of preference)."""

NULL_CELLS = frozenset({"", "-", "--", "nan", "NaN", "N/A", "n/a", "NA", "null", "NULL", "?"})
"""Cells that mean "no value" in some tool's log."""

MAX_CELL_CHARS = 256
"""A data cell longer than this is not a logged value: the file is refused."""

CHUNK_CHARS = 1 << 20
ARROW_BLOCK_BYTES = 8 << 20
"""Arrow reads this much of the file at a time; its column buffers are then large
enough for malloc to hand back to the OS when freed."""


class TableError(ValueError):
    """A data row that makes the table unreadable; the message names the line."""


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


def to_float(cell: str, decimal_comma: bool = False) -> float:
    """A cell as a float; NaN for "no value" or anything that is not a number."""
    cell = cell.strip().strip('"')
    if decimal_comma:
        cell = cell.replace(",", ".")
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def is_number(cell: str) -> bool:
    try:
        float(cell.strip().strip('"').replace(",", "."))
    except ValueError:
        return False
    return True


def find_time_column(names: Sequence[str]) -> int | None:
    """Index of the time column by name, or None."""
    keys = [normalise(n) for n in names]
    for want in TIME_NAMES:
        if want in keys:
            return keys.index(want)
    for i, key in enumerate(keys):
        if key.startswith("time "):
            return i
    return None


def split_lines(text: str) -> list[str]:
    """Lines split on LF only, CRLF's CR dropped.

    Unlike ``str.splitlines``, a stray CR, form feed or U+2028 inside a cell does
    not start a new row (which would disagree with the row count).
    """
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        return []
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def iter_line_chunks(text: str, start: int = 0) -> Iterator[tuple[int, list[str]]]:
    """``(first_line_offset, lines)`` chunks of about CHUNK_CHARS from character ``start``."""
    pos = start
    n = len(text)
    while pos < n:
        end = text.find("\n", min(pos + CHUNK_CHARS, n))
        end = n if end < 0 else end + 1
        yield pos, split_lines(text[pos:end])
        pos = end


@dataclass(slots=True)
class Table:
    """Numeric columns of the data rows, plus what was odd about them."""

    columns: list[F64]
    text_column: list[str] = field(default_factory=list)
    """The raw cells of the one column asked for as text (a clock time), if any."""
    ragged: int = 0
    first_ragged_line: int = 0
    truncated_last: bool = False
    unparsed: dict[int, int] = field(default_factory=dict)
    """Column -> how many of its cells are neither a number nor a "no value" mark
    ("ERR", "#VALUE!", "6 2"): read as NaN (see :meth:`not_numbers`)."""
    first_unparsed: dict[int, str] = field(default_factory=dict)
    """Column -> the first such cell, to show what they look like."""

    def not_numbers(self, j: int) -> tuple[int, str] | None:
        """(count, first such cell) of column ``j``'s cells that are not numbers, or None.

        Only in a column that holds numbers too: a column of words alone (notes, a
        gear letter, VCM Scanner's fuel system status) is text, not a channel with
        unreadable values.
        """
        count = self.unparsed.get(j, 0)
        if not count or j >= len(self.columns) or not np.isfinite(self.columns[j]).any():
            return None
        return count, self.first_unparsed[j]


def numeric_table(
    text: str,
    start: int,
    delimiter: str,
    width: int,
    *,
    decimal_comma: bool = False,
    text_col: int | None = None,
    first_line_no: int = 1,
    skip_line: re.Pattern[str] | None = None,
    stop_line: re.Pattern[str] | None = None,
) -> tuple[Table, int]:
    """Parse the data rows from character ``start`` into ``width`` float columns.

    Empty cells and words become NaN. Returns the table and the character offset
    where parsing stopped (the end of the text, or a line matching ``stop_line``).

    Args:
        text: The whole decoded log.
        start: Character offset of the first data row.
        delimiter: The cell delimiter.
        width: Number of columns (the header's cell count).
        decimal_comma: Cells use ``,`` as the decimal mark.
        text_col: A column to return as raw text too (a clock time column).
        first_line_no: File line number of the first data row, for messages.
        skip_line: Rows matching this are left out (marker rows, comments).
        stop_line: A row matching this ends the table (a repeated header).

    Raises:
        TableError: a cell longer than MAX_CELL_CHARS.
    """
    capacity = text.count("\n", start) + 1
    out = np.full((width, capacity), np.nan)
    table = Table([])
    limit = MAX_CELL_CHARS * width + 1024
    at = 0
    line_no = first_line_no
    stop_at = len(text)
    last_row = ""
    for pos, lines in iter_line_chunks(text, start):
        cut = None
        if stop_line is not None:
            cut = next((k for k, ln in enumerate(lines) if stop_line.match(ln)), None)
            if cut is not None:
                stop_at = text.find(lines[cut], pos)
                lines = lines[:cut]
        rows = [ln for ln in lines if ln.strip() and (skip_line is None or not skip_line.match(ln))]
        if rows:
            if max(map(len, rows)) > MAX_CELL_CHARS:
                _check_cells(rows, delimiter, line_no, limit)
            parsed = _fast(rows, delimiter, width, decimal_comma, text_col)
            if parsed is None:
                parsed = _slow(rows, delimiter, width, decimal_comma, text_col, table, line_no)
            out[:, at : at + len(rows)] = parsed
            at += len(rows)
            last_row = rows[-1]
            if text_col is not None:
                table.text_column.extend(_cell(ln, delimiter, text_col) for ln in rows)
        line_no += len(lines)
        if cut is not None:
            break
    out = out[:, :at]
    table.columns = [out[j] for j in range(width)]
    if table.ragged and len(split_row(last_row, delimiter)) < width:
        table.truncated_last = True
    return table, stop_at


def _check_cells(chunk: Sequence[str], delimiter: str, line_no: int, limit: int) -> None:
    for k, line in enumerate(chunk):
        if len(line) <= MAX_CELL_CHARS:
            continue
        longest = (
            max(len(c) for c in line.split(delimiter)) if len(line) <= 4 * limit else len(line)
        )
        if longest > MAX_CELL_CHARS:
            raise TableError(
                f"data row {line_no + k}: a cell of {longest} characters "
                f"(a log value is at most {MAX_CELL_CHARS}); not a log this reader understands"
            )


def _cell(line: str, delimiter: str, j: int) -> str:
    cells = split_row(line, delimiter) if '"' in line else line.split(delimiter)
    return cells[j].strip() if j < len(cells) else ""


def _fast(
    chunk: list[str], delimiter: str, width: int, decimal_comma: bool, text_col: int | None
) -> F64 | None:
    """Parse a chunk with numpy's C parser when its rows are all well formed, else None."""
    d = delimiter
    s = "\n".join(chunk)
    count = s.count(d)
    if count not in ((width - 1) * len(chunk), width * len(chunk)) and '"' not in s:
        return None  # some rows have more or fewer cells: the slow path counts them
    if decimal_comma:
        s = s.replace(",", ".")
    if d + d in s:
        s = s.replace(d + d, d + "nan" + d).replace(d + d, d + "nan" + d)
    s = s.replace("\n" + d, "\nnan" + d).replace(d + "\n", d + "nan\n")
    if s.startswith(d):
        s = "nan" + s
    if s.endswith(d):
        s += "nan"
    cols = [j for j in range(width) if j != text_col]
    try:
        arr = np.loadtxt(
            s.split("\n"),
            delimiter=None if d == " " else d,
            quotechar='"',
            dtype=np.float64,
            usecols=cols,
            ndmin=2,
            comments=None,
        )
    except (ValueError, IndexError):
        return None
    if arr.shape != (len(chunk), len(cols)):
        return None
    if text_col is None:
        return arr.T
    full = np.full((width, len(chunk)), np.nan)
    full[cols] = arr.T
    return full


def _slow(
    chunk: list[str],
    delimiter: str,
    width: int,
    decimal_comma: bool,
    text_col: int | None,
    table: Table,
    line_no: int,
) -> F64:
    out = np.full((width, len(chunk)), np.nan)
    for i, line in enumerate(chunk):
        cells = split_row(line, delimiter)
        if len(cells) != width and not (len(cells) == width + 1 and not cells[-1]):
            if not table.ragged:
                table.first_ragged_line = line_no + i
            table.ragged += 1
        for j, cell in enumerate(cells[:width]):
            if j != text_col and cell not in NULL_CELLS:
                value = to_float(cell, decimal_comma)
                out[j, i] = value
                if value != value and not is_nan_word(cell):
                    table.unparsed[j] = table.unparsed.get(j, 0) + 1
                    table.first_unparsed.setdefault(j, cell)
    return out


def is_nan_word(cell: str) -> bool:
    """A cell that spells NaN itself ("nan", "NAN"): a logged "no value", not unreadable."""
    return cell.strip().strip('"').lower() in ("nan", "-nan", "+nan")


def arrow_table(
    path: str,
    start: int,
    delimiter: str,
    width: int,
    *,
    decimal_comma: bool = False,
    text_col: int | None = None,
    word_cols: frozenset[int] = frozenset(),
) -> Table | None:
    """Parse the data rows from byte ``start`` of a file with Arrow's CSV reader, or None.

    Arrow parses several times faster than numpy's ``loadtxt``, and it streams the
    file in blocks, so a large UTF-8 log is never held whole as bytes or ``str``:
    memory is the float columns plus one block.
    It is only a fast path: None (the caller falls back to :func:`numeric_table`)
    when pyarrow is missing, or a row has the wrong cell count, or a number
    column holds a word, so every oddity is handled and reported in one place.
    ``word_cols`` are read as text and returned as NaN (dates, notes, GPS time).
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a declared dependency
        return None
    names = [f"c{j}" for j in range(width)]
    texts = word_cols | ({text_col} if text_col is not None else set())
    types = {n: (pa.string() if j in texts else pa.float64()) for j, n in enumerate(names)}
    ragged = 0

    def bad_row(_row: object) -> str:
        nonlocal ragged
        ragged += 1
        return "skip"

    try:
        source = pa.OSFile(path, "r")
        source.seek(start)
        tab = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=ARROW_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char='"', invalid_row_handler=bad_row
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=sorted(NULL_CELLS),
                strings_can_be_null=False,
                decimal_point="," if decimal_comma else ".",
            ),
            # malloc, not Arrow's caching allocator: freed column buffers go back to the
            # OS at once, so Arrow's copy and numpy's never pile up.
            memory_pool=pa.system_memory_pool(),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OSError):
        return None
    if ragged:
        return None
    rows = tab.num_rows
    chunked = [tab.column(j) for j in range(width)]
    del tab  # each column's Arrow buffers are freed as soon as it is converted
    columns: list[F64] = []
    text_column: list[str] = []
    for j in range(width):
        col, chunked[j] = chunked[j], None
        if j == text_col:
            text_column = [str(v) for v in col.to_pylist()]
        if j in texts:
            columns.append(np.full(rows, np.nan))
            continue
        out = np.empty(rows, dtype=np.float64)  # filled chunk by chunk: no Arrow-side concat
        at = 0
        for chunk in col.chunks:
            part = chunk.to_numpy(zero_copy_only=False)
            out[at : at + part.size] = part
            at += part.size
        columns.append(out)
        del col
    if text_column and max(map(len, text_column), default=0) > MAX_CELL_CHARS:
        return None
    return Table(columns, text_column)
