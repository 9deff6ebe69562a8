r"""The headless status: one refreshed line that fits the terminal, or parseable lines.

Over SSH the tuner's terminal is often 80 columns. A status line longer than the
terminal wraps, ``\r\x1b[K`` then only clears the last row, and the lines stack
with the important tail cut off. So on a terminal the line is fitted to the
width, keeping fields in the order a tuner needs them: elapsed, rpm, MAP,
AFR/target, an alarm (what must be acted on now), the instruction (the next step),
coverage. Lower-priority fields shrink first, then drop; the instruction is cut
with an ellipsis rather than dropped. Per-source rates, the recording size, pulls
and rejects go on a second line when the terminal has the rows for it, rejects
last (a long list cut the recording size, the proof that logging works).

When stderr is not a terminal (a pipe, ``nohup``, a log file) the status is one
line a second meant for programs. ``kv`` (default when piped) is
``status key=value ...``; ``json`` is one JSON object per line. Every 10 s a
``detail`` line adds rates, rejects and the recording size. Fields (missing
values are ``nan`` in kv, ``null`` in json):

    status  t_s rpm map_kpa afr afr_target lambda cov_pct pulls in_pull next alarms
    detail  t_s samples binned pending rec_bytes rate.<source> state.<source> rej.<reason>

``pending`` counts rows fused but not judged yet: they wait for later data (the
lambda delay, another source). They are in neither ``binned`` nor ``rej.*``; when the
data stops (a source lost mid-run, the end of the run) they are filtered at the end
with what had come, so the summary's counts can exceed the last ``detail`` line's by
``pending``, and the summary says how many.
    pull    index rpm_from rpm_to peak_power_hp peak_power_rpm peak_torque_nm
            peak_torque_rpm correction cf cut_short       (after each WOT pull)

kv values with spaces are double-quoted (``next="hold 3000 rpm"``); ``alarms``
joins several alarms with ``; ``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from core.snapshot import Snapshot

DEFAULT_WIDTH = 80
"""Width used when the terminal's cannot be read."""
DETAIL_EVERY_S = 10.0
"""How often a non-terminal status adds the ``detail`` line."""
SECOND_LINE_MIN_ROWS = 5
"""A terminal needs this many rows before the status takes a second one."""
SEP = "  "
MIN_NEXT = 14
"""Narrowest the instruction is cut to before lower-priority fields drop."""
MIN_ALARM = 14
STATUS_FORMATS = ("auto", "line", "kv", "json")


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """(columns, rows) of the terminal behind ``stream``; (80, 24) when unknown."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return DEFAULT_WIDTH, 24
    cols = size.columns if size.columns > 0 else DEFAULT_WIDTH
    return cols, size.lines if size.lines > 0 else 24


def _num(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "--"


def target_afr(values: Mapping[str, float]) -> float:
    """The AFR target, NaN when there is none: a target of 0 (or below) is none.

    An ECU without a target table sends 0.0 (TunerStudio logs it so too): the line
    read "AFR 10.8/0.0", a target no engine runs at, where "--" says there is none.
    """
    target = float(values.get("afr_target", math.nan))
    return target if math.isfinite(target) and target > 0.0 else math.nan


def _clock(seconds: float) -> str:
    hours, rem = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rem, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…" if width > 0 else ""


def alarm_summary(alarms: Sequence[str]) -> str:
    if not alarms:
        return ""
    more = f" (+{len(alarms) - 1})" if len(alarms) > 1 else ""
    return f"! {alarms[0]}{more}"


def whole_percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in whole percent that never rounds to a false 0 or 100.

    QA: one trusted cell of 256 (0.4 %) read "cov 0%"; 255 of 256 would have read
    "cov 100%". Those ends read "<1" and ">99" until they are true.
    """
    if whole <= 0 or part <= 0:
        return "0"
    if part >= whole:
        return "100"
    pct = 100.0 * part / whole
    if pct < 1.0:
        return "<1"
    return ">99" if pct > 99.0 else f"{pct:.0f}"


