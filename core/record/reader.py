"""LogReader: streams a .dynolog with bounded memory and resynchronises after damage.

The reader trusts nothing: every frame length is checked against
``max_record_bytes`` before any of it is buffered, every record's CRC and every
field's type and length are checked, and decompression is capped at the size the
record says it holds (never more than :data:`MAX_BLOCK_PAYLOAD_BYTES`). Never an
exception once the header is read: what goes wrong is reported in
:attr:`LogReader.recovery`.

Damage costs the damaged record only. A well-framed record whose content is bad
(a block that does not decode, a field of the wrong type) is skipped by its own
length. When the framing itself is broken (a flipped byte in a length, a checksum
mismatch, bytes that start no record) the reader scans forward from the byte after
the bad record's start for the next offset where a whole record parses *and*
passes its CRC-32, and resumes there; a false match needs a 1-in-2^32 checksum
collision. A record cut short by the end of the file (a crash mid-write) with no
good record after it is the normal truncated tail, not damage.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from core.frames import Block
from core.record.format import (
    CRC_BYTES,
    FORMAT_VERSION,
    MAGIC,
    MAX_BLOCK_PAYLOAD_BYTES,
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
from core.record.header import field_of, float_of, header_from
from core.source import SourceEvent

MAX_SCHEMAS = 1 << 16
"""Distinct (source, channel set) pairs a file may declare; bounds reader memory."""
RESYNC_MAX_RECORD = MAX_BLOCK_PAYLOAD_BYTES + (64 << 10)
"""Largest record a resync scan will try: what the writer can produce, plus framing."""
_SCAN_WINDOW = 1 << 16
_LEAD = re.compile(b"[\xc4-\xc6]")
_MAP_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
"""First byte of a msgpack map: every record body is one."""


class _Truncated(Exception):
    """The file ends inside a record."""


class _ReadError(Exception):
    """The operating system failed a read: reading stops (scanning on would not help)."""


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
        self._skipped_bytes = 0
        self._skips = 0
        self._first_skip = ""
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
            bytes_read=self._consumed - self._skipped_bytes,
            file_size=self._file_size,
            truncated=self._truncated,
            error=self._error,
            skipped_bytes=self._skipped_bytes,
            skips=self._skips,
            first_skip=self._first_skip,
        )

    def __iter__(self) -> Iterator[Block | SourceEvent]:
        """Records after the header, once: iterating again resumes, never re-reads."""
        while not self._done:
            start = self._consumed
            try:
                body = self._next_body()
            except _Truncated:
                if not self._resync(start, "record cut short"):
                    self._truncated = self._done = True
                    return
                continue
            except _ReadError as exc:
                self._error = str(exc)
                self._done = True
                return
            except CodecError as exc:
                if not self._resync(start, str(exc)):
                    self._done = True
                    return
                continue
            if body is None:
                self._done = True
                return
            try:
                item = self._decode(body)
            except CodecError as exc:  # well framed, bad content: skip this record only
                self._note_skip(start, self._consumed - start, str(exc))
                continue
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
        except _ReadError as exc:
            raise LogFileError(f"{self.path}: {exc}") from None
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
            header = header_from(body, version)
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

    def _note_skip(self, start: int, length: int, why: str) -> None:
        self._skipped_bytes += length
        self._skips += 1
        if not self._first_skip:
            self._first_skip = f"byte {start}: {why}"

    def _resync(self, start: int, why: str) -> bool:
        """Skip to the next whole, checksummed record after ``start``; False if none.

        With no good record after ``start``, a record cut short by the end of the
        file is the truncated tail (False, nothing counted as skipped); any other
        damage there counts as skipped up to the end of the file.
        """
        found = self._scan(start + 1)
        if found is None:
            if why != "record cut short":
                self._note_skip(start, self._file_size - start, why)
                self._consumed = self._file_size
            return False
        self._note_skip(start, found - start, why)
        self._seek(found)
        return True

    def _seek(self, offset: int) -> None:
        self._file.seek(offset)
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._consumed = offset

    def _scan(self, offset: int) -> int | None:
        """Offset of the first whole record at or after ``offset`` that passes its CRC."""
        limit = min(self.max_record_bytes, RESYNC_MAX_RECORD)
        size = self._file_size
        while offset < size:
            window = self._pread(offset, _SCAN_WINDOW + 4)
            if not window:
                return None
            scan_end = min(len(window), _SCAN_WINDOW)
            for match in _LEAD.finditer(window, 0, scan_end):
                at = offset + match.start()
                if self._record_at(at, window, match.start(), limit):
                    return at
            offset += scan_end
        return None

    def _record_at(self, at: int, window: bytes, i: int, limit: int) -> bool:
        if len(window) - i < 5:
            window, i = self._pread(at, 5), 0
        try:
            found = frame_length(window, i)
        except CodecError:
            return False
        if found is None:
            return False
        head, length = found
        if not CRC_BYTES < length <= limit or at + head + length > self._file_size:
            return False
        first = window[i + head : i + head + CRC_BYTES + 1]
        if len(first) == CRC_BYTES + 1 and first[CRC_BYTES] not in _MAP_START:
            return False
        content = self._pread(at + head, length)
        if len(content) != length:
            return False
        if zlib.crc32(content[CRC_BYTES:]).to_bytes(CRC_BYTES, "little") != content[:CRC_BYTES]:
            return False
        try:
            unframe(content)
        except CodecError:
            return False
        return True

    def _pread(self, offset: int, length: int) -> bytes:
        try:
            self._file.seek(offset)
            return self._file.read(length)
        except OSError as exc:
            raise _ReadError(f"read error ({exc.strerror or exc})") from None

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
            raise _ReadError(f"read error ({exc.strerror or exc})") from None
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
                source=field_of(body, "s", str),
                kind=field_of(body, "y", str),
                t=float_of(body, "t"),
                text=field_of(body, "x", str),
                data=field_of(body, "d", dict),
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
        schema = field_of(body, "i", int)
        source = field_of(body, "s", str)
        names = field_of(body, "c", list)
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
        schema = field_of(body, "i", int)
        n = field_of(body, "n", int)
        deflated = field_of(body, "z", int)
        payload = field_of(body, "p", bytes)
        if schema not in self._schemas:
            raise CodecError(f"block refers to undeclared schema {schema}")
        source, names = self._schemas[schema]
        if n < 1 or deflated not in (0, 1):
            raise CodecError(f"block record with sample count {n} / flag {deflated}")
        decoded = block_payload_size(n, len(names))
        if decoded > min(self.max_record_bytes, MAX_BLOCK_PAYLOAD_BYTES):
            raise CodecError(
                f"block of {n} samples x {len(names)} channels would decode to {decoded} bytes, "
                f"more than the {min(self.max_record_bytes, MAX_BLOCK_PAYLOAD_BYTES)}-byte limit"
            )
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
