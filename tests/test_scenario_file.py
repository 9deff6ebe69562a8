"""Routine files (``dynoai sim --scenario FILE.toml``): parsing, physics setup, errors, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.scenario_file import ScenarioFileError, load_scenario, parse_scenario
from sim.scenarios import SteadyHold, TipIn, WotPull, transition_s

ROUTINES = Path(__file__).resolve().parents[1] / "bench" / "routines"

ISSUE_EXAMPLE = """
name = "my routine"
[[segment]]
kind = "idle"
seconds = 60
[[segment]]
kind = "wot_pull"
rpm_from = 2000
rpm_to = 5500
[[segment]]
kind = "cool_down"
seconds = 60
[[segment]]
kind = "steady_hold"
rpm = 3000
map_kpa = [50, 60, 70, 80]
hold_s = 3
[[segment]]
kind = "part_throttle_sweep"
map_kpa = 60
rpm_from = 1500
rpm_to = 5000
[[segment]]
kind = "tip_in"
rpm = 3000
map_from = 45
map_to = 85
hold_s = 2
[[segment]]
kind = "cruise"
seconds = 60
"""


def test_issue_example_parses_into_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(ISSUE_EXAMPLE)
    scenario = load_scenario(path)
    kinds = [s.kind for s in scenario.segments]
    assert kinds == [
        "idle", "wot_pull", "cool_down", "steady_hold", "part_throttle_sweep", "tip_in", "cruise"
    ]  # fmt: skip
    hold = scenario.segments[3]
    assert isinstance(hold, SteadyHold) and hold.map_kpa_steps == (50.0, 60.0, 70.0, 80.0)


def test_setup_comes_from_where_the_previous_test_left_the_engine() -> None:
    doc = {
        "segment": [
            {"kind": "steady_hold", "rpm": 3000, "map_kpa": [60], "hold_s": 3},
            {"kind": "steady_hold", "rpm": 3500, "map_kpa": [60], "hold_s": 3},
            {"kind": "tip_in", "rpm": 2000, "map_from": 45, "map_to": 85},
        ]
    }
    first, second, third = parse_scenario(doc, "r").segments
    assert isinstance(first, SteadyHold) and isinstance(second, SteadyHold)
    assert isinstance(third, TipIn)
    # riding up from idle to 3000 takes longer than stepping 3000 -> 3500
    assert first.settle_s == pytest.approx(transition_s("vtwin", None, 3000.0))
    assert second.settle_s == pytest.approx(transition_s("vtwin", 3000.0, 3500.0))
    assert second.settle_s is not None and first.settle_s is not None
    assert second.settle_s < first.settle_s
    # braking down 3500 -> 2000 at the absorber's decel rate, plus settling
    assert third.settle_s == pytest.approx(1500.0 / 700.0 + 2.0)


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ({"kind": "warp"}, "segment 1: kind: 'warp' is not one of"),
        ({"kind": "idle"}, "segment 1 (idle): seconds: missing"),
        ({"kind": "idle", "seconds": 10, "rpm": 3}, "segment 1 (idle): rpm: unknown key"),
        ({"kind": "wot_pull", "rpm_from": 4000, "rpm_to": 3000}, "rpm_to: 3000 must be above"),
        ({"kind": "wot_pull", "rpm_from": "2k", "rpm_to": 3000}, "rpm_from: '2k' is not a number"),
        ({"kind": "steady_hold", "rpm": 3000, "map_kpa": []}, "map_kpa: the list is empty"),
        ({"kind": "steady_hold", "rpm": 3000, "map_kpa": [50, 900]}, "map_kpa: 900 is outside"),
        ({"kind": "tip_in", "rpm": 3000, "map_from": 80, "map_to": 50}, "map_to: 50 must be above"),
        ({"kind": "cool_down", "seconds": -5}, "seconds: -5 is outside"),
    ],
)
def test_bad_segment_names_segment_and_key(segment: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario({"segment": [segment]}, "r.toml")


@pytest.mark.parametrize(
    ("vehicle", "segment", "message"),
    [
        (
            "vtwin",
            {"kind": "wot_pull", "rpm_from": 2000, "rpm_to": 19000},
            "segment 1 (wot_pull): rpm_to: 19000 is outside 500..6000 rpm "
            "(the vtwin's rev limit is 6000 rpm)",
        ),
        (
            "car",
            {"kind": "wot_pull", "rpm_from": 3000, "rpm_to": 7500},
            "rpm_to: 7500 is outside 500..7200 rpm (the car's rev limit is 7200 rpm)",
        ),
        (
            "vtwin",
            {"kind": "steady_hold", "rpm": 3000, "map_kpa": [250, 300]},
            "segment 1 (steady_hold): map_kpa: 250 is outside 10..100.8 kPa (the vtwin is "
            "naturally aspirated: MAP tops out at the barometer, 100.8 kPa)",
        ),
        (
            "vtwin",
            {"kind": "tip_in", "rpm": 3000, "map_from": 45, "map_to": 120},
            "segment 1 (tip_in): map_to: 120 is outside 10..100.8 kPa (the vtwin is naturally",
        ),
        (
            "vtwin",
            {"kind": "steady_hold", "rpm": 400, "map_kpa": [50]},
            "segment 1 (steady_hold): rpm: 400 is outside 500..6000 rpm (the vtwin model "
            "starts at 500 rpm)",
        ),
        (
            "vtwin",
            {"kind": "map_ramps", "rpm": [4500, 6500], "map_kpa": [50, 60]},
            "segment 1 (map_ramps): rpm: 6500 is outside 500..6000 rpm",
        ),
    ],
)
def test_a_value_the_engine_cannot_reach_names_segment_key_and_the_vehicles_limit(
    vehicle: str, segment: dict[str, object], message: str
) -> None:
    # QA: a wot_pull to 19000 rpm and a hold at 250-300 kPa on the naturally aspirated
    # V-twin ran (the engine simply never got there), making the routine meaningless
    with pytest.raises(ScenarioFileError) as info:
        parse_scenario({"segment": [segment]}, "r.toml", vehicle)
    assert message in str(info.value)


def test_the_limits_are_the_vehicles_own() -> None:
    pull = {"kind": "wot_pull", "rpm_from": 3000, "rpm_to": 7000}
    (seg,) = parse_scenario({"segment": [pull]}, "r.toml", "car").segments
    assert isinstance(seg, WotPull)
    with pytest.raises(ScenarioFileError, match="the vtwin's rev limit is 6000 rpm"):
        parse_scenario({"segment": [pull]}, "r.toml", "vtwin")
    hold = {"kind": "steady_hold", "rpm": 3000, "map_kpa": [100]}  # WOT on a dyno at sea level
    assert parse_scenario({"segment": [hold]}, "r.toml", "vtwin").segments


@pytest.mark.parametrize(
    ("named", "runs_on", "message"),
    [
        ("spaceship", "vtwin", "r.toml: vehicle: 'spaceship' is not a vehicle (known: vtwin, car)"),
        (3, "vtwin", "r.toml: vehicle: 3 is not a vehicle (known: vtwin, car)"),
        (
            "car",
            "vtwin",
            "r.toml: vehicle: the routine is for the car, the simulator runs the vtwin",
        ),
    ],
)
def test_the_vehicle_key_names_a_preset_and_the_one_it_runs_on(
    named: object, runs_on: str, message: str
) -> None:
    # QA: vehicle = "spaceship" was read and ignored
    doc = {"vehicle": named, "segment": [{"kind": "idle", "seconds": 5}]}
    with pytest.raises(ScenarioFileError) as info:
        parse_scenario(doc, "r.toml", runs_on)
    assert str(info.value).startswith(message)
    assert parse_scenario({**doc, "vehicle": runs_on}, "r.toml", runs_on).segments


def test_bad_documents(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="needs at least one"):
        parse_scenario({"name": "x"}, "r.toml")
    with pytest.raises(ScenarioFileError, match="segments: unknown key"):
        parse_scenario({"segments": []}, "r.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ScenarioFileError, match="not valid TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioFileError, match="not found"):
        load_scenario(tmp_path / "missing.toml")


@pytest.mark.parametrize("path", sorted(ROUTINES.glob("*.toml")), ids=lambda p: p.stem)
def test_expert_routines_load_and_say_who_runs_them(path: Path) -> None:
    vehicle = "car" if path.stem.startswith("car") else "vtwin"
    scenario = load_scenario(path, vehicle)
    assert scenario.description
    assert path.read_text().startswith("# Who:")
    assert any(isinstance(s, WotPull) for s in scenario.segments)
    assert 3.0 < scenario.duration_s(vehicle) / 60.0 < 20.0


def test_cli_runs_a_routine_and_rejects_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "r.toml"
    good.write_text(ISSUE_EXAMPLE)
    out = tmp_path / "r.dynolog"
    cmd = [sys.executable, "-m", "dynoai_tui.cli", "sim", "--out", str(out), "--duration", "30"]
    done = subprocess.run([*cmd, "--scenario", str(good)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[[segment]]\nkind = "tip_in"\nrpm = 3000\nmap_from = 45\n')
    done = subprocess.run(
        [*cmd, "--scenario", str(bad), "--overwrite"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"dynoai: error: {bad}: segment 1 (tip_in): map_to: missing"
    ]
    far = tmp_path / "far.toml"
    far.write_text('[[segment]]\nkind = "wot_pull"\nrpm_from = 2000\nrpm_to = 19000\n')
    done = subprocess.run(
        [*cmd, "--scenario", str(far), "--overwrite"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"dynoai: error: {far}: segment 1 (wot_pull): rpm_to: 19000 is outside 500..6000 rpm "
        "(the vtwin's rev limit is 6000 rpm)"
    ]


def test_row_sweeps_segment_runs_its_rows_in_the_given_order() -> None:
    from sim.scenarios import RowSweeps, end_rpm

    seg = {"kind": "row_sweeps", "map_kpa": [70, 50, 75], "rpm_from": 1875, "rpm_to": 4750}
    (rows,) = parse_scenario({"segment": [{**seg, "rate_rpm_s": 300}]}).segments
    assert isinstance(rows, RowSweeps) and rows.map_kpa_steps == (70.0, 50.0, 75.0)
    assert rows.row_s == pytest.approx(2875.0 / 300.0)
    assert end_rpm(rows) == 4750.0  # three legs: up, down, up
    with pytest.raises(ScenarioFileError, match=r"segment 1 \(row_sweeps\): rate_rpm_s"):
        parse_scenario({"segment": [{**seg, "rate_rpm_s": 5000}]})


def test_map_ramps_segment_bounds_its_cells_and_names_bad_keys() -> None:
    from sim.scenarios import MapRamps, end_rpm, start_rpm

    seg = {
        "kind": "map_ramps",
        "rpm": [4500, 4000, 3500],
        "map_kpa": [50, 55, 60, 65, 70, 75, 80, 85, 95],
        "map_top": 95.5,
        "lead": [5500, 5000],
    }
    (walk,) = parse_scenario({"segment": [seg]}).segments
    assert isinstance(walk, MapRamps)
    # each cell bounded half way to its neighbours, the top at map_top, the lead in the top cell
    assert walk.map_edges == (47.5, 52.5, 57.5, 62.5, 67.5, 72.5, 77.5, 82.5, 90.0, 95.5)
    assert walk.cell_s == 1.1 and walk.first_down and walk.lead_kpa == pytest.approx(92.75)
    assert start_rpm(walk) == 5500.0 and end_rpm(walk) == 3500.0
    for bad, message in (
        ({"map_kpa": [60, 50]}, r"map_kpa: needs at least two cells, ascending"),
        ({"map_top": 89.0}, r"map_top: 89 must be above 90"),
        ({"first": "sideways"}, r"first: 'sideways' must be"),
        ({"first": "up"}, r"lead: needs first = \"down\""),
        ({"cell_s": 0.0}, r"cell_s: 0.0 is outside"),
        ({"turn": 1}, r"turn: unknown key"),
    ):
        with pytest.raises(ScenarioFileError, match=r"segment 1 \(map_ramps\): " + message):
            parse_scenario({"segment": [{**seg, **bad}]})
