"""Replay: a recorded .dynolog, or a log another tool wrote, as just another Source.

The replay goes through the same engine as live data, so the coverage a replay
shows is the coverage the live session built. Blocks keep their recorded source
names and timestamps. Pacing follows the data clock: at ``speed=1`` a block is
handed over when its first sample is due on the wall clock; ``speed=max`` hands
over blocks as fast as the engine takes them, merged into large batches (block
boundaries do not change what the engine computes, and big batches keep the
per-block cost out of a one-hour replay).

Playback control (pause, speed, seek) comes from the UI thread; seeking restarts
the log from its beginning and fast-forwards to the target, bumping
``generation`` so the engine rebuilds its grid from scratch. At the end of the
log the replay holds there, paused: a seek back jumps and holds, resuming plays
on from there, and resuming at the very end plays the log again from its start.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.frames import Block, concat
from core.record import MAGIC, LogFileError, LogHeader, LogReader
from core.source import Source, SourceError, SourceEvent, SourceInputError, SourceState, SourceURI

MAX_BATCH_SAMPLES = 16384
PACED_PIECE_S = 0.05
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, math.inf)


_HEADER_START = b"\xa1k\xa1h"
"""The header record's first key and kind (msgpack ``{"k": "h", ...``), right after its
frame's length and CRC: a recording cut before "DYNOLOG" is still known by it."""