def fit_status(snap: Snapshot, width: int) -> str:
    """The first status line in at most ``width`` characters, fields by priority."""
    v = snap.values
    core = [
        _clock(snap.elapsed_s),
        f"{_num(v.get('rpm', math.nan), '.0f')} rpm",
        f"MAP {_num(v.get('map_kpa', math.nan), '.0f')}",
        f"AFR {_num(v.get('afr', math.nan), '.1f')}/{_num(target_afr(v), '.1f')}",
    ]
    line = SEP.join(core)
    if len(line) >= width:
        return _cut(line, width)
    instruction = snap.plan.instruction
    nxt = f"> {instruction}" if instruction else ""
    cov = f"cov {whole_percent(snap.grid.covered_cells, snap.grid.hits.size)}%"
    alarm = alarm_summary(snap.alarms)
    room = width - len(line)
    # What the lower-priority fields need at their narrowest; drop from the end until it
    # fits. An alarm comes first and gets the spare room first: it is what the tuner must
    # act on (QA: with the wideband's port silent the line read "> simulating tests; for
    # now: go to 2000 r…  cov 0%  ! SOURCE inno…", the reason for the dashes cut away).
    optional = [(alarm, MIN_ALARM), (nxt, MIN_NEXT), (cov, len(cov))]
    optional = [(text, min(need, len(text))) for text, need in optional if text]
    while optional and sum(need + len(SEP) for _, need in optional) > room:
        optional.pop()
    spare = room - sum(need + len(SEP) for _, need in optional)
    parts = []
    for text, need in optional:
        give = min(len(text), need + spare)
        spare -= give - need
        parts.append(_cut(text, give))
    return SEP.join([line, *parts])[:width]


def detail_fields(snap: Snapshot) -> list[str]:
    parts = []
    for src in snap.sources:
        state = "" if src.state.value in ("connected", "finished") else f" {src.state.value}"
        parts.append(f"{src.name} {src.rate_hz:.0f}/s{state}")
    if snap.recording is not None:
        parts.append(f"rec {_size(snap.recording.bytes_written)}")
    parts.append(f"pulls {snap.pulls_done}")
    rejects = {k: n for k, n in snap.rejects.items() if n}
    if rejects:
        parts.append("rej " + " ".join(f"{k}={n}" for k, n in sorted(rejects.items())))
    return parts


def fit_detail(snap: Snapshot, width: int) -> str:
    return _cut(" | ".join(detail_fields(snap)), width)


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


STATUS_DIGITS = {"rpm": 0, "map_kpa": 1, "afr": 2, "afr_target": 2, "lambda": 3}
"""Decimals each status channel is given: what its sensor resolves (a wideband reads
lambda to ~0.001, a MAP sensor to ~0.1 kPa). At 4 decimals for all, a log read
``rpm=949.1921`` and every line changed in digits that are only noise."""


def _finite(value: float, digits: int) -> float | int | None:
    if not math.isfinite(value):
        return None
    return round(value) if digits == 0 else round(value, digits)


def status_record(snap: Snapshot) -> dict[str, Any]:
    """The ``status`` fields (see the module docstring) as a dict."""
    v = snap.values
    return {
        "type": "status",
        "t_s": round(snap.elapsed_s, 2),
        **{ch: _finite(v.get(ch, math.nan), n) for ch, n in STATUS_DIGITS.items()},
        "afr_target": _finite(target_afr(v), STATUS_DIGITS["afr_target"]),
        "cov_pct": round(snap.grid.covered_pct, 2),
        "pulls": snap.pulls_done,
        "in_pull": snap.in_pull,
        "next": snap.plan.instruction,
        "alarms": "; ".join(snap.alarms),
    }


def detail_record(snap: Snapshot) -> dict[str, Any]:
    """The ``detail`` fields (see the module docstring) as a dict."""
    rec: dict[str, Any] = {
        "type": "detail",
        "t_s": round(snap.elapsed_s, 2),
        "samples": snap.samples_total,
        "binned": snap.samples_binned,
        "pending": snap.rows_pending,
        "rec_bytes": snap.recording.bytes_written if snap.recording is not None else 0,
    }
    for src in snap.sources:
        rec[f"rate.{src.name}"] = round(src.rate_hz, 1)
        rec[f"state.{src.name}"] = src.state.value
    for reason, n in sorted(snap.rejects.items()):
        if n:
            rec[f"rej.{reason}"] = n
    return rec


def pull_record(sheet: Any) -> dict[str, Any]:
    """The ``pull`` fields: index, rpm range, peaks with their rpm, correction factor."""
    hp, hp_rpm = sheet.peak("power_hp")
    nm, nm_rpm = sheet.peak("torque_nm")
    return {
        "type": "pull",
        "index": sheet.index,
        "rpm_from": round(float(sheet.rpm[0])),
        "rpm_to": round(float(sheet.rpm[-1])),
        "peak_power_hp": None if hp is None else round(hp, 1),
        "peak_power_rpm": None if hp_rpm is None else round(hp_rpm),
        "peak_torque_nm": None if nm is None else round(nm, 1),
        "peak_torque_rpm": None if nm_rpm is None else round(nm_rpm),
        "correction": sheet.correction.method,
        "cf": round(sheet.correction.factor, 3),
        "cut_short": sheet.cut_short,
    }


