"""Text logs from tuning tools, the tool recognised from the file's content.

Every flavour ends as a :class:`RawLog` (original names, units, display values on
one time axis); ``model.build_imported`` maps it onto canonical channels. What
each flavour looks like, and how it is recognised (never from the extension):

* **Haltech NSP** CSV: ``%DataLog%``, ``DataLogVersion``, ``Channel :`` / ``ID :`` /
  ``Type :`` blocks, then rows whose first cell is a time of day
  (``14:15:46.020``) and whose values are raw integers scaled by each channel's
  Type (Haltech CAN broadcast protocol: AbsPressure x0.1 kPa, Temperature x0.1 K,
  AFR x0.001 lambda, ...).
* **HP Tuners VCM Scanner**: ``HP Tuners CSV Log File``, ``[Channel Information]``
  (ids, names, units rows; names may hold commas inside quotes), ``[Channel Data]``
  with sparse rows; ``Offset`` in seconds.
* **Power Vision** and **Car Scanner** long format: one row per (time, signal,
  value[, units]); pivoted to one column per signal.
* **TunerStudio / MegaLogViewer** CSV and **MSL**: a names row then a units row.
* **RomRaider** logger: ``Time (msec)`` or a time of day, ``Name (unit)`` headers,
  external wideband names (PLX, Innovate, AEM, Zeitronix), ``;`` with decimal
  commas in European locales; a repeated header starts a new column set.
* **ECUMaster EMU Black / Pro**: ``TIME`` first, ``;`` or tab, EMU Pro names as
  paths (``engine/rpm``), sparse rows.
* **EvoScan**: ``LogID,LogEntryDate,LogEntryTime,LogEntrySeconds,...``.
* **Torque Pro**: ``GPS Time, Device Time, ...``, ``Name(unit)``, ``-`` for no value.
* **EcuTek / ProECU** (``Time`` in ms without a unit), **BlueDriver** (UTF-16,
  title and date lines), **Dynojet WinPEP**, and any other table with a time
  column (Link PCLink and Power Core exports included, unverified: no public
  description was found): title and metadata lines before the header are
  skipped, units come from ``(unit)`` / ``[unit]``, and a time column without a
  unit is read by its spacing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.formats.clock import (
    ClockError,
    clock_seconds,
    datetime_seconds,
    is_clock,
    is_datetime,
    seconds_from_numbers,
    unwrap_midnight,
)
from core.formats.mapping import normalise, split_name_unit
from core.formats.model import LogImportError, RawLog
from core.formats.table import (
    MAX_CELL_CHARS,
    NULL_CELLS,
    Table,
    TableError,
    arrow_table,
    find_time_column,
    is_number,
    iter_line_chunks,
    numeric_table,
    sniff_delimiter,
    split_lines,
    split_row,
    to_float,
)
from core.frames import F64

FLAVOURS = {
    "haltech": "Haltech NSP CSV",
    "hptuners": "HP Tuners VCM Scanner CSV",
    "powervision": "Power Vision long CSV",
    "carscanner": "Car Scanner CSV",
    "msl": "MSL (MegaLogViewer text)",
    "tunerstudio": "TunerStudio / MegaLogViewer CSV",
    "romraider": "RomRaider logger CSV",
    "ecumaster": "ECUMaster EMU CSV",
    "evoscan": "EvoScan CSV",
    "torque": "Torque Pro CSV",
    "ecutek": "EcuTek / ProECU CSV",
    "bluedriver": "BlueDriver CSV",
    "winpep": "Dynojet WinPEP export",
    "csv": "CSV",
}
_SIGNAL_NAMES = ("signal", "channel", "name", "parameter", "channel name", "signal name", "pid")
_VALUE_NAMES = ("value", "data", "reading")
_MARK = re.compile(r'^\s*"?MARK\b')
_HEAD_LINES = 200


@dataclass(frozen=True, slots=True)
class Options:
    """What the user told us: ``--map`` (incl. ``time=``) and ``--time-unit``."""

    channel_map: Mapping[str, str]
    time_unit: str | None = None

    @property
    def time_name(self) -> str | None:
        return self.channel_map.get("time")


def _cells(line: str) -> list[str]:
    return split_row(line, sniff_delimiter(line))


def _header_row(lines: list[str], time_name: str | None) -> int | None:
    """Index of the first line that names a time column (or the mapped time column)."""
    for i, line in enumerate(lines[:_HEAD_LINES]):
        if not line.strip():
            continue
        cells = _cells(line)
        if len(cells) < 2 or all(is_number(c) or not c for c in cells):
            continue
        names = [split_name_unit(c)[0] for c in cells]
        if time_name is not None:
            if time_name in cells or time_name in names:
                return i
            continue
        if find_time_column(cells) is not None:
            return i
    return None


def detect_text(lines: list[str], time_name: str | None = None) -> str | None:
    """The flavour key for a text log's first lines, or None when it is not one we read."""
    body = [ln.strip() for ln in lines[:_HEAD_LINES]]
    first = next((ln for ln in body if ln), "")
    if first.startswith("%DataLog%"):
        return "haltech"
    if "hp tuners" in first.lower() or "[Channel Information]" in body:
        return "hptuners"
    if _looks_like_msl(lines):
        return "msl"
    h = _header_row(lines, time_name)
    if h is None:
        return None
    header = lines[h]
    delim = sniff_delimiter(header)
    cells = split_row(header, delim)
    keys = [normalise(split_name_unit(c)[0]) for c in cells]
    banner = " ".join(body[:h]).lower()
    long_form = any(k in _SIGNAL_NAMES for k in keys) and any(k in _VALUE_NAMES for k in keys)
    if long_form and "pid" in keys and "seconds" in keys:
        return "carscanner"
    if len(cells) in (3, 4) and long_form:
        return "powervision"
    if "winpep" in banner:
        return "winpep"
    if "bluedriver" in banner or "bluedriver" in header.lower():
        return "bluedriver"
    if "ecutek" in banner or "proecu" in banner:
        return "ecutek"
    if keys[:1] == ["logid"] or "logentryseconds" in keys:
        return "evoscan"
    if "gps time" in keys and "device time" in keys:
        return "torque"
    if cells[0] == "TIME" or sum("/" in c for c in cells) > len(cells) // 2:
        return "ecumaster"
    following = next((ln for ln in lines[h + 1 :] if ln.strip()), "")
    second = split_row(following, delim)
    if second and sum(not is_number(c) for c in second if c) > len(second) // 2:
        return "tunerstudio"
    if split_name_unit(cells[0])[0] == "Time" and any(
        k.startswith(("plx ", "innovate ", "aem ", "zeitronix ", "lc 1 ", "lc 2 ")) for k in keys
    ):
        return "romraider"
    if cells[0].strip() == "Time (msec)" or (cells[0].strip() == "Time" and is_clock(second[0])):
        return "romraider"
    if cells[0].strip() == "Time" and re.fullmatch(r"\d+", second[0] if second else ""):
        return "ecutek"
    return "csv"


