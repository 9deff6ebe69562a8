r"""Finding the next valid MLG block after damage: every offset tried, in linear time.

Block layout, from EFI Analytics' "MLG Binary LogFormat" 1.0 / 2.0 as the rusEFI
writer puts it (``firmware/console/binary_mlg_log/binary_mlg_logging.cpp``,
``writeSdBlock``) and mlg-converter reads it (``src/parser.ts``): u8 block type
(0 record, 1 marker), u8 rolling counter, u16 timestamp in 10 us, then a record's
field bytes and one byte holding their sum mod 256, or a marker's 50 bytes of text.
TunerStudio counts markers in the same rolling sequence (tests/data/markers.mlg:
records 3..6, marker 7, record 8). Blocks carry no length and the checksum covers
only the field bytes, so after damage nothing says where the next block starts.

An offset is taken when a record there validates (type 0, checksum right, not
only zero bytes) and either

* sits where the lost blocks put it: a whole number of records (and up to two
  markers) past the damage, with the counter that many steps on; or
* links to the last block taken (counter forward by n, timestamp forward by at
  most n plausible intervals) and the block after it continues its counter and
  timestamp (or it ends the file); or
* is continued that way by the next two blocks (a long deletion: no link needed).

A marker is taken where the lost blocks put it, or when the record after it
continues its counter. Before any record was taken there is nothing to link to:
a record on the grid is taken when one of the next valid ones counts as far as
it lies.

Decision: a stretch of zero bytes (what a crash or power loss leaves in a file
being written) checksums as valid records, zero fields summing to zero: a block
of only zero bytes is never a record, and one whose fields are all zero needs a
block in step after it. The search runs on windows that double from two records
to 1 MiB, numpy on every offset of a window at once, so its cost grows with the
damaged span and never with its square.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

BLOCK_HEADER_BYTES = 4
MARKER_TEXT_BYTES = 50
MARKER_BYTES = BLOCK_HEADER_BYTES + MARKER_TEXT_BYTES
STEP_INTERVALS = 8
"""One record may come at most this many typical intervals after the one before."""
_FIRST_SCAN_STRIDES = 2
"""The first window: most damage is one record's bytes, found again a stride on."""
_MAX_SCAN_BYTES = 1 << 20
_GRID_LOOKAHEAD = 16
"""Records looked ahead for one that vouches for a record found before any was taken."""

_T = TypeVar("_T", bound=np.generic)
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Link:
    """What a block found after damage continues: the walk's state at the damage."""

    stride: int
    """Bytes of one record block: header, fields, checksum."""
    rolls: bool
    """The counter steps by one per block (a writer that does not is read without it)."""
    step_limit: int
    """Most 10 us ticks one record may come after the one before."""
    counter: int | None
    """Counter of the last block taken; None before the first."""
    stamp: int = 0


def check_records(blocks: U8) -> tuple[Mask, Mask]:
    """Per record block (a row): its fields are all zero; it validates.

    Valid: the checksum is right and the block is not only zero bytes.
    """
    sums = blocks[:, BLOCK_HEADER_BYTES:-1].sum(axis=1, dtype=np.int64)
    empty = sums == 0
    zero = empty & ~blocks[:, :BLOCK_HEADER_BYTES].any(axis=1) & (blocks[:, -1] == 0)
    return empty, ((sums & 0xFF) == blocks[:, -1]) & ~zero


def find_next(arr: U8, start: int, fail_at: int, link: Link) -> tuple[int, bool] | None:
    """The first offset from ``start`` where a block is taken: (offset, is a record)."""
    quick = _next_on_grid(arr, fail_at, link)
    if quick is not None:
        return quick, True
    a, size = start, _FIRST_SCAN_STRIDES * link.stride
    while a < arr.size:
        b = min(arr.size, a + size)
        hit = _scan_window(arr, a, b, fail_at, link)
        if hit is not None:
            return hit
        a, size = b, min(2 * size, _MAX_SCAN_BYTES)
    return None


def _next_on_grid(arr: U8, p: int, link: Link) -> int | None:
    """The usual case, checked first without numpy: one record lost in place.

    The record a stride on validates and counts two past the last one taken.
    """
    q, stride = p + link.stride, link.stride
    if link.counter is None or not link.rolls or q + stride > arr.size or arr[q]:
        return None
    block = arr[q : q + stride]
    total = int(block[BLOCK_HEADER_BYTES:-1].sum(dtype=np.int64))
    if total and total & 0xFF == block[-1] and (int(block[1]) - link.counter) % 256 == 2:
        return q
    return None


def _ahead(x: npt.NDArray[_T], k: int) -> npt.NDArray[_T]:
    """``x`` moved ``k`` places earlier (out[i] = x[i + k]), zero-filled at the end."""
    out = np.zeros_like(x)
    if k < x.size:
        out[: x.size - k] = x[k:]
    return out


