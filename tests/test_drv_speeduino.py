"""Speeduino on a pty acting as the ECU: signature first, then each release's own ini.

The fake answers as the firmware's comms code does (PROTOCOLS.md §5, tests/ts_fakes.py);
the blocks are laid out from each release's speeduino.ini (tests/speeduino_blocks.py).
"""

from __future__ import annotations

import time

import pytest

from core.frames import Block
from core.source import SourceError
from drivers.registry import create_source
from drivers.speeduino import INI_DIR
from tests.serial_fakes import PtyResponder
from tests.speeduino_blocks import EXPECTED, speeduino_block
from tests.ts_fakes import FakeTsEcu


def run(ecu: FakeTsEcu, uri_suffix: str = "", want: int = 5, **pty):
    dev = PtyResponder(ecu, split=ecu.split, **pty)
    src = create_source(f"speeduino:{dev.path}{uri_suffix}")
    try:
        src.open()
        blocks: list[Block] = []
        deadline = time.monotonic() + 20.0
        while len(blocks) < want and time.monotonic() < deadline:
            block = src.read(0.1)
            if block is not None:
                blocks.append(block)
        return src, blocks, dev.requests, src.drain_events()
    finally:
        src.close()
        dev.close()


def last_values(blocks) -> dict[str, float]:
    return {k: float(v[-1]) for k, v in blocks[-1].columns.items()}


def check(values: dict[str, float], version: str) -> None:
    for name, want in EXPECTED.items():
        assert values[name] == pytest.approx(want), name
    if version == "202501":
        assert values["knock_count"] == 2.0 and values["knock_retard_deg"] == 3.0


@pytest.mark.parametrize("version", ["202207", "202305", "202501"])
@pytest.mark.parametrize(
    "delivery", [{}, {"write_chunk": 1}, {"write_chunk": 7, "write_gap_s": 0.001}]
)
def test_each_release_decodes_from_its_own_ini(version, delivery):
    ecu = FakeTsEcu(f"speeduino {version}", speeduino_block(version))
    src, blocks, requests, events = run(ecu, **delivery)
    assert src.signature == f"speeduino {version}" and src.protocol == "crc"
    assert len(blocks) == 5
    check(last_values(blocks), version)
    assert requests[0] == bytes.fromhex("000151CE6E8EEF")  # framed 'Q' first
    note = next(e.text for e in events if e.kind == "note")
    assert f"speeduino-{version}.ini" in note and "not read: lambda" in note


def test_point_release_uses_its_release_ini():
    ecu = FakeTsEcu("speeduino 202501.7", speeduino_block("202501"))
    src, blocks, _, _ = run(ecu)
    check(last_values(blocks), "202501")


def test_garbage_before_every_reply_is_skipped():
    ecu = FakeTsEcu("speeduino 202305", speeduino_block("202305"), garbage=b"\xf0\x00\x8c\x13\x37")
    src, blocks, _, _ = run(ecu)
    assert len(blocks) == 5
    check(last_values(blocks), "202305")


def test_unknown_firmware_is_one_clear_error_naming_it():
    dev = PtyResponder(FakeTsEcu("speeduino 202402", bytes(130)), split=FakeTsEcu("", b"").split)
    src = create_source(f"speeduino:{dev.path}")
    try:
        with pytest.raises(SourceError) as info:
            src.open()
        msg = str(info.value)
        assert "no ini for Speeduino firmware 'speeduino 202402'" in msg
        assert f"speeduino:{dev.path}?ini=FILE" in msg and "\n" not in msg
    finally:
        src.close()
        dev.close()


def test_another_ecu_type_is_told_to_use_ts():
    ecu = FakeTsEcu("rusEFI 2022.05.01.all.1", bytes(64), query=b"Q")
    dev = PtyResponder(ecu, split=ecu.split)
    src = create_source(f"speeduino:{dev.path}")
    try:
        with pytest.raises(SourceError, match=r"not a Speeduino: use ts:.*\?ini=FILE"):
            src.open()
    finally:
        src.close()
        dev.close()


def test_user_ini_for_a_firmware_not_shipped(tmp_path):
    ini = tmp_path / "speeduino.ini"
    shipped = (INI_DIR / "speeduino-202305.ini").read_text()
    ini.write_text(shipped.replace('"speeduino 202305"', '"speeduino 202402"'))
    ecu = FakeTsEcu("speeduino 202402", speeduino_block("202305"))
    src, blocks, _, _ = run(ecu, f"?ini={ini}")
    check(last_values(blocks), "202305")


def test_old_firmware_without_the_envelope_answers_plain_q():
    # Pre-2022 firmware reads the framed query byte by byte: it ignores 0x00 0x01,
    # answers the 'Q' inside it, and ignores the CRC bytes; the driver drains that
    # reply and asks again with a plain 'Q', then polls with plain 'r' commands.
    ecu = FakeTsEcu("speeduino 202207", speeduino_block("202207"), crc=False)
    src, blocks, requests, _ = run(ecu)
    assert src.protocol == "legacy" and len(blocks) == 5
    check(last_values(blocks), "202207")
    assert b"Q" in requests
    assert any(r[:1] == b"r" and len(r) == 7 for r in requests)


def test_new_comms_off_in_the_ini_polls_plain():
    # The 202207 ini's NEW_COMMS setting off: TunerStudio (and we) use plain commands.
    ecu = FakeTsEcu("speeduino 202207", speeduino_block("202207"))
    ini = INI_DIR / "speeduino-202207.ini"
    src, blocks, _, _ = run(ecu, f"?ini={ini}&unset=NEW_COMMS")
    assert src.protocol == "legacy" and ecu.framed_requests == 0
    check(last_values(blocks), "202207")


def test_range_error_names_the_wrong_ini():
    ecu = FakeTsEcu("speeduino 202501", speeduino_block("202501")[:100])
    dev = PtyResponder(ecu, split=ecu.split)
    src = create_source(f"speeduino:{dev.path}")
    try:
        with pytest.raises(SourceError, match="range error.*wrong ini"):
            src.open()
    finally:
        src.close()
        dev.close()


def test_silent_port_is_one_clear_error():
    ecu = FakeTsEcu("", b"")
    dev = PtyResponder(lambda request: b"", split=ecu.split)
    src = create_source(f"speeduino:{dev.path}")
    try:
        with pytest.raises(SourceError, match="no answer to the signature query"):
            src.open()
    finally:
        src.close()
        dev.close()


def test_bad_params():
    with pytest.raises(SourceError, match="protocol"):
        create_source("speeduino:/dev/null?protocol=modbus")
    with pytest.raises(SourceError, match="can_id"):
        create_source("speeduino:/dev/null?can_id=99")
    with pytest.raises(SourceError, match=r"bad ini .*missing\.ini: cannot read"):
        create_source("speeduino:/dev/null?ini=/nonexistent/missing.ini")
