"""One recorded run -> the rows of the fleet dataset (session, cells, tests, patterns, samples).

The run's log is read again, through the same fusion, filters and grid the engine
used (so ``cells`` equals what the store holds for the run), with the tracker's
test detection and a fresh fill-rate calibration that records every test's
predicted and actual hits: ``tests`` is what fleet fill-rate priors are made of.
The session record comes from the recording's header (the build as it was), else
from the vehicle's current record in the store, and the session row says which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.fleet.patterns import PatternAccumulator, default_widebands
from core.fleet.record import HEADER_KEY, VE_NOT_RECORDED, RecordError, SessionRecord
from core.frames import Block
from core.plan.learning import Calibration
from core.vehicle import VehicleConfig

SAMPLE_CHANNELS = (
    "rpm", "map_kpa", "tps_pct", "lambda", "lambda_target", "knock_count", "knock_retard_deg",
    "iat_c", "clt_c", "spark_deg", "power_hp", "torque_nm",
)  # fmt: skip
"""Channels kept in the optional ``samples`` table (float32; NaN where a run lacks one)."""


class _RecordingCalibration(Calibration):
    """A Calibration that also keeps each test's predicted and actual hit totals."""

    def __init__(self) -> None:
        super().__init__()
        self.observed: list[tuple[str, float, float, float | None, float]] = []
        self.model_cells: npt.NDArray[np.float64] | None = None

    def observe(
        self, test_type: str, model_hits: Any, actual_hits: Any, lead_s: Any = None
    ) -> float:
        model = np.asarray(model_hits, dtype=np.float64)
        actual = np.asarray(actual_hits, dtype=np.float64)
        error = super().observe(test_type, model, actual, lead_s)
        self.observed.append((test_type, float(model.sum()), float(actual.sum()), lead_s, error))
        self.model_cells = model if self.model_cells is None else self.model_cells + model
        return error


@dataclass(slots=True)
class RunData:
    """Rows of one run for every table of the dataset (see docs/fleet.md)."""

    session: dict[str, Any]
    cells: dict[str, np.ndarray]
    tests: list[dict[str, Any]]
    patterns: list[dict[str, Any]]
    samples: dict[str, np.ndarray] | None = None
    shop: str = "unknown"
    vehicle: str = ""
    date: str = ""
    warnings: list[str] = field(default_factory=list)


