"""Fleet questions answered by DuckDB over the Parquet dataset (local folder or object store).

DuckDB reads the Hive-partitioned files in place (no load step, no server), pushes
filters into the partition paths and the files' statistics, and runs in-process:
what a shop needs to ask "how covered is the M8 114 across all our bikes" from a
laptop. The same SQL runs over ``s3://`` / ``gs://`` / ``https://`` URLs once
DuckDB's ``httpfs`` extension is installed (see docs/fleet.md).

Each query returns ``(columns, rows)`` so the command can print text or JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from core.fleet.dataset import DATASET_NAME, DATASET_VERSION

Result = tuple[list[str], list[tuple[Any, ...]]]


class FleetError(ValueError):
    """The dataset cannot be queried; the message is for people."""


def _is_url(location: str) -> bool:
    return "://" in location


def check_dataset(location: str | Path) -> None:
    """Raise FleetError unless a local ``location`` is a dataset this dynoai reads.

    A URL is not checked here (DuckDB reads it when queried). Cheap, without DuckDB:
    commands check ``--priors`` with it before anything runs.
    """
    loc = str(location).rstrip("/")
    if _is_url(loc):
        return
    root = Path(loc)
    if not root.exists():
        raise FleetError(f"{root} does not exist; write a dataset with dynoai export --parquet DIR")
    marker = root / "_dataset.json"
    if not marker.is_file():
        raise FleetError(f"{root} is not a dynoai fleet dataset (no _dataset.json); "
                         "write one with dynoai export --parquet DIR")  # fmt: skip
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        version = int(info.get("version", 0))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise FleetError(f"{marker} is unreadable ({exc})") from None
    if info.get("dataset") != DATASET_NAME or version > DATASET_VERSION:
        raise FleetError(
            f"{root}: dataset {info.get('dataset')!r} version {info.get('version')} "
            f"is not one this dynoai reads (version <= {DATASET_VERSION})"
        )


def connect(location: str | Path) -> Any:
    """A DuckDB connection with views ``sessions``, ``cells``, ``tests``, ``patterns``."""
    import duckdb

    loc = str(location).rstrip("/")
    check_dataset(loc)
    db = duckdb.connect()
    for table in ("sessions", "cells", "tests", "patterns"):
        pattern = f"{loc}/{table}/*/*/*/*.parquet"
        if not _is_url(loc) and not any(Path(loc, table).glob("*/*/*/*.parquet")):
            _empty_view(db, table)
            continue
        _run(
            db,
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{_sql_text(pattern)}', "
            "hive_partitioning = true)",
        )
    return db


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _empty_view(db: Any, table: str) -> None:
    import pyarrow as pa

    from core.fleet.dataset import schemas

    schema = schemas()[table]
    empty = pa.Table.from_pylist([], schema=schema)
    db.register(f"_{table}_empty", empty)
    db.execute(
        f"CREATE VIEW {table} AS SELECT *, ''::VARCHAR AS shop, ''::VARCHAR AS vehicle, "
        f"''::VARCHAR AS date FROM _{table}_empty"
    )


def _run(db: Any, sql: str, params: list[Any] | None = None) -> Result:
    import duckdb

    try:
        cur = db.execute(sql, params or [])
    except duckdb.Error as exc:
        raise FleetError(f"fleet query failed: {str(exc).splitlines()[0]}") from None
    columns = [d[0] for d in cur.description]
    return columns, cur.fetchall()


def coverage(db: Any, model: str | None = None) -> Result:
    """Cumulative coverage per model: cells whose data summed over all its runs is trusted.

    Covered = trusted, as ``core.coverage.confidence``: hits, settled dwell and the
    standard error of the mean lambda (combined exactly from each run's weighted sums).

    Reads ``cells`` alone (model, hit target and table size are on every row), so the
    question costs one scan; sessions without any binned cell do not count.
    """
    where = "WHERE model = ?" if model else ""
    return _run(
        db,
        f"""
        WITH base AS MATERIALIZED (
            SELECT model, shop, vehicle, run_id, rpm, map_kpa, hits, dwell_s, lambda_weight,
                   lambda_wsum, lambda_wsum2, hit_target, min_dwell_s, max_lambda_se_pct, n_cells
            FROM cells {where}),
        per_cell AS (
            SELECT model, rpm, map_kpa, sum(hits) AS hits, sum(dwell_s) AS dwell_s,
                   sum(lambda_weight) AS w, sum(lambda_wsum) AS s1, sum(lambda_wsum2) AS s2,
                   max(hit_target) AS target, max(min_dwell_s) AS min_dwell_s,
                   min(max_lambda_se_pct) AS max_se, max(n_cells) AS n_cells
            FROM base GROUP BY model, rpm, map_kpa),
        judged AS (
            SELECT *, hits >= target AND dwell_s >= min_dwell_s AND w > 0 AND
                   100.0 * sqrt(greatest(s2 / w - (s1 / w) * (s1 / w), 0.0)) / sqrt(w) / (s1 / w)
                       <= max_se AS covered
            FROM per_cell),
        per_model AS (
            SELECT model, count(DISTINCT (shop, vehicle)) AS vehicles,
                   count(DISTINCT run_id) AS sessions
            FROM base GROUP BY model)
        SELECT m.model, m.vehicles, m.sessions,
               count(*) FILTER (WHERE p.covered) AS covered_cells,
               max(p.n_cells) AS n_cells,
               round(100.0 * count(*) FILTER (WHERE p.covered) / max(p.n_cells), 1)
                   AS covered_pct,
               sum(p.hits) AS hits
        FROM per_model m JOIN judged p ON p.model = m.model
        GROUP BY m.model, m.vehicles, m.sessions
        ORDER BY m.sessions DESC, m.model""",
        [model] if model else None,
    )


def fill_rates(db: Any, model: str | None = None, by_model: bool = False) -> Result:
    """Actual / predicted hits per test type across vehicles (the planner's fill-rate factor)."""
    group = "model, test_type" if by_model else "test_type"
    where = "WHERE model = ?" if model else ""
    return _run(
        db,
        f"""
        SELECT {group}, count(*) AS tests, count(DISTINCT (shop, vehicle)) AS vehicles,
               round(sum(actual_hits) / nullif(sum(model_hits), 0), 3) AS fill_rate,
               round(quantile_cont(actual_hits / nullif(model_hits, 0), 0.1), 3) AS p10,
               round(quantile_cont(actual_hits / nullif(model_hits, 0), 0.9), 3) AS p90,
               round(median(lead_s), 2) AS lead_s,
               round(avg(prediction_error_pct), 1) AS mean_error_pct
        FROM tests {where}
        GROUP BY ALL ORDER BY {group}""",
        [model] if model else None,
    )


_PATTERN_JOIN = (
    "FROM patterns p JOIN sessions s "
    "ON p.run_id = s.run_id AND p.shop = s.shop AND p.vehicle = s.vehicle"
)
"""A pattern's session: its run in the same shop's vehicle (run ids name runs per store)."""

PATTERN_QUERIES: dict[str, str] = {
    "ve_change": """
        SELECT s.model, s.stage, s.cam_overlap_class, p.region, count(DISTINCT p.run_id) AS sessions,
               round(sum(p.value * p.samples) / sum(p.samples), 2) AS ve_change_pct,
               round(stddev_samp(p.value), 2) AS sd_between_sessions, sum(p.samples) AS samples
        {join}
        WHERE p.kind = 've_change' {and_model}
        GROUP BY ALL ORDER BY s.model, s.stage, p.region""",
    "knock_cell": """
        SELECT s.model, s.compression_ratio, s.fuel_octane, p.rpm_lo AS rpm, p.map_lo_kpa AS map_kpa,
               count(DISTINCT p.run_id) AS sessions, sum(p.events) AS knock_events,
               round(max(p.value), 1) AS max_retard_deg, sum(p.samples) AS samples
        {join}
        WHERE p.kind = 'knock_cell' {and_model}
        GROUP BY ALL ORDER BY knock_events DESC LIMIT 30""",
    "heat_soak": """
        SELECT s.model, s.fan_airflow_cfm, count(*) AS sessions,
               round(avg(p.value), 3) AS lambda_pct_per_10c,
               round(avg(CAST(json_extract(p.detail, '$.iat_rise_c') AS DOUBLE)), 1) AS iat_rise_c,
               sum(p.samples) AS samples
        {join}
        WHERE p.kind = 'heat_soak' {and_model}
        GROUP BY ALL ORDER BY s.model""",
    "decel_lean": """
        SELECT s.model, s.exhaust, p.rpm_lo, p.rpm_hi, count(DISTINCT p.run_id) AS sessions,
               sum(p.events) AS lean_events,
               round(max(CAST(json_extract(p.detail, '$.enrichment_pct') AS DOUBLE)), 1)
                   AS enrichment_pct,
               sum(p.samples) AS samples
        {join}
        WHERE p.kind = 'decel_lean' {and_model}
        GROUP BY ALL HAVING sum(p.events) > 0 ORDER BY lean_events DESC LIMIT 30""",
    "imbalance": """
        SELECT s.model, s.exhaust, s.cam_profile, p.rpm_lo AS rpm, p.map_lo_kpa AS map_kpa,
               count(DISTINCT p.run_id) AS sessions,
               round(sum(p.value * p.samples) / sum(p.samples), 2) AS afr_rear_minus_front,
               sum(p.samples) AS samples
        {join}
        WHERE p.kind = 'imbalance' {and_model}
        GROUP BY ALL ORDER BY abs(afr_rear_minus_front) DESC LIMIT 30""",
}
PATTERN_KINDS = tuple(PATTERN_QUERIES)


def patterns(db: Any, kind: str, model: str | None = None) -> Result:
    sql = PATTERN_QUERIES[kind].format(
        join=_PATTERN_JOIN, and_model="AND s.model = ?" if model else ""
    )
    return _run(db, sql, [model] if model else None)


def priors(db: Any, model: str | None) -> dict[str, Any]:
    """Fleet fill-rate priors for a new vehicle of ``model`` (None or unknown: the whole fleet)."""
    scope = model
    if model is not None:
        _, rows = _run(db, "SELECT count(*) FROM sessions WHERE model = ?", [model])
        if not rows[0][0]:
            scope = None
    where = "WHERE s.model = ?" if scope else ""
    params = [scope] if scope else None
    _, rows = _run(
        db,
        f"""SELECT test_type, sum(actual_hits), sum(model_hits), count(*), median(lead_s)
            FROM tests s {where} GROUP BY test_type ORDER BY test_type""",
        params,
    )
    fits = {r[0]: {"actual": float(r[1]), "model": float(r[2]), "tests": int(r[3]),
                   "lead_s": float(r[4]) if r[4] is not None and math.isfinite(r[4]) else 0.0}
            for r in rows if r[2]}  # fmt: skip
    _, rows = _run(
        db,
        f"""SELECT count(*), count(DISTINCT (s.shop, s.vehicle)),
                   sum(s.rows) / nullif(sum(s.duration_s), 0)
            FROM sessions s {where}""",
        params,
    )
    sessions, vehicles, rate = rows[0]
    _, rows = _run(
        db,
        f"""SELECT median(map_hi_kpa) FROM tests
            {"WHERE model = ? AND" if scope else "WHERE"} test_type = 'wot_pull'""",
        params,
    )
    wot_map = rows[0][0]
    # cells the model's runs were expected to fill and never did, in at least half its runs
    _, rows = _run(
        db,
        f"""SELECT rpm, map_kpa, count(*) FILTER (WHERE misses > 0) AS missed, sum(hits)
            FROM cells s {where} GROUP BY ALL""",
        params,
    )
    misses = {
        f"{r[0]:.0f}@{r[1]:.1f}": 1 for r in rows if r[3] == 0 and r[2] >= max(1, sessions / 2)
    }
    return {
        "model": scope,
        "asked_model": model,
        "sessions": int(sessions or 0),
        "vehicles": int(vehicles or 0),
        "fits": fits,
        "sample_rate_hz": float(rate) if rate else None,
        "wot_map_kpa": float(wot_map) if wot_map is not None else None,
        "misses": misses,
    }


PRIOR_MAX_HITS = 400.0
"""Cap on the prior's weight in hits: a new vehicle's own first test still counts."""


def calibration_from_priors(p: dict[str, Any]) -> Any:
    """A Calibration seeded with fleet priors (Gamma mean = fleet fill rate)."""
    from core.plan.learning import Calibration, TestFit

    cal = Calibration()
    for kind, f in p["fits"].items():
        strength = min(f["model"], PRIOR_MAX_HITS)
        rate = f["actual"] / f["model"]
        cal.fits[kind] = TestFit(alpha=rate * strength, beta=strength, tests=0, lead_s=f["lead_s"])
    if p.get("sample_rate_hz"):
        cal.sample_rate_hz = p["sample_rate_hz"]
    if p.get("wot_map_kpa"):
        cal.wot_map_kpa = p["wot_map_kpa"]
    cal.misses = dict(p.get("misses", {}))
    return cal
