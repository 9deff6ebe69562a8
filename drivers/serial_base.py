"""Serial base: open, read, stamp, parse, watch and reconnect one serial device.

Every serial driver is this class plus a pure incremental parser (pyserial's
``serial.threaded.Protocol`` idea: bytes in, frames out). The base owns what is
the same for all of them: clear errors on open, timestamps taken on receipt with
``time.monotonic()``, a stream-age watchdog (stale after 3x the expected frame
period), and reconnecting when the device disappears, without ever blocking
longer than the read timeout while it waits. A device path is watched (a cheap
``os.stat`` every 50 ms): the moment it comes back as a new device node the port
is reopened, so a replug is read within a second whatever the backoff; the
exponential backoff (0.5 -> 5 s) only paces retries of a path that is there but
will not open (and of pyserial URLs, which cannot be watched).
Request/response devices (ELM327, Speeduino) override :meth:`SerialSource._poll`
and :meth:`SerialSource._after_open`.

pyserial is imported here, and this module is only loaded through the lazy
registry, so naming the simulator never imports it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from abc import abstractmethod
from collections import deque
from typing import Any, Protocol

import serial

from core.frames import Block
from core.source import Source, SourceError, SourceState
from drivers.registry import SourceURI

Row = tuple[float, dict[str, float]]
"""One decoded sample: receipt time (monotonic s) and channel values."""

NO_FRAME_HINT = "bytes arrive but no valid frame: wrong baud or wrong device type?"
"""Status message when bytes keep arriving but the parser finds nothing in them."""

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0
WATCH_PERIOD_S = 0.05
"""How often a lost device's path is checked for the device coming back."""
FRESH_RETRY_S = 0.1
"""First retry delay after a just-reappeared device fails to open (udev may still be at it)."""
NO_FRAME_LIMIT_S = 2.0
"""How long bytes may arrive without a valid frame before we call it a wrong baud."""


class StreamParser(Protocol):
    """A pure incremental parser: no I/O, keeps its own partial-frame buffer."""

    status_text: str
    """The device's own status from the latest frame ('' when all is well)."""

    def feed(self, data: bytes, t: float) -> list[Row]:
        """Decode what ``data`` completes; a row per frame (invalid readings are NaN)."""
        ...

    def reset(self) -> None:
        """Forget partial input (after a reconnect): hunt for the next frame start."""
        ...


def open_error(port: str, exc: BaseException) -> SourceError:
    """Turn an open failure into one line that says what to do."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return SourceError(f"no such device {port} (is it plugged in? run 'dynoai sources')")
    if code == errno.EACCES or "Permission denied" in text:
        return SourceError(
            f"permission denied on {port}: add yourself to the dialout group "
            "(sudo usermod -aG dialout $USER) and log in again"
        )
    if code == errno.EBUSY or "exclusively lock" in text or "Resource busy" in text:
        return SourceError(f"{port} is busy: another program has it open; close that program")
    return SourceError(f"cannot open {port}: {text}")


def _refuse_non_device(path: str, raw: str) -> None:
    """A regular file or a directory named as the port is a typo, not a device that failed.

    pyserial would open it and fail with "Inappropriate ioctl for device"; say what it is.
    A path that is not there yet is left to ``open`` (it may be plugged in later).
    """
    if "://" in path:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    kind = "a regular file" if stat.S_ISREG(mode) else "a directory" if stat.S_ISDIR(mode) else ""
    if kind:
        raise SourceError(
            f"{raw}: {path} is {kind}, not a serial device; give the port, e.g. /dev/ttyUSB0 "
            "('dynoai sources' lists them)"
        )


def device_identity(path: str) -> tuple[int, int, int] | None:
    """Which device node ``path`` is now (following symlinks), or None if it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_rdev)