def analyze_log(
    path: str | Path,
    *,
    vehicle: str,
    run_id: str,
    cfg: VehicleConfig | None = None,
    stored_record: SessionRecord | None = None,
    ve_tables: Mapping[str, np.ndarray] | None = None,
    with_samples: bool = False,
    shop: str | None = None,
) -> RunData:
    """Analyse one recorded run (raises ``LogFileError`` for an unreadable file)."""
    from dataclasses import replace

    from core.pipeline import Pipeline
    from core.plan.tracker import VehicleTracker
    from core.record import LogReader

    cfg = cfg or VehicleConfig(name=vehicle)
    warnings: list[str] = []
    with LogReader(str(path)) as reader:
        header = reader.header
        meta = dict(header.metadata or {})
        axes = cfg.axes
        if header.axes:
            try:
                axes = TableAxes.from_dict(header.axes)
            except ValueError:
                warnings.append(f"{path}: header axes unreadable, using the vehicle's")
        record, record_source = _record(meta, stored_record, warnings, str(path))
        # the run is binned as it was recorded: its delay, stoich and hit target
        cfg = replace(
            cfg,
            lambda_delay_ms=float(meta.get("lambda_delay_ms", cfg.lambda_delay_ms)),
            stoich=float(meta.get("stoich", cfg.stoich)),
            hit_target=int(meta.get("hit_target", cfg.hit_target)),
        )
        hit_target = cfg.hit_target
        wbs = tuple(x for x in (record.widebands.front, record.widebands.rear) if x)
        if len(wbs) < 2:
            wbs = default_widebands(header.sources)
        acc = PatternAccumulator(
            axes, stoich=cfg.stoich, lambda_delay_s=cfg.lambda_delay_ms / 1000.0, widebands=wbs
        )
        calibration = _RecordingCalibration()
        tracker = VehicleTracker(
            axes=axes, hit_target=hit_target, regions=cfg.regions, constraints=cfg.constraints,
            store=None, vehicle=vehicle, run_id=run_id, log_path=str(path),
        )  # fmt: skip
        tracker.calibration = calibration
        samples: list[dict[str, np.ndarray]] = []
        n_rows = n_kept = 0
        t_first = t_last = math.nan

        def on_rows(rows: Block, result: Any, grid: Any) -> None:
            nonlocal n_rows, n_kept, t_first, t_last
            tracker.on_rows(rows, result, grid)
            acc.feed(rows, result.keep)
            n_rows += len(rows)
            n_kept += int(np.count_nonzero(result.keep))
            if math.isnan(t_first):
                t_first = float(rows.t[0])
            t_last = float(rows.t[-1])
            if with_samples:
                part = {"t_s": rows.t.astype(np.float64), "kept": result.keep.copy()}
                for name in SAMPLE_CHANNELS:
                    col = rows.columns.get(name)
                    part[name] = (
                        np.full(len(rows), np.nan, np.float32)
                        if col is None
                        else col.astype(np.float32)
                    )
                samples.append(part)

        declared = [(n, dict(i.get("channels", {}))) for n, i in header.sources.items()]
        pipeline = Pipeline(cfg, declared, axes=axes, on_rows=on_rows)
        for item in reader:
            if isinstance(item, Block) and len(item):
                acc.feed_raw(item)
                pipeline.push(item)
        pipeline.flush()
        grid = pipeline.grid
        tracker.finish(grid, {})
        recovery = reader.recovery
    if not recovery.complete:
        warnings.append(f"{path}: {recovery.message}")  # the line replay and ve give

    started = float(header.created_at)
    date = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d")
    shop_name = shop or record.shop or "unknown"
    patterns = [
        p.row() for p in acc.finish(grid.hits, grid.knock_events, grid.knock_retard_max, ve_tables)
    ]
    session = session_row(
        run_id=run_id, vehicle=vehicle, record=record, record_source=record_source,
        started_at=started, duration_s=(t_last - t_first) if n_rows else 0.0,
        rows=n_rows, kept=n_kept, axes=axes, hit_target=hit_target,
        covered=int(grid.covered_cells()), pulls=tracker.pulls_done, tests=len(calibration.observed),
        ve_tables=ve_tables, log_path=str(path),
    )  # fmt: skip
    cells = cell_columns(grid, calibration.model_cells, calibration.misses)
    tests = [
        {"run_id": run_id, "test_index": i, "test_type": kind, "model_hits": model,
         "actual_hits": actual, "lead_s": float(lead) if lead is not None else math.nan,
         "prediction_error_pct": err, "t_start_s": float(t.t_start - t_first),
         "duration_s": float(t.duration_s), "rpm_lo": float(t.rpm_min), "rpm_hi": float(t.rpm_max),
         "map_lo_kpa": float(t.map_min_kpa), "map_hi_kpa": float(t.map_max_kpa)}
        for i, ((kind, model, actual, lead, err), (t, _)) in enumerate(
            zip(calibration.observed, tracker.tests, strict=False))
    ]  # fmt: skip
    _stamp(session["model"], run_id, grid, cells, tests, patterns)
    merged = None
    if with_samples and samples:
        merged = {k: np.concatenate([s[k] for s in samples]) for k in samples[0]}
        merged["t_s"] = merged["t_s"] - t_first
        merged["run_id"] = np.full(len(merged["t_s"]), run_id, dtype=object)
    return RunData(session, cells, tests, patterns, merged, shop_name, vehicle, date, warnings)


