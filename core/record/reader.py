"""LogReader: streams a .dynolog with bounded memory and stops cleanly at damage.

The reader trusts nothing: every frame length is checked against
``max_record_bytes`` before any of it is buffered, every record's CRC and every
field's type and length are checked, and decompression is capped at the size the
record says it holds. The first problem ends the iteration (never an exception
once the header is read) and is reported in :attr:`LogReader.recovery`, because a
recording cut short by a crash is normal on a dyno and its prefix is still good.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from core.frames import Block
from core.record.format import (
    FORMAT_VERSION,
    MAGIC,
    MAX_CHANNELS_PER_BLOCK,
    CodecError,
    LogFileError,
    LogHeader,
    Recovery,
    block_payload_size,
    decode_block,
    frame_length,
    unframe,
)
from core.source import SourceEvent

MAX_SCHEMAS = 1 << 16
"""Distinct (source, channel set) pairs a file may declare; bounds reader memory."""


class _Truncated(Exception):
    """The file ends inside a record."""


class LogReader:
    """Reads a .dynolog: ``header`` on open, then ``Block | SourceEvent`` in file order.

    Args:
        path: The recording.
        max_record_bytes: Largest record (and largest decoded block payload) accepted.
        chunk_bytes: Read size; memory stays within about one record plus one chunk.

    Raises:
        LogFileError: missing file, directory, empty file, not a .dynolog, unsupported
            version or a damaged header; one line naming the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_record_bytes: int = 64 << 20,
        chunk_bytes: int = 1 << 20,
    ) -> None:
        self.path = os.fspath(path)
        self.max_record_bytes = max_record_bytes
        self.chunk_bytes = chunk_bytes
        self._file = _open(self.path)
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._consumed = 0
        self._schemas: dict[int, tuple[str, tuple[str, ...]]] = {}
        self._records = self._blocks = self._events = self._samples = 0
        self._t_first = math.inf
        self._t_last = -math.inf
        self._truncated = False
        self._error = ""
        self._done = False
        try:
            self._file_size = os.fstat(self._file.fileno()).st_size
            self.header = self._read_header()
        except BaseException:
            self._file.close()
            raise

    @property
    def recovery(self) -> Recovery:
        """What has been read so far and, once iteration ended, why it ended."""
        span = self._t_last - self._t_first
        return Recovery(
            path=self.path,
            records=self._records,
            blocks=self._blocks,
            events=self._events,
            samples=self._samples,
            duration_s=span if math.isfinite(span) and span > 0 else 0.0,
            bytes_read=self._consumed,
            file_size=self._file_size,
            truncated=self._truncated,
            error=self._error,
        )

    def __iter__(self) -> Iterator[Block | SourceEvent]:
        """Records after the header, once: iterating again resumes, never re-reads."""
        while not self._done:
            start = self._consumed
            try:
                body = self._next_body()
                if body is None:
                    self._done = True
                    return
                item = self._decode(body)
            except _Truncated:
                self._truncated = self._done = True
                return
            except CodecError as exc:
                self._consumed = start
                self._error = str(exc)
                self._done = True
                return
            self._records += 1
            if item is not None:
                yield item

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_header(self) -> LogHeader:
        if self._file_size == 0:
            raise LogFileError(f"{self.path} is empty, not a .dynolog recording")
        not_ours = f"{self.path} is not a .dynolog recording"
        try:
            body = self._next_body()
        except _Truncated:
            raise LogFileError(f"{self.path}: the recording header is cut short") from None
        except CodecError as exc:
            raise LogFileError(f"{not_ours} ({exc})") from None
        if body is None:
            raise LogFileError(f"{self.path}: the recording header is cut short")
        if body.get("k") != "h" or body.get("magic") != MAGIC:
            raise LogFileError(f"{not_ours} (wrong magic)")
        version = body.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise LogFileError(f"{self.path}: the recording header has no format version")
        if version > FORMAT_VERSION or version < 1:
            raise LogFileError(
                f"{self.path} uses .dynolog format version {version}; this DynoAI reads "
                f"version {FORMAT_VERSION}, upgrade it to read this file"
            )
        try:
            header = _header_from(body, version)
        except CodecError as exc:
            raise LogFileError(f"{self.path}: damaged recording header ({exc})") from None
        self._records = 1
        return header

    def _next_body(self) -> dict[str, Any] | None:
        """The next record's body, ``None`` at a clean end of file."""
        found = frame_length(self._buf, self._pos)
        while found is None:
            if not self._fill(5):
                if self._pos < len(self._buf):
                    raise _Truncated
                return None
            found = frame_length(self._buf, self._pos)
        head, size = found
        if size > self.max_record_bytes:
            raise CodecError(
                f"a record claims {size} bytes, more than the {self.max_record_bytes}-byte limit"
            )
        while len(self._buf) - self._pos < head + size:
            if not self._fill(head + size):
                raise _Truncated
        start = self._pos + head
        content = self._buf[start : start + size]
        self._pos = start + size
        body = unframe(content)
        self._consumed += head + size
        return body

    def _fill(self, need: int) -> bool:
        """Read more so ``need`` bytes past ``_pos`` may be buffered; False at end of file."""
        if self._eof:
            return False
        want = max(self.chunk_bytes, need - (len(self._buf) - self._pos))
        # Never ask for more than the file holds: a length field claiming tens of MB
        # near the end of a short file must not make ``read`` allocate them.
        remaining = self._file_size - self._file.tell()
        if remaining > 0:
            want = min(want, remaining)
        try:
            more = self._file.read(want)
        except OSError as exc:
            raise CodecError(f"read error ({exc.strerror or exc})") from None
        if not more:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        return True

    def _decode(self, body: dict[str, Any]) -> Block | SourceEvent | None:
        kind = body["k"]
        if kind == "b":
            return self._decode_block(body)
        if kind == "e":
            event = SourceEvent(
                source=_field(body, "s", str),
                kind=_field(body, "y", str),
                t=_float(body, "t"),
                text=_field(body, "x", str),
                data=_field(body, "d", dict),
            )
            self._events += 1
            return event
        if kind == "s":
            self._add_schema(body)
            return None
        if kind == "h":
            raise CodecError("a second header record")
        return None  # a record kind from a later minor revision: skip it

    def _add_schema(self, body: dict[str, Any]) -> None:
        schema = _field(body, "i", int)
        source = _field(body, "s", str)
        names = _field(body, "c", list)
        if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise CodecError("schema record with bad channel names")
        if len(names) > MAX_CHANNELS_PER_BLOCK:
            raise CodecError(f"schema record with {len(names)} channels")
        entry = (source, tuple(names))
        if self._schemas.get(schema, entry) != entry:
            raise CodecError(f"schema {schema} redefined")
        if schema not in self._schemas and len(self._schemas) >= MAX_SCHEMAS:
            raise CodecError(f"more than {MAX_SCHEMAS} schemas")
        self._schemas[schema] = entry

    def _decode_block(self, body: dict[str, Any]) -> Block:
        schema = _field(body, "i", int)
        n = _field(body, "n", int)
        deflated = _field(body, "z", int)
        payload = _field(body, "p", bytes)
        if schema not in self._schemas:
            raise CodecError(f"block refers to undeclared schema {schema}")
        source, names = self._schemas[schema]
        if n < 1 or deflated not in (0, 1):
            raise CodecError(f"block record with sample count {n} / flag {deflated}")
        if block_payload_size(n, len(names)) > self.max_record_bytes:
            raise CodecError(f"block of {n} samples is larger than the record limit")
        t, cols = decode_block(payload, bool(deflated), n, len(names))
        block = Block(source, t, dict(zip(names, cols, strict=True)))
        self._blocks += 1
        self._samples += n
        if math.isfinite(t[0]):
            self._t_first = min(self._t_first, float(t[0]))
        if math.isfinite(t[-1]):
            self._t_last = max(self._t_last, float(t[-1]))
        return block


