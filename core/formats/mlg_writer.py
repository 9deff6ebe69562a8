"""A small MLVLG (v1 / v2) writer: exact byte layouts for tests, benchmarks and fixtures.

The reader in :mod:`core.formats.mlg` is checked against real logs; this writer
produces files with the same layout from chosen values, so tests can build the
cases real logs rarely contain (v2 descriptors, bit fields, bad checksums,
timestamp wraps, truncation) and the benchmark can build a large log quickly.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.formats.mlg import _BIT_DTYPES, _DESCRIPTOR_BYTES, _HEADER_BYTES, _SCALAR_DTYPES, MAGIC
from core.formats.mlg_resync import BLOCK_HEADER_BYTES, MARKER_TEXT_BYTES


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field to write. ``type_id`` uses the MLG codes (0 U08 ... 7 F32, 10-12 bits)."""

    name: str
    units: str
    type_id: int
    scale: float = 1.0
    transform: float = 0.0
    digits: int = 0
    category: str = ""

    @property
    def dtype(self) -> str:
        return _SCALAR_DTYPES.get(self.type_id) or _BIT_DTYPES[self.type_id]


def _cstr(text: str, size: int) -> bytes:
    raw = text.encode("latin-1")[: size - 1]
    return raw + b"\x00" * (size - len(raw))


def _descriptor(f: FieldSpec, version: int) -> bytes:
    head = bytes([f.type_id]) + _cstr(f.name, 34) + _cstr(f.units, 10) + bytes([0])
    if f.type_id in _BIT_DTYPES:
        body = struct.pack(">IB", 0, 8) + b"\x00" * 4
    else:
        body = struct.pack(">ffb", f.scale, f.transform, f.digits)
    out = head + body
    if version == 2:
        out += _cstr(f.category, 34)
    assert len(out) == _DESCRIPTOR_BYTES[version]
    return out


def build_mlg(
    fields: Sequence[FieldSpec],
    values: npt.ArrayLike,
    stamps: npt.ArrayLike,
    *,
    version: int = 1,
    started_at: int = 0,
    info: str = "",
    markers: Sequence[tuple[int, int, str]] = (),
) -> bytes:
    """The bytes of an MLG file.

    Args:
        fields: Field descriptors in record order.
        values: Display values, shape (records, fields); raw = value / scale - transform.
        stamps: The u16 block timestamps (10 us units, already wrapped) per record.
        version: 1 or 2.
        started_at: Unix start time for the header (0 = unknown, as rusEFI writes).
        info: Info text lines (written quoted, one per line).
        markers: (records before it, u16 stamp, text) for each marker block.

    The rolling counter runs over records and markers alike, as TunerStudio
    writes it (tests/data/markers.mlg).
    """
    vals = np.asarray(values, dtype=np.float64).reshape(-1, len(fields))
    n = vals.shape[0]
    names = ["block_type", "counter", "stamp", *[f"f{i}" for i in range(len(fields))], "crc"]
    formats = ["u1", "u1", ">u2", *[f.dtype for f in fields], "u1"]
    rec = np.zeros(n, dtype=np.dtype({"names": names, "formats": formats}))
    marks = sorted(markers, key=lambda m: m[0])
    befores = np.array([m[0] for m in marks], dtype=np.int64)
    rec["counter"] = (np.arange(n) + np.searchsorted(befores, np.arange(n), side="right")) % 256
    rec["stamp"] = np.asarray(stamps, dtype=np.int64) % 65536
    for i, f in enumerate(fields):
        raw = vals[:, i] if f.type_id in _BIT_DTYPES else vals[:, i] / f.scale - f.transform
        if np.dtype(f.dtype).kind in "iu":
            raw = np.rint(raw)
        rec[f"f{i}"] = raw
    as_bytes = rec.view(np.uint8).reshape(n, -1)
    as_bytes[:, -1] = as_bytes[:, BLOCK_HEADER_BYTES:-1].sum(axis=1, dtype=np.uint32) & 0xFF

    head_len = _HEADER_BYTES[version]
    desc = b"".join(_descriptor(f, version) for f in fields)
    info_bytes = "".join(f'"{line}"\n' for line in info.splitlines()).encode("latin-1") + b"\x00"
    info_start = head_len + len(desc)
    data_start = info_start + len(info_bytes)
    record_bytes = as_bytes.shape[1] - BLOCK_HEADER_BYTES - 1 if n else _record_size(fields)
    fmt = ">IHIHH" if version == 1 else ">IIIHH"
    header = MAGIC + struct.pack(">H", version)
    header += struct.pack(fmt, started_at, info_start, data_start, record_bytes, len(fields))
    parts = [header, desc, info_bytes]
    done = 0
    for j, (before, stamp, text) in enumerate(marks):
        parts.append(as_bytes[done:before].tobytes())
        parts.append(bytes([1, (before + j) % 256]) + struct.pack(">H", stamp % 65536))
        parts.append(_cstr(text, MARKER_TEXT_BYTES))
        done = before
    parts.append(as_bytes[done:].tobytes())
    return b"".join(parts)


def _record_size(fields: Sequence[FieldSpec]) -> int:
    return sum(np.dtype(f.dtype).itemsize for f in fields)
