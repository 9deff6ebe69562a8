"""Dyno sheet (core.dynosheet): corrections, curves, peaks, and `dynoai report`."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from core.dynosheet import (
    DynoSheetBuilder,
    SheetTap,
    correction_for,
    pull_sheet,
    sae_j1349_factor,
    std_factor,
)
from core.frames import Block
from core.session import Session
from core.source import SourceEvent
from core.vehicle import VehicleConfig
from drivers.registry import create_sources
from dynoai_tui.commands.common import make_tracker
from tests.test_cli import dynoai

INHG_KPA = 3.386388640341


def f_to_c(f: float) -> float:
    return (f - 32.0) * 5.0 / 9.0


def test_factors_are_one_at_their_reference_conditions():
    assert sae_j1349_factor(99.0, 25.0) == pytest.approx(1.0, abs=1e-9)
    assert std_factor(101.325, 15.55) == pytest.approx(1.0, abs=2e-4)


@pytest.mark.parametrize(
    ("temp_f", "rh", "baro_inhg", "expected"),
    [(85.0, 85.0, 28.85, 1.1005), (55.0, 35.0, 30.10, 0.994)],
)
def test_std_factor_matches_the_published_worked_example(temp_f, rh, baro_inhg, expected):
    """Dynomite Dynamometer, 'Corrected Horsepower' (J607 example: 400 hp x 1.1005, 442 x 0.994)."""
    corr = correction_for("std", baro_inhg * INHG_KPA, f_to_c(temp_f), rh)
    assert corr.factor == pytest.approx(expected, abs=0.002)
    assert corr.sae_factor is not None and corr.sae_factor < corr.factor  # J1349 is 25 C based


def test_missing_inputs_are_said():
    assert correction_for("sae", None, 30.0, None).describe().startswith("uncorrected")
    corr = correction_for("sae", 100.0, None, None)
    assert "25 °C assumed" in corr.note and "no humidity" in corr.note
    assert correction_for("none", 95.0, 35.0, 50.0).factor == 1.0


def test_the_intake_temperature_is_said_in_degrees_celsius():
    # QA: the sheet, the report and the PNG said "32.4 C" where every gauge says "°C"
    said = correction_for("sae", 100.8, 32.4, None).describe()
    assert "100.8 kPa, 32.4 °C, dry air" in said, said


def synthetic_pull(n: int = 800, torque_only: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 8.0, n)
    rpm = np.linspace(2500.0, 6000.0, n)
    true_torque = 150.0 - ((rpm - 3500.0) / 1000.0) ** 2 * 8.0  # peak 150 N·m at 3500 rpm
    torque = true_torque + rng.normal(0, 2.0, n)
    cols = {
        "t": t,
        "rpm": rpm,
        "torque_nm": torque,
        "lambda": np.full(n, 0.87),
        "baro_kpa": np.full(n, 99.0),
        "iat_c": np.full(n, 25.0),
        "drum_speed_kph": rpm * 0.03,
    }
    if not torque_only:
        cols["power_hp"] = true_torque * rpm * 2 * np.pi / 60 / 745.699872
    return cols


def test_the_dyno_weather_module_temperature_wins_over_a_heat_soaked_iat():
    # A dyno corrects with its weather station (PROTOCOLS §7: "(DWRT ATMO) Temperature
    # 1"), not the ECU's intake sensor that reads 50 °C after a few pulls; the IAT is
    # the fallback when no weather module is logged.
    cols = synthetic_pull()
    cols["iat_c"] = np.full(cols["t"].size, 50.0)
    soaked = pull_sheet(1, cols)
    cols["ambient_c"] = np.full(cols["t"].size, 25.0)
    room = pull_sheet(1, cols)
    assert soaked is not None and room is not None
    assert soaked.correction.air_temp_c == pytest.approx(50.0)
    assert room.correction.air_temp_c == pytest.approx(25.0)
    assert room.correction.factor == pytest.approx(1.0, abs=1e-6)  # J1349's 99 kPa, 25 °C


def test_curves_peaks_and_derived_power():
    sheet = pull_sheet(1, synthetic_pull(torque_only=True), smoothing_rpm=250)
    assert sheet is not None
    nm, nm_rpm = sheet.peak("torque_nm")
    assert nm == pytest.approx(150.0, abs=1.5) and nm_rpm == pytest.approx(3500, abs=200)
    hp, hp_rpm = sheet.peak("power_hp")
    expected = max(
        (150 - ((r - 3500) / 1000) ** 2 * 8) * r * 2 * math.pi / 60 / 745.699872
        for r in range(2500, 6001, 10)
    )
    assert hp == pytest.approx(expected, rel=0.02)
    assert sheet.correction.factor == pytest.approx(1.0, abs=1e-6)  # J1349 reference day
    assert np.nanmax(np.abs(np.diff(sheet.rpm))) == 50.0
    assert sheet.afr[0] == pytest.approx(0.87 * 14.7)
    assert sheet.drum_kph[10] == pytest.approx(sheet.rpm[10] * 0.03, rel=0.01)
    raw = pull_sheet(1, synthetic_pull(torque_only=True), smoothing_rpm=0)
    assert raw is not None

    def residual(curve):
        truth = 150.0 - ((curve.rpm - 3500.0) / 1000.0) ** 2 * 8.0
        return float(np.sqrt(np.nanmean((curve.torque_nm - truth)[5:-5] ** 2)))

    assert residual(sheet) < 0.7 * residual(raw)


def test_builder_cuts_a_sheet_at_each_wot_pull_stop_only():
    builder = DynoSheetBuilder()
    cols = synthetic_pull()
    block = Block("fused", cols["t"], {k: v for k, v in cols.items() if k != "t"})
    sweep = SourceEvent("pulls", "pull_stop", 8.0, "", {"test_type": "part_throttle_sweep"})
    assert builder.feed(block, [sweep]) == []
    wot = SourceEvent("pulls", "pull_stop", 7.0, "", {"test_type": "wot_pull", "t_start": 1.0})
    made = builder.feed(Block("fused", np.empty(0), {}), [wot])
    assert len(made) == 1 and builder.pulls == tuple(made)
    assert made[0].t_start >= 1.0 and made[0].t_stop <= 7.0
    assert "Pull 1:" in made[0].summary_line() and "hp @" in made[0].summary_line()


def test_a_pull_marked_by_hand_over_a_detected_one_counts_once_and_one_beside_it_is_kept():
    from core.plan.tracker import VehicleTracker

    cfg = VehicleConfig()
    inner = VehicleTracker(
        axes=cfg.axes, hit_target=cfg.hit_target, regions=cfg.regions,
        constraints=cfg.constraints, store=None, vehicle="v", run_id="r", log_path=None,
    )  # fmt: skip
    tap = SheetTap(inner, DynoSheetBuilder())
    cols = synthetic_pull()  # 2500 -> 6000 rpm in 8 s
    block = Block("fused", cols["t"], {k: v for k, v in cols.items() if k != "t"})
    wot = SourceEvent("pulls", "pull_stop", 7.0, "", {"test_type": "wot_pull", "t_start": 1.0})
    tap.sheet.feed(block, [wot])  # found at WOT (as pull 1)
    assert tap.manual_pull(2.0, 6.0) == "Pull stopped: already counted as pull 1, found at WOT"
    assert inner.manual_pulls == 0
    later = Block("fused", cols["t"] + 20.0, {k: v for k, v in cols.items() if k != "t"})
    tap.sheet.feed(later)  # no throttle: not found
    outcome = tap.manual_pull(20.0, 28.0)
    assert outcome.startswith("Pull stopped: kept as pull 2, "), outcome
    assert inner.manual_pulls == 1 and len(tap.sheet.pulls) == 2
    inner.restart_run()  # a replay seek: counted again from its start
    assert inner.manual_pulls == 0


def test_simulated_pulls_give_plausible_sheets_through_the_engine():
    """The simulator's V-twin (sim/vehicles.py) on the engine path, with a SheetTap tracker."""
    cfg = VehicleConfig()
    builder = DynoSheetBuilder()
    tracker = SheetTap(make_tracker(cfg, None, run_id="t", log_path=None), builder)
    sources = create_sources(["sim:vtwin?scenario=pulls&seed=2&speed=max&duration=60"])
    Session(sources, config=cfg, tracker=tracker).run_to_end()
    assert len(builder.pulls) >= 1
    for pull in builder.pulls:
        hp, hp_rpm = pull.peak("power_hp")
        nm, nm_rpm = pull.peak("torque_nm")
        assert hp is not None and nm is not None
        assert hp_rpm is not None and nm_rpm is not None  # a peak has an rpm
        assert 60 < hp < 160 and 100 < nm < 220  # a 1.9 l V-twin at the rear wheel
        assert hp_rpm > nm_rpm  # peak power comes after peak torque
        # P = T x omega holds at the power peak
        i = int(np.nanargmax(pull.power_hp))
        assert pull.power_hp[i] == pytest.approx(
            pull.torque_nm[i] * pull.rpm[i] * 2 * np.pi / 60 / 745.699872, rel=0.03
        )
        assert 0.95 < pull.correction.factor < 1.05


