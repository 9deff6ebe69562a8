"""Export the vehicle store to the fleet dataset: every run re-read from its recording.

Per vehicle: its config (filters, axes), its current session record (used for runs
whose recording predates the record), its VE tables per run; every run's log is
analysed (``core.fleet.analyze``) and written as this store's runs
(``core.fleet.writer``), one vehicle at a time so memory stays bounded by the
largest vehicle. A run whose recording is missing is exported from the grid the store
kept for it (sessions, cells, knock and VE-change patterns; no tests, samples or
row-based patterns) with a warning; an unreadable recording is reported and left out
(its earlier export, if any, stays).

Decision: the dataset is the fleet's history, not a mirror of one store. Runs this
store exported before and no longer holds (a ``dynoai vehicle reset``) stay in the
dataset and are counted in the report; ``prune`` removes them. Runs of other stores
are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.fleet.analyze import RunData, analyze_log, from_stored_grid
from core.fleet.writer import Drop, WriteResult, write_runs


@dataclass(slots=True)
class ExportReport:
    """What an export did: counts, time, and the runs it left out and why."""

    vehicles: int = 0
    runs: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(vehicle, run id, why) of runs left out."""
    warnings: list[str] = field(default_factory=list)
    store_id: str = ""
    """The id naming this store's files in the dataset."""
    kept: list[tuple[str, str]] = field(default_factory=list)
    """(vehicle, run id) exported before, no longer in the store, kept in the dataset."""
    removed: list[tuple[str, str]] = field(default_factory=list)
    """(vehicle, run id) exported before, no longer in the store, removed (``prune``)."""
    kept_skipped: set[tuple[str, str]] = field(default_factory=set)
    """(vehicle, run id) left out now whose earlier export stays in the dataset."""


def export_store(
    store: Any,
    out_dir: str | Path,
    vehicles: Sequence[str],
    *,
    shop: str | None = None,
    with_samples: bool = False,
    prune: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExportReport:
    """Add ``vehicles``' runs to the dataset as this store's, replacing its earlier copies.

    ``prune``: also remove the runs of ``vehicles`` this store exported before and no
    longer holds. Other vehicles' runs, and other stores' files, are not touched.
    """
    from core.fleet.records_store import store_id

    report = ExportReport(store_id=store_id(store))
    t0 = time.perf_counter()
    held: dict[str, set[str]] = {}
    for vehicle in vehicles:
        runs = _analyse_vehicle(store, vehicle, report, shop, with_samples, progress)
        if runs is None:
            continue
        held[vehicle] = {run.run_id for run in store.list_runs(vehicle)}
        drop = _dropper(held, vehicle) if prune else None
        result = write_runs(runs, out_dir, store_id=report.store_id, scope=[vehicle], drop=drop)
        _count(report, result, held, store)
        report.vehicles += 1
    report.kept = sorted(set(report.kept))  # a slug shared by two vehicles is visited twice
    report.seconds = time.perf_counter() - t0
    return report


def _dropper(held: dict[str, set[str]], name: str) -> Drop:
    """Drop a carried run of vehicle ``name`` that the store no longer holds.

    A carried run of another vehicle whose name has the same slug (``FXBB``, ``fxbb``)
    shares the files and is kept.
    """

    def drop(vehicle: str, run_id: str) -> bool:
        return vehicle == name and run_id not in held.get(vehicle, set())

    return drop


def _count(
    report: ExportReport, result: WriteResult, held: dict[str, set[str]], store: Any
) -> None:
    report.runs += result.runs
    report.files += result.files
    report.bytes += result.bytes
    report.removed += result.dropped
    for vehicle, run_id in result.carried:
        if vehicle not in held:  # another vehicle of the same slug, not exported (yet)
            known = store.has_vehicle(vehicle)
            held[vehicle] = {r.run_id for r in store.list_runs(vehicle)} if known else set()
        if run_id in held[vehicle]:
            report.kept_skipped.add((vehicle, run_id))
        else:
            report.kept.append((vehicle, run_id))


def _analyse_vehicle(
    store: Any,
    vehicle: str,
    report: ExportReport,
    shop: str | None,
    with_samples: bool,
    progress: Callable[[str], None] | None,
) -> list[RunData] | None:
    """Every run of ``vehicle`` analysed (None: its config is unreadable, nothing written)."""
    from core.config import ConfigError
    from core.fleet.records_store import get_record, get_ve_tables
    from core.record import LogFileError
    from core.vehicle import resolve_config

    try:
        cfg = resolve_config(stored_toml=store.get_config_toml(vehicle), vehicle=vehicle)
    except ConfigError as exc:
        report.skipped.append((vehicle, "*", f"stored config unreadable: {exc}"))
        return None
    record = get_record(store, vehicle)
    ve = get_ve_tables(store, vehicle)
    runs: list[RunData] = []
    for run in store.list_runs(vehicle):
        why = ""
        if not run.log_path:
            why = "no recording was kept"
        elif not Path(run.log_path).is_file():
            why = f"recording {run.log_path} is missing"
        if why:
            grid = store.run_grid(vehicle, run.run_id, cfg.hit_target)
            if grid is None:
                report.skipped.append((vehicle, run.run_id, why))
                continue
            data = from_stored_grid(
                grid, vehicle=vehicle, run_id=run.run_id, started_at=run.started_at,
                duration_s=run.duration_s, stats=run.stats, stored_record=record,
                ve_tables=ve.get(run.run_id), shop=shop, why=why,
            )  # fmt: skip
            report.warnings += data.warnings
            runs.append(data)
            continue
        try:
            data = analyze_log(
                run.log_path, vehicle=vehicle, run_id=run.run_id, cfg=cfg,
                stored_record=record, ve_tables=ve.get(run.run_id),
                with_samples=with_samples, shop=shop,
            )  # fmt: skip
        except (LogFileError, OSError, ValueError) as exc:
            report.skipped.append((vehicle, run.run_id, str(exc)))
            continue
        report.warnings += data.warnings
        runs.append(data)
        if progress is not None:
            progress(f"{vehicle}: run {run.run_id[:12]} analysed")
    return runs
