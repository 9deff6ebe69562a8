"""CAN source: AEM X-Series vectors, DBC decoding with unit conversion, errors, reconnect, fusion."""

from __future__ import annotations

import math
import struct
import time
from pathlib import Path

import can
import cantools
import numpy as np
import pytest

from core.frames import Block
from core.fusion import Fuser
from core.source import SourceError, SourceState
from drivers.aem import AemSerialSource
from drivers.can_bus import Backoff, MonotonicStamper
from drivers.can_decode import BUILTIN_DBC_DIR, DbcDecoder, decode_aem_xseries
from drivers.can_source import CanSource
from drivers.registry import create_source, parse_uri
from tests.serial_fakes import PtyStreamer
from tests.typed_sources import source_as

DEMO_DBC = Path(__file__).parent / "data" / "can_demo_ecu.dbc"

AEM_VECTORS = [
    # data, lambda, O2 %, volts, valid, free-air, lsu49
    ("271000008C008200", 1.0, 0.0, 14.0, True, False, True),
    ("2134FF388C008200", 0.85, -0.2, 14.0, True, False, True),
    ("000052A88B002200", math.nan, 21.16, 13.9, False, True, True),
]


@pytest.mark.parametrize(
    ("hexdata", "lam", "o2", "volts", "valid", "free_air", "lsu49"), AEM_VECTORS
)
def test_aem_vectors_decode_byte_exact(hexdata, lam, o2, volts, valid, free_air, lsu49):
    r = decode_aem_xseries(bytes.fromhex(hexdata))
    assert r is not None
    if math.isnan(lam):
        assert math.isnan(r.lambda_)
    else:
        assert r.lambda_ == pytest.approx(lam, abs=1e-9)
        assert r.channels()["afr"] == pytest.approx(lam * 14.7)
    assert r.o2_pct == pytest.approx(o2, abs=1e-9)
    assert r.batt_v == pytest.approx(volts)
    assert (r.valid, r.free_air_cal, r.lsu49, r.sensor_fault) == (valid, free_air, lsu49, False)
    assert ("free-air" in r.reason) == free_air
    assert (r.reason == "") == valid


def test_aem_sensor_fault_blanks_lambda_and_says_why():
    r = decode_aem_xseries(bytes.fromhex("271000008C008240"))
    assert r is not None and r.valid and r.sensor_fault
    assert math.isnan(r.lambda_)
    assert "sensor fault" in r.reason
    assert decode_aem_xseries(b"\x27\x10\x00") is None


def test_aem_hand_decoder_agrees_with_shipped_dbc():
    db = cantools.database.load_file(str(BUILTIN_DBC_DIR / "aem_xseries.dbc"))
    assert isinstance(db, cantools.database.can.Database)
    for hexdata, *_ in AEM_VECTORS:
        data = bytes.fromhex(hexdata)
        ref = db.decode_message(0x180, data, force_extended_id=True)
        assert isinstance(ref, dict)  # a plain frame decodes to signals, not a container
        mine = decode_aem_xseries(data)
        assert mine is not None
        assert mine.o2_pct == pytest.approx(ref["Oxygen"])
        assert mine.batt_v == pytest.approx(ref["SystemVolts"])
        assert mine.valid == bool(ref["LambdaValid"])
        assert mine.free_air_cal == bool(ref["FreeAirCal"])
        if mine.valid:
            assert mine.lambda_ == pytest.approx(ref["Lambda"])


def _engine1(rpm: int, map_kpa: float, tps: float) -> can.Message:
    data = struct.pack(">HHHH", rpm, round(map_kpa * 10), round(tps * 10), 4200)
    return can.Message(arbitration_id=0x360, is_extended_id=False, data=data)


def test_dbc_decoder_converts_units_to_canonical():
    dec = DbcDecoder.from_file(DEMO_DBC)
    # degF -> °C, degC stays, K -> °C; big-endian signed
    temps = dec.decode(0x362, False, struct.pack(">hhH", 770, 905, 1073) + b"\0\0")
    assert temps == pytest.approx({"iat_c": 25.0, "clt_c": 90.5, "egt_c": 799.85})
    # AFR unit -> lambda (canonical) and afr re-derived
    wb = dec.decode(0x368, False, struct.pack(">HH", 1323, 1250) + b"\0" * 4)
    assert wb is not None
    assert wb["lambda"] == pytest.approx(13.23 / 14.7)
    assert wb["afr"] == pytest.approx(13.23)
    assert wb["lambda_target"] == pytest.approx(12.5 / 14.7)
    # mph -> km/h, little-endian
    veh = dec.decode(0x370, False, struct.pack("<HHB", 600, 13800, 3) + b"\0" * 3)
    assert veh == pytest.approx({"vehicle_speed_kph": 96.56064, "batt_v": 13.8, "gear": 3.0})
    assert dec.decode(0x7FF, False, bytes(8)) is None  # unknown ID
    assert any("OilPress" in u for u in dec.unmapped)


