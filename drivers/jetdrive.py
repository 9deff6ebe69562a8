"""``jetdrive:`` source: the Dynojet JetDrive channel stream (Power Core) over UDP.

URI: ``jetdrive:HOST:PORT`` binds HOST:PORT. A multicast HOST (the default,
``jetdrive:`` = ``224.0.2.10:22344``) joins the group with ``SO_REUSEADDR`` so
Power Core and other apps keep working; a unicast HOST (``127.0.0.1:22344``, or
port 0 for any free port) just binds. Options: ``units=metric|imperial`` (what
the Power/Torque/Speed/Temperature/Pressure categories carry; default
``metric``, the SI units Dynojet's ``JDUnit.cs`` defines for the wire whatever
Power Core displays; ``imperial`` only for a provider known to send hp, lb·ft,
mph, °F and inHg), ``peer=HOST:PORT`` (where to send
RequestChannelInfo in unicast mode; in multicast mode it goes to the group),
``iface`` (local address to join the group on), ``stoich``, ``stale`` (s).

Values are only mapped once the provider's ChannelInfo names them; until then
the source asks for it every 2 s. Device timestamps (ms since the provider
started) are placed on ``time.monotonic()`` with the smallest observed
``receipt - device`` offset (the least-delayed packet), re-anchored when the
provider restarts; samples are never later than their receipt. Values sharing
a device timestamp form one row.

As in the reference receiver, messages addressed to another host or sent by
this host are ignored, ChannelInfo pages from one provider add up, and a value
block that is not finite is dropped (no sample without a value). When two of a
provider's channels map to one column (Engine RPM and Digital RPM 1), the first
registered keeps it.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import socket
import time
from collections import deque

import numpy as np

from core.channels import CHANNELS, STOICH_GASOLINE
from core.frames import Block
from core.source import Source, SourceError, SourceState
from drivers import jetdrive_protocol as jd
from drivers.can_bus import Backoff
from drivers.registry import SourceURI

REQUEST_INTERVAL_S = 2.0
RESYNC_S = 0.25
"""A receipt-minus-device offset this far above the best one re-anchors (provider restart)."""


def _split_host_port(text: str, where: str, default_host: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, ""
    host = host.strip("[] ") or default_host
    try:
        port = int(port_text) if port_text else jd.DEFAULT_PORT
    except ValueError:
        raise SourceError(f"{where}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise SourceError(f"{where}: port {port} is outside 0..65535")
    return host, port


def _unit_of(column: str) -> str:
    """Unit of a canonical column or of a numbered extra one (``rpm2`` -> rpm)."""
    if column in CHANNELS:
        return CHANNELS[column].unit
    base = column.rstrip("0123456789")
    return CHANNELS[base].unit if base in CHANNELS else ""


class JetDriveSource(Source):
    """JetDrive ChannelInfo / ChannelValues receiver (see the module docstring)."""

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(name, uri.raw)
        self.host, self.port = _split_host_port(uri.path, uri.raw, jd.DEFAULT_GROUP)
        try:
            self.multicast = ipaddress.ip_address(self.host).is_multicast
        except ValueError:
            raise SourceError(f"{uri.raw}: {self.host!r} is not an IP address") from None
        units = (uri.get("units") or "metric").lower()
        if units not in jd.UNIT_SYSTEMS:
            raise SourceError(
                f"{uri.raw}: units={units!r} is not metric (Dynojet's JDUnit) or imperial"
            )
        self.units = units
        peer = uri.get("peer")
        self.peer = _split_host_port(peer, uri.raw, "127.0.0.1") if peer else None
        self.iface = uri.get("iface") or "0.0.0.0"
        self.stoich = uri.get_float("stoich", STOICH_GASOLINE)
        self.stale_s = uri.get_float("stale", 1.0)
        self.my_host = uri.get_int("host", os.getpid() & 0xFFFF)
        self.providers: dict[int, jd.Provider] = {}
        self.bound_address: tuple[str, int] = (self.host, self.port)
        self._map: dict[tuple[int, int], tuple[str, float, float]] = {}
        self._offset: dict[int, float] = {}
        self._sock: socket.socket | None = None
        self._pending: deque[Block] = deque()
        """Blocks of the last read not handed over yet (one per set of channels)."""
        self._seq = 0
        self._last_request = 0.0
        self._last_data_t = 0.0
        self._backoff = Backoff()
        self.datagrams = 0
        self.bad_datagrams = 0
        self.unknown_values = 0
        self.partial_blocks = 0
        self.dropped_values = 0

    def channels(self) -> dict[str, str]:
        names = {c for c, _, _ in self._map.values()} or {
            "rpm",
            "power_hp",
            "torque_nm",
            "drum_speed_kph",
            "lambda",
        }
        if "lambda" in names:
            names.add("afr")
        return {n: _unit_of(n) for n in sorted(names)}

    # -- socket ------------------------------------------------------------------

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.multicast:
                sock.bind(("", self.port))
                mreq = socket.inet_aton(self.host) + socket.inet_aton(self.iface)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            else:
                sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SourceError(self._explain(exc)) from None
        self.bound_address = sock.getsockname()[:2]
        self._sock = sock
        self._last_data_t = time.monotonic()
        where = f"{self.host}:{self.bound_address[1]}"
        self.set_status(SourceState.CONNECTED, f"JetDrive on {where}, waiting for channel info")
        self._request_info()

    def _explain(self, exc: OSError) -> str:
        where = f"JetDrive {self.host}:{self.port}"
        if exc.errno == errno.EADDRINUSE:
            return f"{where}: port in use by another program; pick another port"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"{where}: permission denied binding the port (ports below 1024 need root)"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"{where}: {self.host} is not an address of this computer"
        if exc.errno in (errno.ENODEV, errno.ENETUNREACH) and self.multicast:
            return f"{where}: cannot join the multicast group (no network up? set iface=LOCAL_IP)"
        return f"{where}: cannot open the UDP socket ({exc.strerror or exc})"

    def take_held(self) -> list[Block]:
        held = list(self._pending)
        self._pending.clear()
        return held

    def close(self) -> None:
        self._pending.clear()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _request_info(self) -> None:
        """Ask providers for ChannelInfo (multicast group, or the configured unicast peer)."""
        target = (self.host, self.port) if self.multicast else self.peer
        self._last_request = time.monotonic()
        if target is None or self._sock is None:
            return
        self._seq = (self._seq + 1) & 0xFF
        try:
            self._sock.sendto(
                jd.encode_message(jd.KEY_REQUEST_CHANNEL_INFO, self.my_host, self._seq), target
            )
        except OSError as exc:
            self.set_status(self.status.state, f"JetDrive: cannot ask for channel info ({exc})")

    # -- reading -----------------------------------------------------------------

    def read(self, timeout: float = 0.1) -> Block | None:
        if self._pending:
            return self._pending.popleft()
        if self._sock is None:
            return self._try_reopen(timeout)
        rows: dict[tuple[int, int], dict[str, float]] = {}
        times: dict[tuple[int, int], float] = {}
        deadline = time.monotonic() + timeout
        sock = self._sock
        try:
            while True:
                wait = deadline - time.monotonic()
                sock.settimeout(max(wait, 0.0) if not rows else 0.0)
                try:
                    datagram = sock.recv(65535)
                except (TimeoutError, BlockingIOError):
                    break
                self.handle_datagram(datagram, time.monotonic(), rows, times)
                if len(rows) > 2000 or time.monotonic() >= deadline:
                    break
        except OSError as exc:
            self._lost(str(exc))
        now = time.monotonic()
        if not self._map and now - self._last_request > REQUEST_INTERVAL_S:
            self._request_info()
        if not rows:
            if (
                now - self._last_data_t > self.stale_s
                and self.status.state == SourceState.CONNECTED
            ):
                self.set_status(
                    SourceState.STALE,
                    f"no JetDrive values for {now - self._last_data_t:.1f} s "
                    "(is Power Core running with JetDrive enabled?)",
                )
            return None
        self._last_data_t = now
        if self.status.state == SourceState.STALE:
            self.set_status(SourceState.CONNECTED, f"JetDrive: {len(self._map)} channels mapped")
        order = sorted(rows, key=times.__getitem__)
        t_all = np.maximum.accumulate(np.array([times[k] for k in order]))
        # One block per set of channels: a channel missing from a row (another provider,
        # another timestamp) must not be a NaN sample, which fusion would hold as "invalid".
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, key in enumerate(order):
            groups.setdefault(tuple(sorted(rows[key])), []).append(i)
        blocks = []
        for names, index in groups.items():
            columns = {n: np.array([rows[order[i]][n] for i in index]) for n in names}
            if "lambda" in columns:
                columns["afr"] = columns["lambda"] * self.stoich
            blocks.append(Block(self.name, t_all[index], columns))
        self._pending.extend(blocks[1:])
        return blocks[0]

    def handle_datagram(
        self,
        datagram: bytes,
        now: float,
        rows: dict[tuple[int, int], dict[str, float]],
        times: dict[tuple[int, int], float],
    ) -> None:
        """Parse one datagram into ``rows`` keyed by (host, device ms); bad ones are counted."""
        self.datagrams += 1
        try:
            msg = jd.parse_message(datagram)
            if msg.host == self.my_host or msg.dest not in (jd.ALL_HOSTS, self.my_host):
                return  # our own echo, or meant for another host (JetdriveNode does the same)
            if jd.partial_bytes(msg):
                self.partial_blocks += 1
            if msg.key == jd.KEY_CHANNEL_INFO:
                self._learn(jd.parse_channel_info(msg))
            elif msg.key == jd.KEY_CLEAR_CHANNEL_INFO:
                self.providers.pop(msg.host, None)
                self._map = {k: v for k, v in self._map.items() if k[0] != msg.host}
            elif msg.key == jd.KEY_CHANNEL_VALUES:
                for chan_id, ts_ms, value in jd.parse_channel_values(msg):
                    target = self._map.get((msg.host, chan_id))
                    if target is None:
                        self.unknown_values += 1
                        continue
                    if not math.isfinite(value):
                        self.dropped_values += 1
                        continue
                    key = (msg.host, ts_ms)
                    if key not in times:
                        times[key] = self._place(msg.host, ts_ms, now)
                    rows.setdefault(key, {})[target[0]] = value * target[1] + target[2]
        except jd.JetDriveError:
            self.bad_datagrams += 1

    def _learn(self, provider: jd.Provider) -> None:
        known = self.providers.get(provider.host)
        if known is not None:  # ChannelInfo comes in MTU-sized pages: they add up
            provider = jd.Provider(
                provider.host, provider.name, {**known.channels, **provider.channels}
            )
        self.providers[provider.host] = provider
        taken: dict[str, int] = {}
        for chan_id in sorted(provider.channels):
            conv = jd.canonical_for(provider.channels[chan_id], self.units, self.stoich)
            key = (provider.host, chan_id)
            if conv is None or taken.setdefault(conv[0], chan_id) != chan_id:
                self._map.pop(key, None)
            else:
                self._map[key] = conv
        mapped = sorted({c for c, _, _ in self._map.values()})
        self.set_status(
            SourceState.CONNECTED,
            f"JetDrive {provider.name or hex(provider.host)}: {', '.join(mapped) or 'no known channels'}",
        )

    def _place(self, host: int, ts_ms: int, now: float) -> float:
        """Device milliseconds -> monotonic seconds via the least-delayed offset seen."""
        offset = now - ts_ms / 1000.0
        best = self._offset.get(host)
        if best is None or offset < best or offset - best > RESYNC_S:
            self._offset[host] = best = offset
        return min(best + ts_ms / 1000.0, now)

    # -- recovery ----------------------------------------------------------------

    def _lost(self, reason: str) -> None:
        now = time.monotonic()
        self.close()
        delay = self._backoff.failed(now)
        self.emit("disconnect", now, f"JetDrive: {reason}")
        self.set_status(SourceState.RECONNECTING, f"JetDrive: {reason}; retrying in {delay:.1f} s")

    def _try_reopen(self, timeout: float) -> Block | None:
        wait = self._backoff.next_try - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, timeout))
            return None
        try:
            self.open()
        except SourceError as exc:
            delay = self._backoff.failed(time.monotonic())
            self.set_status(SourceState.RECONNECTING, f"{exc}; retrying in {delay:.1f} s")
            return None
        self._backoff.succeeded()
        self.emit("reconnect", time.monotonic(), f"JetDrive {self.host}:{self.port}")
        return None
