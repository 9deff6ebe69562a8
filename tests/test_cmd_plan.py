import json
from pathlib import Path

import pytest

from core.coverage.axes import TableAxes
from core.coverage.grid import CoverageGrid
from core.coverage.regions import DEFAULT_REGIONS
from core.coverage.report import vehicle_coverage_csv, vehicle_coverage_json, vehicle_coverage_text
from core.store import VehicleStore
from dynoai_tui.cli import main

AXES = TableAxes.default()


@pytest.fixture()
def store_dir(tmp_path):
    store = VehicleStore(tmp_path)
    grid = CoverageGrid(AXES)
    grid.hits[:, :4] = 12  # low rpm covered
    store.add_run("bike", "r1", grid)
    return tmp_path


def test_plan_json_contract(store_dir, capsys):
    assert (
        main(
            [
                "constraints",
                "--vehicle",
                "bike",
                "--data-dir",
                str(store_dir),
                "--set",
                "max_rpm=5500",
                "--set",
                "environment=dyno",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["plan", "--vehicle", "bike", "--data-dir", str(store_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "dynoai.plan/1" and data["runs"] == 1
    s = data["suggestions"][0]
    assert set(s) >= {
        "test_type",
        "description",
        "rpm_range",
        "map_range",
        "minutes",
        "expected_gain",
        "efficiency",
        "band",
        "cells",
    }
    assert s["priority"] == 1 and s["efficiency"] == 1.0 and s["band"] == "high"
    assert all(len(c) == 2 and c[1] >= 4 for c in s["cells"])  # covered columns not suggested
    assert all(x["rpm_range"][1] <= 5500 for x in data["suggestions"])
    reasons = {f["test_type"]: f["reason"] for f in data["filtered"]}
    assert reasons["street_cruise"].startswith("environment dyno")
    assert data["targets"] and data["instruction"]
    assert data["prediction_error_pct"] is None
    assert data["constraints"] == {"max_rpm": 5500.0, "environment": "dyno", "lug_rpm": 1500.0}


def test_plan_text_and_errors(store_dir, capsys):
    assert main(["plan", "--vehicle", "bike", "--data-dir", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "vehicle bike" in out and "from idle:" in out
    # a vehicle with no runs gets the opening plan (issue 11), saying so
    assert main(["plan", "--vehicle", "car", "--data-dir", str(store_dir)]) == 0
    assert "vehicle car has no runs yet: opening plan" in capsys.readouterr().out
    assert (
        main(
            [
                "constraints",
                "--vehicle",
                "bike",
                "--data-dir",
                str(store_dir),
                "--set",
                "max_map_kpa=lots",
            ]
        )
        == 2
    )
    assert "constraints.max_map_kpa" in capsys.readouterr().err
    assert (
        main(["constraints", "--vehicle", "bike", "--data-dir", str(store_dir), "--set", "oops"])
        == 2
    )


def test_vehicle_reset_and_list(store_dir, capsys):
    assert main(["vehicle", "list", "--data-dir", str(store_dir)]) == 0
    assert "bike\t1 run(s)" in capsys.readouterr().out
    assert main(["vehicle", "reset", "bike", "--yes", "--data-dir", str(store_dir)]) == 0
    assert "removed 1 run(s)" in capsys.readouterr().out
    assert VehicleStore(store_dir).cumulative_grid("bike", AXES).hits.sum() == 0
    assert main(["vehicle", "reset", "ghost", "--yes", "--data-dir", str(store_dir)]) == 2


def test_vehicle_coverage_report():
    grid = CoverageGrid(AXES)
    # the idle / low-MAP region, covered: 10 hits, 2 s settled, lambda 0.9 +- 0.01
    region = (slice(0, 5), slice(0, 4))
    grid.hits[region], grid.dwell_s[region], grid.lam_weight[region] = 10, 2.0, 10.0
    grid.lam_wsum[region], grid.lam_wsum2[region] = 9.0, 10 * (0.9**2 + 0.01**2)
    text = vehicle_coverage_text("bike", grid, DEFAULT_REGIONS, runs=2, stale_runs=1)
    assert "idle_low_map" in text and "100.0 %" in text and "--rebuild" in text
    assert "P1" in text.split("gaps by priority")[1].splitlines()[1]
    data = vehicle_coverage_json("bike", grid, DEFAULT_REGIONS, runs=2)
    regions = {r["name"]: r for r in data["regions"]}
    assert regions["idle_low_map"]["covered_pct"] == 100.0 and regions["tip_in"]["covered"] == 0
    assert data["gaps"][0]["priority"] == 1 and data["priority"][0][0] == 2
    csv_text = vehicle_coverage_csv(grid, DEFAULT_REGIONS)
    assert csv_text.splitlines()[0].endswith(",priority") and csv_text.splitlines()[1].endswith(
        ",2"
    )


def test_plan_with_every_cell_trusted_says_so(tmp_path, capsys):
    # The text said "nothing left to gain under the current constraints" however the plan
    # came to be empty; it now gives the planner's own verdict.
    store = VehicleStore(tmp_path)
    grid = CoverageGrid(AXES)
    grid.hits[:] = 100
    grid.dwell_s[:] = 2.0
    grid.lam_weight[:] = 100.0
    grid.lam_wsum[:] = 90.0
    grid.lam_wsum2[:] = 81.0
    store.add_run("bike", "r1", grid)
    assert main(["plan", "--vehicle", "bike", "--data-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # nothing left to cover: the session's WOT pull, for the dyno sheet, is all there is
    assert [s["test_type"] for s in doc["suggestions"]] == ["wot_pull"], doc["suggestions"]
    assert doc["instruction"].startswith("covered as far as this engine reaches: now WOT pull")
    assert doc["instruction"].endswith("for the dyno sheet")


@pytest.mark.parametrize("vehicle", ["car", "bike"])
def test_the_targets_and_the_line_lead_where_the_first_test_begins(store_dir, capsys, vehicle):
    # QA, `dynoai plan --vehicle NEW`: #1 "hold 1000 rpm: MAP 40 35 30 kPa" over "target
    # cells (rpm/kPa): 2000/50, 2500/50, ..." and "from idle: go to 2000 rpm, 50 kPa"
    assert main(["plan", "--vehicle", vehicle, "--data-dir", str(store_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    top = data["suggestions"][0]
    first = data["targets"][0]
    assert [first["map_index"], first["rpm_index"]] in top["cells"], (top, data["targets"])
    lead = [t for t in data["targets"] if [t["map_index"], t["rpm_index"]] in top["cells"]]
    assert data["targets"][: len(lead)] == lead  # all of its cells come before any other
    assert data["instruction"] == f"go to {first['rpm']:.0f} rpm, {first['map_kpa']:.0f} kPa"
    if top["test_type"] == "idle_low_map":  # a hold: it begins at its first MAP step
        assert top["description"].split("MAP ")[1].startswith(f"{first['map_kpa']:.0f} ")


def test_plan_text_shows_only_the_checked_prediction_errors(store_dir, capsys):
    assert main(["plan", "--vehicle", "car", "--data-dir", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "after the fact" not in out and "predictions checked: none yet" in out


@pytest.mark.parametrize("setting", ["max_rpm=100", "max_map_kpa=10"])
def test_a_limit_under_idle_is_refused_in_one_line(store_dir, capsys, setting):
    # QA: both were taken (rc 0), and the plan still offered idle and a street cruise
    args = ["constraints", "--vehicle", "bike", "--data-dir", str(store_dir), "--set", setting]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and setting.split("=")[0] in err[0] and "no test could run" in err[0]


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        # an unset shell variable (max_rpm=$REDLINE) cleared the rev limit, rc 0
        ("max_rpm=", "empty value (to clear the limit: max_rpm=none)"),
        ("max_rpm=5e9", "5e+09 is beyond any engine's (at most 20000)"),
        ("max_map_kpa=900", "900 is beyond any engine's (at most 400)"),
    ],
)
def test_an_empty_or_impossible_limit_is_refused_and_the_saved_one_kept(
    store_dir, capsys, setting, needle
):
    base = ["constraints", "--vehicle", "bike", "--data-dir", str(store_dir)]
    assert main([*base, "--set", "max_rpm=5800", "--set", "max_map_kpa=100"]) == 0
    capsys.readouterr()
    assert main([*base, "--set", setting]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "max_rpm                5800" in out and "max_map_kpa            100" in out


def test_constraints_on_a_new_name_warn_that_they_create_it(store_dir, capsys):
    # QA: a typo (fxx for fx) saved the limit under a new vehicle without a word
    args = ["constraints", "--vehicle", "bkie", "--data-dir", str(store_dir)]
    # a bad value creates nothing: its error is the one line (the warning that the
    # constraints create the vehicle came first, as if they had)
    assert main([*args, "--set", "max_rpm=abc"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["dynoai: error: constraints.max_rpm: 'abc' is not a number"], err
    assert main([*args, "--set", "max_rpm=5000"]) == 0
    err = "\n".join(capsys.readouterr().err.splitlines())
    assert "no vehicle named 'bkie' before (known: bike)" in err and "check the name" in err
    assert main([*args, "--set", "max_rpm=5100"]) == 0  # it exists now: no warning
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("settings", "limits"),
    [(["min_rpm=6000"], "min_rpm 6000"), (["min_map_kpa=300"], "min_map_kpa 300")],
)
def test_constraints_that_leave_no_cell_say_so_instead_of_offering_tests(
    store_dir, capsys, settings, limits
):
    # QA: with min_rpm 6000 (over the V-twin's redline) and min_map_kpa 300 the plan
    # offered an idle in neutral and "street cruise 5 min" with gain 305
    base = ["--vehicle", "bike", "--data-dir", str(store_dir)]
    sets = [a for s in settings for a in ("--set", s)]
    assert main(["constraints", *base, *sets]) == 0
    capsys.readouterr()
    assert main(["plan", *base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["suggestions"] == [], doc["suggestions"]
    assert doc["instruction"] == (
        f"no test reaches a cell inside the constraints ({limits}): check them"
    )


def test_the_opening_plan_leads_with_idle_work_worth_its_time(store_dir, capsys):
    # QA, `dynoai plan --vehicle NEW`: "idle in neutral 30 s" at 0.02 sat fifth, over
    # the P1 walk and holds
    from core.plan.simplan import OPENING_MIN_EFF

    assert main(["plan", "--vehicle", "NEW", "--data-dir", str(store_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["opening"]
    rows = data["suggestions"]
    lead = next(i for i, s in enumerate(rows) if s["test_type"] != "idle_low_map")
    assert lead >= 1  # it opens with idle / low-MAP work
    assert all(s["efficiency"] >= OPENING_MIN_EFF for s in rows[:lead]), rows[:lead]
    assert any(s["description"].startswith("idle in neutral") for s in rows[lead:])


def test_the_text_plan_says_which_target_cells_are_the_first_tests(tmp_path, capsys):
    # QA: "target cells (rpm/kPa): 1000/40, 1000/35, 1000/30, 2000/50, 2500/50" under
    # "1 hold 1000 rpm: MAP 40 35 30 kPa": the last two read as part of test 1
    args = ["plan", "--vehicle", "newbike", "--data-dir", str(tmp_path)]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = {(r, c) for r, c, _ in doc["suggestions"][0]["expected_hits"]}
    mine = [t for t in doc["targets"] if (t["map_index"], t["rpm_index"]) in first]
    rest = [t for t in doc["targets"] if t not in mine]
    assert mine and rest  # the opening plan has both
    assert main(args) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("target"))
    cells = ", ".join(f"{t['rpm']:.0f}/{t['map_kpa']:.0f}" for t in mine)
    then = ", ".join(f"{t['rpm']:.0f}/{t['map_kpa']:.0f}" for t in rest)
    assert line == f"target cells (rpm/kPa): {cells} (test 1); then {then}"


def test_plan_of_a_name_not_in_the_store_lists_the_known_ones(store_dir, capsys):
    # QA: --vehicle fxbbb (a typo of fxbb) printed an opening plan, exit 0, silently
    assert main(["plan", "--vehicle", "bkie", "--data-dir", str(store_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["opening"] is True  # a new bike's opening plan is a feature
    assert err == (
        "dynoai: warning: no vehicle named 'bkie' yet (known: bike): the opening plan of a "
        "new vehicle; check the name if you meant one of those\n"
    )
    assert main(["plan", "--vehicle", "bike", "--data-dir", str(store_dir)]) == 0
    assert capsys.readouterr().err == ""


BAD_PRIORS = ("missing", "not-a-dataset")
TUNE = "tests/data/tunes/speeduino.msq"
LOG = "tests/data/tunerstudio.csv"


@pytest.mark.parametrize("bad", BAD_PRIORS)
@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--vehicle", "bike"),
        ("constraints", "--vehicle", "bike"),
        ("log", "--duration", "0.2", "--out", "x.dynolog"),
        ("replay", LOG, "--headless"),
        ("coverage", LOG),
        ("report", LOG),
        ("ve", "--tune", TUNE, "--log", LOG),
    ],
)
def test_priors_that_are_no_fleet_dataset_are_one_error_line(
    store_dir, capsys, monkeypatch, argv, bad
):
    # QA: plan --vehicle fxbb --priors /nonexistent: exit 0, "fleet priors not applied"
    # (fxbb had learned fits of its own, so the path was never looked at); without a
    # vehicle every other command ignored it
    from core.plan.learning import Calibration, TestFit

    root = Path(__file__).parent.parent
    monkeypatch.chdir(store_dir)
    (store_dir / "not-a-dataset").mkdir()
    VehicleStore(store_dir).set_calibration(
        "bike", Calibration(fits={"wot_pull": TestFit(tests=3)})
    )
    argv = tuple(str(root / a) if a in (TUNE, LOG) else a for a in argv)
    code = main([*argv, "--data-dir", str(store_dir), "--priors", str(store_dir / bad)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and not (store_dir / "x.dynolog").exists()
    assert err.startswith(f"dynoai: error: --priors: {store_dir / bad} ") and err.count("\n") == 1
    assert "dynoai export --parquet DIR" in err
