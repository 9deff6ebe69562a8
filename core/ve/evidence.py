"""Evidence for VE correction: a vehicle's logs re-binned on the tune's own axes.

Everything goes through :class:`core.pipeline.Pipeline` (precision, channel ownership,
fusion with the lambda delay, the vehicle's filters, the coverage grid and its
confidence), once per lambda channel:

- A twin with two widebands (``lambda_front`` / ``lambda_rear``) is binned twice: each
  pass sees that cylinder's sensor *as* ``lambda``, so the delay alignment, the
  wideband filters and the confidence (spread of the mean lambda) are that sensor's.
- The row hook bins a second grid whose lambda is multiplied by (1 + trim/100) where
  the ECU logged an active closed-loop trim (``fuel_trim_pct``), and whose target is
  the tune's target table where the log has no target channel. Its measured / target
  ratio is the correction; the pipeline's own grid gives hits and confidence. Trims
  and lambda line up because the hook sees *fused* rows: lambda already shifted back
  to the combustion that produced it, the trim held from the same instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import CYLINDER_LAMBDA
from core.coverage.axes import TableAxes
from core.coverage.filters import FilterResult
from core.coverage.grid import CoverageGrid
from core.frames import Block
from core.pipeline import Declared, Pipeline
from core.tune import Table, Tune
from core.ve.correct import CellEvidence, correct_table
from core.ve.knock import advise
from core.ve.result import VeResult
from core.ve.settings import VeSettings
from core.vehicle import VehicleConfig

Recording = tuple[Declared, Iterable[Block]]
"""One log: its sources (name, channels) in recording order, and its raw blocks."""

_MIXTURE = ("lambda", "afr")
NO_LAMBDA = "no wideband lambda/AFR: nothing to correct fuel against"
"""What a log without a lambda reading gives the correction (``dynoai import`` says the same)."""
_CYLINDER_CHANNELS = tuple(CYLINDER_LAMBDA.values())


def cylinder_view(block: Block, cylinder: str | None) -> Block:
    """The block as one cylinder's pass sees it: that cylinder's sensor is ``lambda``.

    ``None`` keeps the combined ``lambda`` and drops the per-cylinder channels.
    """
    drop = set(_CYLINDER_CHANNELS)
    own = CYLINDER_LAMBDA.get(cylinder) if cylinder else None
    if own is not None and own not in block.columns and not (set(_MIXTURE) & set(block.columns)):
        return block
    cols = {k: v for k, v in block.columns.items() if k not in drop}
    if own is not None:
        for k in _MIXTURE:
            cols.pop(k, None)
        if own in block.columns:
            cols["lambda"] = block.columns[own]
    if len(cols) == len(block.columns) and own is None:
        return block
    return Block(block.source, block.t, cols)


def _declared_view(declared: Declared, cylinder: str | None) -> list[tuple[str, dict[str, str]]]:
    out = []
    own = CYLINDER_LAMBDA.get(cylinder) if cylinder else None
    for name, channels in declared:
        ch = {k: u for k, u in channels.items() if k not in _CYLINDER_CHANNELS}
        if own is not None:
            for k in _MIXTURE:
                ch.pop(k, None)
            if own in channels:
                ch["lambda"] = channels[own]
        out.append((name, ch))
    return out


@dataclass
class PassGrids:
    """What one lambda channel's pass produced (summed over all logs)."""

    grid: CoverageGrid
    """The pipeline's grid: hits, dwell, confidence, knock."""
    ratio_grid: CoverageGrid
    """Same kept samples, lambda x (1 + trim), tune targets where the log had none."""
    lambda_rows: tuple[int, ...] = ()
    """Per recording, in order: rows that had a lambda reading (0: no wideband in that log)."""

    def evidence(self) -> CellEvidence:
        g = self.ratio_grid
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(g.ratio_weight > 0, g.ratio_wsum / g.ratio_weight, np.nan)
        return CellEvidence(ratio, grid_confidence(self.grid), self.grid.hits)


def grid_confidence(grid: CoverageGrid) -> npt.NDArray[np.float64]:
    """The grid's confidence 0..1 under the vehicle's coverage rule (the planner's "covered")."""
    return np.asarray(grid.confidence(), dtype=np.float64)


def _grid(axes: TableAxes, config: VehicleConfig) -> CoverageGrid:
    return CoverageGrid(
        axes, hit_target=config.hit_target, stoich=config.stoich, rule=config.coverage_rule
    )


