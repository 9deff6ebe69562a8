"""The vehicle store's tables and schema version (``PRAGMA user_version``).

Decision: a store written by a newer dynoai is refused rather than guessed at,
and a read-only store that was never set up is refused rather than half-used;
``CREATE TABLE IF NOT EXISTS`` makes setup safe to repeat.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.storage.errors import StoreError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vehicles (
    name TEXT PRIMARY KEY,
    config_toml TEXT,
    constraints_json TEXT,
    calibration_json TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    vehicle TEXT NOT NULL REFERENCES vehicles(name) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    log_path TEXT,
    started_at REAL,
    duration_s REAL,
    stats_json TEXT NOT NULL DEFAULT '{}',
    axes_json TEXT NOT NULL,
    arrays BLOB NOT NULL,
    final INTEGER NOT NULL DEFAULT 1,
    updated_at REAL NOT NULL,
    PRIMARY KEY (vehicle, run_id)
);
"""


def needs_setup(db: sqlite3.Connection, path: Path, read_only: bool) -> bool:
    """True when the tables must be created; StoreError when the store cannot be used."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"vehicle store {path} was written by a newer dynoai "
            f"(schema {version}); upgrade dynoai or use another --data-dir"
        )
    if version < SCHEMA_VERSION and read_only:
        raise StoreError(
            f"vehicle store {path} is read-only and not set up; pass a writable --data-dir"
        )
    return version < SCHEMA_VERSION


def create_tables(db: sqlite3.Connection) -> None:
    """Create the tables and stamp the version (inside the caller's write transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