def kv_line(record: dict[str, Any]) -> str:
    """``type key=value ...``; None is ``nan``, booleans 0/1, text with spaces quoted."""
    out = [str(record["type"])]
    for key, value in record.items():
        if key == "type":
            continue
        if value is None:
            text = "nan"
        elif isinstance(value, bool):
            text = str(int(value))
        elif isinstance(value, str):
            text = json.dumps(value, ensure_ascii=False) if (not value or " " in value) else value
        else:
            text = str(value)
        out.append(f"{key}={text}")
    return " ".join(out)


def parse_kv_line(line: str) -> dict[str, str]:
    """Inverse of :func:`kv_line` for scripts and tests (values stay strings)."""
    import shlex

    words = shlex.split(line)
    out = {"type": words[0]}
    for word in words[1:]:
        key, _, value = word.partition("=")
        out[key] = value
    return out


class StatusPrinter:
    """Writes the status once a second to a terminal (refreshed in place) or a pipe.

    Args:
        stream: Where the status goes (stderr).
        fmt: ``auto`` (fitted line on a terminal, ``kv`` otherwise), ``line``, ``kv``, ``json``.
        bell: Ring the terminal bell when a bell alarm starts (terminal only).
    """

    def __init__(self, stream: TextIO, fmt: str = "auto", *, bell: bool = True) -> None:
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (OSError, ValueError, AttributeError):
            self.tty = False
        self.fmt = ("line" if self.tty else "kv") if fmt == "auto" else fmt
        self.bell = bell and self.tty
        self._lines_shown = 0
        self._last_detail_t = -math.inf
        self._alarms: tuple[str, ...] = ()

    def render(self, snap: Snapshot) -> str:
        """The text written for this snapshot (without cursor movement)."""
        if self.fmt == "line":
            cols, rows = terminal_size(self.stream)
            width = max(20, cols - 1)  # never the last column: no auto-wrap surprises
            first = fit_status(snap, width)
            if rows >= SECOND_LINE_MIN_ROWS:
                return first + "\n" + fit_detail(snap, width)
            return first
        lines = [status_record(snap)]
        if snap.elapsed_s - self._last_detail_t >= DETAIL_EVERY_S:
            self._last_detail_t = snap.elapsed_s
            lines.append(detail_record(snap))
        if self.fmt == "json":
            return "\n".join(json.dumps(rec, ensure_ascii=False) for rec in lines)
        return "\n".join(kv_line(rec) for rec in lines)

    def show(self, snap: Snapshot) -> str:
        from core.alarms import bell_onsets

        text = self.render(snap)
        ring = self.bell and bell_onsets(self._alarms, snap.alarms)
        self._alarms = snap.alarms
        if self.fmt == "line":
            up = "\x1b[1A" * max(0, self._lines_shown - 1)
            body = "\n".join("\r\x1b[K" + ln for ln in text.split("\n"))
            out = up + body + ("\a" if ring else "")
            self._lines_shown = text.count("\n") + 1
        else:
            out = text + "\n"
        _write(self.stream, out)
        return text

    def pull(self, sheet: Any) -> None:
        """A finished WOT pull: its summary as a line of its own (kept above the status).

        ``sheet`` is a :class:`core.dynosheet.PullSheet`. On a terminal the line
        replaces the status lines (which are redrawn below it at the next second);
        piped it is a ``pull`` record.
        """
        if self.fmt == "line":
            cols, _ = terminal_size(self.stream)
            up = "\x1b[1A" * max(0, self._lines_shown - 1)
            clear = "".join("\r\x1b[K\n" for _ in range(max(0, self._lines_shown - 1)))
            back = "\x1b[1A" * max(0, self._lines_shown - 1)
            text = _cut(sheet.summary_line(), max(20, cols - 1))
            _write(self.stream, up + clear + back + "\r\x1b[K" + text + "\n")
            self._lines_shown = 0
            return
        record = pull_record(sheet)
        line = json.dumps(record, ensure_ascii=False) if self.fmt == "json" else kv_line(record)
        _write(self.stream, line + "\n")

    def close(self) -> None:
        if self.fmt == "line" and self._lines_shown:
            _write(self.stream, "\n")


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass  # the terminal went away with the SSH session; the recording is what matters


def add_status_options(parser: Any) -> None:
    """``--status-format`` and ``--no-bell`` for the headless commands."""
    parser.add_argument(
        "--status-format",
        choices=STATUS_FORMATS,
        default="auto",
        help="status on stderr: auto (fitted line on a terminal, kv when piped), line, kv, json",
    )
    parser.add_argument(
        "--no-bell", action="store_true", help="no terminal bell on lean-at-WOT / knock alarms"
    )
