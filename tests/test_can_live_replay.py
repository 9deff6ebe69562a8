"""A live CAN session (``dynoai log`` in-process) and the replay of its own recording bin the same.

The ELM327 fix (``tests/test_drv_elm327.py``) found that a source with several channel
sets fused differently live and on replay. A CAN ECU broadcast is the same kind of
source, more so: one channel set per CAN ID, each ID at its own rate. Here a peer thread
broadcasts a Haltech ECU on a python-can ``virtual`` bus while ``dynoai log`` records it,
then ``dynoai replay --headless`` reads the file back, and both coverage reports must
agree cell for cell, reject for reject.

Frame layout and rates: Haltech "ECU CAN Broadcast Protocol" (support.haltech.com,
table of CAN IDs; 11-bit IDs, big-endian per "Haltech CAN Protocol Specification"), the
same tables ``drivers/dbc/haltech.dbc`` was written from:

* 0x360 50 Hz: RPM y=x, Manifold Pressure kPa(abs) y=x/10, Throttle Position % y=x/10
* 0x362 50 Hz: bytes 4-5 Ignition Angle (Leading) signed, y=x/10
* 0x364 50 Hz: Injection Stage 1 Average Injection Time ms y=x/1000
* 0x368 20 Hz: Wideband Sensor 1 lambda y=x/1000
* 0x372 10 Hz: Battery Voltage y=x/10, bytes 6-7 Barometric Pressure kPa y=x/10
* 0x3E0  5 Hz: Coolant, Air temperature in K y=x/10
"""

from __future__ import annotations

import json
import math
import signal
import struct
import threading
import time
from pathlib import Path

import can
import pytest

from core.record import read_log
from drivers.can_source import CanSource

HALTECH_RATES_HZ = {0x360: 50, 0x362: 50, 0x364: 50, 0x368: 20, 0x372: 10, 0x3E0: 5}
"""Broadcast rate per CAN ID, from Haltech's table (see the module docstring)."""


def engine_at(t_s: float) -> tuple[float, float, float, float]:
    """(rpm, MAP kPa, TPS %, lambda) of an engine stepping up the rpm, sweeping MAP at each.

    Steps of 1.5 s at 2000, 2750, 3500 and 4250 rpm; MAP rolls 40 -> 90 kPa within each
    step and the throttle snaps back at the next: steady rows to bin, transients to reject.
    """
    step, into = divmod(t_s, 1.5)
    rpm = 2000.0 + 750.0 * min(step, 3.0)
    map_kpa = 40.0 + 50.0 * into / 1.5
    tps_pct = 10.0 + (map_kpa - 40.0) * 0.6
    lam = 0.98 - 0.12 * (map_kpa - 40.0) / 50.0
    return rpm, map_kpa, tps_pct, lam


def haltech_frame(frame_id: int, t_s: float) -> can.Message:
    """One Haltech broadcast frame for the engine at ``t_s`` (layout: module docstring)."""
    rpm, map_kpa, tps_pct, lam = engine_at(t_s)
    if frame_id == 0x360:
        data = struct.pack(">HHHH", round(rpm), round(map_kpa * 10), round(tps_pct * 10), 2013)
    elif frame_id == 0x362:
        data = struct.pack(">HHhH", 250, 0, 215, 0)  # ignition 21.5 deg
    elif frame_id == 0x364:
        data = struct.pack(">HHHH", round(2000 + 40 * map_kpa), 0, 0, 0)
    elif frame_id == 0x368:
        data = struct.pack(">HHHH", round(lam * 1000), 0, 0, 0)
    elif frame_id == 0x372:
        data = struct.pack(">HHHH", 138, 0, 0, 1008)  # 13.8 V, baro 100.8 kPa
    else:
        data = struct.pack(">HHHH", 3582, 3032, 0, 0)  # coolant 85.05 C, air 30.05 C
    return can.Message(arbitration_id=frame_id, is_extended_id=False, data=data)


