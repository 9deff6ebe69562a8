"""Headless runs for SSH: a status line a second on stderr, the summary on stdout.

The status line itself (fitted to the terminal, or parseable when piped) is
:mod:`dynoai_tui.commands.statusline`.

Headless is its own product path (no textual import anywhere below here): a
tuner starts ``dynoai log`` over SSH on the laptop strapped to the dyno, and it
must survive the SSH session dropping. SIGINT, SIGTERM and SIGHUP all end the run
the same way: stop the sources, flush and fsync the recording, print the summary
(if stdout is still there) and exit 0; a signal the process was started with
ignored stays ignored (``nohup dynoai log ...`` outlives the SSH session).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType
from typing import TextIO, TypeVar

import numpy as np

from core.coverage.export import grid_to_text
from core.session import Session
from core.snapshot import AlarmSeen, Snapshot
from dynoai_tui import INTERRUPTED
from dynoai_tui.commands.common import printable
from dynoai_tui.commands.statusline import StatusPrinter, fit_status

STATUS_INTERVAL_S = 1.0
R = TypeVar("R")


class StopSignals:
    """Turns SIGINT / SIGTERM / SIGHUP into a flag the run loop checks.

    A signal the process was started with ignored stays ignored, as Unix tools do:
    ``nohup dynoai log ...`` keeps logging when the SSH session that started it
    closes (SIGHUP), and a script's background ``dynoai log ... &`` is not stopped by
    the Ctrl-C meant for the command in the foreground (SIGINT). SIGTERM still ends it.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # ignored by whoever started us (nohup: SIGHUP; `cmd &`: SIGINT)
                self._previous[sig] = signal.signal(sig, self._handle)
        if INTERRUPTED.is_set():  # a Ctrl-C Python swallowed during a late import
            self._handle(signal.SIGINT, None)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            INTERRUPTED.set()
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        INTERRUPTED.clear()  # this run saw it and ended on it
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _safe_write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass  # the terminal went away with the SSH session; the recording is what matters


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (OSError, ValueError, AttributeError):
        return False  # closed, or no file behind it


def format_size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def format_clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for elapsed times."""
    hours, rem = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rem, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_line(snap: Snapshot, width: int = 80) -> str:
    """The status line fitted to ``width`` (see :mod:`dynoai_tui.commands.statusline`)."""
    return fit_status(snap, width)


FLUSH_NOTE_ROWS = 50
"""Rows judged at the end of data from which the summary says so: a source that fell
silent left them waiting (the last status showed them as pending); the ~9 rows of the
lambda delay every run ends with are no news."""


def reachable_counts(confidence: object, reachable: Sequence[bool]) -> tuple[int, int] | None:
    """(trusted, reachable) cells, or None when the plan has not said which it reaches.

    ``reachable``: ``PlanView.reachable``. QA read "covered as far as this engine
    reaches" beside "56% covered": the rest were cells no engine of the kind holds.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    if len(reachable) != conf.size:
        return None
    mask = np.asarray(reachable, dtype=bool)
    return int(np.count_nonzero((conf >= 1.0) & mask)), int(mask.sum())


def _reachable(snap: Snapshot) -> str:
    """The coverage line's "; 27 of 178 reachable", or nothing."""
    counts = reachable_counts(snap.grid.confidence, snap.plan.reachable)
    return "" if counts is None else f"; {counts[0]} of {counts[1]} reachable"


def alarm_lines(seen: Sequence[AlarmSeen]) -> list[str]:
    """The summary's ``alarms`` lines: each alarm that came on, how often, how long, its worst.

    The status line shows an alarm only while it is on; after a run over SSH (or under
    nohup) the summary is what the tuner reads, and it said nothing of the knock.
    """
    if not seen:
        return ["alarms        none"]
    out = []
    for i, a in enumerate(seen):
        times = "once" if a.onsets == 1 else f"{a.onsets} times"
        out.append(
            f"{'alarms' if i == 0 else '':<14}{a.code} {times}, {a.seconds:.1f} s on; "
            f"worst {printable(a.worst)}"
        )
    return out


def as_stored(snap: Snapshot, tracker: object) -> tuple[Snapshot, str]:
    """(``snap`` with the vehicle coverage the store holds after the run, what it kept).

    The final snapshot's vehicle coverage is the stored runs plus this run's grid. When
    the store kept a stored run instead of this one (a replay of part of it: a cut copy,
    a replay stopped early), that sum counted the part (12 cells trusted) while the
    store held the whole run (14). The store is read back after the run's last write,
    so the summary says what it holds; the second item says which run it kept and why
    ('' when it took this run), for :func:`summary_text`'s ``kept``.
    """
    kept_run = str(getattr(tracker, "kept_run", "") or "")
    kept = ""
    if kept_run:
        kept = (
            f"run {kept_run[:8]} kept, not replaced by this part of it"
            if kept_run == getattr(tracker, "run_id", None)
            else f"run {kept_run[:8]} already counts this recording, not added again"
        )
    held_grid = getattr(tracker, "held_grid", None)
    held = held_grid() if callable(held_grid) else None
    if held is None or (snap.vehicle_grid is None and not kept):
        return snap, kept  # no store, or the vehicle is this run alone: the coverage line
    return replace(snap, vehicle_grid=held.view()), kept


