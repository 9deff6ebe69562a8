"""ELM327: reply parsing and PID vectors (PROTOCOLS.md §4), a scripted fake adapter on a pty
for errors and fallbacks, and the real ELM327-emulator for the whole session."""

from __future__ import annotations

import random
import re
import time

import pytest

import drivers.elm327 as elm327
from core.frames import Block
from core.source import SourceError, SourceState
from drivers.elm327 import Elm327Source
from drivers.elm327_reply import (
    ElmReplyParser,
    header_mode,
    is_bus_error,
    parse_reply,
    reply_length,
)
from drivers.obd_pids import decode_mode01, decode_pid, parse_supported, split_mode01
from drivers.registry import create_source
from tests.elm_emulator import emulator_available, running_emulator
from tests.serial_fakes import PtyResponder, PtyStreamer, garbage_stream
from tests.typed_sources import source_as

# -- pure parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "data", "expected"),
    [
        (0x0C, "145F", {"rpm": 1303.75}),
        (0x0B, "26", {"map_kpa": 38.0}),
        (0x11, "2B", {"tps_pct": 16.8627}),
        (0x0F, "39", {"iat_c": 17.0}),
        (0x05, "5F", {"clt_c": 55.0}),
        (0x0D, "0A", {"vehicle_speed_kph": 10.0}),
        (0x0E, "75", {"spark_deg": -5.5}),
        (0x24, "7BA865D9", {"lambda": 0.96606}),
        (0x34, "7AF97FF1", {"lambda": 0.96072}),
        (0x25, "8000FFFF", {"lambda_o2s2": 1.0}),
        (0x44, "7E71", {"lambda_target": 0.98782}),
    ],
)
def test_mode01_vectors(pid, data, expected):
    got = decode_pid(pid, bytes.fromhex(data))
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=5e-5)


def test_supported_bitmap_of_the_emulator():
    pids = parse_supported(0x00, bytes.fromhex("BE3FA813"))
    assert {0x05, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x11, 0x20} <= pids
    assert 0x02 not in pids and 0x0A not in pids


def test_single_line_reply():
    reply = parse_reply(b"410C145F\r\r>", sent="010C1")
    assert reply.error == "" and reply.messages == [bytes.fromhex("410C145F")]
    assert decode_mode01(reply.messages[0]) == {"rpm": 1303.75}


def test_multi_frame_reply_with_headers_off():
    reply = parse_reply(b"008\r0: 410C41C20B35\r1: 1170\r\r>", sent="010C0B11")
    assert reply.messages == [bytes.fromhex("410C41C20B351170")]
    values = decode_mode01(reply.messages[0])
    assert values["rpm"] == pytest.approx(4208.5)
    assert values["map_kpa"] == 53.0
    assert values["tps_pct"] == pytest.approx(43.92, abs=0.01)


def test_multi_frame_count_cuts_padding():
    reply = parse_reply(b"008\r0: 410C1AF80B63\r1: 11400000000000\r\r>")
    assert reply.messages == [bytes.fromhex("410C1AF80B631140")]
    assert decode_mode01(reply.messages[0])["rpm"] == 1726.0


def test_echo_searching_and_spaces():
    reply = parse_reply(b"0100\rSEARCHING...\r41 00 BE 3F A8 13 \r\r>", sent="0100")
    assert reply.error == "" and reply.messages == [bytes.fromhex("4100BE3FA813")]
    assert reply.lines == ["41 00 BE 3F A8 13"]


def test_two_ecus_answer():
    reply = parse_reply(b"410C1AF8\r410C1AF0\r\r>")
    assert len(reply.messages) == 2


