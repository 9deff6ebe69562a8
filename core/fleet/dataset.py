"""The fleet dataset on disk: versioned Parquet tables, Hive-partitioned by shop/vehicle/date.

Layout (documented in docs/fleet.md)::

    DIR/_dataset.json                                   name, version, tables and columns
    DIR/<table>/shop=<s>/vehicle=<v>/date=<YYYY-MM-DD>/part-<store id>.parquet

Tables: ``sessions`` (one row per run), ``cells`` (per run per cell), ``tests``
(per detected test: predicted and actual hits), ``patterns`` (measured patterns)
and, with ``--samples``, ``samples`` (fused rows). Partition values are slugs
(lower case, ``[a-z0-9._-]``) so every engine reads the paths the same way; the
vehicle's real name is the ``vehicle_name`` column.

Decisions:

* One file per table, partition and exporting store (``part-<store id>.parquet``),
  written to a temporary name and renamed: a reader never sees half a file, and
  re-exporting the same runs writes byte-identical files (rows sorted, no timestamps
  in the files), so re-export is idempotent. A store writes only its own files, so
  dynos and shops share one dataset without touching each other's runs; how an
  export replaces its earlier runs is ``core.fleet.writer``'s job.
* Explicit schemas (not inferred), so a column that is empty in one partition has
  the same type as in the next; Spark and Trino need that, DuckDB likes it.
* Partition columns live in the paths only (Hive style); read with
  ``hive_partitioning`` (DuckDB, Spark and Trino all do).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.fleet.analyze import SAMPLE_CHANNELS, RunData

DATASET_NAME = "dynoai-fleet"
DATASET_VERSION = 1
TABLES = ("sessions", "cells", "tests", "patterns", "samples")
PARTITIONS = ("shop", "vehicle", "date")


class DatasetError(ValueError):
    """The dataset folder cannot be written or read; the message is for people."""


def slug(value: str) -> str:
    """A partition value every engine reads back unchanged."""
    text = re.sub(r"[^a-z0-9._-]+", "-", value.strip().lower()).strip("-.")
    return text[:80] or "unknown"


def schemas() -> dict[str, Any]:
    """Pyarrow schemas of the tables (imported lazily: pyarrow is heavy)."""
    import pyarrow as pa

    f64, f32, i32, i64, s = pa.float64(), pa.float32(), pa.int32(), pa.int64(), pa.string()
    lst = pa.list_(pa.float64())
    sessions = [
        ("run_id", s), ("vehicle_name", s), ("started_at", pa.timestamp("us", tz="UTC")),
        ("duration_s", f64), ("rows", i64), ("rows_kept", i64), ("pulls", i32), ("tests", i32),
        ("hit_target", i32), ("n_cells", i32), ("covered_cells", i32),
        ("rpm_axis", lst), ("map_axis_kpa", lst),
        ("record_source", s), ("record_missing", s), ("model", s), ("tuner", s), ("notes", s),
        ("engine_family", s), ("displacement_cc", f64), ("compression_ratio", f64), ("stage", i32),
        ("cam_profile", s), ("cam_intake_duration_deg", f64), ("cam_exhaust_duration_deg", f64),
        ("cam_intake_lift_in", f64), ("cam_exhaust_lift_in", f64), ("cam_lsa_deg", f64),
        ("cam_overlap_front_deg", f64), ("cam_overlap_rear_deg", f64), ("cam_overlap_deg", f64),
        ("cam_overlap_class", s), ("exhaust", s), ("air_cleaner", s), ("throttle_body_mm", f64),
        ("injector_flow_lb_hr", f64), ("fuel_octane", f64),
        ("ambient_c", f64), ("baro_kpa", f64), ("humidity_pct", f64), ("altitude_m", f64),
        ("dyno_type", s), ("dyno_load_type", s), ("fan_airflow_cfm", f64), ("warmup_min", f64),
        ("wideband_front", s), ("wideband_rear", s),
        ("ve_status", s), ("ve_rpm_axis", lst), ("ve_map_axis_kpa", lst), ("ve_before", lst),
        ("ve_after", lst), ("log_path", s), ("exported_by", s),
    ]  # fmt: skip
    cells = [
        ("run_id", s), ("rpm", f64), ("map_kpa", f64), ("rpm_idx", pa.int16()),
        ("map_idx", pa.int16()), ("hits", i32), ("dwell_s", f64), ("lambda_weight", f64),
        ("lambda_wsum", f64), ("lambda_wsum2", f64), ("lambda_mean", f32),
        ("lambda_std", f32), ("lambda_ratio", f32), ("knock_events", i32),
        ("knock_retard_max_deg", f32), ("model_hits", f32), ("misses", i32),
        ("model", s), ("hit_target", i32), ("n_cells", i32), ("min_dwell_s", f64),
        ("max_lambda_se_pct", f64),
    ]  # fmt: skip
    tests = [
        ("run_id", s), ("test_index", i32), ("test_type", s), ("model_hits", f64),
        ("actual_hits", f64), ("lead_s", f64), ("prediction_error_pct", f64), ("t_start_s", f64),
        ("duration_s", f64), ("rpm_lo", f64), ("rpm_hi", f64), ("map_lo_kpa", f64),
        ("map_hi_kpa", f64), ("model", s),
    ]  # fmt: skip
    patterns = [
        ("run_id", s), ("kind", s), ("region", s), ("value", f64), ("unit", s), ("samples", i64),
        ("events", i64), ("rpm_lo", f64), ("rpm_hi", f64), ("map_lo_kpa", f64),
        ("map_hi_kpa", f64), ("tps_lo", f64), ("tps_hi", f64), ("detail", s), ("model", s),
    ]  # fmt: skip
    samples = [("run_id", s), ("t_s", f64), ("kept", pa.bool_())] + [
        (name, f32) for name in SAMPLE_CHANNELS
    ]
    meta = {
        b"dynoai.dataset": DATASET_NAME.encode(),
        b"dynoai.version": str(DATASET_VERSION).encode(),
    }
    return {
        name: pa.schema(cols, metadata=meta)
        for name, cols in (("sessions", sessions), ("cells", cells), ("tests", tests),
                           ("patterns", patterns), ("samples", samples))
    }  # fmt: skip


def table_of(name: str, runs: Sequence[RunData], schema: Any) -> Any | None:
    """One table's rows of ``runs`` (sorted by start, run id); None when there are none."""
    import pyarrow as pa

    runs = sorted(runs, key=lambda r: (r.session["started_at"], r.session["run_id"]))
    if name == "sessions":
        rows = [dict(r.session) for r in runs]
        for row in rows:
            row["started_at"] = int(round(row["started_at"] * 1e6))
        return pa.Table.from_pylist(rows, schema=schema)
    if name in ("tests", "patterns"):
        rows = [row for r in runs for row in getattr(r, name)]
        return pa.Table.from_pylist(rows, schema=schema) if rows else None
    candidates = [r.cells if name == "cells" else r.samples for r in runs]
    parts = [p for p in candidates if p is not None and len(p["run_id"])]
    if not parts:
        return None
    columns = {}
    for field in schema:
        values = np.concatenate([p[field.name] for p in parts])
        columns[field.name] = pa.array(values, type=field.type, from_pandas=True)
    return pa.Table.from_pydict(columns, schema=schema)


