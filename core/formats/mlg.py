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
dtype per run of records; Python only loops over markers and damaged spots.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.formats.model import LogImportError, RawLog

MAGIC = b"MLVLG\x00"
BLOCK_HEADER_BYTES = 4
MARKER_TEXT_BYTES = 50
MARKER_BYTES = BLOCK_HEADER_BYTES + MARKER_TEXT_BYTES
TICK_S = 10e-6
"""Resolution of the block timestamp."""
WRAP_S = 65536 * TICK_S
"""The u16 timestamp wraps after this long."""
_SCAN_WINDOW = 65536
_RESYNC_LIMIT_BYTES = 1 << 16

_SCALAR_DTYPES = {0: "u1", 1: "i1", 2: ">u2", 3: ">i2", 4: ">u4", 5: ">i4", 6: ">i8", 7: ">f4"}
_BIT_DTYPES = {10: "u1", 11: ">u2", 12: ">u4", 16: "u1", 17: ">u2", 18: ">u4"}
_DESCRIPTOR_BYTES = {1: 55, 2: 89}
_HEADER_BYTES = {1: 22, 2: 24}

U8 = npt.NDArray[np.uint8]


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


def _run_length(arr: U8, start: int, stride: int, available: int) -> int:
    """How many blocks from ``start`` (stepping ``stride``) have block type 0."""
    done = 0
    while done < available:
        window = min(available - done, _SCAN_WINDOW)
        lo = start + done * stride
        types = arr[lo : lo + window * stride : stride]
        hits = np.flatnonzero(types)
        if hits.size:
            return done + int(hits[0])
        done += window
    return done


def _resync(arr: U8, start: int, stride: int, record_bytes: int) -> int | None:
    """The next offset that looks like a valid record or marker after damage, if any."""
    n = arr.size
    stop = min(n, start + _RESYNC_LIMIT_BYTES)
    for q in np.flatnonzero(arr[start:stop] <= 1)[:4096] + start:
        q = int(q)
        if arr[q] == 1:
            nxt = q + MARKER_BYTES
        else:
            if q + stride > n:
                continue
            payload = arr[q + BLOCK_HEADER_BYTES : q + BLOCK_HEADER_BYTES + record_bytes]
            if int(payload.sum(dtype=np.uint32)) & 0xFF != int(arr[q + stride - 1]):
                continue
            nxt = q + stride
        if nxt == n or (nxt < n and arr[nxt] <= 1):
            return q
    return None


