"""Opening python-can buses from source URIs, with errors for people and a common clock.

Shared by the ``can:`` and ``obd-can:`` sources. Both name a bus the same way,
``INTERFACE/CHANNEL?bitrate=500000`` (``socketcan/can0``, ``virtual/test``,
``slcan/dev/ttyACM0``, ``pcan/PCAN_USBBUS1``), so the parsing, the mapping of the
many exception types python-can backends raise onto one clear :class:`SourceError`
line, the reconnect backoff and the timestamp policy live here once.

Timestamp policy: every sample leaves a driver on ``time.monotonic()`` so several
live sources fuse on one clock. ``msg.timestamp`` is used when it can be placed on
that clock: when it is already near ``time.monotonic()`` (boot-relative backends,
e.g. pcan without the uptime package) it is used as is; when it is near
``time.time()`` (virtual, socketcan kernel stamps) it is shifted by the current
wall-to-monotonic offset; anything else (device clocks) falls back to the receipt
time. The result is clamped to ``[previous sample, receipt time]`` so a wall-clock
step never puts a sample in the future or makes time run backwards.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.source import Source, SourceError, SourceState
from drivers.registry import SourceURI

if TYPE_CHECKING:
    import can

CLOCK_MATCH_S = 5.0
"""A device timestamp within this many seconds of a clock is taken to be on that clock."""

BUS_OPTIONS_OWN = frozenset({"bitrate", "name", "dbc", "map", "decoder", "stoich", "stale"})
"""URI options the drivers consume; any other option is passed to ``can.Bus`` as a keyword."""


@dataclass(frozen=True, slots=True)
class BusSpec:
    """Where a bus is: the python-can interface, channel, bitrate and extra keywords."""

    interface: str
    channel: str
    bitrate: int | None
    extra: dict[str, Any]

    def describe(self) -> str:
        # SocketCAN takes its bitrate from the OS ('ip link'), not from us: never claim it.
        rate = f" at {self.bitrate} bit/s" if self.bitrate and self.interface != "socketcan" else ""
        return f"CAN {self.interface} channel {self.channel!r}{rate}"


def ip_link_command(channel: str, bitrate: int) -> str:
    """The commands that set a SocketCAN interface's bitrate (root needed)."""
    return (
        f"sudo ip link set {channel} down && sudo ip link set {channel} type can bitrate "
        f"{bitrate} && sudo ip link set {channel} up"
    )


def socketcan_bitrate(channel: str) -> int | None:
    """The bitrate the OS has set on a SocketCAN interface, or None when unknown.

    Read from ``ip -details -json link show dev CHANNEL`` (iproute2); a vcan, a
    missing interface or a missing ``ip`` tool all give None.
    """
    try:
        done = subprocess.run(
            ["ip", "-details", "-json", "link", "show", "dev", channel],
            capture_output=True,
            text=True,
            timeout=1.0,
            check=False,
        )
        rate = json.loads(done.stdout)[0]["linkinfo"]["info_data"]["bittiming"]["bitrate"]
        return int(rate)
    except (OSError, subprocess.SubprocessError, ValueError, LookupError, TypeError):
        return None


def bitrate_note(spec: BusSpec, os_bitrate: Callable[[str], int | None] = socketcan_bitrate) -> str:
    """What to tell the user about ``bitrate=`` on SocketCAN ('' for other interfaces).

    python-can's socketcan backend cannot set the bitrate (the kernel owns it), so
    instead of claiming the requested rate this says what the interface really
    runs at, and the command that changes it when that differs or is unknown.
    """
    if spec.interface != "socketcan" or spec.bitrate is None:
        return ""
    actual = os_bitrate(spec.channel)
    if actual == spec.bitrate:
        return f"{spec.channel} runs at {actual} bit/s (set by the OS)"
    command = ip_link_command(spec.channel, spec.bitrate)
    if actual is None:
        return (
            f"bitrate={spec.bitrate} not applied: SocketCAN cannot set the bitrate from here; "
            f"run: {command}"
        )
    return (
        f"{spec.channel} runs at {actual} bit/s, not {spec.bitrate}: SocketCAN cannot change "
        f"it from here; run: {command}"
    )