class HaltechBroadcast:
    """A peer thread broadcasting every ID of :data:`HALTECH_RATES_HZ` at its rate."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.sent: dict[int, int] = dict.fromkeys(HALTECH_RATES_HZ, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="haltech-peer", daemon=True)

    def __enter__(self) -> HaltechBroadcast:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.bus.shutdown()

    def _run(self) -> None:
        start = time.monotonic()
        due = dict.fromkeys(HALTECH_RATES_HZ, 0.0)
        while not self._stop.is_set():
            now_s = time.monotonic() - start
            for frame_id, rate_hz in HALTECH_RATES_HZ.items():
                while due[frame_id] <= now_s:
                    self.bus.send(haltech_frame(frame_id, due[frame_id]))
                    self.sent[frame_id] += 1
                    due[frame_id] += 1.0 / rate_hz
            self._stop.wait(0.002)


@pytest.mark.slow
def test_a_live_haltech_broadcast_and_its_replay_bin_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dynoai log`` stops while the ECU still broadcasts (``--duration``), as a Ctrl-C
    would: the samples already taken off the bus must reach the recording. Before, the
    blocks a drain had split per CAN ID but not handed over yet, and the block a pump
    had read when the stop came, were dropped: 3 to 9 decoded frames were in neither the
    grid nor the file."""
    from dynoai_tui.cli import main
    from dynoai_tui.commands import log as log_command

    monkeypatch.setenv("DYNOAI_DATA_DIR", str(tmp_path / "store"))
    made: list[CanSource] = []
    real_make_sources = log_command.make_sources

    def keep_sources(uris: list[str]) -> list[object]:
        sources = real_make_sources(uris)
        made.extend(s for s in sources if isinstance(s, CanSource))
        return sources

    monkeypatch.setattr(log_command, "make_sources", keep_sources)
    out = tmp_path / "haltech.dynolog"
    live_json, replay_json = tmp_path / "live.json", tmp_path / "replay.json"
    sigint = signal.getsignal(signal.SIGINT)  # main() installs its own Ctrl-C handler
    try:
        with HaltechBroadcast("haltech-live") as ecu:
            code = main(
                ["log", "--source", "can:virtual/haltech-live?dbc=haltech", "--out", str(out),
                 "--duration", "5", "--coverage-json", str(live_json)]
            )  # fmt: skip
            assert code == 0, capsys.readouterr().err
            assert sum(ecu.sent.values()) > 0
        replay_code = main(["replay", str(out), "--headless", "--coverage-json", str(replay_json)])
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert replay_code == 0, capsys.readouterr().err
    live, replayed = json.loads(live_json.read_text()), json.loads(replay_json.read_text())

    # every frame decoded live is a sample in the file, and the file keeps each ID apart
    (source,) = made
    _, blocks, _, recovery = read_log(out)
    assert recovery.complete, recovery.message
    per_set: dict[tuple[str, ...], int] = {}
    for block in blocks:
        key = tuple(sorted(block.columns))
        per_set[key] = per_set.get(key, 0) + len(block)
    assert len(per_set) == len(HALTECH_RATES_HZ)
    rpm_frames = per_set[("map_kpa", "rpm", "tps_pct")]
    assert rpm_frames > 8 * per_set[("clt_c", "iat_c")]  # 50 Hz against 5 Hz
    assert sum(per_set.values()) == source.frames_decoded == live["samples"]

    # the engine went through several cells, with rows kept and rows rejected
    assert live["samples"] > 800
    assert sum(1 for row in live["hits"] for hits in row if hits) >= 8
    assert sum(map(sum, live["hits"])) > 200 and sum(live["rejects"].values()) > 20

    assert replayed["samples"] == live["samples"]
    assert replayed["hits"] == live["hits"]
    assert replayed["rejects"] == live["rejects"]
    assert replayed["knock_events"] == live["knock_events"]
    for got, want in zip(replayed["weight"], live["weight"], strict=True):
        assert got == pytest.approx(want, rel=1e-9)
    assert not any(math.isnan(w) for row in live["weight"] for w in row)
