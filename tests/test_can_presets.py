"""Shipped CAN presets (``dbc=NAME``): frames built by hand from each vendor's published
layout, sent on the python-can virtual bus and decoded through the real ``can:`` source.

Sources for the byte layouts the frames below are packed from (the DBCs in
drivers/dbc/ were written from the same pages, so each test packs the bytes itself
with ``struct`` rather than with the DBC):

* Haltech: support.haltech.com "Haltech ECU CAN Broadcast Protocol" table (0x360:
  RPM y=x, MAP kPa(abs) y=x/10, TPS y=x/10; 0x362 bytes 4-5 signed ignition angle
  y=x/10; 0x364 injection time y=x/1000 ms; 0x368 wideband 1 lambda y=x/1000) and
  "Haltech CAN Protocol Specification" (big-endian, 11-bit IDs); 0x372 battery and
  baro x/10 and 0x3E0 temperatures in 0.1 K from FTY Racing "Haltech CANBus V2
  Protocol Info".
* ECUMaster: "EMU CAN STREAM" help page (emuCANStream.html), Base ID 0x600,
  INTEL byte order: Base+0 RPM u16, TPS u8 0.5 %, IAT s8 C, MAP u16 kPa, INJPW
  u16 x 0.016129 ms; Base+2 CLT s16 at byte 6, BARO u8 at byte 2; Base+3 IGNANG s8
  0.5 deg, LAMBDA u8 x 0.0078125.
* Link: Link ECU help file "Device Specific CAN Information > Generic Dash" as
  transcribed in the public Adafruit Feather M4 CAN Express Link Generic Dash
  sketch: byte 0 frame index, three u16 LE per frame; frame 0 RPM, MAP; frame 1
  baro x0.1, TPS x0.1; frame 2 ECT x-50; frame 3 IAT x-50, battery x0.01, MAF
  x0.1 g/s; frame 4 ignition x0.1-100; frame 6 lambda 1 x0.001.
* AEM X-Series: PROTOCOLS.md §2b (AEM 30-0300 manual p.10-11): byte 6 bit 7 is
  "lambda data valid"; the free-air vector ``00 00 52 A8 8B 00 22 00`` is not valid.
"""

from __future__ import annotations

import itertools
import math
import struct
import time

import can
import pytest

from core.source import SourceError
from drivers.can_decode import DbcDecoder, builtin_presets
from drivers.can_source import CanSource
from drivers.registry import create_source
from tests.typed_sources import source_as

_chan = itertools.count()


def _run(preset: str, frames: list[can.Message]) -> tuple[list[dict[str, float]], CanSource]:
    """Send ``frames`` on a fresh virtual bus; rows the ``can:...?dbc=preset`` source decodes."""
    channel = f"preset{next(_chan)}"
    src = source_as(CanSource, f"can:virtual/{channel}?dbc={preset}", preset)
    tx = can.Bus(interface="virtual", channel=channel)
    rows: list[dict[str, float]] = []
    try:
        src.open()
        for msg in frames:
            tx.send(msg)
        deadline = time.monotonic() + 20.0
        while len(rows) < len(frames) and time.monotonic() < deadline:
            block = src.read(0.1)
            if block is not None:
                for i in range(len(block)):
                    rows.append({k: float(v[i]) for k, v in block.columns.items()})
    finally:
        tx.shutdown()
        src.close()
    return rows, src


