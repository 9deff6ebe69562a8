"""What every importer produces: the imported log, its summary, its one error type.

Each format parser (MLG, MSL, CSV flavours) only turns bytes into a ``RawLog``:
original column names, units and display values on one time axis, plus markers.
Everything after that is shared here, so the formats cannot drift apart: the
name/unit mapping onto canonical channels, the rpm requirement, the gap and
rate statistics, the .dynolog header, and the time-ordered stream of blocks and
marker events that replay and the ``import`` command consume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core import channels as ch
from core.formats.mapping import MappedChannel, map_columns
from core.frames import F64, Block
from core.record import LogHeader
from core.source import SourceEvent

SOURCE_NAME = "import"
"""Source name of every imported block and event."""

MAX_DURATION_S = 7 * 86400.0
"""A log longer than this is a misread clock (or not a log), not a session."""

GAP_FACTOR = 3.0
"""An interval longer than this many median intervals counts as a gap."""


class LogImportError(ValueError):
    """A log that cannot be imported. The message is one line naming the file and the problem."""


@dataclass(slots=True)
class RawLog:
    """A parsed log before mapping: original names, units and display values."""

    format_name: str
    t_s: F64
    """Seconds from the first sample, non-decreasing."""
    names: list[str]
    units: list[str]
    values: list[F64]
    markers: list[tuple[float, str]] = field(default_factory=list)
    checksum_errors: int = 0
    notes: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    """What the reader skipped or could not read (bad checksums, garbage, a cut-off
    tail): said by every command that reads the log, not only by ``import``."""
    started_at: float | None = None
    """Wall-clock start (Unix seconds) when the log records it."""
    info: str = ""
    clock: str = ""
    """Where the time axis came from, in words ("'Time (msec)': ms -> s")."""
    not_numbers: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Column -> (how many cells, the first) that held neither a number nor a "no value"
    mark ("ERR", "#VALUE!"): read as no value (``table.Table.not_numbers``)."""


@dataclass(slots=True)
class ImportSummary:
    """What an import found, for people (``to_text``) and for the .dynolog metadata."""

    format_name: str
    file: str
    rows: int
    duration_s: float
    sample_rate_hz: float
    mapped: list[MappedChannel]
    unmapped: list[str]
    gap_count: int
    longest_gap_s: float
    markers: list[str]
    checksum_errors: int
    notes: list[str]
    clock: str = ""
    lacks: list[str] = field(default_factory=list)
    """What the coverage grid and its filters will not have from this log."""
    damage: list[str] = field(default_factory=list)
    """The notes (also in ``notes``) that say the file was damaged: data was skipped."""

    def to_text(self) -> str:
        lines = [
            f"{self.file}: {self.format_name}",
            f"  rows {self.rows}, {self.duration_s:.1f} s, {self.sample_rate_hz:.1f} Hz (median)",
            *([f"  time: {self.clock}"] if self.clock else []),
            f"  gaps (> {GAP_FACTOR:g}x median interval): {self.gap_count}"
            + (f", longest {self.longest_gap_s:.2f} s" if self.gap_count else ""),
            f"  markers: {len(self.markers)}   checksum errors (records skipped): "
            f"{self.checksum_errors}",
            f"  channels mapped ({len(self.mapped)}):",
        ]
        width = max((len(m.original) for m in self.mapped), default=0)
        for m in self.mapped:
            conv = f"   ({m.conversion})" if m.conversion else ""
            lines.append(f"    {m.original:<{width}} -> {m.canonical}{conv}")
        lines.append(f"  unmapped ({len(self.unmapped)}): " + (", ".join(self.unmapped) or "-"))
        lines.extend(f"  grid will lack: {n}" for n in self.lacks)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def as_metadata(self) -> dict[str, object]:
        return {
            "format": self.format_name,
            "original_file": self.file,
            "rows": self.rows,
            "conversions": [
                {"original": m.original, "channel": m.canonical, "conversion": m.conversion}
                for m in self.mapped
            ],
            "unmapped": list(self.unmapped),
            "clock": self.clock,
            "lacks": list(self.lacks),
            "checksum_errors": self.checksum_errors,
            "notes": list(self.notes),
        }