def test_explicit_map_converts_psi_and_overrides_aliases():
    dec = DbcDecoder.from_file(DEMO_DBC, {"MAPpsi": "map_kpa", "ENGINE1.MAP": "baro_kpa"})
    out = dec.decode(0x361, False, struct.pack("<HHH", 1450, 1470, 0) + b"\0\0")
    assert out is not None and out["map_kpa"] == pytest.approx(14.5 * 6.894757293168361)
    assert dec.mapped["ENGINE1.MAP"] == "baro_kpa"


def test_short_frame_is_counted_not_raised():
    dec = DbcDecoder.from_file(DEMO_DBC)
    out = dec.decode(0x360, False, b"\x0b")
    assert out in (None, {})  # truncated: nothing decodable, no exception


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("can:nosuchbus/x?decoder=aem", "no interface 'nosuchbus'"),
        ("can:virtual?decoder=aem", "INTERFACE/CHANNEL"),
        ("can:virtual/x", "dbc=FILE"),
        ("can:virtual/x?dbc=/no/such.dbc", "not found"),
        ("can:virtual/x?decoder=aem&stoich=abc", "not a number"),
        ("can:virtual/x?decoder=magic", "decoder='magic'"),
        (f"can:virtual/x?dbc={DEMO_DBC}&map=RPM:revs", "'revs' is not a channel"),
        (f"can:virtual/x?dbc={DEMO_DBC}&map=Nope:rpm", "does not have: Nope"),
        (f"can:virtual/x?dbc={DEMO_DBC}&map=OilPress:rpm", "'psi' cannot be converted to rpm"),
        ("can:slcan/dev/ttyNOPE0?decoder=aem&bitrate=500000", "no such device"),
    ],
)
def test_bad_uris_give_one_clear_line(uri, needle):
    with pytest.raises(SourceError) as err:
        src = create_source(uri)
        src.open()
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("uri", ["can:nosuchbus/x?decoder=aem", "obd-can:nosuchbus/x"])
def test_unknown_interface_is_a_bad_uri_before_open(uri):
    """A misspelt interface is bad input (exit 2), found when the URI is read, not a device failure."""
    with pytest.raises(
        SourceError, match="python-can has no interface 'nosuchbus'; known: .*slcan"
    ):
        create_source(uri)


def test_malformed_dbc_is_one_line(tmp_path):
    bad = tmp_path / "bad.dbc"
    bad.write_text('VERSION ""\nBO_ 864 X: 8 ECU\n SG_ RPM : 7|16@0+ (1,0 [0|1] "rpm" X\n')
    with pytest.raises(SourceError, match="not a valid DBC"):
        create_source(f"can:virtual/x?dbc={bad}")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        # cantools chooses the format by the name and raised a bare ValueError for '.ini'
        ("tune.ini", b"[OutputChannels]\nrpm = scalar\n", "syntax error at line 2, column 5"),
        # binary: cantools quotes raw bytes (newlines, control characters) in its message
        ("noise.dbc", bytes(range(256)) * 4, "syntax error at line 1, column 1"),
        ("empty.dbc", b"", "not a valid DBC"),
    ],
)
def test_dbc_that_is_not_a_dbc_is_one_printable_line(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        create_source(f"can:virtual/x?dbc={path}")
    text = str(err.value)
    assert needle in text and str(path) in text
    assert text.isprintable()


def test_dbc_under_another_name_is_read_as_a_dbc(tmp_path):
    from drivers.can_decode import BUILTIN_DBC_DIR

    renamed = tmp_path / "haltech.txt"
    renamed.write_bytes((BUILTIN_DBC_DIR / "haltech.dbc").read_bytes())
    from_txt = source_as(CanSource, f"can:virtual/x?dbc={renamed}")
    preset = source_as(CanSource, "can:virtual/x?dbc=haltech")
    assert from_txt.dbc is not None and preset.dbc is not None
    assert from_txt.dbc.mapped and from_txt.dbc.mapped == preset.dbc.mapped


def _read_until(src, n_rows: int, timeout_s: float = 20.0):
    blocks: list[Block] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(b) for b in blocks) < n_rows and time.monotonic() < deadline:
        b = src.read(0.1)
        if b is not None:
            blocks.append(b)
    return blocks


