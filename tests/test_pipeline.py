"""One fuse-filter-bin path: live, replay and rebuild give the same grid, cell for cell.

The story from issue 9: before the Pipeline, ``coverage --vehicle V --rebuild`` of a
two-source log gave 9,352 hits where replaying it gave 7,702, and with an ECU lambda
of 1.00 and a wideband at 0.85 the rebuild binned lambda 0.925 instead of 0.850.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.coverage.axes import TableAxes
from core.frames import Block
from core.pipeline import Pipeline, bin_log, channel_owners, to_recorded_precision
from core.record import LogHeader, LogWriter
from core.record.replay import ReplaySource
from core.session import Session
from core.source import SourceError, SourceURI
from core.store import VehicleStore
from core.vehicle import VehicleConfig
from tests.test_session import ScriptedSource, assert_same_grid, sweep_blocks


class PacedSource(ScriptedSource):
    """Hands each block over when its data time is due on the wall clock, as hardware does."""

    def read(self, timeout: float = 0.1) -> Block | None:
        if self.blocks:
            due = self._t0 + float(self.blocks[0].t[-1])
            time.sleep(max(0.0, min(due - time.monotonic(), timeout)))
            if time.monotonic() < due:
                return None
        return super().read(timeout)


class Wideband(PacedSource):
    def channels(self) -> dict[str, str]:
        return {"lambda": "λ"}


def _ecu_at_lambda_one(seconds: float) -> list[Block]:
    return [
        replace(b, columns={**b.columns, "lambda": np.full(len(b), 1.0)})
        for b in sweep_blocks(seconds)
    ]


def _wideband_blocks(seconds: float) -> list[Block]:
    t = np.arange(0, seconds, 0.05)
    whole = Block("wb", t, {"lambda": np.full(t.size, 0.85)})
    return [whole.slice(i, i + 2) for i in range(0, t.size, 2)]


@pytest.fixture()
def two_source_recording(tmp_path: Path) -> tuple[Path, Session]:
    """A live, threaded session of an ECU (lambda 1.00) and a wideband (0.85), recorded."""
    out = tmp_path / "two.dynolog"
    cfg = VehicleConfig(lambda_delay_ms=90)
    live = Session(
        [
            PacedSource(_ecu_at_lambda_one(4), realtime=True),
            Wideband(_wideband_blocks(4), realtime=True, name="wb"),
        ],
        config=cfg,
        record_path=out,
        tick_s=0.02,
    )
    live.start()
    deadline = time.monotonic() + 30
    while not live.snapshot.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    live.stop()
    return out, live


def test_live_replay_and_rebuild_of_a_two_source_log_bin_the_same_grid(
    two_source_recording: tuple[Path, Session], tmp_path: Path
):
    out, live = two_source_recording
    cfg = VehicleConfig(lambda_delay_ms=90)
    replay = ReplaySource(SourceURI(f"replay:{out}", "replay", str(out), {"speed": "max"}), "r")
    replayed = Session([replay], config=cfg)
    replayed.run_to_end()
    rebuilt = bin_log(out, cfg)

    assert live.grid.samples_binned > 300
    assert live.snapshot.samples_total == 400 + 80
    assert_same_grid(replayed.grid.to_arrays(), live.grid.to_arrays())
    assert_same_grid(rebuilt.grid.to_arrays(), live.grid.to_arrays())
    assert rebuilt.rejects() == live.rejects()
    # the wideband owns lambda everywhere: 0.85, never the ECU's 1.00 nor a blend
    lam = rebuilt.grid.lambda_mean()
    means = lam[np.isfinite(lam)]
    assert means.size and np.allclose(means, 0.85, atol=1e-6)

    # and the store's --rebuild goes through the same path
    store = VehicleStore(tmp_path / "store")
    store.add_run("bike", "r1", live.grid, log_path=str(out))
    report = store.rebuild("bike", cfg.axes, lambda path: bin_log(path, cfg).grid)
    assert report.rebuilt == ("r1",)
    assert_same_grid(store.cumulative_grid("bike", cfg.axes).to_arrays(), live.grid.to_arrays())


def test_rebinning_onto_other_axes_uses_the_same_samples(two_source_recording):
    out, live = two_source_recording
    coarse = TableAxes.linear(1000, 6500, 6, 20, 100, 5)
    rebinned = bin_log(out, VehicleConfig(lambda_delay_ms=90), axes=coarse)
    assert rebinned.grid.axes == coarse
    kept = rebinned.grid.samples_binned + rebinned.rejects().get("outside_table", 0)
    assert kept == live.grid.samples_binned + live.rejects().get("outside_table", 0)


def test_staleness_from_the_vehicle_config_applies_on_rebuild_too(two_source_recording):
    out, live = two_source_recording
    strict = VehicleConfig(lambda_delay_ms=90, staleness_s={"lambda": 0.01})
    # the wideband reports every 50 ms: with a 10 ms limit its lambda is mostly stale
    rebuilt = bin_log(out, strict)
    assert rebuilt.rejects().get("stale_channel", 0) > live.rejects().get("stale_channel", 0)


def test_push_returns_what_the_dashboard_shows_at_recorded_precision():
    ecu = ("ecu", {"rpm": "rpm", "lambda": "λ"})
    wb = ("wb", {"lambda": "λ"})
    pipeline = Pipeline(VehicleConfig(lambda_delay_ms=0), [ecu, wb])
    shown = pipeline.push(
        Block("ecu", np.array([0.0]), {"rpm": np.array([3000.1]), "lambda": np.array([1.0])})
    )
    assert set(shown.columns) == {"rpm"}  # the wideband owns lambda
    assert shown.columns["rpm"][0] == np.float32(3000.1)
    assert channel_owners([ecu, wb])["lambda"] == "wb"


def test_to_recorded_precision_is_idempotent():
    b = Block("x", np.array([0.0, 0.01]), {"v": np.array([0.1, 1 / 3])})
    once = to_recorded_precision(b)
    np.testing.assert_array_equal(to_recorded_precision(once).columns["v"], once.columns["v"])


def test_bin_log_of_a_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SourceError, match="does not exist"):
        bin_log(tmp_path / "nope.dynolog", VehicleConfig())


ELM_GROUPS = {
    "rpm": "rpm",
    "map_kpa": "kPa",
    "tps_pct": "%",
    "lambda": "λ",
    "clt_c": "°C",
    "spark_deg": "deg",
    "lambda_target": "λ",
}


def _polled_in_two_groups(seconds: float) -> list[Block]:
    """An ELM327 asking for its PIDs in two requests: one block per group, alternating.

    Throttle stabs every 1.5 s give accel/decel rejects and holdoffs, which depend on
    the order the rows reach the filters in.
    """
    t = np.arange(0, seconds, 0.02)
    rpm = 1500 + 2500 * (1 + np.sin(t * 0.7))
    map_kpa = 30 + 35 * (1 + np.sin(t * 0.31))
    tps = np.clip(map_kpa - 20, 3, 100) + 25.0 * ((t % 1.5) < 0.2)
    lam = 0.9 + 0.02 * np.sin(t * 5)
    engine = Block(
        "elm",
        t,
        {
            "rpm": rpm,
            "map_kpa": map_kpa,
            "tps_pct": tps,
            "lambda": lam,
            "clt_c": np.full(t.size, 90.0),
        },
    )
    timing = Block(
        "elm", t + 0.01, {"spark_deg": 20 + t % 3, "lambda_target": np.full(t.size, 0.9)}
    )
    out: list[Block] = []
    for i in range(t.size):
        out += [engine.slice(i, i + 1), timing.slice(i, i + 1)]
    return out


def test_a_source_with_two_channel_sets_replays_to_the_live_grid(tmp_path: Path):
    """The ELM327 QA run: live binned 0 and its replay 5, with other reject counts.

    The recording keeps each channel set for 250 ms per record, so a replay hands over
    a quarter second of one group before the same quarter second of the other; the
    rows must still reach the filters as they did live, in time order.
    """
    cfg = VehicleConfig(lambda_delay_ms=90)
    declared = [("elm", ELM_GROUPS)]
    blocks = _polled_in_two_groups(12)
    live = Pipeline(cfg, declared)
    out = tmp_path / "elm.dynolog"
    header = LogHeader(created_at=0.0, sources={"elm": {"uri": "elm327:x", "channels": ELM_GROUPS}})
    with LogWriter(out, header, clock=lambda: 0.0) as writer:
        for block in blocks:
            writer.write_block(to_recorded_precision(block))
            live.push(block)
    live.flush()
    rebuilt = bin_log(out, cfg)

    rejects = live.rejects()
    assert live.grid.samples_binned > 100
    assert rejects["accel_enrich"] and rejects["transient_holdoff"]
    assert live.grid.samples_binned + sum(rejects.values()) == len(blocks)
    assert rebuilt.rejects() == rejects
    assert_same_grid(rebuilt.grid.to_arrays(), live.grid.to_arrays())
