"""Pieces every text-log reader shares: options, the header search, the time axis.

Split out of ``csvlogs`` so the wide-table reader, the vendor readers (Haltech,
HP Tuners, long format) and the flavour detection each live in their own module
while agreeing on one header rule and one time rule: a header row is the first
line naming a time column (or the column ``--map time=`` names), and every
flavour's clock goes through :func:`time_axis`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core.formats.clock import (
    ClockError,
    clock_seconds,
    datetime_seconds,
    is_clock,
    is_datetime,
    seconds_from_numbers,
)
from core.formats.names import split_name_unit
from core.formats.table import (
    NULL_CELLS,
    find_time_column,
    is_number,
    sniff_delimiter,
    split_lines,
    split_row,
    to_float,
)
from core.frames import F64

SIGNAL_NAMES = ("signal", "channel", "name", "parameter", "channel name", "signal name", "pid")
VALUE_NAMES = ("value", "data", "reading")
MARK = re.compile(r'^\s*"?MARK\b')
HEAD_LINES = 200


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


def header_row(lines: list[str], time_name: str | None) -> int | None:
    """Index of the first line that names a time column (or the mapped time column)."""
    for i, line in enumerate(lines[:HEAD_LINES]):
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


class Refused(ValueError):
    """A file that looked like a text log but cannot be read as one; the reason is the message."""


def line_offsets(text: str, count: int) -> list[int]:
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


def head_lines(text: str) -> list[str]:
    end = 0
    for _ in range(HEAD_LINES):
        nxt = text.find("\n", end)
        if nxt < 0:
            end = len(text)
            break
        end = nxt + 1
    return split_lines(text[:end])


def time_axis(
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