def test_source_decodes_virtual_bus_on_monotonic_clock():
    src = source_as(CanSource, f"can:virtual/t1?dbc={DEMO_DBC}&decoder=aem", "ecu")
    tx = can.Bus(interface="virtual", channel="t1")
    try:
        src.open()
        assert set(src.channels()) >= {"rpm", "map_kpa", "lambda", "afr", "iat_c", "o2_pct"}
        before = time.monotonic()
        tx.send(_engine1(3500, 95.0, 80.0))
        tx.send(can.Message(arbitration_id=0x555, data=bytes(8)))  # not in the DBC: skipped
        tx.send(
            can.Message(
                arbitration_id=0x180, is_extended_id=True, data=bytes.fromhex("2134FF388C008200")
            )
        )
        blocks = _read_until(src, 2)
        after = time.monotonic()
    finally:
        tx.shutdown()
        src.close()
    rows = sum(len(b) for b in blocks)
    assert rows == 2 and src.frames_ignored == 1
    # one block per kind of frame: no NaN filler for channels the frame does not carry
    engine, wideband = blocks
    assert engine.column("rpm")[0] == 3500 and "lambda" not in engine.columns
    assert engine.column("map_kpa")[0] == pytest.approx(95.0)
    assert wideband.column("lambda")[0] == pytest.approx(0.85) and "rpm" not in wideband.columns
    t0, t1 = engine.t[0], wideband.t[0]
    assert before - 0.01 <= t0 <= t1 <= after  # epoch stamps moved onto monotonic


def test_stamper_places_each_clock_and_never_goes_backwards():
    st = MonotonicStamper()
    mono, wall_minus_mono = 1000.0, 1.7e9
    assert st.stamp(999.5, mono, wall_minus_mono) == 999.5 and st.kind == "monotonic"
    assert st.stamp(1.7e9 + 999.8, mono, wall_minus_mono) == pytest.approx(999.8)
    assert st.kind == "epoch"
    assert st.stamp(12.0, mono, wall_minus_mono) == mono and st.kind == "receipt"
    assert st.stamp(990.0, mono, wall_minus_mono) == mono  # older stamp: held, not backwards
    assert st.stamp(1005.0, 1001.0, wall_minus_mono) == 1001.0  # future: clamped to receipt


