"""A fake TunerStudio ECU (Speeduino / rusEFI / MS2 behaviour) for the pty driver tests.

Behaviour from the firmwares' public comms code as PROTOCOLS.md §5 records it:
the msEnvelope ``[u16 BE len] payload [u32 BE CRC-32]`` with a status byte first
in each reply (0x00 OK, 0x82 CRC error, 0x83 unknown command, 0x84 range error);
Speeduino stops answering plain commands after the first valid CRC command;
pre-envelope firmware reads the line byte by byte and ignores bytes it does not
know as commands.
"""

from __future__ import annotations

import struct
import zlib

from drivers.tunerstudio import frame

PLAIN_LENGTHS = {
    ord("Q"): 1,
    ord("S"): 1,
    ord("A"): 1,
    ord("F"): 1,
    ord("V"): 1,
    ord("r"): 7,
    ord("O"): 5,
}
"""Plain command byte -> whole command length ('r' canId table off(2) cnt(2), 'O' off(2) cnt(2))."""


class FakeTsEcu:
    """Answers signature and realtime commands from a block, framed or plain."""

    def __init__(
        self,
        signature: str,
        block: bytes,
        *,
        crc: bool = True,
        plain: bool = True,
        query: bytes = b"Q",
        realtime: bytes = b"r",
        big_endian: bool = False,
        garbage: bytes = b"",
        sig_nul: bool = False,
    ) -> None:
        self.signature = signature.encode() + (b"\x00" if sig_nul else b"")
        self.block = block
        self.crc = crc
        self.plain_allowed = plain
        self.query = query
        self.realtime = realtime
        self.order = ">" if big_endian else "<"
        self.garbage = garbage
        self.framed_requests = 0

    def split(self, buf: bytearray) -> bytes | None:
        if not buf:
            return None
        if self.crc and buf[0] == 0x00 and len(buf) >= 2:
            n = 2 + ((buf[0] << 8) | buf[1]) + 4
            if len(buf) < n:
                return None
            request = bytes(buf[:n])
            del buf[:n]
            return request
        if self.crc and buf[0] == 0x00:
            return None
        n = PLAIN_LENGTHS.get(buf[0], 1)
        if len(buf) < n:
            return None
        request = bytes(buf[:n])
        del buf[:n]
        return request

    def _range(self, payload: bytes) -> tuple[int, int] | None:
        if payload[:1] == b"r" and len(payload) >= 7:
            return struct.unpack(self.order + "HH", payload[3:7])
        if payload[:1] == b"O" and len(payload) >= 5:
            return struct.unpack(self.order + "HH", payload[1:5])
        return None

    def answer(self, payload: bytes) -> tuple[int, bytes]:
        if payload == self.query:
            return 0x00, self.signature
        if payload[:1] != self.realtime:
            return 0x83, b""
        if payload == b"A":
            return 0x00, self.block
        span = self._range(payload)
        if span is None:
            return 0x83, b""
        offset, count = span
        if offset + count > len(self.block):
            return 0x84, b""
        return 0x00, self.block[offset : offset + count]

    def __call__(self, request: bytes) -> bytes:
        if self.crc and len(request) >= 7 and request[0] == 0x00:
            payload = request[2:-4]
            if struct.unpack(">I", request[-4:])[0] != zlib.crc32(payload):
                return frame(b"\x82")
            self.framed_requests += 1
            self.plain_allowed = False  # Speeduino: legacy comms off after a CRC command
            status, data = self.answer(payload)
            return self.garbage + frame(bytes([status]) + data)
        if not self.plain_allowed:
            return b""
        status, data = self.answer(request)
        return self.garbage + data if status == 0 else b""


def _sweep(ecu: FakeTsEcu, t: float) -> None:
    """Move rpm (1500..6500 over 20 s) and MAP (30..100 kPa over 7 s), DFCO off, so a
    hand-run dashboard or log has moving gauges and fills cells (offsets common to all
    Speeduino layouts: status1 1, MAP U16 4, rpm U16 14)."""

    def tri(period_s: float) -> float:
        phase = (t / period_s) % 1.0
        return 2 * phase if phase < 0.5 else 2 - 2 * phase

    block = bytearray(ecu.block)
    block[1] &= 0xFF ^ 0x10
    struct.pack_into("<H", block, 4, round(30 + 70 * tri(7.0)))
    struct.pack_into("<H", block, 14, round(1500 + 5000 * tri(20.0)))
    ecu.block = bytes(block)


def main() -> None:
    """``python -m tests.ts_fakes 202207``: a fake Speeduino on a pty until Ctrl-C (for trying by hand).

    ``--steady`` keeps the test block as it is (3500 rpm, 95 kPa, DFCO on); by default
    rpm and MAP sweep and DFCO is off, as an engine on the dyno would look.
    """
    import sys
    import time

    from tests.serial_fakes import PtyResponder
    from tests.speeduino_blocks import LAYOUTS, speeduino_block

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    steady = "--steady" in sys.argv[1:]
    version = args[0] if args else "202501"
    layout = version if version in LAYOUTS else "202501"
    ecu = FakeTsEcu(f"speeduino {version}", speeduino_block(layout))
    dev = PtyResponder(ecu, split=ecu.split)
    what = "steady test block" if steady else "rpm 1500-6500 / MAP 30-100 kPa sweeping"
    print(f"fake 'speeduino {version}' on {dev.path}, {what} (Ctrl-C to stop)", flush=True)
    start = time.monotonic()
    try:
        while True:
            if not steady:
                _sweep(ecu, time.monotonic() - start)
            time.sleep(0.05)
    except KeyboardInterrupt:
        dev.close()


if __name__ == "__main__":
    main()
