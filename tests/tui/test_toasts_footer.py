"""Pilot tests: where toasts go at each size, file paths in toasts, the replay's Play key."""

from __future__ import annotations

import pytest
from textual.geometry import Region
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.widgets.panels import AlarmLine
from tests.tui.helpers import ScriptedSession, snapshot, sync

SIZES = [(80, 24), (100, 30), (160, 48)]
LONG_DIR = "/tmp/qa1/customer-bikes/harley-fxbb-2026/stage2-cams/dyno-day-3"


class FakeReplay:
    """The replay control the app drives (core.record.replay.ReplaySource's methods)."""

    def __init__(self) -> None:
        self.paused = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False


def kept_clear(app: DynoApp) -> list[Region]:
    """What a toast must never cover: header, gauges, history, instruction, alarm line."""
    dash = app.dashboard
    widgets = [dash.query_one(s) for s in ("#header", "#gauges", "#instruction")]
    widgets.append(dash.query_one(AlarmLine))
    widgets += [w for w in dash.query("#history") if w.display]
    return [w.region for w in widgets]


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_toasts_leave_the_instruction_alarm_and_gauges_clear(size: tuple[int, int]) -> None:
    # QA at 80x24: pressing p, b, m, e or r put a toast over the ▶ instruction line
    session = ScriptedSession(snapshot())
    app = DynoApp(session, record_dir=LONG_DIR, clock=lambda: 1_700_000_000.0)
    async with app.run_test(size=size, notifications=True) as pilot:
        for key in ("r", "b", "p"):  # recording, bell, pull: three at once
            await pilot.press(key)
            await pilot.pause(0.2)
        app.notify("a long toast\n" * 6)  # and one that fills the rack
        await pilot.pause(0.3)
        shown = [app.dashboard.find_widget(t) for t in app.dashboard.query(Toast)]
        visible = [g.visible_region for g in shown if g.visible_region.area]
        assert len(visible) >= 3, (size, visible)
        for region in visible:
            for clear in kept_clear(app):
                assert not region.overlaps(clear), (size, region, clear)


@sync
async def test_a_path_in_a_toast_keeps_the_file_name_on_one_line() -> None:
    # QA: "/tmp/qa1/ve-demo-20261201-080437-cha" / "nge-pct.csv", broken mid-name
    session = ScriptedSession(snapshot())
    app = DynoApp(session, record_dir=LONG_DIR, clock=lambda: 1_700_000_000.0)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("r")
        await pilot.pause(0.3)
        assert session.recording_path is not None
        name = session.recording_path.name
        (toast,) = [t for t in app.dashboard.query(Toast)]
        message = toast._notification.message
        lines = message.splitlines()
        assert name in lines, message
        assert toast.content_region.width >= max(len(line) for line in lines), (message, toast)


def test_a_toast_path_is_the_name_then_its_folder_shortened(monkeypatch: pytest.MonkeyPatch):
    from dynoai_tui.tui.paths import FOLDER_WIDTH, toast_path

    monkeypatch.setenv("HOME", "/home/tuner")
    name = "ve-demo-20261201-080437-change-pct.csv"
    assert toast_path(f"/tmp/qa1/{name}") == f"{name}\nin /tmp/qa1"
    assert toast_path(f"/home/tuner/dyno/{name}") == f"{name}\nin ~/dyno"
    deep = "/home/tuner/dyno/customers/logs-2026/harley-fxbb-stage2/x.dynolog"
    assert toast_path(deep) == "x.dynolog\nin ~/…/logs-2026/harley-fxbb-stage2"
    folder = toast_path(f"{LONG_DIR}/x.dynolog").splitlines()[1]
    assert folder == "in …/stage2-cams/dyno-day-3" and len(folder) <= FOLDER_WIDTH


def footer_keys(app: DynoApp) -> list[str]:
    return [f"{k.key_display} {k.description}" for k in app.screen.query(FooterKey)]


@sync
async def test_a_paused_replay_footer_offers_play() -> None:
    # QA: paused, the footer still said "space Pause"
    session = ScriptedSession(snapshot())
    control = session.replay = FakeReplay()
    app = DynoApp(session, replay=True, replay_length_s=120.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        assert "space Pause" in footer_keys(app) and "space Play" not in footer_keys(app)
        await pilot.press("space")
        await pilot.pause(0.1)
        assert control.paused
        assert "space Play" in footer_keys(app) and "space Pause" not in footer_keys(app)
        await pilot.press("space")
        await pilot.pause(0.1)
        assert not control.paused and "space Pause" in footer_keys(app)
        control.paused = True  # the log ended: the replay holds there, paused
        session.publish(session.snapshot)
        app.refresh_snapshot()
        await pilot.pause(0.1)
        assert "space Play" in footer_keys(app)


def whole_keys(app: DynoApp, width: int) -> list[str]:
    """The footer's keys shown, in order, each asserted whole inside ``width``."""
    keys = [k for k in app.screen.query(FooterKey) if not k.has_class("-command-palette")]
    shown = [k for k in keys if k.display]
    # left out from the end, never a key in the middle (they are listed by priority)
    assert shown == keys[: len(shown)], [k.description for k in shown]
    for key in shown:
        assert key.region.width > 0 and key.region.right <= width, (key.description, key.region)
        text = f"{key.key_display} {key.description}"
        assert key.region.width >= len(text), (text, key.region)  # not cut ("g Pull")
    return [f"{k.key_display} {k.description}" for k in shown]


@sync
@pytest.mark.parametrize("size", SIZES)
async def test_a_replay_footer_shows_whole_keys_only(size: tuple[int, int]) -> None:
    # QA at 80x24: a replay's footer ended "g Pull", cut at the screen's edge
    session = ScriptedSession(snapshot())
    session.replay = FakeReplay()
    app = DynoApp(session, replay=True, replay_length_s=120.0)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        playing = whole_keys(app, size[0])
        assert playing[:3] == ["q Quit", "? Keys", "space Pause"], playing
        await pilot.press("space")  # paused: "space Play", one cell shorter
        await pilot.pause(0.2)
        assert "space Play" in whole_keys(app, size[0])
        await pilot.press("g")  # the dyno sheet's footer too
        await pilot.pause(0.3)
        assert app.screen.id == "pulls"
        assert whole_keys(app, size[0])[0] == "esc Dashboard"
    if size[0] >= 160:
        assert any(k.startswith("b ") for k in playing), playing  # wide: every key
