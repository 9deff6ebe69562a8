import csv
import io
import json

import numpy as np
import pytest

from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.export import (
    CSV_COLUMNS,
    FORMAT_TAG,
    TEXT_VIEWS,
    grid_to_csv,
    grid_to_json,
    grid_to_text,
)
from core.coverage.grid import CoverageGrid
from core.frames import Block


def filled_grid() -> CoverageGrid:
    """Default axes; cell (15, 8) = 105 kPa / 3500 rpm covered, lean, knocking.

    The rule asks for 10 hits and no settled dwell, so 12 samples in 0.12 s cover it
    (these tests are about the export forms; the rule has its own tests).
    """
    grid = CoverageGrid(TableAxes.default(), hit_target=10, rule=CoverageRule(min_dwell_s=0.0))
    n = 12
    grid.update(
        Block("t", np.arange(n, dtype=np.float64) * 0.01, {
            "rpm": np.full(n, 3500.0), "map_kpa": np.full(n, 105.0),
            "lambda": np.full(n, 0.9), "lambda_target": np.full(n, 0.85),
            "knock_retard_deg": np.full(n, 2.0),
        })
    )  # fmt: skip
    grid.update(Block.from_rows("t", [(1.0, {"rpm": 750.0, "map_kpa": 20.0, "lambda": 1.02})]))
    grid.update(Block.from_rows("t", [(2.0, {"rpm": 20000.0, "map_kpa": 20.0})]))
    grid.knock_events[15, 8] = 3
    return grid


def test_json_contract_keys_values_and_no_nan():
    grid = filled_grid()
    doc = grid_to_json(grid, samples=20, rejects={"cold": 4, "stale_channel": 1})
    for key in ("format", "rpm_axis", "map_axis", "hit_target", "hits", "weight", "dwell_s",
                "afr_mean", "lambda_mean", "afr_error_pct", "knock_events", "covered_pct",
                "covered_cells", "samples", "rejects"):  # fmt: skip
        assert key in doc, key
    assert doc["format"] == FORMAT_TAG == "dynoai.coverage/1"
    assert doc["rpm_axis"][0] == 750.0 and doc["map_axis"][-1] == 105.0
    assert len(doc["hits"]) == 16 and len(doc["hits"][0]) == 16  # rows = MAP
    assert doc["hits"][15][8] == 12 and doc["hits"][0][0] == 1
    assert doc["afr_mean"][15][8] == pytest.approx(13.23)
    assert doc["afr_error_pct"][15][8] == pytest.approx(5.88)  # lean -> positive
    assert doc["afr_error_pct"][0][0] is None and doc["afr_mean"][5][5] is None
    assert doc["knock_events"][15][8] == 3
    assert doc["covered_cells"] == 1 and doc["covered_pct"] == pytest.approx(100 / 256, abs=0.01)
    assert doc["samples"] == 20
    assert doc["rejects"] == {"cold": 4, "stale_channel": 1, "outside_table": 1}
    text = json.dumps(doc, allow_nan=False)  # raises if a NaN slipped through
    assert json.loads(text)["hits"] == doc["hits"]
    # a caller that already merged the grid's count is not double counted
    assert grid_to_json(grid, samples=20, rejects={"outside_table": 1})["rejects"] == {
        "outside_table": 1
    }


def test_csv_one_row_per_cell():
    grid = filled_grid()
    rows = list(csv.DictReader(io.StringIO(grid_to_csv(grid))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == 256
    cell = next(r for r in rows if r["map_kpa"] == "105" and r["rpm"] == "3500")
    assert (cell["map_index"], cell["rpm_index"]) == ("15", "8")
    assert cell["hits"] == "12" and cell["covered"] == "1" and cell["knock_events"] == "3"
    assert float(cell["lambda_mean"]) == pytest.approx(0.9)
    empty = next(r for r in rows if r["map_kpa"] == "60" and r["rpm"] == "3000")
    assert empty["afr_mean"] == "" and empty["covered"] == "0"


def test_text_heatmap_fits_80_columns_ascii_with_high_map_on_top():
    grid = filled_grid()
    for view in TEXT_VIEWS:
        text = grid_to_text(grid, view, marks={(0, 0): "@", (3, 3): "T1"})
        lines = text.splitlines()
        assert text.isascii()
        assert max(len(line) for line in lines) <= 80, view
        assert lines[-2].startswith("covered 0.4 % (1/256 cells)")
        assert (
            lines[-1] == "covered = >= 10 hits, >= 0 s settled, mean lambda standard error <= 1 %"
        )
    lines = grid_to_text(grid, "hits").splitlines()
    rows = [line for line in lines if "|" in line]
    assert len(rows) == 16
    assert rows[0].startswith("105|") and rows[-1].startswith(" 20|")
    # cell (15, 8): 12 hits, covered -> "12*"; cell (0, 0): 1 hit, not covered
    top = rows[0][4:]
    assert top[8 * 4 : 9 * 4] == " 12*"
    assert rows[-1][4:8] == "  1 "
    assert "'*' = covered" in lines[0] and lines[-1].startswith("covered = >= 10 hits")
    header = "\n".join(lines[-4:-2])
    for label in ("750", "1000", "3500", "7000"):
        assert label in header


def test_text_marks_views_and_errors():
    grid = filled_grid()
    text = grid_to_text(grid, "hits", marks={(0, 0): "@", (3, 3): "T1"})
    rows = [line for line in text.splitlines() if "|" in line]
    assert rows[-1][4:8] == "  1@"
    assert rows[-4][4 + 3 * 4 : 4 + 4 * 4].strip() == "T1"
    afr = grid_to_text(grid, "afr")
    assert "AFR x10" in afr and "132*" in afr  # 13.23 with one decimal as x10
    assert " +6*" in grid_to_text(grid, "afr_error")  # +5.88 % in three characters
    wide = grid_to_text(CoverageGrid(TableAxes.linear(1000, 6000, 6, 20, 100, 5)), "afr")
    assert "mean AFR;" in wide and max(len(x) for x in wide.splitlines()) <= 80
    with pytest.raises(ValueError, match="heatmap view 'boost'"):
        grid_to_text(grid, "boost")
