"""Wide text logs: a header row naming a time column, one column per channel.

Split out of ``csvlogs``: most tools (TunerStudio, MSL, RomRaider, ECUMaster,
EvoScan, Torque, EcuTek, BlueDriver, WinPEP, plain CSV) write this shape, so one
reader handles it, with the quirks as data rather than per-tool code: an
optional units row, decimal commas, ``MARK`` lines, and RomRaider's repeated
header (a new column set, merged by name). The Arrow fast path reads the rows
from the file's bytes when the table is plain; anything else raises
:class:`NeedFullText` and the text path takes over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from core.formats.clock import unwrap_midnight
from core.formats.csvtext import (
    MARK,
    Options,
    Refused,
    head_lines,
    header_row,
    line_offsets,
    time_axis,
)
from core.formats.model import RawLog
from core.formats.names import normalise, split_name_unit
from core.formats.table import (
    NULL_CELLS,
    Table,
    arrow_table,
    find_time_column,
    is_number,
    numeric_table,
    sniff_delimiter,
    split_lines,
    split_row,
)
from core.frames import F64


class NeedFullText(Exception):
    """The fast path met something only the text path handles; decode and parse again."""


@dataclass(frozen=True, slots=True)
class Source:
    """The file itself, for the fast path: ``text`` is then only the decoded head."""

    path: str
    bom_bytes: int
    """Length of the UTF-8 byte-order mark before the text (0 or 3)."""


def read_wide(text: str, flavour: str, options: Options, source: Source | None = None) -> RawLog:
    """Any table with a header row naming a time column (optionally a units row under it)."""
    head = head_lines(text)
    h = header_row(head, options.time_name)
    if h is None:
        raise Refused("no header row with a time column found")
    offsets = line_offsets(text, h + 3)
    delim = sniff_delimiter(head[h])
    header = split_row(head[h], delim)
    if any(len(c) > 512 for c in header):
        raise Refused("a header cell is longer than 512 characters; not a log header")
    has_units_row = flavour in ("tunerstudio", "msl")
    units_cells: list[str] = []
    data_line = h + 1
    if has_units_row and h + 1 < len(head):
        units_cells = split_row(head[h + 1], delim)
        data_line = h + 2
    info = "\n".join(ln.strip().strip('"') for ln in head[:h] if ln.strip())
    start = offsets[min(data_line, len(offsets) - 1)] if data_line < len(offsets) else len(text)
    sample = next((ln for ln in head[data_line:] if ln.strip() and not MARK.match(ln)), "")
    decimal_comma = delim != "," and bool(re.search(r"\d,\d", sample)) and "." not in sample

    segments: list[tuple[list[str], RawLog]] = []
    cells_header = header
    seg_start = start
    first_line_no = data_line + 1
    while True:
        raw, stop = _segment(
            text,
            seg_start,
            delim,
            cells_header,
            units_cells,
            decimal_comma,
            flavour,
            options,
            first_line_no,
            source,
        )
        segments.append((cells_header, raw))
        if stop >= len(text):
            break
        line_end = text.find("\n", stop)
        line_end = len(text) if line_end < 0 else line_end + 1
        cells_header = split_row(text[stop:line_end].rstrip("\r\n"), delim)
        seg_start = line_end
        units_cells = []
    parts = [r for _, r in segments]
    raw = parts[0] if len(parts) == 1 else _merge_segments(parts)
    raw.info = info
    markers = _markers(text, start, raw.t_s)
    raw.markers = markers
    return raw


def _segment(
    text: str,
    start: int,
    delim: str,
    header: list[str],
    units_cells: list[str],
    decimal_comma: bool,
    flavour: str,
    options: Options,
    first_line_no: int,
    source: Source | None = None,
) -> tuple[RawLog, int]:
    """One table (a header and its rows); also returns where the next header starts."""
    names: list[str] = []
    units: list[str] = []
    for j, cell in enumerate(header):
        name, unit = split_name_unit(cell)
        if units_cells:
            name, unit = cell.strip(), units_cells[j].strip() if j < len(units_cells) else ""
        names.append(name or f"column {j + 1}")
        units.append(unit or _TOOL_UNITS.get(flavour, {}).get(name, ""))
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    for j, name in enumerate(names):
        if seen[name] > 1 and not units_cells:  # "G(x)", "G(y)": the brackets were no unit
            names[j], units[j] = header[j].strip(), ""
    t_idx = _time_index(header, names, flavour, options)
    if t_idx is None:
        raise Refused("no time column (name it with --map time=COLUMN)")
    first_cell = header[0].strip()
    stop = (
        re.compile(r'^\s*"?' + re.escape(first_cell) + r'"?\s*' + re.escape(delim))
        if (first_cell and not is_number(first_cell))
        else None
    )
    first_row = _first_data_row(text, start)
    first_cells = split_row(first_row, delim) if first_row else []
    first_time = first_cells[t_idx] if t_idx < len(first_cells) else ""
    numeric_time = is_number(first_time)
    if source is not None:
        sample_rows = [split_row(ln, delim) for ln in split_lines(text[start:])[:200]]
        words = frozenset(
            j
            for row in sample_rows
            for j, c in enumerate(row[: len(header)])
            if j != t_idx and c not in NULL_CELLS and not is_number(c)
        )
        numbers = frozenset(
            j
            for row in sample_rows
            for j, c in enumerate(row[: len(header)])
            if c not in NULL_CELLS and is_number(c)
        )
        if words & numbers:
            # a number column with a word in it ("ERR"): Arrow would read the whole
            # column as text (all NaN); the text path keeps its numbers and counts the rest
            raise NeedFullText
        table = _fast_table(
            source, text, start, delim, header, decimal_comma, numeric_time, t_idx, words
        )
        stop_at = len(text)
    else:
        table, stop_at = numeric_table(
            text,
            start,
            delim,
            len(header),
            decimal_comma=decimal_comma,
            text_col=None if numeric_time else t_idx,
            first_line_no=first_line_no,
            skip_line=MARK,
            stop_line=stop,
        )
    damage: list[str] = []
    if table.ragged:
        rows = table.columns[0].size if table.columns else 0
        if table.ragged > max(10, rows // 100) and not (table.ragged == 1 and table.truncated_last):
            raise Refused(
                f"{table.ragged} of {rows} data rows have a different number of cells than "
                f"the header ({len(header)}), first at line {table.first_ragged_line}; "
                f"wrong delimiter or not one table"
            )
        what = "the last row was cut short" if table.truncated_last else "rows padded with NaN"
        damage.append(
            f"{table.ragged} rows had a different number of cells than the header ({what})"
        )
    tvals = table.columns[t_idx] if table.columns else np.zeros(0)
    if tvals.size == 0:
        t, clock, started = np.zeros(0), "", None
    else:
        cells = table.text_column or [first_time]
        t, clock, started = time_axis(
            cells, None if table.text_column else tvals, names[t_idx], units[t_idx], options
        )
    skip = {t_idx} | _bookkeeping(names, flavour)
    keep = [j for j in range(len(names)) if j not in skip]
    raw = RawLog(
        format_name="",
        t_s=t,
        names=[names[j] for j in keep],
        units=[units[j] for j in keep],
        values=[table.columns[j] for j in keep] if table.columns else [np.zeros(0) for _ in keep],
        damage=damage,
        started_at=started,
        clock=clock,
        not_numbers={names[j]: got for j in keep if (got := table.not_numbers(j))},
    )
    return raw, stop_at


def _fast_table(
    source: Source,
    head: str,
    start: int,
    delim: str,
    header: list[str],
    decimal_comma: bool,
    numeric_time: bool,
    t_idx: int,
    words: frozenset[int],
) -> Table:
    """The Arrow fast path over the file's bytes; NeedFullText when it does not apply.

    A ``MARK`` row or a repeated header puts words in number columns (or leaves a
    row short), which Arrow refuses, so those files fall back to the text path.
    """
    byte_start = source.bom_bytes + len(head[:start].encode("utf-8"))
    table = arrow_table(
        source.path,
        byte_start,
        delim,
        len(header),
        decimal_comma=decimal_comma,
        text_col=None if numeric_time else t_idx,
        word_cols=words,
    )
    if table is None:
        raise NeedFullText
    return table


def _first_data_row(text: str, start: int) -> str:
    for line in split_lines(text[start : start + 65536]):
        if line.strip() and not MARK.match(line):
            return line
    return ""


_TOOL_UNITS: dict[str, dict[str, str]] = {
    "evoscan": {"AirFlow": "Hz"},
}
"""Units of a tool's fixed item names when its CSV writes none.