def _scan_window(arr: U8, a: int, b: int, fail_at: int, link: Link) -> tuple[int, bool] | None:
    """Check every offset in [a, b) at once (reading a few blocks past ``b``)."""
    stride, n = link.stride, int(arr.size)
    field_bytes = stride - BLOCK_HEADER_BYTES - 1
    # per-offset facts for the candidates and the blocks that may follow them
    m = (b - a) + 2 * stride + MARKER_BYTES
    have = min(n, a + m + stride) - a
    buf = np.zeros(m + 2 * stride, dtype=np.uint8)
    buf[:have] = arr[a : a + have]
    cum = np.zeros(buf.size + 1, dtype=np.int64)
    np.cumsum(buf, out=cum[1:])
    idx = np.arange(m)
    sums = cum[idx + BLOCK_HEADER_BYTES + field_bytes] - cum[idx + BLOCK_HEADER_BYTES]
    crc = buf[idx + stride - 1]
    kind = buf[:m]
    counter = buf[1 : m + 1].astype(np.int64)
    stamp = (buf[2 : m + 2].astype(np.int64) << 8) | buf[3 : m + 3]
    zero = (sums == 0) & (crc == 0) & (counter == 0) & (stamp == 0)
    record = (kind == 0) & (idx + stride <= have) & ((sums & 0xFF) == crc) & ~zero
    empty = sums == 0
    marker = (kind == 1) & (idx + MARKER_BYTES <= have)
    ends_file = (idx + stride == have) & (a + have == n)

    def in_step(k: int, min_ticks: int) -> Mask:
        """The block ``k`` bytes on continues the counter and timestamp of this one."""
        ticks = (_ahead(stamp, k) - stamp) % 65536
        ok = (ticks >= min_ticks) & (ticks <= link.step_limit)
        if link.rolls:
            ok &= (_ahead(counter, k) - counter) % 256 == 1
        return ok

    then_record = _ahead(record, stride) & in_step(stride, 1)
    then_marker = _ahead(marker, stride) & in_step(stride, 0)
    one_on = record & (ends_file | then_record | then_marker)
    two_on = record & (ends_file | then_marker | (then_record & _ahead(one_on, stride)))
    marker_then_record = marker & _ahead(record, MARKER_BYTES) & in_step(MARKER_BYTES, 0)

    linked = np.ones(m, dtype=bool)
    placed = np.zeros(m, dtype=bool)
    if link.counter is not None:
        steps = (counter - link.counter) % 256 if link.rolls else np.ones(m, dtype=np.int64)
        ticks = (stamp - link.stamp) % 65536
        linked = (steps >= 1) & (ticks <= np.minimum(65535, steps * link.step_limit))
        linked &= (ticks >= 1) | marker
        if link.rolls:  # where the lost blocks (up to two of them markers) end
            lost_bytes = a + idx - fail_at
            for lost_markers in range(3):
                rest = lost_bytes - lost_markers * MARKER_BYTES
                blocks = rest // stride + lost_markers
                placed |= (rest >= 0) & (rest % stride == 0) & (steps == blocks + 1)
    # Where the lost blocks put it: taken even when the last stamp taken was a
    # damaged one (the reader checks every stamp against its neighbours later).
    take_record = (record & ((placed & ~empty) | (linked & one_on))) | two_on
    take_marker = (marker_then_record & (linked | _ahead(one_on, MARKER_BYTES))) | (marker & placed)
    hits = np.flatnonzero((take_record | take_marker)[: b - a])
    first = int(hits[0]) if hits.size else b - a
    if link.counter is None:  # damage before the first record: records on the grid
        on_grid = record & ~empty & ((a + idx - fail_at) % stride == 0)
        for i in np.flatnonzero(on_grid[:first]):
            if _grid_agrees(arr, a + int(i), link):
                return a + int(i), True
    if not hits.size:
        return None
    return a + first, bool(take_record[first])


def _grid_agrees(arr: U8, q: int, link: Link) -> bool:
    """Whether one of the next two valid records on the grid counts as far as it lies.

    Two, not one: the counter byte is outside the checksum, so the next valid
    record may carry a damaged one.
    """
    stride, seen = link.stride, 0
    for j in range(1, _GRID_LOOKAHEAD + 1):
        r = q + j * stride
        if r + stride > arr.size:
            return seen == 0  # nothing left to disagree
        empty, ok = check_records(arr[r : r + stride].reshape(1, -1))
        if arr[r] == 0 and ok[0] and not empty[0]:
            if not link.rolls or (int(arr[r + 1]) - int(arr[q + 1])) % 256 == j:
                return True
            seen += 1
            if seen == 2:
                return False
    return False
