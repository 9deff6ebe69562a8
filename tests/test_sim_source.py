"""SimSource: URI parameters, real-time pacing, max-speed finite runs, registry wiring."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from core.channels import CHANNELS
from core.frames import concat
from core.source import SourceError, SourceState
from drivers.registry import create_source
from sim.simulation import SIM_CHANNELS
from sim.source import SimSource, generate


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sim:bike", "unknown vehicle 'bike'"),
        ("sim:vtwin?scenario=drag", "unknown scenario 'drag'"),
        ("sim:?rate=0", "1 to 1000 Hz"),
        ("sim:?rate=5000", "1 to 1000 Hz"),
        ("sim:?duration=-3", "duration=-3 must be more than 0"),
        ("sim:?speed=fast", "speed=fast must be 'max' or a number"),
        ("sim:?seed=abc", "seed='abc' is not a whole number"),
        ("sim:?sede=7", "unknown option 'sede'"),
        ("sim:?lambda_delay_ms=5000", "lambda_delay_ms=5000 is out of range"),
    ],
)
def test_bad_parameters_give_one_clear_source_error(uri: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        create_source(uri)
    assert uri in str(info.value)
    assert "\n" not in str(info.value)


def test_registry_makes_a_sim_source_with_defaults() -> None:
    source = create_source("sim:")
    assert isinstance(source, SimSource)
    assert source.name == "sim"
    assert source.realtime and not source.finite
    assert source.channels() == {name: CHANNELS[name].unit for name in SIM_CHANNELS}


def test_max_speed_source_finishes_with_exactly_its_duration() -> None:
    source = create_source("sim:car?scenario=steady&seed=3&speed=max&duration=12.5&rate=200")
    assert not source.realtime and source.finite
    blocks = []
    with source:
        assert source.status.state is SourceState.CONNECTED
        while (block := source.read()) is not None:
            blocks.append(block)
        assert source.status.state is SourceState.FINISHED
        assert source.read() is None
    data = concat(blocks)
    assert len(data) == 2500
    assert data.t[0] == 0.0 and data.t[-1] == pytest.approx(12.495)
    assert set(data.columns) == set(SIM_CHANNELS)
    # The source runs the same simulation as generate() with the same parameters.
    same = concat(list(generate("car", "steady", seed=3, rate_hz=200, duration_s=12.5)))
    np.testing.assert_array_equal(data.columns["lambda"], same.columns["lambda"])


def test_realtime_pacing_delivers_about_real_time() -> None:
    source = create_source("sim:vtwin?scenario=idle&rate=100")
    source.open()
    start = time.monotonic()
    samples, nones, last_t = 0, 0, 0.0
    while time.monotonic() - start < 0.6:
        block = source.read(timeout=0.05)
        if block is None:
            nones += 1
            continue
        samples += len(block)
        last_t = float(block.t[-1])
        assert len(block) <= 100
    source.close()
    assert 40 <= samples <= 75, samples
    # Stamped on the monotonic clock: the newest sample is about "now".
    assert abs(last_t - time.monotonic()) < 0.1


def test_speed_multiplies_the_data_rate() -> None:
    source = create_source("sim:?scenario=idle&speed=5")
    source.open()
    start = time.monotonic()
    samples = 0
    while time.monotonic() - start < 0.4:
        block = source.read(timeout=0.05)
        samples += 0 if block is None else len(block)
    source.close()
    assert 150 <= samples <= 230, samples


def test_read_waits_no_longer_than_timeout() -> None:
    source = create_source("sim:?rate=2")  # a sample every 0.5 s: the next block is far off
    source.open()
    first = source.read(timeout=2.0)
    assert first is not None and len(first) == 1
    start = time.monotonic()
    assert source.read(timeout=0.05) is None
    assert time.monotonic() - start < 0.3
    source.close()


def test_read_before_open_is_a_clear_error() -> None:
    source = create_source("sim:")
    with pytest.raises(SourceError, match="before open"):
        source.read()


def test_importing_the_simulator_pulls_no_ui_or_hardware_libraries() -> None:
    code = (
        "import sys, sim.source, sim.scenarios; "
        "bad = [m for m in ('textual', 'serial', 'can') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_guided_source_follows_the_line_up_to_five_times_real_time() -> None:
    # The session plans a real-time source once a second of its data (at most five times
    # a wall second), so the headless guided run at speed 4 follows the line as the
    # real-time demo does; faster, the operator would wait out the tests' ends.
    def advice():
        return None

    for speed, follows in (("1", True), ("4", True), ("5", True), ("8", False), ("max", False)):
        source = create_source(f"sim:?scenario=guided&speed={speed}")
        source.follow(advice)  # type: ignore[attr-defined]
        assert (source._advice is not None) == follows, speed  # type: ignore[attr-defined]
