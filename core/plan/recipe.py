"""What the operator does for one suggested test, and the limits every test shares.

Split out of ``simplan``: a :class:`Recipe` is the contract between the planner,
the simulated candidates (``sim.testsim``) and the guided operator, so it lives
on its own rather than inside the ranking code. ``top_rpm`` and the idle limits
are here because every candidate kind (pulls, sweeps, holds) obeys them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.plan.candidates import Constraints
from core.plan.testsim import CandidateModel

F64 = npt.NDArray[np.float64]

IDLE_MAX_RPM = 1600.0
IDLE_MAX_MAP_KPA = 45.0


@dataclass(frozen=True, slots=True)
class Recipe:
    """What the operator does for one suggestion (the guided operator runs exactly this).

    Attributes:
        test_type: Planner test type.
        rpm_lo: Start rpm (hold rpm).
        rpm_hi: End rpm (equal to ``rpm_lo`` for a hold).
        map_steps: MAP steps of a hold, the MAP row(s) of a sweep, (from, to) of a tip-in.
        seconds: Length of an idle or cruise.
        rate_rpm_s: Absorber ramp rate of a sweep (0: the sweep's default).
        hold_steps: A serpentine's closing hold: MAP steps held at the rpm where its last
            row ends, each until trusted, before the throttle is released.
        run_on_rpm: A serpentine whose last row ramps up carries that row on past the
            span, at the same rate, to this rpm (0: it ends with the span). The WOT row's
            cells above the span are then filled on the way instead of held one by one.
        columns: MAP ramps (``map_ramps``): the rpm columns in run order; ``map_steps``
            are the cells of the first ramp in its order, ``map_edges`` their MAP bounds
            (ascending) and ``cell_s`` the seconds each cell is passed in.
        lead: MAP ramps' lead: columns above the walk held ``cell_s`` each in the top
            cell (:attr:`lead_kpa`) on the way down to the first ramp.
        cell_times: MAP ramps: per column (in ``columns`` order) the seconds through each
            cell (ascending MAP); under ``cell_s`` for a cell rolled quickly past, its data
            already trusted (``core.plan.ramps``), 0 for a cell not passed (the column turns
            short of it); empty: every cell takes ``cell_s``.
    """

    test_type: str
    rpm_lo: float
    rpm_hi: float
    map_steps: tuple[float, ...] = ()
    seconds: float = 0.0
    rate_rpm_s: float = 0.0
    hold_steps: tuple[float, ...] = ()
    run_on_rpm: float = 0.0
    columns: tuple[float, ...] = ()
    map_edges: tuple[float, ...] = ()
    cell_s: float = 0.0
    lead: tuple[float, ...] = ()
    cell_times: tuple[tuple[float, ...], ...] = ()

    @property
    def passes(self) -> bool:
        """MAP ramps that roll quickly past some cells (``cell_times``)."""
        return any(t < self.cell_s for times in self.cell_times for t in times)

    def _ramp_down(self, i: int) -> bool:
        """MAP ramps: column ``i`` rolls off (the first ramp's way is ``map_steps``' order)."""
        return (i % 2 == 0) == (self.map_steps[0] >= max(self.map_steps))

    def ramp_end_kpa(self, i: int) -> float:
        """MAP ramps: the row column ``i``'s ramp rolls to.

        The span's end, or where the column turns short (the cells beyond need nothing:
        ``cell_times`` 0 s).
        """
        rows = sorted(self.map_steps)
        down = self._ramp_down(i)
        if i < len(self.cell_times) and len(self.cell_times[i]) == len(rows):
            passed = [k for k, t in enumerate(self.cell_times[i]) if t > 0.0]
            if passed:
                return rows[passed[0]] if down else rows[passed[-1]]
        return rows[0] if down else rows[-1]

    def _turns_short(self, i: int) -> str:
        """MAP ramps: " to N" when column ``i`` turns short of the span's end (else "")."""
        end = self.ramp_end_kpa(i)
        return "" if end in (min(self.map_steps), max(self.map_steps)) else f" to {end:.0f}"

    @property
    def start_rpm(self) -> float:
        """Where the test begins: MAP ramps' first stop, else ``rpm_lo``."""
        stops = (*self.lead, *self.columns)
        return stops[0] if stops else self.rpm_lo

    @property
    def lead_kpa(self) -> float:
        """MAP ramps' lead columns are held at the top cell's centre (0: no lead)."""
        if not self.lead or len(self.map_edges) < 2:
            return 0.0
        return round(0.5 * (self.map_edges[-2] + self.map_edges[-1]), 2)

    @property
    def end_rpm(self) -> float:
        """Where a serpentine's last row ends (rows alternate up and down from ``rpm_lo``)."""
        if self.columns:
            return self.columns[-1]
        if len(self.map_steps) % 2:
            return max(self.rpm_hi, self.run_on_rpm)
        return self.rpm_lo

    @property
    def description(self) -> str:
        t = self.test_type
        if t == "wot_pull":
            return f"WOT pull {self.rpm_lo:.0f}-{self.rpm_hi:.0f} rpm, then cool down"
        if t in ("steady_state", "idle_low_map") and self.map_steps:
            steps = " ".join(f"{m:.0f}" for m in self.map_steps)
            return f"hold {self.rpm_lo:.0f} rpm: MAP {steps} kPa, each until trusted"
        if t == "idle_low_map":
            return f"idle in neutral {self.seconds:.0f} s"
        if t == "map_ramps" and self.columns and self.map_steps:
            top, low = max(self.map_steps), min(self.map_steps)
            legs = ", ".join(
                f"{c:.0f} {'down' if self._ramp_down(i) else 'up'}{self._turns_short(i)}"
                for i, c in enumerate(self.columns)
            )
            lead = ""
            if self.lead:
                at = " ".join(f"{c:.0f}" for c in self.lead)
                lead = f"{at} at {self.lead_kpa:.0f} kPa, then "
            quick = ", quicker past cells with data" if self.passes else ""
            return (
                f"MAP ramps {top:.0f}<->{low:.0f} kPa, {self.cell_s:.1f} s a cell{quick}, "
                f"no release: {lead}{legs}"
            )
        if t == "part_throttle_sweep" and len(self.map_steps) > 1:
            legs = ", ".join(
                f"{'up' if i % 2 == 0 else 'down'} {m:.0f}" for i, m in enumerate(self.map_steps)
            )
            closing = ""
            if self.run_on_rpm > self.rpm_hi and len(self.map_steps) % 2:
                closing = f"; the last row on to {self.run_on_rpm:.0f} rpm"
            if self.hold_steps:
                steps = " ".join(f"{m:.0f}" for m in self.hold_steps)
                closing = f"; then hold {self.end_rpm:.0f} rpm: MAP {steps} kPa, each until trusted"
            return (
                f"row sweeps {self.rpm_lo:.0f}<->{self.rpm_hi:.0f} rpm at "
                f"{self.rate_rpm_s:.0f} rpm/s, one MAP row per ramp: {legs} kPa{closing}"
            )
        if t == "part_throttle_sweep" and self.rate_rpm_s > 0:
            return (
                f"sweep {self.rpm_lo:.0f}->{self.rpm_hi:.0f} rpm at {self.map_steps[0]:.0f} kPa, "
                f"{self.rate_rpm_s:.0f} rpm/s"
            )
        if t == "part_throttle_sweep":
            return (
                f"part-throttle sweep {self.rpm_lo:.0f}-{self.rpm_hi:.0f} rpm "
                f"at {self.map_steps[0]:.0f} kPa"
            )
        if t == "tip_in":
            return (
                f"tip-in {self.map_steps[0]:.0f}-{self.map_steps[1]:.0f} kPa "
                f"at {self.rpm_lo:.0f} rpm"
            )
        return f"street cruise {self.seconds / 60.0:.0f} min"


