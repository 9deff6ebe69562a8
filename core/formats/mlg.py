r"""MLG binary logs (MLVLG format versions 1 and 2: TunerStudio, rusEFI, Speeduino).

Layout (all big-endian), from EFI Analytics' "MLG Binary LogFormat" 1.0 / 2.0 and
checked against real files (tests/data/*.mlg) and the rusEFI writer:

* Header: ``"MLVLG\0"``, u16 version, u32 Unix start time (0 when unknown),
  info-data start (u16 in v1, u32 in v2), u32 data start, u16 record length,
  u16 field count. 22 bytes in v1, 24 in v2.
* Field descriptors, 55 bytes (v1) or 89 bytes (v2): u8 type, name[34],
  units[10], u8 display style, f32 scale, f32 transform, s8 digits, and in v2 a
  category[34]. Display value = (raw + transform) * scale. Bit-field types
  (10-12, written 0x10-0x12 by some tools) carry the raw integer instead; their
  bytes 46.. hold a bit-name index and bit count rather than scale/transform.
* Info text (quoted lines) from the info start up to the data start.
* Blocks: u8 type, u8 rolling counter, u16 timestamp in 10 us units (wraps every
  0.65536 s). Type 0 is a record followed by a u8 checksum (sum of the record
  bytes mod 256); type 1 is a marker with a 50-byte message.

Records have a fixed size, so the data area is decoded with one numpy structured
dtype per run of records; :mod:`core.formats.mlg_scan` finds the runs, and the
way back to them after damage.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.formats.mlg_resync import BLOCK_HEADER_BYTES
from core.formats.mlg_scan import BlockScan, DamagedSpan, scan_blocks
from core.formats.mlg_time import TICK_S, damaged_stamps, recount_long_gaps, restore_lost_wraps
from core.formats.model import LogImportError, RawLog

MAGIC = b"MLVLG\x00"
_SPANS_LISTED = 5
"""Damaged places named one by one; the rest are counted."""

_SCALAR_DTYPES = {0: "u1", 1: "i1", 2: ">u2", 3: ">i2", 4: ">u4", 5: ">i4", 6: ">i8", 7: ">f4"}
_BIT_DTYPES = {10: "u1", 11: ">u2", 12: ">u4", 16: "u1", 17: ">u2", 18: ">u4"}
_DESCRIPTOR_BYTES = {1: 55, 2: 89}
_HEADER_BYTES = {1: 22, 2: 24}


@dataclass(frozen=True, slots=True)
class MlgField:
    """One field descriptor."""

    name: str
    units: str
    type_id: int
    dtype: str
    display_style: int
    scale: float
    transform: float
    digits: int
    category: str = ""

    @property
    def is_bits(self) -> bool:
        return self.type_id in _BIT_DTYPES


@dataclass(frozen=True, slots=True)
class MlgHeader:
    """The fixed header of a MegaLogViewer binary log (format version, start time, offsets)."""

    version: int
    started_at: int
    info_start: int
    data_start: int
    record_bytes: int
    fields: tuple[MlgField, ...]
    info: str


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _f32_intent(value: float) -> float:
    """The decimal a float32 was written from (0.1f -> 0.1, not 0.10000000149)."""
    return float(str(np.float32(value))) if np.isfinite(value) else 0.0


def parse_header(buf: bytes, name: str) -> MlgHeader:
    """Read and check the header, field descriptors and info text."""
    if not buf.startswith(MAGIC):
        raise LogImportError(f"{name}: not an MLG log (no MLVLG signature)")
    if len(buf) < 8:
        raise LogImportError(f"{name}: truncated MLG header ({len(buf)} bytes)")
    (version,) = struct.unpack_from(">H", buf, 6)
    if version not in _HEADER_BYTES:
        raise LogImportError(f"{name}: MLG format version {version} is not supported (1 or 2)")
    head_len = _HEADER_BYTES[version]
    if len(buf) < head_len:
        raise LogImportError(f"{name}: truncated MLG header ({len(buf)} of {head_len} bytes)")
    info_fmt = ">IHIHH" if version == 1 else ">IIIHH"
    started, info_start, data_start, record_bytes, n_fields = struct.unpack_from(info_fmt, buf, 8)
    desc_len = _DESCRIPTOR_BYTES[version]
    fields_end = head_len + n_fields * desc_len
    if len(buf) < fields_end or len(buf) < data_start:
        raise LogImportError(
            f"{name}: truncated MLG file ({len(buf)} bytes, header needs "
            f"{max(fields_end, data_start)})"
        )
    if data_start < fields_end:
        raise LogImportError(f"{name}: corrupt MLG header (data starts inside the field list)")
    fields = []
    for i in range(n_fields):
        d = buf[head_len + i * desc_len : head_len + (i + 1) * desc_len]
        type_id = d[0]
        fname, units = _text(d[1:35]), _text(d[35:45])
        if type_id in _SCALAR_DTYPES:
            scale, transform = struct.unpack_from(">ff", d, 46)
            (digits,) = struct.unpack_from(">b", d, 54)
            dtype = _SCALAR_DTYPES[type_id]
            scale, transform = _f32_intent(scale), _f32_intent(transform)
        elif type_id in _BIT_DTYPES:
            dtype, scale, transform, digits = _BIT_DTYPES[type_id], 1.0, 0.0, 0
        else:
            raise LogImportError(f"{name}: field {fname!r} has unknown MLG type {type_id}")
        category = _text(d[55:89]) if version == 2 else ""
        fields.append(
            MlgField(fname, units, type_id, dtype, d[45], scale, transform, digits, category)
        )
    size = sum(np.dtype(f.dtype).itemsize for f in fields)
    if size != record_bytes:
        raise LogImportError(
            f"{name}: corrupt MLG header (record length {record_bytes}, fields add up to {size})"
        )
    info = ""
    if fields_end <= info_start < data_start:
        lines = _text(buf[info_start:data_start]).splitlines()
        info = "\n".join(line.strip().strip('"') for line in lines if line.strip())
    return MlgHeader(version, started, info_start, data_start, record_bytes, tuple(fields), info)


def _record_dtype(header: MlgHeader) -> np.dtype[np.void]:
    names = ["block_type", "counter", "stamp"]
    formats: list[str] = ["u1", "u1", ">u2"]
    offsets = [0, 1, 2]
    pos = BLOCK_HEADER_BYTES
    for i, f in enumerate(header.fields):
        names.append(f"f{i}")
        formats.append(f.dtype)
        offsets.append(pos)
        pos += np.dtype(f.dtype).itemsize
    names.append("crc")
    formats.append("u1")
    offsets.append(pos)
    spec = {"names": names, "formats": formats, "offsets": offsets, "itemsize": pos + 1}
    return np.dtype(spec)  # type: ignore[call-overload]


def read_mlg(path: Path, progress: Callable[[int, int], None] | None = None) -> RawLog:
    """Parse an MLG file into display values on one unwrapped time axis."""
    buf = path.read_bytes()
    header = parse_header(buf, str(path))
    arr = np.frombuffer(buf, dtype=np.uint8)
    rec_dtype = _record_dtype(header)
    scan = scan_blocks(arr, header.data_start, rec_dtype.itemsize, progress)
    runs = [np.frombuffer(buf, dtype=rec_dtype, count=k, offset=at) for at, k in scan.runs]
    if progress is not None:
        progress(arr.size, arr.size)
    return _assemble(header, runs, scan)


def _damage_lines(spans: list[DamagedSpan], tail: str, bad_stamps: int) -> list[str]:
    """Say what was skipped: the total first (one line a warning can quote), then where."""
    lost = sum(s.lost_records for s in spans) + bad_stamps
    lines = []
    if spans or bad_stamps:
        where = ""
        if spans:
            skipped = sum(s.skipped_bytes for s in spans)
            where = f" ({skipped} bytes in {len(spans)} damaged place{'s' * (len(spans) > 1)})"
        lines.append(f"{lost} record{'s' * (lost != 1)} damaged and skipped{where}")
    for s in spans[:_SPANS_LISTED]:
        lines.append(
            f"byte {s.at}: {s.why}; skipped {s.skipped_bytes} bytes, "
            f"{s.lost_records} record{'s' * (s.lost_records != 1)} lost"
        )
    if len(spans) > _SPANS_LISTED:
        lines.append(f"... and {len(spans) - _SPANS_LISTED} more damaged places")
    if bad_stamps:
        lines.append(
            f"{bad_stamps} record{'s' * (bad_stamps > 1)} skipped for a damaged timestamp "
            "(out of order with the records around it; the checksum does not cover it)"
        )
    if tail:
        lines.append(tail)
    return lines


def _assemble(header: MlgHeader, runs: list[npt.NDArray[np.void]], scan: BlockScan) -> RawLog:
    notes: list[str] = []
    records = np.concatenate(runs) if runs else np.zeros(0, dtype=_record_dtype(header))
    # One timeline in file order (records and markers) so the wrapping counter
    # unwraps across both.
    rec_blocks = np.column_stack([records["stamp"], records["counter"]]).astype(np.int64)
    offsets = np.cumsum([0, *(r.size for r in runs)])
    marker_blocks = iter(scan.markers)
    parts: list[npt.NDArray[np.int64]] = []
    for entry in scan.order:
        if entry >= 0:
            parts.append(rec_blocks[int(offsets[entry]) : int(offsets[entry + 1])])
        else:
            stamp, counter, _ = next(marker_blocks)
            parts.append(np.array([[stamp, counter]], dtype=np.int64))
    blocks = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
    stamps = blocks[:, 0]
    is_marker = np.concatenate(
        [np.full(len(p), entry < 0) for p, entry in zip(parts, scan.order, strict=True)]
        or [np.zeros(0, dtype=bool)]
    )
    bad = damaged_stamps(stamps, blocks[:, 1])
    good = ~bad
    ticks = np.cumsum(np.diff(stamps[good], prepend=stamps[good][:1]) % 65536)
    t_good = ticks.astype(np.float64) * TICK_S

    kept = records[good[~is_marker]]
    values = []
    for i, f in enumerate(header.fields):
        col = kept[f"f{i}"].astype(np.float64)
        if not f.is_bits and (f.transform != 0.0 or f.scale != 1.0):
            col = (col + f.transform) * f.scale
        values.append(col)
    t_good = restore_lost_wraps(_time_field(header, values), t_good, is_marker[good], notes)
    # A marker whose own stamp is out of order sits at the block before it.
    t_all = t_good[np.maximum(np.cumsum(good) - 1, 0)] if t_good.size else t_good
    bad_markers = int(np.count_nonzero(bad & is_marker))
    if bad_markers:
        notes.append(
            f"{bad_markers} marker(s) with a damaged timestamp placed at the record before"
        )
    bad_stamps = int(np.count_nonzero(bad & ~is_marker))
    spans = recount_long_gaps(scan.spans, t_all[~is_marker], notes)
    return RawLog(
        format_name=f"MLG v{header.version} (MLVLG binary)",
        t_s=t_all[~is_marker & good],
        names=[f.name for f in header.fields],
        units=["bits" if f.is_bits and not f.units else f.units for f in header.fields],
        values=values,
        markers=[
            (float(tm), text)
            for tm, (_, _, text) in zip(t_all[is_marker], scan.markers, strict=True)
        ],
        checksum_errors=sum(s.lost_records for s in spans) + bad_stamps,
        notes=notes,
        damage=_damage_lines(spans, scan.tail, bad_stamps),
        started_at=float(header.started_at) if header.started_at else None,
        info=header.info,
        clock="record timestamps (10 us ticks, 16-bit wraps unwrapped)",
    )


def _time_field(
    header: MlgHeader, values: list[npt.NDArray[np.float64]]
) -> npt.NDArray[np.float64] | None:
    """The log's own seconds "Time" field (TunerStudio, rusEFI), if it has one."""
    for f, col in zip(header.fields, values, strict=True):
        if f.name.lower() == "time" and f.units.lower() in ("s", "sec"):
            return col
    return None
