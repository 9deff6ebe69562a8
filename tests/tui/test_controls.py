"""Pilot tests for the run controls: constraints editor, quit confirmation, markers, views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from core.plan.planner import Constraints
from core.store import VehicleStore
from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.screens.modals import ConfirmScreen, ConstraintsScreen, NoteScreen
from dynoai_tui.tui.widgets.heatmap import Heatmap
from tests.tui.helpers import ScriptedSession, snapshot, sync


async def _type(pilot: Pilot[Any], field: str, text: str) -> None:
    screen = pilot.app.screen
    box = screen.query_one(f"#field-{field}", Input)
    box.value = ""
    await pilot.click(f"#field-{field}")
    await pilot.press(*text)


@sync
async def test_constraints_modal_rejects_bad_value_and_saves_good_one(tmp_path: Path) -> None:
    store = VehicleStore(tmp_path)
    store.ensure_vehicle("bike")
    session = ScriptedSession(snapshot())
    app = DynoApp(session, store=store, vehicle="bike")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConstraintsScreen)

        await _type(pilot, "max_rpm", "lots")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal  # still open
        assert "constraints.max_rpm" in modal.error and "not a number" in modal.error
        assert store.get_constraints("bike") is None

        await _type(pilot, "max_rpm", "6200")
        await _type(pilot, "environment", "dyno")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, ConstraintsScreen)
        await app.workers.wait_for_complete()  # the store write runs in a worker thread
        saved = store.get_constraints("bike")
        assert saved == Constraints(max_rpm=6200.0, environment="dyno")
        assert session.constraints == saved  # the running plan uses them at once


def _bike_app(tmp_path: Path) -> DynoApp:
    """The dashboard of a stored vehicle "bike" (so the constraints key is on)."""
    store = VehicleStore(tmp_path)
    store.ensure_vehicle("bike")
    return DynoApp(ScriptedSession(snapshot()), store=store, vehicle="bike")


async def _open_constraints(pilot: Pilot[Any]) -> None:
    await pilot.press("c")
    await pilot.pause()


@sync
async def test_constraints_modal_rejects_inconsistent_limits(tmp_path: Path) -> None:
    app = _bike_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_constraints(pilot)
        await _type(pilot, "min_rpm", "5000")
        await _type(pilot, "max_rpm", "3000")
        await pilot.press("ctrl+s")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConstraintsScreen)
        assert "max_rpm" in modal.error and "min_rpm" in modal.error
        assert app.store.get_constraints("bike") is None


@sync
async def test_quit_while_recording_asks_first(tmp_path: Path) -> None:
    session = ScriptedSession(snapshot())
    app = DynoApp(session, record_dir=tmp_path, clock=lambda: 1_700_000_000.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()  # the file is created in a worker thread
        await pilot.pause()
        assert session.recording
        assert session.recording_path is not None
        assert session.recording_path.parent == tmp_path
        assert "REC" in app.dashboard.query_one("#header").plain  # type: ignore[attr-defined]

        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.is_running

        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0
    assert not isinstance(app.screen_stack[-1] if app.screen_stack else None, ConfirmScreen)


@sync
@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quit_without_recording_does_not_ask(key: str) -> None:
    # ctrl+c: QA found it only showed Textual's "press ctrl+q to quit"
    app = DynoApp(ScriptedSession(snapshot()))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(key)
        await pilot.pause()
        assert not app.is_running


@sync
async def test_marker_note_and_pull_keys_reach_the_session(tmp_path: Path) -> None:
    session = ScriptedSession(snapshot())
    app = DynoApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        # not recording: a marker has nowhere to go, and the screen says so (it said
        # "Marker added")
        await pilot.press("m")
        await pilot.pause()
        assert not isinstance(app.screen, NoteScreen) and session.marks == []
        assert any("Not recording" in n.message for n in app._notifications)
        session.start_recording(tmp_path / "r.dynolog")
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"2nd gear", "enter")
        await pilot.pause()
        await pilot.press("p")
        assert session.marks == [("marker", "2nd gear"), ("pull_start", "")]


@sync
async def test_view_cycle_and_region_overlay_change_the_cells() -> None:
    hits = np.zeros((16, 16), dtype=np.int64)
    hits[8, 5] = 4
    app = DynoApp(ScriptedSession(snapshot(hits=hits)))
    async with app.run_test(size=(160, 48)) as pilot:
        heatmap = app.dashboard.query_one(Heatmap)
        assert heatmap.view == "hits"
        await pilot.press("v")
        assert heatmap.view == "afr"
        assert "mean AFR" in str(heatmap.border_title)
        await pilot.press("o")
        await pilot.pause()
        assert heatmap.overlay
        # 3500 rpm / 88 kPa is in the high-MAP midrange region: priority 1 (red).
        r = int(np.abs(heatmap._grid.map_axis - 88).argmin())  # type: ignore[union-attr]
        c = int(np.abs(heatmap._grid.rpm_axis - 3500).argmin())  # type: ignore[union-attr]
        y = (16 - 1 - r) * heatmap.row_h
        strip = heatmap.render_line(y)
        red = heatmap.get_component_rich_style("heatmap--region1")
        x = 4 + c * heatmap.cell_w + 1
        pos = 0
        for seg in strip:
            if pos <= x < pos + len(seg.text):
                assert seg.style is not None and seg.style.bgcolor == red.bgcolor
                break
            pos += len(seg.text)
        else:
            raise AssertionError("cell not drawn")


async def _r_then_m_s(session: ScriptedSession, tmp_path: Path) -> float:
    """Seconds from pressing r to the marker note being open."""
    import time

    app = DynoApp(session, record_dir=tmp_path, clock=lambda: 1_700_000_000.0)
    async with app.run_test(size=(100, 30)) as pilot:
        t0 = time.perf_counter()
        await pilot.press("r")
        await pilot.press("m")  # the marker note opens while the file is still being made
        await pilot.pause()
        assert isinstance(app.screen, NoteScreen)
        spent = time.perf_counter() - t0
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        assert session.recording
    return spent


@sync
async def test_a_slow_disk_does_not_freeze_the_dashboard(tmp_path: Path) -> None:
    # Creating a recording (open + header fsync) on a slow USB stick used to run on the
    # UI thread: every key and frame waited for it. It now runs in a worker thread.
    import time

    class SlowDiskSession(ScriptedSession):
        def start_recording(self, path: str | Path) -> None:
            time.sleep(2.0)
            super().start_recording(path)

    fast = await _r_then_m_s(ScriptedSession(snapshot()), tmp_path / "fast")
    slow = await _r_then_m_s(SlowDiskSession(snapshot()), tmp_path / "slow")
    assert slow - fast < 1.0, (fast, slow)


@sync
async def test_the_compact_power_gauge_says_its_unit() -> None:
    # QA at 80x24: "Power 94.6" during a pull left hp or kW to guess
    from dataclasses import replace

    session = ScriptedSession(snapshot(values={"rpm": 5200.0, "power_hp": 94.6}))
    session.publish(replace(session.snapshot, in_pull=True))
    app = DynoApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        gauge = next(g for g in app.dashboard.gauges if g.channel == "power_hp")
        assert gauge.display
        assert gauge.render().plain == "Power 94.6 hp"  # type: ignore[union-attr]


@sync
async def test_at_80x24_the_constraints_dialog_keeps_its_buttons_and_whole_names(
    tmp_path: Path,
) -> None:
    # QA at 80x24: Save (ctrl+s) and Cancel were below the screen's edge, and the label
    # read "max_pulls_per_se" even at 160x48
    from textual.widgets import Button, Label

    app = _bike_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_constraints(pilot)
        modal = app.screen
        assert isinstance(modal, ConstraintsScreen)
        for button in modal.query(Button):
            region = button.region
            assert region.height > 0 and region.bottom <= 24, (button.id, region)
        label = next(lb for lb in modal.query(Label) if "max_pulls" in str(lb.render()))
        assert label.region.width >= len("max_pulls_per_session")


@sync
@pytest.mark.parametrize(
    ("field", "text", "said"),
    [
        ("min_rpm", "abc", "constraints.min_rpm: 'abc' is not a number"),
        ("max_pulls_per_session", "2.5", "constraints.max_pulls_per_session"),
        ("environment", "moon", "constraints.environment"),
    ],
)
async def test_at_80x24_a_bad_values_error_is_in_view_and_its_field_focused(
    tmp_path: Path, field: str, text: str, said: str
) -> None:
    # QA at 80x24: the error was under the fields, below the fold, and the dialog did not
    # scroll to it: Save with a bad value looked like it did nothing
    from textual.widgets import Static

    app = _bike_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_constraints(pilot)
        modal = app.screen
        assert isinstance(modal, ConstraintsScreen)
        await _type(pilot, field, text)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal and said in modal.error, modal.error
        dialog = modal.query_one("#dialog")
        view = dialog.region
        for widget in (modal.query_one("#error", Static), modal.query_one(f"#field-{field}")):
            region = widget.region
            assert region.height > 0 and view.contains_region(region), (widget.id, region, view)
            assert region.bottom <= 24
        assert app.focused is modal.query_one(f"#field-{field}", Input)
        # fixed, it saves
        await _type(pilot, field, {"environment": "dyno"}.get(field, "2"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, ConstraintsScreen)


@sync
async def test_every_recording_of_a_session_reaches_the_summary(tmp_path: Path) -> None:
    # QA: with two recordings in one session the quit summary named only the last
    from dynoai_tui.commands.headless import summary_text

    ticks = iter(range(1_700_000_000, 1_700_000_100, 7))
    session = ScriptedSession(snapshot())
    app = DynoApp(session, record_dir=tmp_path, clock=lambda: float(next(ticks)))
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(3):  # start, stop, start again
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
    assert len(app.recordings) == 2 and app.recordings[0] != app.recordings[1]
    text = summary_text(
        session.snapshot, recording_path=app.recordings[-1], earlier_recordings=app.recordings[:-1]
    )
    listed = [ln.split(None, 1)[1] for ln in text.splitlines() if ln.startswith("recording ")]
    assert listed == app.recordings


async def _mark_a_pull_by_hand(rpm: Any) -> tuple[str, str, Any]:
    """p, 4 s of data, p on a live session at 80x24: (the toast, the header, the app)."""
    from core.session import Session
    from core.vehicle import VehicleConfig
    from dynoai_tui.tui.widgets.panels import StatusHeader
    from tests.test_session import EngineSource, sheet_tracker

    cfg = VehicleConfig()
    session = Session([EngineSource(rpm)], config=cfg, tracker=sheet_tracker(cfg), tick_s=0.02)
    session.start()
    app = DynoApp(session, bell=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            while session.snapshot.now_t < 2.0:
                await pilot.pause(0.05)
            await pilot.press("p")
            started = session.snapshot.now_t
            while session.snapshot.now_t < started + 4.0:
                await pilot.pause(0.05)
            await pilot.press("p")
            await pilot.pause(0.2)
            toast = list(app._notifications)[-1]
            return toast.message, app.dashboard.query_one(StatusHeader).plain, app
    finally:
        session.stop()


@sync
async def test_a_manual_pull_at_idle_is_dropped_with_the_reason_in_the_toast() -> None:
    # QA: p, p at idle: "Pull stopped", the header stayed "pulls 0/∞", g: "No WOT pull yet"
    toast, header, _ = await _mark_a_pull_by_hand(lambda t: np.full(t.size, 950.0))
    assert toast.startswith("Pull stopped: not kept, the engine idled at 950 rpm"), toast
    assert "\n" not in toast and len(toast) <= 80  # one line
    assert "pulls 0 " in header and "IN PULL" not in header, header


@sync
async def test_a_manual_pull_where_the_rpm_rose_is_counted() -> None:
    toast, header, app = await _mark_a_pull_by_hand(lambda t: np.minimum(2000 + 500 * t, 6000.0))
    assert toast.startswith("Pull stopped: kept as pull 1, "), toast
    assert "pulls 1 " in header, header
    assert len(app.sheet.pulls) == 1  # g draws it