class _RatioHook:
    def __init__(self, axes: TableAxes, config: VehicleConfig, target: Table | None) -> None:
        self.grid = _grid(axes, config)
        self.target = target
        self.lambda_rows = 0
        """Fused rows with a lambda reading, kept or not (0: the log has no wideband)."""

    def __call__(self, fused: Block, result: FilterResult, grid: CoverageGrid) -> None:
        cols = dict(fused.columns)
        lam = cols.get("lambda")
        if lam is None:
            return
        self.lambda_rows += int(np.count_nonzero(np.isfinite(lam)))
        trim = cols.get("fuel_trim_pct")
        if trim is not None:
            cols["lambda"] = lam * np.where(np.isfinite(trim), 1.0 + trim / 100.0, 1.0)
        if self.target is not None:
            have = cols.get("lambda_target")
            if have is None and "afr_target" in cols:
                have = cols["afr_target"] / grid.stoich
            from_tune = self.target.at(cols["rpm"], cols["map_kpa"])
            cols["lambda_target"] = (
                from_tune if have is None else np.where(np.isfinite(have), have, from_tune)
            )
            cols.pop("afr_target", None)
        self.grid.update(Block(fused.source, fused.t, cols), result)


def bin_pass(
    recordings: Iterable[Recording],
    config: VehicleConfig,
    axes: TableAxes,
    *,
    cylinder: str | None = None,
    target: Table | None = None,
) -> PassGrids:
    """One lambda channel's pass over every recording (a fresh pipeline per log)."""
    total = _grid(axes, config)
    ratio_total = _grid(axes, config)
    lambda_rows = []
    for declared, blocks in recordings:
        hook = _RatioHook(axes, config, target)
        pipe = Pipeline(config, _declared_view(declared, cylinder), axes=axes, on_rows=hook)
        for block in blocks:
            if len(block):
                pipe.push(cylinder_view(block, cylinder))
        pipe.flush()
        total.merge(pipe.grid)
        ratio_total.merge(hook.grid)
        lambda_rows.append(hook.lambda_rows)
    return PassGrids(total, ratio_total, tuple(lambda_rows))


def log_recordings(
    paths: Sequence[str | Path], damaged: dict[str, str] | None = None
) -> Iterator[Recording]:
    """Each log as (declared sources, blocks), read lazily (raises SourceError when unreadable).

    ``damaged`` collects, per path, what a log's reader could not use once its blocks
    were read (a truncated tail, skipped damaged records): the warning ``replay`` and
    ``coverage`` give for the same file (QA: ``ve`` used a cut log without a word).
    """
    from core.record.replay import RecordedLog

    for path in paths:
        log = RecordedLog(path)
        try:
            declared = [(n, dict(i.get("channels", {}))) for n, i in log.header.sources.items()]
            yield declared, _blocks_of(log, str(path), damaged)
        finally:
            log.close()


def _blocks_of(log: Any, path: str, damaged: dict[str, str] | None) -> Iterator[Block]:
    yield from (item for item in log.records() if isinstance(item, Block))
    warning = log.recovery_warning
    if warning and damaged is not None:
        damaged[path] = warning


def per_cylinder_channels(declared_sets: Iterable[Declared]) -> bool:
    """True when every log declares both per-cylinder lambda channels."""
    sets = [set().union(*(ch for _, ch in d)) if d else set() for d in declared_sets]
    return bool(sets) and all(set(_CYLINDER_CHANNELS) <= s for s in sets)


