"""``dynoai probe`` and ``dynoai sources``: live values, rates and one-line failures."""

from __future__ import annotations

import argparse

import pytest

import drivers.elm327 as elm327
from drivers.discovery import list_can_interfaces, list_serial_ports, uri_forms
from drivers.registry import BACKENDS
from dynoai_tui.commands import probe as cmd_probe
from dynoai_tui.commands import sources as cmd_sources
from tests.elm_emulator import emulator_available, running_emulator
from tests.serial_fakes import PtyResponder, PtyStreamer, garbage_stream

LC1 = bytes.fromhex("B28243130374")


def probe(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cmd_probe.add_arguments(parser)
    return cmd_probe.run(parser.parse_args(list(argv)))


def readings(out: str) -> list[str]:
    """Each reading's lines (the first plus its indented continuation lines) joined."""
    joined: list[str] = []
    for line in out.splitlines():
        if line.startswith(" " * 9) and joined:
            joined[-1] += "  " + line.strip()
        else:
            joined.append(line)
    return joined


def test_probe_lines_fit_the_width_and_keep_every_channel():
    values = {f"channel_{i}": float(i) * 1.5 for i in range(25)} | {"rpm": 5000.0}
    for width in (40, 79, 119):
        lines = cmd_probe.probe_lines(1.0, 100.0, "connected (a long status message " * 3 + ")",
                                      values, width)  # fmt: skip
        assert all(len(line) <= width for line in lines)
        text = " ".join(lines)
        assert all(f"channel_{i} " in text for i in range(25)) and "rpm 5000" in text
        assert lines[0].startswith("  1.00 s  100.0 samples/s")


def test_probe_innovate_pty_prints_values_and_rate(capsys):
    dev = PtyStreamer(LC1, period_s=0.02)
    try:
        code = probe(f"innovate:{dev.path}", "--seconds", "1.2")
    finally:
        dev.unplug()
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.splitlines()
    live = [line for line in readings(out) if "samples/s" in line and "lambda" in line]
    assert len(live) >= 3  # about four a second
    assert "lambda 1 " in live[-1] and "afr 14.7" in live[-1] and "connected" in live[-1]
    rate = float(lines[-1].split(":")[1].split()[0])
    assert 20.0 <= rate <= 60.0  # the fake streams every 20 ms


def test_probe_missing_device(capsys):
    assert probe("innovate:/dev/ttyUSB9", "--seconds", "1") == 3
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        "dynoai: error: no such device /dev/ttyUSB9 (is it plugged in? run 'dynoai sources')"
    ]


@pytest.mark.parametrize(
    ("uri", "text"),
    [
        ("nonsense", "is not a URI"),
        ("warp:/dev/ttyUSB0", "unknown source type"),
        ("aem:/dev/ttyUSB0?mode=volts", "mode="),
        ("innovate:", "no serial port given"),
        ("innovate:/dev/ttyUSB0?stoch=14.7", "unknown option 'stoch'; innovate: options are"),
        ("jetdrive:127.0.0.1:22344?unit=metric", "unknown option 'unit'"),
    ],
)
def test_probe_bad_uri_exit_2(capsys, uri, text):
    assert probe(uri) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and text in err


def test_probe_wrong_baud(capsys):
    dev = PtyStreamer(bytes(range(1, 40)), period_s=0.01)  # bytes, but never an MTS header
    try:
        code = probe(f"innovate:{dev.path}", "--seconds", "2.4")
    finally:
        dev.unplug()
    out, err = capsys.readouterr()
    assert code == 3
    assert "bytes arrive but no valid frame: wrong baud or wrong device type?" in err


def test_probe_innovate_on_random_bytes_exits_3(capsys):
    # PROTOCOLS.md §1: no checksum, so single packets that pass the header and word bit
    # tests turn up in noise; the driver trusts only packets that follow each other.
    dev = PtyStreamer(garbage_stream(seed=1, chunk_bytes=256), period_s=0.01)
    try:
        code = probe(f"innovate:{dev.path}", "--seconds", "2.4")
    finally:
        dev.unplug()
    out, err = capsys.readouterr()
    assert code == 3, out  # before: rc 0, "connected (sensor error 4252)", "1 samples"
    assert out.splitlines()[-1].startswith("0 samples")
    assert "connected (" not in out and "warming up" not in out
    assert err.strip().splitlines() == [
        f"dynoai: error: innovate:{dev.path}: "
        "bytes arrive but no valid frame: wrong baud or wrong device type?"
    ]


