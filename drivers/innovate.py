"""Innovate MTS ("Serial Protocol 2"): LC-1, LC-2, LM-2, DLG-1, SSI-4 ... at 19200 8N1.

The device streams packets on its own (about 12 Hz); there is no checksum, so
framing relies on the header word being the only word with bit 7 set in both
bytes (OT-2 SDK p.13): ``(b0 & 0xA2) == 0xA2`` and ``(b1 & 0x80) == 0x80``.
The one other word with bit 15 set is an LM-1 channel (OT-2 SDK p.16-17;
Innovate "Serial Protocol #1"): ``1 R F3 F2 F1 F0 0 AF7 | 0 AF6..AF0``, then
the lambda word, a battery word and five aux words; its bit 9 is 0, so it can
never pass the header test. Any other byte with bit 7 set inside a body means
the packet was cut short (or its header was a false one), and the hunt
restarts at the next byte. A body that breaks the word layout (a lambda word
without its fixed bits, a channel cut in half) is dropped and counted.

An LM-1 on its own (no MTS chain) sends Serial Protocol #1 packets without a
header: the first byte is the only one with bit 7 set, 2 to 8 words long. They
are framed from that byte to the next one with bit 7 set (or after 16 bytes, a
full packet), and accepted only when every word has its fixed zero bits.

Passing those bit tests once proves little: random bytes (a wrong baud, another
device) pass them a few times a second. A real device streams packet after
packet with nothing in between, so a packet is trusted only when the next one
starts exactly where it ends (the word count is right); the first of a stream
is held back until then. Until that lock, no row and no device status comes
out, and the base class reports bytes without a valid frame.

No sample without a value: an empty (zero-length) packet, a query response or
a dropped body yields no row, so garbage never looks like a live device.

Output channels, in chain order (the device furthest from the host first):

- lambda channel 1 -> ``lambda`` and ``afr`` (AFR with the device's own AF
  multiplier unless the URI sets ``stoich``); F = 1 (free air) gives ``o2_pct``.
- lambda channels 2.. -> ``lambda2`` / ``afr2`` ... (extra, non-canonical columns).
- aux channels -> ``aux0_raw``, ``aux1_raw`` ... raw 0..1023 (0-5 V on SSI-4 /
  LMA-3 inputs; volts = raw * 5 / 1023), extra non-canonical columns.
- an LM-1 channel counts as a lambda channel; its battery word gives ``batt_v``
  (``bv * 5 * mb / 1023``, Serial Protocol #1 §2.3) and its five aux words are
  ordinary aux channels.

A function code F != 0 (warming up, calibrating, error ...) makes that sample's
lambda NaN, and its text becomes the source status message.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

from core.source import SourceError
from drivers.registry import SourceURI
from drivers.serial_base import Row, SerialSource

MAX_PACKET_BYTES = 2 + 2 * 255
"""Header plus the longest body the 8-bit word count allows."""

FUNCTION_TEXT = {
    1: "O2 {pct:.1f} % (sensor in free air?)",
    2: "free-air calibration in progress",
    3: "needs free-air calibration",
    4: "warming up {pct:.1f} %",
    5: "heater calibration ({raw})",
    6: "sensor error {raw}",
    7: "reserved function code {func} (value {raw})",
}
"""Status text per MTS function code (OT-2 SDK p.16); F = 0 means lambda is valid."""


def is_header(b0: int, b1: int) -> bool:
    """The MTS header test; it passes nowhere else in a packet."""
    return (b0 & 0xA2) == 0xA2 and (b1 & 0x80) == 0x80


def packet_words(b0: int, b1: int) -> int:
    """Words (16-bit) that follow the header."""
    return ((b0 & 0x01) << 7) | (b1 & 0x7F)


def body_bytes_ok(body: bytes | bytearray) -> bool:
    """Bit 7 is set only on the high byte of an LM-1 word (bit 1 clear) inside a body."""
    return not any(byte & 0x80 and (j & 1 or byte & 0x02) for j, byte in enumerate(body))


ISP1_FULL_BYTES = 16
"""A stand-alone LM-1 packet with its five aux words (Serial Protocol #1 §2)."""


def is_isp1_start(b0: int, b1: int) -> bool:
    """First byte of a stand-alone LM-1 packet: bit 7 set, bit 1 clear (never a header)."""
    return bool(b0 & 0x80) and not b0 & 0x02 and not b1 & 0x80


def isp1_end(buf: bytes | bytearray, i: int) -> int | None:
    """End of the LM-1 packet starting at ``i``: the next byte with bit 7 set, or 16 bytes.

    ``None`` while more bytes are needed; -1 when the bytes cannot be a packet
    (an odd length or fewer than two words before the next start).
    """
    for j in range(i + 1, min(len(buf), i + ISP1_FULL_BYTES)):
        if buf[j] & 0x80:
            length = j - i
            return j if length >= 4 and length % 2 == 0 else -1
    if len(buf) - i >= ISP1_FULL_BYTES:
        return i + ISP1_FULL_BYTES
    return None


def _next_start(buf: bytes | bytearray, i: int) -> int:
    """The first position from ``i`` where an MTS header or an LM-1 packet could start."""
    while (
        i + 1 < len(buf)
        and not is_header(buf[i], buf[i + 1])
        and not is_isp1_start(buf[i], buf[i + 1])
    ):
        i += 1
    return i


Layout = tuple[tuple[str, int, int], ...]
"""Per channel: its type (``lambda``, ``lm1``, ``aux``), AF x10 and function code.

Two packets of one device chain have the same layout (except when a sensor changes
state), two runs of random bytes seldom do: the lock asks for it (:class:`Sync`).
"""


class BadBody(ValueError):
    """A packet body whose words do not follow the MTS channel layout."""


class Sync(enum.Enum):
    """Where the parser stands in the stream: packets are only trusted back to back."""

    HUNTING = "hunting"
    """No packet yet: look for one at every byte."""
    HELD = "held"
    """One valid packet, held back until the next one, of the same shape, starts right
    where it ends (:attr:`Packet.shape`)."""
    LOCKED = "locked"
    """Two or more packets back to back: each one that follows is decoded at once."""


class Packet(NamedTuple):
    """One structurally valid packet: where it ends and what it carries."""

    end: int
    values: dict[str, float] | None
    """Channel values; None for a packet that carries no sample (empty, query response)."""
    status_text: str
    kind: str
    """``data``, ``empty`` or ``response``: which counter the packet goes to."""
    shape: tuple[object, ...]
    """Framing, length and :data:`Layout`: what two packets in a row must share to lock."""


NEED_MORE = "need more"
NOT_A_PACKET = "not a packet"


class MtsParser:
    """Incremental MTS packet parser: ``feed(bytes, t) -> rows``; pure, no I/O.

    With no checksum, a single packet that passes every fixed-bit test can still be
    noise: ten minutes of random bytes at 19200 baud made about 300 rows when each
    such packet counted. A real device sends packet after packet with nothing in
    between, its chain's layout unchanged, so a packet only counts once the next one,
    of the same shape, starts exactly where it ends (:class:`Sync`; 0 rows in three
    hours of random bytes). The first is held back until then and emitted with its
    own receipt time; the ones after it are decoded as they complete. Anything at the
    expected position that is not a valid packet drops the lock and the device status.
    """

    def __init__(self, stoich: float | None = None) -> None:
        self.stoich = stoich
        self.status_text = ""
        self.packets = 0
        self.response_packets = 0
        self.empty_packets = 0
        self.bad_packets = 0
        self.sync_losses = 0
        self.sync = Sync.HUNTING
        self._held: tuple[float, Packet] | None = None
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()
        self._unlock()

    def _unlock(self) -> None:
        if self.sync is Sync.LOCKED:
            self.sync_losses += 1
            self.status_text = ""  # the device status came from packets no longer trusted
        self.sync = Sync.HUNTING
        self._held = None

    def feed(self, data: bytes, t: float) -> list[Row]:
        self._buf += data
        rows: list[Row] = []
        buf = self._buf
        i = 0
        while True:
            if self.sync is Sync.HUNTING:
                i = _next_start(buf, i)
            if i + 1 >= len(buf):
                break
            packet = self._packet_at(buf, i)
            if packet is NEED_MORE:
                break
            if not isinstance(packet, Packet):
                self._unlock()
                i += 1  # a false start or a cut-short packet: hunt on from the next byte
                continue
            if self.sync is Sync.HUNTING or (
                self._held is not None and self._held[1].shape != packet.shape
            ):
                self.sync = Sync.HELD  # a first packet, or one unlike the one held: hold it
                self._held = (t, packet)
            else:
                if self._held is not None:
                    self._accept(*self._held, rows)
                    self._held = None
                self.sync = Sync.LOCKED
                self._accept(t, packet, rows)
            i = packet.end
        del buf[:i]
        if len(buf) > MAX_PACKET_BYTES:
            self._unlock()
            del buf[: len(buf) - MAX_PACKET_BYTES]
        return rows

    def _accept(self, t: float, packet: Packet, rows: list[Row]) -> None:
        """Count a trusted packet; a data packet becomes a row and sets the status."""
        if packet.kind == "response":
            self.response_packets += 1
        elif packet.kind == "empty":
            self.empty_packets += 1
        if packet.values is not None:
            self.packets += 1
            self.status_text = packet.status_text
            rows.append((t, packet.values))

    def _packet_at(self, buf: bytearray, i: int) -> Packet | str:
        """The packet that starts at ``i``, :data:`NEED_MORE`, or :data:`NOT_A_PACKET`."""
        if not is_header(buf[i], buf[i + 1]):
            if not is_isp1_start(buf[i], buf[i + 1]):
                return NOT_A_PACKET
            end = isp1_end(buf, i)
            if end is None:
                return NEED_MORE  # the rest, or the next packet's start byte, is to come
            decoded = self._isp1(bytes(buf[i:end])) if end > 0 else None
            if decoded is None:
                return NOT_A_PACKET
            values, status_text, layout = decoded
            return Packet(end, values, status_text, "data", ("isp1", end - i, layout))
        end = i + 2 + 2 * packet_words(buf[i], buf[i + 1])
        if end > len(buf):
            # A header-ish byte inside what we have means the packet was cut short.
            return NEED_MORE if body_bytes_ok(buf[i + 2 :]) else NOT_A_PACKET
        body = bytes(buf[i + 2 : end])
        if not body_bytes_ok(body):
            return NOT_A_PACKET
        if not buf[i] & 0x10:
            return Packet(end, None, "", "response", ("response", end - i))
        if not body:
            return Packet(end, None, "", "empty", ("empty",))
        try:
            values, status_text, layout = self._decode(body)
        except BadBody:
            self.bad_packets += 1
            return NOT_A_PACKET
        return Packet(end, values, status_text, "data", ("mts", end - i, layout))

    def _isp1(self, packet: bytes) -> tuple[dict[str, float], str, Layout] | None:
        """A stand-alone LM-1 packet (Serial Protocol #1): values and status, or None."""
        words = len(packet) // 2
        func = (packet[0] >> 2) & 0x0F
        if words == 2 and func == 0:
            return None  # two words only in warm-up or error (SP#1 §2)
        if any(packet[2 * w] & (0xC0 if w < 3 else 0xF8) for w in range(1, words)):
            return None  # lambda / battery words: bits 15-14 clear; aux: bits 15-11 clear
        try:
            return self._decode(packet)
        except BadBody:
            return None

    def _decode(self, body: bytes) -> tuple[dict[str, float], str, Layout]:
        """Values, status text and the channel layout (:data:`Layout`)."""
        values: dict[str, float] = {}
        statuses: list[str] = []
        layout: list[tuple[str, int, int]] = []
        n_lambda = 0
        n_aux = 0
        k = 0
        while k < len(body):
            hi, lo = body[k], body[k + 1]
            lm1 = bool(hi & 0x80)
            if lm1 or hi & 0x40:
                words = 3 if lm1 else 2
                if lm1 and k + 4 == len(body):
                    words = 2  # an LM-1 in warm-up / error may stop after its lambda word
                if k + 2 * words > len(body):
                    raise BadBody("lambda channel cut short")
                if not lm1 and (hi & 0x22) != 0x02:
                    raise BadBody("lambda word without its fixed bits")
                if any(body[k + 2 * w] & 0xC0 for w in range(1, words)):
                    raise BadBody("lambda/battery word with bit 15 or 14 set")
                n_lambda += 1
                func = (hi >> 2) & (0x0F if lm1 else 0x07)
                raw = ((body[k + 2] & 0x3F) << 7) | (body[k + 3] & 0x7F)
                af_x10 = ((hi & 1) << 7) | lo
                layout.append(("lm1" if lm1 else "lambda", af_x10, func))
                self._lambda(values, statuses, n_lambda, func, af_x10, raw)
                if lm1 and words == 3 and "batt_v" not in values:
                    bhi, blo = body[k + 4], body[k + 5]
                    divider = (bhi >> 3) & 0x07
                    values["batt_v"] = (((bhi & 0x07) << 7) | blo) * 5.0 * divider / 1023.0
                k += 2 * words
            else:
                if hi & 0x38:
                    raise BadBody("aux word wider than the 10 bits every device uses")
                values[f"aux{n_aux}_raw"] = float(((hi & 0x07) << 7) | (lo & 0x7F))
                layout.append(("aux", 0, 0))
                n_aux += 1
                k += 2
        return values, "; ".join(statuses), tuple(layout)

    def _lambda(
        self,
        values: dict[str, float],
        statuses: list[str],
        n_lambda: int,
        func: int,
        af_x10: int,
        raw: int,
    ) -> None:
        """Lambda and AFR of one lambda channel (NaN unless F = 0), or its status text."""
        suffix = "" if n_lambda == 1 else str(n_lambda)
        lam = math.nan
        if func == 0:
            lam = 0.5 + 0.001 * raw
        else:
            text = FUNCTION_TEXT.get(func, FUNCTION_TEXT[7])
            text = text.format(pct=raw / 10.0, raw=raw, func=func)
            statuses.append(text if n_lambda == 1 else f"sensor {n_lambda}: {text}")
            if func == 1 and n_lambda == 1:
                values["o2_pct"] = raw / 10.0
        stoich = self.stoich if self.stoich is not None else af_x10 / 10.0
        values[f"lambda{suffix}"] = lam
        values[f"afr{suffix}"] = lam * stoich


class InnovateSource(SerialSource):
    """An Innovate MTS chain on one serial port (``innovate:/dev/ttyUSB0?stoich=14.7``)."""

    default_baud = 19200
    expected_period_s = 0.08192

    def make_parser(self, uri: SourceURI) -> MtsParser:
        stoich = uri.get("stoich")
        if stoich is None:
            return MtsParser()
        value = uri.get_float("stoich", 14.7)
        if not 3.0 <= value <= 20.0:
            raise SourceError(f"{uri.raw}: stoich={value} is not a plausible AFR (e.g. 14.7)")
        return MtsParser(stoich=value)

    def channels(self) -> dict[str, str]:
        return {"lambda": "λ", "afr": "AFR"}
