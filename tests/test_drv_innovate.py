"""Innovate MTS parser: byte vectors from PROTOCOLS.md §1, fed whole, bytewise and after garbage.

A device streams packet after packet, and the parser trusts a packet only once the next
one starts where it ends, so each vector is fed as such a stream (:func:`stream`).
"""

from __future__ import annotations

import math
import random
import re
import time

import pytest

from core.frames import Block
from core.source import SourceError, SourceState
from drivers.innovate import InnovateSource, MtsParser
from drivers.registry import create_source, parse_uri
from drivers.serial_base import NO_FRAME_HINT
from tests.serial_fakes import PtyStreamer, garbage_stream
from tests.typed_sources import source_as

LC1 = bytes.fromhex("B282431303 74".replace(" ", ""))
DLG1_O2 = bytes.fromhex("B284471301514713 0151".replace(" ", ""))
LC1_AUX = bytes.fromhex("B2874313036B00000000000000000000")
WARMING = bytes.fromhex("B28253130014")
LAMBDA_AUX511 = bytes.fromhex("B2834313037403 7F".replace(" ", ""))


def stream(packet: bytes, count: int = 3) -> bytes:
    """``count`` copies of ``packet`` back to back, as the device sends them."""
    return packet * count


def feed_all(parser: MtsParser, data: bytes) -> list[dict[str, float]]:
    return [v for _, v in parser.feed(data, 1.0)]


def feed_bytewise(parser: MtsParser, data: bytes) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    for b in data:
        out.extend(v for _, v in parser.feed(bytes([b]), 2.0))
    return out


@pytest.mark.parametrize("feeder", [feed_all, feed_bytewise])
def test_single_lc1_packet_is_lambda_1_000(feeder):
    rows = feeder(MtsParser(), stream(LC1))
    assert len(rows) == 3
    for row in rows:
        assert row["lambda"] == pytest.approx(1.000)
        assert row["afr"] == pytest.approx(14.70)


@pytest.mark.parametrize("feeder", [feed_all, feed_bytewise])
def test_lc1_with_five_aux_words(feeder):
    rows = feeder(MtsParser(), stream(LC1_AUX))
    assert len(rows) == 3 and rows[0] == rows[2]
    assert rows[0]["lambda"] == pytest.approx(0.991)
    assert rows[0]["afr"] == pytest.approx(14.5677, abs=1e-3)
    assert [rows[0][f"aux{i}_raw"] for i in range(5)] == [0.0] * 5


def test_aux_raw_511():
    rows = feed_all(MtsParser(), stream(LAMBDA_AUX511))
    assert len(rows) == 3
    assert rows[0]["lambda"] == pytest.approx(1.0)
    assert rows[0]["aux0_raw"] == 511.0


def test_real_dlg1_free_air_capture_is_status_not_data():
    parser = MtsParser()
    rows = feed_all(parser, stream(DLG1_O2))
    assert len(rows) == 3
    assert math.isnan(rows[0]["lambda"]) and math.isnan(rows[0]["lambda2"])
    assert math.isnan(rows[0]["afr"])
    assert rows[0]["o2_pct"] == pytest.approx(20.9)
    assert "O2 20.9 %" in parser.status_text
    assert "sensor 2" in parser.status_text


def test_warming_up_gives_nan_and_status_text():
    parser = MtsParser()
    rows = feed_all(parser, stream(WARMING, 2))
    assert len(rows) == 2 and math.isnan(rows[0]["lambda"])
    assert parser.status_text == "warming up 2.0 %"
    # A valid packet afterwards (in the same stream: decoded at once) clears the status.
    rows = feed_all(parser, LC1)
    assert rows[0]["lambda"] == pytest.approx(1.0) and parser.status_text == ""


@pytest.mark.parametrize(
    ("func", "text"),
    [(2, "free-air calibration"), (3, "needs free-air"), (5, "heater calibration"), (6, "error")],
)
def test_other_function_codes_are_status(func, text):
    hi = 0x42 | (func << 2) | 1
    packet = bytes([0xB2, 0x82, hi, 0x13, 0x00, 0x07])
    parser = MtsParser()
    rows = feed_all(parser, stream(packet))
    assert len(rows) == 3 and math.isnan(rows[0]["lambda"])
    assert text in parser.status_text


