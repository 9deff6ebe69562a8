"""Fuzz the CAN-side parsers: AEM frame, DBC path, ISO-TP reassembly + Mode 01 split, JetDrive.

Random and mutated inputs must never raise out of a parser, and a valid input
after garbage must still decode to the right values.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import isotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import jetdrive_protocol as jd
from drivers import obd_pids
from drivers.can_decode import DbcDecoder, decode_aem_xseries
from drivers.obd_can import isotp_params

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEMO_DBC = Path(__file__).parent / "data" / "can_demo_ecu.dbc"
DECODER = DbcDecoder.from_file(DEMO_DBC)
DBC_IDS = [
    (0x360, False),
    (0x361, False),
    (0x362, False),
    (0x368, False),
    (0x369, False),
    (0x370, False),
    (0x18FF5234, True),
]
frames = st.binary(min_size=0, max_size=16)


@FAST
@given(data=frames)
def test_aem_decoder_total(data):
    r = decode_aem_xseries(data)
    if len(data) != 8:
        assert r is None
    else:
        assert r is not None
        assert math.isnan(r.lambda_) or 0.0 <= r.lambda_ <= 6.5535
        assert (r.reason == "") == (not math.isnan(r.lambda_))
    good = decode_aem_xseries(bytes.fromhex("271000008C008200"))
    assert good is not None and good.lambda_ == 1.0


@FAST
@given(
    frame_id=st.sampled_from(DBC_IDS) | st.tuples(st.integers(0, 0x1FFFFFFF), st.booleans()),
    data=frames,
)
def test_dbc_decoder_total(frame_id, data):
    out = DECODER.decode(frame_id[0], frame_id[1], data)
    assert out is None or all(isinstance(v, float) for v in out.values())
    good = DECODER.decode(0x360, False, struct.pack(">HHHH", 3000, 950, 500, 0))
    assert good is not None and good["rpm"] == 3000 and good["map_kpa"] == pytest.approx(95.0)


def _isotp_receiver(frames_in: list[bytes]) -> tuple[isotp.TransportLayerLogic, list[bytes]]:
    queue = [isotp.CanMessage(arbitration_id=0x7E8, data=f, dlc=len(f)) for f in frames_in]
    sent: list[bytes] = []

    def rxfn(timeout: float) -> isotp.CanMessage | None:
        return queue.pop(0) if queue else None

    def txfn(msg: isotp.CanMessage) -> None:
        sent.append(bytes(msg.data))

    layer = isotp.TransportLayerLogic(
        rxfn,
        txfn,
        isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E0, rxid=0x7E8),
        error_handler=lambda exc: None,
        params=isotp_params(),
    )
    for _ in range(len(frames_in) + 2):
        layer.process()
    return layer, sent


@FAST
@given(garbage=st.lists(st.binary(min_size=1, max_size=8), max_size=8))
def test_isotp_reassembly_and_mode01_split_survive_garbage(garbage):
    # a valid multi-frame reply (PROTOCOLS.md 4c) after random frames
    valid = [bytes.fromhex("1008410C1AF80B63"), bytes.fromhex("2111400000000000")]
    layer, sent = _isotp_receiver([*garbage, bytes.fromhex("0100000000000000"), *valid])
    payloads = []
    while layer.available():
        payload = layer.recv()
        assert payload is not None  # available() said a frame is queued
        payloads.append(bytes(payload))
    for p in payloads:
        obd_pids.split_mode01(p)  # never raises
    assert payloads and payloads[-1] == bytes.fromhex("410C1AF80B631140")
    assert obd_pids.decode_mode01(payloads[-1]) == pytest.approx(
        {"rpm": 1726.0, "map_kpa": 99.0, "tps_pct": 0x40 * 100 / 255}
    )
    assert any(f[0] == 0x30 for f in sent)  # flow control was sent


@FAST
@given(payload=st.binary(max_size=64))
def test_mode01_split_total(payload):
    parts = obd_pids.split_mode01(payload)
    for pid, data in parts.items():
        assert len(data) == obd_pids.PID_LENGTHS[pid]


VECTOR = bytes.fromhex(
    "02 14 00 34 12 07 FF FF 0A 00 D2 04 00 00 00 40 9C 45 04 00 D2 04 00 00 00 00 AF 42"
)


@FAST
@given(
    data=st.binary(max_size=200),
    flips=st.lists(st.tuples(st.integers(0, 27), st.integers(0, 255)), max_size=4),
)
def test_jetdrive_parser_total(data, flips):
    mutated = bytearray(VECTOR)
    for pos, value in flips:
        mutated[pos] = value
    for blob in (data, bytes(mutated), jd.encode_message(1, 1, 1, data)):
        try:
            msg = jd.parse_message(blob)
            if msg.key == jd.KEY_CHANNEL_INFO:
                jd.parse_channel_info(msg)
            elif msg.key == jd.KEY_CHANNEL_VALUES:
                jd.parse_channel_values(msg)
        except jd.JetDriveError:
            pass  # the one error type the parser may raise: counted by the source
    assert jd.parse_channel_values(jd.parse_message(VECTOR))[0] == (10, 1234, 5000.0)


@FAST
@given(datagrams=st.lists(st.binary(max_size=120), max_size=10))
def test_jetdrive_source_handler_never_raises(datagrams):
    from drivers.jetdrive import JetDriveSource
    from tests.typed_sources import source_as

    src = source_as(JetDriveSource, "jetdrive:127.0.0.1:0")
    info = jd.encode_channel_info("PC", [jd.ChannelInfo(10, 0, "Engine RPM", 8)])
    rows: dict = {}
    times: dict = {}
    for blob in [*datagrams, jd.encode_message(1, 0x1234, 1, info), VECTOR]:
        src.handle_datagram(blob, 100.0, rows, times)
    assert rows[(0x1234, 1234)]["rpm"] == 5000.0
