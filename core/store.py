"""Per-vehicle memory: SQLite store of runs, coverage, constraints and planner calibration.

One SQLite file (stdlib ``sqlite3``, WAL journal, busy timeout) in the user data
directory, overridable with ``--data-dir`` / ``DYNOAI_DATA_DIR``. SQLite gives
what a tuner's laptop needs without a server: two processes (a ``dynoai log``
over SSH and a ``dynoai plan`` on the bench) may write at once, and a crash
mid-write leaves the previous state, because every change is one transaction.

Decision: the store keeps each run's *own* grid arrays with the axes they were
binned on, and cumulative coverage is their sum computed on read. Adding a run is
an upsert keyed by (vehicle, run id), so re-adding or checkpointing a run
replaces its contribution and can never double count; there is no running total
to drift out of step. When a vehicle's axes change, :meth:`VehicleStore.rebuild`
re-bins every run from its recorded log. Arrays are stored as ``.npz`` bytes
and read back with ``allow_pickle=False``: nothing in the file can run code.

Never shrink silently: a run that already holds more final coverage than a new
grid for the same run id is not replaced (:class:`RunRefused`); a replayed
recording *segment* that the live run already counts is not added twice; and
``rebuild`` keeps a run whose logs hold fewer samples than the run saw live.

Damage stays local: a run whose stored arrays, axes or stats do not decode is
skipped with a note in :attr:`VehicleStore.damaged` (vehicle, run, why) and the
other runs keep working; :meth:`VehicleStore.check` lists every problem of a
vehicle. Concurrency: opening retries while another process is creating the
store (WAL setup takes a lock the busy timeout does not cover). A data directory
the user cannot write is opened read-only (reads work, writes say why not).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.grid import CoverageGrid, GridError
from core.plan.learning import Calibration, CalibrationError
from core.plan.planner import Constraints
from core.source import SourceError

DB_NAME = "vehicles.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 15000
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


SETUP_RETRY_S = 15.0


class StoreError(ValueError):
    """The vehicle store cannot do what was asked. The message is for people."""


class _SetupBusy(Exception):
    """Another process holds the lock while it sets a new store up; retry."""


class RunRefused(StoreError):
    """Adding the run would shrink coverage the store already holds; nothing was changed."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run of a vehicle as listed by :meth:`VehicleStore.list_runs`."""

    run_id: str
    log_path: str | None
    started_at: float | None
    duration_s: float | None
    stats: dict[str, Any]
    axes: TableAxes
    hits_total: int
    final: bool
    """False while the run is only checkpointed (still running, or crashed)."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """Which runs a rebuild re-binned from their logs, and which it could not, and why."""

    rebuilt: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]
    """(run id, why) of runs whose log could not be re-read; they keep their old axes."""


LogBinner = Callable[[str], CoverageGrid]
"""Re-bins one recorded log onto the target axes (``core.pipeline.bin_log``); the store
itself never fuses or filters: it only keeps what the pipeline produced."""


def default_data_dir() -> Path:
    """``DYNOAI_DATA_DIR`` if set, else the platform's user data directory."""
    env = os.environ.get("DYNOAI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("dynoai", appauthor=False))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise StoreError(f"vehicle name {name!r}: use 1-100 characters")
    if any(ord(ch) < 32 for ch in name):
        raise StoreError(f"vehicle name {name!r}: control characters are not allowed")
    return name.strip()


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buf.getvalue()


def decode_arrays(blob: bytes, what: str) -> dict[str, np.ndarray]:
    if not isinstance(blob, bytes):
        raise StoreError(f"{what}: stored coverage arrays are not a blob")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise StoreError(f"{what}: stored coverage arrays are unreadable ({exc})") from None


def _stats(stats_json: object, what: str) -> dict[str, Any]:
    try:
        stats = json.loads(stats_json) if isinstance(stats_json, str) else None
    except json.JSONDecodeError as exc:
        raise StoreError(f"{what}: stored run stats are unreadable ({exc})") from None
    if not isinstance(stats, dict):
        raise StoreError(f"{what}: stored run stats are not a table")
    return stats


def _hits_total(arrays: Mapping[str, np.ndarray]) -> int:
    return int(np.asarray(arrays.get("hits", 0)).sum())


class VehicleStore:
    """Vehicles, their runs and cumulative coverage in one SQLite file.

    Args:
        data_dir: Directory of the database; default :func:`default_data_dir`.
    """

    def __init__(
        self, data_dir: Path | str | None = None, *, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        self.busy_timeout_ms = int(busy_timeout_s * 1000)
        """How long one statement waits for another process's lock before failing."""
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        self.path = self.data_dir / DB_NAME
        self.damaged: dict[tuple[str, str], str] = {}
        """(vehicle, run id) -> why, for runs skipped because their row does not decode."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {self.data_dir}: {exc.strerror or exc}; "
                "pass --data-dir or set DYNOAI_DATA_DIR"
            ) from None
        self.read_only = not os.access(self.data_dir, os.W_OK) or (
            self.path.exists() and not os.access(self.path, os.W_OK)
        )
        """The directory or file is not writable: reads work, writes raise StoreError."""
        if self.read_only and not self.path.exists():
            raise StoreError(
                f"no vehicle store in {self.data_dir} and the directory is not writable; "
                "pass --data-dir or set DYNOAI_DATA_DIR"
            )
        deadline = time.monotonic() + SETUP_RETRY_S
        while True:
            try:
                self._setup()
                return
            except _SetupBusy:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"vehicle store {self.path} is busy (another dynoai is setting it up); "
                        "try again"
                    ) from None
                time.sleep(0.01 + 0.04 * np.random.random())

    def _setup(self) -> None:
        with self._connect(setup=True) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"vehicle store {self.path} was written by a newer dynoai "
                    f"(schema {version}); upgrade dynoai or use another --data-dir"
                )
            if version < SCHEMA_VERSION:
                if self.read_only:
                    raise StoreError(
                        f"vehicle store {self.path} is read-only and not set up; "
                        "pass a writable --data-dir"
                    )
                with self._write(db):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- connection -----------------------------------------------------------------

    @contextmanager
    def _connect(self, *, setup: bool = False) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; SQLite errors become one StoreError line.

        ``setup``: a lock during the first statements (another process is switching
        a new store to WAL, which the busy timeout does not wait for) raises
        ``_SetupBusy`` so the caller can retry.
        """
        db: sqlite3.Connection | None = None
        ready = False
        try:
            if self.read_only:
                # immutable: no -shm/-wal files are created (the directory is read-only)
                uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
                db = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                db = sqlite3.connect(
                    self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
                )
                db.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA foreign_keys = ON")
            ready = True
            yield db
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if setup and not ready and ("locked" in text or "busy" in text):
                raise _SetupBusy from None
            if "readonly" in text or "read-only" in text:
                raise StoreError(
                    f"vehicle store {self.path} is read-only; nothing was saved "
                    "(pass a writable --data-dir)"
                ) from None
            if "disk is full" in text or "disk I/O" in text:
                raise StoreError(f"vehicle store {self.path}: {text}; nothing was saved") from None
            if "locked" in text or "busy" in text:
                raise StoreError(
                    f"vehicle store {self.path} is busy (another dynoai is writing); try again"
                ) from None
            raise StoreError(f"vehicle store {self.path}: {text}; check --data-dir") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"vehicle store {self.path} is not a readable SQLite database ({exc}); "
                "move it aside or pass another --data-dir"
            ) from None
        finally:
            if db is not None:
                db.close()

    @contextmanager
    def _write(self, db: sqlite3.Connection) -> Iterator[None]:
        """One write transaction: all of it lands, or none of it (rollback on any error)."""
        if self.read_only:
            raise StoreError(
                f"vehicle store {self.path} is read-only (its directory or file is not "
                "writable); nothing was saved"
            )
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):  # a failed COMMIT may have rolled back already
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction for modules that keep their own tables (``core.fleet``)."""
        with self._connect() as db, self._write(db):
            yield db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read connection (same error handling as the store's own reads)."""
        with self._connect() as db:
            yield db

    def _require(self, db: sqlite3.Connection, name: str) -> tuple[Any, ...]:
        row = db.execute(
            "SELECT config_toml, constraints_json, calibration_json FROM vehicles WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            known = [r[0] for r in db.execute("SELECT name FROM vehicles ORDER BY name")]
            hint = f" (known: {', '.join(known)})" if known else " (the store has no vehicles yet)"
            raise StoreError(f"unknown vehicle {name!r}{hint}")
        return tuple(row)

    @staticmethod
    def _ensure(db: sqlite3.Connection, name: str) -> None:
        db.execute(
            "INSERT INTO vehicles (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
            (name, time.time()),
        )

    # -- vehicles -------------------------------------------------------------------

    def list_vehicles(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT name FROM vehicles ORDER BY name")]

    def has_vehicle(self, name: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM vehicles WHERE name = ?", (name,)).fetchone()
            return row is not None

    def ensure_vehicle(self, name: str) -> None:
        name = _check_name(name)
        with self._connect() as db, self._write(db):
            self._ensure(db, name)

    def get_config_toml(self, name: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT config_toml FROM vehicles WHERE name = ?", (name,)).fetchone()
            return None if row is None else row[0]

    def set_config_toml(self, name: str, text: str) -> None:
        name = _check_name(name)
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            db.execute("UPDATE vehicles SET config_toml = ? WHERE name = ?", (text, name))

    def get_constraints(self, name: str) -> Constraints | None:
        """The constraints saved with ``dynoai constraints --set`` (None: never set)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT constraints_json FROM vehicles WHERE name = ?", (name,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            data = json.loads(row[0])
            if not isinstance(data, dict):
                raise ValueError("not a table")
            return Constraints.from_mapping(data)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and ConfigError are ValueErrors
            raise StoreError(
                f"vehicle {name!r}: stored constraints are unreadable ({exc}); "
                f"set them again with dynoai constraints --vehicle {name} --set KEY=VALUE"
            ) from None

    def set_constraints(self, name: str, constraints: Constraints) -> None:
        name = _check_name(name)
        text = json.dumps(constraints.to_mapping(), sort_keys=True)
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            db.execute("UPDATE vehicles SET constraints_json = ? WHERE name = ?", (text, name))

    def get_calibration(self, name: str) -> Calibration:
        with self._connect() as db:
            row = db.execute(
                "SELECT calibration_json FROM vehicles WHERE name = ?", (name,)
            ).fetchone()
        if row is None or row[0] is None:
            return Calibration()
        try:
            data = json.loads(row[0])
            if not isinstance(data, dict):
                raise CalibrationError("not a table")
            return Calibration.from_mapping(data)
        except (ValueError, TypeError, CalibrationError) as exc:
            raise StoreError(f"vehicle {name!r}: {exc}; `dynoai vehicle reset` clears it") from None

    def set_calibration(self, name: str, calibration: Calibration) -> None:
        name = _check_name(name)
        text = json.dumps(calibration.to_mapping())
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            db.execute("UPDATE vehicles SET calibration_json = ? WHERE name = ?", (text, name))

    def reset_vehicle(self, name: str) -> int:
        """Forget a vehicle's runs, coverage and calibration (config and constraints stay).

        Returns the number of runs removed.
        """
        with self._connect() as db, self._write(db):
            self._require(db, name)
            removed = db.execute("DELETE FROM runs WHERE vehicle = ?", (name,)).rowcount
            db.execute("UPDATE vehicles SET calibration_json = NULL WHERE name = ?", (name,))
            return int(removed)

    # -- runs -----------------------------------------------------------------------

    def add_run(
        self,
        name: str,
        run_id: str,
        grid: CoverageGrid,
        *,
        log_path: str | None = None,
        started_at: float | None = None,
        duration_s: float | None = None,
        stats: Mapping[str, object] | None = None,
        final: bool = True,
        part_of: str | None = None,
        segment_id: str | None = None,
    ) -> None:
        """Store (or replace) one run's grid; the vehicle is created if new.

        Idempotent by ``run_id``: a checkpoint and the final add of the same run
        replace each other, so the run counts once. ``stats["segments"]`` lists the
        recording segments a live run wrote; a replay of one of them passes
        ``part_of`` (the live run's id) and ``segment_id``.

        Raises:
            RunRefused: the store already holds more final coverage for ``run_id``
                than ``grid`` on the same axes, or ``part_of`` already counts this
                segment. Nothing is changed.
            StoreError: the store cannot be written (message for people).
        """
        name = _check_name(name)
        if not run_id:
            raise StoreError("a run needs a non-empty run id")
        arrays = grid.to_arrays()
        blob = encode_arrays(arrays)
        axes_json = json.dumps(grid.axes.to_dict())
        stats = dict(stats or {})
        stats_json = json.dumps(stats, default=str)
        listed = stats.get("segments")
        segments = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            if part_of and segment_id:
                self._refuse_counted_segment(db, name, part_of, segment_id)
            self._refuse_shrink(db, name, run_id, grid, _hits_total(arrays))
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

    @staticmethod
    def _refuse_counted_segment(
        db: sqlite3.Connection, name: str, part_of: str, segment_id: str
    ) -> None:
        row = db.execute(
            "SELECT stats_json FROM runs WHERE vehicle = ? AND run_id = ?", (name, part_of)
        ).fetchone()
        if row is None:
            return
        try:
            segments = _stats(row[0], "").get("segments", [])
        except StoreError:
            return
        if isinstance(segments, list) and segment_id in segments:
            raise RunRefused(
                f"this recording is part of run {part_of[:8]} that vehicle {name!r} already "
                "counts; its coverage was not added again"
            )

    def _refuse_shrink(
        self, db: sqlite3.Connection, name: str, run_id: str, grid: CoverageGrid, hits: int
    ) -> None:
        row = db.execute(
            "SELECT axes_json, arrays, final FROM runs WHERE vehicle = ? AND run_id = ?",
            (name, run_id),
        ).fetchone()
        if row is None or not row[2]:
            return
        try:
            if _axes(row[0], run_id) != grid.axes:
                return
            old = _hits_total(decode_arrays(row[1], run_id))
        except StoreError:
            return  # a damaged row may be replaced
        if old > hits:
            raise RunRefused(
                f"run {run_id[:8]} of {name!r} already holds {old} hits, more than the {hits} "
                "of this one (a replay of part of a recording cannot replace the whole run); "
                "not replaced"
            )

    def _run_rows(self, name: str) -> list[tuple[Any, ...]]:
        with self._connect() as db:
            self._require(db, name)
            return db.execute(
                """SELECT run_id, log_path, started_at, duration_s, stats_json, axes_json,
                          arrays, final FROM runs WHERE vehicle = ? ORDER BY started_at, run_id""",
                (name,),
            ).fetchall()

    def _decode_row(
        self, name: str, row: tuple[Any, ...]
    ) -> tuple[RunInfo, dict[str, np.ndarray]] | None:
        """A run row decoded, or None (and a note in ``damaged``) when it does not decode."""
        run_id, log_path, started, duration, stats_json, axes_json, blob, final = row
        what = f"run {run_id!r} of {name!r}"
        try:
            arrays = decode_arrays(blob, what)
            info = RunInfo(
                str(run_id), log_path, started, duration, _stats(stats_json, what),
                _axes(axes_json, str(run_id)), _hits_total(arrays), bool(final),
            )  # fmt: skip
            CoverageGrid.from_arrays(info.axes, arrays, 1)
        except (StoreError, GridError, ValueError, TypeError) as exc:
            self.damaged[(name, str(run_id))] = str(exc)
            return None
        return info, arrays

    def list_runs(self, name: str) -> list[RunInfo]:
        """The vehicle's readable runs (damaged ones are noted in ``damaged``)."""
        out = []
        for row in self._run_rows(name):
            decoded = self._decode_row(name, row)
            if decoded is not None:
                out.append(decoded[0])
        return out

    def cumulative_grid(
        self,
        name: str,
        axes: TableAxes,
        hit_target: int = 10,
        *,
        exclude_run: str | None = None,
        rule: CoverageRule | None = None,
    ) -> CoverageGrid:
        """Sum of the vehicle's runs binned on ``axes`` (runs on other axes need a rebuild).

        An unknown vehicle has no coverage yet: an empty grid, not an error. ``rule``
        decides when a cell counts as covered (the vehicle's ``coverage_rule``). A run
        whose row does not decode is left out and noted in ``damaged``.
        """
        grid = CoverageGrid(axes, hit_target, rule=rule)
        if not self.has_vehicle(name):
            return grid
        for row in self._run_rows(name):
            if row[0] == exclude_run:
                continue
            decoded = self._decode_row(name, row)
            if decoded is None or decoded[0].axes != axes:
                continue
            grid.merge(CoverageGrid.from_arrays(axes, decoded[1], hit_target))
        return grid

    def run_grid(self, name: str, run_id: str, hit_target: int = 10) -> CoverageGrid | None:
        """One run's own grid on the axes it was binned on (None: no such run)."""
        for rid, _, _, _, _, axes_json, blob, _ in self._run_rows(name):
            if rid == run_id:
                arrays = decode_arrays(blob, f"run {run_id!r} of {name!r}")
                try:
                    return CoverageGrid.from_arrays(_axes(axes_json, rid), arrays, hit_target)
                except GridError as exc:
                    raise StoreError(f"run {run_id!r} of {name!r}: {exc}") from None
        return None

    def check(self, name: str) -> tuple[int, list[str]]:
        """(runs readable, problems) of one vehicle: every row is decoded and checked."""
        from core.vehicle import parse_config_text

        problems: list[str] = []
        with self._connect() as db:
            config_toml, _, _ = self._require(db, name)
        if config_toml:
            try:
                parse_config_text(config_toml, source="stored config")
            except ValueError as exc:
                problems.append(str(exc))
        for getter in (self.get_constraints, self.get_calibration):
            try:
                getter(name)
            except StoreError as exc:
                problems.append(str(exc))
        good = 0
        for row in self._run_rows(name):
            if self._decode_row(name, row) is None:
                problems.append(self.damaged[(name, str(row[0]))])
            else:
                good += 1
        return good, problems

    def stale_runs(self, name: str, axes: TableAxes) -> list[str]:
        """Run ids binned on other axes than ``axes`` (excluded until rebuilt)."""
        return [r.run_id for r in self.list_runs(name) if r.axes != axes]

    def rebuild(
        self,
        name: str,
        axes: TableAxes,
        binner: LogBinner,
    ) -> RebuildReport:
        """Re-bin every run of ``name`` onto ``axes`` from its recorded log.

        Logs are read first; then all runs are replaced in one transaction, so a
        failure half way leaves the store as it was. A run whose log is missing or
        unreadable is reported and keeps its old arrays (it stops counting until
        its log is found); so is a run its logs hold only part of (the recording
        was stopped and restarted, or started late): re-binning it would shrink it.
        """
        grids: dict[str, CoverageGrid] = {}
        missing: list[tuple[str, str]] = []
        for run in self.list_runs(name):
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
                partial = _partly_recorded(paths, run.stats.get("samples"))
                if partial:
                    missing.append((run.run_id, partial))
                    continue
                grid = binner(paths[0])
                for path in paths[1:]:  # the segments of one run, each fused on its own
                    grid.merge(binner(path))
                grids[run.run_id] = grid
            except (OSError, ValueError, SourceError) as exc:
                missing.append((run.run_id, str(exc)))
        missing.extend((run_id, why) for (vehicle, run_id), why in self.damaged.items()
                       if vehicle == name)  # fmt: skip
        with self._connect() as db, self._write(db):
            for run_id, grid in grids.items():
                db.execute(
                    "UPDATE runs SET axes_json = ?, arrays = ?, updated_at = ? "
                    "WHERE vehicle = ? AND run_id = ?",
                    (json.dumps(axes.to_dict()), encode_arrays(grid.to_arrays()), time.time(),
                     name, run_id),
                )  # fmt: skip
        return RebuildReport(tuple(grids), tuple(missing))


def _partly_recorded(paths: list[str], samples_live: object) -> str:
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


def _axes(axes_json: str, run_id: str) -> TableAxes:
    try:
        return TableAxes.from_dict(json.loads(axes_json))
    except (json.JSONDecodeError, ValueError) as exc:
        raise StoreError(f"run {run_id!r}: stored axes are unreadable ({exc})") from None