def test_two_devices_in_chain_number_lambda_channels():
    word = bytes.fromhex("43130374")  # λ 1.000
    rich = bytes([0x43, 0x13, 0x01, 0x5E])  # L = 0x01<<7 | 0x5E = 222 -> λ 0.722
    rows = feed_all(MtsParser(), stream(bytes([0xB2, 0x84]) + rich + word))
    assert rows[0]["lambda"] == pytest.approx(0.722)
    assert rows[0]["lambda2"] == pytest.approx(1.000)
    assert rows[0]["afr2"] == pytest.approx(14.7)


@pytest.mark.parametrize("garbage", [b"\x00\x13\x55", b"\xff\xfe\x12", b"\xb2\x82\x43", b"\xb2"])
def test_resync_after_garbage(garbage):
    rows = feed_all(MtsParser(), garbage + LC1 + LC1)
    assert len(rows) >= 2
    assert all(r["lambda"] == pytest.approx(1.0) for r in rows[-2:])


def test_truncated_packet_is_dropped_and_next_one_decoded():
    rows = feed_all(MtsParser(), LC1[:4] + stream(LC1, 2))
    assert len(rows) == 2 and rows[0]["lambda"] == pytest.approx(1.0)


def test_stoich_override_and_response_packets_ignored():
    parser = MtsParser(stoich=9.765)
    response = bytes([0xA2, 0x81, 0x00, 0x4E])  # D/S = 0: a query response, not data
    rows = feed_all(parser, stream(LC1, 2) + response + LC1)  # a query answered mid-stream
    assert len(rows) == 3 and rows[2]["afr"] == pytest.approx(9.765)
    assert parser.response_packets == 1


def test_stoich_param_is_checked():
    with pytest.raises(SourceError, match="stoich"):
        InnovateSource(parse_uri("innovate:/dev/null?stoich=abc"), "x")
    with pytest.raises(SourceError, match="plausible"):
        InnovateSource(parse_uri("innovate:/dev/null?stoich=100"), "x")


def test_source_reads_blocks_from_a_pty_device():
    dev = PtyStreamer(LC1)
    try:
        src = create_source(f"innovate:{dev.path}")
        src.open()
        try:
            got: list[Block] = []
            deadline = time.monotonic() + 20.0
            while len(got) < 3 and time.monotonic() < deadline:
                block = src.read(0.2)
                if block is not None:
                    got.append(block)
            assert len(got) >= 3
            assert got[-1].column("lambda")[-1] == pytest.approx(1.0)
            assert src.status.state is SourceState.CONNECTED
        finally:
            src.close()
    finally:
        dev.unplug()


def test_warming_up_device_reports_status_message():
    dev = PtyStreamer(WARMING)
    try:
        src = create_source(f"innovate:{dev.path}")
        src.open()
        try:
            block = None
            deadline = time.monotonic() + 20.0
            while block is None and time.monotonic() < deadline:
                block = src.read(0.2)
            assert block is not None and math.isnan(block.column("lambda")[0])
            assert src.status.message == "warming up 2.0 %"
        finally:
            src.close()
    finally:
        dev.unplug()


# RomRaider's LM-1 test string (PROTOCOLS.md §1 Correction): an "old" LM-1 channel, the
# word layout of Innovate "Serial Protocol #1" and OT-2 SDK p.16-17: function word
# 1 R F3..F0 0 AF7 | 0 AF6..0, lambda word, battery word (mb, bv), five aux words.
LM1_CHANNEL = bytes.fromhex("81 13 03 7C 1E 66 01 26 00 72 00 49 00 3B 00 3B")


