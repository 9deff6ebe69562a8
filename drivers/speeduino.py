"""Speeduino ECU over USB serial (115200 8N1): the realtime block, polled.

Two ways to ask for the realtime block (PROTOCOLS.md §5):

- ``crc`` (TunerStudio's msEnvelope_1.0): ``[u16 BE len] payload [u32 BE crc32]``
  with payload ``'r' 0x00 0x30 offset(u16 LE) count(u16 LE)``; the reply is
  framed the same way with a status byte (0x00 OK) before the data. The CRC lets
  us resync after garbage, so it is preferred.
- ``legacy``: the single byte ``'A'``; the ECU answers with the raw block, no
  framing. Speeduino refuses legacy commands after the first CRC command until it
  is power-cycled, so ``protocol=auto`` (default) tries CRC first and falls back
  to legacy only if no valid CRC frame comes back.

Offsets and scaling are speeduino.ini ``[OutputChannels]``; multi-byte values are
little-endian. URI params: ``baud`` (115200), ``protocol`` (auto|crc|legacy),
``count`` (bytes requested, 139), ``stoich`` (14.7, for lambda from AFR).
"""

from __future__ import annotations

import math
import struct
import time
import zlib

from core.channels import STOICH_GASOLINE
from core.source import SourceError
from drivers.registry import SourceURI
from drivers.serial_base import Row, SerialSource, StreamParser

MIN_BLOCK_BYTES = 130
"""Bytes needed to reach the last field we decode (knockCor at offset 129)."""
MAX_FRAME_PAYLOAD = 2048
"""Larger length fields are garbage (the realtime block is ~140 bytes)."""
STATUS_TEXT = {
    0x80: "ECU timeout",
    0x82: "ECU saw a CRC error",
    0x83: "ECU does not know the command",
    0x84: "range error (block shorter than requested)",
    0x85: "ECU busy",
}
REPLY_TIMEOUT_S = 0.5
"""Speeduino's SERIAL_TIMEOUT is 400 ms; a reply later than this will not come."""
PROTOCOLS = ("auto", "crc", "legacy")


def frame(payload: bytes) -> bytes:
    """Wrap a payload in the msEnvelope: length, payload, CRC-32 (zlib) of the payload."""
    return struct.pack(">H", len(payload)) + payload + struct.pack(">I", zlib.crc32(payload))


def realtime_request(offset: int = 0, count: int = 139, can_id: int = 0) -> bytes:
    """The framed ``'r'`` command for ``count`` bytes of the realtime block from ``offset``."""
    return frame(b"r" + bytes([can_id, 0x30]) + struct.pack("<HH", offset, count))


def decode_realtime(block: bytes, stoich: float = STOICH_GASOLINE) -> dict[str, float]:
    """Canonical channels from a realtime block (at least :data:`MIN_BLOCK_BYTES` long)."""
    if len(block) < MIN_BLOCK_BYTES:
        raise ValueError(f"realtime block has {len(block)} bytes, need {MIN_BLOCK_BYTES}")
    afr = block[10] / 10.0
    afr_target = block[21] / 10.0
    values = {
        "map_kpa": float(struct.unpack_from("<H", block, 4)[0]),
        "iat_c": block[6] - 40.0,
        "clt_c": block[7] - 40.0,
        "batt_v": block[9] / 10.0,
        "afr": afr if afr > 0 else math.nan,
        "rpm": float(struct.unpack_from("<H", block, 14)[0]),
        "afr_target": afr_target if afr_target > 0 else math.nan,
        "spark_deg": float(struct.unpack_from("<b", block, 24)[0]),
        "tps_pct": block[25] / 2.0,
        "baro_kpa": float(block[41]),
        "knock_count": float(block[128]),
        "knock_retard_deg": float(block[129]),
    }
    values["lambda"] = values["afr"] / stoich
    values["lambda_target"] = values["afr_target"] / stoich
    return values


class EnvelopeParser:
    """Incremental msEnvelope response parser: hunts for a length whose CRC checks out."""

    def __init__(self, stoich: float = STOICH_GASOLINE) -> None:
        self.stoich = stoich
        self.status_text = ""
        self.frames = 0
        self.crc_errors = 0
        self.last_status = -1
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes, t: float) -> list[Row]:
        self._buf += data
        rows: list[Row] = []
        buf = self._buf
        while len(buf) >= 2:
            length = (buf[0] << 8) | buf[1]
            if not 1 <= length <= MAX_FRAME_PAYLOAD:
                del buf[0]
                continue
            if len(buf) < 2 + length + 4:
                break
            payload = bytes(buf[2 : 2 + length])
            (crc,) = struct.unpack_from(">I", buf, 2 + length)
            if crc != zlib.crc32(payload):
                self.crc_errors += 1
                del buf[0]
                continue
            del buf[: 2 + length + 4]
            self.frames += 1
            row = self._payload(payload, t)
            if row is not None:
                rows.append(row)
        return rows

    def _payload(self, payload: bytes, t: float) -> Row | None:
        self.last_status = payload[0]
        if payload[0] != 0x00:
            self.status_text = STATUS_TEXT.get(payload[0], f"ECU status 0x{payload[0]:02X}")
            return None
        if len(payload) - 1 < MIN_BLOCK_BYTES:
            self.status_text = f"short realtime block ({len(payload) - 1} bytes)"
            return None
        self.status_text = ""
        return (t, decode_realtime(payload[1:], self.stoich))