def test_backoff_doubles_to_five_seconds_and_resets():
    b = Backoff()
    assert [b.failed(0.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    b.succeeded()
    assert b.failed(0.0) == 0.5


def test_vanished_bus_reconnects_with_events_and_data_resumes():
    src = source_as(CanSource, "can:virtual/t2?decoder=aem&stale=0.2")
    src.open()
    tx = can.Bus(interface="virtual", channel="t2")
    frame = can.Message(
        arbitration_id=0x180, is_extended_id=True, data=bytes.fromhex("271000008C008200")
    )
    try:
        tx.send(frame)
        assert _read_until(src, 1)
        assert src._bus is not None  # open
        src._bus.shutdown()  # the device vanishes under the driver
        assert src.read(0.1) is None
        assert src.status.state == SourceState.RECONNECTING
        deadline = time.monotonic() + 20.0
        while src.status.state != SourceState.CONNECTED and time.monotonic() < deadline:
            src.read(0.1)
        assert src.status.state == SourceState.CONNECTED
        tx.send(frame)
        blocks = _read_until(src, 1)
        assert blocks and blocks[0].column("lambda")[0] == pytest.approx(1.0)
        kinds = [e.kind for e in src.drain_events()]
        assert kinds == ["disconnect", "reconnect"]
        time.sleep(0.3)
        src.read(0.05)
        assert src.status.state == SourceState.STALE
    finally:
        tx.shutdown()
        src.close()


def test_bus_off_error_frame_triggers_reconnect():
    src = create_source("can:virtual/t3?decoder=aem")
    src.open()
    tx = can.Bus(interface="virtual", channel="t3")
    try:
        tx.send(can.Message(arbitration_id=0x40, is_error_frame=True, data=bytes(8)))
        src.read(0.2)
        assert src.status.state == SourceState.RECONNECTING
        assert "bus-off" in src.status.message
    finally:
        tx.shutdown()
        src.close()


def test_can_and_serial_sources_fuse_on_one_clock():
    """A DBC-decoded ECU on CAN and an AEM serial wideband give rows with both."""
    streamer = PtyStreamer(b"14.7\r\n", period_s=0.01)
    wb = AemSerialSource(parse_uri(f"aem:{streamer.path}?mode=afr"), "wb")
    ecu = create_source(f"can:virtual/t4?dbc={DEMO_DBC}", "ecu")
    tx = can.Bus(interface="virtual", channel="t4")
    fuser = Fuser(lambda_delay_s=0.0)
    rows: list[Block] = []

    def fused_with_both() -> int:
        if not rows:
            return 0
        rpm = np.concatenate([r.column("rpm") for r in rows])
        lam = np.concatenate([r.column("lambda") for r in rows])
        return int((~np.isnan(rpm) & ~np.isnan(lam)).sum())

    try:
        start = time.monotonic()
        wb.open()
        ecu.open()
        # until enough fused rows carry both, not for a fixed time: a loaded machine is slow
        deadline = start + 20.0
        while fused_with_both() <= 10 and time.monotonic() < deadline:
            tx.send(_engine1(4000, 90.0, 100.0))
            for src in (ecu, wb):
                block = src.read(0.02)
                if block is not None:
                    assert start - 0.05 <= block.t[0] <= time.monotonic()
                    out = fuser.push(block)
                    if out is not None:
                        rows.append(out)
    finally:
        tx.shutdown()
        ecu.close()
        wb.close()
        streamer.unplug()
    rpm = np.concatenate([r.column("rpm") for r in rows])
    lam = np.concatenate([r.column("lambda") for r in rows])
    both = ~np.isnan(rpm) & ~np.isnan(lam)
    assert both.sum() > 10
    assert np.allclose(rpm[both], 4000) and np.allclose(lam[both], 1.0)


# -- SocketCAN owns its bitrate ------------------------------------------------------------
# python-can's socketcan backend cannot set the bitrate (python-can docs, "SocketCAN":
# the interface is configured with 'ip link set can0 type can bitrate 500000').


def test_socketcan_never_claims_a_bitrate_it_cannot_set(monkeypatch):
    from drivers import can_bus

    spec = can_bus.parse_bus_spec(parse_uri("can:socketcan/can1?bitrate=500000&dbc=x"))
    assert "500000" not in spec.describe()
    unknown = can_bus.bitrate_note(spec, lambda channel: None)
    assert "not applied" in unknown
    assert "ip link set can1 type can bitrate 500000" in unknown
    other = can_bus.bitrate_note(spec, lambda channel: 250000)
    assert "can1 runs at 250000 bit/s, not 500000" in other and "ip link set can1" in other
    assert can_bus.bitrate_note(spec, lambda channel: 500000) == (
        "can1 runs at 500000 bit/s (set by the OS)"
    )
    slcan = can_bus.parse_bus_spec(parse_uri("can:slcan/dev/ttyACM0?bitrate=500000&dbc=x"))
    assert "at 500000 bit/s" in slcan.describe() and can_bus.bitrate_note(slcan) == ""
    seen: dict = {}

    def fake_bus(**kwargs):
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(can, "Bus", fake_bus)
    can_bus.open_bus(spec)
    assert "bitrate" not in seen and seen["channel"] == "can1"
    can_bus.open_bus(slcan)
    assert seen["bitrate"] == 500000


def test_socketcan_source_status_says_what_to_run(monkeypatch):
    from drivers import can_bus, can_source

    monkeypatch.setattr(can_source, "open_bus", lambda spec: can.Bus(interface="virtual"))
    monkeypatch.setattr(
        can_source, "bitrate_note", lambda spec: can_bus.bitrate_note(spec, lambda c: None)
    )
    src = create_source("can:socketcan/can0?bitrate=500000&dbc=haltech")
    src.open()
    try:
        assert "at 500000 bit/s" not in src.status.message
        assert "ip link set can0 type can bitrate 500000" in src.status.message
    finally:
        src.close()


def test_serial_can_adapter_path_outside_dev_keeps_its_root(tmp_path):
    """``obd-can:slcan/tmp/ttyCAN`` (a socat link made by hand): the channel is the rooted
    path, as for ``slcan/dev/ttyACM0``; it was 'tmp/ttyCAN' and 'no such device'."""
    from drivers import can_bus

    link = tmp_path / "ttyCAN"
    link.write_bytes(b"")
    spec = can_bus.parse_bus_spec(parse_uri(f"obd-can:slcan{link}?bitrate=500000"))
    assert spec.channel == str(link)
    assert can_bus.parse_bus_spec(parse_uri("can:slcan/dev/ttyACM0?dbc=x")).channel == (
        "/dev/ttyACM0"
    )
    assert can_bus.parse_bus_spec(parse_uri("can:virtual/tmp?dbc=x")).channel == "tmp"
