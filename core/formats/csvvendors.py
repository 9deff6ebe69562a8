"""Text logs with a tool-specific layout: Haltech NSP, HP Tuners VCM Scanner, long format.

Split out of ``csvlogs``: these three are not one header row over a table, so
each needs its own reader. Haltech's values are raw integers scaled by each
channel's Type; VCM Scanner puts ids, names and units in a ``[Channel
Information]`` section; Power Vision and Car Scanner write one row per (time,
signal, value), pivoted here to one column per signal.
"""

from __future__ import annotations

import re

import numpy as np

from core.formats.clock import seconds_from_numbers
from core.formats.csvtext import (
    SIGNAL_NAMES,
    VALUE_NAMES,
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
    MAX_CELL_CHARS,
    NULL_CELLS,
    find_time_column,
    is_nan_word,
    iter_line_chunks,
    numeric_table,
    sniff_delimiter,
    split_lines,
    split_row,
    to_float,
)
from core.frames import F64

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


def read_haltech(text: str, options: Options) -> RawLog:
    head_end = re.search(r"^\s*\d{1,2}:\d{2}:\d{2}", text, re.MULTILINE)
    if head_end is None:
        raise Refused("Haltech NSP log with channel blocks but no data rows")
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
        raise Refused("Haltech NSP log without Channel blocks")
    width = len(channels) + 1
    table, _ = numeric_table(text, head_end.start(), ",", width, text_col=0)
    t, clock, _ = time_axis(table.text_column, None, "time of day", "", options)
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
        not_numbers={names[j - 1]: got for j in range(1, width) if (got := table.not_numbers(j))},
    )


# ---------------------------------------------------------------- HP Tuners


def read_hptuners(text: str, options: Options) -> RawLog:
    lines = head_lines(text) if len(text) > (1 << 16) else split_lines(text)
    stripped = [ln.strip() for ln in lines]
    try:
        info_at = stripped.index("[Channel Information]")
        data_at = stripped.index("[Channel Data]")
    except ValueError:
        raise Refused(
            "HP Tuners CSV without [Channel Information] / [Channel Data] sections"
        ) from None
    info_rows = [ln for ln in lines[info_at + 1 : data_at] if ln.strip()]
    if len(info_rows) < 3:
        raise Refused("HP Tuners [Channel Information] needs ids, names and units rows")
    ids = split_row(info_rows[0], ",")
    names = _split_bracketed(info_rows[1], len(ids))
    units = _split_bracketed(info_rows[2], len(ids))
    units += [""] * (len(names) - len(units))
    start = line_offsets(text, data_at + 1)[-1]
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
        not_numbers={names[i]: got for i in keep if (got := table.not_numbers(i))},
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


def read_long(text: str, options: Options) -> RawLog:
    """Pivot (time, signal, value[, units]) rows to one column per signal."""
    head = head_lines(text)
    h = header_row(head, options.time_name)
    if h is None:
        raise Refused("no header row with a time column found")
    delim = sniff_delimiter(head[h])
    header = split_row(head[h], delim)
    keys = [normalise(split_name_unit(c)[0]) for c in header]
    t_idx = (
        find_time_column(header) if options.time_name is None else header.index(options.time_name)
    )
    s_idx = next(i for i, k in enumerate(keys) if k in SIGNAL_NAMES)
    v_idx = next(i for i, k in enumerate(keys) if k in VALUE_NAMES)
    u_idx = next((i for i, k in enumerate(keys) if k in ("unit", "units")), None)
    if t_idx is None:
        raise Refused("no time column in the long-format header")
    start = line_offsets(text, h + 1)[-1]
    width = max(s_idx, v_idx, t_idx, u_idx or 0) + 1
    decimal_comma = False
    sig_ids: dict[str, int] = {}
    sig_units: dict[int, str] = {}
    time_cells: list[str] = []
    sig_parts: list[np.ndarray] = []
    val_parts: list[F64] = []
    unread: dict[int, tuple[int, str]] = {}
    for _, lines in iter_line_chunks(text, start):
        sigs = []
        vals = []
        for line in lines:
            if not line.strip():
                continue
            if len(line) > MAX_CELL_CHARS * (width + 2):
                raise Refused(f"a data row of {len(line)} characters; not a log")
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
            value = to_float(row[v_idx], decimal_comma)
            vals.append(value)
            time_cells.append(row[t_idx])
            cell = row[v_idx]
            if value != value and cell not in NULL_CELLS and not is_nan_word(cell):
                count, first = unread.get(sig_ids[name], (0, cell))
                unread[sig_ids[name]] = (count + 1, first)
        sig_parts.append(np.array(sigs, dtype=np.int64))
        val_parts.append(np.array(vals, dtype=np.float64))
    if not time_cells:
        return RawLog("", np.zeros(0), [], [], [])
    t_unit = split_name_unit(header[t_idx])[1]
    t_all, clock, started = time_axis(time_cells, None, header[t_idx], t_unit, options)
    del time_cells
    sig_of_row = np.concatenate(sig_parts)
    values = np.concatenate(val_parts)
    signals = list(sig_ids)
    times, time_of_row = np.unique(t_all, return_inverse=True)
    if times.size * len(signals) > 4 * sig_of_row.size + 1_000_000:
        raise Refused(
            f"{sig_of_row.size} signal rows at {times.size} distinct times for {len(signals)} "
            f"signals would not fit in memory as a table"
        )
    table = np.full((times.size, len(signals)), np.nan)
    table[time_of_row, sig_of_row] = values
    names, units = [], []
    for j, sig in enumerate(signals):
        # With a units column the signal's brackets are part of its name: Car Scanner's
        # "Пройденный путь (общий)" (distance, total) is not "distance" in "общий".
        name, unit = (sig, sig_units[j]) if sig_units.get(j) else split_name_unit(sig)
        names.append(name)
        units.append(unit)
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
        # a signal of words alone (a status text) is text, as in a wide table
        not_numbers={names[j]: got for j, got in unread.items() if np.isfinite(table[:, j]).any()},
    )