def is_dynolog(path: Path) -> bool:
    """A DynoAI recording, by its magic or, cut off before that, its header's first bytes.

    A .dynolog cut to 20 bytes read "unknown log format (no MLG signature, ...)"; it is a
    recording whose header is cut short, and the reader says so.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    framed = len(head) > 8 and head[0] in (0xC4, 0xC5, 0xC6)
    return MAGIC.encode() in head or (framed and _HEADER_START in head[:16])


class RecordedLog:
    """A readable log of any supported format: header + records + what was recovered."""

    def __init__(
        self,
        path: str | Path,
        channel_map: dict[str, str] | None = None,
        time_unit: str | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceInputError(f"log file {self.path} does not exist")
        if self.path.is_dir():
            raise SourceInputError(f"{self.path} is a directory, not a log file")
        self._reader: LogReader | None = None
        self._imported: Any = None
        if is_dynolog(self.path):
            try:
                self._reader = LogReader(self.path)
            except LogFileError as exc:
                raise SourceInputError(str(exc)) from None
            self.header: LogHeader = self._reader.header
        else:
            from core.formats import LogImportError, open_log

            try:
                self._imported = open_log(self.path, channel_map=channel_map, time_unit=time_unit)
            except LogImportError as exc:
                raise SourceInputError(str(exc)) from None
            self.header = self._imported.header

    @property
    def is_dynolog(self) -> bool:
        """A DynoAI recording (not a foreign log imported on the fly)."""
        return self._reader is not None

    def records(self) -> Iterator[Block | SourceEvent]:
        if self._reader is not None:
            yield from self._reader
        else:
            yield from self._imported.records()

    @property
    def recovery_warning(self) -> str:
        """After reading: what was lost at a damaged or truncated tail, else ''."""
        if self._reader is not None:
            rec = self._reader.recovery
            return "" if rec.complete else rec.message
        return self._foreign_damage()

    @property
    def damage_so_far(self) -> str:
        """The damage met on the way when the read stopped early (by a signal), else ''.

        Not having read to the end is no loss: a stopped replay's summary warned
        "recovered 35 blocks ... file complete" of a whole file.
        """
        if self._reader is not None:
            rec = self._reader.recovery
            return rec.message if rec.skips or rec.error else ""
        return self._foreign_damage()

    def _foreign_damage(self) -> str:
        # a foreign log: what its reader skipped (bad checksums, garbage, a cut tail),
        # which before only ``dynoai import`` said
        damage = getattr(getattr(self._imported, "summary", None), "damage", None)
        return "damaged log: " + "; ".join(damage) if damage else ""

    @property
    def lean_rail_hint(self) -> str:
        """For a foreign log whose "Lambda" column holds AFR: the ``--map`` to read it as AFR.

        '' otherwise. ``dynoai import`` said it; a replay of the same CSV only counted
        every sample as ``wideband_railed``.
        """
        if self._imported is None:
            return ""
        from core.formats.mapping import afr_in_lambda

        summary = getattr(self._imported, "summary", None)
        columns = getattr(self._imported, "columns", None)
        if summary is None or columns is None:
            return ""
        return afr_in_lambda(summary.mapped, columns)

    @property
    def import_summary(self) -> str:
        summary = getattr(self._imported, "summary", None)
        return summary.to_text() if summary is not None else ""

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class ReplaySource(Source):
    """``replay:PATH?speed=1|4|max``.

    Also ``map=`` for CSV channel names and ``time_unit=ms|s`` for a time column
    without a unit.
    """

    finite = True
    own_clock = True

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(name, uri.raw)
        if not uri.path:
            raise SourceError(f"{uri.raw}: name the log file, e.g. replay:run.dynolog")
        self.path = Path(uri.path).expanduser()
        raw_speed = (uri.get("speed") or "1").lower()
        if raw_speed in ("max", "inf"):
            self.speed = math.inf
        else:
            self.speed = uri.get_float("speed", 1.0)
            if not 0.01 <= self.speed <= 1000:
                raise SourceError(
                    f"{uri.raw}: speed {self.speed:g} is outside 0.01..1000 (or 'max')"
                )
        self.realtime = math.isfinite(self.speed)
        self.channel_map = _parse_map(uri.get("map"), uri.raw)
        self.time_unit = uri.get("time_unit") or None
        if self.time_unit not in (None, "ms", "s"):
            raise SourceError(f"{uri.raw}: time_unit {self.time_unit!r}: expected ms or s")
        self.paused = False
        self.generation = 0
        self.control = self
        self.log: RecordedLog | None = None
        self._records: Iterator[Block | SourceEvent] = iter(())
        self._pending: list[Block] = []
        self._ctl = threading.Lock()
        self._seek_to: float | None = None
        self._fast_until = -math.inf
        self._anchor_wall = 0.0
        self._anchor_t: float | None = None
        self.position_t: float | None = None
        self.first_t: float | None = None

    # -- Source -------------------------------------------------------------------

    def open(self) -> None:
        self.log = RecordedLog(self.path, self.channel_map, self.time_unit)
        self._records = self.log.records()
        self.set_status(SourceState.CONNECTED, f"replaying {self.path.name}")

    def channels(self) -> dict[str, str]:
        if self.log is None:
            return {}
        merged: dict[str, str] = {}
        for info in self.log.header.sources.values():
            merged.update(info.get("channels", {}))
        return merged

    def recorded_sources(self) -> list[tuple[str, dict[str, str]]]:
        """The recorded sources and their channels, in recording order (for fusion)."""
        if self.log is None:
            return []
        return [
            (name, dict(info.get("channels", {}))) for name, info in self.log.header.sources.items()
        ]

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def read(self, timeout: float = 0.1) -> Block | None:
        if self.log is None:
            raise SourceError(f"replay of {self.path} was not opened")
        with self._ctl:
            seek_to, self._seek_to = self._seek_to, None
        if seek_to is not None:
            self._restart(seek_to)
        if self.paused:
            return self._read_paused(timeout)
        block = self._next_block()
        if block is None:
            return None
        if self.realtime and block.t[0] > self._fast_until:
            now = time.monotonic()
            if self._anchor_t is None:
                self._anchor_wall, self._anchor_t = now, float(block.t[0])
            due = self._anchor_wall + (float(block.t[0]) - self._anchor_t) / self.speed
            if due > now:
                time.sleep(min(due - now, timeout))
                if due > time.monotonic():
                    self._pending.insert(0, block)
                    return None
        self.position_t = float(block.t[-1])
        if self.first_t is None:
            self.first_t = float(block.t[0])
        return block

    def _read_paused(self, timeout: float) -> Block | None:
        """While paused, only a pending seek moves: fast-forward to its target, then hold."""
        block = None
        if self.position_t is None or self.position_t < self._fast_until:
            block = self._next_block()
        if block is not None and block.t[0] <= self._fast_until:
            self.position_t = float(block.t[-1])
            return block
        if block is not None:
            self._pending.insert(0, block)
        time.sleep(min(timeout, 0.05))
        return None

    # -- playback control (any thread) ----------------------------------------------

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Play on; at the end of the log, play it again from its start."""
        if self.status.state is SourceState.FINISHED:
            with self._ctl:
                if self._seek_to is None:
                    self._seek_to = -math.inf
        self._reanchor()
        self.paused = False

    def toggle_pause(self) -> None:
        if self.paused:
            self.resume()
        else:
            self.pause()

    def set_speed(self, speed: float) -> None:
        self._reanchor()
        self.speed = speed
        self.realtime = math.isfinite(speed)

    def faster(self) -> None:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))

    def slower(self) -> None:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))

    def seek(self, delta_s: float) -> None:
        """Jump by ``delta_s`` seconds of log time (negative = back), from where it is headed.

        Keys pressed faster than the replay takes a seek up add up: Right three times
        moved +10 s, as each press started from the position the replay had not left
        yet (and a press during a seek's fast-forward started from part way there).
        """
        start = self.first_t if self.first_t is not None else 0.0
        with self._ctl:
            if self._seek_to is not None:  # a seek not taken up yet
                here = self._seek_to if math.isfinite(self._seek_to) else start
            elif math.isfinite(self._fast_until) and (
                self.position_t is None or self.position_t < self._fast_until
            ):
                here = self._fast_until  # on the way to the last seek's target
            else:
                here = self.position_t if self.position_t is not None else start
            self._seek_to = here + delta_s

    # -- internals --------------------------------------------------------------------

    def _reanchor(self) -> None:
        self._anchor_t = None

    def _restart(self, target_t: float) -> None:
        if self.log is not None:
            self.log.close()
        self.log = RecordedLog(self.path, self.channel_map, self.time_unit)
        self._records = self.log.records()
        self._pending = []
        self._fast_until = target_t
        self._anchor_t = None
        self.position_t = None
        self.generation += 1
        self.set_status(SourceState.CONNECTED, f"replaying {self.path.name}")

    def _next_block(self) -> Block | None:
        block = self._pending.pop(0) if self._pending else self._read_batch()
        if block is None:
            return block
        # Up to the seek target: hand over at once; after it: small paced pieces. Cut at
        # the target at full speed too: a seek while paused holds there, and a batch
        # (up to 164 s at 100 Hz) carried it past, to the end of the log when it ended.
        cut = int(np.searchsorted(block.t, self._fast_until, side="right"))
        if 0 < cut < len(block):
            self._pending.insert(0, block.slice(cut, len(block)))
            return block.slice(0, cut)
        if cut == 0 and self.realtime:
            pieces = _split_by_time(block, PACED_PIECE_S * max(self.speed, 1.0))
            self._pending[:0] = pieces[1:]
            return pieces[0]
        return block

    def _read_batch(self) -> Block | None:
        batch: list[Block] = []
        size = 0
        for item in self._records:
            if isinstance(item, SourceEvent):
                self._replay_event(item)
                if batch:
                    break
                continue
            if batch and (item.source != batch[0].source or item.channels != batch[0].channels):
                self._pending.append(item)
                break
            batch.append(item)
            size += len(item)
            if self.realtime and item.t[0] > self._fast_until:
                break
            if size >= MAX_BATCH_SAMPLES:
                break
        if not batch:
            self._finish()
            return None
        return batch[0] if len(batch) == 1 else concat(batch)

    def _replay_event(self, event: SourceEvent) -> None:
        with self._lock:
            self._events.append(replace(event, data={**event.data, "replayed": True}))

    def _finish(self) -> None:
        """The log has ended: hold there, paused.

        A seek then jumps back and holds (``_read_paused``) for the tuner to look, and
        resuming plays on from there. Playing on at the end, a seek back at full speed
        ran straight to the end again: the dashboard looked as if ``←`` did nothing.
        """
        if self.status.state is not SourceState.FINISHED and self.log is not None:
            note = self.log.recovery_warning
            self.paused = True
            self.set_status(SourceState.FINISHED, note or f"end of {self.path.name}")


def _split_by_time(block: Block, piece_s: float) -> list[Block]:
    if len(block) < 2 or block.t[-1] - block.t[0] <= piece_s:
        return [block]
    bucket = np.floor((block.t - block.t[0]) / piece_s)
    edges = [0, *(np.flatnonzero(np.diff(bucket)) + 1).tolist(), len(block)]
    return [block.slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _parse_map(raw: str | None, where: str) -> dict[str, str] | None:
    if not raw:
        return None
    mapping: dict[str, str] = {}
    for part in raw.split(","):
        canonical, sep, original = part.partition("=")
        if not sep or not canonical.strip() or not original.strip():
            raise SourceError(f"{where}: map entries look like rpm=Engine Speed, got {part!r}")
        mapping[canonical.strip()] = original.strip().strip('"')
    return mapping
