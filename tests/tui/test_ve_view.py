"""Pilot tests: the "VE correction" heatmap view and the export key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from core.coverage.view import GridView
from core.snapshot import RecordingInfo
from core.store import VehicleStore
from core.tune import Table, Tune, read_tune, render_msq
from core.tune.kept import keep_tune
from core.ve.settings import VeSettings
from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.screens.dashboard import SHORT_VIEW_TITLES
from dynoai_tui.tui.widgets.heatmap import Heatmap, _ve_levels
from dynoai_tui.tui.widgets.panels import header_text
from tests.tui.helpers import (
    MAP_AXIS,
    RPM_AXIS,
    ScriptedSession,
    grid_view,
    snapshot,
    sync,
)


def _hits() -> np.ndarray:
    hits = np.zeros((16, 16), dtype=np.int64)
    hits[8, 5] = 400  # 13.2 AFR on a 13.0 target: 1.5 % lean -> VE +1.5 %
    return hits


@sync
async def test_ve_view_shows_change_locks_and_exports_csv_without_a_tune(tmp_path: Path) -> None:
    app = DynoApp(ScriptedSession(snapshot(hits=_hits())), record_dir=tmp_path, clock=lambda: 0.0)
    async with app.run_test(size=(160, 48)) as pilot:
        heatmap = app.dashboard.query_one(Heatmap)
        for _ in range(3):
            await pilot.press("v")
        assert heatmap.view == "ve_change"
        assert "VE correction" in str(heatmap.border_title)
        texts = heatmap._texts
        assert texts[8][5] == "+2"
        # Overrun cells (>= 1750 rpm at the 20 kPa row) are locked by default.
        assert texts[0][-1] == "L" and texts[0][0] == "·"
        await pilot.press("e")
        await pilot.pause()
        files = list(tmp_path.glob("ve-session-*-change-pct.csv"))
        assert len(files) == 1
        assert "1.54" in files[0].read_text()


@sync
async def test_export_key_writes_the_corrected_msq_with_the_vehicles_tune(tmp_path: Path) -> None:
    store = VehicleStore(tmp_path / "store")
    store.ensure_vehicle("bike")
    ve = Table.of(RPM_AXIS, MAP_AXIS, np.full((16, 16), 60.0))
    source = tmp_path / "base.msq"
    source.write_bytes(render_msq(Tune(ve=ve)))
    keep_tune(store.data_dir, "bike", source)
    app = DynoApp(
        ScriptedSession(snapshot(hits=_hits())),
        store=store,
        vehicle="bike",
        record_dir=tmp_path / "out",
        clock=lambda: 0.0,
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("e")
        await pilot.pause()
    out = list((tmp_path / "out").glob("ve-bike-*.msq"))
    assert len(out) == 1
    tune = read_tune(out[0])
    assert tune.ve.values[8, 5] == 60.9  # 60 x 1.0154, one decimal
    assert tune.ve.values[0, 0] == 60.0
    assert (out[0].with_suffix(".json")).exists()


def _bilinear_neighbours() -> GridView:
    # One confident cell (3000 rpm, 60 kPa) 10 % lean; its samples, between breakpoints,
    # also gave the never-visited cells above and right of it a ratio (the live grid's
    # bilinear split), as the pulls demo did to the whole 105 kPa row
    base = grid_view(_hits(), afr=14.3)
    err = np.array(base.afr_error_pct)
    err[9, 5] = err[8, 6] = 10.0
    return replace(base, afr_error_pct=err)


def test_ve_view_shows_no_data_where_there_are_no_hits_and_marks_smoothing() -> None:
    grid = _bilinear_neighbours()
    _, texts = _ve_levels(grid, VeSettings())
    assert texts[8][5] == "+10"
    assert texts[9][5] == "·" and texts[8][6] == "·"  # it read "+10": no hits, no data
    _, smoothed = _ve_levels(grid, VeSettings(smooth=True))
    assert smoothed[9][5] == "~+5" and smoothed[8][4] == "~+5"
    # at 3 columns "~+5" would touch its neighbour and "~+12" read "~+1"
    _, narrow = _ve_levels(grid, VeSettings(smooth=True), cell_w=3)
    assert narrow[9][5] == "~" and narrow[8][5] == "++"


@sync
async def test_the_exported_change_table_has_a_number_only_where_the_view_shows_one(
    tmp_path: Path,
) -> None:
    session = ScriptedSession(replace(snapshot(hits=_hits()), grid=_bilinear_neighbours()))
    session.config = SimpleNamespace(ve=VeSettings(smooth=True))  # type: ignore[attr-defined]
    app = DynoApp(session, record_dir=tmp_path, clock=lambda: 0.0)
    async with app.run_test(size=(160, 48)) as pilot:
        heatmap = app.dashboard.query_one(Heatmap)
        for _ in range(3):
            await pilot.press("v")
        shown = heatmap._texts
        await pilot.press("e")
        await pilot.pause()
    (path,) = tmp_path.glob("ve-session-*-change-pct.csv")
    table = [line.split(",")[1:] for line in path.read_text().splitlines()[1:]]
    for m in range(16):
        for r in range(16):
            value, text = table[m][r], shown[m][r]
            # a number exactly where the view shows a correction; empty for no data, not
            # confident and locked cells, where "0.00" read as "no change needed"
            assert (value != "") == (text not in ("·", "L")), (m, r, value, text)
    assert table[8][5] == "10.00" and table[9][5] == "5.00" and table[0][0] == ""
    assert sum(v != "" for row in table for v in row) == 5  # one changed, four smoothed


def test_the_short_title_fits_the_demos_compact_header_while_recording() -> None:
    # 80 columns less the header's padding; a longer line wraps and loses its last word:
    # "VE corr % (~ extrap; e:" was all that showed while recording
    snap = snapshot(recording=RecordingInfo("demo.dynolog", 11_000, 1.0))
    title = SHORT_VIEW_TITLES["ve_change"]
    text = header_text(snap, vehicle="demo", replay=False, compact=True, view=title)
    assert text.plain.endswith(title) and "~" in title
    assert text.cell_len <= 78 - 2  # room for a recording past 10 minutes, 10 pulls


@sync
async def test_coverage_views_show_the_stored_runs_and_the_mixture_views_this_run() -> None:
    # QA with two stored runs: the list skipped 2000/75 as covered while the hits view,
    # this run's alone, showed it empty. Coverage views now show the vehicle's coverage;
    # AFR stays this run's (a stored run ran on the tune before this one's corrections).

    run = np.zeros((16, 16), dtype=np.int64)
    run[8, 5] = 3
    stored = np.zeros_like(run)
    stored[8, 5], stored[2, 9] = 40, 25
    snap = replace(snapshot(hits=run), vehicle_grid=grid_view(run + stored, afr=14.5))
    app = DynoApp(ScriptedSession(snap))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        heatmap = app.dashboard.query_one(Heatmap)
        assert heatmap.view == "hits" and heatmap._texts[8][5] == "43"
        assert heatmap._texts[2][9] == "25"  # a stored cell this run never visited
        assert "with stored runs" in str(heatmap.border_subtitle)
        await pilot.press("v")  # mean AFR: this run's
        await pilot.pause()
        assert heatmap.view == "afr" and heatmap._texts[8][5] == "13.2"
        assert heatmap._texts[2][9] == "·"
        assert "AFR: this run" in str(heatmap.border_subtitle)


def test_narrow_cells_show_thousands_and_no_signed_zero() -> None:
    # QA at 80 columns: the hits view read "+++" where the headless heatmap wrote "7k",
    # and the AFR-error view read "-0" and "+0"
    from dynoai_tui.tui.widgets.heatmap import _texts

    hits = np.zeros((16, 16), dtype=np.int64)
    hits[0, :3] = (7000, 500, 42)
    texts = _texts("hits", grid_view(hits), 3)
    assert texts[0][:3] == ["7k", "5h", "42"]  # 500: "++" was 100-999 and 10 000 up
    view = replace(grid_view(hits), afr_error_pct=np.full((16, 16), -0.3))
    assert _texts("afr_error", view, 3)[0][0] == "0"


def test_the_export_message_names_the_step_that_gives_an_msq(tmp_path: Path) -> None:
    # QA: the bare demo's toast said "no tune kept for this vehicle: dynoai vehicle
    # set-tune", with no vehicle to keep one for
    from core.store import VehicleStore
    from dynoai_tui.tui.ve_export import export_live_ve

    grid = snapshot(hits=_hits()).grid
    config = SimpleNamespace(ve=VeSettings())
    demo = export_live_ve(grid, config, None, "", tmp_path, 0.0)
    assert "no vehicle: run with --vehicle NAME and keep its tune for an .msq" in demo
    store = VehicleStore(tmp_path / "store")
    bike = export_live_ve(grid, config, store, "fxbb", tmp_path, 1.0)
    assert "no tune kept for fxbb: dynoai vehicle set-tune fxbb FILE" in bike