def _looks_like_msl(lines: list[str]) -> bool:
    """Quoted signature lines followed by a tab-separated names row with a Time column."""
    body = [ln for ln in lines if ln.strip()]
    if not body or not body[0].lstrip().startswith('"'):
        return False
    names = next((ln for ln in body if not ln.lstrip().startswith('"')), "")
    return "\t" in names and find_time_column(names.split("\t")) is not None


ARROW_FLAVOURS = frozenset(
    {
        "romraider",
        "tunerstudio",
        "msl",
        "ecumaster",
        "evoscan",
        "torque",
        "ecutek",
        "bluedriver",
        "winpep",
        "csv",
    }
)
"""Flavours whose data rows are one plain table: the Arrow fast path can read them."""


class NeedFullText(Exception):
    """The fast path met something only the text path handles; decode and parse again."""


@dataclass(frozen=True, slots=True)
class Source:
    """The file itself, for the fast path: ``text`` is then only the decoded head."""

    path: str
    bom_bytes: int
    """Length of the UTF-8 byte-order mark before the text (0 or 3)."""


def read_text_log(
    path: Path,
    text: str,
    flavour: str,
    options: Options,
    progress: Callable[[int, int], None] | None = None,
    source: Source | None = None,
) -> RawLog:
    """Parse one text flavour into a RawLog.

    With ``source``, ``text`` is the decoded head of the file and the rows are
    parsed from the bytes by the Arrow fast path; NeedFullText means "decode it
    all and call again without ``source``".

    Raises:
        LogImportError: one line naming the file and what is wrong with it.
        NeedFullText: only with ``source``.
    """
    try:
        if flavour == "haltech":
            raw = _read_haltech(text, options)
        elif flavour == "hptuners":
            raw = _read_hptuners(text, options)
        elif flavour in ("powervision", "carscanner"):
            raw = _read_long(text, options)
        else:
            raw = _read_wide(text, flavour, options, source)
    except (ClockError, TableError) as exc:
        raise LogImportError(f"{path}: {exc}") from None
    except _Refused as exc:
        raise LogImportError(f"{path}: {exc}") from None
    raw.format_name = FLAVOURS[flavour]
    if progress is not None:
        progress(len(text), len(text))
    return raw


