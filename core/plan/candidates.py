"""Per-vehicle constraints and the candidate tests the planner chooses from.

Constraints shape the candidates rather than only vetoing them: a sweep is cut
to the allowed rpm window and a steady-state hold only steps through allowed MAP
rows, because that is what a tuner would do. A test is filtered out only when no
useful version of it fits, and then it says which constraint removed it
(``max_rpm 5500 < 6000 needed``), so the tuner can decide to relax it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import CHANNELS
from core.config import ConfigError
from core.coverage.axes import TableAxes
from core.plan.testmodels import (
    CRUISE_S,
    ENVIRONMENT,
    IDLE_STEP_S,
    PART_SWEEP_RPM_S,
    STEADY_STEP_S,
    WOT_SWEEP_RPM_S,
    TestSpec,
    expected_hits,
)
from core.plan.types import FilteredTest

F64 = npt.NDArray[np.float64]

ENVIRONMENTS = ("dyno", "street", "both")
MIN_SWEEP_RPM = 1000.0
"""A sweep shorter than this is not a useful pull (and is not detected as one)."""
WOT_START_RPM = 2000.0
"""Where a WOT pull usually starts (gear selected, engine loaded)."""
SWEEP_START_RPM = 1500.0
STEADY_ROWS = 5
"""MAP rows stepped through in one steady-state hold."""
IDLE_MAX_RPM = 1600.0
IDLE_MAX_MAP_KPA = 45.0
LUG_RPM = 1500.0
"""Default ``Constraints.lug_rpm``: under it a hold stays at light load."""
CRUISE_RPM = (1800.0, 4000.0)
CRUISE_MAP_KPA = (30.0, 70.0)


MAX_RPM_FLOOR = 1000.0
"""The lowest max_rpm taken: under it even idle breaks the limit (QA set max_rpm=100 and
the plan still offered "idle in neutral 30 s" and a street cruise)."""
MAX_MAP_FLOOR_KPA = 30.0
"""The lowest max_map_kpa taken: an idling engine pulls ~30-40 kPa (QA: max_map_kpa=10)."""


@dataclass(frozen=True, slots=True)
class Constraints:
    """What the tuner allows on this vehicle. ``None`` means no limit.

    Attributes:
        min_rpm: Lowest rpm a test may ask for.
        max_rpm: Highest rpm (rev limit the tuner trusts).
        min_map_kpa: Lowest MAP a test may ask for.
        max_map_kpa: Highest MAP (e.g. a boost limit).
        max_pulls_per_session: WOT pulls allowed per session (heat, tyre, engine wear).
        environment: ``dyno``, ``street`` or ``both``: where tests can be done.
        lug_rpm: Under this rpm a hold stays at light load (at most the idle / low-MAP
            work's 45 kPa): loaded there, the engine lugs on the drum (0 or ``None``: no
            limit). Once the must-have cells were trusted the demo's planner held the
            V-twin at 750 rpm (under its 950-rpm idle) at 95 kPa for polish.
    """

    min_rpm: float | None = None
    max_rpm: float | None = None
    min_map_kpa: float | None = None
    max_map_kpa: float | None = None
    max_pulls_per_session: int | None = None
    environment: str = "both"
    lug_rpm: float | None = LUG_RPM

    def __post_init__(self) -> None:
        if self.lug_rpm is None:
            # "no limit" is 0: a None is left out of the TOML the store writes and would
            # read back as the default (the dashboard's editor sends an empty box as None)
            object.__setattr__(self, "lug_rpm", 0.0)
        for key in ("min_rpm", "max_rpm", "min_map_kpa", "max_map_kpa", "lug_rpm"):
            value = getattr(self, key)
            if value is not None and (not np.isfinite(value) or value < 0):
                raise ConfigError(f"constraints.{key}: {value!r} must be a number >= 0")
        for key, top in (
            ("min_rpm", CHANNELS["rpm"].hi),
            ("max_rpm", CHANNELS["rpm"].hi),
            ("lug_rpm", CHANNELS["rpm"].hi),
            ("min_map_kpa", CHANNELS["map_kpa"].hi),
            ("max_map_kpa", CHANNELS["map_kpa"].hi),
        ):
            value = getattr(self, key)
            if value is not None and value > top:
                # 5e9 was taken as a rev limit (a typo or a unit mix-up, never a limit)
                raise ConfigError(
                    f"constraints.{key}: {value:g} is beyond any engine's (at most {top:g})"
                )
        for key, floor, what in (
            ("max_rpm", MAX_RPM_FLOOR, "under any engine's idle"),
            ("max_map_kpa", MAX_MAP_FLOOR_KPA, "under an idling engine's MAP"),
        ):
            value = getattr(self, key)
            if value is not None and value < floor:
                raise ConfigError(
                    f"constraints.{key}: {value:g} is {what}: no test could run (at least {floor:g})"
                )
        if self.min_rpm is not None and self.max_rpm is not None and self.max_rpm <= self.min_rpm:
            raise ConfigError(
                f"constraints.max_rpm: {self.max_rpm:g} must be above min_rpm {self.min_rpm:g}"
            )
        if (
            self.min_map_kpa is not None
            and self.max_map_kpa is not None
            and self.max_map_kpa <= self.min_map_kpa
        ):
            raise ConfigError(
                f"constraints.max_map_kpa: {self.max_map_kpa:g} must be above min_map_kpa {self.min_map_kpa:g}"
            )
        if self.max_pulls_per_session is not None and self.max_pulls_per_session < 0:
            raise ConfigError(
                f"constraints.max_pulls_per_session: {self.max_pulls_per_session} must be >= 0"
            )
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(
                f"constraints.environment: {self.environment!r} is not one of dyno, street, both"
            )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Constraints:
        """Constraints from a TOML ``[constraints]`` table (absent key = no limit)."""
        fields = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - fields
        if unknown:
            raise ConfigError(
                f"constraints.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(fields))})"
            )
        values: dict[str, Any] = {}
        for key, value in d.items():
            values[key] = _coerce(key, value)
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        """A TOML-able dict: limits that are not set are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def with_updates(self, updates: Mapping[str, str]) -> Constraints:
        """A copy with ``key=value`` strings applied (``none`` clears a limit)."""
        fields = set(self.__dataclass_fields__)
        values: dict[str, Any] = {}
        for key, text in updates.items():
            if key not in fields:
                raise ConfigError(
                    f"constraints.{key}: unknown key (known: {', '.join(sorted(fields))})"
                )
            text = text.strip()
            if not text:
                # an unset shell variable (max_rpm=$REDLINE) cleared the rev limit silently
                raise ConfigError(
                    f"constraints.{key}: empty value (to clear the limit: {key}=none)"
                )
            if key == "environment":
                values[key] = text.lower()
            elif text.lower() in ("none", "off"):
                values[key] = None
            else:
                values[key] = _coerce(key, text)
        return replace(self, **values)

    def rpm_window(self, rpm_axis: F64) -> tuple[float, float]:
        lo = float(rpm_axis[0]) if self.min_rpm is None else max(self.min_rpm, float(rpm_axis[0]))
        hi = float(rpm_axis[-1]) if self.max_rpm is None else min(self.max_rpm, float(rpm_axis[-1]))
        return lo, hi

    def map_window(self, map_axis: F64) -> tuple[float, float]:
        lo = (
            float(map_axis[0])
            if self.min_map_kpa is None
            else max(self.min_map_kpa, float(map_axis[0]))
        )
        hi = (
            float(map_axis[-1])
            if self.max_map_kpa is None
            else min(self.max_map_kpa, float(map_axis[-1]))
        )
        return lo, hi


