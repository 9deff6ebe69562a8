"""The next-tests panel fits the window: >= 3 suggestions at 80x24, more on a tall one."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from core.plan.types import PlanView
from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.widgets.heatmap import Heatmap
from dynoai_tui.tui.widgets.panels import SuggestionsPanel, plan_text
from tests.tui.helpers import ScriptedSession, snapshot
from tests.tui.test_snapshots import frozen_session


def shown(panel: SuggestionsPanel) -> int:
    return len(re.findall(r"^\d+ ", panel.plain, flags=re.MULTILINE))


def test_panel_shows_as_many_as_fit_and_follows_resizes() -> None:
    session = frozen_session()

    async def go() -> tuple[int, int, int, str]:
        app = DynoApp(session, clock=lambda: 1_700_000_000.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            panel = app.screen.query_one(SuggestionsPanel)
            small = shown(panel)
            await pilot.resize_terminal(160, 48)
            await pilot.pause(0.2)
            tall = shown(panel)
            text = panel.plain
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.2)
            return small, tall, shown(panel), text

    small, tall, back, text = asyncio.run(go())
    assert small >= 3
    assert tall > small
    assert back == small
    # full descriptions, wrapped rather than cut (the longest first: a hold of 8-9 steps)
    joined = " ".join(text.split())
    descriptions = [s.description for s in session.snapshot.plan.suggestions[:tall]]
    assert max(len(d) for d in descriptions) > 60
    assert "…" not in text and all(d in joined for d in descriptions)


def test_filtered_list_shows_its_entries() -> None:
    from core.plan.types import FilteredTest

    plan = PlanView(
        filtered=(
            FilteredTest(
                "wot_pull", "WOT pull 2000-5800 rpm", "max_pulls_per_session 1 reached (1 done)"
            ),
        )
    )
    text = plan_text(plan, width=40, show_filtered=True, height=20).plain
    assert "Filtered:" in text and "max_pulls_per_session 1" in text


def test_pulls_over_the_limit_raise_an_alarm() -> None:
    from core.snapshot_builder import SnapshotBuilder
    from core.vehicle import VehicleConfig

    builder = SnapshotBuilder(
        VehicleConfig(), [], clock=lambda: 0.0, data_clock=True,
        stale_limit=lambda name: 1.0, tick_s=0.03,
    )  # fmt: skip
    assert builder._alarms({}, (), "", 2, 1) == ("PULLS 2/1: OVER THE SESSION LIMIT",)
    assert builder._alarms({}, (), "", 1, 1) == ()


def test_panel_reports_checked_predictions_not_the_model_fit() -> None:
    """The panel's error figure is the before-the-fact check, per test type.

    The kinematic model's after-the-fact fit (``prediction_error_pct``) read as
    "planner error 60%" beside "checked: part 2%" in the demo: a tuner took the fit
    for the planner's accuracy.
    """
    plan = PlanView(prediction_error_pct=60.0, errors_by_type=(("part_throttle_sweep", 2.0, 5),))
    text = plan_text(plan, width=40, show_filtered=False, height=20).plain
    assert "checked: part 2% (5)" in text
    assert "60%" not in text


def test_every_line_of_a_suggestion_fits_the_80x24_panel() -> None:
    """At 80x24 the panel is ~23 columns: "   +300.3 gain · 1.0 min" wrapped "min" onto a
    line of its own that the panel did not count (seen in the demo in tmux), so the list
    claimed one row more than it had. The gain line now fits or drops the word "gain"."""
    from core.plan.types import Suggestion

    sug = Suggestion(
        "part_throttle_sweep", "row sweeps 2000<->4750 rpm at 400 rpm/s, one MAP row per ramp",
        (2000.0, 4750.0), (55.0, 95.0), 1.0, 300.3, 1.0, "high", 1, ((0, 0),),
    )  # fmt: skip
    for width in (23, 24, 40):
        text = plan_text(PlanView(suggestions=(sug,)), width=width, show_filtered=False).plain
        assert all(len(line) <= width for line in text.splitlines()), (width, text)
        assert "1.0 min" in text and "1 cell " in text
    assert (
        "1 cell trusted · 1.0 min"
        in plan_text(PlanView(suggestions=(sug,)), width=40, show_filtered=False).plain
    )


def test_a_suggestion_says_what_it_brings_in_cells_not_weighted_gain() -> None:
    # QA: "+540.0 gain" on a 256-cell table, beside a line speaking of cells a minute,
    # and "1 0.76" listed over "2 1.00" (walk order), a ranking bug to a tuner
    from core.plan.types import Suggestion

    trusted = Suggestion(
        "steady_state", "hold 3000 rpm: MAP 95 85 kPa, each until trusted", (3000.0, 3000.0),
        (85.0, 95.0), 0.3, 540.0, 0.76, "high", 1, ((14, 9), (13, 9)),
        expected_hits=((14, 9, 120.0), (13, 9, 118.0), (12, 9, 3.0)),
    )  # fmt: skip
    partial = replace(trusted, cells=(), efficiency=1.0, expected_gain=12.0)
    plan = PlanView(suggestions=(trusted, partial))
    wide = plan_text(plan, width=40, show_filtered=False).plain
    assert "   2 cells trusted · 0.3 min" in wide and "data in 3 cells · 0.3 min" in wide
    assert "540" not in wide and "0.76" not in wide and "1.00" not in wide
    assert wide.startswith("1  hold 3000 rpm") and "\n2  hold 3000 rpm" in wide
    narrow = plan_text(plan, width=23, show_filtered=False).plain
    assert "   2 cells · 0.3 min" in narrow and "   data in 3 · 0.3 min" in narrow
    assert all(len(line) <= 23 for line in narrow.splitlines()), narrow


def test_with_nothing_worth_a_test_the_panel_says_why_not_waiting() -> None:
    # A guided run that had covered all it could reach: the panel read "No test suggested
    # yet: waiting for the planner." for the rest of the session, while the planner had
    # answered that no test gains a cell a minute.
    from core.plan.simplan import NOTHING_WORTH_IT
    from core.plan.types import FilteredTest

    plan = PlanView(
        instruction=NOTHING_WORTH_IT,
        filtered=(
            FilteredTest(
                "wot_pull", "WOT pull 2000-4500 rpm", "gains 0.2 in 1.5 min, under 1 a minute"
            ),
        ),
    )
    text = " ".join(plan_text(plan, width=40, show_filtered=True, height=20).plain.split())
    assert NOTHING_WORTH_IT in text and "waiting" not in text
    assert "under 1 a minute" in text
    waiting = plan_text(PlanView(), width=40, show_filtered=True).plain
    assert "waiting for the planner" in " ".join(waiting.split())


def test_the_filtered_header_never_stands_without_an_entry() -> None:
    # At 80x24 the panel ended in a bare "Filtered:": no room was left for its first
    # entry (two wrapped lines).
    from core.plan.types import FilteredTest

    plan = PlanView(
        filtered=(FilteredTest("wot_pull", "WOT pull 2000-5800 rpm", "gains 0.2 in 2.3 min"),)
    )
    for height in range(1, 8):
        text = plan_text(plan, width=24, show_filtered=True, height=height).plain
        if "Filtered:" in text:
            assert "WOT pull" in text, (height, text)
    assert "Filtered:" in plan_text(plan, width=24, show_filtered=True, height=8).plain


def _opening_walk_plan() -> PlanView:
    """The plan the demo opens with at 80x24, after the idle holds: two MAP-ramp walks
    (with and without the lead columns, descriptions from the real ``Recipe``), then the
    column holds, five next cells and a checked idle hold."""
    from dataclasses import replace

    from core.plan.recipe import Recipe
    from core.plan.types import Suggestion, Target

    rows = (95.0, 85.0, 80.0, 75.0, 70.0, 65.0, 60.0, 55.0, 50.0)
    edges = (47.5, 52.5, 57.5, 62.5, 67.5, 72.5, 77.5, 82.5, 87.5, 91.5)
    # as in the demo: the ride up left data in the 95-kPa cells (rolled past quickly) and
    # the up ramps turn at 85 kPa
    down, up = (1.1,) * 8 + (0.5,), (1.1,) * 8 + (0.0,)
    walk = Recipe(
        "map_ramps", 2000.0, 4500.0, rows, columns=(4500.0, 4000.0, 3500.0, 3000.0, 2500.0, 2000.0),
        map_edges=edges, cell_s=1.1, cell_times=(down, up) * 3,
    )  # fmt: skip
    tests = [walk, replace(walk, lead=(5500.0, 5000.0))]
    tests += [Recipe("steady_state", r, r, rows) for r in (4500.0, 4000.0, 3500.0, 2000.0)]
    suggestions = tuple(
        Suggestion(
            t.test_type,
            t.description,
            (t.rpm_lo, t.rpm_hi),
            (50.0, 95.0),
            1.1,
            540.0 - 50 * i,
            1.0 - 0.05 * i,
            "high",
            1,
            ((0, 0),),
            recipe=t,
        )  # fmt: skip
        for i, t in enumerate(tests)
    )
    # the demo's own words: a walk wraps to 9-10 rows at 80x24
    assert "quicker past cells with data" in walk.description
    assert "4000 up to 85, 3500 down" in walk.description
    targets = tuple(Target(0, k, rpm, 50.0, 1, 1) for k, rpm in enumerate(range(2000, 4500, 500)))
    return PlanView(
        suggestions=suggestions, targets=targets, errors_by_type=(("idle_low_map", 4.0, 1),)
    )


def test_at_80x24_three_suggestions_are_seen_when_two_walks_lead(monkeypatch: Any) -> None:
    # The demo's first minute at 80x24 (tmux): two MAP-ramp walks took the panel's 17 rows
    # and the third suggestion and the next cells were drawn past its edge, while the
    # count of suggestions in the text (``shown``) read 3. What counts is what fits.
    from core.session import Session

    session = frozen_session()
    plan = _opening_walk_plan()
    snap = replace(session.snapshot, plan=plan)
    monkeypatch.setattr(Session, "snapshot", property(lambda self: snap))

    async def go(size: tuple[int, int]) -> tuple[str, int, int]:
        app = DynoApp(session, clock=lambda: 1_700_000_000.0)
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            panel = app.screen.query_one(SuggestionsPanel)
            return panel.plain, panel.content_region.height, panel.content_region.width

    for size in ((80, 24), (100, 30), (160, 48)):
        text, height, width = asyncio.run(go(size))
        lines = text.splitlines()
        assert len(lines) <= height, (size, height, text)
        assert all(len(line) <= width for line in lines), (size, text)
        assert shown_in(text) >= 3, (size, text)
        assert "Next cells: 2000/50" in text, (size, text)
        # the top suggestion is always whole: it is what the tuner does next
        assert " ".join(plan.suggestions[0].description.split()) in " ".join(text.split())
    # on a tall window nothing is cut
    assert "…" not in text and shown_in(text) == len(plan.suggestions)


def test_descriptions_are_cut_only_when_three_do_not_fit() -> None:
    plan = _opening_walk_plan()
    for height in range(8, 60):
        text = plan_text(plan, width=23, show_filtered=True, height=height).plain
        lines = text.splitlines()
        assert len(lines) <= height and shown_in(text) >= 3, (height, text)
        if "…" in text:
            # cut: three full ones and the lines under them would not have fitted
            full = plan_text(plan, width=23, show_filtered=True, height=999).plain
            three = full.split("\n4 ")[0].splitlines()
            under = full[full.index("Next cells") :].splitlines() if "Next cells" in text else []
            assert len(three) + len(under) > height, (height, text)


def shown_in(text: str) -> int:
    return len(re.findall(r"^\d+ ", text, flags=re.MULTILINE))


def test_at_80x24_every_key_of_the_footer_is_whole() -> None:
    # At 80 columns the command-palette hint took the right edge and the quit key read
    # "q Q"; the compact layout drops the hint (ctrl+p still opens the palette).
    from textual.widgets._footer import FooterKey

    async def go(size: tuple[int, int]) -> list[tuple[int, int, str]]:
        app = DynoApp(frozen_session(), clock=lambda: 1_700_000_000.0)
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            return sorted(
                (k.region.x, k.region.right, k.description) for k in app.screen.query(FooterKey)
            )

    for size in ((80, 24), (160, 48)):
        keys = asyncio.run(go(size))
        assert "Quit" in [d for _, _, d in keys] and "Keys" in [d for _, _, d in keys], keys
        assert keys[-1][1] <= size[0], (size, keys)
        # no key drawn over the one before it (the palette hint sat on "Quit" at x 68-71)
        assert all(a[1] <= b[0] for a, b in zip(keys, keys[1:], strict=False)), (size, keys)


def test_at_80x24_a_replay_footer_keeps_quit_and_its_seek_keys() -> None:
    # A replay adds five keys: at 80 columns the footer cut "q Quit" (listed last) and
    # the seek keys off its right edge
    from textual.widgets._footer import FooterKey

    async def go() -> dict[str, int]:
        session = ScriptedSession(snapshot())
        session.replay = object()  # a replay under way: its keys are offered
        app = DynoApp(session, replay=True, replay_length_s=120.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            return {
                k.description: k.region.right
                for k in app.screen.query(FooterKey)
                if k.region.width > 0
            }

    keys = asyncio.run(go())
    # "? Keys" too: the box it opens lists the keys the footer cuts off
    for key in ("Quit", "Keys", "Pause", "Faster", "Slower", "-10s", "+10s", "View"):
        assert key in keys and keys[key] <= 80, (key, keys)


def test_at_80x24_the_dyno_sheet_footer_keys_are_whole() -> None:
    # The pulls screen kept the palette hint at 80 columns: its keys read "o Region▏"
    from textual.widgets._footer import FooterKey

    async def go() -> list[tuple[int, int, str]]:
        app = DynoApp(frozen_session(), clock=lambda: 1_700_000_000.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("g")
            await pilot.pause(0.3)
            assert app.screen.id == "pulls"
            return sorted(
                (k.region.x, k.region.right, k.description)
                for k in app.screen.query(FooterKey)
                if k.region.width > 0
            )

    keys = asyncio.run(go())
    assert {"Dashboard", "Quit", "Bell"} <= {d for _, _, d in keys}, keys
    assert keys[-1][1] <= 80 and all(a[1] <= b[0] for a, b in zip(keys, keys[1:], strict=False))


def test_the_verdict_and_the_filtered_list_fit_the_panel_together() -> None:
    # With no suggestion the planner's verdict wraps to several rows at 80x24; the
    # filtered list under it counted none of them and ran past the panel's edge.
    from core.plan.simplan import NOTHING_WORTH_IT
    from core.plan.types import FilteredTest

    plan = PlanView(
        instruction=NOTHING_WORTH_IT,
        filtered=tuple(
            FilteredTest("steady_state", f"hold {r} rpm: MAP 95 kPa", "gains 0.2 in 0.5 min")
            for r in range(2000, 7000, 500)
        ),
    )
    for height in range(4, 30):
        text = plan_text(plan, width=23, show_filtered=True, height=height).plain
        assert len(text.splitlines()) <= height, (height, text)
        assert NOTHING_WORTH_IT.split()[0] in text


def test_the_test_running_now_is_marked_not_ranked() -> None:
    # Listed first while it runs (core.plan.instruction.running_first), its own score
    # read "0.84" above a "1.00": the entry says it runs now instead
    plan = frozen_session().snapshot.plan
    ranked = plan_text(plan, width=40, show_filtered=False, height=30).plain
    assert re.match(r"1  (⚠ )?" + plan.suggestions[0].description.split()[0], ranked), ranked
    moved = (plan.suggestions[2], *plan.suggestions[:2], *plan.suggestions[3:])
    running = plan_text(
        replace(plan, suggestions=moved, running=True), width=40, show_filtered=False, height=30
    ).plain
    assert running.startswith("1  now   " + moved[0].description.split()[0])
    assert re.search(r"\n2  (⚠ )?" + moved[1].description.split()[0], running), running


def test_at_80x24_the_header_names_the_heatmap_view() -> None:
    # The compact layout has no heatmap border to title: QA pressed v through the six
    # views at 80x24 with nothing saying which one showed
    session = frozen_session()

    async def go() -> list[str]:
        app = DynoApp(session, clock=lambda: 1_700_000_000.0)
        headers = []
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            for _ in range(6):
                headers.append(app.screen.query_one("#header").plain)  # type: ignore[attr-defined]
                await pilot.press("v")
                await pilot.pause(0.1)
        return headers

    headers = asyncio.run(go())
    assert "mean AFR" not in headers[0]  # hits, the default: the header as it was
    assert "mean AFR" in headers[1] and "AFR error %" in headers[2]
    # the VE view's one legend hint that fits: "~" marks a smoothed (extrapolated) value
    assert headers[3].endswith("VE corr % (~extrap e:export)")
    assert all(len(h) <= 80 for h in headers), headers


def test_a_test_into_knock_cells_is_marked_at_any_width() -> None:
    frozen = frozen_session().snapshot.plan
    plan = replace(
        frozen, suggestions=tuple(replace(s, knock_cells=()) for s in frozen.suggestions)
    )
    first = replace(plan.suggestions[0], knock_cells=((14, 9),))
    marked = replace(plan, suggestions=(first, *plan.suggestions[1:]))
    narrow = plan_text(marked, width=23, show_filtered=False, height=30).plain
    assert narrow.startswith("1  ⚠ ") and "knock seen there" not in narrow
    wide = plan_text(marked, width=60, show_filtered=False, height=30).plain
    assert "⚠ " in wide.splitlines()[0] and wide.count("knock seen there") == 1
    clean = replace(plan, suggestions=(replace(first, knock_cells=()), *plan.suggestions[1:]))
    assert "⚠" not in plan_text(clean, width=60, show_filtered=False, height=30).plain


def test_an_estimate_says_so_above_its_suggestions_and_still_fits() -> None:
    from dynoai_tui.tui.widgets.panels import ESTIMATE_NOTE

    plan = frozen_session().snapshot.plan
    for height in range(6, 30):
        text = plan_text(
            replace(plan, estimate=True), width=23, show_filtered=True, height=height
        ).plain
        # under 7 rows the three suggestions take the panel (the line says it too)
        assert text.startswith(ESTIMATE_NOTE.split()[0]) is (height >= 7), (height, text)
        assert len(text.splitlines()) <= height and shown_in(text) >= 3, (height, text)
    plain = plan_text(plan, width=23, show_filtered=True, height=20).plain
    assert ESTIMATE_NOTE.split()[0] not in plain


@pytest.mark.parametrize(
    ("line", "keeps"),
    [
        (
            "next: hold 1750 rpm: MAP "
            + " ".join(str(k) for k in range(85, 20, -5))
            + " kPa, each until trusted",
            ["next: hold 1750 rpm: MAP 85 80", " 25 kPa"],
        ),
        (
            "next: hold 1500 rpm: MAP 95 85 80 75 70 65 60 55 50 45 kPa, each until trusted",
            ["next: hold 1500 rpm: MAP 95 85 80 75 70 65 60 55 50 45 kPa"],
        ),
        (
            "4500 rpm: roll MAP down to 50 kPa, 1.1 s a cell, quick past 70-75 (now 62), "
            "then 4000 rpm",
            ["4500 rpm: roll MAP down to 50 kPa", "(now 62)"],
        ),
    ],
)
def test_at_80x24_a_long_instruction_reads_whole(line: str, keeps: list[str]) -> None:
    # QA: "▶ next: hold 1750 rpm: MAP 85 80 75 70 65 60 55 50 45 40 35 30 25 kPa, each",
    # then "... kPa, each until trus…": shorter wording, whole parts left out, no cut word
    from dynoai_tui.tui.widgets.panels import InstructionLine

    async def go() -> tuple[str, int]:
        session = ScriptedSession(snapshot(plan=PlanView(instruction=line)))
        app = DynoApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            widget = app.dashboard.query_one(InstructionLine)
            return widget.render().plain, widget.content_region.width

    shown, width = asyncio.run(go())
    assert len(shown) <= width and "…" not in shown, (shown, width)
    assert all(part in shown for part in keeps), (shown, keeps)


def test_the_coverage_says_how_much_of_what_the_engine_reaches_is_trusted() -> None:
    # QA read "covered as far as this engine reaches" beside "56% covered" with no word
    # that the rest were cells no engine of the kind holds
    from dynoai_tui.commands.headless import summary_text

    hits = np.zeros((16, 16), dtype=np.int64)
    hits[5, 3:7] = 50  # four trusted cells
    reach = np.zeros((16, 16), dtype=bool)
    reach[2:12, 1:13] = True  # 120 cells the engine reaches
    plan = PlanView(reachable=tuple(bool(x) for x in reach.ravel()))
    snap = snapshot(hits=hits, plan=plan)
    trusted = int(np.count_nonzero((snap.grid.confidence >= 1.0) & reach))
    assert trusted == 4

    async def go() -> str:
        app = DynoApp(ScriptedSession(snap))
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            return str(app.dashboard.query_one(Heatmap).border_subtitle)

    subtitle = asyncio.run(go())
    assert subtitle.endswith(" · 4/120 reachable"), subtitle
    assert "(4 of 256 cells trusted; 4 of 120 reachable)" in summary_text(snap, recording_path=None)
    # unknown (the kinematic planner): neither says a share
    plain = snapshot(hits=hits)
    assert "reachable" not in summary_text(plain, recording_path=None)


def test_a_cell_no_test_reaches_is_blank_not_dotted() -> None:
    # the 105-kPa row and the columns over the redline were dotted like cells waiting
    # for data; the "?" box names the blank
    from dynoai_tui.tui.app import HEATMAP_LEGEND

    hits = np.zeros((16, 16), dtype=np.int64)
    hits[15, 2] = 50  # data in an unreachable cell still shows
    reach = np.ones((16, 16), dtype=bool)
    reach[15, :] = False  # the 105-kPa row
    plan = PlanView(reachable=tuple(bool(x) for x in reach.ravel()))

    async def go() -> list[list[str]]:
        app = DynoApp(ScriptedSession(snapshot(hits=hits, plan=plan)))
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            return app.dashboard.query_one(Heatmap)._texts

    texts = asyncio.run(go())
    assert texts[15][0] == " " and texts[15][2] != " " and texts[14][0] == "·"
    assert ("blank", "no data, and no test reaches the cell on this engine") in HEATMAP_LEGEND


def test_the_dyno_sheet_leaves_the_dashboards_view_keys_alone() -> None:
    # QA: "v" on the dyno sheet changed the hidden heatmap's view with nothing to say so,
    # and the sheet's footer listed the dashboard's keys
    from textual.widgets._footer import FooterKey

    async def go() -> tuple[str, str, set[str]]:
        app = DynoApp(frozen_session(), clock=lambda: 1_700_000_000.0)
        async with app.run_test(size=(160, 48)) as pilot:
            heatmap = app.dashboard.query_one(Heatmap)
            before = heatmap.view
            await pilot.press("g")
            await pilot.pause(0.3)
            assert app.screen.id == "pulls"
            await pilot.press("v", "o")
            await pilot.pause(0.1)
            shown = {k.description for k in app.screen.query(FooterKey) if k.region.width > 0}
            overlay = heatmap.overlay
            await pilot.press("escape")
            await pilot.pause(0.1)
            await pilot.press("v")
            await pilot.pause(0.1)
            assert not overlay
            return before, heatmap.view, shown

    before, after, shown = asyncio.run(go())
    assert after != before  # v works on the dashboard, once (not twice)
    from dynoai_tui.tui.widgets.heatmap import VIEWS

    assert VIEWS.index(after) == (VIEWS.index(before) + 1) % len(VIEWS)
    assert not {"View", "Regions", "Limits"} & shown and "Quit" in shown, shown


def test_one_trusted_cell_is_not_zero_percent_covered() -> None:
    # QA: the status line read "cov 0%" with one cell of 256 trusted (0.4 %); the
    # heatmap's subtitle said "0% covered" the same way
    hits = np.zeros((16, 16), dtype=np.int64)
    hits[5, 3] = 50

    async def go() -> str:
        app = DynoApp(ScriptedSession(snapshot(hits=hits)))
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            return str(app.dashboard.query_one(Heatmap).border_subtitle)

    subtitle = asyncio.run(go())
    assert subtitle.startswith("<1% covered") and "1/256 cells trusted" in subtitle, subtitle