class LegacyParser:
    """The raw ``'A'`` reply: the block with no framing and a firmware-dependent size.

    Bytes are collected until the ECU goes quiet; then the first bytes are the
    block (the decoded fields all sit below offset 130 in every recent firmware).
    """

    def __init__(self, stoich: float = STOICH_GASOLINE) -> None:
        self.stoich = stoich
        self.status_text = ""
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes, t: float) -> list[Row]:
        self._buf += data[: MAX_FRAME_PAYLOAD - len(self._buf)]
        return []

    def take(self, t: float) -> list[Row]:
        """The reply so far as one sample (when long enough), and start afresh."""
        block, self._buf = bytes(self._buf), bytearray()
        if len(block) < MIN_BLOCK_BYTES:
            self.status_text = f"short 'A' reply ({len(block)} bytes)" if block else ""
            return []
        self.status_text = ""
        return [(t, decode_realtime(block, self.stoich))]


class SpeeduinoSource(SerialSource):
    """A Speeduino on USB serial (``speeduino:/dev/ttyACM0?protocol=auto``)."""

    default_baud = 115200
    expected_period_s = 0.1

    def __init__(self, uri: SourceURI, name: str) -> None:
        self.protocol_request = (uri.get("protocol") or "auto").lower()
        if self.protocol_request not in PROTOCOLS:
            raise SourceError(f"{uri.raw}: protocol must be one of {', '.join(PROTOCOLS)}")
        self.count = uri.get_int("count", 139)
        if not MIN_BLOCK_BYTES <= self.count <= MAX_FRAME_PAYLOAD - 1:
            raise SourceError(f"{uri.raw}: count={self.count} must be {MIN_BLOCK_BYTES}..2047")
        self.stoich = uri.get_float("stoich", STOICH_GASOLINE)
        self.protocol = ""
        super().__init__(uri, name)

    def make_parser(self, uri: SourceURI) -> StreamParser:
        return EnvelopeParser(self.stoich)

    def channels(self) -> dict[str, str]:
        return {"rpm": "rpm", "map_kpa": "kPa", "tps_pct": "%", "afr": "AFR", "lambda": "λ"}

    def _after_open(self) -> None:
        order = ["crc", "legacy"] if self.protocol_request == "auto" else [self.protocol_request]
        for protocol in order:
            self._use(protocol)
            if self._poll(REPLY_TIMEOUT_S):
                self.protocol = protocol
                return
            if protocol == "crc" and self.parser.status_text.startswith("range"):
                self.count = MIN_BLOCK_BYTES  # an older firmware with a shorter block
                if self._poll(REPLY_TIMEOUT_S):
                    self.protocol = protocol
                    return
        tried = " and ".join(f"'{p}'" for p in order)
        raise SourceError(
            f"no answer from the Speeduino on {self.port_path} at {self.baud} baud "
            f"(tried {tried}): is it an ECU running Speeduino firmware?"
        )

    def _use(self, protocol: str) -> None:
        self.port.reset_input_buffer()
        if protocol == "crc":
            self.parser = EnvelopeParser(self.stoich)
        else:
            self.parser = LegacyParser(self.stoich)

    def _poll(self, timeout: float) -> list[Row]:
        """One request, then read until its reply decodes or the ECU's timeout passes."""
        parser = self.parser
        parser.reset()
        legacy = parser if isinstance(parser, LegacyParser) else None
        self.port.write(b"A" if legacy else realtime_request(0, self.count))
        deadline = time.monotonic() + min(max(timeout, 0.05), REPLY_TIMEOUT_S)
        got_bytes = False
        frames_before = parser.frames if isinstance(parser, EnvelopeParser) else 0
        while time.monotonic() < deadline:
            chunk = self.port.read(self.port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                got_bytes = True
                rows = self._feed(chunk, now)
                if rows:
                    return rows[-1:]
                if isinstance(parser, EnvelopeParser) and parser.frames > frames_before:
                    return []  # a whole reply came, but with an error status
            elif legacy is not None and got_bytes:
                rows = legacy.take(now)
                self._count_frames(rows, now)
                return rows
        return []
