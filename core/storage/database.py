"""Opening the vehicle store's SQLite file safely: WAL, busy timeout, read-only, setup retry.

Decision: short-lived connections (one per operation) in WAL mode with a busy
timeout, so two processes (a ``dynoai log`` over SSH and a ``dynoai plan`` on the
bench) can share the file; every write is one ``BEGIN IMMEDIATE`` transaction,
so a crash mid-write leaves the previous state. Opening retries while another
process is creating the store (the WAL switch takes a lock the busy timeout does
not cover). A data directory the user cannot write is opened read-only and
immutable (reads work, writes say why not). Every SQLite error becomes one
:class:`StoreError` line that names the file and what to do.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from core.storage import schema
from core.storage.errors import StoreError

DB_NAME = "vehicles.sqlite3"
BUSY_TIMEOUT_MS = 15000
SETUP_RETRY_S = 15.0


class _SetupBusy(Exception):
    """Another process holds the lock while it sets a new store up; retry."""


def default_data_dir() -> Path:
    """``DYNOAI_DATA_DIR`` if set, else the platform's user data directory."""
    env = os.environ.get("DYNOAI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("dynoai", appauthor=False))


class StoreFile:
    """The store's SQLite file, set up on open; subclasses add what the tables mean.

    Args:
        data_dir: Directory of the database; default :func:`default_data_dir`.
        busy_timeout_s: How long one statement waits for another process's lock.
    """

    def __init__(
        self, data_dir: Path | str | None = None, *, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        self.busy_timeout_ms = int(busy_timeout_s * 1000)
        """How long one statement waits for another process's lock before failing."""
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        self.path = self.data_dir / DB_NAME
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
            if schema.needs_setup(db, self.path, self.read_only):
                with self._write(db):
                    schema.create_tables(db)

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