def running_rpm(op: Mapping[str, float], axes_rpm: F64) -> float | None:
    """Where the next test starts from: the engine's rpm, or None when it idles in neutral.

    An engine at or above the table's first column is where it is, in gear on the drum,
    whatever the rpm: the last hold may have ended at 1250 rpm, and the next move from
    there is the absorber braking it to 750 or riding it up to 1000, not a ride up from
    idle (the simulator chains tests from the real end rpm, ``sim.scenarios.chain``).
    Planning low columns as if from idle ordered the low holds 1250 -> 750 -> 1000 rpm,
    a ride back up for the last. Below the first column (or no rpm) it idles.
    """
    rpm = float(op.get("rpm", math.nan))
    if not math.isfinite(rpm) or axes_rpm.size == 0 or rpm < float(axes_rpm[0]):
        return None
    return rpm


def top_rpm(model: CandidateModel, axes_rpm: F64, constraints: Constraints) -> float:
    """The highest rpm a test may use: the table, ``max_rpm`` and the engine's redline."""
    _, hi = constraints.rpm_window(axes_rpm)
    return min(hi, model.redline_rpm())


@dataclass(frozen=True, slots=True)
class TableWindow:
    """The table's axes and the rpm and MAP a test may use under the constraints."""

    rpm_axis: F64
    map_axis: F64
    rpm_lo: float
    rpm_cap: float
    """:func:`top_rpm`: the table, ``max_rpm`` and the redline."""
    map_lo: float
    map_hi: float


def table_window(model: CandidateModel, constraints: Constraints) -> TableWindow:
    """The axes of ``model``'s table and the window the constraints leave on them."""
    axes = model.key.axes
    rpm_axis = np.asarray(axes.rpm, dtype=np.float64)
    map_axis = np.asarray(axes.map_kpa, dtype=np.float64)
    r_lo, _ = constraints.rpm_window(rpm_axis)
    m_lo, m_hi = constraints.map_window(map_axis)
    return TableWindow(rpm_axis, map_axis, r_lo, top_rpm(model, rpm_axis, constraints), m_lo, m_hi)
