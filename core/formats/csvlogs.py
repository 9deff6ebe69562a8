"""CSV logs from common tuning tools, the flavour recognised from the content.

Flavours and how each is recognised (first lines of the file):

* **HP Tuners VCM Scanner** export: a ``HP Tuners CSV Log File`` banner and
  ``[Channel Information]`` (ids, names, units rows) / ``[Channel Data]``
  sections; the first column is ``Offset`` in seconds.
* **Dynojet WinPEP** export: banner lines naming WinPEP, then a comma-separated
  table with ``Name (unit)`` headers (``Time (sec)``, ``Power (HP)``, ``Torque (lb-ft)``).
* **Power Vision** long format: three or four columns (time, signal, value
  [, units]); one row per signal sample, pivoted here to one column per signal.
* **TunerStudio / MegaLogViewer** CSV: optional quoted info lines, a names row
  and a units row (``;`` or ``,`` separated), ``Time`` in seconds, ``MARK`` rows.
* **RomRaider** logger: ``Time (msec)`` (or wall-clock ``Time``) then
  ``Name (unit)`` headers; the header is written again when the logged set
  changes, so a repeated header starts a new segment with its own columns.
* **Generic** CSV: a header row with a time column; units from brackets. An
  explicit ``--map`` names the channels (and ``time=`` the time column).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from core.formats.mapping import normalise, split_name_unit
from core.formats.model import LogImportError, RawLog
from core.formats.table import (
    find_time_column,
    is_number,
    numeric_columns,
    sniff_delimiter,
    split_row,
    time_seconds,
    unwrap_midnight,
)
from core.frames import F64

FLAVOURS = {
    "hptuners": "HP Tuners VCM Scanner CSV",
    "winpep": "Dynojet WinPEP export",
    "powervision": "Power Vision long CSV",
    "tunerstudio": "TunerStudio / MegaLogViewer CSV",
    "romraider": "RomRaider logger CSV",
    "csv": "CSV",
}
_SIGNAL_NAMES = ("signal", "channel", "name", "parameter", "channel name", "signal name")
_VALUE_NAMES = ("value", "data", "reading")


def _header_row(lines: list[str], time_name: str | None) -> int | None:
    """Index of the first line that names a time column (or the mapped time column)."""
    for i, line in enumerate(lines[:60]):
        if (
            not line.strip()
            or line.lstrip().startswith('"')
            and "," not in line
            and ";" not in line
        ):
            continue
        cells = split_row(line, sniff_delimiter(line))
        if len(cells) < 2:
            continue
        names = [split_name_unit(c)[0] for c in cells]
        if find_time_column(cells) is not None or (time_name is not None and time_name in names):
            return i
    return None


def detect_csv(lines: list[str], time_name: str | None = None) -> str | None:
    """The CSV flavour key for a file's first lines, or None when it is not a log we read."""
    head = [ln.strip() for ln in lines[:60]]
    if (head and "hp tuners" in head[0].lower()) or "[Channel Information]" in head:
        return "hptuners"
    h = _header_row(lines, time_name)
    if h is None:
        return None
    if any("winpep" in ln.lower() for ln in head[:h]):
        return "winpep"
    delim = sniff_delimiter(lines[h])
    cells = [normalise(split_name_unit(c)[0]) for c in split_row(lines[h], delim)]
    long_form = any(c in _SIGNAL_NAMES for c in cells) and any(c in _VALUE_NAMES for c in cells)
    if len(cells) in (3, 4) and long_form:
        return "powervision"
    following = next((ln for ln in lines[h + 1 :] if ln.strip()), "")
    second = split_row(following, delim)
    if second and sum(not is_number(c) for c in second) > len(second) // 2:
        return "tunerstudio"
    first = split_row(lines[h], delim)[0].strip()
    if first in ("Time (msec)", "Time") and delim in ",;":
        return "romraider"
    return "csv"


