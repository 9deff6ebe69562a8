"""Priority regions of the fuel table, the priority map, region coverage and ranked gaps.

Not every cell matters equally: the high-MAP midrange (torque peak, knock
sensitive) and the tip-in band decide whether an engine is safe and drives well,
idle / low-MAP decides whether it starts and idles, the rest is nice to have.
A region is a rectangle in (rpm, MAP) with a priority 1 (highest) .. 3; a cell
belongs to a region when its breakpoint lies inside the rectangle, and takes the
best (lowest) priority of the regions it is in. Cells where knock was seen are
raised one level, because a tuner needs data exactly there before adding timing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.config import ConfigError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LOWEST_PRIORITY = 3
"""Priority of a cell in no region."""

PRIORITY_WEIGHT: dict[int, float] = {1: 4.0, 2: 2.0, 3: 1.0}
"""Gain weight per priority level: a priority-1 cell is worth four priority-3 cells."""


class AxesLike(Protocol):
    """What the planner needs from ``core.coverage.axes.TableAxes``: the two breakpoint arrays."""

    @property
    def rpm(self) -> F64: ...

    @property
    def map_kpa(self) -> F64: ...


def axis_arrays(axes: AxesLike) -> tuple[F64, F64]:
    """(rpm breakpoints, MAP breakpoints) as float64 arrays."""
    return np.asarray(axes.rpm, dtype=np.float64), np.asarray(axes.map_kpa, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of the table with a priority.

    Attributes:
        name: Short identifier shown in reports (``high_map_midrange``).
        priority: 1 (highest) .. 3.
        rpm_min: Lower rpm edge, inclusive.
        rpm_max: Upper rpm edge, inclusive.
        map_min_kpa: Lower MAP edge, inclusive.
        map_max_kpa: Upper MAP edge, inclusive.
    """

    name: str
    priority: int
    rpm_min: float
    rpm_max: float
    map_min_kpa: float
    map_max_kpa: float

    def __post_init__(self) -> None:
        where = f"regions.{self.name or '?'}"
        if not self.name:
            raise ConfigError("regions: every region needs a non-empty name")
        if self.priority not in PRIORITY_WEIGHT:
            raise ConfigError(f"{where}.priority: {self.priority!r} is not 1, 2 or 3")
        for key in ("rpm_min", "rpm_max", "map_min_kpa", "map_max_kpa"):
            value = getattr(self, key)
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{where}.{key}: {value!r} must be a number >= 0")
        if self.rpm_max <= self.rpm_min:
            raise ConfigError(
                f"{where}.rpm_max: {self.rpm_max} must be above rpm_min {self.rpm_min}"
            )
        if self.map_max_kpa <= self.map_min_kpa:
            raise ConfigError(
                f"{where}.map_max_kpa: {self.map_max_kpa} must be above map_min_kpa {self.map_min_kpa}"
            )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], name: str | None = None) -> Region:
        """A region from a TOML table; ``name`` defaults to the table's ``name`` key."""
        region_name = str(d.get("name", name or ""))
        where = f"regions.{region_name or '?'}"
        unknown = set(d) - {"name", "priority", "rpm_min", "rpm_max", "map_min_kpa", "map_max_kpa"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
        values: dict[str, float] = {}
        for key in ("rpm_min", "rpm_max", "map_min_kpa", "map_max_kpa"):
            if key not in d:
                raise ConfigError(f"{where}.{key}: missing")
            values[key] = _number(d[key], f"{where}.{key}")
        priority = d.get("priority", LOWEST_PRIORITY)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigError(f"{where}.priority: {priority!r} is not 1, 2 or 3")
        return cls(region_name, priority, **values)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "priority": self.priority,
            "rpm_min": self.rpm_min,
            "rpm_max": self.rpm_max,
            "map_min_kpa": self.map_min_kpa,
            "map_max_kpa": self.map_max_kpa,
        }

    def mask(self, axes: AxesLike) -> BoolArray:
        """Cells of this region, shape (n_map, n_rpm).

        A region narrower than one cell still gets the cell nearest its centre,
        so a coarse table never silently drops a region.
        """
        rpm, map_kpa = axis_arrays(axes)
        cols = (rpm >= self.rpm_min) & (rpm <= self.rpm_max)
        rows = (map_kpa >= self.map_min_kpa) & (map_kpa <= self.map_max_kpa)
        if not cols.any():
            cols[int(np.argmin(np.abs(rpm - 0.5 * (self.rpm_min + self.rpm_max))))] = True
        if not rows.any():
            rows[int(np.argmin(np.abs(map_kpa - 0.5 * (self.map_min_kpa + self.map_max_kpa))))] = (
                True
            )
        return np.asarray(rows[:, None] & cols[None, :], dtype=np.bool_)


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: {value!r} is not a number")
    return float(value)


