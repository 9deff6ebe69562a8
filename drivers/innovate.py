"""Innovate MTS ("Serial Protocol 2"): LC-1, LC-2, LM-2, DLG-1, SSI-4 ... at 19200 8N1.

The device streams packets on its own (about 12 Hz); there is no checksum, so
framing relies on the header word being the only word with bit 7 set in both
bytes (OT-2 SDK p.13): ``(b0 & 0xA2) == 0xA2`` and ``(b1 & 0x80) == 0x80``.
A packet whose body contains a byte with bit 7 set was cut short (or its header
was a false one), and the hunt restarts at the next byte.

Output channels, in chain order (the device furthest from the host first):

- lambda channel 1 -> ``lambda`` and ``afr`` (AFR with the device's own AF
  multiplier unless the URI sets ``stoich``); F = 1 (free air) gives ``o2_pct``.
- lambda channels 2.. -> ``lambda2`` / ``afr2`` ... (extra, non-canonical columns).
- aux channels -> ``aux0_raw``, ``aux1_raw`` ... raw 0..1023 (0-5 V on SSI-4 /
  LMA-3 inputs; volts = raw * 5 / 1023), extra non-canonical columns.

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


class MtsParser:
    """Incremental MTS packet parser: ``feed(bytes, t) -> rows``; pure, no I/O."""

    def __init__(self, stoich: float | None = None) -> None:
        self.stoich = stoich
        self.status_text = ""
        self.packets = 0
        self.response_packets = 0
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes, t: float) -> list[Row]:
        self._buf += data
        rows: list[Row] = []
        buf = self._buf
        i = 0
        while True:
            while i + 1 < len(buf) and not is_header(buf[i], buf[i + 1]):
                i += 1
            if i + 1 >= len(buf):
                break
            end = i + 2 + 2 * packet_words(buf[i], buf[i + 1])
            if end > len(buf):
                # A header-ish byte inside what we have means the packet was cut short.
                if not any(byte & 0x80 for byte in buf[i + 2 :]):
                    break
                i += 1
                continue
            body = buf[i + 2 : end]
            if any(byte & 0x80 for byte in body):
                i += 1  # a false header or a cut-short packet: hunt on from the next byte
                continue
            if buf[i] & 0x10:
                self.packets += 1
                rows.append((t, self._decode(bytes(body))))
            else:
                self.response_packets += 1
            i = end
        del buf[:i]
        if len(buf) > MAX_PACKET_BYTES:
            del buf[: len(buf) - MAX_PACKET_BYTES]
        return rows

    def _decode(self, body: bytes) -> dict[str, float]:
        values: dict[str, float] = {}
        statuses: list[str] = []
        n_lambda = 0
        n_aux = 0
        k = 0
        while k + 1 < len(body):
            hi, lo = body[k], body[k + 1]
            if hi & 0x40 and k + 3 < len(body):
                n_lambda += 1
                suffix = "" if n_lambda == 1 else str(n_lambda)
                func = (hi >> 2) & 0x07
                af = (((hi & 0x01) << 7) | (lo & 0x7F)) / 10.0
                raw = ((body[k + 2] & 0x3F) << 7) | (body[k + 3] & 0x7F)
                lam = math.nan
                if func == 0:
                    lam = 0.5 + 0.001 * raw
                else:
                    text = FUNCTION_TEXT[func].format(pct=raw / 10.0, raw=raw)
                    statuses.append(text if n_lambda == 1 else f"sensor {n_lambda}: {text}")
                    if func == 1 and n_lambda == 1:
                        values["o2_pct"] = raw / 10.0
                stoich = self.stoich if self.stoich is not None else af
                values[f"lambda{suffix}"] = lam
                values[f"afr{suffix}"] = lam * stoich
                k += 4
            else:
                values[f"aux{n_aux}_raw"] = float(((hi & 0x3F) << 7) | (lo & 0x7F))
                n_aux += 1
                k += 2
        self.status_text = "; ".join(statuses)
        return values


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
