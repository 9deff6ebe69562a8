"""Simulated candidate results kept on disk, so a new process does not simulate them again.

Every ``dynoai plan``, the end of a ``replay --headless`` and the dashboard's warm-up
ran the same candidate simulations from scratch: 4-6 s of CPU on the 2-core machine
for results that depend only on the vehicle preset, the table, the filters, the rate
and the test (:class:`core.plan.testsim.ModelKey` and the test's arguments), never on
the coverage. :func:`sim.testsim.cached_sparse` looks here before it simulates and
stores what it simulated.

Decisions:
- One SQLite file (``sim-cache.sqlite3``) in ``$DYNOAI_CACHE_DIR``, else the platform's
  user cache directory (``~/.cache/dynoai`` on Linux); ``DYNOAI_CACHE_DIR=off`` turns
  it off (the test suite does, so its processes start cold as before).
- The key is a SHA-256 of the function's name, its pickled arguments and the *code
  version*: a hash of every ``.py`` file of the ``core`` and ``sim`` packages and the
  numpy version. Any change to the simulator, the pipeline or the filters is a new
  version and every old entry a miss (pruned away as new ones come).
- Values are pickled: the file is written by this user's own processes only, in a
  directory made ``0700``.
- It is a cache: any failure (no room, a read-only or damaged file, a lock held too
  long by another process) is a miss or a skipped store, never an error of the command.
- At most :data:`MAX_ENTRIES` entries: past that the oldest tenth goes (~2 kB each).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

ENV = "DYNOAI_CACHE_DIR"
OFF = ("off", "0", "no", "false", "none")
"""Values of :data:`ENV` that turn the disk cache off."""
FILE_NAME = "sim-cache.sqlite3"
MAX_ENTRIES = 20000
"""Entries kept (a plan stores ~50-100; a live session adds its held columns)."""
MISS = object()
"""What :meth:`DiskCache.get` returns for a key it does not hold."""


def cache_dir() -> Path | None:
    """Where the cache lives, or None when :data:`ENV` turns it off."""
    env = os.environ.get(ENV)
    if env is not None:
        if env.strip().lower() in OFF or not env.strip():
            return None
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("dynoai", appauthor=False))


_version: bytes | None = None
_version_lock = threading.Lock()


def code_version() -> bytes:
    """A hash of the code a simulated result depends on (read once per process)."""
    global _version
    with _version_lock:
        if _version is None:
            import numpy as np

            digest = hashlib.sha256(np.__version__.encode())
            root = Path(__file__).resolve().parents[1]
            for package in ("core", "sim"):
                for path in sorted((root / package).rglob("*.py")):
                    digest.update(str(path.relative_to(root)).encode())
                    digest.update(path.read_bytes())
            _version = digest.digest()
        return _version


class DiskCache:
    """A key -> pickled value table in one SQLite file; every failure is a miss."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self._puts = 0

    def key(self, name: str, args: tuple[Any, ...]) -> bytes | None:
        try:
            blob = pickle.dumps(args, protocol=5)
        except Exception:  # an argument that does not pickle: not cached on disk
            return None
        return hashlib.sha256(code_version() + name.encode() + b"\0" + blob).digest()

    def get(self, name: str, args: tuple[Any, ...]) -> Any:
        key = self.key(name, args)
        if key is None:
            return MISS
        with self._lock:
            db = self._connect()
            if db is None:
                return MISS
            try:
                row = db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error:
                return MISS
        if row is None:
            return MISS
        try:
            return pickle.loads(row[0])
        except Exception:  # a damaged entry: simulated again and stored over it
            return MISS

    def put(self, name: str, args: tuple[Any, ...], value: Any) -> None:
        key = self.key(name, args)
        if key is None:
            return
        try:
            blob = pickle.dumps(value, protocol=5)
        except Exception:
            return
        with self._lock:
            db = self._connect()
            if db is None:
                return
            try:
                db.execute(
                    "INSERT OR REPLACE INTO entries (key, value, stored_at) VALUES (?, ?, ?)",
                    (key, blob, time.time()),
                )
                self._puts += 1
                if self._puts % 100 == 1:
                    self._prune(db)
            except sqlite3.Error:
                return  # locked by another process for too long, no room: not stored

    def _prune(self, db: sqlite3.Connection) -> None:
        (count,) = db.execute("SELECT COUNT(*) FROM entries").fetchone()
        if count > MAX_ENTRIES:
            db.execute(
                "DELETE FROM entries WHERE key IN "
                "(SELECT key FROM entries ORDER BY stored_at LIMIT ?)",
                (count - MAX_ENTRIES + MAX_ENTRIES // 10,),
            )

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._broken:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(
                self.path, timeout=0.5, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a cache: a lost entry is simulated again
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries "
                "(key BLOB PRIMARY KEY, value BLOB NOT NULL, stored_at REAL NOT NULL)"
            )
        except (sqlite3.Error, OSError):
            self._broken = True  # not a database, no room, read-only: no disk cache
            return None
        self._db = db
        return db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


_caches: dict[Path, DiskCache] = {}
_caches_lock = threading.Lock()


def disk_cache() -> DiskCache | None:
    """The process's cache for the current :data:`ENV` (None when it is off)."""
    directory = cache_dir()
    if directory is None:
        return None
    with _caches_lock:
        cache = _caches.get(directory)
        if cache is None:
            cache = _caches[directory] = DiskCache(directory)
        return cache