class _Refused(ValueError):
    pass


def _line_offsets(text: str, count: int) -> list[int]:
    """Character offsets of the first ``count`` lines (and of the line after them)."""
    offsets = [0]
    pos = 0
    for _ in range(count):
        nxt = text.find("\n", pos)
        if nxt < 0:
            offsets.append(len(text))
            break
        pos = nxt + 1
        offsets.append(pos)
    return offsets


def _head(text: str) -> list[str]:
    end = 0
    for _ in range(_HEAD_LINES):
        nxt = text.find("\n", end)
        if nxt < 0:
            end = len(text)
            break
        end = nxt + 1
    return split_lines(text[:end])


def _time_axis(
    cells: list[str], values: F64 | None, name: str, unit: str, options: Options
) -> tuple[F64, str, float | None]:
    """Seconds from the time column, a description of how, and the wall-clock start."""
    sample = next((c for c in cells if c and c not in NULL_CELLS), "")
    if sample and is_clock(sample):
        return clock_seconds(cells), f"{name!r}: time of day, midnight rollover unwrapped", None
    if sample and not is_number(sample) and is_datetime(sample):
        secs = datetime_seconds(cells)
        ok = secs[np.isfinite(secs)]
        start = float(ok[0]) if ok.size else None
        return secs, f"{name!r}: date and time stamps", start
    if values is None:
        values = np.array([to_float(c) for c in cells], dtype=np.float64)
    if sample and not np.isfinite(values).any():
        raise ClockError(
            f"time column {name!r} holds {sample[:30]!r}, which is not a time; "
            f"name the clock with --map time=COLUMN --time-unit ms|s"
        )
    secs, how = seconds_from_numbers(values, unit, name, options.time_unit)
    return secs, f"{name!r}: {how}", None