@pytest.mark.parametrize(
    ("raw", "error", "bus"),
    [
        (b"NO DATA\r\r>", "NO DATA", False),
        (b"?\r\r>", "?", False),
        (b"STOPPED\r\r>", "STOPPED", False),
        (b"CAN ERROR\r\r>", "CAN ERROR", True),
        (b"BUS INIT: ...ERROR\r\r>", "BUS INIT ERROR", True),
        (b"SEARCHING...\rUNABLE TO CONNECT\r\r>", "UNABLE TO CONNECT", True),
        (b"BUFFER FULL\r\r>", "BUFFER FULL", False),
    ],
)
def test_error_replies(raw, error, bus):
    reply = parse_reply(raw, sent="010C")
    assert reply.error == error and reply.messages == []
    assert is_bus_error(reply.error) is bus


def test_bus_init_ok_is_progress():
    reply = parse_reply(b"BUS INIT: ...OK\r410C1AF8\r\r>")
    assert reply.error == "" and len(reply.messages) == 1


def test_repeated_service_byte_in_multi_answer():
    # The emulator sometimes repeats '41 0B 63' inside a multi-PID answer.
    payload = bytes.fromhex("410C09F60B63410B63112A247EDC69990F390556")
    got = split_mode01(payload, {0x0C, 0x0B, 0x11, 0x24, 0x0F, 0x05})
    assert set(got) == {0x0C, 0x0B, 0x11, 0x24, 0x0F, 0x05}
    assert got[0x11] == b"\x2a"


@pytest.mark.parametrize("bytewise", [False, True])
def test_incremental_parser_after_garbage(bytewise):
    parser = ElmReplyParser()
    stream = b"\x00\xff\x13junk>" + b"008\r0: 410C41C20B35\r1: 1170\r\r>"
    rows = []
    chunks = [bytes([b]) for b in stream] if bytewise else [stream]
    for chunk in chunks:
        rows.extend(parser.feed(chunk, 3.0))
    assert len(rows) == 1
    assert rows[0][1]["rpm"] == pytest.approx(4208.5) and parser.replies == 2


def test_bad_params():
    with pytest.raises(SourceError, match="not a hex PID"):
        create_source("elm327:/dev/null?pids=0C,zz")
    with pytest.raises(SourceError, match="not one dynoai decodes"):
        create_source("elm327:/dev/null?pids=0C,A6")
    with pytest.raises(SourceError, match="protocol="):
        create_source("elm327:/dev/null?protocol=12")


# -- a scripted fake adapter ---------------------------------------------------------------

PID_DATA = {0x0C: "1AF8", 0x0B: "63", 0x11: "40", 0x0F: "39", 0x05: "5F", 0x0E: "75", 0x0D: "0A",
            0x24: "7BA865D9", 0x44: "7E71"}  # fmt: skip