WOT_REGION_MAP_KPA = 90.0
"""Lower MAP edge of the default WOT / high-load region (naturally aspirated: the top rows)."""

DEFAULT_REGIONS: tuple[Region, ...] = (
    Region("wot_high_load", 1, 2000.0, 20000.0, WOT_REGION_MAP_KPA, 400.0),
    Region("high_map_midrange", 1, 2500.0, 4500.0, 80.0, 100.0),
    Region("tip_in", 1, 2000.0, 4500.0, 50.0, 85.0),
    Region("idle_low_map", 2, 500.0, 1500.0, 20.0, 40.0),
)
"""Default regions (vehicle config ``[[regions]]`` replaces them all).

``wot_high_load`` is priority 1 across the whole rpm range from where a pull starts
to the top of the table: the cells that break engines are the WOT rows at high rpm,
and the constraints (``max_rpm``) already cut what this vehicle may reach. The
product brief's seed regions follow; every other cell is priority 3.
"""


def regions_from_config(
    items: Iterable[Mapping[str, Any]] | Mapping[str, Any],
) -> tuple[Region, ...]:
    """Regions from a TOML ``[[regions]]`` array or a ``[regions.NAME]`` table."""
    if isinstance(items, Mapping):
        out = []
        for name, table in items.items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"regions.{name}: expected a table")
            out.append(Region.from_mapping(table, name=str(name)))
        return tuple(out)
    return tuple(Region.from_mapping(table) for table in items)


def priority_map(
    axes: AxesLike, regions: Sequence[Region], knock_events: npt.ArrayLike | None = None
) -> I64:
    """Priority (1..3) per cell, shape (n_map, n_rpm); knock-seen cells raised one level."""
    rpm, map_kpa = axis_arrays(axes)
    prio = np.full((map_kpa.size, rpm.size), LOWEST_PRIORITY, dtype=np.int64)
    for region in regions:
        prio = np.where(region.mask(axes), np.minimum(prio, region.priority), prio)
    if knock_events is not None:
        knock = np.asarray(knock_events)
        if knock.shape != prio.shape:
            raise ValueError(
                f"knock_events shape {knock.shape} does not match the table {prio.shape}"
            )
        prio = np.where(knock > 0, np.maximum(prio - 1, 1), prio)
    return prio


def weight_map(priorities: I64) -> F64:
    """Gain weight per cell from its priority (see :data:`PRIORITY_WEIGHT`)."""
    lut = np.array([0.0] + [PRIORITY_WEIGHT[p] for p in sorted(PRIORITY_WEIGHT)])
    return np.asarray(lut[np.clip(priorities, 1, LOWEST_PRIORITY)], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RegionCoverage:
    """How much of one priority region is covered."""

    name: str
    priority: int
    cells: int
    covered: int

    @property
    def covered_pct(self) -> float:
        return 100.0 * self.covered / self.cells if self.cells else 100.0


def region_coverage(
    axes: AxesLike, regions: Sequence[Region], covered: BoolArray
) -> tuple[RegionCoverage, ...]:
    """Covered cells per region, plus ``rest`` for the cells in no region."""
    in_any = np.zeros(covered.shape, dtype=np.bool_)
    out = []
    for region in regions:
        mask = region.mask(axes)
        in_any |= mask
        out.append(
            RegionCoverage(
                region.name, region.priority, int(mask.sum()), int((covered & mask).sum())
            )
        )
    rest = ~in_any
    out.append(
        RegionCoverage("rest", LOWEST_PRIORITY, int(rest.sum()), int((covered & rest).sum()))
    )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Gap:
    """A cell short of its hit target."""

    map_index: int
    rpm_index: int
    rpm: float
    map_kpa: float
    priority: int
    deficit: int


def ranked_gaps(
    axes: AxesLike, hits: npt.ArrayLike, priorities: I64, hit_target: int, limit: int | None = None
) -> tuple[Gap, ...]:
    """Cells below the hit target, best priority first, then the largest deficit."""
    rpm, map_kpa = axis_arrays(axes)
    deficit = np.maximum(hit_target - np.asarray(hits, dtype=np.int64), 0)
    rows, cols = np.nonzero(deficit > 0)
    order = np.lexsort((cols, rows, -deficit[rows, cols], priorities[rows, cols]))
    if limit is not None:
        order = order[:limit]
    return tuple(
        Gap(
            int(r),
            int(c),
            float(rpm[c]),
            float(map_kpa[r]),
            int(priorities[r, c]),
            int(deficit[r, c]),
        )
        for r, c in zip(rows[order], cols[order], strict=True)
    )
