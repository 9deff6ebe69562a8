"""Session records and VE tables in the vehicle store, in tables of their own.

Decision: the fleet's tables are additive (``CREATE TABLE IF NOT EXISTS`` on first
use) and do not bump the store's schema version, so an older dynoai still opens a
store that a newer one wrote records into, and the store's own tables stay
untouched. A vehicle has one current record (what ``dynoai vehicle edit`` wrote);
each recording carries a copy of it in its header, which is what the export
prefers for that run (the build may have changed since).

The store's fleet id (:func:`store_id`) lives here too: it names the store's files in a
dataset several stores export into.

VE tables before/after are stored per run by :func:`set_ve_tables` (the hook for
``dynoai ve``); until a run has them the export says ``not recorded``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.fleet.record import RecordError, SessionRecord
from core.storage.rows import decode_arrays, encode_arrays
from core.store import StoreError, VehicleStore

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS fleet_vehicle_records (
        vehicle TEXT PRIMARY KEY,
        record_json TEXT NOT NULL,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS fleet_ve_tables (
        vehicle TEXT NOT NULL,
        run_id TEXT NOT NULL,
        rpm_json TEXT NOT NULL,
        map_kpa_json TEXT NOT NULL,
        arrays BLOB NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (vehicle, run_id))""",
    """CREATE TABLE IF NOT EXISTS fleet_store (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
)


def _ensure_tables(store: VehicleStore) -> None:
    with store.transaction() as db:
        for statement in _SCHEMA:
            db.execute(statement)


def get_record(store: VehicleStore, vehicle: str) -> SessionRecord | None:
    """The vehicle's current record (None: never written)."""
    _ensure_tables(store)
    with store.reading() as db:
        row = db.execute(
            "SELECT record_json FROM fleet_vehicle_records WHERE vehicle = ?", (vehicle,)
        ).fetchone()
    if row is None:
        return None
    try:
        return SessionRecord.from_dict(json.loads(row[0]), f"stored record of {vehicle!r}")
    except (json.JSONDecodeError, RecordError) as exc:
        raise StoreError(
            f"vehicle {vehicle!r}: stored session record is unreadable ({exc})"
        ) from None


def set_record(store: VehicleStore, vehicle: str, record: SessionRecord) -> None:
    """Save the vehicle's current record (the vehicle is created if new)."""
    store.ensure_vehicle(vehicle)
    _ensure_tables(store)
    text = json.dumps(record.to_dict(), sort_keys=True)
    with store.transaction() as db:
        db.execute(
            """INSERT INTO fleet_vehicle_records (vehicle, record_json, updated_at) VALUES (?, ?, ?)
               ON CONFLICT(vehicle) DO UPDATE SET record_json = excluded.record_json,
               updated_at = excluded.updated_at""",
            (vehicle, text, time.time()),
        )


def store_id(store: VehicleStore) -> str:
    """The store's id in fleet datasets (16 hex digits, made on first use and kept).

    It names the store's files in every partition, so stores exporting into one
    dataset never write each other's files. A copied data directory keeps the id: it
    is the same store to the dataset.
    """
    _ensure_tables(store)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO fleet_store (key, value) VALUES ('store_id', ?) ON CONFLICT DO NOTHING",
            (uuid.uuid4().hex[:16],),
        )
        row = db.execute("SELECT value FROM fleet_store WHERE key = 'store_id'").fetchone()
    return str(row[0])


def header_metadata(store: VehicleStore | None, vehicle: str | None) -> dict[str, Any]:
    """Extra recording-header metadata: the vehicle's current record, if it has one."""
    from core.fleet.record import HEADER_KEY

    if store is None or not vehicle:
        return {}
    record = get_record(store, vehicle)
    return {} if record is None else {HEADER_KEY: record.to_dict()}


def set_ve_tables(
    store: VehicleStore,
    vehicle: str,
    run_id: str,
    rpm: Any,
    map_kpa: Any,
    ve_before: Any,
    ve_after: Any,
) -> None:
    """Keep a run's VE table before and after correction (shape [n_map, n_rpm], VE %)."""
    rpm_a = np.asarray(rpm, dtype=np.float64)
    map_a = np.asarray(map_kpa, dtype=np.float64)
    before = np.asarray(ve_before, dtype=np.float64)
    after = np.asarray(ve_after, dtype=np.float64)
    shape = (map_a.size, rpm_a.size)
    for name, table in (("ve_before", before), ("ve_after", after)):
        if table.shape != shape:
            raise StoreError(
                f"run {run_id!r}: {name} has shape {table.shape}, the axes need {shape}"
            )
    _ensure_tables(store)
    blob = encode_arrays({"ve_before": before, "ve_after": after})
    with store.transaction() as db:
        db.execute(
            """INSERT INTO fleet_ve_tables (vehicle, run_id, rpm_json, map_kpa_json, arrays,
                                            updated_at) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(vehicle, run_id) DO UPDATE SET rpm_json = excluded.rpm_json,
               map_kpa_json = excluded.map_kpa_json, arrays = excluded.arrays,
               updated_at = excluded.updated_at""",
            (vehicle, run_id, json.dumps(rpm_a.tolist()), json.dumps(map_a.tolist()), blob,
             time.time()),
        )  # fmt: skip


def get_ve_tables(store: VehicleStore, vehicle: str) -> dict[str, Mapping[str, np.ndarray]]:
    """Run id -> {"rpm", "map_kpa", "ve_before", "ve_after"} for the vehicle's runs that have them."""
    _ensure_tables(store)
    with store.reading() as db:
        rows = db.execute(
            "SELECT run_id, rpm_json, map_kpa_json, arrays FROM fleet_ve_tables WHERE vehicle = ?",
            (vehicle,),
        ).fetchall()
    out: dict[str, Mapping[str, np.ndarray]] = {}
    for run_id, rpm_json, map_json, blob in rows:
        arrays = decode_arrays(blob, f"VE tables of run {run_id!r}")
        out[run_id] = {
            "rpm": np.asarray(json.loads(rpm_json), dtype=np.float64),
            "map_kpa": np.asarray(json.loads(map_json), dtype=np.float64),
            **arrays,
        }
    return out