class ImportedLog:
    """A foreign log on the canonical vocabulary, ready to replay or record.

    Attributes:
        header: The .dynolog header describing this import.
        summary: What was found and converted.
        t_s: Sample times, seconds from log start.
        columns: Canonical channel -> values in canonical units.
        markers: Marker events from the log, in time order.
    """

    def __init__(
        self,
        header: LogHeader,
        summary: ImportSummary,
        t_s: F64,
        columns: dict[str, F64],
        markers: list[SourceEvent],
    ) -> None:
        self.header = header
        self.summary = summary
        self.t_s = t_s
        self.columns = columns
        self.markers = markers

    def records(self, block_s: float = 0.25) -> Iterator[Block | SourceEvent]:
        """Blocks of at most ``block_s`` of log time, with markers in time order.

        A marker comes after every sample at or before its time and before any later one.
        """
        t = self.t_s
        if t.size == 0:
            yield from self.markers
            return
        window = np.floor((t - t[0]) / block_s).astype(np.int64)
        cuts = set((np.flatnonzero(np.diff(window)) + 1).tolist())
        marker_at = np.searchsorted(t, [m.t for m in self.markers], side="right")
        cuts.update(int(k) for k in marker_at if 0 < k < t.size)
        bounds = [0, *sorted(cuts), int(t.size)]
        pending = 0
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            while pending < len(self.markers) and marker_at[pending] <= a:
                yield self.markers[pending]
                pending += 1
            yield Block(SOURCE_NAME, t[a:b], {k: v[a:b] for k, v in self.columns.items()})
        yield from self.markers[pending:]

    @property
    def blocks(self) -> list[Block]:
        """All sample blocks (markers left out), for callers that want a list."""
        return [r for r in self.records() if isinstance(r, Block)]


def _ordered(raw: RawLog, notes: list[str]) -> tuple[F64, list[F64], list[tuple[float, str]]]:
    """Drop rows without a time, sort rows written out of order, start time at zero."""
    t = np.asarray(raw.t_s, dtype=np.float64)
    values = [np.asarray(v, dtype=np.float64) for v in raw.values]
    bad = ~np.isfinite(t)
    if bad.any():
        notes.append(f"{int(bad.sum())} rows without a valid time were dropped")
        keep = ~bad
        t = t[keep]
        values = [v[keep] for v in values]
    spikes = _time_spikes(t)
    if spikes.any():
        jump = float(np.max(t[spikes] - t[np.flatnonzero(spikes) - 1]))
        notes.append(
            f"{int(spikes.sum())} rows with a corrupt time (a lone jump of up to {jump:.1f} s "
            f"that the next row undoes) were dropped"
        )
        t = t[~spikes]
        values = [v[~spikes] for v in values]
    if t.size > 1 and bool(np.any(np.diff(t) < 0)):
        order = np.argsort(t, kind="stable")
        notes.append(f"{int(np.sum(np.diff(t) < 0))} time steps went backwards; rows sorted")
        t = t[order]
        values = [v[order] for v in values]
    t0 = float(t[0]) if t.size else 0.0
    markers = sorted(((tm - t0, text) for tm, text in raw.markers), key=lambda m: m[0])
    return t - t0, values, markers


def _time_spikes(t: F64) -> npt.NDArray[np.bool_]:
    """Rows whose time jumps far ahead and the next row comes back: a corrupt stamp.

    One bad timestamp (a logger's glitch) would otherwise sort to the end and turn a
    35-minute log into hours. Interior rows only, and only jumps over 100 median steps.
    """
    out = np.zeros(t.size, dtype=bool)
    if t.size < 3:
        return out
    d = np.diff(t)
    step = float(np.median(d[d > 0])) if np.any(d > 0) else 0.0
    if step <= 0:
        return out
    prev, mid, nxt = t[:-2], t[1:-1], t[2:]
    out[1:-1] = (mid - prev > 100 * step) & (nxt < mid) & (nxt >= prev)
    return out


