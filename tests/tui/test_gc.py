"""The app collects old cyclic garbage on a timer (issue 10's TUI soak)."""

from __future__ import annotations

import gc
import weakref

import pytest

from dynoai_tui.tui import app as app_module
from dynoai_tui.tui.app import DynoApp
from tests.tui.helpers import ScriptedSession, snapshot, sync


class _Node:
    """Stands for Textual's throw-away virtual DOM nodes: a cycle (node <-> its styles)."""

    def __init__(self) -> None:
        self.styles = {"node": self}


@sync
async def test_old_cyclic_garbage_is_collected_on_the_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Garbage that reached the oldest generation is freed without waiting for gen-2 thresholds.

    ``tune_gc`` raises the thresholds so frames stay fast; without the timer this
    cycle, dropped after surviving a collection, waits for millions of allocations.
    """
    monkeypatch.setattr(app_module, "FULL_GC_INTERVAL_S", 0.2)
    app = DynoApp(ScriptedSession(snapshot()))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        held = [_Node() for _ in range(100)]
        probe = weakref.ref(held[0])
        gc.collect()  # the nodes survive it: now in the oldest generation
        del held
        assert probe() is not None  # still there: only a full collection frees it
        for _ in range(20):
            await pilot.pause(0.1)
            if probe() is None:
                break
        assert probe() is None
