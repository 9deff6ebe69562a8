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

The machinery lives in :mod:`core.storage` (opening the file, schema, row
encoding and checks, run bookkeeping); this module is the public face.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.grid import CoverageGrid, GridError
from core.plan.learning import Calibration, CalibrationError
from core.plan.planner import Constraints
from core.storage.database import BUSY_TIMEOUT_MS, StoreFile, default_data_dir
from core.storage.errors import RunRefused, StoreError
from core.storage.rows import (
    ROW_ERRORS,
    RUN_COLUMNS,
    RunInfo,
    decode_arrays,
    decode_run,
    encode_arrays,
    parse_axes,
)
from core.storage.runs import LogBinner, RebuildReport, rebin_runs, upsert_run

__all__ = [
    "LogBinner",
    "RebuildReport",
    "RunInfo",
    "RunRefused",
    "StoreError",
    "VehicleStore",
    "default_data_dir",
]


_RUN_KEY = "learned_run"
"""Calibration JSON: the run whose session saved it last (``set_calibration(learned_from=)``)."""
_BEFORE_KEY = "before_run"
"""Calibration JSON: the calibration as it was before that run taught it."""


def check_vehicle_name(name: str) -> str:
    """``name`` stripped, or :class:`StoreError` saying why it cannot name a vehicle."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise StoreError(f"vehicle name {name!r}: use 1-100 characters")
    if any(ord(ch) < 32 for ch in name):
        raise StoreError(f"vehicle name {name!r}: control characters are not allowed")
    return name.strip()


class VehicleStore(StoreFile):
    """Vehicles, their runs and cumulative coverage in one SQLite file.

    Args:
        data_dir: Directory of the database; default :func:`default_data_dir`.
    """

    def __init__(
        self, data_dir: Path | str | None = None, *, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        self.damaged: dict[tuple[str, str], str] = {}
        """(vehicle, run id) -> why, for runs skipped because their row does not decode."""
        super().__init__(data_dir, busy_timeout_s=busy_timeout_s)

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
        name = check_vehicle_name(name)
        with self._connect() as db, self._write(db):
            self._ensure(db, name)

    def get_config_toml(self, name: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT config_toml FROM vehicles WHERE name = ?", (name,)).fetchone()
            return None if row is None else row[0]

    def set_config_toml(self, name: str, text: str) -> None:
        name = check_vehicle_name(name)
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
        name = check_vehicle_name(name)
        text = json.dumps(constraints.to_mapping(), sort_keys=True)
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            db.execute("UPDATE vehicles SET constraints_json = ? WHERE name = ?", (text, name))

    def get_calibration(self, name: str, run_id: str | None = None) -> Calibration:
        """The planner's calibration of ``name``; for a session of run ``run_id``, without that run.

        When the calibration was last saved by ``run_id`` itself (:meth:`set_calibration`
        with ``learned_from``), it is returned as it was before that run taught it: the
        session learns from the same tests again and replaces what they taught, as
        re-adding a run replaces its coverage (replaying one recording into a vehicle
        three times moved its prediction error 133 -> 118 -> 114 %).
        """
        data = self._calibration_data(name)
        if data is None:
            return Calibration()
        before = data.get(_BEFORE_KEY)
        if run_id is not None and data.get(_RUN_KEY) == run_id and isinstance(before, dict):
            data = before
        try:
            return Calibration.from_mapping(data)
        except CalibrationError as exc:
            raise StoreError(f"vehicle {name!r}: {exc}; `dynoai vehicle reset` clears it") from None

    def _calibration_data(self, name: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT calibration_json FROM vehicles WHERE name = ?", (name,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            data = json.loads(row[0])
        except (ValueError, TypeError) as exc:
            raise StoreError(f"vehicle {name!r}: {exc}; `dynoai vehicle reset` clears it") from None
        if not isinstance(data, dict):
            raise StoreError(f"vehicle {name!r}: not a table; `dynoai vehicle reset` clears it")
        return data

    def set_calibration(
        self,
        name: str,
        calibration: Calibration,
        learned_from: tuple[str, Calibration] | None = None,
    ) -> None:
        """Store ``calibration``; ``learned_from``: (run id, the calibration before it taught it).

        A later session of the same run starts from the calibration before it
        (:meth:`get_calibration`), so its lessons are never counted twice.
        """
        name = check_vehicle_name(name)
        data = calibration.to_mapping()
        if learned_from is not None:
            data[_RUN_KEY], data[_BEFORE_KEY] = learned_from[0], learned_from[1].to_mapping()
        text = json.dumps(data)
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            db.execute("UPDATE vehicles SET calibration_json = ? WHERE name = ?", (text, name))

    def learned_before(self, name: str, run_id: str) -> bool:
        """Run ``run_id`` of ``name`` is stored and other lessons were learned on top of it since.

        Its tests taught the calibration when it was stored, and what later runs learned
        builds on that: a session of it again (a replay) cannot take those lessons out,
        so it must not save what it learns (that would count its tests twice).
        """
        with self._connect() as db:
            stored = db.execute(
                "SELECT 1 FROM runs WHERE vehicle = ? AND run_id = ?", (name, run_id)
            ).fetchone()
        if stored is None:
            return False
        data = self._calibration_data(name)
        return data is None or data.get(_RUN_KEY) != run_id

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
        name = check_vehicle_name(name)
        if not run_id:
            raise StoreError("a run needs a non-empty run id")
        with self._connect() as db, self._write(db):
            self._ensure(db, name)
            upsert_run(
                db, name, run_id, grid, log_path=log_path, started_at=started_at,
                duration_s=duration_s, stats=dict(stats or {}), final=final,
                part_of=part_of, segment_id=segment_id,
            )  # fmt: skip

    def _run_rows(self, name: str) -> list[tuple[Any, ...]]:
        with self._connect() as db:
            self._require(db, name)
            return db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE vehicle = ? ORDER BY started_at, run_id",
                (name,),
            ).fetchall()

    def _decode_row(
        self, name: str, row: tuple[Any, ...]
    ) -> tuple[RunInfo, dict[str, np.ndarray]] | None:
        """A run row decoded, or None (and a note in ``damaged``) when it does not decode."""
        try:
            return decode_run(name, row)
        except ROW_ERRORS as exc:
            self.damaged[(name, str(row[0]))] = str(exc)
            return None

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
                    return CoverageGrid.from_arrays(parse_axes(axes_json, rid), arrays, hit_target)
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
        grids, missing = rebin_runs(self.list_runs(name), binner)
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