def _coerce(value: str) -> Any:
    """Turn a URI option value into the int / float / bool python-can expects."""
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


SERIAL_INTERFACES = ("slcan", "serial", "robotell", "seeedstudio")
"""python-can interfaces whose channel is a serial device path."""


def parse_bus_spec(uri: SourceURI, own: frozenset[str] = BUS_OPTIONS_OWN) -> BusSpec:
    """Split ``INTERFACE/CHANNEL`` and the bus options out of a ``can:``-style URI.

    The channel keeps any further slashes, so ``slcan/dev/ttyACM0`` names the
    device ``/dev/ttyACM0``; a serial channel starting with ``dev/``, or one that
    exists only from the root (``slcan/tmp/ttyCAN``), gets its leading slash back. Options the drivers do not consume (``rx_queue_size``,
    ``tty_baudrate``, ``fd`` ...) go to ``can.Bus`` unchanged.
    """
    interface, sep, channel = uri.path.strip().partition("/")
    interface = interface.strip().lower()
    if not interface or not sep or not channel:
        raise SourceError(
            f"{uri.raw}: name the bus as INTERFACE/CHANNEL, e.g. "
            f"'{uri.scheme}:socketcan/can0' or '{uri.scheme}:slcan/dev/ttyACM0'"
        )
    import can

    if interface not in can.VALID_INTERFACES:
        known = ", ".join(sorted(can.VALID_INTERFACES))
        raise SourceError(f"{uri.raw}: python-can has no interface {interface!r}; known: {known}")
    # ``slcan/dev/ttyACM0``: the slash after the interface is also the path's root.
    # Not only /dev: a by-hand pty link such as slcan/tmp/ttyCAN as well.
    rooted = channel.startswith("dev/") or (
        not os.path.exists(channel) and os.path.exists("/" + channel)
    )
    if interface in SERIAL_INTERFACES and not channel.startswith("/") and rooted:
        channel = "/" + channel
    bitrate: int | None = uri.get_int("bitrate", 0) or None
    if bitrate is not None and not 10_000 <= bitrate <= 8_000_000:
        raise SourceError(f"{uri.raw}: bitrate={bitrate} is not a CAN bitrate (e.g. 500000)")
    extra = {k: _coerce(v) for k, v in uri.params.items() if k not in own}
    return BusSpec(interface, channel, bitrate, extra)


def _explain(spec: BusSpec, exc: BaseException) -> str:
    """One line saying what went wrong opening a bus and what to do about it."""
    import can

    where = spec.describe()
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, can.CanInterfaceNotImplementedError):
        known = ", ".join(sorted(can.VALID_INTERFACES))
        if "Unknown interface" in text:
            return f"{where}: python-can has no interface {spec.interface!r}; known: {known}"
        return f"{where}: the {spec.interface} driver is not usable here ({text})"
    errno_value = getattr(exc, "errno", None)
    cause = exc.__cause__ or exc.__context__
    errno_value = errno_value or getattr(cause, "errno", None)
    if errno_value in (errno.EACCES, errno.EPERM) or "ermission denied" in text:
        return (
            f"{where}: permission denied; add your user to the 'dialout' group "
            "(serial adapters) or bring the interface up as root"
        )
    if errno_value in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such" in text:
        hint = (
            f"create it with '{ip_link_command(spec.channel, spec.bitrate or 500000)}'"
            if spec.interface == "socketcan"
            else "check the cable and the device name ('dynoai sources' lists them)"
        )
        return f"{where}: no such device; {hint}"
    if errno_value == errno.EAFNOSUPPORT:
        return f"{where}: this system has no SocketCAN support (Linux with can modules needed)"
    if "library" in text.lower() or isinstance(exc, NameError | ImportError):
        return f"{where}: the vendor library for {spec.interface} is not installed ({text})"
    return f"{where}: cannot open the bus ({text})"


