"""Kinematic models of dyno tests: where a test drives the engine and for how long.

The planner has to know, before a test is run, which cells it will fill. Each
test type here is a small kinematic model: the rpm / MAP trajectory the operator
follows (a WOT pull sweeps rpm at the top MAP row, a steady-state hold parks at one
rpm and steps MAP through the rows, ...) sampled at the logging rate. Binning that
trajectory through the vehicle's real axes, exactly as the coverage grid bins
live samples (nearest cell, samples more than half a cell off the table dropped),
gives the expected hits per cell. The same models describe a test that was just
detected in a live run, so ``core.plan.learning`` can compare predicted with actual
hits and learn how far reality departs from the model (filters, sweep rate, rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TEST_TYPES = (
    "wot_pull",
    "part_throttle_sweep",
    "steady_state",
    "tip_in",
    "idle_low_map",
    "street_cruise",
    "map_ramps",
)
"""Every test type the planner proposes and the pull detector recognises (``map_ramps`` is
proposed only: the detector sees each of its columns as a steady hold)."""

MULTIPLIER: dict[str, float] = {
    "wot_pull": 1.5,
    "part_throttle_sweep": 1.0,
    "steady_state": 1.2,
    "tip_in": 1.0,
    "idle_low_map": 1.0,
    "street_cruise": 1.0,
    "map_ramps": 1.2,
}
"""Gain multiplier per test type (DESIGN §4): WOT and steady-state data are worth more."""

ENVIRONMENT: dict[str, str] = {
    "wot_pull": "dyno",
    "part_throttle_sweep": "dyno",
    "steady_state": "dyno",
    "tip_in": "both",
    "idle_low_map": "both",
    "street_cruise": "street",
    "map_ramps": "dyno",
}
"""Where a test can be done: on the dyno, on the street, or either."""

SETUP_MIN: dict[str, float] = {
    "wot_pull": 0.5,
    "part_throttle_sweep": 0.5,
    "steady_state": 0.3,
    "tip_in": 0.3,
    "idle_low_map": 0.3,
    "street_cruise": 2.0,
    "map_ramps": 0.3,
}
"""Minutes to set a test up: gear, dyno mode, reaching the start point (street: riding out)."""

COOLDOWN_MIN: dict[str, float] = {"wot_pull": 1.0}
"""Minutes of cool-down a test needs afterwards (heat soak after a WOT pull)."""


WOT_SWEEP_RPM_S = 400.0
"""Typical inertia-dyno WOT sweep rate (rpm per second)."""
PART_SWEEP_RPM_S = 250.0
"""Part-throttle sweeps are run slower (load-controlled dyno sweep rate)."""
STEADY_STEP_S = 3.0
"""Seconds per MAP step in a steady-state hold: ~1 s to settle plus ~2 s of data."""
SETTLE_S = 1.0
"""Part of each steady step spent moving to the new MAP."""
TIP_IN_ROLL_S = 1.5
"""Seconds of one throttle roll-on from the low to the high MAP."""
TIP_IN_HOLD_S = 1.5
"""Seconds held at the high MAP after a roll-on, before backing off."""
TIP_IN_RPM_RISE = 200.0
"""Rpm gained during one roll-on on an inertia dyno."""
IDLE_STEP_S = 3.0
"""Seconds per (rpm, MAP) point in the idle / low-MAP routine."""
CRUISE_S = 300.0
"""Length of a street cruise segment."""


@dataclass(frozen=True, slots=True)
class TestSpec:
    """One concrete test: its type, its envelope and how long the measured part lasts.

    Attributes:
        test_type: One of :data:`TEST_TYPES`.
        rpm_lo: Lowest rpm the test visits (sweep start, hold rpm).
        rpm_hi: Highest rpm (sweep end; equal to ``rpm_lo`` for a hold).
        map_lo_kpa: Lowest MAP visited.
        map_hi_kpa: Highest MAP visited (WOT MAP for a pull).
        run_s: Duration of the measured part, seconds.
        rpm_steps: Rpm points of a stepped test (tip-in / idle); empty = continuous.
        map_steps_kpa: MAP points of a stepped test (steady / idle); empty = continuous.
    """

    test_type: str
    rpm_lo: float
    rpm_hi: float
    map_lo_kpa: float
    map_hi_kpa: float
    run_s: float
    rpm_steps: tuple[float, ...] = ()
    map_steps_kpa: tuple[float, ...] = ()

    @property
    def minutes(self) -> float:
        """Dyno minutes including setup / cool-down overhead."""
        return self.run_s / 60.0 + SETUP_MIN[self.test_type] + COOLDOWN_MIN.get(self.test_type, 0.0)

    @property
    def description(self) -> str:
        rpm = (
            f"{self.rpm_lo:.0f}"
            if self.rpm_hi == self.rpm_lo
            else f"{self.rpm_lo:.0f}-{self.rpm_hi:.0f}"
        )
        kpa = (
            f"{self.map_lo_kpa:.0f}"
            if self.map_hi_kpa == self.map_lo_kpa
            else f"{self.map_lo_kpa:.0f}-{self.map_hi_kpa:.0f}"
        )
        text = {
            "wot_pull": f"WOT pull {rpm} rpm",
            "part_throttle_sweep": f"part-throttle sweep {rpm} rpm at {kpa} kPa",
            "steady_state": f"steady-state hold at {rpm} rpm, step MAP {kpa} kPa",
            "tip_in": f"tip-ins {kpa} kPa at {rpm} rpm",
            "idle_low_map": f"idle / low-MAP holds {rpm} rpm, {kpa} kPa",
            "street_cruise": f"street cruise {rpm} rpm, {kpa} kPa",
        }
        return text[self.test_type]

    def trajectory(self, rate_hz: float) -> tuple[F64, F64]:
        """(rpm, map_kpa) samples of the measured part at ``rate_hz``."""
        n = max(int(round(self.run_s * rate_hz)), 1)
        u = (np.arange(n, dtype=np.float64) + 0.5) / n
        kind = self.test_type
        if kind in ("wot_pull", "part_throttle_sweep"):
            rpm = self.rpm_lo + (self.rpm_hi - self.rpm_lo) * u
            return rpm, np.full(n, self.map_hi_kpa if kind == "wot_pull" else self.map_lo_kpa)
        if kind == "steady_state":
            return np.full(n, self.rpm_lo), _stepped(u, self._map_points(), self.run_s)
        if kind == "tip_in":
            return self._tip_in(u)
        if kind == "idle_low_map":
            rpms = self.rpm_steps or (self.rpm_lo,)
            maps = self._map_points()
            k = np.minimum((u * len(rpms)).astype(np.int64), len(rpms) - 1)
            within = u * len(rpms) - k
            rpm = np.asarray(rpms, dtype=np.float64)[k]
            return rpm, _stepped(within, maps, self.run_s / len(rpms))
        # street cruise: a slow Lissajous wander over the box, the way traffic moves the engine
        t = u * self.run_s
        rpm = self.rpm_lo + (self.rpm_hi - self.rpm_lo) * 0.5 * (1 - np.cos(2 * np.pi * t / 97.0))
        map_kpa = self.map_lo_kpa + (self.map_hi_kpa - self.map_lo_kpa) * 0.5 * (
            1 - np.cos(2 * np.pi * t / 41.0)
        )
        return rpm, map_kpa

    def _map_points(self) -> tuple[float, ...]:
        return self.map_steps_kpa or (self.map_lo_kpa, self.map_hi_kpa)

    def _tip_in(self, u: F64) -> tuple[F64, F64]:
        rpms = self.rpm_steps or (self.rpm_lo,)
        k = np.minimum((u * len(rpms)).astype(np.int64), len(rpms) - 1)
        phase_s = (u * len(rpms) - k) * (self.run_s / len(rpms))
        roll = np.clip(phase_s / TIP_IN_ROLL_S, 0.0, 1.0)
        map_kpa = self.map_lo_kpa + (self.map_hi_kpa - self.map_lo_kpa) * roll
        rpm = np.asarray(rpms, dtype=np.float64)[k] + TIP_IN_RPM_RISE * roll
        return rpm, map_kpa


def _stepped(u: F64, points: tuple[float, ...], run_s: float) -> F64:
    """MAP stepping through ``points``: a linear settle then a hold at each point."""
    n_steps = len(points)
    k = np.minimum((u * n_steps).astype(np.int64), n_steps - 1)
    step_s = run_s / n_steps
    phase = (u * n_steps - k) * step_s
    pts = np.asarray(points, dtype=np.float64)
    prev = np.where(k > 0, pts[np.maximum(k - 1, 0)], pts[0])
    frac = np.clip(phase / min(SETTLE_S, step_s), 0.0, 1.0)
    return prev + (pts[k] - prev) * frac


def expected_hits(spec: TestSpec, axes: TableAxes, rate_hz: float, lead_s: float = 0.0) -> F64:
    """Expected hits per cell (flat, n_map * n_rpm) from the test's model trajectory.

    Binned with ``TableAxes.nearest``, the grid's own definition of a cell, so a
    sample more than half a cell off the table counts nowhere. The first
    ``lead_s`` seconds are left out: the filters reject rows while the engine
    settles after the test starts (throttle snap, transient hold-off).
    """
    rpm, map_kpa = spec.trajectory(rate_hz)
    if lead_s > 0:
        skip = min(int(round(lead_s * rate_hz)), rpm.size)
        rpm, map_kpa = rpm[skip:], map_kpa[skip:]
    flat = axes.flat_index(rpm, map_kpa)
    return np.bincount(flat[flat >= 0], minlength=axes.n_cells).astype(np.float64)