def test_probe_elm327_on_random_bytes_is_one_short_line(capsys, monkeypatch):
    # PROTOCOLS.md §4a: only a ">" prompt after a text reply (and ATZ's banner) is an answer.
    monkeypatch.setattr(elm327, "RESET_TIMEOUT_S", 0.5)
    dev = PtyStreamer(garbage_stream(seed=2, chunk_bytes=256), period_s=0.01)
    try:
        code = probe(f"elm327:{dev.path}", "--seconds", "1")
    finally:
        dev.unplug()
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1 and len(err) < 250, err  # no byte dump
    assert "(ATZ: " in err and "try ?baud=9600 or ?baud=115200" in err


def test_probe_adapter_does_not_answer(capsys, monkeypatch):
    monkeypatch.setattr(elm327, "RESET_TIMEOUT_S", 0.3)
    dev = PtyResponder(lambda request: b"")
    try:
        code = probe(f"elm327:{dev.path}", "--seconds", "1")
    finally:
        dev.close()
    err = capsys.readouterr().err
    assert code == 3 and "no answer from the ELM327 adapter" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(not emulator_available(), reason="ELM327-emulator missing")
def test_probe_elm327_emulator(capsys):
    with running_emulator() as pty:
        code = probe(f"elm327:{pty}?pids=0C,0B,11,0F,05", "--seconds", "1")
    out, err = capsys.readouterr()
    assert code == 0, err
    last_live = [line for line in readings(out) if "samples/s" in line and "rpm" in line][-1]
    for name in ("rpm", "map_kpa", "tps_pct", "iat_c", "clt_c"):
        assert f"{name} " in last_live
    assert float(out.splitlines()[-1].split(":")[1].split()[0]) > 50.0


def test_sources_lists_ports_can_and_every_uri_form(capsys):
    parser = argparse.ArgumentParser()
    cmd_sources.add_arguments(parser)
    assert cmd_sources.run(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    assert "Serial ports:" in out and "CAN interfaces:" in out
    for scheme in BACKENDS:
        assert f"  {scheme}:" in out
    assert "e.g. innovate:/dev/ttyUSB0" in out


def test_discovery_never_raises():
    assert isinstance(list_serial_ports(), list)
    assert isinstance(list_can_interfaces(), list)
    forms = {f.scheme: f for f in uri_forms()}
    assert forms.keys() == BACKENDS.keys()
    assert forms["elm327"].example.startswith("elm327:")


def test_probe_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """``dynoai probe URI | head -2``: head closing the pipe is the tuner's choice, not a crash.

    A real OS pipe read by a process that leaves after two lines (like ``head``), the probe
    in its own process with a streaming pty behind it: exit 0, nothing on stderr (it used to
    end with "internal error: BrokenPipeError").
    """
    import os
    import subprocess
    import sys

    dev = PtyStreamer(LC1, period_s=0.02)
    try:
        reader = subprocess.Popen(
            [sys.executable, "-c", "import sys; [sys.stdin.readline() for _ in range(2)]"],
            stdin=subprocess.PIPE,
        )
        assert reader.stdin is not None
        probe_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dynoai_tui.cli",
                "probe",
                f"innovate:{dev.path}",
                "--seconds",
                "30",
            ],
            stdout=reader.stdin,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "DYNOAI_DATA_DIR": str(tmp_path)},
        )
        reader.stdin.close()  # only the reader and the probe hold the pipe now
        reader.wait(timeout=60)
        _, err = probe_proc.communicate(timeout=60)  # well before --seconds 30 runs out
    finally:
        dev.unplug()
    assert probe_proc.returncode == 0, err
    assert err == ""


@pytest.mark.parametrize(
    ("scheme", "modules"),
    [
        ("innovate", ["innovate", "serial_base"]),
        ("aem", ["aem", "serial_base"]),
        ("elm327", ["elm327", "serial_base"]),
        ("ts", ["tunerstudio", "serial_base"]),
        ("speeduino", ["speeduino", "tunerstudio", "serial_base"]),
        ("jetdrive", ["jetdrive"]),
    ],
)
def test_option_lists_match_what_the_drivers_read(scheme, modules):
    """The registry's option list is exactly what the driver code reads with ``uri.get*``."""
    import re
    from pathlib import Path

    from drivers.registry import OPTIONS

    root = Path(__file__).resolve().parents[1] / "drivers"
    read = set()
    for module in modules:
        text = (root / f"{module}.py").read_text()
        read |= set(re.findall(r'uri\.get(?:_int|_float|_bool)?\(\s*"(\w+)"', text))
    assert read == OPTIONS[scheme]
