"""JetDrive: byte-exact vectors, channel mapping, and the source over 127.0.0.1 unicast only.

Layout and units from Dynojet's Apache-2.0 reference code (bgriggs/jetdrive-sharp,
"Copyright 2020 Dynojet Research Inc"): ``KLHDVMessage.cs`` (8-byte LE header),
``JetdriveProvider.cs`` (50-byte provider name + 34-byte channel blocks; 10-byte
value blocks), ``JetdriveClient.cs`` (blocks read while ``idx + 10 <= length``) and
``JDUnit.cs`` (Power kW, Torque N·m, Speed km/h, Temperature °C, Pressure kPa).
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from core.source import SourceError, SourceState
from drivers import jetdrive_protocol as jd
from drivers.jetdrive import JetDriveSource
from drivers.registry import create_source
from tests.typed_sources import source_as

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
        VALUES_VECTOR[:-1],  # the header says 20 bytes, 19 arrived
        jd.encode_message(1, 1, 1, b"x" * 49),  # shorter than the provider name
    ],
)
def test_malformed_datagrams_raise_jetdrive_error(bad):
    with pytest.raises(jd.JetDriveError):
        msg = jd.parse_message(bad)
        (jd.parse_channel_info if msg.key == 1 else jd.parse_channel_values)(msg)


# ChannelValues from host 0x0101, seq 2, to all hosts, t = 1000 ms (0x03E8), written
# from the published layout: ch0 Power 50.0 kW (f32 0x42480000), ch1 Torque 100.0 N·m
# (0x42C80000), ch2 Speed 100.0 km/h, ch3 Pressure 101.3 kPa (0x42CA999A).
METRIC_VALUES = bytes.fromhex(
    "02 28 00 01 01 02 FF FF"
    "00 00 E8 03 00 00 00 00 48 42"
    "01 00 E8 03 00 00 00 00 C8 42"
    "02 00 E8 03 00 00 00 00 C8 42"
    "03 00 E8 03 00 00 9A 99 CA 42"
)
METRIC_INFO = [
    jd.ChannelInfo(0, 0, "(DWRT CPU) Power", 4),
    jd.ChannelInfo(1, 0, "(DWRT CPU) Torque", 5),
    jd.ChannelInfo(2, 0, "(DWRT CPU) Speed", 2),
    jd.ChannelInfo(3, 0, "(DWRT ATMO) Pressure", 7),
    jd.ChannelInfo(4, 0, "Digital RPM 1", 8),
    jd.ChannelInfo(5, 0, "Digital RPM 2", 8),
    jd.ChannelInfo(6, 0, "(DWRT ATMO) Temperature 1", 6),
]


def _decode(units: str | None, values: bytes = METRIC_VALUES) -> dict[str, float]:
    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0" + (f"?units={units}" if units else ""))
    info = jd.encode_message(1, 0x0101, 1, jd.encode_channel_info("Power Core", METRIC_INFO))
    rows: dict = {}
    times: dict = {}
    src.handle_datagram(info, 10.0, rows, times)
    src.handle_datagram(values, 10.0, rows, times)
    assert len(rows) == 1
    return next(iter(rows.values()))


def test_default_units_are_dynojet_metric_50kw_100nm():
    row = _decode(None)
    assert row["power_hp"] == pytest.approx(67.05, abs=0.005)  # 50 kW / 0.7457 kW per hp
    assert row["power_hp"] == pytest.approx(50_000 / 745.699872)
    assert row["torque_nm"] == pytest.approx(100.0)
    assert row["drum_speed_kph"] == pytest.approx(100.0)
    assert row["baro_kpa"] == pytest.approx(101.3, abs=1e-4)


def test_imperial_override_reads_the_same_categories_as_imperial():
    row = _decode("imperial")
    assert row["power_hp"] == pytest.approx(50.0)
    assert row["torque_nm"] == pytest.approx(135.58179)
    assert row["drum_speed_kph"] == pytest.approx(160.9344)
    assert row["baro_kpa"] == pytest.approx(101.3 * 3.386388640341, rel=1e-6)


def test_digital_rpm_channels_are_mapped():
    assert jd.canonical_for(METRIC_INFO[4]) == ("rpm", 1.0, 0.0)
    assert jd.canonical_for(METRIC_INFO[5]) == ("rpm2", 1.0, 0.0)
    engine_rpm = jd.canonical_for(jd.ChannelInfo(9, 0, "(DWRT CPU) Engine RPM", 8))
    assert engine_rpm is not None and engine_rpm[0] == "rpm"
    body = jd.encode_channel_values([(4, 1000, 3500.0), (5, 1000, 1750.0), (6, 1000, 25.0)])
    row = _decode(None, jd.encode_message(2, 0x0101, 3, body))
    assert (row["rpm"], row["rpm2"]) == (3500.0, 1750.0)
    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0")
    src.handle_datagram(
        jd.encode_message(1, 0x0101, 1, jd.encode_channel_info("PC", METRIC_INFO)), 1.0, {}, {}
    )
    assert src.channels()["rpm2"] == "rpm"


def test_mapping_tables_and_first_channel_keeps_a_column():
    metric = {c.chan_id: jd.canonical_for(c) for c in CHANNELS}
    assert metric[10] == ("rpm", 1.0, 0.0)
    assert metric[4] == ("power_hp", pytest.approx(1 / 0.745699872), 0.0)
    assert metric[5] == ("torque_nm", 1.0, 0.0)
    lam = metric[7]
    assert lam is not None and lam[0] == "lambda" and lam[1] == pytest.approx(1 / 14.7)
    assert metric[8] == ("baro_kpa", 1.0, 0.0)
    assert metric[9] is None
    temp = jd.canonical_for(jd.ChannelInfo(1, 0, "Coolant", 6), units="imperial")
    assert temp is not None and 212 * temp[1] + temp[2] == pytest.approx(100.0)
    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0")
    both = [jd.ChannelInfo(3, 0, "Digital RPM 1", 8), jd.ChannelInfo(7, 0, "Engine RPM", 8)]
    src.handle_datagram(jd.encode_message(1, 9, 1, jd.encode_channel_info("PC", both)), 1.0, {}, {})
    assert src._map == {(9, 3): ("rpm", 1.0, 0.0)}


def test_trailing_partial_block_is_skipped_as_the_reference_does():
    values = METRIC_VALUES[8:] + b"\x07\x00\xe8\x03"  # 4 stray bytes after four blocks
    msg = jd.parse_message(jd.encode_message(2, 0x0101, 2, values))
    assert len(jd.parse_channel_values(msg)) == 4 and jd.partial_bytes(msg) == 4
    info = jd.encode_channel_info("PC", METRIC_INFO[:2]) + b"\x02\x00\x00Spe"
    provider = jd.parse_channel_info(jd.parse_message(jd.encode_message(1, 1, 1, info)))
    assert sorted(provider.channels) == [0, 1]
    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0")
    rows: dict = {}
    src.handle_datagram(jd.encode_message(1, 0x0101, 1, info), 1.0, rows, {})
    src.handle_datagram(jd.encode_message(2, 0x0101, 2, values), 1.0, rows, {})
    assert src.partial_blocks == 2 and src.bad_datagrams == 0
    assert next(iter(rows.values()))["torque_nm"] == pytest.approx(100.0)


def test_pages_add_up_foreign_dest_and_nan_values_ignored():
    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0?host=0x0042")
    rows: dict = {}
    times: dict = {}
    for page, chans in enumerate((METRIC_INFO[:3], METRIC_INFO[3:])):
        body = jd.encode_channel_info("Power Core", chans)
        src.handle_datagram(jd.encode_message(1, 0x0101, page, body), 1.0, rows, times)
    assert len(src.providers[0x0101].channels) == len(METRIC_INFO)
    to_other = jd.encode_message(2, 0x0101, 5, METRIC_VALUES[8:], dest=0x0777)
    from_us = jd.encode_message(2, 0x0042, 5, METRIC_VALUES[8:])
    nan = jd.encode_message(2, 0x0101, 6, jd.encode_channel_values([(0, 7, float("nan"))]))
    for blob in (to_other, from_us, nan):
        src.handle_datagram(blob, 1.0, rows, times)
    assert rows == {} and src.dropped_values == 1


@pytest.fixture
def provider_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    yield sock
    sock.close()


def test_source_asks_for_info_then_maps_values(provider_socket):
    peer = provider_socket.getsockname()
    src = source_as(
        JetDriveSource, f"jetdrive:127.0.0.1:0?peer=127.0.0.1:{peer[1]}&host=0x0042", "dyno"
    )
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
    got = [b for b in blocks if b is not None]
    rows = [(b.t[i], {k: v[i] for k, v in b.columns.items()}) for b in got for i in range(len(b))]
    assert len(rows) == 2
    (t0, r0), (t1, r1) = rows
    assert r0["rpm"] == 5000.0 and r0["power_hp"] == pytest.approx(87.5 / 0.745699872)  # kW
    assert r1["rpm"] == 5100.0 and r1["lambda"] == pytest.approx(13.0 / 14.7)
    assert r1["afr"] == pytest.approx(13.0, rel=1e-6)
    assert before - 0.01 <= t0 < t1 <= after  # device ms placed on the monotonic clock
    assert t1 - t0 == pytest.approx(0.05, abs=0.015)  # spacing from the device clock
    assert src.unknown_values == 1 and src.bad_datagrams == 1
    assert "rpm" in src.status.message


def test_goes_stale_without_values():
    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0?stale=0.1")
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


def test_two_providers_at_their_own_timestamps_fuse_rpm_and_lambda(provider_socket):
    """Power Core's drum provider (RPM), an engine module (MAP) and an AFR module, each
    another host with its own timestamps, over 127.0.0.1: their channels are never in one
    row. With one block per read, the RPM rows carried NaN for MAP, which fusion holds as
    "invalid": no sample was binned. Now one block per set of channels."""
    from core.pipeline import Pipeline
    from core.vehicle import VehicleConfig

    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0", "dyno")
    src.open()
    addr = ("127.0.0.1", src.bound_address[1])
    drum = [jd.ChannelInfo(0, 0, "Digital RPM 1", 8)]
    engine = [jd.ChannelInfo(0, 0, "MAP", 7)]
    afr = [jd.ChannelInfo(0, 0, "Air/Fuel Ratio 1", 11)]
    pipeline = Pipeline(VehicleConfig(), [("dyno", src.channels())])
    binned, ms = 0, 0
    try:
        providers = ((0x0101, "Power Core", drum), (0x0202, "AFR", afr), (0x0303, "ECU", engine))
        for host, name, chans in providers:
            info = jd.encode_channel_info(name, chans)
            provider_socket.sendto(jd.encode_message(jd.KEY_CHANNEL_INFO, host, 1, info), addr)
        deadline = time.monotonic() + 20.0
        while binned < 30 and time.monotonic() < deadline:
            ms += 10
            sends = (
                (0x0101, jd.encode_channel_values([(0, ms, 3000.0)])),
                (0x0202, jd.encode_channel_values([(0, ms + 3, 13.5)])),
                (0x0303, jd.encode_channel_values([(0, ms + 5, 80.0)])),
            )
            for host, values in sends:
                msg = jd.encode_message(jd.KEY_CHANNEL_VALUES, host, ms & 0xFF, values)
                provider_socket.sendto(msg, addr)
            time.sleep(0.01)
            # as the session reads: up to 0.1 s, every datagram that is there
            while (block := src.read(0.1)) is not None:
                assert not any(np.isnan(v).any() for v in block.columns.values())
                pipeline.push(block)
            binned = int(pipeline.grid.hits.sum())
    finally:
        src.close()
    assert binned >= 30, pipeline.rejects()
    assert pipeline.rejects().get("stale_channel", 0) <= 3  # at most the first rows


def test_atmosphere_module_temperature_and_humidity_feed_the_weather_correction():
    # PROTOCOLS §7: WinPEP shows the DWRT ATMO module as "(DWRT ATMO) Pressure",
    # "Humidity", "Temperature 1"; JDUnit 6 = Temperature, 16 = Percentage. Before, the
    # temperature and humidity were dropped live, so the sheet's SAE J1349 factor
    # assumed 25 °C dry air while the CSV import of the same run used them. The room's
    # temperature is its own channel: taken as IAT, a dyno listed first in --source
    # would own iat_c and hide the ECU's heat-soaked intake air.
    temp = jd.ChannelInfo(6, 0, "(DWRT ATMO) Temperature 1", 6)
    humidity = jd.ChannelInfo(9, 0, "(DWRT ATMO) Humidity", 16)
    assert jd.canonical_for(temp) == ("ambient_c", 1.0, 0.0)  # the room, not the ECU's IAT
    assert jd.canonical_for(humidity) == ("humidity_pct", 1.0, 0.0)
    fahrenheit = jd.canonical_for(temp, units="imperial")
    assert fahrenheit is not None and fahrenheit[0] == "ambient_c"
    assert 77.0 * fahrenheit[1] + fahrenheit[2] == pytest.approx(25.0)
    # a temperature channel of another module is not the air the engine breathes
    assert jd.canonical_for(jd.ChannelInfo(7, 0, "(DWRT CPU) Temperature 1", 6)) is None