def from_stored_grid(
    grid: Any,
    *,
    vehicle: str,
    run_id: str,
    started_at: float | None,
    duration_s: float | None,
    stats: Mapping[str, Any],
    stored_record: SessionRecord | None,
    ve_tables: Mapping[str, np.ndarray] | None = None,
    shop: str | None = None,
    why: str,
) -> RunData:
    """A run whose recording is gone, from the grid the store kept for it.

    Sessions and cells are exported (the grid is all the store has); tests, samples
    and the row-based patterns (heat soak, decel, imbalance) are not: they need the rows.
    """
    record = stored_record or SessionRecord()
    axes = grid.axes
    acc = PatternAccumulator(axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(grid.ratio_weight > 0, grid.ratio_wsum / grid.ratio_weight, np.nan)
    acc.feed_cell_ratios(ratio, grid.hits)
    patterns = [
        p.row() for p in acc.finish(grid.hits, grid.knock_events, grid.knock_retard_max, ve_tables)
    ]
    started = float(started_at or 0.0)
    source = ("vehicle store (current)" if stored_record is not None else "none") + f"; {why}"
    session = session_row(
        run_id=run_id, vehicle=vehicle, record=record, record_source=source, started_at=started,
        duration_s=float(duration_s or 0.0), rows=int(stats.get("samples", 0) or 0),
        kept=int(stats.get("samples_binned", 0) or 0), axes=axes, hit_target=grid.hit_target,
        covered=int(grid.covered_cells()), pulls=int(stats.get("pulls", 0) or 0),
        tests=0, ve_tables=ve_tables, log_path=None,
    )  # fmt: skip
    cells = cell_columns(grid, None, {})
    _stamp(session["model"], run_id, grid, cells, [], patterns)
    date = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d")
    return RunData(session, cells, [], patterns, None, shop or record.shop or "unknown", vehicle,
                   date, [f"vehicle {vehicle}, run {run_id}: {why}; exported from the stored grid"])  # fmt: skip


def _stamp(
    model: str,
    run_id: str,
    grid: Any,
    cells: dict[str, np.ndarray],
    tests: list[dict[str, Any]],
    patterns: list[dict[str, Any]],
) -> None:
    """Run id and the denormalised model / coverage-rule columns on every row."""
    for p in patterns:
        p["run_id"], p["model"] = run_id, model
    for t in tests:
        t["model"] = model
    n = len(cells["hits"])
    cells["run_id"] = np.full(n, run_id, dtype=object)
    # denormalised so fleet coverage reads one table (see docs/fleet.md)
    cells["model"] = np.full(n, model, dtype=object)
    cells["hit_target"] = np.full(n, grid.hit_target, dtype=np.int32)
    cells["n_cells"] = np.full(n, grid.axes.n_cells, dtype=np.int32)
    cells["min_dwell_s"] = np.full(n, grid.rule.min_dwell_s, dtype=np.float64)
    cells["max_lambda_se_pct"] = np.full(n, grid.rule.max_lambda_se_pct, dtype=np.float64)


def _record(
    meta: Mapping[str, Any], stored: SessionRecord | None, warnings: list[str], where: str
) -> tuple[SessionRecord, str]:
    raw = meta.get(HEADER_KEY)
    if isinstance(raw, Mapping):
        try:
            return SessionRecord.from_dict(raw, f"{where} header"), "recording header"
        except RecordError as exc:
            warnings.append(f"{exc}; using the vehicle's stored record")
    if stored is not None:
        return stored, "vehicle store (current)"
    return SessionRecord(), "none"


def session_row(
    *,
    run_id: str,
    vehicle: str,
    record: SessionRecord,
    record_source: str,
    started_at: float,
    duration_s: float,
    rows: int,
    kept: int,
    axes: TableAxes,
    hit_target: int,
    covered: int,
    pulls: int,
    tests: int,
    ve_tables: Mapping[str, np.ndarray] | None,
    log_path: str | None,
) -> dict[str, Any]:
    """The ``sessions`` row: run facts, the flattened record, axes and VE tables."""
    b, cam, c, d = record.build, record.build.cam, record.conditions, record.dyno
    overlap = cam.overlap_deg()
    row: dict[str, Any] = {
        "run_id": run_id,
        "vehicle_name": vehicle,
        "started_at": started_at,
        "duration_s": float(duration_s),
        "rows": int(rows),
        "rows_kept": int(kept),
        "pulls": int(pulls),
        "tests": int(tests),
        "hit_target": int(hit_target),
        "n_cells": int(axes.n_cells),
        "covered_cells": int(covered),
        "rpm_axis": [float(x) for x in axes.rpm],
        "map_axis_kpa": [float(x) for x in axes.map_kpa],
        "record_source": record_source,
        "record_missing": ",".join(record.missing()),
        "model": b.model_key(),
        "tuner": record.tuner,
        "notes": record.notes,
        "engine_family": b.engine_family,
        "displacement_cc": b.displacement_cc,
        "compression_ratio": b.compression_ratio,
        "stage": b.stage,
        "cam_profile": cam.profile,
        "cam_intake_duration_deg": cam.intake_duration_deg,
        "cam_exhaust_duration_deg": cam.exhaust_duration_deg,
        "cam_intake_lift_in": cam.intake_lift_in,
        "cam_exhaust_lift_in": cam.exhaust_lift_in,
        "cam_lsa_deg": cam.lsa_deg,
        "cam_overlap_front_deg": cam.overlap_front_deg,
        "cam_overlap_rear_deg": cam.overlap_rear_deg,
        "cam_overlap_deg": overlap,
        "cam_overlap_class": None
        if overlap is None
        else ("low" if overlap < 20 else "moderate" if overlap < 40 else "high"),
        "exhaust": b.exhaust,
        "air_cleaner": b.air_cleaner,
        "throttle_body_mm": b.throttle_body_mm,
        "injector_flow_lb_hr": b.injector_flow_lb_hr,
        "fuel_octane": b.fuel_octane,
        "ambient_c": c.ambient_c,
        "baro_kpa": c.baro_kpa,
        "humidity_pct": c.humidity_pct,
        "altitude_m": c.altitude_m,
        "dyno_type": d.type,
        "dyno_load_type": d.load_type,
        "fan_airflow_cfm": d.fan_airflow_cfm,
        "warmup_min": d.warmup_min,
        "wideband_front": record.widebands.front,
        "wideband_rear": record.widebands.rear,
        "ve_status": "recorded" if ve_tables is not None else VE_NOT_RECORDED,
        "ve_rpm_axis": None,
        "ve_map_axis_kpa": None,
        "ve_before": None,
        "ve_after": None,
        "log_path": log_path,
        "exported_by": "dynoai-tui",
    }
    if ve_tables is not None:
        row["ve_rpm_axis"] = [float(x) for x in ve_tables["rpm"]]
        row["ve_map_axis_kpa"] = [float(x) for x in ve_tables["map_kpa"]]
        row["ve_before"] = [float(x) for x in np.asarray(ve_tables["ve_before"]).ravel()]
        row["ve_after"] = [float(x) for x in np.asarray(ve_tables["ve_after"]).ravel()]
    return row


def cell_columns(grid: Any, model_cells: Any, misses: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Per-cell stats of one run, for cells with any data, prediction or knock."""
    axes = grid.axes
    rpm_c, map_c = np.meshgrid(axes.rpm, axes.map_kpa)
    rpm_i, map_i = np.meshgrid(np.arange(axes.shape[1]), np.arange(axes.shape[0]))
    model = np.zeros(axes.n_cells) if model_cells is None else np.asarray(model_cells).ravel()
    miss = np.zeros(axes.n_cells, dtype=np.int32)
    for k, count in misses.items():
        rpm_s, map_s = k.split("@")
        hit = np.flatnonzero(
            (np.abs(rpm_c.ravel() - float(rpm_s)) < 0.5)
            & (np.abs(map_c.ravel() - float(map_s)) < 0.05)
        )
        miss[hit] = count
    hits = grid.hits.ravel()
    knock = grid.knock_events.ravel()
    sel = (hits > 0) | (knock > 0) | (model > 0) | (miss > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(grid.ratio_weight > 0, grid.ratio_wsum / grid.ratio_weight, np.nan).ravel()
    return {
        "rpm": rpm_c.ravel()[sel].astype(np.float64),
        "map_kpa": map_c.ravel()[sel].astype(np.float64),
        "rpm_idx": rpm_i.ravel()[sel].astype(np.int16),
        "map_idx": map_i.ravel()[sel].astype(np.int16),
        "hits": hits[sel].astype(np.int32),
        "dwell_s": grid.dwell_s.ravel()[sel].astype(np.float64),
        "lambda_weight": grid.lam_weight.ravel()[sel].astype(np.float64),
        "lambda_wsum": grid.lam_wsum.ravel()[sel].astype(np.float64),
        "lambda_wsum2": grid.lam_wsum2.ravel()[sel].astype(np.float64),
        "lambda_mean": grid.lambda_mean().ravel()[sel].astype(np.float32),
        "lambda_std": grid.lambda_std().ravel()[sel].astype(np.float32),
        "lambda_ratio": ratio[sel].astype(np.float32),
        "knock_events": knock[sel].astype(np.int32),
        "knock_retard_max_deg": grid.knock_retard_max.ravel()[sel].astype(np.float32),
        "model_hits": model[sel].astype(np.float32),
        "misses": miss[sel],
    }
