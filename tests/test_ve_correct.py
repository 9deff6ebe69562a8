"""VE correction arithmetic, authority, locks, smoothing; knock advice; the export forms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.config import ConfigError
from core.coverage.axes import TableAxes
from core.tune import Table, Tune, parse_msq, parse_table_text
from core.ve import CellEvidence, VeResult, VeSettings, advise, correct_table
from core.ve.result import knock_csv, knock_json, knock_tsv

AXES = TableAxes(np.array([1000.0, 2000.0, 3000.0, 4000.0]), np.array([20.0, 40.0, 70.0, 100.0]))
BASE = Table(AXES, np.full(AXES.shape, 60.0), "veTable1")


def evidence(ratio: float | np.ndarray, confidence: float | np.ndarray = 1.0) -> CellEvidence:
    shape = AXES.shape
    return CellEvidence(
        np.broadcast_to(np.asarray(ratio, dtype=float), shape).copy(),
        np.broadcast_to(np.asarray(confidence, dtype=float), shape).copy(),
        np.full(shape, 50, dtype=np.int64),
    )


def test_new_ve_is_base_times_measured_over_target() -> None:
    ratio = np.linspace(0.92, 1.08, 16).reshape(4, 4)
    res = correct_table(BASE, evidence(ratio), VeSettings(lock_decel=False), decimals=None)
    np.testing.assert_allclose(res.ve_new, 60.0 * ratio)
    np.testing.assert_allclose(res.change_pct, (ratio - 1.0) * 100.0)
    assert res.counts()["changed"] == 16


def test_confidence_threshold_authority_and_rounding() -> None:
    ratio = np.full(AXES.shape, 1.05)
    ratio[3, 3] = 1.40  # far lean: limited to the authority
    ratio[0, 0] = np.nan  # never visited
    conf = np.ones(AXES.shape)
    conf[2, 1] = 0.6  # visited, not yet trusted
    res = correct_table(
        BASE, evidence(ratio, conf), VeSettings(lock_decel=False, max_change_pct=10)
    )
    assert res.ve_new[3, 3] == pytest.approx(66.0) and res.reason[3, 3] == "clipped"
    assert res.ve_new[2, 1] == 60.0 and res.reason[2, 1] == "low_confidence"
    assert res.ve_new[0, 0] == 60.0 and res.reason[0, 0] == "no_data"
    assert res.ve_new[1, 1] == 63.0 and res.reason[1, 1] == "changed"
    s = res.summary()
    assert s["changed"] == 14 and s["clipped"] == 1
    assert s["held_back"] == {"low_confidence": 1}
    assert s["max_abs_change_pct"] == pytest.approx(10.0)


def test_locks_idle_decel_and_pinned() -> None:
    settings = VeSettings(
        lock_idle=True,
        idle_rpm_max=1000,
        idle_map_max_kpa=40,
        lock_decel=True,
        decel_rpm_min=3000,
        decel_map_max_kpa=20,
        locked_cells=((2000.0, 70.0),),
    )
    res = correct_table(BASE, evidence(1.1), settings)
    assert res.reason[0, 0] == "locked_idle" and res.reason[1, 0] == "locked_idle"
    assert res.reason[0, 2] == "locked_decel" and res.reason[0, 3] == "locked_decel"
    assert res.reason[2, 1] == "pinned"
    assert np.all(res.ve_new[res.locked] == 60.0)
    assert res.locked.sum() == 5
    assert np.all(res.ve_new[~res.locked] == 66.0)


def test_smoothing_reaches_unvisited_neighbours_halved_and_marked() -> None:
    ratio = np.full(AXES.shape, np.nan)
    ratio[1:3, 1:3] = 1.12
    res = correct_table(
        BASE, evidence(ratio), VeSettings(lock_decel=False, smooth=True, max_change_pct=15)
    )
    assert res.extrapolated[0, 1] and res.extrapolated[1, 0]
    assert not res.extrapolated[0, 0]  # diagonal only: not a 4-neighbour in one ring
    assert res.change_pct[0, 1] == pytest.approx(6.0)
    assert res.reason[0, 1] == "extrapolated"
    two = correct_table(
        BASE, evidence(ratio), VeSettings(lock_decel=False, smooth=True, smooth_rings=2)
    )
    assert two.extrapolated[0, 0] and two.change_pct[0, 0] == pytest.approx(3.0, abs=0.1)
    none = correct_table(BASE, evidence(ratio), VeSettings(lock_decel=False))
    assert not none.extrapolated.any()


def test_a_cell_without_hits_has_no_data_whatever_its_bilinear_share() -> None:
    # Samples between breakpoints split their weight over four cells, so a never-visited
    # neighbour of a visited cell gets a ratio and no hits (the hits view shows it empty).
    ratio = np.full(AXES.shape, np.nan)
    ratio[1:3, 1:3] = 1.12
    ratio[0, 1] = ratio[1, 0] = 1.10  # bilinear share only
    hits = np.where(np.isfinite(ratio), 50, 0)
    hits[0, 1] = hits[1, 0] = 0
    conf = np.where(hits > 0, 1.0, 0.0)
    ev = CellEvidence(ratio, conf, hits.astype(np.int64))
    res = correct_table(BASE, ev, VeSettings(lock_decel=False))
    assert res.reason[0, 1] == "no_data" and res.reason[1, 0] == "no_data"
    assert res.summary()["held_back"] == {}
    # ... so smoothing, which fills cells without data, reaches it, half the neighbours' change
    smooth = correct_table(BASE, ev, VeSettings(lock_decel=False, smooth=True))
    assert smooth.reason[0, 1] == "extrapolated" and smooth.extrapolated[1, 0]
    assert smooth.change_pct[0, 1] == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max_change_pct": 0}, "outside"),
        ({"min_confidence": 1.5}, "above 1"),
        ({"lock_idle": "yes"}, "true or false"),
        ({"locked_cells": [[3000]]}, r"locked_cells\[0\]"),
        ({"authority": 5}, "unknown setting"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VeSettings.from_mapping(table)


def test_knock_advice_rounds_up_and_caps() -> None:
    events = np.zeros(AXES.shape, dtype=np.int64)
    retard = np.zeros(AXES.shape)
    events[3, 2], retard[3, 2] = 5, 3.2
    events[3, 1], retard[3, 1] = 1, 0.4
    events[2, 2], retard[2, 2] = 2, 9.0
    retard[1, 1] = 2.0  # retard carried in from a neighbour, no event here
    k = advise(AXES, events, retard)
    assert k.advice_deg[3, 2] == -3.5 and k.confidence[3, 2] == 1.0
    assert k.advice_deg[3, 1] == -1.0 and k.confidence[3, 1] == pytest.approx(1 / 3)
    assert k.advice_deg[2, 2] == -4.0
    assert k.advice_deg[1, 1] == 0.0 and k.confidence[1, 1] == 0.0
    assert knock_json(k)["summary"]["cells"][0]["events"] == 5
    assert len(knock_csv(k).splitlines()) == 17
    assert knock_tsv(k).splitlines()[0].split("\t")[2] == "-3.5"


def test_exports_json_contract_csv_tsv_and_msq() -> None:
    ratio = np.full(AXES.shape, 1.05)
    ratio[0, 0] = np.nan
    front = correct_table(BASE, evidence(ratio), VeSettings(lock_decel=False))
    rear = correct_table(BASE, evidence(0.95), VeSettings(lock_decel=False), name="ve_rear")
    tune = Tune(ve=BASE, ve_rear=BASE, target_lambda=BASE.with_values(np.full(AXES.shape, 0.9)))
    result = VeResult(tune, {"ve": front, "ve_rear": rear}, runs=("a.dynolog",))
    data = json.loads(json.dumps(result.to_json()))
    for key in ("rpm_axis", "map_axis", "ve_base", "ve_new", "change_pct", "confidence",
                "locked", "extrapolated"):  # fmt: skip
        assert key in data
    assert data["map_axis"] == [20.0, 40.0, 70.0, 100.0]  # rows = MAP
    assert data["ve_new"][1][1] == 63.0 and data["ve_new"][0][0] == 60.0
    assert data["change_pct"][0][0] == 0.0
    assert data["cylinder"] == "front" and data["rear"]["ve_new"][0][0] == 57.0
    csv_rows = result.to_csv().splitlines()
    assert len(csv_rows) == 1 + 2 * 16 and csv_rows[1].startswith("front,1000,20,")
    tsv = result.to_tsv()
    assert tsv.startswith("# front VE\n63.0\t63.0")
    back = parse_msq(result.msq())
    np.testing.assert_allclose(back.ve.values, front.ve_new)
    np.testing.assert_allclose(back.ve_rear.values, rear.ve_new)  # type: ignore[union-attr]
    lines = result.summary_lines()
    assert any("front VE: 15 of 16 cells changed" in line for line in lines)
    assert (
        parse_table_text(
            "\t1000\t2000\t3000\t4000\n"
            + "\n".join(
                f"{m:g}\t" + line
                for m, line in zip(
                    (100, 70, 40, 20),
                    result.to_tsv().split("# rear VE\n")[1].splitlines(),
                    strict=True,
                )
            )
        ).values[0, 0]
        == 57.0
    )