class FakeCar:
    """Answers like an ELM327 on a CAN car (no spaces; headers as ATH0/ATH1 say).

    With headers on, lines are ``7E8`` + ISO-TP PCI + data, as the ELM327 data
    sheet ("CAN Message Formats") and the ELM327-emulator print them. ``tcm``
    makes a second ECU (0x7E9) answer those PIDs of a functional request, its
    single frame printed between the ECM's first and consecutive frames.
    """

    def __init__(self, multi_ok: bool = True, tcm: dict[int, str] | None = None) -> None:
        self.multi_ok = multi_ok
        self.tcm = tcm or {}
        self.override: dict[str, bytes] = {}
        self.last = ""
        self.headers = False

    def __call__(self, request: bytes) -> bytes:
        cmd = request.decode().strip().upper()
        if not cmd and self.last:
            cmd = self.last  # a bare CR repeats the last command
        self.last = cmd
        if cmd in self.override:
            return self.override[cmd]
        if cmd == "ATZ":
            self.headers = False
            return b"\r\rELM327 v1.5\r\r>"
        if cmd in ("ATH0", "ATH1"):
            self.headers = cmd == "ATH1"
        if cmd == "ATDPN":
            return b"A6\r\r>"
        if cmd.startswith("AT"):
            return b"OK\r\r>"
        bitmaps = {"0100": "4100BE3FA813", "0120": "4120901FF015", "0140": "41407A1C8021"}
        if cmd in bitmaps:
            return self._frames([bitmaps[cmd]], [])
        body = cmd[2:]
        if len(body) % 2:
            body = body[:-1]  # the expected-reply count
        pids = [int(body[i : i + 2], 16) for i in range(0, len(body), 2)]
        if len(pids) > 1 and not self.multi_ok:
            return b"?\r\r>"
        tcm = [p for p in pids if p in self.tcm]
        tcm_hex = ["41" + "".join(f"{p:02X}{self.tcm[p]}" for p in tcm)] if tcm else []
        if any(p not in PID_DATA for p in pids):
            return self._frames([], tcm_hex) if tcm_hex else b"NO DATA\r\r>"
        return self._frames(["41" + "".join(f"{p:02X}{PID_DATA[p]}" for p in pids)], tcm_hex)

    def _frames(self, ecm: list[str], tcm: list[str]) -> bytes:
        if not self.headers:
            lines = [line for hexs in ecm + tcm for line in self._headerless(hexs)]
            return ("\r".join(lines) + "\r\r>").encode()
        ecm_lines = [line for hexs in ecm for line in self._isotp("7E8", hexs)]
        tcm_lines = [line for hexs in tcm for line in self._isotp("7E9", hexs)]
        lines = ecm_lines[:1] + tcm_lines + ecm_lines[1:]  # the TCM lands mid-message
        return ("\r".join(lines) + "\r\r>").encode()

    @staticmethod
    def _headerless(hexs: str) -> list[str]:
        if len(hexs) <= 14:
            return [hexs]
        lines = [f"{len(hexs) // 2:03X}", f"0: {hexs[:12]}"]
        rest, n = hexs[12:], 1
        while rest:
            lines.append(f"{n % 16:X}: {rest[:14]}")
            rest, n = rest[14:], n + 1
        return lines

    @staticmethod
    def _isotp(sender: str, hexs: str) -> list[str]:
        size = len(hexs) // 2
        if size <= 7:
            return [f"{sender}{size:02X}{hexs}"]
        lines = [f"{sender}1{size >> 8:X}{size & 0xFF:02X}{hexs[:12]}"]
        rest, n = hexs[12:], 1
        while rest:
            lines.append(f"{sender}2{n % 16:X}{rest[:14]}")
            rest, n = rest[14:], n + 1
        return lines


def read_blocks(src, seconds: float, want: int = 1000):
    blocks: list[Block] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(blocks) < want:
        block = src.read(0.1)
        if block is not None:
            blocks.append(block)
    return blocks


def test_fake_car_multi_pid_session():
    car = FakeCar()
    dev = PtyResponder(car)
    src = source_as(Elm327Source, f"elm327:{dev.path}")
    try:
        src.open()
        assert src.is_can and src.multi and src.protocol == "6"
        assert src.poll_pids[:4] == [0x0C, 0x0B, 0x11, 0x24]
        blocks = read_blocks(src, 20.0, want=6)
        assert len(blocks) == 6
        merged = {k: v[-1] for b in blocks for k, v in b.columns.items()}
        assert merged["rpm"] == 1726.0 and merged["map_kpa"] == 99.0
        assert merged["lambda"] == pytest.approx(0.96606, abs=1e-5)
        assert merged["afr"] == pytest.approx(0.96606 * 14.7, abs=1e-3)
        assert merged["lambda_target"] == pytest.approx(0.98782, abs=1e-5)
        sent = [r.decode() for r in dev.requests]
        assert sent[:7] == ["", "ATZ", "ATE0", "ATL0", "ATS0", "ATH0", "ATSP0"]
        assert sent[sent.index("ATDPN") + 1] == "ATH1" and src.parser.headers == "can11"
        assert "010C0B11240F05" in sent  # six PIDs in one request
        assert sent[-1] in ("", "010C0B11240F05", "010E0D44")
    finally:
        src.close()
        dev.close()