def _merge(rows: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in rows:
        out.update({k: v for k, v in row.items() if not math.isnan(v)})
    return out


def _std(frame_id: int, data: bytes) -> can.Message:
    return can.Message(arbitration_id=frame_id, is_extended_id=False, data=data)


def test_presets_are_shipped_and_named_in_the_error():
    assert {"aem_xseries", "haltech", "ecumaster_emu", "link_generic_dash"} <= set(
        builtin_presets()
    )
    with pytest.raises(SourceError, match="haltech"):
        create_source("can:virtual/x?dbc=haltec")


def test_haltech_broadcast_v2_frames():
    frames = [
        _std(0x360, struct.pack(">HHHH", 6500, 1013, 853, 2013)),  # 6500 rpm, 101.3 kPa, 85.3 %
        _std(0x362, struct.pack(">HHhH", 402, 0, -55, 0)),  # ignition -5.5 deg
        _std(0x364, struct.pack(">HHHH", 4250, 0, 0, 0)),  # 4.25 ms
        _std(0x368, struct.pack(">HHHH", 882, 1000, 0, 0)),  # lambda 0.882
        _std(0x372, struct.pack(">HHHH", 138, 0, 0, 1008)),  # 13.8 V, baro 100.8 kPa
        _std(0x3E0, struct.pack(">HHHH", 3632, 3032, 0, 0)),  # 363.2 K, 303.2 K
    ]
    rows, src = _run("haltech", frames)
    got = _merge(rows)
    assert got["rpm"] == 6500 and got["map_kpa"] == pytest.approx(101.3)
    assert got["tps_pct"] == pytest.approx(85.3)
    assert got["spark_deg"] == pytest.approx(-5.5)
    assert got["pw_ms"] == pytest.approx(4.25)
    assert got["lambda"] == pytest.approx(0.882) and got["afr"] == pytest.approx(0.882 * 14.7)
    assert got["batt_v"] == pytest.approx(13.8) and got["baro_kpa"] == pytest.approx(100.8)
    assert got["clt_c"] == pytest.approx(90.05) and got["iat_c"] == pytest.approx(30.05)
    assert src.frames_decoded == len(frames)
    assert "lambda2" not in got and "tps_pct" in src.channels()


def test_ecumaster_emu_black_can_stream():
    frames = [
        _std(0x600, struct.pack("<HBbHH", 5200, 171, 28, 182, 310)),  # TPS 85.5 %, PW 5.0 ms
        _std(0x602, struct.pack("<HBBBBh", 0, 99, 0, 0, 0, -12)),  # baro 99, CLT -12 C
        _std(0x603, struct.pack("<bBBBHH", 41, 60, 116, 200, 712, 0)),  # 20.5 deg, λ 0.90625
    ]
    got = _merge(_run("ecumaster_emu", frames)[0])
    assert got["rpm"] == 5200 and got["tps_pct"] == pytest.approx(85.5)
    assert got["iat_c"] == 28 and got["map_kpa"] == 182
    assert got["pw_ms"] == pytest.approx(310 * 0.016129)
    assert got["baro_kpa"] == 99 and got["clt_c"] == -12
    assert got["spark_deg"] == pytest.approx(20.5)
    assert got["lambda"] == pytest.approx(116 * 0.0078125) and got["egt_c"] == 712


def _link(index: int, a: int, b: int, c: int) -> can.Message:
    return _std(1000, struct.pack("<BBHHH", index, 0, a, b, c))


def test_link_generic_dash_compound_frames():
    frames = [
        _link(0, 4500, 87, 87 + 100 - 101),  # rpm 4500, MAP 87 kPa
        _link(1, 1012, 623, 350),  # baro 101.2, TPS 62.3 %
        _link(2, 0, 3100, 139),  # PW 3.1 ms, ECT 89 C
        _link(3, 75, 1391, 623),  # IAT 25 C, 13.91 V, MAF 62.3 g/s
        _link(4, 3, 0, 1285),  # gear 3, ignition 28.5 deg
        _link(6, 0, 871, 0),  # lambda 1 0.871
        _link(9, 0, 0, 0),  # wheel speeds: decoded, none are dynoai channels
    ]
    rows, src = _run("link_generic_dash", frames)
    got = _merge(rows)
    assert got["rpm"] == 4500 and got["map_kpa"] == 87
    assert got["baro_kpa"] == pytest.approx(101.2) and got["tps_pct"] == pytest.approx(62.3)
    assert got["pw_ms"] == pytest.approx(3.1) and got["clt_c"] == 89
    assert got["iat_c"] == 25 and got["batt_v"] == pytest.approx(13.91)
    assert got["maf_gs"] == pytest.approx(62.3) and got["gear"] == 3
    assert got["spark_deg"] == pytest.approx(28.5) and got["lambda"] == pytest.approx(0.871)
    assert src.dbc is not None and src.dbc.decode_errors == 0


def test_aem_dbc_gates_free_air_and_warm_up_frames():
    frames = [
        can.Message(arbitration_id=0x180, is_extended_id=True, data=bytes.fromhex(hexdata))
        for hexdata in (
            "000052A88B002200",  # free-air cal in use, not valid: was lambda 0.0
            "0FA0000089000000",  # warming up: λ field 0.4000 but valid bit clear
            "271000008C008200",  # valid: λ 1.0000
            "271000008C008240",  # sensor fault with the valid bit set
        )
    ]
    rows, src = _run("aem_xseries", frames)
    assert len(rows) == 4
    assert math.isnan(rows[0]["lambda"]) and math.isnan(rows[0]["afr"])
    assert rows[0]["o2_pct"] == pytest.approx(21.16)  # the rest of the frame is still data
    assert math.isnan(rows[1]["lambda"])
    assert rows[2]["lambda"] == pytest.approx(1.0)
    assert math.isnan(rows[3]["lambda"])
    assert not any(r["lambda"] == 0.0 for r in rows)
    assert src.dbc is not None and src.dbc.gated_values == 3
    assert "SensorFault=1" in src.status.message


def test_validity_gate_must_name_a_signal_of_its_frame(tmp_path):
    bad = tmp_path / "bad.dbc"
    text = (
        'VERSION ""\nNS_ :\nBS_:\nBU_: X\n'
        'BO_ 256 F: 8 X\n SG_ Lambda : 7|16@0+ (0.001,0) [0|65] "lambda" Vector__XXX\n'
        'BA_DEF_ SG_  "DynoValidIf" STRING ;\nBA_DEF_DEF_  "DynoValidIf" "";\n'
        'BA_ "DynoValidIf" SG_ 256 Lambda "Valid=1";\n'
    )
    bad.write_text(text)
    with pytest.raises(SourceError, match="Valid=1"):
        DbcDecoder.from_file(bad)


def test_every_shipped_preset_is_named_where_users_look():
    from drivers.registry import BACKENDS

    description = BACKENDS["can"][1]
    assert all(name in description for name in builtin_presets())


def test_base_id_moves_a_preset_whose_ids_the_device_lets_you_set():
    # EMU CAN STREAM: "BASE ID (can be user defined)"; Link: the Generic Dash ID is the
    # CAN channel's ID in PCLink. Same frames as above, at other IDs.
    channel = f"preset{next(_chan)}"
    src = source_as(CanSource, f"can:virtual/{channel}?dbc=ecumaster_emu&base_id=0x700")
    tx = can.Bus(interface="virtual", channel=channel)
    try:
        src.open()
        tx.send(_std(0x600, struct.pack("<HBbHH", 1111, 0, 0, 0, 0)))  # old base: ignored
        tx.send(_std(0x700, struct.pack("<HBbHH", 5200, 171, 28, 182, 310)))
        rows: list[dict[str, float]] = []
        deadline = time.monotonic() + 20.0
        while not rows and time.monotonic() < deadline:
            block = src.read(0.1)
            if block is not None:
                rows = [
                    {k: float(v[i]) for k, v in block.columns.items()} for i in range(len(block))
                ]
    finally:
        tx.shutdown()
        src.close()
    assert [r["rpm"] for r in rows] == [5200.0] and src.frames_ignored == 1
    link = DbcDecoder.from_file("link_generic_dash", base_id=0x5F0)
    decoded = link.decode(0x5F0, False, struct.pack("<BBHHH", 0, 0, 4500, 87, 0))
    assert decoded is not None and decoded["rpm"] == 4500
    assert link.decode(1000, False, struct.pack("<BBHHH", 0, 0, 4500, 87, 0)) is None
    with pytest.raises(SourceError, match="DynoBaseId"):
        DbcDecoder.from_file("haltech", base_id=0x400)  # Haltech's IDs are fixed
    with pytest.raises(SourceError, match="11-bit range"):
        DbcDecoder.from_file("ecumaster_emu", base_id=0x7FE)


@pytest.mark.parametrize("preset", ["haltech", "ecumaster_emu", "link_generic_dash"])
def test_preset_stream_fuses_rpm_map_and_lambda_from_their_own_frames(preset):
    """End to end through the engine's one path (core.pipeline.Pipeline): every preset
    carries RPM/MAP and lambda in different frames. With one block per drain and NaN in
    the rows of the other frames, fusion (which holds the last sample by time) saw the
    lambda as NaN at every RPM row: every sample was rejected as ``stale_channel``."""
    from core.pipeline import Pipeline
    from core.vehicle import VehicleConfig

    streams = {
        "haltech": [
            _std(0x360, struct.pack(">HHHH", 3000, 800, 500, 2013)),
            _std(0x368, struct.pack(">HHHH", 950, 1000, 0, 0)),
            _std(0x3E0, struct.pack(">HHHH", 3532, 3032, 0, 0)),  # CLT 80 C: warm
        ],
        "ecumaster_emu": [
            _std(0x600, struct.pack("<HBbHH", 3000, 100, 28, 80, 310)),
            _std(0x602, struct.pack("<HBBBBh", 0, 99, 0, 0, 0, 80)),
            _std(0x603, struct.pack("<bBBBHH", 41, 60, 122, 200, 712, 0)),
        ],
        "link_generic_dash": [
            _link(0, 3000, 80, 80 + 100 - 101),
            _link(2, 0, 3100, 130),  # ECT 80 C
            _link(6, 0, 950, 0),
        ],
    }[preset]
    channel = f"preset{next(_chan)}"
    src = create_source(f"can:virtual/{channel}?dbc={preset}", preset)
    tx = can.Bus(interface="virtual", channel=channel)
    pipeline = Pipeline(VehicleConfig(), [(preset, src.channels())])
    binned = 0
    try:
        src.open()
        deadline = time.monotonic() + 20.0
        while binned < 30 and time.monotonic() < deadline:
            for msg in streams:
                tx.send(msg)
            time.sleep(0.01)
            while (block := src.read(0.0)) is not None:
                pipeline.push(block)
            binned = int(pipeline.grid.hits.sum())
    finally:
        tx.shutdown()
        src.close()
    assert binned >= 30, pipeline.rejects()
    assert pipeline.rejects().get("stale_channel", 0) <= 3  # at most the first rows