def read_log(
    path: str | os.PathLike[str],
) -> tuple[LogHeader, list[Block], list[SourceEvent], Recovery]:
    """Read a whole recording into memory (imports, tests, small logs)."""
    blocks: list[Block] = []
    events: list[SourceEvent] = []
    with LogReader(path) as reader:
        for item in reader:
            if isinstance(item, Block):
                blocks.append(item)
            else:
                events.append(item)
        return reader.header, blocks, events, reader.recovery


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise LogFileError(f"{path} does not exist; check the recording's path") from None
    except IsADirectoryError:
        raise LogFileError(f"{path} is a directory, not a .dynolog recording") from None
    except PermissionError:
        raise LogFileError(f"{path}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise LogFileError(f"cannot open recording {path}: {exc.strerror or exc}") from None


def _field(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CodecError(f"{body.get('k')!r} record field {key!r} is not {kind.__name__}")
    return value


def _float(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise CodecError(f"{body.get('k')!r} record field {key!r} is not a number")
    return float(value)


def _header_from(body: dict[str, Any], version: int) -> LogHeader:
    sources = _field(body, "sources", dict)
    for name, info in sources.items():
        if not isinstance(info, dict):
            raise CodecError(f"source {name!r} entry is not a map")
    axes = body.get("axes")
    if axes is not None:
        if not isinstance(axes, dict):
            raise CodecError("axes is not a map")
        for name, values in axes.items():
            if not isinstance(values, list) or not all(
                isinstance(v, float | int) and not isinstance(v, bool) for v in values
            ):
                raise CodecError(f"axis {name!r} is not a list of numbers")
        axes = {name: [float(v) for v in values] for name, values in axes.items()}
    return LogHeader(
        created_at=_float(body, "created_at"),
        t0=_float(body, "t0"),
        vehicle=_field(body, "vehicle", str),
        sources=sources,
        axes=axes,
        metadata=_field(body, "metadata", dict),
        format_version=version,
    )
