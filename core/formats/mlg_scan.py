"""Walking the data blocks of an MLG log: runs of records in step, markers, damage.

A record is taken *in step* (numpy over whole runs) when its type is 0, its
checksum is right, it is not only zero bytes, and its counter is one more than
the block before. Anything else is damage: :func:`core.formats.mlg_resync.find_next`
finds the next block byte by byte, and the walk counts what was lost between (by
the rolling counter; the reader adds whole rounds of 256 from the time gap).

A record whose checksum passes by chance (1 in 256) while a zero fill begins
inside it is given back: the fill is the crash signature the scan is for.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.formats.mlg_resync import (
    BLOCK_HEADER_BYTES,
    MARKER_BYTES,
    STEP_INTERVALS,
    Link,
    check_records,
    find_next,
)

_RUN_WINDOW = 65536
"""Records checked per numpy pass on the in-step path."""

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DamagedSpan:
    """Bytes skipped between the last block taken and the next one found."""

    at: int
    why: str
    skipped_bytes: int
    lost_records: int
    """From the counter, so modulo 256; the reader may add whole rounds from the time gap."""
    records_before: int
    """Records taken before the damage: the index of the first one after it."""
    counter_jump: bool = False
    """Nothing skipped, the counter jumped: records deleted, or the count restarted."""


@dataclass(slots=True)
class BlockScan:
    """What the walk took: record runs and markers in file order, and the damage."""

    runs: list[tuple[int, int]] = field(default_factory=list)
    """(byte offset, record count) of each run of records taken."""
    order: list[int] = field(default_factory=list)
    """File order: a run index (>= 0) or -1 for the next marker."""
    markers: list[tuple[int, int, str]] = field(default_factory=list)
    """(u16 timestamp, counter, text) of each marker."""
    spans: list[DamagedSpan] = field(default_factory=list)
    tail: str = ""
    """Set when the file ends inside a block."""


@dataclass(frozen=True, slots=True)
class _Last:
    """The last block taken: what the next one must continue."""

    counter: int
    stamp: int
    record_counter: int | None = None
    """Counter of the last record when a marker came after it (writers that do not count markers)."""


def scan_blocks(
    arr: U8, data_start: int, stride: int, progress: Callable[[int, int], None] | None = None
) -> BlockScan:
    """Walk the data area of an MLG log; ``stride`` is one record block's bytes."""
    return _Walker(arr, stride).walk(data_start, progress)


def _run_length(arr: U8, start: int, stride: int, available: int) -> int:
    """How many blocks from ``start`` (stepping ``stride``) have block type 0."""
    done = 0
    while done < available:
        window = min(available - done, _RUN_WINDOW)
        lo = start + done * stride
        types = arr[lo : lo + window * stride : stride]
        hits = np.flatnonzero(types)
        if hits.size:
            return done + int(hits[0])
        done += window
    return done