def not_numbers_note(not_numbers: Mapping[str, tuple[int, str]], used: set[str]) -> str:
    """The summary's one line on cells that were not numbers, in the channels used ('' if none).

    Such a cell ("ERR", "#VALUE!", "6 2") is read as no value and then held like a
    blank in a sparse row: the summary said only "held between their samples", as if
    the tool had logged nothing there. Columns left unmapped are not counted: their
    values are not used.
    """
    found = {name: got for name, got in not_numbers.items() if name in used and got[0]}
    if not found:
        return ""
    total = sum(count for count, _ in found.values())
    ranked = sorted(found.items(), key=lambda kv: -kv[1][0])
    per = ", ".join(f"{_short(name)}: {count}" for name, (count, _) in ranked[:4])
    more = ", ..." if len(ranked) > 4 else ""
    name, (_, first) = ranked[0]
    return (
        f"{total} {'value is not a number' if total == 1 else 'values are not numbers'}, read as no value "
        f"({per}{more}; e.g. {_short(first)!r} in {_short(name)})"
    )


def hold_sparse(t: F64, columns: dict[str, F64]) -> list[str]:
    """Hold each sparsely logged channel between its samples, as the fuser holds a live one.

    HP Tuners, EMU Pro and Car Scanner write a row whenever any channel ticks and
    leave the others blank; a blank there means "not sampled in this row", not "no
    value". Each such channel keeps its last value for at most its staleness limit
    (``core.channels``), exactly the zero-order hold live sources get, so rpm and MAP
    logged on different rows still meet in one row. Returns the channels held.
    """
    held = []
    for name, col in columns.items():
        finite = np.isfinite(col)
        if finite.all() or not finite.any():
            continue
        idx = np.where(finite, np.arange(col.size), -1)
        np.maximum.accumulate(idx, out=idx)
        ok = idx >= 0
        src = np.clip(idx, 0, None)
        fresh = ok & (t - t[src] <= ch.CHANNELS[name].stale_s) if name in ch.CHANNELS else ok
        filled = np.where(fresh, col[src], np.nan)
        if np.count_nonzero(np.isfinite(filled)) > np.count_nonzero(finite):
            columns[name] = filled
            held.append(name)
    return held


