"""``can:`` source: any python-can bus, decoded by a DBC file or the built-in AEM frame.

URI: ``can:INTERFACE/CHANNEL?bitrate=500000&dbc=FILE&map=SIG:channel,...&decoder=aem``
(``can:socketcan/can0?dbc=bike.dbc``, ``can:virtual/test?decoder=aem``,
``can:slcan/dev/ttyACM0?bitrate=500000``). Other options: ``stoich`` (AFR per
lambda, default 14.7), ``aem_id`` (0x180..0x18F; default: the first AEM ID seen),
``base_id`` (move a preset whose first ID is configurable on the device, e.g.
``dbc=ecumaster_emu&base_id=0x700``; see :mod:`drivers.dbc_meta`),
``stale`` (seconds without a decoded frame before the status turns stale, default
1.0); anything else goes to ``can.Bus`` (``rx_queue_size``, ``tty_baudrate`` ...).

``read`` drains frames for at most ``DRAIN_BUDGET_S`` and returns them as one
Block per kind of frame (per set of channels decoded), one row per frame, so the
engine gets few, large blocks even on a saturated 1 Mbit/s bus; the further
blocks of one drain come from the next ``read`` calls at once. A channel is never
NaN because its frame is another one: NaN means the value is invalid (a validity
gate), and fusion holds the last sample of each channel by time, so a NaN filler
in the rows of the RPM frame would blank the lambda of the lambda frame (every
sample of a Haltech, EMU or Link stream was rejected as ``stale_channel``). Timestamps
follow :class:`drivers.can_bus.MonotonicStamper`. A bus that errors, goes
bus-off or vanishes puts the source in ``reconnecting`` with ``disconnect`` /
``reconnect`` events, and the bus is reopened with a 0.5 -> 5 s backoff.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from core.channels import CHANNELS, STOICH_GASOLINE
from core.frames import Block
from core.source import Source, SourceError, SourceState
from drivers.can_bus import (
    MonotonicStamper,
    Reconnector,
    bitrate_note,
    open_bus,
    parse_bus_spec,
)
from drivers.can_decode import (
    AEM_FIRST_ID,
    AEM_LAST_ID,
    DbcDecoder,
    decode_aem_xseries,
    parse_channel_map,
)
from drivers.registry import SourceURI

if TYPE_CHECKING:
    import can

DRAIN_BUDGET_S = 0.02
"""Longest one ``read`` keeps draining frames before it hands over a block."""
MAX_FRAMES_PER_BLOCK = 4000
"""Cap on frames per block so a backlog is handed over in bounded pieces."""
CAN_ERR_BUSOFF = 0x40
"""SocketCAN error-frame class bit for bus-off (linux/can/error.h)."""

AEM_CHANNELS = ("lambda", "afr", "o2_pct", "batt_v")


class CanSource(Source):
    """A CAN bus decoded into canonical channels (see the module docstring)."""

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(name, uri.raw)
        self.spec = parse_bus_spec(
            uri,
            own=frozenset(
                {"bitrate", "name", "dbc", "map", "decoder", "stoich", "aem_id", "stale", "base_id"}
            ),
        )
        self.stoich = uri.get_float("stoich", STOICH_GASOLINE)
        if not 3.0 <= self.stoich <= 20.0:
            raise SourceError(
                f"{uri.raw}: stoich={self.stoich} is not an AFR per lambda (e.g. 14.7)"
            )
        self.stale_s = uri.get_float("stale", 1.0)
        decoder = (uri.get("decoder") or "").lower()
        dbc = uri.get("dbc")
        if decoder not in ("", "aem", "dbc"):
            raise SourceError(f"{uri.raw}: decoder={decoder!r} is not one of: aem, dbc")
        if decoder != "aem" and not dbc:
            raise SourceError(
                f"{uri.raw}: say how to decode the frames: dbc=FILE (with map=SIGNAL:channel) "
                "or decoder=aem for an AEM X-Series wideband"
            )
        self.use_aem = decoder == "aem"
        aem_id = uri.get("aem_id")
        self.aem_id: int | None = uri.get_int("aem_id", 0) if aem_id else None
        if self.aem_id is not None and not AEM_FIRST_ID <= self.aem_id <= AEM_LAST_ID:
            raise SourceError(f"{uri.raw}: aem_id={aem_id} is outside 0x180..0x18F")
        self.dbc: DbcDecoder | None = None
        if dbc:
            channel_map = parse_channel_map(uri.get("map") or "", uri.raw)
            base = uri.get("base_id")
            self.dbc = DbcDecoder.from_file(
                dbc, channel_map, self.stoich, uri.get_int("base_id", 0) if base else None
            )
        self._bus: can.BusABC | None = None
        self._pending: deque[Block] = deque()
        """Blocks of the last drain not handed over yet (one per kind of frame)."""
        self._bus_text = self.spec.describe()
        """The status line while all is well: where the bus is (+ the SocketCAN bitrate note)."""
        self._reconnector = Reconnector(self, self.spec.describe())
        self._stamper = MonotonicStamper()
        self._last_frame_t = 0.0
        self.frames_received = 0
        self.frames_decoded = 0
        self.frames_ignored = 0
        self.error_frames = 0

    # -- lifecycle ---------------------------------------------------------------

    def channels(self) -> dict[str, str]:
        names: set[str] = set(AEM_CHANNELS) if self.use_aem else set()
        if self.dbc is not None:
            names |= self.dbc.channels()
        return {n: CHANNELS[n].unit for n in sorted(names)}

    def open(self) -> None:
        self._bus = open_bus(self.spec)
        note = bitrate_note(self.spec)
        self._bus_text = f"{self.spec.describe()}; {note}" if note else self.spec.describe()
        self._reconnector.connected()
        self._last_frame_t = time.monotonic()
        self.set_status(SourceState.CONNECTED, self._bus_text)

    def take_held(self) -> list[Block]:
        held = list(self._pending)
        self._pending.clear()
        return held

    def close(self) -> None:
        self._pending.clear()
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.shutdown()

    # -- reading -----------------------------------------------------------------

    def read(self, timeout: float = 0.1) -> Block | None:
        if self._pending:
            return self._pending.popleft()
        if self._bus is None:
            return self._try_reconnect(timeout)
        import can

        t_list: list[float] = []
        rows: list[dict[str, float]] = []
        wall_minus_mono = time.time() - time.monotonic()
        deadline = time.monotonic() + timeout
        drain_set = False
        bus = self._bus
        try:
            while len(t_list) < MAX_FRAMES_PER_BLOCK:
                now = time.monotonic()
                msg = bus.recv(max(deadline - now, 0.0))
                if msg is None:
                    break
                if not drain_set:
                    # Data is flowing: collect for a short budget, then hand over one block.
                    deadline, drain_set = min(deadline, now + DRAIN_BUDGET_S), True
                self.frames_received += 1
                if msg.is_error_frame:
                    self.error_frames += 1
                    if msg.arbitration_id & CAN_ERR_BUSOFF:
                        raise can.CanOperationError("controller is bus-off")
                    continue
                values = self.decode(msg.arbitration_id, msg.is_extended_id, msg.data)
                if values is None:
                    self.frames_ignored += 1
                    continue
                t_list.append(self._stamper.stamp(msg.timestamp, time.monotonic(), wall_minus_mono))
                rows.append(values)
        except (can.CanError, OSError) as exc:
            self._lost(f"{self.spec.describe()}: {exc}")
            return self._block(t_list, rows)
        self._update_staleness(bool(t_list))
        return self._block(t_list, rows)

    def decode(
        self, frame_id: int, is_extended: bool, data: bytes | bytearray
    ) -> dict[str, float] | None:
        """Canonical values from one frame (AEM first, then the DBC); ``None`` if not ours."""
        if self.use_aem and is_extended and AEM_FIRST_ID <= frame_id <= AEM_LAST_ID:
            if self.aem_id is None:
                self.aem_id = frame_id
            if frame_id == self.aem_id:
                reading = decode_aem_xseries(data)
                if reading is not None:
                    reason = reading.reason
                    if reason:
                        self.set_status(SourceState.CONNECTED, reason)
                    elif self.status.message != self._bus_text:
                        self.set_status(SourceState.CONNECTED, self._bus_text)
                    self.frames_decoded += 1
                    return reading.channels(self.stoich)
        if self.dbc is not None:
            values = self.dbc.decode(frame_id, is_extended, data)
            if values is not None:
                self.frames_decoded += 1
                reason = self.dbc.gate_reason
                if reason and self.status.message != reason:
                    self.set_status(SourceState.CONNECTED, reason)
                elif not reason and self.status.message != self._bus_text:
                    self.set_status(SourceState.CONNECTED, self._bus_text)
            return values
        return None

    def _block(self, t_list: list[float], rows: list[dict[str, float]]) -> Block | None:
        """The first block of this drain (one per set of channels); the rest queue up."""
        if not t_list:
            return None
        self._last_frame_t = max(t_list)
        groups: dict[tuple[str, ...], tuple[list[float], list[dict[str, float]]]] = {}
        for t, row in zip(t_list, rows, strict=True):
            times, members = groups.setdefault(tuple(row), ([], []))
            times.append(t)
            members.append(row)
        blocks = []
        for keys, (times, members) in groups.items():
            columns = {
                key: np.fromiter((m[key] for m in members), np.float64, len(members))
                for key in keys
            }
            blocks.append(Block(self.name, np.asarray(times, dtype=np.float64), columns))
        self._pending.extend(blocks[1:])
        return blocks[0]

    def _update_staleness(self, got_data: bool) -> None:
        state = self.status.state
        if got_data:
            if state == SourceState.STALE:
                self.set_status(SourceState.CONNECTED, self._bus_text)
            return
        quiet_s = time.monotonic() - self._last_frame_t
        if quiet_s > self.stale_s and state == SourceState.CONNECTED:
            rate = ""
            if self.spec.bitrate and self.spec.interface == "socketcan":
                rate = f" ({bitrate_note(self.spec)})"
            elif self.spec.bitrate:
                rate = f" (is the bus at {self.spec.bitrate} bit/s?)"
            self.set_status(
                SourceState.STALE,
                f"{self.spec.describe()}: no decodable frames for {quiet_s:.1f} s{rate}",
            )

    # -- reconnecting ------------------------------------------------------------

    def _lost(self, reason: str) -> None:
        self._reconnector.lost(reason)

    def _try_reconnect(self, timeout: float) -> Block | None:
        def reopen() -> None:
            self._bus = open_bus(self.spec)

        if self._reconnector.retry(timeout, reopen):
            self._last_frame_t = time.monotonic()
            self.set_status(SourceState.CONNECTED, self._bus_text)
        return None
