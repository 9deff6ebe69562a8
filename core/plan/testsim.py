"""What the planner needs from a test simulator, and the data it exchanges with it.

The planner (``core.plan.simplan``) values candidate tests by what they add to each
cell *after the filters*, which it learns by running each candidate on a simulator
through the real pipeline. Core must not depend on the simulator (layers: the
simulator sits on core), so the planner asks a :class:`CandidateModel`, which
``sim.testsim.SimCandidates`` implements and the commands hand in. Grids are
exchanged as the additive arrays of :data:`ADDITIVE`, flat per cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.filters import FilterLimits
from core.coverage.grid import CoverageGrid

F64 = npt.NDArray[np.float64]

HOLD_STEP_S = 2.5
"""Seconds per MAP step in a steady-state hold: ~1 s to settle, ~2 s of settled data."""
ADDITIVE = ("hits", "weight", "dwell_s", "lam_weight", "lam_wsum", "lam_wsum2")
"""Grid arrays that add up when two grids are merged (the ones confidence depends on)."""


@dataclass(frozen=True, slots=True)
class ModelKey:
    """Everything a candidate's simulated outcome depends on (the cache key)."""

    kind: str
    """Simulator preset (``vtwin`` / ``car``), from the vehicle config's ``kind``."""
    axes: TableAxes
    limits: FilterLimits
    rate_hz: float
    lambda_delay_ms: float = 90.0
    hit_target: int = 10


def model_key(cfg: object, calibration: object = None) -> ModelKey:
    """The simulation key of a vehicle config (its ``kind``, axes, filters, delay, target).

    The logging rate is the calibration's learned rate rounded to 10 Hz (50 Hz before
    any run), so the cache survives the rate's small drift from run to run.
    """
    rate = float(getattr(calibration, "sample_rate_hz", 50.0) or 50.0)
    rate = float(min(max(round(rate / 10.0) * 10.0, 10.0), 1000.0))
    kind = str(getattr(cfg, "kind", "vtwin"))
    return ModelKey(
        kind if kind in ("vtwin", "car") else "vtwin",
        cfg.axes,  # type: ignore[attr-defined]
        cfg.filters,  # type: ignore[attr-defined]
        rate,
        float(getattr(cfg, "lambda_delay_ms", 90.0)),
        int(getattr(cfg, "hit_target", 10)),
    )


def grid_arrays(grid: CoverageGrid) -> dict[str, F64]:
    """The additive arrays of ``grid`` flattened, as float64 (see :data:`ADDITIVE`)."""
    return {k: np.array(getattr(grid, k), dtype=np.float64).ravel() for k in ADDITIVE}


class CandidateModel(Protocol):
    """Simulated candidate tests for one vehicle (``sim.testsim.SimCandidates``).

    Every array is a dict of :data:`ADDITIVE` arrays (flat, n_map * n_rpm): what the
    test adds to each cell after fusion, filters and binning.
    """

    @property
    def key(self) -> ModelKey: ...

    def redline_rpm(self) -> float:
        """The engine's redline: tests never ask for more."""
        ...

    def idle_rpm(self) -> float:
        """The engine's idle speed in neutral."""
        ...

    def min_hold_map_kpa(self, rpm: float) -> float:
        """The lowest MAP the engine holds ``rpm`` at on the absorber.

        The absorber only brakes, so the engine must make torque there: no hold step is
        offered more than a row under it.
        """
        ...

    def column(self, rpm: float, rows: tuple[float, ...]) -> tuple[dict[str, F64], ...]:
        """A steady-state hold at ``rpm`` over ``rows``, split per MAP step."""
        ...

    def rows(
        self, rpm_lo: float, rpm_hi: float, rate_rpm_s: float, rows: tuple[float, ...]
    ) -> tuple[tuple[dict[str, F64], ...], tuple[dict[str, F64], ...]]:
        """Serpentine row sweeps over ``rows`` split per row: (each row ramping up, down)."""
        ...

    def ramps(
        self, columns: tuple[float, ...], edges: tuple[float, ...], cell_s: float
    ) -> tuple[tuple[dict[str, F64], ...], tuple[dict[str, F64], ...]]:
        """MAP ramps over ``columns`` (run order) split per column: (rolling off, rolling on)."""
        ...

    def wot_map_kpa(self, rpm: float) -> float:
        """Steady MAP at wide-open throttle at ``rpm`` (the top a part-throttle ramp nears)."""
        ...

    def throttle_pct(self, rpm: float, map_kpa: float) -> float:
        """Steady throttle (%) for ``map_kpa`` at ``rpm`` (how far a MAP roll moves it)."""
        ...

    def run_on(
        self, rpm_from: float, rpm_to: float, rate_rpm_s: float, map_kpa: float
    ) -> dict[str, F64]:
        """One row at ``map_kpa`` ramping on from ``rpm_from`` (settled there) to ``rpm_to``."""
        ...

    def entry(self, rpm: float, map_kpa: float) -> dict[str, F64]:
        """A serpentine's entry from idle: the ride up to ``rpm`` and the settle on its first row."""
        ...

    def recipe(self, recipe: object) -> dict[str, F64]:
        """What ``recipe`` (``core.plan.recipe.Recipe``) adds, run from idle."""
        ...

    def recipe_from(self, recipe: object, rpm_now: float | None, map_now: float) -> dict[str, F64]:
        """What ``recipe`` adds when the engine starts at ``rpm_now`` / ``map_now``."""
        ...

    def hold_from(
        self,
        recipe: object,
        rpm_now: float | None,
        map_now: float,
        rule: CoverageRule,
        base: Mapping[int, tuple[float, ...]] | None = None,
    ) -> tuple[dict[str, F64], float]:
        """A hold ``recipe`` run live from ``rpm_now`` / ``map_now``: its data and seconds.

        Each step ends when its cell is trusted under ``rule``, counting the data the
        cell already has: ``base`` maps a cell to its :data:`ADDITIVE` values (None:
        the cells start empty).
        """
        ...

    def recipe_minutes(self, recipe: object, rpm_now: float | None) -> float:
        """Minutes for ``recipe`` from ``rpm_now`` (None: idling), cool-down included."""
        ...

    def live_column(
        self, rpm: float, rows: tuple[float, ...], rule: CoverageRule
    ) -> tuple[tuple[dict[str, F64], ...], tuple[float, ...]]:
        """Each step's data and seconds when steps end as their cell turns trusted.

        A hold at ``rpm`` over ``rows``; a step lasts until ``rule`` calls its cell
        covered, at most ``HOLD_STEP_S``.
        """
        ...

    def hold_minutes(
        self, rpm_now: float | None, rpm: float, hold_s: float, ride_kpa: float = 0.0
    ) -> float:
        """Minutes for a hold at ``rpm`` from ``rpm_now`` whose steps last ``hold_s`` in all.

        ``ride_kpa``: its first MAP step; the operator rides up at it when it is above
        the roll-on MAP (a top-down hold from 95 kPa gets there ~30 % sooner).
        """
        ...

    def move_s(self, rpm_now: float | None, rpm_to: float, ride_kpa: float = 0.0) -> float:
        """Seconds to move the engine from ``rpm_now`` (None: idling) to ``rpm_to`` and settle.

        ``ride_kpa``: the MAP ridden up at, when above the roll-on MAP.
        """
        ...

    def end_rpm(self, recipe: object) -> float | None:
        """Where ``recipe`` leaves the engine (None: idling, e.g. after a cool-down)."""
        ...

    def at_rate(self, rate_hz: float) -> CandidateModel:
        """The same model for rows logged at ``rate_hz`` (hits per cell scale with it)."""
        ...