def prepare(out: Path) -> None:
    """Create the folder or check it is a dataset this dynoai may write; (re)write the marker."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create the dataset folder {out}: {exc.strerror or exc}"
        ) from None
    marker = out / "_dataset.json"
    if marker.exists():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(
                f"{marker} is unreadable ({exc}); is {out} a dynoai dataset?"
            ) from None
        if info.get("dataset") != DATASET_NAME:
            raise DatasetError(
                f"{out} holds another dataset ({info.get('dataset')!r}); choose another folder"
            )
        if int(info.get("version", 0)) > DATASET_VERSION:
            raise DatasetError(
                f"{out} was written by a newer dynoai (dataset version {info.get('version')}); "
                "upgrade dynoai or export to another folder"
            )
    elif any(not p.name.startswith(f".{marker.name}.") for p in out.iterdir()):
        raise DatasetError(f"{out} is not empty and not a dynoai dataset; choose an empty folder")
    text = json.dumps(describe(), indent=1, sort_keys=True) + "\n"
    if not marker.exists() or marker.read_text(encoding="utf-8") != text:
        tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, marker)


def describe() -> dict[str, Any]:
    """The ``_dataset.json`` body: name, version, partitioning, tables and their columns."""
    return {
        "dataset": DATASET_NAME,
        "version": DATASET_VERSION,
        "partitioning": {"style": "hive", "keys": list(PARTITIONS)},
        "files": "part-<store id>.parquet: one per exporting store and partition "
        "(part-0.parquet: written before stores had ids)",
        "tables": {
            name: [[f.name, str(f.type)] for f in schema] for name, schema in schemas().items()
        },
        "docs": "docs/fleet.md in dynoai-tui",
    }
