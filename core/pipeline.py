"""The one fuse -> filter -> bin path: every sample reaches a grid through here.

Live sessions, replays, ``coverage --rebuild``, the planner's candidate modelling,
VE correction, the tests and the benches all bin data with :class:`Pipeline`, so a
recording re-binned later gives the grid the live session showed, cell for cell.
It was written five times before (each copy a little different: float32 rounding,
channel ownership, the ``[staleness]`` limits), and the copies disagreed.

The steps, in order:

1. :func:`to_recorded_precision`: every column rounded to float32, what the recorder
   keeps, so a replay bins exactly what live binned.
2. Channel ownership (:func:`channel_owners`): when two sources deliver a channel, one
   owns it (a dedicated wideband owns the mixture); the others' values are dropped
   here (the recorder still keeps them raw).
3. :class:`core.fusion.Fuser`: zero-order hold across sources, staleness, lambda
   transport delay, all from the vehicle config; rows wait for every channel set of
   every source, so a recording that keeps each channel set in records of its own
   fuses as live did.
4. :class:`core.coverage.filters.FilterChain` with the vehicle's limits.
5. :class:`core.coverage.grid.CoverageGrid` on the vehicle's (or given) axes.
6. An optional row hook (the vehicle tracker: pulls, learning) sees every binned batch.

The pipeline is synchronous and owns no thread; the engine (``core.session``) feeds
it from its tick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.filters import FilterChain, FilterResult
from core.coverage.grid import CoverageGrid
from core.frames import Block
from core.fusion import Fuser
from core.vehicle import VehicleConfig

RowHook = Callable[[Block, FilterResult, CoverageGrid], object]
"""Called with each batch of fused rows after it was filtered and binned (result ignored)."""

Declared = Sequence[tuple[str, Mapping[str, str]]]
"""(source name, {channel: unit}) per source, in ``--source`` (or recording) order."""

_MIXTURE = {"lambda", "afr"}
_OWNER_KEY = {"afr": "lambda", "afr_target": "lambda_target"}
"""AFR and lambda are one measurement: whoever owns lambda owns AFR too."""


def to_recorded_precision(block: Block) -> Block:
    """Round every column to float32 (lossless for real sensors; what the recorder keeps)."""
    return Block(
        block.source,
        block.t,
        {k: v.astype(np.float32).astype(np.float64) for k, v in block.columns.items()},
    )


def channel_owners(declared: Declared) -> dict[str, str]:
    """Which source feeds each channel when several could (e.g. ECU O2 vs a wideband).

    A dedicated wideband (declares lambda/AFR but not rpm) owns the mixture
    channels; otherwise the first source in ``--source`` order owns a channel. The
    others' values for it are still recorded, but not fused, shown or binned.
    """

    def dedicated_wideband(channels: Mapping[str, str]) -> bool:
        return bool({"lambda", "afr"} & set(channels)) and "rpm" not in channels

    owners: dict[str, str] = {}
    for name, channels in sorted(declared, key=lambda d: not dedicated_wideband(d[1])):
        for channel in channels:
            owners.setdefault(_OWNER_KEY.get(channel, channel), name)
    return owners


class Pipeline:
    """Blocks in, a coverage grid out: precision, ownership, fusion, filters, binning.

    Args:
        config: The vehicle's settings (delay, stoich, staleness, filter limits, axes,
            hit target).
        declared: The sources and their channels, in ``--source`` / recording order;
            decides channel ownership and whether fusion waits for a mixture channel.
        axes: Bin onto these axes instead of the config's (re-binning onto a tune's axes).
        on_rows: Hook called with every binned batch (the tracker).
    """

    def __init__(
        self,
        config: VehicleConfig,
        declared: Declared = (),
        *,
        axes: TableAxes | None = None,
        on_rows: RowHook | None = None,
    ) -> None:
        self.config = config
        self.declared = [(name, dict(channels)) for name, channels in declared]
        self.axes = axes or config.axes
        self.on_rows = on_rows
        self.reset()

    def reset(self) -> None:
        """Start again from an empty grid (a replay seek, a new run)."""
        cfg = self.config
        self.owners = channel_owners(self.declared)
        expect_mixture = any(_MIXTURE & set(ch) for _, ch in self.declared)
        engine_sources = [name for name, ch in self.declared if set(ch) - _MIXTURE]
        self.fuser = Fuser(
            cfg.lambda_delay_ms / 1000.0,
            cfg.stoich,
            cfg.staleness_s,
            expect_mixture=expect_mixture,
            sources=engine_sources,
        )
        self.rows_flushed = 0
        """Rows the last :meth:`flush` binned: they were waiting for data that never came."""
        self.filters = FilterChain(cfg.filters)
        self.grid = CoverageGrid(
            self.axes, hit_target=cfg.hit_target, stoich=cfg.stoich, rule=cfg.coverage_rule
        )

    def push(self, block: Block, *, rounded: bool = False) -> Block:
        """Feed one source block; bins whatever fused rows it releases.

        Returns the block reduced to the channels its source owns, at recorded
        precision: what the dashboard shows. Pass ``rounded=True`` when the block
        already went through :func:`to_recorded_precision` (the engine rounds once
        for the recorder too).
        """
        if not rounded:
            block = to_recorded_precision(block)
        owned = self._owned_columns(block)
        fused = self.fuser.push(owned, stream=tuple(block.columns))
        if fused is not None:
            self._bin(fused)
        return owned

    def push_rows(self, rows: Block) -> FilterResult:
        """Filter and bin already fused rows (a simulated trajectory with every channel)."""
        return self._bin(rows)

    @property
    def rows_pending(self) -> int:
        """Rows fused but not binned yet: they wait for later data (lambda delay, other sources).

        Counted in neither the grid nor the rejects until released; a run that ends
        (or whose sources fall silent) with rows pending bins them at :meth:`flush`.
        """
        return self.fuser.pending_rows

    def flush(self) -> None:
        """Bin the rows still waiting for later data (end of data), with what has come.

        A live run and its replay both end here, so both bin the same tail. The count
        is kept in :attr:`rows_flushed` for the summary: the status lines before the
        end showed these rows as pending, not as binned or rejected.
        """
        tail = self.fuser.flush()
        if tail is not None:
            self.rows_flushed += len(tail)
            self._bin(tail)

    def rejects(self) -> dict[str, int]:
        """Rejected samples by reason: the filters' and the grid's (off the table)."""
        merged = dict(self.filters.rejects)
        for k, v in self.grid.rejects.items():
            merged[k] = merged.get(k, 0) + v
        return merged

    def stale_limit(self, channel: str) -> float:
        return self.fuser.stale_limit(channel)

    def _owned_columns(self, block: Block) -> Block:
        owners = self.owners
        cols = {
            k: v
            for k, v in block.columns.items()
            if owners.setdefault(_OWNER_KEY.get(k, k), block.source) == block.source
        }
        return block if len(cols) == len(block.columns) else Block(block.source, block.t, cols)

    def _bin(self, fused: Block) -> FilterResult:
        result = self.filters.apply(fused)
        self.grid.update(fused, result)
        if self.on_rows is not None:
            self.on_rows(fused, result, self.grid)
        return result


def bin_log(
    path: str | Path,
    config: VehicleConfig,
    *,
    axes: TableAxes | None = None,
    channel_map: dict[str, str] | None = None,
    on_rows: RowHook | None = None,
    damaged: list[str] | None = None,
) -> Pipeline:
    """Run a recorded (or imported) log through a fresh pipeline; returns it, flushed.

    Channel ownership follows the recording's source order, as a replay does, so
    re-binning a vehicle's logs gives the grids the live sessions built. Raises
    :class:`core.source.SourceError` for a missing or unreadable log. ``damaged`` gets
    ``"PATH: what was lost"`` when the log was cut short or had damaged records.
    """
    from core.record.replay import RecordedLog

    log = RecordedLog(path, channel_map)
    try:
        declared = [(n, dict(i.get("channels", {}))) for n, i in log.header.sources.items()]
        pipeline = Pipeline(config, declared, axes=axes, on_rows=on_rows)
        for item in log.records():
            if isinstance(item, Block) and len(item):
                pipeline.push(item)
        pipeline.flush()
        if damaged is not None and (warning := log.recovery_warning):
            damaged.append(f"{path}: {warning}")
    finally:
        log.close()
    return pipeline
