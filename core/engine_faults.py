"""Error containment of the engine: what failed, as alarms while running and lines at the end.

Decision: an error in one engine step (pull detection, the planner, a store
checkpoint, a tick, the stop) must not stop binning or the recording. The
session notes the first error of each step here and goes on; the snapshot shows
them as alarms beside a store write that is still being retried in the
background (the tracker's ``store_error``), and after the stop
:func:`not_saved_lines` says what of the run is not safely on disk (the
commands print those lines and exit 4).
"""

from __future__ import annotations

from core.recorder import Recorder


def contain(faults: dict[str, str], what: str, exc: BaseException) -> None:
    """Note the error of one engine step (the first one of each step is kept)."""
    faults.setdefault(what, f"{type(exc).__name__}: {exc}")


def fault_alarms(faults: dict[str, str], tracker: object) -> tuple[str, ...]:
    """Alarm lines: each contained error, and a store write still being retried."""
    alarms = [f"{what.upper()} FAILED: {why}" for what, why in faults.items()]
    store_error = getattr(tracker, "store_error", "")
    if store_error:
        alarms.append(f"STORE NOT SAVED (retrying): {store_error}")
    return tuple(alarms)


def not_saved_lines(recorder: Recorder, tracker: object, faults: dict[str, str]) -> list[str]:
    """What of a stopped run is not safely on disk, one line each (empty: all saved)."""
    lines = []
    if recorder.error:
        lines.append(
            f"{recorder.error} {recorder.error_at_s:.1f} s into the recording; "
            "the file holds what was written before"
        )
    not_saved = getattr(tracker, "not_saved", "")
    if not_saved:
        lines.append(not_saved)
    lines.extend(f"{what} failed: {why}" for what, why in faults.items())
    return lines
