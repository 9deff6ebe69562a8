"""Serial base: open errors, watchdog, and reconnect after the device disappears (pty pair)."""

from __future__ import annotations

import errno
import time

import pytest
import serial

from core.source import SourceError, SourceState
from drivers.innovate import InnovateSource
from drivers.registry import create_source
from drivers.serial_base import NO_FRAME_HINT, open_error
from tests.serial_fakes import PtyStreamer
from tests.typed_sources import source_as

LC1 = bytes.fromhex("B28243130374")


def test_missing_port_is_one_clear_line():
    src = create_source("innovate:/dev/ttyUSB9")
    with pytest.raises(SourceError) as info:
        src.open()
    assert str(info.value) == "no such device /dev/ttyUSB9 (is it plugged in? run 'dynoai sources')"
    assert src.status.state is SourceState.FAILED


def test_permission_denied_names_the_dialout_fix():
    exc = serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: [Errno 13] ...")
    msg = str(open_error("/dev/ttyUSB0", exc))
    assert "permission denied on /dev/ttyUSB0" in msg and "dialout" in msg


def test_busy_port_message():
    exc = serial.SerialException(errno.EBUSY, "could not exclusively lock port /dev/ttyUSB0")
    assert "busy" in str(open_error("/dev/ttyUSB0", exc))


def test_empty_path_is_rejected():
    with pytest.raises(SourceError, match="no serial port given"):
        create_source("innovate:")


@pytest.mark.parametrize("scheme", ["innovate", "aem", "elm327", "speeduino"])
def test_regular_file_or_directory_as_port_is_bad_input(tmp_path, scheme):
    """A typo that names a file: say what it is, at once, before any open (exit 2, not 3)."""
    log = tmp_path / "run.dynolog"
    log.write_bytes(b"not a tty")
    for path, kind in ((log, "a regular file"), (tmp_path, "a directory")):
        with pytest.raises(SourceError) as info:
            create_source(f"{scheme}:{path}")
        assert f"{path} is {kind}, not a serial device" in str(info.value)


def test_stale_then_wrong_baud_hint(tmp_path):
    # Bytes keep arriving but none frame: after 2 s the status says why.
    dev = PtyStreamer(b"\x01\x02\x03\x04", period_s=0.01, link=tmp_path / "tty")
    src = source_as(InnovateSource, f"innovate:{tmp_path / 'tty'}")
    try:
        src.open()
        states = set()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and src.status.message != NO_FRAME_HINT:
            assert src.read(0.1) is None
            states.add(src.status.state)
        assert SourceState.STALE in states
        assert src.status.message == NO_FRAME_HINT
        assert src.bytes_received > 100 and src.frames_decoded == 0
    finally:
        src.close()
        dev.unplug()


def test_unplug_mid_stream_then_data_resumes_within_2_s(tmp_path):
    link = tmp_path / "ttyINNOVATE"
    dev = PtyStreamer(LC1, link=link)
    src = create_source(f"innovate:{link}", "wb")
    src.open()
    try:
        block = None
        deadline = time.monotonic() + 20.0
        while block is None and time.monotonic() < deadline:
            block = src.read(0.1)
        assert block is not None and src.status.state is SourceState.CONNECTED

        dev.unplug()
        deadline = time.monotonic() + 20.0
        while src.status.state is not SourceState.RECONNECTING and time.monotonic() < deadline:
            src.read(0.1)
        assert src.status.state is SourceState.RECONNECTING
        events = src.drain_events()
        assert [e.kind for e in events] == ["disconnect"]
        assert events[0].source == "wb"

        # The cable stays out for a while: retries fail quietly, read never blocks long.
        t0 = time.monotonic()
        for _ in range(5):
            assert src.read(0.1) is None
        assert time.monotonic() - t0 < 1.5
        assert src.status.state is SourceState.RECONNECTING

        dev = PtyStreamer(LC1, link=link)  # plugged back in
        t_back = time.monotonic()
        block = None
        while block is None and time.monotonic() - t_back < 2.0:
            block = src.read(0.1)
        assert block is not None, "data did not resume within 2 s"
        assert block.column("lambda")[-1] == pytest.approx(1.0)
        assert src.status.state is SourceState.CONNECTED
        assert [e.kind for e in src.drain_events()] == ["reconnect"]
    finally:
        src.close()
        dev.unplug()


def test_close_twice_and_read_after_close():
    src = create_source("aem:loop://")
    src.open()
    src.close()
    src.close()
    assert src.read(0.05) is None


def test_rows_with_other_channels_become_their_own_block():
    """A row that lacks a channel (an Innovate chain's O2 % only while free-air
    calibrating) must not be a NaN sample of it: fusion holds NaN as invalid."""
    src = source_as(InnovateSource, "innovate:loop://")
    rows = [
        (1.0, {"lambda": 1.0, "afr": 14.7}),
        (1.1, {"lambda": float("nan"), "afr": float("nan"), "o2_pct": 20.9}),
        (1.2, {"lambda": 0.9, "afr": 13.23}),
    ]
    first = src._blocks(rows)
    assert first is not None and list(first.t) == [1.0, 1.2] and "o2_pct" not in first.columns
    src.port = object()  # as if open: the queued block comes from the next read at once
    second = src.read(0.0)
    assert second is not None and list(second.t) == [1.1]
    assert second.column("o2_pct")[0] == 20.9
    src._closed = True
    assert src.read(0.0) is None