def _read_wide(text: str, flavour: str, options: Options, source: Source | None = None) -> RawLog:
    """Any table with a header row naming a time column (optionally a units row under it)."""
    head = _head(text)
    h = _header_row(head, options.time_name)
    if h is None:
        raise _Refused("no header row with a time column found")
    offsets = _line_offsets(text, h + 3)
    delim = sniff_delimiter(head[h])
    header = split_row(head[h], delim)
    if any(len(c) > 512 for c in header):
        raise _Refused("a header cell is longer than 512 characters; not a log header")
    has_units_row = flavour in ("tunerstudio", "msl")
    units_cells: list[str] = []
    data_line = h + 1
    if has_units_row and h + 1 < len(head):
        units_cells = split_row(head[h + 1], delim)
        data_line = h + 2
    info = "\n".join(ln.strip().strip('"') for ln in head[:h] if ln.strip())
    start = offsets[min(data_line, len(offsets) - 1)] if data_line < len(offsets) else len(text)
    sample = next((ln for ln in head[data_line:] if ln.strip() and not _MARK.match(ln)), "")
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
        units.append(unit)
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    for j, name in enumerate(names):
        if seen[name] > 1 and not units_cells:  # "G(x)", "G(y)": the brackets were no unit
            names[j], units[j] = header[j].strip(), ""
    t_idx = _time_index(header, names, flavour, options)
    if t_idx is None:
        raise _Refused("no time column (name it with --map time=COLUMN)")
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
            skip_line=_MARK,
            stop_line=stop,
        )
    notes: list[str] = []
    if table.ragged:
        rows = table.columns[0].size if table.columns else 0
        if table.ragged > max(10, rows // 100) and not (table.ragged == 1 and table.truncated_last):
            raise _Refused(
                f"{table.ragged} of {rows} data rows have a different number of cells than "
                f"the header ({len(header)}), first at line {table.first_ragged_line}; "
                f"wrong delimiter or not one table"
            )
        what = "the last row was cut short" if table.truncated_last else "rows padded with NaN"
        notes.append(
            f"{table.ragged} rows had a different number of cells than the header ({what})"
        )
    tvals = table.columns[t_idx] if table.columns else np.zeros(0)
    if tvals.size == 0:
        t, clock, started = np.zeros(0), "", None
    else:
        cells = table.text_column or [first_time]
        t, clock, started = _time_axis(
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
        notes=notes,
        started_at=started,
        clock=clock,
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
        if line.strip() and not _MARK.match(line):
            return line
    return ""


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
    notes.append(f"header repeated {len(parts) - 1} times; columns merged")
    return RawLog(
        format_name="",
        t_s=t,
        names=order,
        units=[units[n] for n in order],
        values=merged,
        notes=notes,
        started_at=parts[0].started_at,
        clock=parts[0].clock,
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


# ---------------------------------------------------------------- Haltech NSP

_HALTECH_TYPES: dict[str, tuple[float, float, str]] = {
    "EngineSpeed": (1.0, 0.0, "rpm"),
    "AbsPressure": (0.1, 0.0, "kPa"),
    "Pressure": (0.1, -101.3, "kPa (gauge)"),
    "Percentage": (0.1, 0.0, "%"),
    "PercentPerEngineCycle": (0.1, 0.0, "%"),
    "PercentPerLambda": (0.1, 0.0, "%"),
    "PercentPerRpm": (0.1, 0.0, "%"),
    "Angle": (0.1, 0.0, "deg"),
    "BatteryVoltage": (0.001, 0.0, "V"),
    "Temperature": (0.1, 0.0, "K"),
    "Speed": (0.1, 0.0, "km/h"),
    "AFR": (0.001, 0.0, "lambda"),
    "Decibel": (0.01, 0.0, "dB"),
    "Time_us": (0.001, 0.0, "ms"),
    "Time_ms": (1.0, 0.0, "ms"),
    "Time_ms_as_s": (0.001, 0.0, "s"),
    "Time_s": (1.0, 0.0, "s"),
    "Current": (0.001, 0.0, "A"),
    "Flow": (1.0, 0.0, "cc/min"),
    "Frequency": (1.0, 0.0, "Hz"),
    "Gear": (1.0, 0.0, ""),
    "GearRatio": (0.01, 0.0, ""),
    "Ratio": (0.01, 0.0, ""),
    "Stoichiometry": (0.01, 0.0, "AFR"),
    "Raw": (1.0, 0.0, ""),
}
"""Haltech channel Type -> (scale, offset, unit) of the raw integers in an NSP export.

From Haltech's published CAN ECU broadcast protocol (the same units NSP exports):
pressures in 0.1 kPa (gauge channels offset by one atmosphere), temperatures in
0.1 K, lambda in 0.001, battery in mV, angles and percentages in 0.1.
"""


def _read_haltech(text: str, options: Options) -> RawLog:
    head_end = re.search(r"^\s*\d{1,2}:\d{2}:\d{2}", text, re.MULTILINE)
    if head_end is None:
        raise _Refused("Haltech NSP log with channel blocks but no data rows")
    meta_lines = split_lines(text[: head_end.start()])
    channels: list[dict[str, str]] = []
    info: list[str] = []
    for line in meta_lines:
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key == "Channel":
            channels.append({"name": value})
        elif channels and key in ("ID", "Type", "DisplayMaxMin"):
            channels[-1][key] = value
        elif not channels or key in ("Log", "Log Source", "Log Number"):
            info.append(f"{key}: {value}")
    if not channels:
        raise _Refused("Haltech NSP log without Channel blocks")
    width = len(channels) + 1
    table, _ = numeric_table(text, head_end.start(), ",", width, text_col=0)
    t, clock, _ = _time_axis(table.text_column, None, "time of day", "", options)
    names, units, values, notes = [], [], [], []
    unknown = set()
    for j, chan in enumerate(channels, start=1):
        kind = chan.get("Type", "Raw")
        scale, offset, unit = _HALTECH_TYPES.get(kind, (1.0, 0.0, ""))
        if kind not in _HALTECH_TYPES:
            unknown.add(kind)
        names.append(chan["name"])
        units.append(unit)
        values.append(table.columns[j] * scale + offset)
    if unknown:
        notes.append(f"Haltech channel types kept unscaled: {', '.join(sorted(unknown))}")
    if table.ragged:
        notes.append(f"{table.ragged} rows had a different number of cells than the channels")
    return RawLog(
        format_name="",
        t_s=t,
        names=names,
        units=units,
        values=values,
        notes=notes,
        info="\n".join(info),
        clock=clock,
    )


# ---------------------------------------------------------------- HP Tuners


def _read_hptuners(text: str, options: Options) -> RawLog:
    lines = _head(text) if len(text) > (1 << 16) else split_lines(text)
    stripped = [ln.strip() for ln in lines]
    try:
        info_at = stripped.index("[Channel Information]")
        data_at = stripped.index("[Channel Data]")
    except ValueError:
        raise _Refused(
            "HP Tuners CSV without [Channel Information] / [Channel Data] sections"
        ) from None
    info_rows = [ln for ln in lines[info_at + 1 : data_at] if ln.strip()]
    if len(info_rows) < 3:
        raise _Refused("HP Tuners [Channel Information] needs ids, names and units rows")
    ids = split_row(info_rows[0], ",")
    names = _split_bracketed(info_rows[1], len(ids))
    units = _split_bracketed(info_rows[2], len(ids))
    units += [""] * (len(names) - len(units))
    start = _line_offsets(text, data_at + 1)[-1]
    table, _ = numeric_table(text, start, ",", len(names), text_col=None)
    t_idx = find_time_column(names)
    t_idx = 0 if t_idx is None else t_idx
    if table.columns[t_idx].size == 0:
        t, clock = np.zeros(0), ""
    else:
        t, how = seconds_from_numbers(
            table.columns[t_idx], units[t_idx] or "s", names[t_idx], options.time_unit
        )
        clock = f"{names[t_idx]!r}: {how}"
    keep = [i for i in range(len(names)) if i != t_idx]
    log_info = [ln.strip() for ln in lines[:info_at] if ln.strip()]
    notes = []
    # A column with no number at all (VCM Scanner's "Fuel System #1 Status" holds
    # words such as "CL - Normal") is text, not a channel sampled in sparse rows.
    sparse = [
        i for i in keep if table.columns[i].size and 0.5 < np.isnan(table.columns[i]).mean() < 1.0
    ]
    if sparse:
        notes.append(f"{len(sparse)} channels logged in sparse rows (blank where not sampled)")
    return RawLog(
        format_name="",
        t_s=t,
        names=[names[i] for i in keep],
        units=[units[i] for i in keep],
        values=[table.columns[i] for i in keep],
        info="\n".join(log_info),
        notes=notes,
        clock=clock,
    )


def _split_bracketed(line: str, want: int) -> list[str]:
    """Split a names row on commas, except commas inside brackets when that gives ``want``.

    VCM Scanner names analog inputs like ``MPVI2.1 -> AEM 30-(03x0,2340,5130)``
    without quotes; the ids row tells how many names there are.
    """
    plain = split_row(line, ",")
    if len(plain) == want or '"' in line:
        return plain
    cells: list[str] = []
    cur: list[str] = []
    depth = 0
    for char in line:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(char)
    cells.append("".join(cur).strip())
    return cells if len(cells) == want else plain


# ---------------------------------------------------------------- long formats


def _read_long(text: str, options: Options) -> RawLog:
    """Pivot (time, signal, value[, units]) rows to one column per signal."""
    head = _head(text)
    h = _header_row(head, options.time_name)
    if h is None:
        raise _Refused("no header row with a time column found")
    delim = sniff_delimiter(head[h])
    header = split_row(head[h], delim)
    keys = [normalise(split_name_unit(c)[0]) for c in header]
    t_idx = (
        find_time_column(header) if options.time_name is None else header.index(options.time_name)
    )
    s_idx = next(i for i, k in enumerate(keys) if k in _SIGNAL_NAMES)
    v_idx = next(i for i, k in enumerate(keys) if k in _VALUE_NAMES)
    u_idx = next((i for i, k in enumerate(keys) if k in ("unit", "units")), None)
    if t_idx is None:
        raise _Refused("no time column in the long-format header")
    start = _line_offsets(text, h + 1)[-1]
    width = max(s_idx, v_idx, t_idx, u_idx or 0) + 1
    decimal_comma = False
    sig_ids: dict[str, int] = {}
    sig_units: dict[int, str] = {}
    time_cells: list[str] = []
    sig_parts: list[np.ndarray] = []
    val_parts: list[F64] = []
    for _, lines in iter_line_chunks(text, start):
        sigs = []
        vals = []
        for line in lines:
            if not line.strip():
                continue
            if len(line) > MAX_CELL_CHARS * (width + 2):
                raise _Refused(f"a data row of {len(line)} characters; not a log")
            row = split_row(line, delim)
            if len(row) < width:
                continue
            if not decimal_comma and delim != "," and re.fullmatch(r"-?\d+,\d+", row[v_idx]):
                decimal_comma = True
            name = row[s_idx]
            if name not in sig_ids:
                sig_ids[name] = len(sig_ids)
                if u_idx is not None:
                    sig_units[sig_ids[name]] = row[u_idx]
            sigs.append(sig_ids[name])
            vals.append(to_float(row[v_idx], decimal_comma))
            time_cells.append(row[t_idx])
        sig_parts.append(np.array(sigs, dtype=np.int64))
        val_parts.append(np.array(vals, dtype=np.float64))
    if not time_cells:
        return RawLog("", np.zeros(0), [], [], [])
    t_unit = split_name_unit(header[t_idx])[1]
    t_all, clock, started = _time_axis(time_cells, None, header[t_idx], t_unit, options)
    del time_cells
    sig_of_row = np.concatenate(sig_parts)
    values = np.concatenate(val_parts)
    signals = list(sig_ids)
    times, time_of_row = np.unique(t_all, return_inverse=True)
    if times.size * len(signals) > 4 * sig_of_row.size + 1_000_000:
        raise _Refused(
            f"{sig_of_row.size} signal rows at {times.size} distinct times for {len(signals)} "
            f"signals would not fit in memory as a table"
        )
    table = np.full((times.size, len(signals)), np.nan)
    table[time_of_row, sig_of_row] = values
    names, units = [], []
    for j, sig in enumerate(signals):
        name, unit = split_name_unit(sig)
        names.append(name)
        units.append(unit or sig_units.get(j, ""))
    rows_count = int(sig_of_row.size)
    return RawLog(
        format_name="",
        t_s=times,
        names=names,
        units=units,
        values=[table[:, j] for j in range(len(signals))],
        notes=[f"{rows_count} signal rows pivoted to {times.size} time steps"],
        clock=clock,
        started_at=started,
    )