def test_unchanged_request_is_repeated_with_a_bare_cr():
    dev = PtyResponder(FakeCar())
    src = source_as(Elm327Source, f"elm327:{dev.path}?pids=0C,0B")
    try:
        src.open()
        assert len(read_blocks(src, 20.0, want=3)) == 3
        assert [r.decode() for r in dev.requests[-3:]] == ["010C0B", "", ""]
    finally:
        src.close()
        dev.close()


def test_falls_back_to_single_pids_when_multi_is_refused():
    dev = PtyResponder(FakeCar(multi_ok=False))
    src = source_as(Elm327Source, f"elm327:{dev.path}?pids=0C,0B,11")
    try:
        src.open()
        assert not src.multi and src.groups == [[0x0C], [0x0B], [0x11]]
        blocks = read_blocks(src, 20.0, want=3)
        assert {c for b in blocks for c in b.columns} == {"rpm", "map_kpa", "tps_pct"}
        assert dev.requests[-1].decode() in ("010C1", "010B1", "01111")
    finally:
        src.close()
        dev.close()


def test_no_data_is_status_not_crash():
    car = FakeCar()
    dev = PtyResponder(car)
    src = source_as(Elm327Source, f"elm327:{dev.path}?pids=0C")
    try:
        src.open()
        car.override["010C1"] = b"NO DATA\r\r>"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5 and src.status.state is not SourceState.STALE:
            assert src.read(0.1) is None
        assert src.status.state is SourceState.STALE
        assert "NO DATA" in src.status.message
        del car.override["010C1"]
        assert read_blocks(src, 20.0, want=1)
        assert src.status.state is SourceState.CONNECTED
    finally:
        src.close()
        dev.close()


def test_can_error_mid_run_reinits_and_resumes():
    car = FakeCar()
    dev = PtyResponder(car)
    src = source_as(Elm327Source, f"elm327:{dev.path}?pids=0C")
    try:
        src.open()
        car.override["010C1"] = b"CAN ERROR\r\r>"
        src.read(0.1)
        assert src.status.state is SourceState.STALE and "CAN ERROR" in src.status.message
        del car.override["010C1"]
        n_before = len(dev.requests)
        blocks = read_blocks(src, 20.0, want=1)
        assert blocks, "data did not resume after the bus error"
        assert "0100" in [r.decode() for r in dev.requests[n_before:]]  # searched again
    finally:
        src.close()
        dev.close()


def test_unable_to_connect_at_open_is_one_line():
    car = FakeCar()
    car.override["0100"] = b"SEARCHING...\rUNABLE TO CONNECT\r\r>"
    dev = PtyResponder(car)
    src = source_as(Elm327Source, f"elm327:{dev.path}")
    try:
        with pytest.raises(SourceError, match=r"car does not \(UNABLE TO CONNECT\).*ignition"):
            src.open()
    finally:
        src.close()
        dev.close()


def test_silent_adapter_is_no_answer(monkeypatch):
    monkeypatch.setattr(elm327, "RESET_TIMEOUT_S", 0.3)
    dev = PtyResponder(lambda request: b"")
    src = source_as(Elm327Source, f"elm327:{dev.path}")
    try:
        with pytest.raises(SourceError, match="no answer from the ELM327 adapter.*wrong baud"):
            src.open()
    finally:
        src.close()
        dev.close()


# PROTOCOLS.md §4a: a reply is complete when the prompt ``>`` arrives; ATZ prints the banner
# ("ELM327 v1.5"). At a wrong baud (or on another device) the bytes are noise, and a stray
# 0x3E in them is no prompt.
@pytest.mark.parametrize("banner", [False, True])
def test_random_bytes_are_never_a_reply(banner):
    rng = random.Random(11)
    for _ in range(2000):
        noise = rng.randbytes(rng.randrange(1, 2048))
        assert reply_length(noise, banner) is None


WHOLE = b""
"""The whole of ``raw`` is the reply."""