def summary_text(
    snap: Snapshot,
    *,
    recording_path: str | None,
    note: str = "",
    not_saved: Sequence[str] = (),
    stored_as: str | None = None,
    earlier_recordings: Sequence[str] = (),
    kept: str = "",
    width: int | None = None,
) -> str:
    """The end-of-run summary with an ASCII heatmap of hits.

    ``stored_as``: the vehicle the run is stored under (``--vehicle``), named in the way
    to the simulated plan when the next test is the quick planner's estimate.
    ``earlier_recordings``: files recorded before ``recording_path`` in the same session
    (the dashboard's ``r`` pressed more than once), listed first.
    ``kept``: the stored run the store kept instead of this one, and why (:func:`as_stored`):
    the vehicle line says so, ``snap.vehicle_grid`` being the store's coverage.
    ``width``: columns to wrap at (default :func:`summary_width`).
    """
    lines = [
        f"duration      {format_clock(snap.elapsed_s)} ({snap.elapsed_s:.1f} s)",
        f"samples       {snap.samples_total} received, {snap.samples_binned} binned"
        + (
            # the status lines showed these as pending, not in binned or rejects
            f" (the last {snap.rows_flushed} judged when the data ended)"
            if snap.rows_flushed >= FLUSH_NOTE_ROWS
            else ""
        ),
        f"coverage      {snap.grid.covered_pct:.1f} % ({snap.grid.covered_cells} of "
        f"{snap.grid.hits.size} cells trusted{_reachable(snap)})",
    ]
    if snap.vehicle_grid is not None:
        both = snap.vehicle_grid
        lines.append(
            # what the plan is made on (the coverage line above is this run's alone)
            f"vehicle       {both.covered_pct:.1f} % ({both.covered_cells} of {both.hits.size} "
            + (
                f"cells trusted as stored: {printable(kept)})"
                if kept
                else "cells trusted, this run and its stored runs)"
            )
        )
    lines.extend(alarm_lines(snap.alarms_seen))
    rejects = {k: v for k, v in snap.rejects.items() if v}
    lines.append(
        "rejects       " + (", ".join(f"{k} {v}" for k, v in sorted(rejects.items())) or "none")
    )
    for src in snap.sources:
        msg = f" ({src.message})" if src.message else ""
        lines.append(f"source        {src.name}: {src.samples} samples, {src.state.value}{msg}")
    if snap.pulls_done:
        lines.append(f"pulls         {snap.pulls_done}")
    for path in (*earlier_recordings, *([recording_path] if recording_path else [])):
        lines.append(f"recording     {printable(path)}")
    if note:
        lines.append(f"note          {printable(note)}")
    lines.extend(f"NOT SAVED     {line}" for line in not_saved)
    if snap.plan.suggestions:
        best = snap.plan.suggestions[0]
        knock = "⚠ knock seen there: " if best.knock_cells else ""  # as `dynoai plan` says
        lines.append(
            f"next test     {knock}{best.description} ({best.minutes:.1f} min, {best.band})"
        )
        full_plan = (
            f"dynoai plan --vehicle {printable(stored_as)}"
            if stored_as
            else "store it with --vehicle NAME, then dynoai plan --vehicle NAME"
        )
        if snap.plan.opening_only and best.recipe is not None:
            # the opening work alone was simulated by the end: the rest is not weighed yet
            lines.append("              of the opening work (idle / low-MAP first); every test:")
            lines.append(f"              {full_plan}")
        if best.recipe is None:
            # the kinematic planner's answer (a run read faster than the candidates are
            # simulated, e.g. a replay at --max-speed): its minutes are a sketch's
            lines.append(
                "              a quick estimate (the simulated planner was still warming up);"
            )
            lines.append(
                f"              the simulated plan: {full_plan}"
                if stored_as
                else f"              {full_plan}"
            )
    for kind, err, n in snap.plan.errors_by_type:
        lines.append(f"predicted     {kind}: {err:.1f} % mean error over {n} checked test(s)")
    columns = width if width is not None else summary_width()
    return "\n".join(wrapped(line, columns) for line in lines)


SUMMARY_WIDTH = 80
"""Columns a summary line fills before it wraps when stdout is not a terminal (a pipe,
a file: the same text on every machine; an SSH terminal is often 80 wide)."""
_LABEL_WIDTH = 14
_MIN_WIDTH = 40