@pytest.mark.parametrize("feeder", [feed_all, feed_bytewise])
def test_lm1_channel_inside_an_mts_packet_decodes(feeder):
    rows = feeder(MtsParser(), stream(bytes([0xB2, 0x88]) + LM1_CHANNEL))  # 8 words follow
    assert len(rows) == 3 and rows[0] == rows[2]
    row = rows[0]
    assert row["lambda"] == pytest.approx(1.008)  # L = 0x1FC = 508
    assert row["afr"] == pytest.approx(1.008 * 14.7)  # AF = 147 from the LM-1 itself
    assert row["batt_v"] == pytest.approx(870 * 5 * 3 / 1023)  # mb 3, bv 870: 12.76 V
    assert [row[f"aux{i}_raw"] for i in range(5)] == [166.0, 114.0, 73.0, 59.0, 59.0]


def test_lm1_chained_with_an_lc1_numbers_both_lambdas():
    packet = bytes([0xB2, 0x8A]) + LM1_CHANNEL + LC1[2:]  # LM-1 furthest, LC-1 nearest
    rows = feed_all(MtsParser(), stream(packet))
    assert len(rows) == 3
    assert rows[0]["lambda"] == pytest.approx(1.008)
    assert rows[0]["lambda2"] == pytest.approx(1.000)
    assert rows[2] == rows[0]  # framing kept after the LM-1 channel


def test_lm1_status_code_uses_four_function_bits():
    warming = bytes([0x91, 0x13, 0x00, 0x14, 0x1E, 0x66])  # F = 0100: warming up, 2.0 %
    parser = MtsParser()
    rows = feed_all(parser, stream(bytes([0xB2, 0x83]) + warming))
    assert math.isnan(rows[0]["lambda"]) and parser.status_text == "warming up 2.0 %"


def test_zero_length_packets_and_garbage_are_not_samples():
    parser = MtsParser()
    empty = bytes([0xB2, 0x80])
    assert feed_all(parser, empty * 40) == []
    assert parser.empty_packets == 40 and parser.packets == 0
    # A lambda word that lacks its fixed bits (bit 9 set, bit 13 clear) is not a channel.
    assert feed_all(parser, bytes([0xB2, 0x82, 0x61, 0x13, 0x03, 0x74])) == []
    assert parser.bad_packets == 1
    # A channel cut in half by the word count is not a sample either.
    assert feed_all(parser, bytes([0xB2, 0x81, 0x43, 0x13])) == []
    assert feed_all(parser, stream(LC1)) != []


def test_source_fed_empty_packets_is_never_connected_with_samples():
    dev = PtyStreamer(bytes([0xB2, 0x80]) * 2, period_s=0.03)  # ~66 empty packets/s
    try:
        src = source_as(InnovateSource, f"innovate:{dev.path}")
        src.open()
        try:
            blocks = [src.read(0.1) for _ in range(8)]
            assert blocks == [None] * 8
            assert src.frames_decoded == 0
        finally:
            src.close()
    finally:
        dev.unplug()


# A stand-alone LM-1 (no MTS chain) streams Serial Protocol #1 packets: no header, the first
# byte is the only one with bit 7 set; 16 bytes with five aux words, or only the first two
# words during warm-up / errors (Innovate "Serial Protocol #1" §2).
@pytest.mark.parametrize("feeder", [feed_all, feed_bytewise])
def test_standalone_lm1_stream_decodes(feeder):
    rows = feeder(MtsParser(), b"\x13\x03" + LM1_CHANNEL * 3)  # starts mid-packet
    assert len(rows) == 3
    assert all(r["lambda"] == pytest.approx(1.008) for r in rows)
    assert rows[0]["aux4_raw"] == 59.0 and rows[0]["batt_v"] == pytest.approx(12.757, abs=1e-3)


def test_standalone_lm1_short_warm_up_packets_need_a_chain():
    warm = bytes([0x91, 0x13, 0x00, 0x14])  # F = 0100 warming up, 2.0 %, two words only
    parser = MtsParser()
    rows = feed_all(parser, warm * 4 + LM1_CHANNEL)
    # The first short packet could be noise: it counts once the next follows back to back.
    assert len(rows) == 5
    assert all(math.isnan(r["lambda"]) for r in rows[:4]) and rows[4]["lambda"] == 1.008
    assert parser.status_text == ""


