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
full packet), and accepted only when every word has its fixed zero bits and,
for a short packet, when it follows the previous packet back to back.

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

import math

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
    7: "reserved function code ({raw})",
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


class BadBody(ValueError):
    """A packet body whose words do not follow the MTS channel layout."""


class MtsParser:
    """Incremental MTS packet parser: ``feed(bytes, t) -> rows``; pure, no I/O."""

    def __init__(self, stoich: float | None = None) -> None:
        self.stoich = stoich
        self.status_text = ""
        self.packets = 0
        self.response_packets = 0
        self.empty_packets = 0
        self.bad_packets = 0
        self._buf = bytearray()
        self._isp1_at: int | None = None
        """Where the next stand-alone LM-1 packet must start to continue the chain."""

    def reset(self) -> None:
        self._buf.clear()
        self._isp1_at = None

    def feed(self, data: bytes, t: float) -> list[Row]:
        self._buf += data
        rows: list[Row] = []
        buf = self._buf
        i = 0
        while True:
            while (
                i + 1 < len(buf)
                and not is_header(buf[i], buf[i + 1])
                and not is_isp1_start(buf[i], buf[i + 1])
            ):
                i += 1
            if i + 1 >= len(buf):
                break
            if not is_header(buf[i], buf[i + 1]):
                end = isp1_end(buf, i)
                if end is None:
                    break  # wait for the rest (or for the next packet's start byte)
                chained = self._isp1_at == i
                if end < 0 or not self._isp1(bytes(buf[i:end]), t, rows, chained):
                    self._isp1_at = None
                    i += 1
                    continue
                self._isp1_at = i = end
                continue
            end = i + 2 + 2 * packet_words(buf[i], buf[i + 1])
            if end > len(buf):
                # A header-ish byte inside what we have means the packet was cut short.
                if body_bytes_ok(buf[i + 2 :]):
                    break
                i += 1
                continue
            body = bytes(buf[i + 2 : end])
            if not body_bytes_ok(body):
                i += 1  # a false header or a cut-short packet: hunt on from the next byte
                continue
            if not buf[i] & 0x10:
                self.response_packets += 1
            elif not body:
                self.empty_packets += 1
            else:
                try:
                    values = self._decode(body)
                except BadBody:
                    self.bad_packets += 1
                    i += 1
                    continue
                self.packets += 1
                rows.append((t, values))
            i = end
        del buf[:i]
        if self._isp1_at is not None:
            self._isp1_at -= i
        if len(buf) > MAX_PACKET_BYTES:
            self._isp1_at = None
            del buf[: len(buf) - MAX_PACKET_BYTES]
        return rows

    def _isp1(self, packet: bytes, t: float, rows: list[Row], chained: bool) -> bool:
        """A stand-alone LM-1 packet (Serial Protocol #1); False when it is not one.

        With no header or checksum, a short packet is easy for noise to imitate, so
        one only becomes a sample when it follows the previous packet back to back
        (``chained``) or is a full 16-byte packet (five aux words, 25 fixed zero bits).
        """
        words = len(packet) // 2
        func = (packet[0] >> 2) & 0x0F
        if words == 2 and func == 0:
            return False  # two words only in warm-up or error (SP#1 §2)
        if any(packet[2 * w] & (0xC0 if w < 3 else 0xF8) for w in range(1, words)):
            return False  # lambda / battery words: bits 15-14 clear; aux: bits 15-11 clear
        try:
            values = self._decode(packet)
        except BadBody:
            return False
        if chained or len(packet) == ISP1_FULL_BYTES:
            self.packets += 1
            rows.append((t, values))
        return True

    def _decode(self, body: bytes) -> dict[str, float]:
        values: dict[str, float] = {}
        statuses: list[str] = []
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
                self._lambda(values, statuses, n_lambda, func, ((hi & 1) << 7) | lo, raw)
                if lm1 and words == 3 and "batt_v" not in values:
                    bhi, blo = body[k + 4], body[k + 5]
                    divider = (bhi >> 3) & 0x07
                    values["batt_v"] = (((bhi & 0x07) << 7) | blo) * 5.0 * divider / 1023.0
                k += 2 * words
            else:
                if hi & 0x38:
                    raise BadBody("aux word wider than the 10 bits every device uses")
                values[f"aux{n_aux}_raw"] = float(((hi & 0x07) << 7) | (lo & 0x7F))
                n_aux += 1
                k += 2
        self.status_text = "; ".join(statuses)
        return values

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
            text = FUNCTION_TEXT.get(func, FUNCTION_TEXT[7]).format(pct=raw / 10.0, raw=raw)
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
