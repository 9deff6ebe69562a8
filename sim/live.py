"""Live hold steps: a step ends when its cell turns trusted, as the tuner sees it on the grid.

A stopwatch routine holds every MAP step the same time: too short for a noisy idle
cell, longer than needed for a settled midrange one. A tuner watching a live grid
moves on when the cell is done: the planner's instruction says so in this product,
and a tuner running his own routine watches the hit counter of his software
(TunerStudio's VE Analyze and Power Vision both show hits per cell). Both are
modelled here the same way, so neither side gets a faster eye: the grid is looked at
every :data:`WATCH_S` seconds and a step is ended (``Simulation.cut``) at the first
look that finds its cell covered, or after its ``max_s``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.frames import Block
from core.pipeline import Pipeline
from core.plan.testsim import ADDITIVE, grid_arrays
from core.plan.value import confidence
from sim.scenarios import (
    ARRIVED_RPM,
    ARRIVED_SETTLE_S,
    Idle,
    LiveStep,
    Segment,
    SteadyHold,
    live_steps,
)
from sim.simulation import Simulation

F64 = npt.NDArray[np.float64]

WATCH_S = 0.25
"""How often the tuner looks at the cell (a screen refresh and a glance)."""
MAX_STEP_S = 10.0
"""Longest a tuner holds one MAP step waiting for its cell before moving on."""


def with_live_steps(
    segments: tuple[Segment, ...],
    max_s: float = MAX_STEP_S,
    step_max_s: Callable[[float, float], float] | None = None,
) -> tuple[Segment, ...]:
    """``segments`` with every steady hold split into live steps (see :func:`live_steps`).

    ``step_max_s(rpm, map_kpa)``, when given, is each step's longest hold instead of
    ``max_s`` (the planner waits long only for cells it expects the step to complete).
    """
    out: list[Segment] = []
    for seg in segments:
        if not isinstance(seg, SteadyHold):
            out.append(seg)
            continue
        for step in live_steps(seg, max_s):
            if step_max_s is not None and isinstance(step, LiveStep):
                step = replace(step, max_s=step_max_s(step.rpm, step.map_kpa))
            out.append(step)
    return tuple(out)


def step_cell(axes: TableAxes, step: LiveStep) -> int:
    """Flat index of the cell a live step fills (the nearest cell of its rpm and MAP)."""
    r = int(np.argmin(np.abs(np.asarray(axes.rpm) - step.rpm)))
    m = int(np.argmin(np.abs(np.asarray(axes.map_kpa) - step.map_kpa)))
    return m * len(axes.rpm) + r


class Watcher:
    """Reads a looping simulation into a pipeline and ends live steps whose cell is covered."""

    def __init__(
        self,
        sim: Simulation,
        pipe: Pipeline,
        rule: CoverageRule,
        base: Mapping[str, F64] | None = None,
        on_cut: Callable[[LiveStep], None] | None = None,
        cut_idle: bool = False,
    ) -> None:
        """Watch ``sim`` into ``pipe``; ``on_cut`` is told of each live step cut short.

        ``cut_idle``: an idle also ends at the first look that finds the cell the engine
        idles in trusted (a tuner watching the hit counter stops idling once the idle cell
        is done, or does not idle at all when an earlier session did it).
        """
        self.sim = sim
        self.pipe = pipe
        self.rule = rule
        self.base = base
        self.on_cut = on_cut
        self.cut_idle = cut_idle
        self.cuts = 0
        self._on_column: tuple[float, float] | None = None
        """(start of the step, sim time its engine came on the step's rpm to stay)."""

    def covered(self, cell: int) -> bool:
        now = grid_arrays(self.pipe.grid)
        if self.base is not None:
            now = {k: now[k] + np.asarray(self.base[k], dtype=np.float64).ravel() for k in ADDITIVE}
        return bool(confidence({k: now[k][cell : cell + 1] for k in ADDITIVE}, self.rule)[0] >= 1.0)

    def limit(self, n: int) -> int:
        """Samples to read next: never past a live step's next look, nor across segments."""
        sim = self.sim
        if sim.segment_left == 0:
            return 1
        if isinstance(sim.current, LiveStep) or self._watching_idle():
            n = min(n, max(1, round(WATCH_S * sim.rate_hz)))
        return min(n, sim.segment_left)

    def read(self, n: int) -> Block:
        """The next block (at most ``n`` samples), binned; cuts the step if its cell is done."""
        block = self.sim.next_block(self.limit(n))
        assert block is not None
        self.pipe.push(block)
        self.look(block)
        return block

    def _watching_idle(self) -> bool:
        return self.cut_idle and type(self.sim.current) is Idle

    def look(self, block: Block | None = None) -> None:
        step = self.sim.current
        if self.sim.segment_left == 0:
            return
        if self._watching_idle() and block is not None and len(block):
            cols = block.columns
            rpm, map_kpa = float(np.median(cols["rpm"])), float(np.median(cols["map_kpa"]))
            cell = int(self.pipe.grid.axes.flat_index(rpm, map_kpa))
            if cell >= 0 and self.covered(cell):
                self.sim.cut()
                self.cuts += 1
            return
        if not isinstance(step, LiveStep):
            return
        if step.settled_first and not self._settled_on_column(step, block):
            return
        if self.covered(step_cell(self.pipe.grid.axes, step)):
            self.sim.cut()
            self.cuts += 1
            if self.on_cut is not None:
                self.on_cut(step)

    def _settled_on_column(self, step: LiveStep, block: Block | None) -> bool:
        """The engine has been on ``step``'s rpm :data:`ARRIVED_SETTLE_S`, as the tuner reads it.

        A walk's first stop (``LiveStep.settled_first``) ends only once the absorber holds
        the column: the rpm within :data:`ARRIVED_RPM` of it since at least
        :data:`ARRIVED_SETTLE_S` ago, from the samples themselves. Timed from the ride's
        estimate instead, the car's walk from 1000 rpm waited 1.7 s on 4500/95 after the
        engine got there (the estimate was 0.7 s slow) with its cell trusted all along.
        """
        if block is None or not len(block):
            return False
        t = np.asarray(block.t, dtype=np.float64)
        began = round(self.sim.sim_time_s - self.sim.segment_elapsed_s, 6)
        since = self._on_column[1] if self._on_column and self._on_column[0] == began else None
        off = np.flatnonzero(np.abs(np.asarray(block.columns["rpm"]) - step.rpm) > ARRIVED_RPM)
        if off.size:
            since = float(t[off[-1] + 1]) if off[-1] + 1 < t.size else None
        elif since is None:
            since = float(t[0])
        self._on_column = None if since is None else (began, since)
        return since is not None and float(t[-1]) - since >= ARRIVED_SETTLE_S