def correct_recordings(
    tune: Tune,
    recordings: Sequence[tuple[Declared, Sequence[Block]]] | Sequence[str | Path],
    config: VehicleConfig,
    settings: VeSettings | None = None,
    *,
    runs: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> VeResult:
    """The VE result for ``tune`` from recordings (in memory) or log paths.

    Binned on the tune's own axes. A twin tune (front and rear tables) with both
    per-cylinder lambda channels in every log gets one pass per cylinder; otherwise
    every table is corrected from the combined ``lambda`` (and a note says so).
    """
    s = settings or VeSettings()
    paths = [p for p in recordings if isinstance(p, (str, Path))]
    damaged: dict[str, str] = {}

    def recs() -> Iterable[Recording]:
        if paths:
            return log_recordings(paths, damaged)
        return recordings  # type: ignore[return-value]

    declared_sets = _declared_sets(recordings, paths)
    axes = tune.axes
    notes_out = list(notes)
    twin_tune = tune.ve_rear is not None
    split = twin_tune and per_cylinder_channels(declared_sets)
    if twin_tune and not split:
        notes_out.append(
            "the logs have no front/rear lambda: both VE tables corrected from the combined lambda"
        )
    decimals = _decimals(tune)
    tables = {}
    knock = None
    lambda_rows = np.zeros(len(paths) or len(recordings), dtype=np.int64)
    for key, cylinder in (("ve", "front"), ("ve_rear", "rear")) if split else (("ve", None),):
        grids = bin_pass(recs(), config, axes, cylinder=cylinder, target=tune.target_lambda)
        lambda_rows[: len(grids.lambda_rows)] += grids.lambda_rows
        base = tune.ve_tables()[key]
        tables[key] = correct_table(base, grids.evidence(), s, name=key, decimals=decimals)
        if knock is None:
            knock = advise(axes, grids.grid.knock_events, grids.grid.knock_retard_max)
        if twin_tune and not split:
            rear = tune.ve_rear
            assert rear is not None
            tables["ve_rear"] = correct_table(
                rear, grids.evidence(), s, name="ve_rear", decimals=decimals
            )
    names = tuple(runs) or tuple(str(p) for p in paths)
    label = [names[i] if i < len(names) else f"recording {i + 1}" for i in range(lambda_rows.size)]
    without_lambda = tuple(label[i] for i in np.flatnonzero(lambda_rows == 0))
    warnings = [f"{path}: {why}" for path, why in damaged.items()]
    warnings += [f"{name}: {NO_LAMBDA}" for name in without_lambda]
    return VeResult(
        tune,
        tables,
        knock=knock,
        runs=names,
        notes=(*warnings, *notes_out),
        warnings=tuple(warnings),
        without_lambda=without_lambda,
    )


def _declared_sets(recordings: Sequence[object], paths: Sequence[str | Path]) -> list[Declared]:
    if paths:
        from core.record.replay import RecordedLog

        out: list[Declared] = []
        for p in paths:
            log = RecordedLog(p)
            try:
                out.append(
                    [(n, dict(i.get("channels", {}))) for n, i in log.header.sources.items()]
                )
            finally:
                log.close()
        return out
    return [r[0] for r in recordings if isinstance(r, tuple)]


def _decimals(tune: Tune) -> int:
    """The VE constant's resolution in the file (a Speeduino VE is whole percent)."""
    name = tune.names.get("ve")
    digits = tune.digits.get(name) if name else None
    return 1 if digits is None else digits


def declared_of(channels: Mapping[str, str], name: str = "sim") -> Declared:
    """A one-source declaration (the simulator's, for in-memory recordings)."""
    return [(name, dict(channels))]


__all__ = [
    "PassGrids",
    "bin_pass",
    "correct_recordings",
    "correct_vehicle",
    "cylinder_view",
    "declared_of",
    "log_recordings",
    "per_cylinder_channels",
    "vehicle_logs",
]


def vehicle_logs(store: Any, vehicle: str) -> tuple[list[str], list[str]]:
    """A stored vehicle's recorded logs, and notes about runs that cannot be used."""
    logs: list[str] = []
    notes: list[str] = []
    for run in store.list_runs(vehicle):
        if not run.log_path:
            notes.append(f"run {run.run_id}: no recording was kept, not used")
        elif not Path(run.log_path).is_file():
            notes.append(f"run {run.run_id}: log {run.log_path} is missing, not used")
        else:
            logs.append(run.log_path)
    return logs, notes


def correct_vehicle(
    store: Any,
    vehicle: str,
    config: VehicleConfig,
    tune: Tune | None = None,
    settings: VeSettings | None = None,
) -> VeResult:
    """The VE result for a stored vehicle: its kept tune (or ``tune``) from all its logs.

    This is the one call other features use (fleet records take ``tables[...].ve_base``
    and ``.ve_new`` from it). Raises ``TuneError`` without a tune, ``ValueError`` without
    usable logs, ``SourceError`` for an unreadable log.
    """
    from core.tune import TuneError
    from core.tune.kept import kept_tune

    base = tune if tune is not None else kept_tune(store.data_dir, vehicle)
    if base is None:
        raise TuneError(f"vehicle {vehicle!r} has no tune: dynoai vehicle set-tune {vehicle} FILE")
    logs, notes = vehicle_logs(store, vehicle)
    if not logs:
        raise ValueError(
            f"vehicle {vehicle!r} has no recorded logs to learn from"
            + (f" ({notes[0]})" if notes else "")
        )
    return correct_recordings(base, logs, config, settings or config.ve, notes=notes)
