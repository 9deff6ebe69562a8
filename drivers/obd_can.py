"""``obd-can:`` source: OBD-II Mode 01 polling over native CAN (ISO 15765-4, ISO-TP).

URI: ``obd-can:INTERFACE/CHANNEL?bitrate=500000`` plus optional ``pids=0C,0B,11``
(default: what a tuner wants that the ECU supports, plus its first wide-range O2
PID), ``addressing=functional|physical`` (default functional, 0x7DF),
``ids=auto|11|29`` (identifier length; auto asks on 11-bit 0x7DF first, then on
29-bit 0x18DB33F1 as ISO 15765-4 has the tester do), ``ecu=0x7E8`` or
``ecu=0x18DAF110`` (default: the first ECU that answers), ``multi=auto|off``
(several PIDs per request), ``timeout`` (response wait, s, default 0.1),
``padding`` (default 0x55) and ``stoich``.

Why it is built this way:

* Requests are at most 7 bytes (mode + 6 PIDs), a single ISO-TP frame, so the
  functional request is sent as one raw frame on 0x7DF. Replies are reassembled
  by can-isotp (first / consecutive frames, flow control) on a stack bound to the
  answering ECU, whose flow control goes to the *physical* ID (0x7E0 for
  0x7E8; 0x18DA10F1 for 0x18DAF110 on 29-bit IDs, where the low byte of a
  reply ID is the ECU's address), as ISO 15765-4 requires even after a
  functional request.
* Each ``read`` is one request / reply cycle, so a block is one sample stamped
  with ``time.monotonic()`` when the reply arrived.
* Several PIDs share a request (the expensive part on a real bus). An ECU that
  ignores, rejects (0x7F) or only partly answers multi-PID requests twice in a
  row is polled one PID at a time from then on.
* PID decoding is shared with the ELM327 driver (:mod:`drivers.obd_pids`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from core.channels import CHANNELS, STOICH_GASOLINE
from core.frames import Block
from core.source import Source, SourceError, SourceState
from drivers import obd_pids
from drivers.can_bus import Reconnector, bitrate_note, open_bus, parse_bus_spec
from drivers.registry import SourceURI

if TYPE_CHECKING:
    import can
    import isotp

FUNCTIONAL_ID = 0x7DF
FIRST_RESPONSE_ID = 0x7E8
LAST_RESPONSE_ID = 0x7EF
FUNCTIONAL_ID_29 = 0x18DB33F1
"""29-bit functional request ID (ISO 15765-4: priority 0x18, DB = functional, 33, tester F1)."""
RESPONSE_BASE_29 = 0x18DAF100
"""29-bit replies are 0x18DAF1xx (DA = physical, to the tester F1, from ECU xx)."""
DISCOVERY_TIMEOUT_S = 1.0
MULTI_FAILS_BEFORE_FALLBACK = 2
OWN_OPTIONS = frozenset(
    {"bitrate", "name", "pids", "addressing", "ids", "ecu", "multi", "timeout", "padding", "stoich"}
)


def is_response_id(frame_id: int, extended: bool) -> bool:
    """An OBD reply ID: 0x7E8..0x7EF (11-bit) or 0x18DAF1xx (29-bit)."""
    if extended:
        return frame_id & 0x1FFFFF00 == RESPONSE_BASE_29
    return FIRST_RESPONSE_ID <= frame_id <= LAST_RESPONSE_ID


def physical_request_id(response_id: int) -> int:
    """Where requests and flow control for the ECU answering on ``response_id`` go."""
    if response_id > 0x7FF:
        return 0x18DA00F1 | (response_id & 0xFF) << 8
    return response_id - 8


def ecu_name(response_id: int | None) -> str:
    if response_id is None:
        return "(none yet)"
    return f"0x{response_id:08X}" if response_id > 0x7FF else f"0x{response_id:03X}"


class _BusWatch:
    """Notifier listener: catches 0100 answers during discovery and bus failures."""

    def __init__(self) -> None:
        self.answers: dict[int, bytes] = {}
        self.error: str = ""
        self.got = threading.Event()

    def __call__(self, msg: can.Message) -> None:
        data = bytes(msg.data)
        if (
            is_response_id(msg.arbitration_id, msg.is_extended_id)
            and len(data) >= 7
            and data[0] == 0x06
            and data[1] == obd_pids.MODE01_REPLY
            and data[2] == 0x00
        ):
            self.answers.setdefault(msg.arbitration_id, data[3:7])
            self.got.set()

    def on_error(self, exc: Exception) -> bool:
        self.error = str(exc) or type(exc).__name__
        time.sleep(0.05)  # the notifier retries at once; do not spin while we tear down
        return True


class ObdCanSource(Source):
    """OBD-II Mode 01 over CAN (see the module docstring)."""

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(name, uri.raw)
        self.spec = parse_bus_spec(uri, own=OWN_OPTIONS)
        self.requested_pids = obd_pids.parse_pid_option(uri.get("pids"), uri.raw)
        addressing = (uri.get("addressing") or "functional").lower()
        if addressing not in ("functional", "physical"):
            raise SourceError(f"{uri.raw}: addressing={addressing!r} is not functional or physical")
        self.functional = addressing == "functional"
        ids = (uri.get("ids") or "auto").lower()
        if ids not in ("auto", "11", "29"):
            raise SourceError(f"{uri.raw}: ids={ids!r} is not auto, 11 or 29")
        ecu = uri.get("ecu")
        self.ecu_id: int | None = uri.get_int("ecu", 0) if ecu else None
        if self.ecu_id is not None:
            extended = self.ecu_id > 0x7FF
            if not is_response_id(self.ecu_id, extended):
                raise SourceError(
                    f"{uri.raw}: ecu={ecu} is not a response ID 0x7E8..0x7EF or 0x18DAF1xx"
                )
            if ids == "auto":
                ids = "29" if extended else "11"
            elif ids != ("29" if extended else "11"):
                raise SourceError(f"{uri.raw}: ecu={ecu} is not a {ids}-bit ID")
        self.id_bits = ids
        self.extended = ids == "29"
        multi = (uri.get("multi") or "auto").lower()
        if multi not in ("auto", "off"):
            raise SourceError(f"{uri.raw}: multi={multi!r} is not auto or off")
        self.multi = multi == "auto"
        self.timeout_s = uri.get_float("timeout", 0.1)
        self.padding = uri.get_int("padding", 0x55) & 0xFF
        self.stoich = uri.get_float("stoich", STOICH_GASOLINE)
        self.supported: set[int] = set()
        self.poll_pids: list[int] = []
        self._groups: list[list[int]] = []
        self._next_group = 0
        self._multi_fails = 0
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._stack: isotp.NotifierBasedCanStack | None = None
        self._watch = _BusWatch()
        self._reconnector = Reconnector(self, self.spec.describe())
        self._last_answer_t = 0.0
        self.requests = 0
        self.answers = 0
        self.isotp_errors = 0
        self.stray_replies = 0
        """Replies that answered an earlier request (late), dropped."""

    def channels(self) -> dict[str, str]:
        names: set[str] = set()
        for pid in self.poll_pids or self.requested_pids or list(obd_pids.DEFAULT_POLL_PIDS):
            info = obd_pids.SUPPORTED_PIDS[pid]
            names |= set(obd_pids.decode_pid(pid, bytes(info.n_bytes)))
        if "lambda" in names:
            names.add("afr")
        return {n: CHANNELS[n].unit for n in sorted(names) if n in CHANNELS}

    # -- opening -----------------------------------------------------------------

    def open(self) -> None:
        self._connect()
        self._reconnector.connected()

    def _connect(self) -> None:
        import can
        import isotp

        self._watch = _BusWatch()
        self._bus = open_bus(self.spec)
        self._notifier = can.Notifier(self._bus, [self._watch], timeout=0.05)
        try:
            first_bitmap = self._discover()
            assert self.ecu_id is not None  # set by _discover
            mode = (
                isotp.AddressingMode.Normal_29bits
                if self.extended
                else isotp.AddressingMode.Normal_11bits
            )
            address = isotp.Address(mode, txid=physical_request_id(self.ecu_id), rxid=self.ecu_id)
            self._stack = isotp.NotifierBasedCanStack(
                self._bus,
                self._notifier,
                address=address,
                error_handler=self._isotp_error,
                params=isotp_params(tx_padding=self.padding),
            )
            self._stack.start()
            self._learn_pids(first_bitmap)
        except (SourceError, can.CanError, OSError) as exc:
            self.close()
            if isinstance(exc, SourceError):
                raise
            raise SourceError(f"{self.spec.describe()}: {exc}") from None
        self._last_answer_t = time.monotonic()
        note = bitrate_note(self.spec)
        self.set_status(
            SourceState.CONNECTED,
            f"ECU {ecu_name(self.ecu_id)} on {self.spec.describe()}, "
            f"{'multi' if len(self._groups[0]) > 1 else 'single'}-PID polling"
            + (f"; {note}" if note else ""),
        )

    def _discover(self) -> bytes:
        """Ask every ECU for PIDs 01..20 (11-bit, then 29-bit) and pick the lowest responder."""
        assert self._bus is not None
        answers: dict[int, bytes] = {}
        for extended in (False, True):
            if self.id_bits == ("11" if extended else "29"):
                continue
            self.extended = extended
            self._send_functional(bytes([0x01, 0x00]))
            deadline = time.monotonic() + DISCOVERY_TIMEOUT_S
            while not self._watch.answers and time.monotonic() < deadline and not self._watch.error:
                self._watch.got.wait(0.05)
            time.sleep(0.05)  # let the other ECUs of a car answer too
            if self._watch.error:
                raise SourceError(f"{self.spec.describe()}: {self._watch.error}")
            answers = {k: v for k, v in self._watch.answers.items() if (k > 0x7FF) == extended}
            if answers:
                break
        if not answers:
            asked = {"auto": "0x7DF or 0x18DB33F1", "11": "0x7DF", "29": "0x18DB33F1"}
            raise SourceError(
                f"{self.spec.describe()}: no ECU answered the OBD-II request on "
                f"{asked[self.id_bits]} within {DISCOVERY_TIMEOUT_S:.0f} s each; is the "
                "ignition on and the bitrate right (most cars: 500000)?"
                + (f" ({note})" if (note := bitrate_note(self.spec)) else "")
            )
        if self.ecu_id is None:
            self.ecu_id = min(answers)
        if self.ecu_id not in answers:
            seen = ", ".join(ecu_name(i) for i in sorted(answers))
            raise SourceError(
                f"{self.spec.describe()}: ECU {ecu_name(self.ecu_id)} did not answer ({seen} did)"
            )
        return answers[self.ecu_id]

    def _learn_pids(self, first_bitmap: bytes) -> None:
        supported = obd_pids.parse_supported(0x00, first_bitmap)
        base = 0x20
        while base in supported and base <= 0x40:
            reply = self._request(bytes([0x01, base]))
            parts = obd_pids.split_mode01(reply) if reply else {}
            if base not in parts:
                break
            supported |= obd_pids.parse_supported(base, parts[base])
            base += 0x20
        self.supported = supported
        if self.requested_pids:
            missing = [p for p in self.requested_pids if p not in supported]
            if missing:
                text = " ".join(f"{p:02X}" for p in missing)
                raise SourceError(f"ECU {ecu_name(self.ecu_id)} does not support PID(s) {text}")
            pids = list(self.requested_pids)
        else:
            pids = obd_pids.default_pids(supported)
        if not pids:
            raise SourceError(f"ECU {ecu_name(self.ecu_id)} supports none of the PIDs dynoai reads")
        self.poll_pids = pids
        self._groups = obd_pids.group_requests(
            pids, obd_pids.MAX_PIDS_PER_REQUEST if self.multi else 1
        )

    # -- polling -----------------------------------------------------------------

    def _send_functional(self, payload: bytes) -> None:
        import can

        assert self._bus is not None
        frame = bytes([len(payload)]) + payload
        frame += bytes([self.padding]) * (8 - len(frame))
        functional = FUNCTIONAL_ID_29 if self.extended else FUNCTIONAL_ID
        self._bus.send(
            can.Message(arbitration_id=functional, is_extended_id=self.extended, data=frame)
        )

    def _request(self, payload: bytes) -> bytes | None:
        """Send one Mode 01 request and wait for the ECU's (reassembled) reply."""
        stack = self._stack
        assert stack is not None
        while stack.available():  # a late reply to an earlier request must not be taken as this one
            stack.recv()
        if self.functional:
            self._send_functional(payload)
        else:
            stack.send(payload)
        self.requests += 1
        deadline = time.monotonic() + self.timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            reply = stack.recv(block=True, timeout=remaining)
            if reply is None:
                return None
            if answers_request(payload, bytes(reply)):
                return bytes(reply)
            # The reply to an earlier request that came after its timeout (a busy ECU or
            # host): taken for this one it would look partial and end multi-PID polling.
            self.stray_replies += 1
        return None

    def read(self, timeout: float = 0.1) -> Block | None:
        if self._stack is None:
            return self._try_reconnect(timeout)
        import can

        if self._watch.error:
            self._lost(self._watch.error)
            return None
        group = self._groups[self._next_group % len(self._groups)]
        self._next_group += 1
        try:
            reply = self._request(obd_pids.request_bytes(group))
            parts = obd_pids.split_mode01(reply) if reply else {}
            answered = [p for p in group if p in parts]
            if len(group) > 1 and len(answered) < len(group):
                late_multi = False
                if reply is None:
                    # Silence: is the ECU ignoring multi-PID requests, or gone altogether?
                    # Ask for the first PID alone; only an answer to that blames multi-PID.
                    single = self._request(obd_pids.request_bytes(group[:1]))
                    parts = obd_pids.split_mode01(single) if single else {}
                    answered = [p for p in group if p in parts]
                    # More PIDs than asked: the multi-PID reply, only late. It works.
                    late_multi = len(answered) > 1
                if late_multi:
                    self._multi_fails = 0
                elif reply is not None or answered:  # partial, rejected, or single-only
                    self._multi_failed(reply)
            elif len(group) > 1:
                self._multi_fails = 0
        except (can.CanError, OSError) as exc:
            self._lost(str(exc))
            return None
        now = time.monotonic()
        if not answered:
            self._no_answer(now)
            return None
        values: dict[str, float] = {}
        for pid in answered:
            values.update(obd_pids.decode_pid(pid, parts[pid]))
        if "lambda" in values:
            values["afr"] = values["lambda"] * self.stoich
        self.answers += 1
        self._last_answer_t = now
        if self.status.state != SourceState.CONNECTED:
            self.set_status(SourceState.CONNECTED, f"ECU {ecu_name(self.ecu_id)} answering again")
        return Block(self.name, np.array([now]), {k: np.array([v]) for k, v in values.items()})

    def _multi_failed(self, reply: bytes | None) -> None:
        self._multi_fails += 1
        if self._multi_fails < MULTI_FAILS_BEFORE_FALLBACK:
            return
        why = "no reply" if not reply else ("rejected" if reply[0] == 0x7F else "partial reply")
        self._groups = obd_pids.group_requests(self.poll_pids, 1)
        self._next_group = 0
        self.set_status(
            SourceState.CONNECTED,
            f"ECU {ecu_name(self.ecu_id)}: multi-PID request {why}; polling one PID at a time",
        )

    def _no_answer(self, now: float) -> None:
        quiet_s = now - self._last_answer_t
        if quiet_s > 1.0 and self.status.state == SourceState.CONNECTED:
            self.set_status(
                SourceState.STALE,
                f"ECU {ecu_name(self.ecu_id)} has not answered for {quiet_s:.1f} s (ignition off?)",
            )

    def _isotp_error(self, error: Exception) -> None:
        self.isotp_errors += 1

    # -- closing and reconnecting ------------------------------------------------

    def close(self) -> None:
        stack, self._stack = self._stack, None
        notifier, self._notifier = self._notifier, None
        bus, self._bus = self._bus, None
        if stack is not None:
            stack.stop()
        if notifier is not None:
            notifier.stop(timeout=1.0)
        if bus is not None:
            bus.shutdown()

    def _lost(self, reason: str) -> None:
        self._reconnector.lost(f"{self.spec.describe()}: {reason}")

    def _try_reconnect(self, timeout: float) -> Block | None:
        self._reconnector.retry(timeout, self._connect)
        return None


def answers_request(request: bytes, reply: bytes) -> bool:
    """Whether ``reply`` answers ``request``, not an earlier request.

    SAE J1979: a positive reply is the service + 0x40 and echoes the PIDs it answers; a
    negative one is 7F, the service, a code.
    """
    if len(reply) >= 2 and reply[0] == 0x7F:
        return reply[1] == request[0]
    if not reply or reply[0] != (request[0] + 0x40) & 0xFF:
        return False
    return len(request) < 2 or (len(reply) >= 2 and reply[1] in request[1:])


def isotp_params(**overrides: Any) -> dict[str, Any]:
    """The ISO-TP parameters this driver uses (exposed for tests and the fuzzer)."""
    return {
        "tx_padding": 0x55,
        "rx_consecutive_frame_timeout": 1000,
        "blocksize": 0,
        "stmin": 0,
        **overrides,
    }
