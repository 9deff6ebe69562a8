"""Speeduino: msEnvelope framing and the realtime block (PROTOCOLS.md §5), a fake ECU on a pty."""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from core.source import SourceError
from drivers.registry import create_source
from drivers.speeduino import (
    EnvelopeParser,
    LegacyParser,
    decode_realtime,
    frame,
    realtime_request,
)
from tests.serial_fakes import PtyResponder


def spec_block(size: int = 139) -> bytes:
    """The worked realtime block of PROTOCOLS.md §5."""
    block = bytearray(size)
    block[0:20] = bytes.fromhex("0C0000005F0041820 08A93000000AC0D0000 0000".replace(" ", ""))
    block[21] = 130  # AFR target 13.0
    block[24] = 28  # advance
    block[25] = 90  # TPS 45 %
    block[41] = 101  # baro
    block[128] = 2  # knock events
    block[129] = 3  # knock retard
    return bytes(block)


def test_request_vectors():
    assert realtime_request(0, 139) == bytes.fromhex("000772003000008B009FCDE77A")
    assert frame(b"Q") == bytes.fromhex("000151CE6E8EEF")
    assert frame(b"S") == bytes.fromhex("00015320 60EFC3".replace(" ", ""))
    assert frame(b"A") == bytes.fromhex("000141D3D99E8B")


def test_spec_response_prefix():
    response = frame(b"\x00" + spec_block())
    assert response[:19] == bytes.fromhex(
        "008C000C0000005F0041820 08A9300000 0AC0D".replace(" ", "")
    )


def check_spec_values(values):
    assert values["map_kpa"] == 95.0 and values["iat_c"] == 25.0 and values["clt_c"] == 90.0
    assert values["batt_v"] == pytest.approx(13.8) and values["afr"] == pytest.approx(14.7)
    assert values["lambda"] == pytest.approx(1.0)
    assert values["rpm"] == 3500.0 and values["afr_target"] == pytest.approx(13.0)
    assert values["spark_deg"] == 28.0 and values["tps_pct"] == 45.0
    assert values["baro_kpa"] == 101.0
    assert values["knock_count"] == 2.0 and values["knock_retard_deg"] == 3.0


def test_decode_realtime_block():
    check_spec_values(decode_realtime(spec_block()))


def test_negative_advance_and_short_block():
    block = bytearray(spec_block())
    block[24] = 0xFB
    assert decode_realtime(bytes(block))["spark_deg"] == -5.0
    with pytest.raises(ValueError, match="need 130"):
        decode_realtime(bytes(100))


@pytest.mark.parametrize(
    "garbage", [b"", b"\x00", b"\xf0\x12\x00\x8c\x00", b"\x00\x8c" + bytes(50)]
)
@pytest.mark.parametrize("bytewise", [False, True])
def test_envelope_parser_resyncs(garbage, bytewise):
    parser = EnvelopeParser()
    stream = garbage + frame(b"\x00" + spec_block())
    rows = []
    chunks = [bytes([b]) for b in stream] if bytewise else [stream]
    for chunk in chunks:
        rows.extend(parser.feed(chunk, 1.0))
    assert len(rows) == 1
    check_spec_values(rows[0][1])


def test_envelope_bad_crc_and_error_status():
    parser = EnvelopeParser()
    good = frame(b"\x00" + spec_block())
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    assert parser.feed(corrupt, 1.0) == [] and parser.crc_errors >= 1
    parser.reset()
    assert parser.feed(frame(b"\x84"), 1.0) == []
    assert parser.status_text.startswith("range error")


def test_legacy_parser_takes_after_quiet():
    parser = LegacyParser()
    assert parser.feed(spec_block(138)[:70], 1.0) == []
    assert parser.feed(spec_block(138)[70:], 1.0) == []
    rows = parser.take(1.1)
    check_spec_values(rows[0][1])


class FakeSpeeduino:
    """Answers like the firmware: CRC 'r' commands, legacy 'A' until the first CRC command."""

    def __init__(self, crc: bool = True, block_size: int = 139) -> None:
        self.crc = crc
        self.block = spec_block(block_size)
        self.legacy_allowed = True

    @staticmethod
    def split(buf: bytearray) -> bytes | None:
        if not buf:
            return None
        if buf[0] in b"AQSFC":
            request = bytes(buf[:1])
            del buf[:1]
            return request
        if len(buf) < 2:
            return None
        n = 2 + ((buf[0] << 8) | buf[1]) + 4
        if len(buf) < n:
            return None
        request = bytes(buf[:n])
        del buf[:n]
        return request

    def __call__(self, request: bytes) -> bytes:
        if request == b"A":
            return self.block if self.legacy_allowed else b""
        if not self.crc or len(request) < 7:
            return b""
        payload = request[2:-4]
        if struct.unpack(">I", request[-4:])[0] != zlib.crc32(payload):
            return frame(b"\x82")
        self.legacy_allowed = False
        if payload[:1] != b"r":
            return frame(b"\x83")
        offset, count = struct.unpack("<HH", payload[3:7])
        if offset + count > len(self.block):
            return frame(b"\x84")
        return frame(b"\x00" + self.block[offset : offset + count])


def run(uri_suffix: str, ecu: FakeSpeeduino, want: int = 5):
    dev = PtyResponder(ecu, split=FakeSpeeduino.split)
    src = create_source(f"speeduino:{dev.path}{uri_suffix}")
    try:
        src.open()
        blocks = []
        deadline = time.monotonic() + 2.0
        while len(blocks) < want and time.monotonic() < deadline:
            block = src.read(0.1)
            if block is not None:
                blocks.append(block)
        return src, blocks, dev.requests
    finally:
        src.close()
        dev.close()


def test_source_crc_protocol():
    src, blocks, requests = run("", FakeSpeeduino())
    assert src.protocol == "crc" and len(blocks) == 5
    check_spec_values({k: float(v[0]) for k, v in blocks[-1].columns.items()})
    assert requests[0] == bytes.fromhex("000772003000008B009FCDE77A")


def test_source_falls_back_to_legacy_on_old_firmware():
    src, blocks, requests = run("", FakeSpeeduino(crc=False, block_size=138))
    assert src.protocol == "legacy" and len(blocks) == 5
    assert blocks[-1].column("rpm")[0] == 3500.0
    assert b"A" in requests


def test_source_shrinks_request_on_range_error():
    src, blocks, _ = run("", FakeSpeeduino(block_size=134))
    assert src.protocol == "crc" and src.count == 130 and blocks


def test_silent_port_is_one_clear_error():
    dev = PtyResponder(lambda request: b"", split=FakeSpeeduino.split)
    src = create_source(f"speeduino:{dev.path}")
    try:
        with pytest.raises(SourceError, match="no answer from the Speeduino"):
            src.open()
    finally:
        src.close()
        dev.close()


def test_bad_params():
    with pytest.raises(SourceError, match="protocol"):
        create_source("speeduino:/dev/null?protocol=modbus")
    with pytest.raises(SourceError, match="count"):
        create_source("speeduino:/dev/null?count=10")
