"""Pilot tests: the dyno sheet screen's legend, ticks and toasts (QA at 80x24 to 160x48)."""

from __future__ import annotations

import re

import pytest
from textual.geometry import Region
from textual.widgets._toast import Toast

from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.screens import pulls as sheet_screen
from dynoai_tui.tui.screens.pulls import AfrPlot, PowerPlot, PullsScreen
from tests.tui.helpers import sync
from tests.tui.test_pulls_alarms import make_pull, session_with_sheet

SIZES = [(80, 24), (100, 30), (160, 48)]


def x_tick_labels(plot_text: str) -> list[str]:
    lines = plot_text.splitlines()
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    return lines[bottom + 1].split()


@pytest.mark.parametrize(
    ("low", "high", "count", "step"),
    [(2575.0, 5825.0, 8, 500.0), (2575.0, 5825.0, 4, 1000.0), (58.6, 101.7, 6, 10.0)],
)
def test_ticks_are_round_steps_inside_the_data(low, high, count, step):
    ticks, labels = sheet_screen.nice_ticks(low, high, count)
    assert 2 <= len(ticks) <= count
    assert all(low <= t <= high and t % step == 0 for t in ticks), ticks
    assert ticks[1] - ticks[0] == step and all("." not in label for label in labels)


def test_afr_ticks_keep_the_decimals_their_step_needs():
    ticks, labels = sheet_screen.nice_ticks(12.6, 13.3, 4)
    assert labels == ["12.6", "12.8", "13.0", "13.2"]


@sync
async def test_the_sheet_names_every_drawn_pull_outside_the_plot_with_round_rpm_ticks() -> None:
    # QA: plotext's legend sat on the peak torque (top left of the data), named only
    # pull "#2" of the two drawn, and the rpm axis read "2575.0  3387.5  4200.0"
    for size in SIZES:
        session, sheet = session_with_sheet()
        sheet.pulls = (make_pull(1, 150.0), make_pull(2, 155.0))
        app = DynoApp(session)
        async with app.run_test(size=size) as pilot:
            await pilot.press("g")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PullsScreen)
            legend = str(screen.query_one("#pulls-legend").render())
            assert "hp #2" in legend and "N·m #2" in legend and "#1" in legend, (size, legend)
            for plot_type in (PowerPlot, AfrPlot):
                plot = screen.query_one(plot_type)
                if not plot.display:
                    continue
                drawn = plot.render().plain  # type: ignore[union-attr]
                assert "#1" not in drawn and "#2" not in drawn, (size, drawn)
                labels = x_tick_labels(drawn)
                assert len(labels) >= 3, (size, labels)
                assert all(re.fullmatch(r"\d+", s) and int(s) % 250 == 0 for s in labels), (
                    size,
                    labels,
                )


@sync
async def test_a_pull_finished_while_the_sheet_is_open_is_drawn_not_toasted() -> None:
    # the "Pull done" toast sat over the sheet's table of peaks for 8 s
    session, sheet = session_with_sheet()
    app = DynoApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("g")
        await pilot.pause()
        sheet.pulls = (make_pull(1, 150.0),)
        session.publish(session.snapshot)
        app.refresh_snapshot()
        await pilot.pause()
        assert len(app.screen.pulls) == 1  # type: ignore[attr-defined]
        assert "Pull done" not in [n.title for n in app._notifications]


def toasts_shown(app: DynoApp) -> list[str]:
    """The text of each toast on the current screen, as it is painted."""
    texts = []
    for toast in app.screen.query(Toast):
        width, height = toast.outer_size
        texts.append("\n".join(s.text for s in toast.render_lines(Region(0, 0, width, height))))
    return texts


@sync
@pytest.mark.parametrize("size", [(100, 30), (160, 48)], ids=["100x30", "160x48"])
async def test_opening_the_sheet_dismisses_the_pull_done_toast_and_keeps_the_others(
    size: tuple[int, int],
) -> None:
    # a "Pull done" toast already up when g opened the sheet covered it for its full
    # 8 s; the sheet draws that pull, but an error or a warning still has to be read
    session, sheet = session_with_sheet()
    app = DynoApp(session)
    async with app.run_test(size=size, notifications=True) as pilot:
        await pilot.pause()
        sheet.pulls = (make_pull(1, 150.0),)
        session.publish(session.snapshot)
        app.refresh_snapshot()
        app.notify("Recording failed: disk full", severity="error", timeout=8)
        app.notify("Constraints NOT saved for W", severity="warning", timeout=8)
        await pilot.pause()
        before = "\n".join(toasts_shown(app))
        assert "Pull done" in before and "Pull 1:" in before, before
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, PullsScreen)
        on_sheet = "\n".join(toasts_shown(app))
        assert "Pull done" not in on_sheet and "Pull 1:" not in on_sheet, on_sheet
        assert "disk full" in on_sheet and "NOT saved" in on_sheet, on_sheet
        await pilot.press("g")  # back on the dashboard: gone there too, the others stay
        await pilot.pause()
        back = "\n".join(toasts_shown(app))
        assert "Pull done" not in back and "disk full" in back and "NOT saved" in back, back