def test_the_png_legend_names_every_pull_and_covers_no_plot():
    """QA: the legend in the power plot's lower right sat on the torque curve."""
    pytest.importorskip("matplotlib")
    from dynoai_tui.commands.sheet_plot import figure

    pulls = [pull_sheet(i, synthetic_pull(), smoothing_rpm=250) for i in (1, 2, 3)]
    fig = figure([p for p in pulls if p is not None], title="t")
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        assert [t.get_text().split(":")[0] for t in legend.get_texts()] == [
            "pull 1",
            "pull 2",
            "pull 3",
        ]
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_ylabel()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


@pytest.fixture(scope="module")
def pulls_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sheet")
    res = dynoai("sim", "--out", "p.dynolog", "--duration", "80", "--seed", "4", cwd=d)
    assert res.returncode == 0, res.stderr
    return d / "p.dynolog"


def test_report_json_contract(pulls_log: Path):
    res = dynoai("report", str(pulls_log), "--format", "json", cwd=pulls_log.parent)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["format"] == "dynoai-dynosheet" and data["version"] == 1
    assert data["correction"] == "sae" and data["smoothing_rpm"] == 250
    pull = data["pulls"][0]
    n = len(pull["rpm"])
    for key in ("power_hp", "torque_nm", "lambda", "afr", "drum_kph"):
        assert len(pull[key]) == n
    assert pull["peak_power_rpm"] in pull["rpm"]
    assert pull["correction"]["inputs"]["baro_kpa"] > 90
    assert pull["correction_factor"] == pull["correction"]["factor"]


