"""JetDrive: byte-exact vectors, channel mapping, and the source over 127.0.0.1 unicast only."""

from __future__ import annotations

import socket
import time

import pytest

from core.source import SourceError, SourceState
from drivers import jetdrive_protocol as jd
from drivers.registry import create_source

VALUES_VECTOR = bytes.fromhex(
    "02 14 00 34 12 07 FF FF 0A 00 D2 04 00 00 00 40 9C 45 04 00 D2 04 00 00 00 00 AF 42"
)
REQUEST_VECTOR = bytes.fromhex("06 00 00 42 00 01 FF FF")
CHANNELS = [
    jd.ChannelInfo(10, 0, "(DWRT CPU) Engine RPM", 8),
    jd.ChannelInfo(4, 0, "(DWRT CPU) Power", 4),
    jd.ChannelInfo(5, 0, "(DWRT CPU) Torque", 5),
    jd.ChannelInfo(6, 0, "(DWRT CPU) Speed", 2),
    jd.ChannelInfo(7, 0, "WB AFR 1", 11),
    jd.ChannelInfo(8, 0, "(DWRT ATMO) Pressure", 7),
    jd.ChannelInfo(9, 0, "(DWRT CPU) Correction Factor", 255),
]


def test_channel_values_vector_byte_exact():
    msg = jd.parse_message(VALUES_VECTOR)
    assert (msg.key, msg.host, msg.seq, msg.dest) == (0x02, 0x1234, 7, 0xFFFF)
    assert jd.parse_channel_values(msg) == [(10, 1234, 5000.0), (4, 1234, 87.5)]
    body = jd.encode_channel_values([(10, 1234, 5000.0), (4, 1234, 87.5)])
    assert jd.encode_message(jd.KEY_CHANNEL_VALUES, 0x1234, 7, body) == VALUES_VECTOR


def test_request_channel_info_vector_byte_exact():
    assert jd.encode_message(jd.KEY_REQUEST_CHANNEL_INFO, 0x0042, 1) == REQUEST_VECTOR


def test_channel_info_round_trip_and_layout():
    body = jd.encode_channel_info("Power Core", CHANNELS)
    assert len(body) == 50 + 34 * len(CHANNELS)
    provider = jd.parse_channel_info(jd.parse_message(jd.encode_message(1, 0x1234, 3, body)))
    assert provider.name == "Power Core" and provider.host == 0x1234
    assert provider.channels[10] == CHANNELS[0]


@pytest.mark.parametrize(
    "bad",
    [
        b"\x02\x14",
        VALUES_VECTOR[:-1],
        jd.encode_message(2, 1, 1, b"\x00" * 9),
        jd.encode_message(1, 1, 1, b"x" * 60),
    ],
)
def test_malformed_datagrams_raise_jetdrive_error(bad):
    with pytest.raises(jd.JetDriveError):
        msg = jd.parse_message(bad)
        (jd.parse_channel_info if msg.key == 1 else jd.parse_channel_values)(msg)


def test_mapping_imperial_and_metric():
    imperial = {c.chan_id: jd.canonical_for(c) for c in CHANNELS}
    assert imperial[10] == ("rpm", 1.0, 0.0)
    assert imperial[4] == ("power_hp", 1.0, 0.0)
    assert imperial[5][0] == "torque_nm" and imperial[5][1] == pytest.approx(1.3558179)
    assert imperial[6][0] == "drum_speed_kph" and imperial[6][1] == pytest.approx(1.609344)
    assert imperial[7][0] == "lambda" and imperial[7][1] == pytest.approx(1 / 14.7)
    assert imperial[8][0] == "baro_kpa" and imperial[8][1] == pytest.approx(3.386388640341)
    assert imperial[9] is None
    metric = jd.canonical_for(CHANNELS[1], metric=True)
    assert metric is not None and metric[1] == pytest.approx(1 / 0.745699872)


@pytest.fixture
def provider_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    yield sock
    sock.close()


def test_source_asks_for_info_then_maps_values(provider_socket):
    peer = provider_socket.getsockname()
    src = create_source(f"jetdrive:127.0.0.1:0?peer=127.0.0.1:{peer[1]}&host=0x0042", "dyno")
    src.open()
    try:
        request, addr = provider_socket.recvfrom(100)
        assert request[0] == jd.KEY_REQUEST_CHANNEL_INFO and request[3:5] == b"\x42\x00"
        info = jd.encode_message(
            jd.KEY_CHANNEL_INFO, 0x1234, 1, jd.encode_channel_info("PC", CHANNELS)
        )
        provider_socket.sendto(info, addr)
        before = time.monotonic()
        provider_socket.sendto(VALUES_VECTOR, addr)
        blocks = [src.read(0.5)]
        time.sleep(0.05)  # the provider's clock and ours both advance 50 ms
        later = jd.encode_channel_values([(10, 1284, 5100.0), (7, 1284, 13.0), (99, 1284, 1.0)])
        provider_socket.sendto(jd.encode_message(2, 0x1234, 8, later), addr)
        provider_socket.sendto(b"garbage", addr)
        blocks.append(src.read(0.5))
        src.read(0.05)
        after = time.monotonic()
    finally:
        src.close()
    assert all(b is not None for b in blocks)
    rows = [
        (b.t[i], {k: v[i] for k, v in b.columns.items()}) for b in blocks for i in range(len(b))
    ]
    assert len(rows) == 2
    (t0, r0), (t1, r1) = rows
    assert r0["rpm"] == 5000.0 and r0["power_hp"] == 87.5
    assert r1["rpm"] == 5100.0 and r1["lambda"] == pytest.approx(13.0 / 14.7)
    assert r1["afr"] == pytest.approx(13.0, rel=1e-6)
    assert before - 0.01 <= t0 < t1 <= after  # device ms placed on the monotonic clock
    assert t1 - t0 == pytest.approx(0.05, abs=0.015)  # spacing from the device clock
    assert src.unknown_values == 1 and src.bad_datagrams == 1
    assert "rpm" in src.status.message


def test_goes_stale_without_values():
    src = create_source("jetdrive:127.0.0.1:0?stale=0.1")
    src.open()
    try:
        time.sleep(0.15)
        assert src.read(0.05) is None
        assert src.status.state == SourceState.STALE
        assert "Power Core" in src.status.message
    finally:
        src.close()


def test_port_in_use_and_bad_address_are_one_line():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))  # no SO_REUSEADDR: our bind must fail
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(SourceError, match="in use"):
            create_source(f"jetdrive:127.0.0.1:{port}").open()
    finally:
        blocker.close()
    with pytest.raises(SourceError, match="not an IP address"):
        create_source("jetdrive:dyno.local:22344")
    with pytest.raises(SourceError, match="units="):
        create_source("jetdrive:127.0.0.1:0?units=furlongs")
