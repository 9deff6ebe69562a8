"""A sliding window of recent rows kept in a few hundred chunks, not one piece per engine tick.

The pull tracker (5 min of rows) and the dyno sheet (3 min of fused rows) keep
recent rows to look back at a test once it ends. Kept as they arrive, one piece
per 30 ms engine tick, a window held ~10,000 pieces of a few samples each: the
array headers, not the samples, were most of its memory, and that memory followed
the tick rate (a busy machine ticks slower and merges more rows per tick), so a
long run's resident size drifted with the load (issue 10's soak). Pieces are now
merged into chunks (:class:`RowWindow`), so the window holds a few hundred arrays
whatever the tick rate, and each chunk is one allocation, mapped on its own at
1 kHz, so dropping it hands its memory back whole.

A piece is a mapping of column name -> 1-D array with a non-empty ``"t"`` column
(its row times, ascending). Columns need not all have the length of ``"t"`` (the
tracker keeps the kept rows beside all rows); a column missing from a piece is
filled with NaN of the length of its ``"t"`` when merged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from core.memory import MAPPED_MIN_BYTES, MMAP_THRESHOLD, mapped_buffer

Piece = dict[str, npt.NDArray[Any]]


class RowWindow:
    """The last ``keep_s`` seconds of pieces (by their last time), merged into chunks.

    Two steps: pending pieces (one per engine tick) are merged into a small chunk
    once they span ``chunk_s`` or number ``chunk_pieces``; small chunks are merged
    into one window chunk once they hold ``chunk_bytes`` or span ``max_chunk_s``.
    A window chunk is one allocation (:func:`merge`): at 1 kHz it reaches
    ``chunk_bytes`` in a few seconds and gets a mapping of its own
    (:func:`core.memory.mapped_buffer`), unmapped whole when dropped, instead of
    leaving holes in the heap.

    Args:
        keep_s: A chunk is dropped once its last row is older than this before the newest.
        chunk_s: Pending pieces are merged once they span this many seconds.
        chunk_pieces: ... or once this many are pending.
        chunk_bytes: Small chunks are merged once they hold this many bytes.
        max_chunk_s: ... or span this many seconds (the window keeps at most this
            much more than ``keep_s``).
    """

    def __init__(
        self,
        keep_s: float,
        chunk_s: float = 1.0,
        chunk_pieces: int = 64,
        chunk_bytes: int = MMAP_THRESHOLD,
        max_chunk_s: float = 10.0,
    ) -> None:
        self.keep_s = keep_s
        self.chunk_s = chunk_s
        self.chunk_pieces = chunk_pieces
        self.chunk_bytes = chunk_bytes
        self.max_chunk_s = max_chunk_s
        self._chunks: deque[Piece] = deque()
        self._small: list[Piece] = []
        self._small_bytes = 0
        self._pending: list[Piece] = []

    def __len__(self) -> int:
        """Arrays-holding pieces right now (window chunks, small chunks, pending pieces)."""
        return len(self._chunks) + len(self._small) + len(self._pending)

    def add(self, piece: Mapping[str, npt.NDArray[Any]]) -> None:
        """Append a piece (its ``"t"`` non-empty); :meth:`trim` drops what is too old."""
        self._pending.append(dict(piece))
        first, last = float(self._pending[0]["t"][0]), float(piece["t"][-1])
        if last - first < self.chunk_s and len(self._pending) < self.chunk_pieces:
            return
        small = merge(self._pending)
        self._pending = []
        self._small.append(small)
        self._small_bytes += sum(int(v.nbytes) for v in small.values())
        span = last - float(self._small[0]["t"][0])
        if self._small_bytes >= self.chunk_bytes or span >= self.max_chunk_s:
            self._chunks.append(self._small[0] if len(self._small) == 1 else merge(self._small))
            self._small = []
            self._small_bytes = 0

    def trim(self, newest: float) -> None:
        """Drop chunks whose last row is more than ``keep_s`` before ``newest``."""
        horizon = newest - self.keep_s
        while self._chunks and float(self._chunks[0]["t"][-1]) < horizon:
            self._chunks.popleft()

    def pieces(self) -> list[Piece]:
        """Every chunk and pending piece, oldest first."""
        return [*self._chunks, *self._small, *self._pending]

    def clear(self) -> None:
        self._chunks.clear()
        self._small = []
        self._small_bytes = 0
        self._pending = []


def merge(pieces: list[Piece]) -> Piece:
    """One piece holding ``pieces`` end to end (a column missing from one is NaN there).

    Every column is a view into one buffer allocated for the whole piece. From
    :data:`core.memory.MAPPED_MIN_BYTES` that buffer is a mapping of its own
    (:func:`core.memory.mapped_buffer`; glibc's mmap threshold alone did not map
    these chunks, the heap had room), so a window chunk goes back to the system
    whole when the window drops it, where one ~8 kB array per column and second,
    then one heap block per chunk, left minutes-old blocks between short-lived ones
    in the heap (issue 10's soak). A caller keeping one column keeps the buffer:
    the windows hand chunks out to be read, not kept.
    """
    names: dict[str, None] = {}
    for p in pieces:
        names.update(dict.fromkeys(p))
    parts = {
        name: [p[name] if name in p else np.full(p["t"].size, np.nan) for p in pieces]
        for name in names
    }
    dtypes = {name: np.result_type(*cols) for name, cols in parts.items()}
    sizes = {name: sum(int(c.size) for c in cols) for name, cols in parts.items()}
    offsets: dict[str, int] = {}
    total = 0
    for name in names:
        offsets[name] = total
        total += -(-sizes[name] * dtypes[name].itemsize // _ALIGN) * _ALIGN
    buf = mapped_buffer(total) if total >= MAPPED_MIN_BYTES else np.empty(total, dtype=np.uint8)
    out: Piece = {}
    for name in names:
        nbytes = sizes[name] * dtypes[name].itemsize
        view = buf[offsets[name] : offsets[name] + nbytes].view(dtypes[name])
        np.concatenate(parts[name], out=view)
        out[name] = view
    return out


_ALIGN = 16
"""Byte alignment of each column inside a merged piece's buffer."""