def test_report_text_png_html(pulls_log: Path):
    d = pulls_log.parent
    text = dynoai("report", str(pulls_log), "--correction", "std", cwd=d)
    assert text.returncode == 0 and "peak power" in text.stdout and "STD (SAE J607)" in text.stdout
    assert " °C, " in text.stdout and not re.search(r"\d C\b", text.stdout)  # as the gauges
    png = dynoai("report", str(pulls_log), "--format", "png", cwd=d)
    assert png.returncode == 0, png.stderr
    assert (d / "p-sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "replaced" not in png.stderr
    again = dynoai("report", str(pulls_log), "--format", "png", cwd=d)
    assert again.returncode == 0 and "replaced the earlier sheet" in again.stderr  # said so
    page = dynoai("report", str(pulls_log), "--format", "html", "--out", "s.html", cwd=d)
    assert page.returncode == 0
    body = (d / "s.html").read_text()
    assert "data:image/png;base64," in body and "hp @" in body


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("nosuch.dynolog",), "does not exist"),
        (("--vehicle", "nosuch"), "no vehicle named 'nosuch'"),
        ((), "name a log FILE or a --vehicle"),
        (("x.dynolog", "--smoothing", "-5"), "--smoothing"),
    ],
)
def test_report_bad_input_is_one_line_exit_2(tmp_path: Path, args, needle):
    res = dynoai("report", *args, cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr.count("\n") == 1 and needle in res.stderr


@pytest.mark.parametrize("fmt", ["png", "html", "json", "text"])
@pytest.mark.parametrize("where", ["missing", "proc"])
def test_report_out_where_no_file_can_be_made_is_one_line_exit_2(
    pulls_log: Path, tmp_path: Path, fmt: str, where: str
):
    # QA: --out /nonexistent/x.png (and /proc/x.png) was "internal error: FileNotFoundError"
    if where == "proc" and not os.path.isdir("/proc"):
        pytest.skip("no /proc here")
    folder = tmp_path / "nowhere" if where == "missing" else Path("/proc")
    out = folder / f"x.{fmt}"
    res = dynoai("report", str(pulls_log), "--format", fmt, "--out", str(out), cwd=tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.count("\n") == 1 and "internal error" not in res.stderr, res.stderr
    assert f"cannot write --out {out}: directory {folder} " in res.stderr, res.stderr
    assert not out.exists()


def test_a_pull_the_data_ends_in_is_flagged_cut_short():
    cfg = VehicleConfig()
    builder = DynoSheetBuilder()
    tracker = SheetTap(make_tracker(cfg, None, run_id="t", log_path=None), builder)
    # seed 1 pulls: the first WOT pull runs from ~28 s to ~35 s; stop the data at 32 s
    sources = create_sources(["sim:vtwin?scenario=pulls&seed=1&speed=max&duration=32"])
    Session(sources, config=cfg, tracker=tracker).run_to_end()
    assert builder.pulls and builder.pulls[-1].cut_short
    assert "cut short" in builder.pulls[-1].summary_line()
    assert builder.pulls[-1].to_dict()["cut_short"] is True
