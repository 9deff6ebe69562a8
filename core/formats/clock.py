"""The time axis of a text log: from the column's unit, else from its content.

Tools write time as seconds, milliseconds, a time of day (``14:15:46.020``), or
a full date and time (Torque's "Device Time"). When the column names its unit
(``Time (msec)``, a units row) that decides. When it does not, the spacing of
the values decides: integer steps of 5 or more are milliseconds (no engine log
samples slower than one row in 5 s), steps under 1 are seconds. Anything in
between is ambiguous, and so is a column that is not a clock at all: both are
one error naming the column and the ``--time-unit`` / ``--map time=`` options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from core.frames import F64

SECONDS_UNITS = {"s", "sec", "secs", "second", "seconds"}
MS_UNITS = {"ms", "msec", "msecs", "millisecond", "milliseconds"}
US_UNITS = {"us", "usec", "µs", "microseconds"}
MIN_UNITS = {"min", "minutes"}

_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2}(?:[.,]\d*)?)\s*([AaPp][Mm])?\s*$")
_DATE_FORMATS = (
    "%d-%b-%Y %H:%M:%S.%f",
    "%d-%b-%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S.%f",
    "%d/%m/%Y %H:%M:%S",
    "%a %b %d %H:%M:%S %Y",
)


class ClockError(ValueError):
    """The time column cannot be read; the message says which and what to do."""


def unit_scale(unit: str) -> float | None:
    """Seconds per unit of a time column's unit string, or None when it names none."""
    key = unit.strip().lower()
    if key in SECONDS_UNITS:
        return 1.0
    if key in MS_UNITS:
        return 1e-3
    if key in US_UNITS:
        return 1e-6
    if key in MIN_UNITS:
        return 60.0
    return None


def is_clock(cell: str) -> bool:
    return _CLOCK.match(cell) is not None


def clock_seconds(cells: Sequence[str]) -> F64:
    """Seconds of day from ``HH:MM:SS[.fff] [AM|PM]`` cells, unwrapped across midnight."""
    out = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
        m = _CLOCK.match(cell)
        if m is None:
            continue
        h, mi, s, ampm = m.groups()
        hour = int(h) % 12 + (12 if ampm and ampm.lower() == "pm" else 0) if ampm else int(h)
        out[i] = hour * 3600.0 + int(mi) * 60.0 + float(s.replace(",", "."))
    return unwrap_midnight(out)


def unwrap_midnight(secs: F64) -> F64:
    """Time of day that runs past midnight: a step back of over 12 h adds a day."""
    finite = np.where(np.isfinite(secs), secs, np.nan)
    filled = _ffill(finite)
    steps = np.diff(filled, prepend=filled[:1])
    return secs + 86400.0 * np.cumsum(np.nan_to_num(steps) < -43200.0)


def _ffill(a: F64) -> F64:
    ok = np.isfinite(a)
    if ok.all() or not ok.any():
        return np.nan_to_num(a)
    idx = np.where(ok, np.arange(a.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = a[idx]
    return np.where(np.isfinite(out), out, a[np.argmax(ok)])


def _date_format(cell: str) -> str | None:
    for fmt in _DATE_FORMATS:
        try:
            datetime.strptime(cell, fmt)
        except ValueError:
            continue
        return fmt
    return None


def is_datetime(cell: str) -> bool:
    return _date_format(cell.strip()) is not None


def datetime_seconds(cells: Sequence[str]) -> F64:
    """Unix seconds (as if UTC) of date-time cells in the first recognised format."""
    first = next((c.strip() for c in cells if _date_format(c.strip())), "")
    fmt = _date_format(first)
    out = np.full(len(cells), np.nan)
    if fmt is None:
        return out
    epoch = datetime(1970, 1, 1)
    for i, cell in enumerate(cells):
        try:
            out[i] = (datetime.strptime(cell.strip(), fmt) - epoch).total_seconds()
        except ValueError:
            continue
    return out


def seconds_from_numbers(
    values: F64, unit: str, column: str, forced_unit: str | None
) -> tuple[F64, str]:
    """Seconds from a numeric time column, by its unit or by the spacing of its values.

    Returns the seconds and how they were read, in words.

    Raises:
        ClockError: no finite times, or a unitless column whose spacing fits both s and ms.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ClockError(f"time column {column!r} holds no numbers{_HINT}")
    if forced_unit:
        scale = unit_scale(forced_unit)
        if scale is None:
            raise ClockError(f"--time-unit {forced_unit!r}: expected ms or s")
        return values * scale, f"{forced_unit} (--time-unit)"
    scale = unit_scale(unit)
    if scale is not None:
        return values * scale, unit + (f" -> s x {scale:g}" if scale != 1.0 else "")
    if unit.strip():
        raise ClockError(
            f"time column {column!r} has unit {unit!r}, which is not s or ms; "
            f"say which with --time-unit ms|s"
        )
    if finite.size == 1:
        return values.copy(), "no unit, one row: taken as s"
    steps = np.diff(finite)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise ClockError(f"time column {column!r} never advances{_HINT}")
    step = float(np.median(steps))
    integers = bool(np.all(finite == np.round(finite)))
    span = float(finite.max() - finite.min())
    if step < 1.0:
        return values.copy(), f"no unit; steps of {step:g} read as s"
    if (step >= 5.0 and integers) or span > 7 * 86400.0:
        return values * 1e-3, f"no unit; integer steps of {step:g} read as ms -> s x 0.001"
    raise ClockError(
        f"time column {column!r} has no unit and steps of {step:g}, which could be "
        f"seconds or milliseconds{_HINT}"
    )


_HINT = "; name the clock with --map time=COLUMN --time-unit ms|s"