# PROTOCOLS.md §1 "Header word": the sync rule is the only framing (no checksum); random
# bytes pass it and the channel words' fixed bits (§1 "Channel words") now and then. A
# device streams packet after packet back to back (§1 "Physical link"), which noise does not.
def seeded_garbage(seconds: float, seed: int = 7) -> bytes:
    """Random bytes for ``seconds`` at 19200 8N1 (1920 bytes/s): a wrong baud or noise."""
    return random.Random(seed).randbytes(int(1920 * seconds))


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_random_bytes_make_no_samples_and_no_status(seed):
    parser = MtsParser()
    garbage = seeded_garbage(120.0, seed)
    rng = random.Random(seed)
    rows: list[dict[str, float]] = []
    k = 0
    while k < len(garbage):  # serial reads come in any size
        step = rng.randrange(1, 200)
        rows += feed_all(parser, garbage[k : k + step])
        k += step
    assert rows == []  # each packet on its own: about 60 rows, "warming up 738.7 %" ...
    assert parser.status_text == "" and parser.packets == 0
    rows = feed_all(parser, stream(LC1))  # a real stream after the noise: locked at once
    assert len(rows) == 3 and rows[-1]["lambda"] == pytest.approx(1.0)


def test_one_valid_looking_packet_in_noise_is_not_a_sample():
    noise = bytes(range(1, 40))  # never a packet start (bit 7 clear)
    parser = MtsParser()
    assert feed_all(parser, noise + WARMING + noise + LC1 + noise) == []
    assert parser.status_text == "" and parser.packets == 0


def test_back_to_back_packets_of_another_shape_do_not_lock():
    # Two stand-alone LM-1 short packets (Serial Protocol #1 §2) whose function codes
    # differ, then an MTS packet: each passes the bit tests, no two belong together.
    warming = bytes([0x91, 0x13, 0x00, 0x14])  # F = 0100 warming up
    error = bytes([0x99, 0x13, 0x00, 0x14])  # F = 0110 error
    parser = MtsParser()
    assert feed_all(parser, warming + error + LC1 + bytes(range(1, 40))) == []
    assert parser.status_text == ""


def test_losing_the_lock_drops_the_device_status():
    parser = MtsParser()
    assert len(feed_all(parser, stream(WARMING))) == 3
    assert parser.status_text == "warming up 2.0 %"
    assert feed_all(parser, seeded_garbage(5.0)) == []
    assert parser.status_text == "" and parser.sync_losses == 1


def test_source_on_a_garbage_stream_is_never_connected():
    dev = PtyStreamer(garbage_stream(seed=3, chunk_bytes=256), period_s=0.01)
    try:
        src = source_as(InnovateSource, f"innovate:{dev.path}")
        src.open()
        try:
            opened = (SourceState.CONNECTED, f"{dev.path} at 19200 baud")
            seen = set()
            deadline = time.monotonic() + 2.6  # the hint waits NO_FRAME_LIMIT_S (2 s)
            while time.monotonic() < deadline:
                assert src.read(0.05) is None
                seen.add((src.status.state, re.sub(r"[\d.]+ s$", "N s", src.status.message)))
            assert src.bytes_received > 20000 and src.frames_decoded == 0
            # Before: "connected (sensor error 4252)", "stale (warming up 738.7 % for 0.5 s)".
            assert seen <= {
                opened,
                (SourceState.STALE, "no valid frame for N s"),
                (SourceState.STALE, NO_FRAME_HINT),
            }
            assert (src.status.state, src.status.message) == (SourceState.STALE, NO_FRAME_HINT)
        finally:
            src.close()
    finally:
        dev.unplug()


def test_source_reads_a_standalone_lm1_on_a_pty():
    dev = PtyStreamer(LM1_CHANNEL, period_s=0.03)
    try:
        src = create_source(f"innovate:{dev.path}")
        src.open()
        try:
            got: list[Block] = []
            deadline = time.monotonic() + 20.0
            while len(got) < 3 and time.monotonic() < deadline:
                block = src.read(0.2)
                if block is not None:
                    got.append(block)
            assert len(got) >= 3
            assert got[-1].column("lambda")[-1] == pytest.approx(1.008)
            assert src.status.state is SourceState.CONNECTED
        finally:
            src.close()
    finally:
        dev.unplug()
