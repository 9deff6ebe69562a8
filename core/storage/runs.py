"""Run and segment bookkeeping: the upsert, never shrinking, and re-binning from logs.

Decision: a run is an upsert keyed by (vehicle, run id), so a checkpoint and the
final add replace each other and a run counts once. Never shrink silently: a run
that already holds more final coverage is not replaced (:class:`RunRefused`); a
replayed recording *segment* the live run already counts is not added twice; and
a rebuild keeps a run whose logs hold fewer samples than the run saw live.
Re-binning itself is the caller's :data:`LogBinner` (``core.pipeline.bin_log``):
this module never fuses or filters.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.coverage.grid import CoverageGrid
from core.source import SourceError
from core.storage.errors import RunRefused, StoreError
from core.storage.rows import (
    RunInfo,
    decode_arrays,
    encode_arrays,
    hits_total,
    parse_axes,
    parse_stats,
)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """Which runs a rebuild re-binned from their logs, and which it could not, and why."""

    rebuilt: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]
    """(run id, why) of runs whose log could not be re-read; they keep their old axes."""


LogBinner = Callable[[str], CoverageGrid]
"""Re-bins one recorded log onto the target axes (``core.pipeline.bin_log``); the store
itself never fuses or filters: it only keeps what the pipeline produced."""


def upsert_run(
    db: sqlite3.Connection,
    name: str,
    run_id: str,
    grid: CoverageGrid,
    *,
    log_path: str | None,
    started_at: float | None,
    duration_s: float | None,
    stats: dict[str, object],
    final: bool,
    part_of: str | None,
    segment_id: str | None,
) -> None:
    """Insert or replace one run's grid (inside the caller's write transaction)."""
    arrays = grid.to_arrays()
    blob = encode_arrays(arrays)
    axes_json = json.dumps(grid.axes.to_dict())
    stats_json = json.dumps(stats, default=str)
    listed = stats.get("segments")
    segments = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []
    if part_of and segment_id:
        refuse_counted_segment(db, name, part_of, segment_id)
    refuse_shrink(db, name, run_id, grid, hits_total(arrays))
    for segment in segments:  # replays of this run's segments are now counted here
        db.execute(
            "DELETE FROM runs WHERE vehicle = ? AND run_id = ?",
            (name, f"{run_id}:{segment}"),
        )
    db.execute(
        """INSERT INTO runs (vehicle, run_id, log_path, started_at, duration_s, stats_json,
                             axes_json, arrays, final, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(vehicle, run_id) DO UPDATE SET
             log_path = COALESCE(excluded.log_path, runs.log_path),
             started_at = COALESCE(excluded.started_at, runs.started_at),
             duration_s = excluded.duration_s, stats_json = excluded.stats_json,
             axes_json = excluded.axes_json, arrays = excluded.arrays,
             final = excluded.final, updated_at = excluded.updated_at""",
        (name, run_id, log_path, started_at, duration_s, stats_json, axes_json, blob,
         int(final), time.time()),
    )  # fmt: skip


def refuse_counted_segment(
    db: sqlite3.Connection, name: str, part_of: str, segment_id: str
) -> None:
    row = db.execute(
        "SELECT stats_json FROM runs WHERE vehicle = ? AND run_id = ?", (name, part_of)
    ).fetchone()
    if row is None:
        return
    try:
        segments = parse_stats(row[0], "").get("segments", [])
    except StoreError:
        return
    if isinstance(segments, list) and segment_id in segments:
        raise RunRefused(
            f"this recording is part of run {part_of[:8]} that vehicle {name!r} already "
            "counts; its coverage was not added again",
            kept_run=part_of,
        )


def refuse_shrink(
    db: sqlite3.Connection, name: str, run_id: str, grid: CoverageGrid, hits: int
) -> None:
    row = db.execute(
        "SELECT axes_json, arrays, final FROM runs WHERE vehicle = ? AND run_id = ?",
        (name, run_id),
    ).fetchone()
    if row is None or not row[2]:
        return
    try:
        if parse_axes(row[0], run_id) != grid.axes:
            return
        old = hits_total(decode_arrays(row[1], run_id))
    except StoreError:
        return  # a damaged row may be replaced
    if old > hits:
        raise RunRefused(
            f"run {run_id[:8]} of {name!r} already holds {old} hits, more than the {hits} "
            "of this one (a replay of part of a recording cannot replace the whole run); "
            "not replaced",
            kept_run=run_id,
        )


def rebin_runs(
    runs: Iterable[RunInfo], binner: LogBinner
) -> tuple[dict[str, CoverageGrid], list[tuple[str, str]]]:
    """(run id -> grid re-binned from its logs, [(run id, why not)]); nothing is written."""
    grids: dict[str, CoverageGrid] = {}
    missing: list[tuple[str, str]] = []
    for run in runs:
        logs = run.stats.get("segment_logs")
        paths = (
            [p for p in logs if isinstance(p, str)]
            if isinstance(logs, list) and logs
            else [run.log_path]
            if run.log_path
            else []
        )
        if not paths:
            missing.append((run.run_id, "no recording was kept"))
            continue
        try:
            partial = partly_recorded(paths, run.stats.get("samples"))
            if partial:
                missing.append((run.run_id, partial))
                continue
            grid = binner(paths[0])
            for path in paths[1:]:  # the segments of one run, each fused on its own
                grid.merge(binner(path))
            grids[run.run_id] = grid
        except OSError as exc:
            # str(exc) read "[Errno 2] No such file or directory: '...'" in the warning
            where = exc.filename if exc.filename is not None else paths[0]
            why = (exc.strerror or type(exc).__name__).lower()
            missing.append((run.run_id, f"cannot read its recording {where}: {why}"))
        except (ValueError, SourceError) as exc:
            missing.append((run.run_id, str(exc)))
    return grids, missing


def partly_recorded(paths: list[str], samples_live: object) -> str:
    """Why the .dynolog ``paths`` cannot stand for the whole run, or '' when they can."""
    from core.frames import Block
    from core.record import MAGIC, LogReader

    if not isinstance(samples_live, int) or isinstance(samples_live, bool) or samples_live <= 0:
        return ""
    recorded = 0
    for path in paths:
        with open(path, "rb") as fh:
            if MAGIC.encode() not in fh.read(64):
                return ""  # an imported log: the run is the whole file
        with LogReader(path) as log:
            recorded += sum(len(item) for item in log if isinstance(item, Block))
    if recorded < samples_live:
        return (
            f"its recordings hold {recorded} of the {samples_live} samples it saw live; "
            "re-binning would shrink it, so it keeps its coverage on the old axes"
        )
    return ""