def _coerce(key: str, value: object) -> Any:
    if key == "environment":
        if not isinstance(value, str):
            raise ConfigError(
                f"constraints.environment: {value!r} is not one of dyno, street, both"
            )
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"constraints.{key}: {value!r} is not a number")
    try:
        number = float(value) if isinstance(value, int | float | str) else float("nan")
    except (TypeError, ValueError):
        raise ConfigError(f"constraints.{key}: {value!r} is not a number") from None
    if not np.isfinite(number):
        raise ConfigError(f"constraints.{key}: {value!r} is not a number")
    if key == "max_pulls_per_session":
        if number != int(number):
            raise ConfigError(f"constraints.{key}: {value!r} is not a whole number")
        return int(number)
    return number


def _env_reason(test_type: str, environment: str) -> str | None:
    where = ENVIRONMENT[test_type]
    if where == "both" or environment == "both" or where == environment:
        return None
    return (
        f"environment {environment}: needs the {where}"
        if where == "street"
        else (f"environment {environment}: needs a {where}")
    )


def candidate_specs(
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    wot_map_kpa: float,
    pulls_done: int = 0,
    redline_rpm: float | None = None,
) -> tuple[list[TestSpec], list[FilteredTest]]:
    """Every candidate test on these axes, and those the constraints removed (with why).

    ``redline_rpm``: the engine's limit, when known (the vehicle's simulator preset): no
    test asks for more. It is no constraint the tuner set, so nothing is listed as
    filtered for it (a V-twin's table runs to 7000 rpm, its redline is 5800).
    """
    specs: list[TestSpec] = []
    filtered: list[FilteredTest] = []
    r_lo, r_hi = constraints.rpm_window(rpm_axis)
    if redline_rpm is not None:
        r_hi = min(r_hi, float(redline_rpm))
    m_lo, m_hi = constraints.map_window(map_axis)
    half_row = 0.5 * float(np.min(np.diff(map_axis))) if map_axis.size > 1 else 1.0
    reachable_rows = map_axis[(map_axis <= wot_map_kpa + half_row)]
    rows = reachable_rows[(reachable_rows >= m_lo) & (reachable_rows <= m_hi)]
    cols = rpm_axis[(rpm_axis >= r_lo) & (rpm_axis <= r_hi)]

    def offer(spec: TestSpec, reason: str | None) -> None:
        reason = reason or _env_reason(spec.test_type, constraints.environment)
        if reason:
            filtered.append(FilteredTest(spec.test_type, spec.description, reason))
        else:
            specs.append(spec)

    def sweep_reason(start: float, stop: float, what: str) -> str | None:
        if stop - start >= MIN_SWEEP_RPM:
            return None
        limit = "max_rpm" if constraints.max_rpm is not None else "min_rpm"
        return f"{limit}: only {max(stop - start, 0):.0f} rpm left for a {what}, {MIN_SWEEP_RPM:.0f} needed"

    # WOT pulls: a full pull and a shorter midrange pull (less heat, more pulls)
    start = max(WOT_START_RPM, r_lo)
    wot_row = float(reachable_rows[-1]) if reachable_rows.size else wot_map_kpa
    for stop in sorted({r_hi, min(r_hi, 4500.0)}, reverse=True):
        spec = TestSpec(
            "wot_pull", start, stop, wot_row, wot_row, max(stop - start, 0) / WOT_SWEEP_RPM_S
        )
        reason = sweep_reason(start, stop, "WOT pull")
        if constraints.max_map_kpa is not None and constraints.max_map_kpa < wot_map_kpa:
            reason = f"max_map_kpa {constraints.max_map_kpa:g} < {wot_map_kpa:.0f} needed"
        cap = constraints.max_pulls_per_session
        if cap is not None and pulls_done >= cap:
            reason = f"max_pulls_per_session {cap} reached ({pulls_done} done)"
        offer(spec, reason)
    # part-throttle sweeps, one per MAP row below WOT
    start = max(SWEEP_START_RPM, r_lo)
    for m in rows[rows < wot_row - 1e-9]:
        run_s = max(r_hi - start, 0) / PART_SWEEP_RPM_S
        spec = TestSpec("part_throttle_sweep", start, r_hi, float(m), float(m), run_s)
        offer(spec, sweep_reason(start, r_hi, "sweep"))
    # steady-state holds: each rpm column, stepping MAP through bands of rows (top band first)
    bands = [rows[max(i - STEADY_ROWS, 0) : i] for i in range(rows.size, 0, -STEADY_ROWS)]
    for r in rpm_axis:
        reason = None
        if redline_rpm is not None and r > redline_rpm:
            continue  # the engine cannot (above its redline), not a limit the tuner set
        if constraints.max_rpm is not None and r > constraints.max_rpm:
            reason = f"max_rpm {constraints.max_rpm:g} < {r:.0f} needed"
        elif constraints.min_rpm is not None and r < constraints.min_rpm:
            reason = f"min_rpm {constraints.min_rpm:g} > {r:.0f} needed"
        if reason:
            filtered.append(
                FilteredTest("steady_state", f"steady-state holds at {r:.0f} rpm", reason)
            )
            continue
        for band in bands:
            steps = tuple(float(m) for m in band)
            spec = TestSpec(
                "steady_state",
                float(r),
                float(r),
                steps[0],
                steps[-1],
                STEADY_STEP_S * len(steps),
                map_steps_kpa=steps,
            )
            offer(spec, reason)
    # No tip-in candidates: a tip-in's samples are exactly what the accel-enrichment and
    # transient hold-off filters reject, so it fills no cell (its steady part is a
    # two-step hold, which the steady-state candidates already offer). The simulated
    # planner (core.plan.simplan) leaves them out for the same reason.
    # idle / low-MAP routine
    idle_cols = tuple(float(c) for c in cols[cols <= IDLE_MAX_RPM])
    idle_rows = tuple(float(m) for m in rows[rows <= IDLE_MAX_MAP_KPA])
    if idle_cols and idle_rows:
        run_s = IDLE_STEP_S * len(idle_cols) * len(idle_rows)
        spec = TestSpec(
            "idle_low_map",
            idle_cols[0],
            idle_cols[-1],
            idle_rows[0],
            idle_rows[-1],
            run_s,
            rpm_steps=idle_cols,
            map_steps_kpa=idle_rows,
        )
        offer(spec, None)
    else:
        limit = "min_rpm" if not idle_cols else "min_map_kpa"
        value = constraints.min_rpm if not idle_cols else constraints.min_map_kpa
        filtered.append(
            FilteredTest(
                "idle_low_map", "idle / low-MAP holds", f"{limit} {value} leaves no idle cells"
            )
        )
    # street cruise
    c_lo, c_hi = max(CRUISE_RPM[0], r_lo), min(CRUISE_RPM[1], r_hi)
    cm_lo, cm_hi = max(CRUISE_MAP_KPA[0], m_lo), min(CRUISE_MAP_KPA[1], m_hi)
    spec = TestSpec("street_cruise", c_lo, max(c_hi, c_lo), cm_lo, max(cm_hi, cm_lo), CRUISE_S)
    offer(spec, None if c_hi > c_lo and cm_hi > cm_lo else "rpm / MAP limits leave no cruise band")
    return specs, filtered


