"""The Source interface every driver, the simulator and replay implement.

One small interface (``open`` / ``read`` / ``close`` / ``status``) keeps the engine
ignorant of hardware. ``read`` may block briefly (up to its timeout) and is only
ever called from the source's own thread (see ``core.session``), so the engine
tick never waits on I/O. A source reports trouble through ``status`` and events
instead of raising out of ``read``, except for :class:`SourceError` when it has
given up for good (``failed``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.frames import Block


class SourceError(Exception):
    """A source cannot be opened or has failed for good. The message is for people."""


class SourceInputError(SourceError):
    """The source's input is bad (a missing or corrupt log file), not a device: exit 2."""


class SourceState(StrEnum):
    """Where a source is in its life."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    FINISHED = "finished"
    """A finite source (replay, a batch simulation) has delivered everything."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A source's connection state, its message and since when."""

    state: SourceState
    message: str = ""
    since: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """Something a source wants recorded: disconnect, reconnect, a marker from the log."""

    source: str
    kind: str
    """``disconnect``, ``reconnect``, ``marker``, ``note``, ``pull_start``, ``pull_stop`` ..."""
    t: float
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Source(ABC):
    """A stream of :class:`Block` from one device, simulator or log.

    Subclasses implement ``open``, ``read`` and ``close``; they call
    ``set_status`` and ``emit`` from their own thread. ``status`` and
    ``drain_events`` are safe to call from any thread.
    """

    name: str
    """Unique name within a session (used in recordings and the UI)."""
    uri: str
    """The URI the source was made from."""
    finite: bool = False
    """True for replay and batch simulation: ``read`` returns ``None`` forever once done."""
    realtime: bool = True
    """False when blocks come faster than the wall clock (max-speed replay, batch sim)."""
    own_clock: bool = False
    """True when sample times are not ``time.monotonic()`` (replay keeps recorded times):
    staleness and elapsed time are then judged by data time, not the wall clock."""

    def __init__(self, name: str, uri: str) -> None:
        self.name = name
        self.uri = uri
        self._status = SourceStatus(SourceState.CONNECTING)
        self._events: list[SourceEvent] = []
        self._lock = threading.Lock()

    @abstractmethod
    def open(self) -> None:
        """Open the device or file. Raises :class:`SourceError` with a clear message."""

    @abstractmethod
    def read(self, timeout: float = 0.1) -> Block | None:
        """The next block, or ``None`` when nothing arrived within ``timeout`` (or when done)."""

    @abstractmethod
    def close(self) -> None:
        """Release the device. Safe to call twice."""

    @property
    def status(self) -> SourceStatus:
        with self._lock:
            return self._status

    def set_status(self, state: SourceState, message: str = "") -> None:
        with self._lock:
            if self._status.state != state or self._status.message != message:
                self._status = SourceStatus(state, message)

    def emit(self, kind: str, t: float, text: str = "", **data: Any) -> None:
        with self._lock:
            self._events.append(SourceEvent(self.name, kind, t, text, dict(data)))

    def drain_events(self) -> list[SourceEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def channels(self) -> dict[str, str]:
        """Canonical channels this source is expected to deliver, with units (for log headers)."""
        return {}

    def take_held(self) -> list[Block]:
        """Blocks already taken off the device that ``read`` has not handed over yet.

        A driver that splits one drain into a block per channel set hands the rest over
        by the next ``read`` calls. At a stop there are no next calls: the session takes
        them here, once the source's pump thread has ended, so every sample received is
        binned and recorded (a stop of a live CAN broadcast lost 3-9 decoded frames).
        """
        return []

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class SourceURI:
    """A parsed source URI: ``scheme:path?key=value&...``."""

    raw: str
    scheme: str
    path: str
    params: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.params.get(key, default)

    def get_float(self, key: str, default: float) -> float:
        value = self.params.get(key)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise SourceError(f"{self.raw}: {key}={value!r} is not a number") from None

    def get_int(self, key: str, default: int) -> int:
        value = self.params.get(key)
        if value is None:
            return default
        try:
            return int(value, 0)
        except ValueError:
            raise SourceError(f"{self.raw}: {key}={value!r} is not a whole number") from None

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.params.get(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SourceError(f"{self.raw}: {key}={value!r} is not true/false")