def open_bus(spec: BusSpec, **kwargs: Any) -> can.BusABC:
    """Open the bus a spec names; raises :class:`SourceError` with one clear line.

    python-can backends raise anything from ``CanInitializationError`` to
    ``OSError`` or even ``NameError`` (kvaser without canlib), so every exception
    from the constructor is turned into the same kind of message here: this is a
    boundary to third-party code, not a place that hides bugs of ours.
    """
    import can

    options: dict[str, Any] = {**spec.extra, **kwargs}
    if spec.bitrate is not None and spec.interface != "socketcan":
        options["bitrate"] = spec.bitrate  # socketcan ignores it: see bitrate_note
    try:
        return can.Bus(interface=spec.interface, channel=spec.channel, **options)
    except Exception as exc:  # noqa: BLE001 - backend errors become one line for people
        raise SourceError(_explain(spec, exc)) from None


class Backoff:
    """Reconnect delays that double from ``first_s`` up to ``max_s`` and reset on success."""

    def __init__(self, first_s: float = 0.5, max_s: float = 5.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.delay_s = first_s
        self.next_try = 0.0

    def failed(self, now: float) -> float:
        """Record a failed attempt at ``now``; returns the delay before the next one."""
        delay = self.delay_s
        self.next_try = now + delay
        self.delay_s = min(self.delay_s * 2.0, self.max_s)
        return delay

    def succeeded(self) -> None:
        self.delay_s = self.first_s
        self.next_try = 0.0


class Reconnector:
    """Disconnect / reconnect bookkeeping shared by the CAN sources.

    Closes the source, emits ``disconnect`` once per loss and ``reconnect`` once per
    recovery, keeps the status line saying when the next attempt is, and never sleeps
    past the caller's read timeout.
    """

    def __init__(self, source: Source, describe: str) -> None:
        self.source = source
        self.describe = describe
        self.backoff = Backoff()
        self.was_connected = False

    def connected(self) -> None:
        self.backoff.succeeded()
        self.was_connected = True

    def lost(self, reason: str) -> None:
        now = time.monotonic()
        self.source.close()
        delay = self.backoff.failed(now)
        if self.was_connected:
            self.source.emit("disconnect", now, reason)
            self.was_connected = False
        self.source.set_status(SourceState.RECONNECTING, f"{reason}; retrying in {delay:.1f} s")

    def retry(self, timeout: float, reopen: Callable[[], None]) -> bool:
        """One attempt when it is due (else wait up to ``timeout``); True once reconnected."""
        wait = self.backoff.next_try - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, timeout))
            return False
        try:
            reopen()
        except SourceError as exc:
            delay = self.backoff.failed(time.monotonic())
            self.source.set_status(SourceState.RECONNECTING, f"{exc}; retrying in {delay:.1f} s")
            return False
        self.connected()
        self.source.emit("reconnect", time.monotonic(), self.describe)
        return True


class MonotonicStamper:
    """Places device timestamps on ``time.monotonic()`` (see the module docstring)."""

    def __init__(self) -> None:
        self.last_t = 0.0
        self.kind = "receipt"
        """Which clock the last device stamp was on: monotonic, epoch or receipt."""

    def stamp(self, device_ts: float, now_mono: float, wall_minus_mono: float) -> float:
        if abs(device_ts - now_mono) < CLOCK_MATCH_S:
            t, self.kind = device_ts, "monotonic"
        elif abs(device_ts - now_mono - wall_minus_mono) < CLOCK_MATCH_S:
            t, self.kind = device_ts - wall_minus_mono, "epoch"
        else:
            t, self.kind = now_mono, "receipt"
        t = min(t, now_mono)
        if t < self.last_t:
            t = self.last_t
        self.last_t = t
        return t