CANDIDATE_CACHE = 4
"""Candidate matrices kept (:func:`candidate_matrix`). Each is ~150 kB on a 16x16
table; the key changes only when the learned WOT MAP, the logging rate or the pull
count does, so a session uses one or two (runs of 14 minutes: 4-5 keys, all in the
first minute, then 30-60 hits each). Sized so the cache is full within the warm-up,
not climbing for an hour as new learned values come (issue 10's soak)."""


@lru_cache(maxsize=CANDIDATE_CACHE)
def _cached_matrix(
    axes: TableAxes,
    constraints: Constraints,
    wot_map_kpa: float,
    rate_hz: float,
    pulls_done: int,
    redline_rpm: float | None,
) -> tuple[tuple[TestSpec, ...], F64, tuple[FilteredTest, ...]]:
    specs, filtered = candidate_specs(
        axes.rpm, axes.map_kpa, constraints, wot_map_kpa, pulls_done, redline_rpm
    )
    if specs:
        model = np.stack([expected_hits(s, axes, rate_hz) for s in specs])
    else:
        model = np.zeros((0, axes.n_cells))
    model.setflags(write=False)
    return tuple(specs), model, tuple(filtered)


def candidate_matrix(
    axes: TableAxes,
    constraints: Constraints,
    wot_map_kpa: float,
    rate_hz: float,
    pulls_done: int = 0,
    redline_rpm: float | None = None,
) -> tuple[tuple[TestSpec, ...], F64, tuple[FilteredTest, ...]]:
    """Candidates, their model hits per cell (n_candidates x n_cells, factor not applied), filtered.

    Cached: the candidates only change with the axes, the constraints, the learned
    WOT MAP and logging rate (rounded) and the pull count, not with the coverage.
    ``redline_rpm``: see :func:`candidate_specs`.
    """
    return _cached_matrix(
        axes,
        constraints,
        round(float(wot_map_kpa), 1),
        round(float(rate_hz), 0),
        int(pulls_done) if constraints.max_pulls_per_session is not None else 0,
        None if redline_rpm is None else float(redline_rpm),
    )