def read_mlg(path: Path, progress: Callable[[int, int], None] | None = None) -> RawLog:
    """Parse an MLG file into display values on one unwrapped time axis."""
    buf = path.read_bytes()
    header = parse_header(buf, str(path))
    arr = np.frombuffer(buf, dtype=np.uint8)
    rec_dtype = _record_dtype(header)
    stride = rec_dtype.itemsize
    total = arr.size
    damage: list[str] = []
    runs: list[npt.NDArray[np.void]] = []
    # File-order timeline: per entry, the run index (>= 0) or -1 for a marker.
    order: list[int] = []
    markers: list[tuple[int, str]] = []
    p = header.data_start
    while p < total:
        k = _run_length(arr, p, stride, (total - p) // stride)
        if k:
            runs.append(np.frombuffer(buf, dtype=rec_dtype, count=k, offset=p))
            order.append(len(runs) - 1)
            p += k * stride
            if progress is not None:
                progress(p, total)
        if p >= total:
            break
        block_type = int(arr[p])
        if block_type == 1 and p + MARKER_BYTES <= total:
            (stamp,) = struct.unpack_from(">H", buf, p + 2)
            markers.append((stamp, _text(buf[p + BLOCK_HEADER_BYTES : p + MARKER_BYTES])))
            order.append(-1)
            p += MARKER_BYTES
        elif block_type in (0, 1):
            damage.append(f"file ends inside a block ({total - p} bytes at the end ignored)")
            break
        else:
            q = _resync(arr, p + 1, stride, header.record_bytes)
            skipped = (q if q is not None else total) - p
            damage.append(f"unknown block type {block_type} at byte {p}: skipped {skipped} bytes")
            if q is None:
                break
            p = q
    if progress is not None:
        progress(total, total)
    return _assemble(header, runs, order, markers, damage)


def _assemble(
    header: MlgHeader,
    runs: list[npt.NDArray[np.void]],
    order: list[int],
    markers: list[tuple[int, str]],
    damage: list[str],
) -> RawLog:
    notes: list[str] = []
    records = np.concatenate(runs) if runs else np.zeros(0, dtype=_record_dtype(header))
    if records.size == 0:
        return RawLog(
            format_name=f"MLG v{header.version} (MLVLG binary)",
            t_s=np.zeros(0),
            names=[f.name for f in header.fields],
            units=[f.units for f in header.fields],
            values=[np.zeros(0) for _ in header.fields],
            damage=damage,
        )
    raw = records.view(np.uint8).reshape(records.size, -1)
    payload = raw[:, BLOCK_HEADER_BYTES:-1]
    good = (payload.sum(axis=1, dtype=np.uint32) & 0xFF) == raw[:, -1]
    bad_count = int(records.size - np.count_nonzero(good))

    # One timeline in file order (good records and markers) so the wrapping
    # counter unwraps across both.
    is_marker_parts: list[npt.NDArray[np.bool_]] = []
    stamp_parts: list[npt.NDArray[np.int64]] = []
    marker_iter = iter(markers)
    sizes = [r.size for r in runs]
    offsets = np.cumsum([0, *sizes])
    for entry in order:
        if entry >= 0:
            lo, hi = int(offsets[entry]), int(offsets[entry + 1])
            keep = good[lo:hi]
            stamp_parts.append(records["stamp"][lo:hi][keep].astype(np.int64))
            is_marker_parts.append(np.zeros(int(keep.sum()), dtype=bool))
        else:
            stamp_parts.append(np.array([next(marker_iter)[0]], dtype=np.int64))
            is_marker_parts.append(np.ones(1, dtype=bool))
    stamps = np.concatenate(stamp_parts) if stamp_parts else np.zeros(0, dtype=np.int64)
    is_marker = np.concatenate(is_marker_parts) if is_marker_parts else np.zeros(0, dtype=bool)
    ticks = np.concatenate([[0], np.cumsum(np.diff(stamps) % 65536)]) if stamps.size else stamps
    t_all = ticks.astype(np.float64) * TICK_S

    kept = records[good]
    values = []
    for i, f in enumerate(header.fields):
        col = kept[f"f{i}"].astype(np.float64)
        if not f.is_bits and (f.transform != 0.0 or f.scale != 1.0):
            col = (col + f.transform) * f.scale
        values.append(col)

    t_all = _restore_lost_wraps(header, values, t_all, is_marker, notes)
    if bad_count:
        damage.append(f"{bad_count} records failed their checksum and were skipped")
    names = [f.name for f in header.fields]
    units = ["bits" if f.is_bits and not f.units else f.units for f in header.fields]
    return RawLog(
        format_name=f"MLG v{header.version} (MLVLG binary)",
        t_s=t_all[~is_marker],
        names=names,
        units=units,
        values=values,
        markers=[
            (float(tm), text) for tm, (_, text) in zip(t_all[is_marker], markers, strict=True)
        ],
        checksum_errors=bad_count,
        notes=notes,
        damage=damage,
        started_at=float(header.started_at) if header.started_at else None,
        info=header.info,
        clock="record timestamps (10 us ticks, 16-bit wraps unwrapped)",
    )


def _restore_lost_wraps(
    header: MlgHeader,
    values: list[npt.NDArray[np.float64]],
    t_all: npt.NDArray[np.float64],
    is_marker: npt.NDArray[np.bool_],
    notes: list[str],
) -> npt.NDArray[np.float64]:
    """Add whole counter wraps the 16-bit stamp cannot show, using the log's Time field.

    Two records further apart than 0.655 s look closer than they were. When the
    log also carries a seconds "Time" field, the whole number of wraps between
    them is round((dTime - dstamp) / 0.65536); sub-wrap jitter between the two
    clocks rounds to zero and is left alone.
    """
    idx = next(
        (
            i
            for i, f in enumerate(header.fields)
            if f.name.lower() == "time" and f.units.lower() in ("s", "sec")
        ),
        None,
    )
    rec_pos = np.flatnonzero(~is_marker)
    if idx is None or rec_pos.size < 2:
        return t_all
    d_time = np.diff(values[idx])
    d_stamp = np.diff(t_all[rec_pos])
    usable = np.isfinite(d_time) & (d_time >= 0)
    lost = np.where(usable, np.rint((d_time - d_stamp) / WRAP_S), 0.0).clip(min=0.0)
    if not lost.any():
        return t_all
    step = np.zeros(t_all.size)
    step[rec_pos[1:]] = lost * WRAP_S
    notes.append(f"{int(lost.sum())} timestamp wraps restored from the Time field")
    return t_all + np.cumsum(step)