def read_csv_log(
    path: Path,
    text: str,
    flavour: str,
    channel_map: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RawLog:
    """Parse one CSV flavour into a RawLog."""
    lines = text.splitlines()
    time_name = (channel_map or {}).get("time")
    if flavour == "hptuners":
        raw = _read_hptuners(path, lines)
    else:
        h = _header_row(lines, time_name)
        if h is None:
            raise LogImportError(f"{path}: no header row with a time column found")
        if flavour == "powervision":
            raw = _read_long(path, lines, h)
        else:
            units_row = h + 1 if flavour == "tunerstudio" else None
            raw = _read_wide(path, lines, h, units_row, time_name)
        raw.info = "\n".join(ln.strip().strip('"') for ln in lines[:h] if ln.strip())
    raw.format_name = FLAVOURS[flavour]
    if progress is not None:
        progress(len(lines), len(lines))
    return raw


def _read_wide(
    path: Path, lines: list[str], h: int, units_row: int | None, time_name: str | None
) -> RawLog:
    delim = sniff_delimiter(lines[h])
    header = split_row(lines[h], delim)
    units_cells = split_row(lines[units_row], delim) if units_row is not None else []
    start = (units_row if units_row is not None else h) + 1
    segments: list[tuple[list[str], list[list[str]]]] = [(header, [])]
    marks: list[tuple[int, int, str]] = []
    for line in lines[start:]:
        if not line.strip():
            continue
        cells = split_row(line, delim)
        if cells[0].startswith("MARK"):
            marks.append((len(segments) - 1, len(segments[-1][1]) - 1, line.strip().strip('"')))
        elif cells[0] == header[0] and not is_number(cells[0]) and len(cells) > 1:
            segments.append((cells, []))
        else:
            segments[-1][1].append(cells)
    sample = next((r for _, rows in segments for r in rows), [])
    decimal_comma = delim != "," and any("," in c and "." not in c for c in sample)

    order: list[str] = []
    units: dict[str, str] = {}
    for names, _ in segments:
        for j, cell in enumerate(names):
            name, unit = split_name_unit(cell)
            if units_cells and j < len(units_cells) and units_cells[j]:
                name, unit = cell, units_cells[j]
            if name not in units:
                order.append(name)
                units[name] = unit
    times: list[F64] = []
    merged: dict[str, list[F64]] = {n: [] for n in order}
    seg_offsets = []
    total = 0
    time_cols: list[str] = []
    for names, rows in segments:
        clean = [split_name_unit(c)[0] if not units_cells else c for c in names]
        t_idx = clean.index(time_name) if time_name in clean else find_time_column(clean)
        if t_idx is None:
            raise LogImportError(f"{path}: no time column (name it with --map time=<column>)")
        time_cols.append(clean[t_idx])
        cols = numeric_columns(rows, len(clean), decimal_comma)
        cells = [r[t_idx] if t_idx < len(r) else "" for r in rows]
        times.append(time_seconds(cells, units[clean[t_idx]], decimal_comma))
        for name in order:
            col = cols[clean.index(name)] if name in clean else np.full(len(rows), np.nan)
            merged[name].append(col)
        seg_offsets.append(total)
        total += len(rows)
    if total == 0:
        raise LogImportError(f"{path}: the log has no data rows")
    t = unwrap_midnight(np.concatenate(times))
    keep = [n for n in order if n not in time_cols]
    notes = (
        [f"header repeated {len(segments) - 1} times; columns merged"] if len(segments) > 1 else []
    )
    markers = [(float(t[max(seg_offsets[s] + i, 0)]), text) for s, i, text in marks]
    return RawLog(
        format_name="",
        t_s=t,
        names=keep,
        units=[units[n] for n in keep],
        values=[np.concatenate(merged[n]) for n in keep],
        markers=markers,
        notes=notes,
    )


def _read_long(path: Path, lines: list[str], h: int) -> RawLog:
    """Pivot (time, signal, value[, units]) rows to one column per signal."""
    delim = sniff_delimiter(lines[h])
    header = split_row(lines[h], delim)
    keys = [normalise(split_name_unit(c)[0]) for c in header]
    t_idx = find_time_column(header)
    s_idx = next(i for i, k in enumerate(keys) if k in _SIGNAL_NAMES)
    v_idx = next(i for i, k in enumerate(keys) if k in _VALUE_NAMES)
    u_idx = next((i for i, k in enumerate(keys) if k in ("unit", "units")), None)
    rows = [split_row(ln, delim) for ln in lines[h + 1 :] if ln.strip()]
    rows = [r for r in rows if len(r) > max(s_idx, v_idx)]
    if not rows or t_idx is None:
        raise LogImportError(f"{path}: the log has no data rows")
    t_unit = split_name_unit(header[t_idx])[1]
    t_all = time_seconds([r[t_idx] for r in rows], t_unit)
    values = numeric_columns([[r[v_idx]] for r in rows], 1)[0]
    signal_cells = [r[s_idx] for r in rows]
    signals, sig_of_row = np.unique(np.array(signal_cells, dtype=str), return_inverse=True)
    times, time_of_row = np.unique(t_all, return_inverse=True)
    table = np.full((times.size, signals.size), np.nan)
    table[time_of_row, sig_of_row] = values
    names, units = [], []
    for j, sig in enumerate(signals.tolist()):
        name, unit = split_name_unit(sig)
        if u_idx is not None and not unit:
            first_row = int(np.argmax(sig_of_row == j))
            unit = rows[first_row][u_idx] if u_idx < len(rows[first_row]) else ""
        names.append(name)
        units.append(unit)
    first_seen = [int(np.argmax(sig_of_row == j)) for j in range(signals.size)]
    order = sorted(range(signals.size), key=lambda j: first_seen[j])
    return RawLog(
        format_name="",
        t_s=times,
        names=[names[j] for j in order],
        units=[units[j] for j in order],
        values=[table[:, j] for j in order],
        notes=[f"{len(rows)} signal rows pivoted to {times.size} time steps"],
    )


def _read_hptuners(path: Path, lines: list[str]) -> RawLog:
    stripped = [ln.strip() for ln in lines]
    try:
        info_at = stripped.index("[Channel Information]")
        data_at = stripped.index("[Channel Data]")
    except ValueError:
        raise LogImportError(
            f"{path}: HP Tuners CSV without [Channel Information] / [Channel Data] sections"
        ) from None
    info_rows = [ln for ln in lines[info_at + 1 : data_at] if ln.strip()]
    if len(info_rows) < 3:
        raise LogImportError(f"{path}: HP Tuners [Channel Information] needs ids, names, units")
    names = split_row(info_rows[1], ",")
    units = split_row(info_rows[2], ",")
    units += [""] * (len(names) - len(units))
    rows = [split_row(ln, ",") for ln in lines[data_at + 1 :] if ln.strip()]
    if not rows:
        raise LogImportError(f"{path}: the log has no data rows")
    t_idx = find_time_column(names)
    t_idx = 0 if t_idx is None else t_idx
    cols = numeric_columns(rows, len(names))
    t = time_seconds([r[t_idx] for r in rows], units[t_idx])
    keep = [i for i in range(len(names)) if i != t_idx]
    log_info = [ln.strip() for ln in lines[:info_at] if ln.strip()]
    return RawLog(
        format_name="",
        t_s=t,
        names=[names[i] for i in keep],
        units=[units[i] for i in keep],
        values=[cols[i] for i in keep],
        info="\n".join(log_info),
    )
