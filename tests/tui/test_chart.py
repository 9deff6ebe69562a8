"""The strip chart repaints fixed regions that cover every bar that moved (issue 10)."""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.app import App, ComposeResult
from textual.geometry import Region

from dynoai_tui.tui.widgets.chart import StripChart
from tests.tui.helpers import sync

WINDOW_S = 30.0


class _Charts(App[None]):
    CSS = "StripChart { height: 4; width: 80; }"

    def compose(self) -> ComposeResult:
        yield StripChart("AFR", "", lo=11.0, hi=15.0, decimals=1, id="fed")


def _series(rng: np.random.Generator, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The last 30 s at 20 Hz ending at ``now``: a random walk around 13 and a 13.0 target."""
    t = np.arange(-WINDOW_S, 0.0, 0.05)
    seed = int(now * 20)
    walk = 13.0 + np.cumsum(np.random.default_rng(seed).normal(0.0, 0.05, t.size))
    walk[rng.random(t.size) < 0.02] = np.nan  # dropped samples
    return t, walk, np.full(t.size, 13.0)


def _shown(chart: StripChart) -> list[str]:
    """The chart's lines as Textual will paint them (its line cache, dirty parts redrawn)."""
    width, height = chart.size
    return [strip.text for strip in chart.render_lines(Region(0, 0, width, height))]


@sync
async def test_the_chart_refreshes_fixed_regions_that_cover_every_changed_bar() -> None:
    """Regions fitted to the changed bars were new almost every frame; each new Region
    pair lands in Textual's geometry LRU caches (up to 4,096 entries), which the TUI soak
    saw filling for 40 minutes. Two regions per chart (newest bar, whole plot) plus the
    label column. The terminal repaints only refreshed regions, so every cell whose
    character changed from one frame to the next must lie in one refreshed that frame.
    """
    app = _Charts()
    async with app.run_test(size=(90, 12)) as pilot:
        chart = app.query_one("#fed", StripChart)
        frame: list[Region] = []
        real_refresh = chart.refresh

        def spy(*args: Any, **kwargs: Any) -> Any:
            frame.extend(r for r in args if isinstance(r, Region))
            if not args:
                frame.append(Region(0, 0, *chart.size))
            return real_refresh(*args, **kwargs)

        chart.refresh = spy  # type: ignore[method-assign]
        rng = np.random.default_rng(3)
        now, changed_cells = 100.0, 0
        regions: set[tuple[int, ...]] = set()
        before = _shown(chart)
        for _ in range(300):
            now += 0.05
            frame.clear()
            chart.update_series(now, *_series(rng, now))
            await pilot.pause()
            after = _shown(chart)
            for y, (old, new) in enumerate(zip(before, after, strict=True)):
                for x, (a, b) in enumerate(zip(old, new, strict=True)):
                    if a != b:
                        changed_cells += 1
                        assert any(r.contains(x, y) for r in frame), (x, y, frame)
            regions.update(tuple(r) for r in frame)
            before = after
        assert changed_cells > 300  # the bars did move
        assert any(ch in "".join(after) for ch in "▁▂▃▄▅▆▇█")
        assert len(regions) <= 3, sorted(regions)
