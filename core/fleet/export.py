"""Export the vehicle store to the fleet dataset: every run re-read from its recording.

Per vehicle: its config (filters, axes), its current session record (used for runs
whose recording predates the record), its VE tables per run; every run's log is
analysed (``core.fleet.analyze``) and the vehicle's partitions are rewritten
(``core.fleet.dataset``), one vehicle at a time so memory stays bounded by the
largest vehicle. A run whose recording is missing is exported from the grid the store
kept for it (sessions, cells, knock and VE-change patterns; no tests, samples or
row-based patterns) with a warning; an unreadable recording is reported and left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.fleet.analyze import RunData, analyze_log, from_stored_grid
from core.fleet.dataset import write_runs


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


def export_store(
    store: Any,
    out_dir: str | Path,
    vehicles: Sequence[str],
    *,
    shop: str | None = None,
    with_samples: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExportReport:
    from core.config import ConfigError
    from core.fleet.records_store import get_record, get_ve_tables
    from core.record import LogFileError
    from core.vehicle import resolve_config

    report = ExportReport()
    t0 = time.perf_counter()
    for vehicle in vehicles:
        try:
            cfg = resolve_config(stored_toml=store.get_config_toml(vehicle), vehicle=vehicle)
        except ConfigError as exc:
            report.skipped.append((vehicle, "*", f"stored config unreadable: {exc}"))
            continue
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
        counts = write_runs(runs, out_dir, replace_vehicles=[vehicle])
        report.vehicles += 1
        report.runs += counts["runs"]
        report.files += counts["files"]
        report.bytes += counts["bytes"]
    report.seconds = time.perf_counter() - t0
    return report
