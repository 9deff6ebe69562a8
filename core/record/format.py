"""Definitions shared by the .dynolog writer and reader: header, errors, byte codec.

The format as a whole is described in :mod:`core.record` (the module to import).
This file holds the byte-level decisions.

Frame: every record is one msgpack ``bin`` object whose content is the CRC-32 of
the body (4 bytes, little-endian) followed by the body, itself a msgpack map with
one-letter keys. The file is therefore a plain msgpack stream any msgpack reader
can walk, but the reader parses the ``bin`` length itself (:func:`frame_length`)
so it can refuse an absurd length before buffering a single byte of it
(``msgpack.Unpacker`` only checks ``max_bin_len`` once the data has arrived), and
the CRC catches flipped bytes inside numeric payloads that no type check could.

Block payload: ``n`` timestamps then ``c`` columns, little-endian, in one buffer:

* times: the float64 bit patterns as int64, first value then first differences
  (wrapping int64 arithmetic, so any float64, NaN and -0.0 included, round-trips
  bit-exactly). Regular sampling gives near-constant differences.
* columns: each column as float32 bit patterns (uint32), column-major, first value
  then wrapping differences along time. Slowly varying sensor values give
  differences whose high bytes repeat.
* the whole buffer goes through raw deflate (zlib, level 1, no zlib header: the
  frame CRC already guards it) and is stored compressed only when that is smaller
  (flag ``z``): a block of a few samples usually is not worth it.

Byte shuffling was measured and rejected: on quantised sensor values it made the
deflate output 10-20 % larger than plain differences.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

MAGIC = "DYNOLOG"
FORMAT_VERSION = 1
MAX_CHANNELS_PER_BLOCK = 1024
"""More columns than this in one block is refused by the writer and the reader."""
MAX_BLOCK_PAYLOAD_BYTES = 4 << 20
"""Largest decoded block payload: the writer splits records below it, the reader refuses
more (a few kB of deflate could otherwise claim millions of samples in one block)."""
MAX_SOURCES = 64
HEADER_NUMBERS: dict[str, tuple[float, float, bool]] = {
    "stoich": (5.0, 20.0, False),
    "lambda_delay_ms": (0.0, 2000.0, False),
    "hit_target": (1, 100000, True),
}
"""Header metadata a replay applies to its config: (lowest, highest, whole number)."""

BIN8, BIN16, BIN32 = 0xC4, 0xC5, 0xC6
CRC_BYTES = 4
DEFLATE_LEVEL = 1
_WBITS_RAW = -15

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]


class LogFileError(ValueError):
    """A recording cannot be written or read. The message is one line for people."""


class CodecError(ValueError):
    """Bytes that do not decode as the format says; the message names what is wrong."""


@dataclass(slots=True)
class LogHeader:
    """Record 0 of every .dynolog: what was recorded, by what, when."""

    created_at: float
    """Wall-clock start, Unix seconds (UTC)."""
    t0: float = 0.0
    """Source-clock time at ``created_at`` (maps block times to wall time)."""
    vehicle: str = ""
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Source name -> {"uri": str, "channels": {channel: unit}}."""
    axes: dict[str, list[float]] | None = None
    """{"rpm": [...], "map_kpa": [...]} of the table the session binned into."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free metadata (importer name, original file, lambda delay, stoich, ...)."""
    format_version: int = FORMAT_VERSION

    def to_record(self) -> dict[str, Any]:
        """The header as the body of record 0."""
        return {
            "k": "h",
            "magic": MAGIC,
            "v": int(self.format_version),
            "created_at": float(self.created_at),
            "t0": float(self.t0),
            "vehicle": self.vehicle,
            "sources": self.sources,
            "axes": self.axes,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class Recovery:
    """How much of a recording the reader got through, and why it stopped."""

    path: str
    records: int
    blocks: int
    events: int
    samples: int
    duration_s: float
    """Span of the block times read (last minus first), 0 when none."""
    bytes_read: int
    """Bytes of whole, valid records (header included)."""
    file_size: int
    truncated: bool
    """The file ends inside a record (a write cut short by a crash or kill)."""
    error: str = ""
    """Why reading stopped early (a read error); empty when it did not."""
    skipped_bytes: int = 0
    """Bytes of damaged records the reader skipped to resynchronise on the next good one."""
    skips: int = 0
    """How many damaged stretches were skipped."""
    first_skip: str = ""
    """Where the first skipped stretch starts and why, e.g. 'byte 812: record checksum mismatch'."""

    @property
    def complete(self) -> bool:
        return self.bytes_read == self.file_size and not self.error and not self.skips

    @property
    def message(self) -> str:
        head = (
            f"recovered {self.blocks} blocks ({self.samples} samples, "
            f"{self.duration_s:.1f} s) and {self.events} events"
        )
        ignored = self.file_size - self.bytes_read - self.skipped_bytes
        if self.skips:
            places = "1 place" if self.skips == 1 else f"{self.skips} places"
            head = (
                f"{head}; skipped {self.skipped_bytes} damaged bytes in {places} "
                f"(first at {self.first_skip})"
            )
        if self.error:
            return (
                f"{head}; stopped at byte {self.bytes_read} of {self.file_size}: "
                f"{self.error}; {ignored} bytes ignored"
            )
        if self.truncated:
            return f"{head}; {ignored} bytes of truncated tail ignored"
        return head if self.skips else f"{head}; file complete"


def frame(body: dict[str, Any]) -> bytes:
    """One record: msgpack ``bin`` of CRC-32 + packed body."""
    packed = msgpack.packb(body, use_bin_type=True, default=_to_plain)
    crc = zlib.crc32(packed).to_bytes(CRC_BYTES, "little")
    out: bytes = msgpack.packb(crc + packed, use_bin_type=True)
    return out


def _to_plain(obj: object) -> object:
    """Turn numpy scalars and arrays in event data / metadata into msgpack-able values."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"cannot record a value of type {type(obj).__name__}")


def frame_length(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(header bytes, content bytes) of the frame starting at ``pos``; ``None`` if cut short.

    Raises:
        CodecError: the byte at ``pos`` does not start a ``bin`` object.
    """
    avail = len(buf) - pos
    if avail < 1:
        return None
    lead = buf[pos]
    if lead == BIN8:
        return (2, buf[pos + 1]) if avail >= 2 else None
    if lead == BIN16:
        return (3, struct.unpack_from(">H", buf, pos + 1)[0]) if avail >= 3 else None
    if lead == BIN32:
        return (5, struct.unpack_from(">I", buf, pos + 1)[0]) if avail >= 5 else None
    raise CodecError(f"byte 0x{lead:02x} does not start a record")


def unframe(content: bytes) -> dict[str, Any]:
    """The body map of a frame's content, after checking its CRC and shape."""
    if len(content) < CRC_BYTES + 1:
        raise CodecError("record too short to hold a checksum and a body")
    body = content[CRC_BYTES:]
    if zlib.crc32(body).to_bytes(CRC_BYTES, "little") != content[:CRC_BYTES]:
        raise CodecError("record checksum mismatch")
    limit = len(body)
    try:
        obj = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=limit,
            max_map_len=limit,
            max_ext_len=limit,
        )
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError(f"record body is not valid msgpack ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("k"), str):
        raise CodecError("record body is not a map with a kind")
    return obj


def encode_block(t: F64, cols: F32) -> tuple[bytes, bool]:
    """Payload bytes for times ``t`` [n] and float32 columns ``cols`` [c, n]; (bytes, deflated)."""
    t_bits = t.view(np.int64)
    t_delta = np.empty_like(t_bits)
    if t_bits.size:
        t_delta[0] = t_bits[0]
        np.subtract(t_bits[1:], t_bits[:-1], out=t_delta[1:])
    c_bits = cols.view(np.uint32)
    c_delta = np.empty_like(c_bits)
    if c_bits.size:
        c_delta[:, 0] = c_bits[:, 0]
        np.subtract(c_bits[:, 1:], c_bits[:, :-1], out=c_delta[:, 1:])
    raw = t_delta.astype("<i8", copy=False).tobytes() + c_delta.astype("<u4", copy=False).tobytes()
    packer = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, _WBITS_RAW)
    small = packer.compress(raw) + packer.flush()
    if len(small) < len(raw):
        return small, True
    return raw, False