EvoScan's ``AirFlow`` is the Mitsubishi Karman-vortex MAF's frequency (MUT request
0x1A, 6.25 Hz per count), not a mass flow: a real EvoScan log (2003 Evo VIII) reads
150 at part throttle and 1,493.75 at 7,187 rpm, every value a multiple of 6.25.
With its unit known the mapper refuses it as a raw signal instead of taking g/s.
"""


def _bookkeeping(names: list[str], flavour: str) -> set[int]:
    """Columns that are clocks or row counters, not channels (EvoScan, Torque)."""
    drop = {"logid", "logentrydate", "logentrytime", "lognotes", "gps time", "device time", "date"}
    return {j for j, n in enumerate(names) if normalise(n) in drop}


def _time_index(header: list[str], names: list[str], flavour: str, options: Options) -> int | None:
    if options.time_name is not None:
        for j, (cell, name) in enumerate(zip(header, names, strict=True)):
            if options.time_name in (cell, name):
                return j
        return None
    if flavour == "evoscan" and "LogEntrySeconds" in names:
        return names.index("LogEntrySeconds")
    return find_time_column(header)


def _merge_segments(parts: list[RawLog]) -> RawLog:
    """RomRaider writes the header again when the logged set changes: merge by name."""
    order: list[str] = []
    units: dict[str, str] = {}
    for p in parts:
        for n, u in zip(p.names, p.units, strict=True):
            if n not in units:
                order.append(n)
                units[n] = u
    merged = []
    for n in order:
        cols = []
        for p in parts:
            size = np.asarray(p.t_s).size
            cols.append(p.values[p.names.index(n)] if n in p.names else np.full(size, np.nan))
        merged.append(np.concatenate(cols))
    t = np.concatenate([np.asarray(p.t_s) for p in parts])
    if parts[0].clock.endswith("unwrapped"):
        t = unwrap_midnight(t)
    notes = [n for p in parts for n in p.notes]
    damage = [n for p in parts for n in p.damage]
    notes.append(f"header repeated {len(parts) - 1} times; columns merged")
    not_numbers: dict[str, tuple[int, str]] = {}
    for p in parts:
        for name, (count, first) in p.not_numbers.items():
            before, shown = not_numbers.get(name, (0, first))
            not_numbers[name] = (before + count, shown)
    return RawLog(
        format_name="",
        t_s=t,
        names=order,
        units=[units[n] for n in order],
        values=merged,
        notes=notes,
        damage=damage,
        started_at=parts[0].started_at,
        clock=parts[0].clock,
        not_numbers=not_numbers,
    )


def _markers(text: str, start: int, t: F64) -> list[tuple[float, str]]:
    """``MARK`` lines (TunerStudio, MSL): placed at the time of the row before them."""
    out: list[tuple[float, str]] = []
    if "MARK" not in text or np.asarray(t).size == 0:
        return out
    for k, m in enumerate(re.finditer(r'^[ \t"]*MARK\b[^\r\n]*', text[start:], re.MULTILINE)):
        before = text.count("\n", start, start + m.start()) - k
        row = min(max(before - 1, 0), t.size - 1)
        out.append((float(t[row]), m.group(0).strip().strip('"')))
    return out
