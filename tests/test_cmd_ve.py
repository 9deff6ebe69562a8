"""``dynoai ve`` and ``dynoai vehicle set-tune`` end to end, in subprocesses, on the simulator.

The simulator writes its ECU's base tune and the true VE; a steady-state session on that
tune is corrected and the corrected cells are checked against the truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.tune import parse_msq, parse_table_text, read_tune

pytestmark = pytest.mark.slow


def dynoai(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynoai_tui.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ve")
    done = dynoai(
        d, "sim", "--write-tune", "base.msq", "--write-true-ve", "true.csv", "--seed", "6"
    )
    assert done.returncode == 0, done.stderr
    done = dynoai(
        d, "sim", "--tune", "base.msq", "--scenario", "steady", "--duration", "300",
        "--out", "s.dynolog", "--seed", "6",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return d


def test_msq_out_is_closer_to_the_truth_and_only_ve_changed(session: Path) -> None:
    done = dynoai(session, "ve", "--tune", "base.msq", "--log", "s.dynolog", "--out", "new.msq")
    assert done.returncode == 0, done.stderr
    assert "front VE:" in done.stderr and "cells changed" in done.stderr
    assert "wrote new.msq" in done.stderr
    base, new = read_tune(session / "base.msq"), read_tune(session / "new.msq")
    truth = parse_table_text((session / "true.csv").read_text()).values
    truth_rear = parse_table_text((session / "true-rear.csv").read_text()).values
    changed = new.ve.values != base.ve.values
    assert changed.sum() >= 30
    before = np.abs(base.ve.values / truth - 1.0)[changed]
    after = np.abs(new.ve.values / truth - 1.0)[changed]
    assert np.mean(after <= 0.02) >= 0.9
    assert np.mean(after) < 0.5 * np.mean(before)
    assert new.ve_rear is not None
    rear_changed = new.ve_rear.values != base.ve_rear.values  # type: ignore[union-attr]
    assert np.mean(np.abs(new.ve_rear.values / truth_rear - 1.0)[rear_changed] <= 0.02) >= 0.9
    # Front and rear learned different things: the cylinders differ.
    assert not np.array_equal(new.ve.values, new.ve_rear.values)
    np.testing.assert_array_equal(new.target_lambda.values, base.target_lambda.values)  # type: ignore[union-attr]


def test_json_contract_tsv_csv_and_knock(session: Path) -> None:
    done = dynoai(session, "ve", "--tune", "base.msq", "--log", "s.dynolog", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["format"] == "dynoai-ve" and data["cylinder"] == "front"
    assert len(data["ve_new"]) == len(data["map_axis"]) == 16
    assert len(data["ve_new"][0]) == len(data["rpm_axis"]) == 16
    assert {"ve_base", "change_pct", "confidence", "locked", "extrapolated"} <= set(data)
    assert data["summary"]["changed"] >= 30 and "rear" in data and "knock" in data
    tsv = dynoai(session, "ve", "--tune", "base.msq", "--log", "s.dynolog", "--format", "tsv")
    assert tsv.returncode == 0
    blocks = tsv.stdout.split("# rear VE\n")
    assert len(blocks) == 2 and len(blocks[1].splitlines()) == 16
    top_row = [float(v) for v in blocks[1].splitlines()[0].split("\t")]
    assert top_row == data["rear"]["ve_new"][-1]  # highest MAP first
    csv = dynoai(session, "ve", "--tune", "base.msq", "--log", "s.dynolog", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("table,rpm,map_kpa,ve_base,ve_new")
    knock = dynoai(
        session, "ve", "--tune", "base.msq", "--log", "s.dynolog", "--knock", "--format", "json"
    )
    k = json.loads(knock.stdout)
    assert k["summary"]["events"] > 0
    assert min(min(row) for row in k["advice_deg"]) < 0


def test_vehicle_set_tune_then_ve_from_its_runs(session: Path) -> None:
    dd = str(session / "store")
    done = dynoai(
        session, "replay", "s.dynolog", "--vehicle", "bike", "--data-dir", dd, "--headless"
    )
    assert done.returncode == 0, done.stderr
    done = dynoai(session, "vehicle", "set-tune", "bike", "base.msq", "--data-dir", dd)
    assert done.returncode == 0, done.stderr
    assert "grid axes now 16 rpm x 16 MAP" in done.stdout
    done = dynoai(session, "ve", "--vehicle", "bike", "--data-dir", dd, "--out", "v.msq")
    assert done.returncode == 0, done.stderr
    from_cli = parse_msq((session / "v.msq").read_bytes())
    assert from_cli.ve.values.shape == (16, 16)
    # The library call other features use gives the same tables.
    from core.store import VehicleStore
    from core.ve.evidence import correct_vehicle
    from core.vehicle import VehicleConfig

    result = correct_vehicle(VehicleStore(dd), "bike", VehicleConfig())
    np.testing.assert_allclose(result.tables["ve"].ve_new, from_cli.ve.values)
    np.testing.assert_allclose(result.tables["ve_rear"].ve_new, from_cli.ve_rear.values)  # type: ignore[union-attr]
    # The session record keeps the VE table before and after for the fleet export.
    from core.fleet.records_store import get_ve_tables

    kept = get_ve_tables(VehicleStore(dd), "bike")
    assert len(kept) == 1
    (tables,) = kept.values()
    np.testing.assert_allclose(tables["ve_after"], from_cli.ve.values)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tune", "base.msq", "--log", "missing.dynolog"), "missing.dynolog: no such file"),
        (("--log", "s.dynolog"), "no tune to correct: give --tune FILE (a .msq, or a table"),
        (("--tune", "true.csv", "--log", "base.msq"), "base.msq"),
        (("--tune", "s.dynolog", "--log", "s.dynolog"), "s.dynolog"),
        (("--tune", "base.msq"), "give --vehicle V"),
        (("--tune", "base.msq", "--log", "s.dynolog", "--format", "msq"), "needs --out"),
        (
            ("--tune", "base.msq", "--log", "s.dynolog", "--out", "nowhere/v.msq"),
            "cannot write --out nowhere/v.msq: directory ",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(session: Path, args: tuple[str, ...], message: str) -> None:
    done = dynoai(session, "ve", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_knock_advice_into_the_spark_table_reduces_knock(session: Path) -> None:
    done = dynoai(
        session, "ve", "--tune", "base.msq", "--log", "s.dynolog", "--knock", "--out", "k.msq"
    )
    assert done.returncode == 0, done.stderr
    base, advised = read_tune(session / "base.msq"), read_tune(session / "k.msq")
    assert base.spark is not None and advised.spark is not None
    delta = advised.spark.values - base.spark.values
    assert delta.min() <= -1.0 and delta.max() == 0.0
    np.testing.assert_array_equal(advised.ve.values, base.ve.values)
    # The same routine on the advised spark table knocks less.
    done = dynoai(
        session, "sim", "--tune", "k.msq", "--scenario", "steady", "--duration", "300",
        "--out", "k.dynolog", "--seed", "6",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    def events(log: str) -> int:
        out = dynoai(
            session, "ve", "--tune", "base.msq", "--log", log, "--knock", "--format", "json"
        )
        return int(json.loads(out.stdout)["summary"]["events"])

    assert events("k.dynolog") < 0.5 * events("s.dynolog")


def test_knock_msq_needs_a_spark_table(session: Path) -> None:
    done = dynoai(
        session, "ve", "--tune", "true.csv", "--log", "s.dynolog", "--knock", "--out", "x.msq"
    )
    assert done.returncode == 2 and "has no spark table" in done.stderr
