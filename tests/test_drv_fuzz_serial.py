"""Fuzz every serial parser: random and mutated byte streams never raise, and a valid
packet after the garbage is still decoded (resync)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.aem import AemLineParser
from drivers.elm327_reply import ElmReplyParser, parse_reply
from drivers.innovate import MtsParser
from drivers.obd_pids import decode_mode01, split_mode01
from drivers.speeduino import INI_DIR
from drivers.tsini import load_ini
from drivers.tunerstudio import ReplyParser, frame

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MTS_VALID = bytes.fromhex("B28243130374")
AEM_VALID = b"\r\n14.7\r\n"
ELM_VALID = b"008\r0: 410C41C20B35\r1: 1170\r\r>"


def speeduino_valid() -> bytes:
    block = bytearray(139)
    block[4] = 95
    block[14:16] = (3500).to_bytes(2, "little")
    return frame(b"\x00" + bytes(block))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given (sorted, clipped) positions: serial reads come in any size."""
    points = sorted({min(c, len(data)) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, value in flips:
        if buf:
            buf[pos % len(buf)] = value
    return bytes(buf)


garbage = st.binary(max_size=300)
cuts = st.lists(st.integers(0, 400), max_size=6)
flips = st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)), max_size=6)


def feed(parser, chunks: list[bytes]):
    rows = []
    for chunk in chunks:
        rows.extend(parser.feed(chunk, 1.0))
    return rows


@FUZZ
@given(junk=garbage, cut=cuts, flip=flips)
def test_mts_survives_and_resyncs(junk, cut, flip):
    parser = MtsParser()
    feed(parser, chunked(junk + mutate(MTS_VALID * 3, flip), cut))
    # Valid packets after any garbage: a false header can swallow at most the first.
    rows = feed(parser, [MTS_VALID * 3])
    assert len(rows) >= 2 and rows[-1][1]["lambda"] == pytest.approx(1.0)


@FUZZ
@given(junk=garbage, cut=cuts, mode=st.sampled_from(["auto", "afr", "lambda"]))
def test_aem_survives_and_resyncs(junk, cut, mode):
    parser = AemLineParser(mode)
    rows = feed(parser, chunked(junk, cut))
    for _, values in rows:
        assert math.isnan(values["lambda"]) or values["lambda"] > 0
    rows = feed(parser, [AEM_VALID])
    assert rows and rows[-1][1]["afr"] == pytest.approx(14.7 if mode != "lambda" else 14.7 * 14.7)


@FUZZ
@given(junk=garbage, cut=cuts, flip=flips)
def test_elm_reply_parser_survives_and_resyncs(junk, cut, flip):
    parser = ElmReplyParser()
    feed(parser, chunked(junk + mutate(ELM_VALID, flip), cut))
    rows = feed(parser, [b">" + ELM_VALID])
    assert rows and rows[-1][1]["rpm"] == pytest.approx(4208.5)


@FUZZ
@given(raw=garbage)
def test_elm_parse_reply_and_mode01_never_raise(raw):
    reply = parse_reply(raw, sent="010C0B11")
    for message in reply.messages:
        split_mode01(message)
        split_mode01(message, {0x0C, 0x0B, 0x11})
        decode_mode01(message)
    decode_mode01(raw)


@FUZZ
@given(junk=garbage, cut=cuts, flip=flips)
def test_speeduino_envelope_survives_and_resyncs(junk, cut, flip):
    parser = ReplyParser(envelope=True)
    valid = speeduino_valid()
    feed(parser, chunked(junk + mutate(valid, flip), cut))
    # Whatever came before, the next valid reply is found without a reset: the
    # parser looks for a CRC-valid frame anywhere, not only at a false length field.
    parser.payloads.clear()
    feed(parser, [valid])
    assert parser.payloads, "valid reply after garbage not found"
    values = load_ini(INI_DIR / "speeduino-202501.ini").decode(parser.payloads[-1][1:])
    assert values["rpm"] == 3500.0 and values["map"] == 95.0


@FUZZ
@given(junk=garbage, cut=cuts)
def test_plain_reply_never_raises(junk, cut):
    parser = ReplyParser(envelope=False)
    feed(parser, chunked(junk, cut))
    assert bytes(parser.raw) == junk[: len(parser.raw)]
