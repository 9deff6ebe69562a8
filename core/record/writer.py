"""LogWriter: appends blocks and events to a .dynolog, durable within a second.

See :mod:`core.record` for the format and why blocks are coalesced until the
next flush; the byte layout is in :mod:`core.record.format`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.frames import Block
from core.fusion import STREAM_SILENT_S
from core.record.format import (
    MAX_BLOCK_PAYLOAD_BYTES,
    MAX_CHANNELS_PER_BLOCK,
    LogFileError,
    LogHeader,
    encode_block,
    frame,
)
from core.source import SourceEvent

MAX_RECORD_PAYLOAD_BYTES = MAX_BLOCK_PAYLOAD_BYTES
"""The writer splits coalesced blocks so no decoded payload exceeds this."""
STREAM_GAP_S = STREAM_SILENT_S / 2
"""A schema (a source's channel set) new to the file, or silent for this long of data,
starts a new batch of records: what was queued is written first (see ``write_block``)."""
SCHEMA_REPEAT_BLOCKS = 4
"""A schema record is written again after every 4 block records of that schema (about
once a second at the 250 ms flush): a damaged schema record then costs the blocks up to
its next copy, not the rest of the recording (see :mod:`core.record`)."""


@dataclass(slots=True)
class _Pending:
    """Blocks of one schema waiting for the next flush."""

    times: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    samples: int = 0


class LogWriter:
    """Appends blocks and events to a new .dynolog file.

    Args:
        path: File to create. It must not exist unless ``overwrite`` is true.
        header: Record 0.
        flush_interval_s: ``tick`` hands data to the OS at least this often.
        fsync_interval_s: ``tick`` forces data to disk at least this often.
        clock: Monotonic seconds; injectable for tests and for replayed time.
        overwrite: Replace an existing file instead of refusing.

    Raises:
        LogFileError: the file cannot be created (missing directory, exists,
            permission denied), with the path and what to do.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: LogHeader,
        *,
        flush_interval_s: float = 0.25,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        overwrite: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.flush_interval_s = flush_interval_s
        self.fsync_interval_s = fsync_interval_s
        self._clock = clock
        self._schemas: dict[tuple[str, tuple[str, ...]], int] = {}
        self._schema_records: list[bytes] = []
        """Each schema's record, by id, to repeat it (see SCHEMA_REPEAT_BLOCKS)."""
        self._blocks_since_schema: list[int] = []
        self._schema_last_t: dict[tuple[str, tuple[str, ...]], float] = {}
        """Newest sample time written or queued per (source, channels)."""
        self._pending: dict[int, _Pending] = {}
        self._pending_t0 = math.inf
        """Earliest sample time queued since the last emit (see ``write_block``)."""
        self._bytes_written = 0
        self._unflushed = False
        self._unsynced = False
        self._closed = False
        try:
            header_record = frame(header.to_record())
        except (TypeError, ValueError) as exc:
            raise LogFileError(
                f"recording header for {self.path} cannot be written: {exc}"
            ) from None
        try:
            self._file = open(self.path, "wb" if overwrite else "xb")  # noqa: SIM115
        except FileExistsError:
            raise LogFileError(
                f"recording {self.path} already exists; choose another file name"
            ) from None
        except FileNotFoundError as exc:
            parent = os.path.dirname(os.path.abspath(self.path))
            if os.path.isdir(parent):  # /proc: there, but it takes no new files
                raise LogFileError(
                    f"cannot create recording {self.path}: directory {parent} does not take "
                    f"new files ({exc.strerror})"
                ) from None
            raise LogFileError(
                f"cannot create recording {self.path}: directory {parent} does not exist"
            ) from None
        except IsADirectoryError:
            raise LogFileError(f"cannot create recording {self.path}: it is a directory") from None
        except OSError as exc:
            raise LogFileError(
                f"cannot create recording {self.path}: {exc.strerror or exc}"
            ) from None
        self._write(header_record)
        self._sync(fsync=True)
        now = clock()
        self._last_flush_at = now
        self._last_fsync_at = now

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the file so far (blocks still coalescing are not counted)."""
        return self._bytes_written

    @property
    def closed(self) -> bool:
        return self._closed

    def write_block(self, block: Block) -> None:
        """Queue a block; it reaches the file at the next flush (see module docstring)."""
        self._check_open()
        n = len(block)
        if n == 0:
            return
        names = tuple(block.columns)
        if len(names) > MAX_CHANNELS_PER_BLOCK:
            raise LogFileError(
                f"block from {block.source!r} has {len(names)} channels; "
                f"a recording holds at most {MAX_CHANNELS_PER_BLOCK} per block"
            )
        key = (block.source, names)
        if float(block.t[0]) - self._schema_last_t.get(key, -math.inf) >= STREAM_GAP_S:
            # A channel set that is new, or back after a silence, is met by the fusion
            # where live met it: after what came before it, not ahead of it in a batch
            # whose other records a replay reads first (core.fusion: streams).
            self._emit_all()
        self._schema_last_t[key] = max(self._schema_last_t.get(key, -math.inf), float(block.t[-1]))
        schema = self._schema_id(block.source, names)
        with np.errstate(over="ignore"):
            cols = np.empty((len(names), n), dtype=np.float32)
            for i, name in enumerate(names):
                cols[i] = block.columns[name]
        pending = self._pending.setdefault(schema, _Pending())
        pending.times.append(block.t.copy())  # the caller may reuse its buffers
        pending.cols.append(cols)
        pending.samples += n
        self._pending_t0 = min(self._pending_t0, float(block.t[0]))
        if pending.samples * (8 + 4 * len(names)) >= MAX_RECORD_PAYLOAD_BYTES:
            self._emit(schema)
        elif float(block.t[-1]) - self._pending_t0 >= self.flush_interval_s:
            # A flush interval of *data* queued: write it out now, so the sources' records
            # interleave as they would live even when data arrives faster than real time
            # (a simulation, a fast replay being re-recorded). A replay fuses the file in
            # record order: one source's 200-s record ahead of another's would make the
            # fusion give up waiting for it (stale) and bin those rows differently.
            self._emit_all()
        self.tick()

    def write_event(self, event: SourceEvent) -> None:
        """Write an event, after every block queued before it."""
        self._check_open()
        self._emit_all()
        body = {
            "k": "e",
            "s": str(event.source),
            "y": str(event.kind),
            "t": float(event.t),
            "x": str(event.text),
            "d": dict(event.data),
        }
        try:
            record = frame(body)
        except (TypeError, ValueError) as exc:
            raise LogFileError(
                f"event {event.kind!r} from {event.source!r} cannot be recorded: {exc}"
            ) from None
        self._write(record)
        self.tick()

    def tick(self) -> None:
        """Flush if ``flush_interval_s`` has passed, fsync if ``fsync_interval_s`` has.

        The engine calls this every tick, idle or not, so a quiet source still has
        its last samples on disk within the promised time.
        """
        if self._closed:
            return
        now = self._clock()
        if now - self._last_flush_at >= self.flush_interval_s:
            self._emit_all()
            self._last_flush_at = now
            want_fsync = now - self._last_fsync_at >= self.fsync_interval_s
            self._sync(fsync=want_fsync)
            if want_fsync:
                self._last_fsync_at = now

    def flush(self) -> None:
        """Write every queued block and hand the bytes to the OS now."""
        self._check_open()
        self._emit_all()
        self._sync(fsync=False)
        self._last_flush_at = self._clock()

    def close(self) -> None:
        """Flush, fsync and close. Safe to call twice."""
        if self._closed:
            return
        try:
            self._emit_all()
            self._sync(fsync=True)
        finally:
            self._closed = True
            self._file.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LogFileError(f"recording {self.path} is already closed")

    def _schema_id(self, source: str, names: tuple[str, ...]) -> int:
        key = (source, names)
        schema = self._schemas.get(key)
        if schema is None:
            schema = len(self._schemas)
            self._schemas[key] = schema
            self._schema_records.append(
                frame({"k": "s", "i": schema, "s": source, "c": list(names)})
            )
            self._blocks_since_schema.append(0)
            self._write(self._schema_records[schema])
        return schema

    def _emit_all(self) -> None:
        for schema in list(self._pending):
            self._emit(schema)
        self._pending_t0 = math.inf

    def _emit(self, schema: int) -> None:
        """Write one schema's queued samples as records of bounded size."""
        pending = self._pending.pop(schema, None)
        if pending is None:
            return
        t = pending.times[0] if len(pending.times) == 1 else np.concatenate(pending.times)
        cols = pending.cols[0] if len(pending.cols) == 1 else np.concatenate(pending.cols, axis=1)
        per_record = max(1, MAX_RECORD_PAYLOAD_BYTES // (8 + 4 * cols.shape[0]))
        for start in range(0, t.size, per_record):
            part_t = np.ascontiguousarray(t[start : start + per_record])
            part_c = np.ascontiguousarray(cols[:, start : start + per_record])
            payload, deflated = encode_block(part_t, part_c)
            body = {"k": "b", "i": schema, "n": int(part_t.size), "z": int(deflated), "p": payload}
            if self._blocks_since_schema[schema] >= SCHEMA_REPEAT_BLOCKS:
                self._write(self._schema_records[schema])
                self._blocks_since_schema[schema] = 0
            self._write(frame(body))
            self._blocks_since_schema[schema] += 1

    def _write(self, record: bytes) -> None:
        try:
            self._file.write(record)
        except OSError as exc:
            raise LogFileError(
                f"cannot write recording {self.path}: {exc.strerror or exc}"
            ) from None
        self._bytes_written += len(record)
        self._unflushed = True
        self._unsynced = True

    def _sync(self, *, fsync: bool) -> None:
        try:
            if self._unflushed:
                self._file.flush()
                self._unflushed = False
            if fsync and self._unsynced:
                os.fsync(self._file.fileno())
                self._unsynced = False
        except OSError as exc:
            raise LogFileError(
                f"cannot write recording {self.path}: {exc.strerror or exc}"
            ) from None