class _Walker:
    def __init__(self, arr: U8, stride: int) -> None:
        self.arr = arr
        self.n = int(arr.size)
        self.stride = stride
        self.last: _Last | None = None
        self.before_last: _Last | None = None
        self.last_end = -1
        """Where the last record taken ends (-1 after a marker)."""
        self.rolls = True
        self.records_taken = 0
        self.step_limit = 65535
        self.out = BlockScan()

    def walk(self, p: int, progress: Callable[[int, int], None] | None) -> BlockScan:
        self.rolls = self._counter_rolls(p)
        arr, n = self.arr, self.n
        while p < n:
            p = self._take_run(p)
            if progress is not None:
                progress(p, n)
            if p >= n:
                break
            kind = int(arr[p])
            if kind == 1 and self._marker_in_step(p):
                self._take_marker(p)
                p += MARKER_BYTES
                continue
            size = self.stride if kind == 0 else MARKER_BYTES if kind == 1 else 0
            if size and p + size > n:
                self.out.tail = f"file ends inside a block ({n - p} bytes at the end ignored)"
                break
            if kind == 0 and self._swallowed(p):
                self._give_back_last_record()
                p -= self.stride
                p = self._recover(p, "zero fill from inside the record", p + 1)
            else:
                p = self._recover(p, *self._damage(p, kind))
        return self.out

    # -- the in-step path ----------------------------------------------------------

    def _counter_rolls(self, p: int) -> bool:
        """Whether the first valid records step their counter by one (most do, damage aside)."""
        k = _run_length(self.arr, p, self.stride, min(64, (self.n - p) // self.stride))
        blocks = self.arr[p : p + k * self.stride].reshape(k, self.stride)
        ok = check_records(blocks)[1]
        pairs = ok[1:] & ok[:-1]
        if np.count_nonzero(pairs) < 3:
            return True
        counters: I64 = blocks[:, 1].astype(np.int64)
        steps = np.diff(counters) % 256
        return bool(np.mean(steps[pairs] == 1) >= 0.5)

    def _continues(self, counter: int) -> bool:
        last = self.last
        if last is None or not self.rolls:
            return True
        if (counter - last.counter) % 256 == 1:
            return True
        return last.record_counter is not None and (counter - last.record_counter) % 256 == 1

    def _take_run(self, p: int) -> int:
        """Take the records in step from ``p``; returns where they stop."""
        stride = self.stride
        while True:
            k = _run_length(self.arr, p, stride, min(_RUN_WINDOW, (self.n - p) // stride))
            if k == 0:
                return p
            blocks = self.arr[p : p + k * stride].reshape(k, stride)
            empty, ok = check_records(blocks)
            counters: I64 = blocks[:, 1].astype(np.int64)
            if self.rolls:
                ok[1:] &= np.diff(counters) % 256 == 1
            ok[0] &= self._continues(int(counters[0]))
            if self.last is None:  # the first record: its counter is vouched for by the next
                ok[0] &= k > 1 and bool(ok[1])
            # All-zero fields under a good header: a zero fill that began inside
            # the record. Taken only when the next record is in step with it.
            ok[:-1] &= ~empty[:-1] | ok[1:]
            ok[-1] &= ~empty[-1]
            bad = np.flatnonzero(~ok)
            good = int(bad[0]) if bad.size else k
            if good:
                self._take_records(p, blocks[:good])
            p += good * stride
            if good < k or k < _RUN_WINDOW:
                return p

    def _take_records(self, p: int, blocks: U8) -> None:
        k = int(blocks.shape[0])
        self.out.runs.append((p, k))
        self.out.order.append(len(self.out.runs) - 1)
        self.records_taken += k
        stamps = (blocks[:, 2].astype(np.int64) << 8) | blocks[:, 3]
        if k > 8:
            typical = float(np.median(np.diff(stamps) % 65536))
            self.step_limit = int(min(65535, max(STEP_INTERVALS * typical, 1000)))
        if k > 1:
            self.before_last = _Last(int(blocks[-2, 1]), int(stamps[-2]))
        else:
            self.before_last = self.last
        self.last = _Last(int(blocks[-1, 1]), int(stamps[-1]))
        self.last_end = p + k * self.stride

    def _marker_in_step(self, p: int) -> bool:
        """A marker is taken when it fits and a valid block (or the end) follows it.

        The end includes a record the file ends inside: a log cut after a marker keeps
        the marker, and the cut record is the truncated tail it is.
        """
        nxt = p + MARKER_BYTES
        if nxt > self.n:
            return False
        if nxt == self.n or self.arr[nxt] == 1:
            return True
        if self.arr[nxt] != 0:
            return False
        if nxt + self.stride > self.n:
            return True
        empty, ok = check_records(self.arr[nxt : nxt + self.stride].reshape(1, -1))
        return bool(ok[0] and not empty[0])

    def _take_marker(self, p: int) -> None:
        buf = self.arr[p : p + MARKER_BYTES].tobytes()
        (stamp,) = struct.unpack_from(">H", buf, 2)
        text = buf[BLOCK_HEADER_BYTES:].split(b"\x00", 1)[0].decode("latin-1").strip()
        self.out.markers.append((stamp, buf[1], text))
        self.out.order.append(-1)
        last = self.last
        record_counter = None
        if last is not None:
            record_counter = last.counter if last.record_counter is None else last.record_counter
        self.last = _Last(buf[1], stamp, record_counter)
        self.last_end = -1

    # -- after damage ----------------------------------------------------------------

    def _swallowed(self, p: int) -> bool:
        """Whether the zero fill starting at ``p`` began inside the record just taken.

        Its checksum then passed by chance: the fill covered its checksum byte
        (zero) and field bytes that summed to zero with what was left.
        """
        if self.last_end != p or p + BLOCK_HEADER_BYTES > self.n:
            return False
        if self.arr[p : p + BLOCK_HEADER_BYTES].any():
            return False
        fields_and_sum = self.arr[p - self.stride + BLOCK_HEADER_BYTES : p]
        nonzero = np.flatnonzero(fields_and_sum)
        zeros = fields_and_sum.size - (int(nonzero[-1]) + 1 if nonzero.size else 0)
        return zeros >= 2

    def _give_back_last_record(self) -> None:
        at, k = self.out.runs[-1]
        if k > 1:
            self.out.runs[-1] = (at, k - 1)
        else:
            self.out.runs.pop()
            self.out.order.pop()
        self.records_taken -= 1
        self.last, self.last_end = self.before_last, -1

    def _damage(self, p: int, kind: int) -> tuple[str, int]:
        """Why the block at ``p`` was not taken, and where the search starts."""
        if kind > 1:
            return f"unknown block type {kind}", p + 1
        if kind == 1:
            return "marker not followed by a valid block", p + 1
        block = self.arr[p : p + self.stride]
        empty, ok = check_records(block.reshape(1, -1))
        if not block.any():
            return "zero-filled bytes", p + 1
        if ok[0] and empty[0]:
            return "a record of zero fields with nothing in step after it", p + 1
        if ok[0]:  # the record itself may restart the count: a candidate
            before = "-" if self.last is None else self.last.counter
            return f"record counter jumps ({before} -> {block[1]})", p
        return "bad checksum", p + 1

    def _recover(self, p: int, why: str, start: int) -> int:
        """Skip the damage at ``p``; returns the offset after the block found, or the end."""
        last = self.last
        link = Link(
            self.stride,
            self.rolls,
            self.step_limit,
            None if last is None else last.counter,
            0 if last is None else last.stamp,
        )
        hit = find_next(self.arr, start, p, link)
        if hit is None:
            lost = self._lost_in_tail(p)
            self.out.spans.append(DamagedSpan(p, why, self.n - p, lost, self.records_taken))
            return self.n
        q, is_record = hit
        if q > p:
            lost = self._lost(q, p)
            self.out.spans.append(DamagedSpan(p, why, q - p, lost, self.records_taken))
        elif last is not None:
            lost = (int(self.arr[q + 1]) - last.counter - 1) % 256 if self.rolls else 0
            self.out.spans.append(DamagedSpan(p, why, 0, lost, self.records_taken, True))
        if is_record:
            self._take_records(q, self.arr[q : q + self.stride].reshape(1, -1))
            return q + self.stride
        self._take_marker(q)
        return q + MARKER_BYTES

    def _lost(self, q: int, p: int) -> int:
        """Blocks lost between the last block taken and ``q`` (found after damage at ``p``)."""
        if self.last is None:
            return self._lost_before_first(q, p)
        if self.rolls:
            return (int(self.arr[q + 1]) - self.last.counter - 1) % 256
        return round((q - p) / self.stride)

    def _lost_before_first(self, q: int, p: int) -> int:
        """Records lost when the damage came before any record was taken.

        When the bytes at ``p`` start like a record (type 0, a header not all
        zero), the counters of that record and of ``q`` say how many. Otherwise
        counted back from ``q`` on its grid: places holding the counter such a
        record would carry were records; a whole record's bytes left before them
        were one more; anything else was inserted.
        """
        arr, stride, c_q = self.arr, self.stride, int(self.arr[q + 1])
        if self.rolls and arr[p] == 0 and arr[p + 1 : p + BLOCK_HEADER_BYTES].any():
            return (c_q - int(arr[p + 1])) % 256
        found = 0
        while q - (found + 1) * stride >= p:
            if (c_q - int(arr[q - (found + 1) * stride + 1])) % 256 != found + 1:
                break
            found += 1
        return found + int(q - found * stride - p == stride)

    def _lost_in_tail(self, p: int) -> int:
        """Records lost in damage that runs to the end of the file.

        Nothing follows to count from: the records whose headers still stand on
        the grid in step are counted. Zeros to the end are space the writer had
        claimed and never filled: no record.
        """
        arr, stride = self.arr, self.stride
        if not arr[p:].any():
            return 0
        expected = None if self.last is None or not self.rolls else self.last.counter + 1
        lost = 0
        while p + lost * stride + BLOCK_HEADER_BYTES <= self.n:
            at = p + lost * stride
            if arr[at] != 0 or not arr[at + 1 : at + BLOCK_HEADER_BYTES].any():
                break
            if expected is None:
                expected = int(arr[at + 1])
            if self.rolls and int(arr[at + 1]) != (expected + lost) % 256:
                break
            lost += 1
        return lost
