"""Recorder: the session's .dynolog writer, which never takes the session down with it.

A failing disk (ENOSPC, an unplugged USB stick) stops the recording and leaves an
error message for the alarms and the summary; what was written stays readable and
the engine carries on binning. Only the engine thread calls in here (under the
session lock), so there is no locking of its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.frames import Block
from core.record import LogFileError, LogHeader, LogWriter
from core.snapshot import RecordingInfo
from core.source import Source, SourceEvent
from core.vehicle import VehicleConfig


def session_header(
    config: VehicleConfig,
    sources: Sequence[Source],
    *,
    t0: float,
    run_id: str,
    metadata: Mapping[str, Any],
    segment_id: str,
) -> LogHeader:
    """The header of a live session's recording: sources, axes, the settings binning used."""
    return LogHeader(
        created_at=time.time(),
        t0=t0,
        vehicle=config.name,
        sources={s.name: {"uri": s.uri, "channels": s.channels()} for s in sources},
        axes=config.axes.to_dict(),
        metadata={
            "lambda_delay_ms": config.lambda_delay_ms,
            "stoich": config.stoich,
            "hit_target": config.hit_target,
            "app": "dynoai-tui",
            "run_id": run_id,
            **metadata,
            "segment_id": segment_id,
        },
    )


class Recorder:
    """Starts, writes and stops one recording at a time.

    Args:
        clock: Monotonic seconds (the session's), for the recording's elapsed time.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._writer: LogWriter | None = None
        self._started = 0.0
        self.error = ""
        """Why the last recording stopped by itself ('' when it did not)."""
        self.error_at_s = 0.0
        """Seconds into that recording when it stopped by itself."""

    @property
    def active(self) -> bool:
        return self._writer is not None

    def start(self, path: str | Path, header: LogHeader) -> None:
        """Create the file and start writing; a recording already running is kept.

        Raises:
            LogFileError: the file cannot be created (exists, no directory, no permission).
        """
        if self._writer is not None:
            return
        self._writer = LogWriter(Path(path), header)
        self._started = self._clock()
        self.error = ""

    def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def write_block(self, block: Block) -> None:
        self._do(lambda w: w.write_block(block))

    def write_event(self, event: SourceEvent) -> None:
        self._do(lambda w: w.write_event(event))

    def tick(self) -> None:
        """Flush / fsync when due (at most every 250 ms / 1 s)."""
        self._do(lambda w: w.tick())

    def info(self) -> RecordingInfo | None:
        writer = self._writer
        if writer is None:
            return None
        return RecordingInfo(str(writer.path), writer.bytes_written, self._clock() - self._started)

    def _do(self, op: Callable[[LogWriter], object]) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            op(writer)
        except (OSError, LogFileError) as exc:
            # Disk full / unplugged USB stick: keep the session (and what was written) alive.
            self.error = f"recording stopped: {getattr(exc, 'strerror', None) or exc}"
            self.error_at_s = self._clock() - self._started
            self._writer = None
            with contextlib.suppress(OSError, LogFileError):
                writer.close()