@pytest.mark.parametrize(
    ("raw", "banner", "reply"),
    [
        (b"ATZ\r\r\rELM327 v1.5\r\r>", True, WHOLE),  # the emulator's ATZ, echo on
        (b"\xff\x00\xfe\r\rELM327 v2.1\r\r>", True, WHOLE),  # UART junk from the reset
        (b"OK\r\r>", False, WHOLE),
        (b"SEARCHING...\r4100BE3FA813\r\r>", False, WHOLE),
        (b"OK\r\r>late", False, b"OK\r\r>"),  # what follows the prompt is not this reply
        (b"\x8a>\x13\r>", False, None),  # noise with a '>' in it, even one after a CR
        (b"OK\r\r>", True, None),  # ATZ: no banner
        (b"\xe3k\r>", True, None),
    ],
)
def test_reply_length(raw, banner, reply):
    length = reply_length(raw, banner)
    if reply is None:
        assert length is None
    else:
        assert length is not None and raw[:length] == (reply or raw)


def test_adapter_sending_noise_is_one_short_line_naming_other_bauds(monkeypatch):
    monkeypatch.setattr(elm327, "RESET_TIMEOUT_S", 0.5)
    dev = PtyStreamer(garbage_stream(seed=5, chunk_bytes=256), period_s=0.01)
    try:
        for query, others in [
            ("", "?baud=9600 or ?baud=115200"),
            ("?baud=9600", "?baud=38400 or ?baud=115200"),
        ]:
            src = source_as(Elm327Source, f"elm327:{dev.path}{query}")
            try:
                with pytest.raises(SourceError) as err:
                    src.open()  # before: ATZ and ATE0 ... "answered", 0100 "no valid answer"
            finally:
                src.close()
            text = str(err.value)
            assert re.fullmatch(
                rf"no answer from the ELM327 adapter on {dev.path} at \d+ baud "
                r"\(ATZ: \d+ bytes, none an ELM327 reply\): "
                rf"wrong baud \(try {re.escape(others)}\) or not an ELM327\?",
                text,
            ), text
    finally:
        dev.unplug()


def test_junk_before_the_atz_banner_still_connects():
    car = FakeCar()
    car.override["ATZ"] = b"\x00\xff\r\rELM327 v1.5\r\r>"  # a UART glitch as the chip resets
    dev = PtyResponder(car)
    src = source_as(Elm327Source, f"elm327:{dev.path}")
    try:
        src.open()
        assert src.protocol == "6" and src.poll_pids
    finally:
        src.close()
        dev.close()


# -- the real ELM327-emulator ----------------------------------------------------------------

needs_emulator = pytest.mark.skipif(not emulator_available(), reason="ELM327-emulator missing")
# Each emulator session spends ~2.5 s in ATZ + protocol search (the emulator's own delays).
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator_pty():
    with running_emulator() as pty:
        yield pty


@slow
@needs_emulator
def test_emulator_session_multi_pid(emulator_pty):
    src = source_as(Elm327Source, f"elm327:{emulator_pty}")
    try:
        src.open()
        assert src.protocol == "6" and src.is_can and src.multi
        assert {0x0C, 0x0B, 0x11, 0x0F, 0x05, 0x24, 0x44} <= set(src.poll_pids)
        blocks = read_blocks(src, 20.0, want=40)
        assert len(blocks) == 40
        rows = [b for b in blocks if "rpm" in b.columns]
        assert all({"rpm", "map_kpa", "tps_pct", "iat_c", "clt_c"} <= set(b.columns) for b in rows)
        rpm = [float(b.column("rpm")[0]) for b in rows]
        assert all(0.0 <= r <= 8000.0 for r in rpm) and len(set(rpm)) > 1  # the sequence moves
        assert all(-40 <= float(b.column("iat_c")[0]) <= 80 for b in rows)
        assert src.status.state is SourceState.CONNECTED
        assert src.requests >= 40
    finally:
        src.close()


