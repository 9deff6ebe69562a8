"""What a heatmap cell reads at every width: AFR and dwell to a tenth, one scale for
hit counts, whole values beside the target mark, and a regions overlay that says so.

QA at 80 columns: mean AFR read "12 12 13 13" (12.5 and 13.4 both "13"), dwell almost
all "1", "++" stood for 100-999 hits and for 10 000 or more, a target with data read
"◆9" / "◆+", and "o" swapped colours without a word on the screen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from core.plan.types import PlanView
from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.widgets.heatmap import LABEL_W, VIEWS, Heatmap, _texts
from tests.tui.helpers import ScriptedSession, grid_view, snapshot, sync, targets_for

WIDTHS = [3, 4, 5, 6, 7]


def _row(view: str, cell_w: int, **arrays: list[float]) -> list[str]:
    """The texts of the first cells of row 0 for values set there."""
    hits = np.zeros((16, 16), dtype=np.int64)
    n = len(next(iter(arrays.values())))
    hits[0, :n] = 50
    grid = grid_view(hits)
    for name, values in arrays.items():
        full = getattr(grid, name).astype(np.float64).copy()
        full[0, :n] = values
        grid = replace(grid, **{name: full})
    return _texts(view, grid, cell_w)[0][:n]


@pytest.mark.parametrize("cell_w", WIDTHS)
def test_mean_afr_keeps_its_tenths_at_every_width(cell_w: int) -> None:
    texts = _row("afr", cell_w, afr_mean=[12.5, 13.4, 12.96, 13.14])
    assert len(set(texts)) == 4, texts  # was "13 13 13 13" at 3 and 4 columns
    expected = {3: ["25", "34", "30", "31"], 4: ["2.5", "3.4", "3.0", "3.1"]}
    assert texts == expected.get(cell_w, ["12.5", "13.4", "13.0", "13.1"])
    assert all(len(t) < cell_w for t in texts)


def test_an_afr_of_another_decade_saturates_rather_than_reads_as_this_one() -> None:
    # "98" for 9.8 would read 19.8 under a title that says 1x.x
    assert _row("afr", 3, afr_mean=[12.5, 9.8, 21.0]) == ["25", "--", "++"]


@pytest.mark.parametrize("cell_w", WIDTHS)
def test_dwell_keeps_its_tenths_at_every_width(cell_w: int) -> None:
    texts = _row("dwell", cell_w, dwell_s=[0.6, 1.1, 1.4, 27.0])
    assert len(set(texts)) == 4, texts  # was "1 1 1 27" at 3 columns
    if cell_w == 3:
        assert texts == ["6", "11", "14", "++"]  # "27" would read 2.7 s
    else:
        assert texts[:3] == ["0.6", "1.1", "1.4"]


@pytest.mark.parametrize("cell_w", WIDTHS)
def test_hit_counts_have_one_short_form_that_grows_with_the_count(cell_w: int) -> None:
    counts = [42, 150, 999, 1000, 9999, 15_376, 99_999, 150_000]
    texts = _row("hits", cell_w, hits=[float(n) for n in counts])
    assert all(len(t) < cell_w for t in texts)
    # a text stands for one range only: a count never shares its text with a count
    # of another range (QA: "++" was both 100-999 and 10 000 or more)
    for i in range(len(counts) - 1):
        if texts[i] == texts[i + 1]:
            assert texts[i].strip("+") == "", (counts[i], counts[i + 1], texts[i])
    if cell_w == 3:
        assert texts == ["42", "1h", "9h", "1k", "9k", "++", "++", "++"]
    if cell_w == 4:
        assert texts[2:6] == ["999", "1k", "9k", "15k"]


def _cell_text(heatmap: Heatmap, map_index: int, rpm_index: int) -> str:
    y = (heatmap.shape[0] - 1 - map_index) * heatmap.row_h - int(heatmap.scroll_offset.y)
    text = heatmap.render_line(y).text
    x = LABEL_W + rpm_index * heatmap.cell_w
    return text[x : x + heatmap.cell_w]


@sync
@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)])
async def test_a_target_cell_shows_its_whole_value_and_the_mark_in_every_view(
    size: tuple[int, int],
) -> None:
    hits = np.zeros((16, 16), dtype=np.int64)
    hits[5, 9] = 42
    plan = PlanView(targets=targets_for(hits, [(5, 9)], hit_target=100))
    app = DynoApp(ScriptedSession(snapshot(hits=hits, plan=plan)))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        heatmap = app.dashboard.query_one(Heatmap)
        for view in VIEWS:
            value = heatmap._texts[5][9]
            cell = _cell_text(heatmap, 5, 9)
            assert "◆" in cell and value in cell, (view, value, cell)
            await pilot.press("v")
            await pilot.pause()
        await pilot.press("o")  # the overlay keeps the mark too
        await pilot.pause()
        assert "◆42" in _cell_text(heatmap, 5, 9).replace(" ", "")


@sync
@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)])
async def test_the_regions_overlay_says_it_is_on_in_every_view(size: tuple[int, int]) -> None:
    app = DynoApp(ScriptedSession(snapshot(hits=np.full((16, 16), 3, dtype=np.int64))))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        heatmap = app.dashboard.query_one(Heatmap)
        key_y = heatmap.shape[0] * heatmap.row_h + 1
        assert "regions" not in heatmap.render_line(key_y).text
        await pilot.press("o")
        await pilot.pause()
        assert "regions P1/P2/P3" in str(heatmap.border_title)
        for _view in VIEWS:
            line = heatmap.render_line(key_y)
            assert "P1" in line.text and "P3" in line.text, line.text
            styles = {seg.text.strip(): seg.style for seg in line if seg.text.strip()}
            red = heatmap.get_component_rich_style("heatmap--region1").bgcolor
            assert styles["P1 first"] is not None and styles["P1 first"].bgcolor == red
            await pilot.press("v")
            await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert "regions" not in heatmap.render_line(key_y).text
        assert "regions" not in str(heatmap.border_title)


@sync
async def test_at_80x24_the_header_says_what_the_short_cells_mean() -> None:
    hits = np.zeros((16, 16), dtype=np.int64)
    hits[3, 3] = 500
    app = DynoApp(ScriptedSession(snapshot(hits=hits)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        header: Any = app.dashboard.query_one("#header")
        assert header.plain.endswith("hits · 5h = 5xx, 5k = 5xxx")
        assert app.dashboard.query_one(Heatmap)._texts[3][3] == "5h"
        await pilot.press("v")
        await pilot.pause()
        assert header.plain.endswith("mean AFR · 1x.x: 25 = 12.5")
        assert app.dashboard.query_one(Heatmap)._texts[3][3] == "32"  # 13.2
        assert len(header.plain) <= 80
