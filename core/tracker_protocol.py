"""What the engine needs from the per-vehicle tracker (``core.plan.tracker.VehicleTracker``).

Decision: a Protocol, so :mod:`core.session` depends on the hooks it calls, not
on the tracker (which pulls in the planner and the vehicle store); tests and the
simulator pass their own. Optional hooks (``add_segment``, ``store_error``,
``not_saved``, ``close_open_test``, ``plan_request``, ``interim_line``) are read with
``getattr`` where they are used, so a tracker without a store need not have them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from core.coverage.filters import FilterResult
from core.coverage.grid import CoverageGrid
from core.frames import Block
from core.plan.types import PlanView
from core.source import SourceEvent


class Tracker(Protocol):
    """What the engine needs from ``core.plan.tracker.VehicleTracker``."""

    def on_rows(
        self, block: Block, result: FilterResult, grid: CoverageGrid
    ) -> list[SourceEvent]: ...

    def plan(
        self, grid: CoverageGrid, values: Mapping[str, float], *, final: bool = False
    ) -> PlanView: ...

    def checkpoint(self, grid: CoverageGrid) -> None: ...

    def finish(self, grid: CoverageGrid, stats: Mapping[str, object]) -> None: ...

    def set_constraints(self, constraints: Any) -> None: ...

    def restart_run(self) -> None: ...

    @property
    def pulls_done(self) -> int: ...

    @property
    def pulls_max(self) -> int | None: ...