@slow
@needs_emulator
def test_emulator_single_pid_mode(emulator_pty):
    src = source_as(Elm327Source, f"elm327:{emulator_pty}?multi=false&pids=0C,0B")
    try:
        src.open()
        assert not src.multi
        blocks = read_blocks(src, 20.0, want=10)
        assert len(blocks) == 10
        assert {c for b in blocks for c in b.columns} == {"rpm", "map_kpa"}
    finally:
        src.close()


# -- headers on (ATH1): per-ECU reassembly ---------------------------------------------------
# Line format from the ELM327 data sheet ("CAN Message Formats"; ATH1 ATS0): the 11-bit
# sender (3 hex digits) or 29-bit sender (8), then the ISO-TP PCI byte and the data, as
# the ELM327-emulator prints them ("7E8100E410C00000B26" / "7E821112B0F39055F0D").
INTERLEAVED = (
    b"7E8100E410C1AF80B63\r"  # ECM first frame: 14 bytes in all
    b"7E903410D32\r"  # TCM single frame: speed 50 km/h, printed between the ECM's frames
    b"7E82111400F39055F0D\r"
    b"7E8220A\r\r>"
)


def test_interleaved_ecus_are_reassembled_per_sender():
    reply = parse_reply(INTERLEAVED, sent="010C0B110F050D", headers="can11")
    assert reply.senders == ["7E8", "7E9"]
    assert reply.messages[0] == bytes.fromhex("410C1AF80B6311400F39055F0D0A")
    assert reply.messages[1] == bytes.fromhex("410D32")
    ecm = decode_mode01(reply.messages[0])
    assert ecm == pytest.approx(
        {"rpm": 1726.0, "map_kpa": 99, "tps_pct": 25.098, "iat_c": 17, "clt_c": 55,
         "vehicle_speed_kph": 10},
        abs=1e-3,
    )  # fmt: skip
    assert reply.incomplete == 0


def test_headers_off_cannot_separate_the_same_reply():
    # What the adapter printed with ATH0 for the same exchange: the TCM's line is read as
    # part of the ECM's message and IAT / speed are lost (the bug ATH1 fixes).
    old = parse_reply(b"00E\r0: 410C1AF80B63\r410D32\r1: 11400F39055F0D\r2: 0A\r\r>")
    values = {k: v for m in old.messages for k, v in decode_mode01(m).items()}
    assert "iat_c" not in values


def test_parser_keeps_ecm_values_when_two_ecus_answer_one_pid():
    parser = ElmReplyParser()
    parser.headers = "can11"
    parser.expected = frozenset({0x0C, 0x0B, 0x11, 0x0F, 0x05, 0x0D})
    rows = parser.feed(INTERLEAVED, 1.0)
    assert rows[0][1]["vehicle_speed_kph"] == 10.0  # the engine ECU (7E8) wins
    assert rows[0][1]["iat_c"] == 17.0 and parser.senders == {"7E8", "7E9"}


def test_missing_consecutive_frame_is_dropped_not_spliced():
    raw = b"7E8100E410C1AF80B63\r7E8220A\r\r>"  # CF 1 lost
    reply = parse_reply(raw, headers="can11")
    assert reply.messages == [] and reply.incomplete == 1


def test_29_bit_and_legacy_header_lines():
    reply = parse_reply(b"18DAF11004410C1AF8\r18DAF11803410D32\r\r>", headers="can29")
    assert reply.senders == ["18DAF110", "18DAF118"]
    assert reply.messages == [bytes.fromhex("410C1AF8"), bytes.fromhex("410D32")]
    j1850 = parse_reply(b"486B10410C1AF8C5\r\r>", headers="legacy")  # 3 header bytes + checksum
    assert j1850.senders == ["10"] and j1850.messages == [bytes.fromhex("410C1AF8")]
    assert header_mode("6") == "can11" and header_mode("7") == "can29"
    assert header_mode("2") == "legacy"