def _short(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= 40 else name[:37] + "..."


def grid_lacks(columns: Mapping[str, F64]) -> list[str]:
    """What the coverage grid and its filters will miss, in the tuner's words.

    A column that is mapped but never holds a value (Torque writes '-' in every
    row for a PID the car did not answer) is missing all the same, and said so.
    """

    def has(name: str) -> bool:
        v = columns.get(name)
        return v is not None and bool(np.isfinite(v).any())

    def empty(name: str) -> str:
        return " (its column never holds a value)" if name in columns else ""

    out = []
    if not has("map_kpa"):
        extra = [n for n in ("maf_gs", "load_pct") if has(n)]
        instead = (
            f" ({' and '.join(extra)} logged instead, kept but not a grid axis)" if extra else ""
        )
        out.append(f"no MAP{empty('map_kpa')}: the grid has no MAP axis data{instead}")
    if not has("tps_pct"):
        out.append(f"no throttle{empty('tps_pct')}: accel-enrichment filter off")
    if not has("lambda"):
        out.append(f"no wideband lambda/AFR{empty('lambda')}: nothing to correct fuel against")
    rpm = columns.get("rpm")
    if rpm is not None:
        finite = rpm[np.isfinite(rpm)]
        if finite.size == 0 or float(finite.max()) < 400.0:
            out.append("engine never ran (rpm never above 400): 0 samples binned")
    return out


def build_imported(
    raw: RawLog,
    path: Path,
    channel_map: Mapping[str, str] | None = None,
    stoich: float = ch.STOICH_GASOLINE,
) -> ImportedLog:
    """Map a parsed log onto canonical channels and describe it.

    Raises:
        LogImportError: an explicit mapping names something missing, or no rpm column.
    """
    notes = [*raw.damage, *raw.notes]
    if np.asarray(raw.t_s).size == 0:
        raise LogImportError(f"{path}: the log has a header but no data rows")
    t, values, markers = _ordered(raw, notes)
    if t.size == 0:
        raise LogImportError(f"{path}: no row has a valid time ({raw.clock or 'time column'})")
    if float(t[-1]) > MAX_DURATION_S:
        raise LogImportError(
            f"{path}: the time column spans {float(t[-1]) / 86400:.3g} days "
            f"({raw.clock or 'time column'}), not one logging session; if its unit is "
            f"wrong, say it with --time-unit ms|s"
        )
    not_numbers = dict(raw.not_numbers)
    for name, v in zip(raw.names, values, strict=True):  # "inf" or 1e999 is no logged value
        bad = np.isinf(v)
        if bad.any():
            v[bad] = np.nan
            count, first = not_numbers.get(name, (0, "inf"))
            not_numbers[name] = (count + int(bad.sum()), first)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            result = map_columns(raw.names, raw.units, values, channel_map, stoich)
    except ValueError as exc:
        raise LogImportError(f"{path}: {exc}") from None
    notes.extend(result.notes)
    unread = not_numbers_note(not_numbers, {m.original for m in result.mapped})
    if unread:
        notes.append(unread)
    held = hold_sparse(t, result.columns)
    if held:
        notes.append(
            f"sparse rows: {', '.join(held)} held between their samples "
            f"(up to each channel's staleness limit)"
        )
    if "rpm" not in result.columns:
        shown = ", ".join(_short(n) for n in raw.names[:12]) + (
            " ..." if len(raw.names) > 12 else ""
        )
        raise LogImportError(
            f"{path}: no engine speed (rpm) column in this {raw.format_name or 'log'}, so "
            f"it cannot fill the grid (columns: {shown or 'none'}); "
            f'if one of them is rpm, name it with --map rpm="<column>"'
        )
    for m in result.mapped:
        if m.conversion.startswith("unit "):  # "no unit" is already on the mapping line
            notes.append(f"{m.original}: {m.conversion}")

    dt = np.diff(t)
    positive = dt[dt > 0]
    median_dt = float(np.median(positive)) if positive.size else 0.0
    gaps = dt[dt > GAP_FACTOR * median_dt] if median_dt > 0 else dt[:0]
    duration_s = float(t[-1] - t[0])
    summary = ImportSummary(
        format_name=raw.format_name,
        file=str(path),
        rows=int(t.size),
        duration_s=duration_s,
        sample_rate_hz=1.0 / median_dt if median_dt > 0 else 0.0,
        mapped=result.mapped,
        unmapped=result.unmapped,
        gap_count=int(gaps.size),
        longest_gap_s=float(gaps.max()) if gaps.size else 0.0,
        markers=[text for _, text in markers],
        checksum_errors=raw.checksum_errors,
        notes=notes,
        clock=raw.clock,
        lacks=grid_lacks(result.columns),
        damage=list(raw.damage),
    )
    created_at = raw.started_at
    if created_at is None or not math.isfinite(created_at) or created_at <= 0:
        created_at = os.path.getmtime(path) - duration_s
    units = {name: ch.CHANNELS[name].unit for name in result.columns}
    metadata: dict[str, object] = {"importer": "core.formats", **summary.as_metadata()}
    if raw.info:
        metadata["info"] = raw.info
    header = LogHeader(
        created_at=float(created_at),
        t0=0.0,
        sources={SOURCE_NAME: {"uri": f"import:{path}", "channels": units}},
        metadata=metadata,
    )
    events = [SourceEvent(SOURCE_NAME, "marker", tm, text) for tm, text in markers]
    return ImportedLog(header, summary, t, result.columns, events)
