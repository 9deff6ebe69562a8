"""A live Source the test drives, run through the real engine (core.session.Session).

``PushSource`` is a real :class:`core.source.Source`: its blocks carry
``time.monotonic()`` stamps like a live driver, go through the session's pump
thread, fusion, filters and grid, and reach the dashboard only through the
published Snapshot. The test decides the values instead of a device.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Mapping

import numpy as np

from core.frames import Block
from core.source import Source, SourceState

CHANNELS = {
    "rpm": "rpm",
    "map_kpa": "kPa",
    "tps_pct": "%",
    "lambda": "λ",
    "lambda_target": "λ",
    "clt_c": "°C",
    "iat_c": "°C",
    "knock_count": "count",
}
WARM = {"clt_c": 90.0, "iat_c": 30.0, "tps_pct": 40.0, "lambda": 0.88, "lambda_target": 0.88}


class PushSource(Source):
    """Delivers the blocks the test pushes, stamped on the monotonic clock."""

    def __init__(self, name: str = "bench") -> None:
        super().__init__(name, f"{name}:")
        self._blocks: queue.Queue[Block] = queue.Queue()

    def open(self) -> None:
        self.set_status(SourceState.CONNECTED)

    def read(self, timeout: float = 0.1) -> Block | None:
        try:
            return self._blocks.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.set_status(SourceState.FINISHED)

    def channels(self) -> dict[str, str]:
        return dict(CHANNELS)

    def push(self, values: Mapping[str, float], n: int = 20, rate_hz: float = 1000.0) -> None:
        """``n`` samples ending now, holding ``values`` (warm engine defaults filled in)."""
        now = time.monotonic()
        t = now - np.arange(n - 1, -1, -1) / rate_hz
        cols = {k: np.full(n, float(v)) for k, v in {**WARM, **values}.items()}
        self._blocks.put(Block(self.name, t, cols))


async def feed_until(
    pilot: object,
    source: PushSource,
    values: Mapping[str, float],
    done: Callable[[], bool],
    timeout_s: float = 4.0,
) -> None:
    """Keep the source streaming ``values`` (like a live engine) until ``done()``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        source.push(values)
        await pilot.pause(0.02)  # type: ignore[attr-defined]
        if done():
            return
    raise AssertionError(f"the dashboard did not show {dict(values)} within {timeout_s} s")