def block_payload_size(n: int, n_cols: int) -> int:
    """Decoded payload bytes of a block of ``n`` samples and ``n_cols`` columns."""
    return n * (8 + 4 * n_cols)


def decode_block(payload: bytes, deflated: bool, n: int, n_cols: int) -> tuple[F64, F64]:
    """Times [n] float64 and columns [n_cols, n] as float64 from a block payload.

    The caller has checked that ``block_payload_size(n, n_cols)`` is within its limit;
    decompression is capped at that size so a crafted payload cannot balloon.
    """
    expected = block_payload_size(n, n_cols)
    if deflated:
        unpacker = zlib.decompressobj(_WBITS_RAW)
        try:
            raw = unpacker.decompress(payload, expected)
        except zlib.error as exc:
            raise CodecError(f"block payload does not inflate ({exc})") from None
        if unpacker.unconsumed_tail or not unpacker.eof:
            raise CodecError(f"block payload inflates to more or less than {expected} bytes")
    else:
        raw = payload
    if len(raw) != expected:
        raise CodecError(
            f"block payload holds {len(raw)} bytes, expected {expected} for "
            f"{n} samples x {n_cols} channels"
        )
    t_delta = np.frombuffer(raw, dtype="<i8", count=n)
    t = np.cumsum(t_delta, dtype=np.int64).view(np.float64)
    c_delta = np.frombuffer(raw, dtype="<u4", count=n * n_cols, offset=8 * n).reshape(n_cols, n)
    cols = np.cumsum(c_delta, axis=1, dtype=np.uint32).view(np.float32).astype(np.float64)
    return t, cols
