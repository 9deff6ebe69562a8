"""BackgroundSaver: vehicle-store writes off the engine thread, retried until they land.

A store write can block for the whole SQLite busy timeout (another program holds
the lock) or fail outright (disk full, read-only directory). Neither may stop the
engine: the tracker hands each write here as a job and goes on. One worker thread
runs the jobs; a job that raises :class:`core.store.StoreError` is kept and tried
again after a growing pause (0.5 s up to 5 s) until it succeeds, and a newer job
for the same key (the next checkpoint of the same run) replaces an older one that
has not landed yet, so a long outage costs no memory and the last state wins.
While something is waiting, :attr:`error` says why, for the alarms; at the end of
a run :meth:`flush` waits a bounded time and says whether everything landed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.storage.errors import StoreError

RETRY_S = (0.5, 1.0, 2.0, 5.0)


class BackgroundSaver:
    """Runs store jobs on one worker thread, retrying each until it succeeds."""

    def __init__(self, name: str = "store-saver") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._pending: dict[str, Callable[[], None]] = {}
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.error = ""
        """Why the oldest waiting job last failed ('' when nothing is waiting on an error)."""
        self.failures = 0
        """Failed attempts so far (each is retried)."""
        self._attempt_started: float | None = None

    @property
    def stalled_s(self) -> float:
        """How long the attempt under way has been waiting (0 when none is)."""
        started = self._attempt_started
        return 0.0 if started is None else time.monotonic() - started

    @property
    def pending(self) -> bool:
        with self._cond:
            return bool(self._pending) or self._busy

    def submit(self, key: str, job: Callable[[], None]) -> None:
        """Queue ``job``; it replaces a job of the same ``key`` that has not started."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the saver is closed")
            self._pending.pop(key, None)
            self._pending[key] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every job landed (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Stop the worker after its current attempt; jobs still waiting are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                key = next(iter(self._pending))
                job = self._pending.pop(key)
                self._busy = True
                self._attempt_started = time.monotonic()
            try:
                job()
            except StoreError as exc:
                failed = str(exc)
            except Exception as exc:  # a bug in a job must not end the worker
                failed = f"store write failed: {exc!r}"
            else:
                failed = ""
            with self._cond:
                self._busy = False
                self._attempt_started = None
                if failed:
                    self.failures += 1
                    self.error = failed
                    self._pending.setdefault(key, job)  # a newer job for the key wins
                    pause = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                    attempt += 1
                    self._cond.notify_all()
                    self._cond.wait(pause)
                else:
                    attempt = 0
                    if not self._pending:
                        self.error = ""
                    self._cond.notify_all()