class SerialSource(Source):
    """A Source on one serial port (a device path or a pyserial URL such as ``loop://``).

    Subclasses set ``default_baud`` and ``expected_period_s`` and build the parser
    in :meth:`make_parser`.
    """

    default_baud = 19200
    expected_period_s = 0.1
    """Nominal time between frames; the source is stale after 3x this without one."""
    port_timeout_s = 0.02
    """pyserial read timeout for one chunk; bounds how late ``read`` returns."""

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(name, uri.raw)
        if not uri.path:
            raise SourceError(f"{uri.raw}: no serial port given (e.g. {uri.scheme}:/dev/ttyUSB0)")
        self.port_path: str = uri.path
        _refuse_non_device(uri.path, uri.raw)
        self.baud: int = uri.get_int("baud", self.default_baud)
        if self.baud <= 0:
            raise SourceError(f"{uri.raw}: baud={self.baud} must be positive")
        self.parser: StreamParser = self.make_parser(uri)
        self.port: Any = None
        self.bytes_received = 0
        self.frames_decoded = 0
        self._last_frame_t = 0.0
        self._last_byte_t = 0.0
        self._bytes_since_frame = 0
        self._opened_t = 0.0
        self._backoff_s = BACKOFF_FIRST_S
        self._next_attempt_t = 0.0
        self._lost_reason = ""
        self._closed = False
        self._watchable = "://" not in self.port_path
        self._queued: deque[Block] = deque()
        """Blocks of the last read not handed over yet (one per set of channels)."""
        self._seen_identity: tuple[int, int, int] | None = None
        """The device node last opened or tried: a different one at the path is a replug."""

    @abstractmethod
    def make_parser(self, uri: SourceURI) -> StreamParser:
        """The protocol parser for this device type."""

    # -- open / close -------------------------------------------------------------------

    def _open_port(self) -> Any:
        kwargs: dict[str, Any] = {"baudrate": self.baud, "timeout": self.port_timeout_s}
        if "://" not in self.port_path:
            kwargs["exclusive"] = True
        return serial.serial_for_url(self.port_path, **kwargs)

    def open(self) -> None:
        self._closed = False
        self.set_status(SourceState.CONNECTING, f"opening {self.port_path} at {self.baud} baud")
        try:
            self.port = self._open_port()
        except (serial.SerialException, OSError, ValueError) as exc:
            err = open_error(self.port_path, exc)
            self.set_status(SourceState.FAILED, str(err))
            raise err from None
        try:
            self._start_session()
        except (serial.SerialException, OSError) as exc:
            self._close_port()
            err = SourceError(f"{self.port_path} failed while starting: {exc}")
            self.set_status(SourceState.FAILED, str(err))
            raise err from None
        except SourceError as err:
            self._close_port()
            self.set_status(SourceState.FAILED, str(err))
            raise

    def _start_session(self) -> None:
        """Common to first open and reconnect: clean buffers, resync, device init."""
        if self._watchable:
            self._seen_identity = device_identity(self.port_path)
        self.port.reset_input_buffer()
        self.parser.reset()
        now = time.monotonic()
        self._opened_t = self._last_frame_t = self._last_byte_t = now
        self._bytes_since_frame = 0
        self._after_open()
        self.set_status(SourceState.CONNECTED, f"{self.port_path} at {self.baud} baud")

    def _after_open(self) -> None:
        """Device initialisation after (re)opening; raise SourceError if it does not answer."""

    def _close_port(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            # The device may already be gone; there is nothing left to release then.
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def take_held(self) -> list[Block]:
        held = list(self._queued)
        self._queued.clear()
        return held

    def close(self) -> None:
        self._closed = True
        self._queued.clear()
        self._close_port()

    # -- reading ----------------------------------------------------------------------

    def read(self, timeout: float = 0.1) -> Block | None:
        if self._closed:
            return None
        if self._queued:
            return self._queued.popleft()
        if self.port is None:
            self._try_reconnect(timeout)
            return None
        try:
            rows = self._poll(timeout)
        except (serial.SerialException, OSError) as exc:
            self._lost(str(exc) or type(exc).__name__)
            return None
        self._watch(rows)
        return self._blocks(rows)

    def _blocks(self, rows: list[Row]) -> Block | None:
        """The first of one block per set of channels in ``rows``; the others queue up.

        ``Block.from_rows`` fills a channel a row lacks with NaN, and fusion holds NaN
        as an invalid reading: a row without a channel must not blank it.
        """
        if not rows:
            return None
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in rows:
            groups.setdefault(tuple(row[1]), []).append(row)
        blocks = [Block.from_rows(self.name, members) for members in groups.values()]
        self._queued.extend(blocks[1:])
        return blocks[0]

    def _poll(self, timeout: float) -> list[Row]:
        """Streaming devices: read chunks until a frame decodes or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        rows: list[Row] = []
        while True:
            chunk = self.port.read(self.port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                rows.extend(self._feed(chunk, now))
            if rows or now >= deadline:
                return rows

    def _feed(self, chunk: bytes, t: float) -> list[Row]:
        """Feed the parser and keep the byte/frame counters the watchdog uses."""
        self.bytes_received += len(chunk)
        self._bytes_since_frame += len(chunk)
        self._last_byte_t = t
        rows = self.parser.feed(chunk, t)
        self._count_frames(rows, t)
        return rows

    def _count_frames(self, rows: list[Row], t: float) -> None:
        """Note decoded frames for the watchdog (for drivers that decode outside ``feed``)."""
        if rows:
            self.frames_decoded += len(rows)
            self._bytes_since_frame = 0
            self._last_frame_t = t

    def _watch(self, rows: list[Row]) -> None:
        """Status from the stream age: connected (+ device status text) or stale (+ why)."""
        now = time.monotonic()
        if rows:
            self.set_status(SourceState.CONNECTED, self.parser.status_text)
            return
        age_s = now - self._last_frame_t
        if age_s < 3.0 * self.expected_period_s:
            return
        if (
            self._bytes_since_frame
            and now - self._opened_t >= NO_FRAME_LIMIT_S
            and (age_s >= NO_FRAME_LIMIT_S)
        ):
            self.set_status(SourceState.STALE, NO_FRAME_HINT)
        elif now - self._last_byte_t >= NO_FRAME_LIMIT_S:
            self.set_status(
                SourceState.STALE,
                f"no data from {self.port_path} for {age_s:.1f} s: is the device powered?",
            )
        else:
            why = self.parser.status_text or "no valid frame"
            self.set_status(SourceState.STALE, f"{why} for {age_s:.1f} s")

    # -- losing and finding the device ------------------------------------------------

    def _lost(self, reason: str) -> None:
        now = time.monotonic()
        self._close_port()
        self._lost_reason = reason
        self._backoff_s = BACKOFF_FIRST_S
        self._next_attempt_t = now + self._backoff_s
        self.emit("disconnect", now, f"{self.port_path}: {reason}")
        self.set_status(SourceState.RECONNECTING, f"lost {self.port_path}: {reason}")

    def _try_reconnect(self, timeout: float) -> None:
        """Reopen when the device path shows a new device, or when the backoff is up.

        Waits at most ``timeout``, watching the path every :data:`WATCH_PERIOD_S`.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            now = time.monotonic()
            if self._watchable:
                identity = device_identity(self.port_path)
                if identity is None:
                    self._seen_identity = None  # gone: whatever appears there next is new
                elif identity != self._seen_identity:
                    self._seen_identity = identity  # plugged back in: try at once
                    self._next_attempt_t = now
                    self._backoff_s = FRESH_RETRY_S
            if now >= self._next_attempt_t:
                break
            wait_s = min(self._next_attempt_t, deadline) - now
            if wait_s <= 0:
                return
            time.sleep(min(wait_s, WATCH_PERIOD_S) if self._watchable else wait_s)
        try:
            self.port = self._open_port()
            self._start_session()
        except (serial.SerialException, OSError, ValueError, SourceError) as exc:
            self._close_port()
            why = (
                str(open_error(self.port_path, exc))
                if not isinstance(exc, SourceError)
                else str(exc)
            )
            self._next_attempt_t = time.monotonic() + self._backoff_s
            if self._watchable and device_identity(self.port_path) is None:
                retry = "waiting for it to come back"
            else:
                retry = f"retry in {self._backoff_s:.1f} s"
            self.set_status(
                SourceState.RECONNECTING,
                f"lost {self.port_path} ({self._lost_reason}); {retry}: {why}",
            )
            self._backoff_s = min(self._backoff_s * 2.0, BACKOFF_MAX_S)
            return
        self._backoff_s = BACKOFF_FIRST_S
        self.emit("reconnect", time.monotonic(), f"{self.port_path} is back")
