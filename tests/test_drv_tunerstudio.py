"""ts: source over a pty acting as a rusEFI (CRC envelope, 'S'/'O', chunked) and an MS2
(plain commands, big endian). Fixture inis: tests/data/tsini/ (see their headers)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from core.frames import Block
from core.source import SourceError
from drivers.registry import create_source
from drivers.tunerstudio import ReplyParser, frame
from tests.serial_fakes import PtyResponder
from tests.test_tsini import ms2_block
from tests.ts_fakes import FakeTsEcu

DATA = Path(__file__).parent / "data" / "tsini"
RUSEFI_SIG = "rusEFI 2022.05.01.all.000d0c44"


def rusefi_block() -> bytes:
    block = bytearray(472)
    struct.pack_into("<H", block, 4, 5200)
    struct.pack_into("<h", block, 12, 8800)
    struct.pack_into("<h", block, 20, 5000)
    struct.pack_into("<H", block, 30, 2700)  # 90 kPa
    struct.pack_into("<H", block, 34, 9100)  # lambda 0.91
    struct.pack_into("<H", block, 282, 13377)
    struct.pack_into("<I", block, 468, 1 << 7)
    return bytes(block)


def run(ecu: FakeTsEcu, uri: str, want: int = 4, **pty):
    dev = PtyResponder(ecu, split=ecu.split, **pty)
    src = create_source(uri.replace("PORT", dev.path))
    try:
        src.open()
        blocks: list[Block] = []
        deadline = time.monotonic() + 20.0  # a condition wait: generous for a loaded machine
        while len(blocks) < want and time.monotonic() < deadline:
            block = src.read(0.1)
            if block is not None:
                blocks.append(block)
        return src, blocks, dev.requests
    finally:
        src.close()
        dev.close()


@pytest.mark.parametrize("delivery", [{}, {"write_chunk": 1}, {"write_chunk": 33}])
def test_rusefi_in_blocking_factor_chunks(delivery):
    ecu = FakeTsEcu(RUSEFI_SIG, rusefi_block(), query=b"S", realtime=b"O", sig_nul=True)
    src, blocks, requests = run(ecu, f"ts:PORT?ini={DATA / 'rusefi.ini'}", **delivery)
    assert src.protocol == "crc" and src.signature == RUSEFI_SIG and len(blocks) == 4
    assert requests[0] == frame(b"S")
    # 472 bytes in blockingFactor (256) pieces: 'O' 0/256, then 256/216
    assert requests[1] == frame(b"O" + struct.pack("<HH", 0, 256))
    assert requests[2] == frame(b"O" + struct.pack("<HH", 256, 216))
    values = {k: float(v[-1]) for k, v in blocks[-1].columns.items()}
    assert values["rpm"] == 5200 and values["clt_c"] == pytest.approx(88.0)
    assert values["tps_pct"] == pytest.approx(50.0) and values["map_kpa"] == pytest.approx(90.0)
    assert values["lambda"] == pytest.approx(0.91) and values["afr"] == pytest.approx(13.377)
    assert values["dfco"] == 1.0
    assert set(src.channels()) >= {"rpm", "map_kpa", "lambda", "afr", "clt_c"}


def test_ms2_plain_big_endian():
    ecu = FakeTsEcu("MS2Extra comms342h2", ms2_block(), crc=False, big_endian=True)
    src, blocks, requests = run(ecu, f"ts:PORT?ini={DATA / 'ms2extra.ini'}")
    assert src.protocol == "legacy" and len(blocks) == 4
    assert requests[0] == b"Q" and requests[1] == b"r\x00\x07\x00\x00\x00\x1e"
    values = {k: float(v[-1]) for k, v in blocks[-1].columns.items()}
    assert values["rpm"] == 4200 and values["clt_c"] == pytest.approx(90.0, abs=0.02)
    assert values["map_kpa"] == pytest.approx(85.2)


def test_signature_mismatch_is_refused_then_check_off_decodes():
    ecu = FakeTsEcu("rusEFI 2023.01.01.all.other", rusefi_block(), query=b"S", realtime=b"O")
    dev = PtyResponder(ecu, split=ecu.split)
    src = create_source(f"ts:{dev.path}?ini={DATA / 'rusefi.ini'}")
    try:
        with pytest.raises(SourceError) as info:
            src.open()
        msg = str(info.value)
        assert "answers 'rusEFI 2023.01.01.all.other'" in msg and RUSEFI_SIG in msg
        assert "?ini=FILE" in msg
    finally:
        src.close()
        dev.close()
    src, blocks, _ = run(ecu, f"ts:PORT?ini={DATA / 'rusefi.ini'}&check=off")
    assert blocks and float(blocks[-1].column("rpm")[-1]) == 5200


def test_ts_needs_an_ini_and_a_good_one(tmp_path):
    with pytest.raises(
        SourceError, match=r"give the ECU's TunerStudio ini, e\.g\. ts:/dev/ttyACM0\?ini="
    ):
        create_source("ts:/dev/ttyACM0")
    bad = tmp_path / "bad.ini"
    bad.write_text('[OutputChannels]\nochBlockSize = 8\nrpm = scalar, U15, 7, "rpm", 1, 0\n')
    with pytest.raises(SourceError) as info:
        create_source(f"ts:/dev/ttyACM0?ini={bad}")
    assert str(info.value) == (
        f"bad ini {bad}:3: rpm: unknown type 'U15' (U08 S08 U16 S16 U32 S32 F32)"
    )


def test_garbage_stream_never_frames():
    parser = ReplyParser(envelope=True)
    good = frame(b"\x00" + rusefi_block()[:200])
    for junk in (b"\x00\xff" * 50, bytes(range(256)), b"\x00\x05abc"):
        parser.feed(junk, 0.0)
        assert parser.payloads == []
    for i in range(len(good)):
        parser.feed(good[i : i + 1], 0.0)
    assert parser.payloads == [b"\x00" + rusefi_block()[:200]]


def test_whole_block_command_without_offsets(tmp_path):
    # Firmware whose ochGetCommand is the bare 'A' (Speeduino 201609, MS1): the reply is
    # the whole ochBlockSize block, read to its length, not to a quiet line.
    ini = tmp_path / "old.ini"
    ini.write_text(
        '[MegaTune]\n signature = "speeduino 201609"\n queryCommand = "Q"\n'
        '[OutputChannels]\n ochGetCommand = "A"\n ochBlockSize = 35\n'
        ' map = scalar, U08, 4, "kpa", 1.0, 0.0\n'
        ' rpm = scalar, U16, 14, "rpm", 1.0, 0.0\n'
        ' coolantRaw = scalar, U08, 7, "°C", 1.0, 0.0\n'
        " coolant = { coolantRaw - 40 }\n"
    )
    block = bytearray(35)
    block[4], block[7] = 70, 120
    block[14:16] = (2750).to_bytes(2, "little")
    ecu = FakeTsEcu("speeduino 201609", bytes(block), crc=False, realtime=b"A")
    src, blocks, requests = run(ecu, f"ts:PORT?ini={ini}")
    assert src.protocol == "legacy" and len(blocks) == 4
    assert requests[:2] == [b"Q", b"A"]
    values = {k: float(v[-1]) for k, v in blocks[-1].columns.items()}
    assert values == {"rpm": 2750.0, "map_kpa": 70.0, "clt_c": 80.0}


def read_blocks(src, want: int, read_timeout_s: float = 0.1) -> list[Block]:
    blocks: list[Block] = []
    deadline = time.monotonic() + 20.0
    while len(blocks) < want and time.monotonic() < deadline:
        block = src.read(read_timeout_s)
        if block is not None:
            blocks.append(block)
    return blocks


def test_plain_reply_arriving_late_is_not_spliced_into_the_next(tmp_path):
    """A plain reply has no frame: a second request while one is in flight would make the
    next 'block' the tail of the late reply plus the head of the new one (seen under load:
    rpm 10, map 0, clt -40 from a 2750 rpm / 70 kPa / 80 °C block)."""
    ini = tmp_path / "old.ini"
    ini.write_text(
        '[MegaTune]\n signature = "speeduino 201609"\n queryCommand = "Q"\n'
        '[OutputChannels]\n ochGetCommand = "A"\n ochBlockSize = 35\n'
        ' map = scalar, U08, 4, "kpa", 1.0, 0.0\n'
        ' rpm = scalar, U16, 14, "rpm", 1.0, 0.0\n'
        ' coolantRaw = scalar, U08, 7, "°C", 1.0, 0.0\n'
        " coolant = { coolantRaw - 40 }\n"
    )
    block = bytearray(35)
    block[4], block[7] = 70, 120
    block[14:16] = (2750).to_bytes(2, "little")
    ecu = FakeTsEcu("speeduino 201609", bytes(block), crc=False, realtime=b"A")
    # every reply stalls for 0.15 s after its first 20 bytes: later than the 0.1 s read,
    # well within the firmware's serial timeout
    dev = PtyResponder(ecu, split=ecu.split, write_chunk=20, write_gap_s=0.15)
    src = create_source(f"ts:{dev.path}?ini={ini}")
    try:
        src.open()
        blocks = read_blocks(src, want=8)
    finally:
        src.close()
        dev.close()
    assert len(blocks) == 8
    for got in blocks:
        for i in range(len(got)):
            row = {k: float(v[i]) for k, v in got.columns.items()}
            assert row == {"rpm": 2750.0, "map_kpa": 70.0, "clt_c": 80.0}


def test_late_chunk_reply_is_not_taken_for_the_next_chunk():
    """rusEFI reads its block in two 'O' requests (0/256, 256/216). A late reply to the
    first must not be taken as the answer to the second (it is long enough to pass), and
    the driver must not ask again while a reply is still coming."""
    # the two chunks differ: taken for the second, the first's bytes give afr/dfco 0
    ecu = FakeTsEcu(RUSEFI_SIG, rusefi_block(), query=b"S", realtime=b"O", sig_nul=True)
    # every reply stalls twice for 0.07 s (100-byte pieces): later than the 0.1 s read,
    # within the firmware's serial timeout
    dev = PtyResponder(ecu, split=ecu.split, write_chunk=100, write_gap_s=0.07)
    src = create_source(f"ts:{dev.path}?ini={DATA / 'rusefi.ini'}")
    try:
        src.open()
        blocks = read_blocks(src, want=8)
    finally:
        src.close()
        dev.close()
    assert len(blocks) == 8
    for got in blocks:
        for i in range(len(got)):
            row = {k: float(v[i]) for k, v in got.columns.items()}
            assert row["rpm"] == 5200 and row["afr"] == pytest.approx(13.377)
            assert row["map_kpa"] == pytest.approx(90.0) and row["dfco"] == 1.0
