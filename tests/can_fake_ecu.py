"""A fake OBD-II ECU on a python-can bus, answering like a real one (ISO 15765-4).

It is written from raw frames (not with can-isotp) so the driver's use of the
library is tested against an independent ISO-TP implementation: single frames
for short replies, a first frame + consecutive frames after the tester's flow
control (sent to the physical ID) for long ones, padding, and a 0x7F negative
response for requests it does not handle. With ``extended`` it uses 29-bit IDs
(ISO 15765-4 / SAE J1979: functional 0x18DB33F1, physical request 0x18DAxxF1,
reply 0x18DAF1xx where xx is the ECU address) and ignores 11-bit requests.
"""

from __future__ import annotations

import threading
import time

import can

PAD = 0xAA


def bitmap(base: int, pids: set[int]) -> bytes:
    """The 4-byte 'PIDs supported' bitmap for base+1 .. base+0x20."""
    bits = 0
    for pid in pids:
        if base < pid <= base + 0x20:
            bits |= 1 << (base + 0x20 - pid)
    return bits.to_bytes(4, "big")


class FakeEcu:
    """Answers Mode 01 on 0x7DF (functional) and ``rx_id`` (physical) from ``values``."""

    def __init__(
        self,
        channel: str,
        values: dict[int, bytes],
        resp_id: int = 0x7E8,
        multi_pid: bool = True,
        reject_multi: bool = False,
        extended: bool = False,
        late: dict[int, float] | None = None,
    ) -> None:
        """``late`` {n: seconds}: the n-th request (1-based) is answered that much later."""
        self.values = dict(values)
        self.late = dict(late or {})
        self.extended = extended
        if extended and resp_id <= 0x7FF:
            resp_id = 0x18DAF110  # engine ECU, address 0x10
        self.resp_id = resp_id
        self.phys_id = 0x18DA00F1 | (resp_id & 0xFF) << 8 if extended else resp_id - 8
        self.functional_id = 0x18DB33F1 if extended else 0x7DF
        self.multi_pid = multi_pid
        self.reject_multi = reject_multi
        self.requests: list[bytes] = []
        self.flow_controls: list[tuple[int, bytes]] = []
        self.silent = False
        self.bus = can.Bus(interface="virtual", channel=channel)
        self._fc = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        supported = set(self.values) | {0x20, 0x40}
        for base in (0x00, 0x20, 0x40):
            self.values[base] = bitmap(base, supported if base < 0x40 else set(self.values))

    def __enter__(self) -> FakeEcu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.bus.shutdown()

    def _send(self, data: bytes) -> None:
        self.bus.send(
            can.Message(
                arbitration_id=self.resp_id,
                is_extended_id=self.extended,
                data=data.ljust(8, bytes([PAD])),
            )
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.bus.recv(0.02)
            if (
                msg is None
                or msg.is_extended_id != self.extended
                or msg.arbitration_id not in (self.functional_id, self.phys_id)
            ):
                continue
            data = bytes(msg.data)
            if data[0] >> 4 == 3:
                self.flow_controls.append((msg.arbitration_id, data))
                self._fc.set()
                continue
            if data[0] >> 4 != 0 or self.silent:
                continue
            request = data[1 : 1 + (data[0] & 0x0F)]
            self.requests.append(request)
            delay = self.late.get(len(self.requests), 0.0)
            threading.Thread(target=self._answer, args=(request, delay), daemon=True).start()

    def _answer(self, request: bytes, delay_s: float = 0.0) -> None:
        if self._stop.wait(delay_s):
            return  # stopped while holding a late reply: the bus is going away
        if len(request) < 2 or request[0] != 0x01:
            self._send(bytes([0x03, 0x7F, request[0] if request else 0, 0x11]))
            return
        pids = list(request[1:])
        if len(pids) > 1 and self.reject_multi:
            self._send(bytes([0x03, 0x7F, 0x01, 0x12]))
            return
        if len(pids) > 1 and not self.multi_pid:
            pids = pids[:1]  # a simple ECU answers only the first PID
        payload = bytearray([0x41])
        for pid in pids:
            if pid in self.values:
                payload += bytes([pid]) + self.values[pid]
        if len(payload) == 1:
            return  # no supported PID: a real ECU stays silent on a functional request
        time.sleep(0.002)  # ECU response time
        if len(payload) <= 7:
            self._send(bytes([len(payload)]) + payload)
            return
        self._fc.clear()
        self._send(bytes([0x10 | (len(payload) >> 8), len(payload) & 0xFF]) + payload[:6])
        if not self._fc.wait(1.0):
            return  # N_Bs timeout: the tester sent no flow control
        rest, seq = payload[6:], 1
        while rest:
            self._send(bytes([0x20 | (seq & 0x0F)]) + rest[:7])
            rest, seq = rest[7:], seq + 1
