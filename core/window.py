"""A sliding window of recent rows kept as one-second chunks, not one piece per engine tick.

The pull tracker (5 min of rows) and the dyno sheet (3 min of fused rows) keep
recent rows to look back at a test once it ends. Kept as they arrive, one piece
per 30 ms engine tick, a window held ~10,000 pieces of a few samples each: the
array headers, not the samples, were most of its memory, and that memory followed
the tick rate (a busy machine ticks slower and merges more rows per tick), so a
long run's resident size drifted with the load (issue 10's soak). Pieces are now
merged into chunks of about ``chunk_s`` of rows (or ``chunk_pieces`` pieces), so
the window holds a few hundred arrays whatever the tick rate.

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

Piece = dict[str, npt.NDArray[Any]]


class RowWindow:
    """The last ``keep_s`` seconds of pieces (by their last time), merged into chunks.

    Args:
        keep_s: A chunk is dropped once its last row is older than this before the newest.
        chunk_s: Pending pieces are merged once they span this many seconds.
        chunk_pieces: ... or once this many are pending.
    """

    def __init__(self, keep_s: float, chunk_s: float = 1.0, chunk_pieces: int = 64) -> None:
        self.keep_s = keep_s
        self.chunk_s = chunk_s
        self.chunk_pieces = chunk_pieces
        self._chunks: deque[Piece] = deque()
        self._pending: list[Piece] = []

    def __len__(self) -> int:
        """Arrays-holding pieces right now (merged chunks plus pending pieces)."""
        return len(self._chunks) + len(self._pending)

    def add(self, piece: Mapping[str, npt.NDArray[Any]]) -> None:
        """Append a piece (its ``"t"`` non-empty); :meth:`trim` drops what is too old."""
        self._pending.append(dict(piece))
        first, last = float(self._pending[0]["t"][0]), float(piece["t"][-1])
        if last - first >= self.chunk_s or len(self._pending) >= self.chunk_pieces:
            self._chunks.append(merge(self._pending))
            self._pending = []

    def trim(self, newest: float) -> None:
        """Drop chunks whose last row is more than ``keep_s`` before ``newest``."""
        horizon = newest - self.keep_s
        while self._chunks and float(self._chunks[0]["t"][-1]) < horizon:
            self._chunks.popleft()

    def pieces(self) -> list[Piece]:
        """Every chunk and pending piece, oldest first."""
        return [*self._chunks, *self._pending]

    def clear(self) -> None:
        self._chunks.clear()
        self._pending = []


def merge(pieces: list[Piece]) -> Piece:
    """One piece holding ``pieces`` end to end (a column missing from one is NaN there)."""
    if len(pieces) == 1:
        return {k: np.array(v) for k, v in pieces[0].items()}  # a copy: no view of a big base
    names: dict[str, None] = {}
    for p in pieces:
        names.update(dict.fromkeys(p))
    return {
        name: np.concatenate(
            [p[name] if name in p else np.full(p["t"].size, np.nan) for p in pieces]
        )
        for name in names
    }
