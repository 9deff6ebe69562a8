"""Block: one batch of samples from one source.

Sources hand the engine whole batches (columns of numpy arrays) rather than one
object per sample, so every stage after the driver (fusion, filters, binning,
recording) works vectorised. A block's columns are all the same length as its
time axis; a channel a sample did not carry is NaN.

Time base: ``t`` is seconds on the source's clock. Live drivers stamp samples
with ``time.monotonic()`` on receipt so several live sources fuse on one clock;
the simulator and replay keep their own clock (seconds since their start, or the
recorded times) and are not mixed with live sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


class BlockError(ValueError):
    """A block whose columns do not match its time axis."""


@dataclass(frozen=True, slots=True)
class Block:
    """One batch of samples from one source.

    Attributes:
        source: The source's name (unique within a session, e.g. ``sim`` or ``innovate0``).
        t: Sample times, float64 seconds, non-decreasing.
        columns: Canonical channel name -> float64 array, same length as ``t``.
    """

    source: str
    t: F64
    columns: Mapping[str, F64] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.t, dtype=np.float64)
        if t.ndim != 1:
            raise BlockError(f"block from {self.source!r}: time axis must be 1-D")
        cols: dict[str, F64] = {}
        for name, values in self.columns.items():
            arr = np.ascontiguousarray(values, dtype=np.float64)
            if arr.shape != t.shape:
                raise BlockError(
                    f"block from {self.source!r}: column {name!r} has {arr.size} values "
                    f"for {t.size} timestamps"
                )
            cols[name] = arr
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "columns", cols)

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def column(self, name: str) -> F64:
        """The named column, or all-NaN when this block does not carry it."""
        col = self.columns.get(name)
        if col is None:
            return np.full(self.t.shape, np.nan)
        return col

    @classmethod
    def from_rows(cls, source: str, rows: Iterable[tuple[float, Mapping[str, float]]]) -> Block:
        """A block from (t, {channel: value}) rows; missing values become NaN."""
        rows = list(rows)
        names: dict[str, None] = {}
        for _, values in rows:
            for k in values:
                names.setdefault(k, None)
        t = np.array([r[0] for r in rows], dtype=np.float64)
        cols = {
            name: np.array([r[1].get(name, np.nan) for r in rows], dtype=np.float64)
            for name in names
        }
        return cls(source, t, cols)

    def slice(self, start: int, stop: int) -> Block:
        return Block(
            self.source, self.t[start:stop], {k: v[start:stop] for k, v in self.columns.items()}
        )


def concat(blocks: list[Block]) -> Block:
    """Join blocks from one source end to end; channels missing in a part are NaN there."""
    if not blocks:
        raise BlockError("nothing to concatenate")
    names: dict[str, None] = {}
    for b in blocks:
        for k in b.columns:
            names.setdefault(k, None)
    t = np.concatenate([b.t for b in blocks])
    cols = {name: np.concatenate([b.column(name) for b in blocks]) for name in names}
    return Block(blocks[0].source, t, cols)