def summary_width(out: TextIO | None = None) -> int:
    """The terminal's width when ``out`` (stdout) is one, else :data:`SUMMARY_WIDTH`.

    Wrapped at 80 on a 160-column terminal the summary read as fragments; on a 50-column
    one the terminal wrapped it again, mid-word.
    """
    stream = out if out is not None else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty:
        return SUMMARY_WIDTH
    import shutil

    return max(_MIN_WIDTH, shutil.get_terminal_size((SUMMARY_WIDTH, 24)).columns)


def wrapped(line: str, width: int = SUMMARY_WIDTH) -> str:
    """``line`` wrapped at spaces to ``width``, continued under its value column.

    The terminal wrapped the ``source`` line mid-number ("seed 1 at 1" / "00 Hz"). A
    line holding a word longer than the room (a long path) is left whole: cut there or
    alone under an empty label, it would be harder to copy.
    """
    if len(line) <= width or max(map(len, line.split())) > width - _LABEL_WIDTH:
        return line
    import textwrap

    return textwrap.fill(
        line,
        width,
        subsequent_indent=" " * _LABEL_WIDTH,
        break_long_words=False,
        break_on_hyphens=False,
    )


def heatmap_from(session: Session) -> str:
    return grid_to_text(session.grid, view="hits")


def run_headless(
    session: Session,
    *,
    duration_s: float | None,
    status: TextIO | None = None,
    should_stop: Callable[[], bool] | None = None,
    status_format: str = "auto",
    bell: bool = True,
) -> tuple[Snapshot, str]:
    """Run a session until duration, end of data or a stop signal; returns (final, why)."""
    printer = StatusPrinter(status if status is not None else sys.stderr, status_format, bell=bell)
    sheet = getattr(getattr(session, "tracker", None), "sheet", None)
    shown = [0]

    def report_pulls() -> None:
        """One line per WOT pull finished since the last call (its dyno-sheet summary)."""
        pulls = sheet.pulls if sheet is not None else ()
        for pull in pulls[shown[0] :]:
            printer.pull(pull)
        shown[0] = max(shown[0], len(pulls))

    why = "end of data"
    with StopSignals() as signals:
        try:
            if session.finite and not session.realtime:
                last = [time.monotonic()]

                def stop_now() -> bool:
                    now = time.monotonic()
                    if now - last[0] >= STATUS_INTERVAL_S:
                        last[0] = now
                        report_pulls()
                        printer.show(session.snapshot)
                    reached = duration_s is not None and session.snapshot.elapsed_s >= duration_s
                    return signals.event.is_set() or reached or bool(should_stop and should_stop())

                final = session.run_to_end(should_stop=stop_now)
                if signals.event.is_set():
                    why = signals.signal_name
                elif duration_s is not None and final.elapsed_s >= duration_s:
                    why = "duration reached"
            else:
                session.start()
                next_status = time.monotonic() + STATUS_INTERVAL_S
                while True:
                    if signals.event.wait(0.05):
                        why = signals.signal_name
                        break
                    snap = session.snapshot
                    if snap.finished:
                        break
                    if duration_s is not None and snap.elapsed_s >= duration_s:
                        why = "duration reached"
                        break
                    if should_stop is not None and should_stop():
                        why = "stopped"
                        break
                    if time.monotonic() >= next_status:
                        next_status += STATUS_INTERVAL_S
                        report_pulls()
                        printer.show(snap)
                final = session.stop()
        except BaseException:
            # whatever ends the run early (an error escaping a status write, a bug), the
            # recording is flushed and closed before it propagates, as after Ctrl-C
            session.stop()
            raise

    report_pulls()
    printer.close()
    return final, why


NOTICE_AFTER_S = 1.0
"""A ``run_unless_stopped`` still working after this long says so on a terminal."""


def run_unless_stopped(
    work: Callable[[], R], notice: str = "", out: TextIO | None = None
) -> R | None:
    """``work()`` on a thread of its own; None when SIGINT / SIGTERM / SIGHUP comes first.

    The end of a run may plan for seconds (``replay.end_plan``): a signal then prints
    the summary at once, without that plan, as a signal during the run does.
    ``notice``: one line written to ``out`` (stderr) when the work is still going after
    :data:`NOTICE_AFTER_S` and ``out`` is a terminal, so a tuner over SSH does not read a
    silent pause as a hang (a pipe gets nothing: status parsers read stderr).
    """
    stream = out if out is not None else sys.stderr
    result: list[R] = []
    error: list[BaseException] = []

    def call() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread below
            error.append(exc)

    worker = threading.Thread(target=call, name="end-plan", daemon=True)
    with StopSignals() as signals:
        worker.start()
        started = time.monotonic()
        told = not notice or not _isatty(stream)
        while worker.is_alive():
            if signals.event.wait(0.05):
                return None
            if not told and time.monotonic() - started >= NOTICE_AFTER_S:
                _safe_write(stream, notice + "\n")
                told = True
    if error:
        raise error[0]
    return result[0]


def print_summary(text: str, out: TextIO | None = None) -> None:
    _safe_write(out if out is not None else sys.stdout, text + "\n")