def test_fake_car_with_a_tcm_keeps_iat_and_speed():
    car = FakeCar(tcm={0x0D: "32"})  # the TCM answers speed too (50 km/h)
    dev = PtyResponder(car)
    src = source_as(Elm327Source, f"elm327:{dev.path}?pids=0C,0B,11,0F,05,0D")
    try:
        src.open()
        blocks = read_blocks(src, 20.0, want=3)
        assert blocks
        merged = {k: float(v[-1]) for b in blocks for k, v in b.columns.items()}
        assert merged["iat_c"] == 17.0 and merged["clt_c"] == 55.0
        assert merged["vehicle_speed_kph"] == 10.0 and merged["rpm"] == 1726.0
        assert src.parser.senders == {"7E8", "7E9"}
    finally:
        src.close()
        dev.close()


@pytest.mark.parametrize(
    ("pid", "data", "expected"),
    [
        (0x04, "FF", {"load_pct": 100.0}),  # emulator: 0104 -> 7E8 03 41 04 FF
        (0x10, "181F", {"maf_gs": 61.75}),  # emulator: 0110 -> 7E8 04 41 10 18 1F
    ],
)
def test_load_and_maf_pids(pid, data, expected):
    assert decode_pid(pid, bytes.fromhex(data)) == pytest.approx(expected)


def test_maf_car_without_map_polls_load_and_maf_by_default():
    from drivers.obd_pids import default_pids

    maf_car = {0x04, 0x05, 0x0C, 0x0F, 0x10, 0x11, 0x24}
    assert default_pids(maf_car)[:3] == [0x0C, 0x04, 0x10]
    assert 0x04 not in default_pids(maf_car | {0x0B})  # a MAP car keeps MAP as load


@slow
@needs_emulator
def test_emulator_headers_on_with_load_and_maf(emulator_pty):
    src = source_as(Elm327Source, f"elm327:{emulator_pty}?pids=0C,04,10,0F")
    try:
        src.open()
        assert src.parser.headers == "can11"
        assert {"load_pct", "maf_gs"} <= set(src.channels())
        blocks = read_blocks(src, 20.0, want=10)
        cols = {c for b in blocks for c in b.columns}
        assert {"rpm", "load_pct", "maf_gs", "iat_c"} <= cols
        assert src.parser.senders == {"7E8"} and src.parser.incomplete == 0
    finally:
        src.close()


@slow
@needs_emulator
def test_emulator_live_session_and_its_replay_bin_the_same(emulator_pty, tmp_path):
    """QA: a 30 s emulator run binned 0 live and 5 in its replay, accel_enrich 320 vs 323.

    The emulator's PIDs come in two requests, so two channel sets that the recording
    keeps in records of their own; the replay must still give the live grid and rejects.
    """
    from core.coverage.filters import FilterLimits
    from core.record.replay import ReplaySource
    from core.session import Session
    from core.vehicle import VehicleConfig
    from drivers.registry import parse_uri
    from tests.test_session import assert_same_grid

    cfg = VehicleConfig(lambda_delay_ms=90, filters=FilterLimits(min_clt_c=0.0))
    out = tmp_path / "elm.dynolog"
    live = Session([create_source(f"elm327:{emulator_pty}", "elm")], config=cfg, record_path=out)
    live.start()
    try:
        deadline = time.monotonic() + 30.0
        while live.snapshot.samples_total < 1500 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        live_final = live.stop()
    replay = ReplaySource(parse_uri(f"replay:{out}?speed=max"), "replay")
    replay_session = Session([replay], config=cfg)
    replayed = replay_session.run_to_end()

    assert live_final.samples_total >= 1500 and replayed.samples_total == live_final.samples_total
    # the emulator's car is all transients: what tells a replay from live is the rejects
    assert live_final.rejects.get("accel_enrich") and live_final.rejects.get("transient_holdoff")
    assert replayed.rejects == live_final.rejects
    assert replayed.samples_binned == live_final.samples_binned
    assert_same_grid(replay_session.grid.to_arrays(), live.grid.to_arrays())
