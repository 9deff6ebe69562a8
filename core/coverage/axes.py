"""Table axes: the rpm and MAP breakpoints the coverage grid is shaped like.

The grid mirrors the ECU's fuel table, so its axes are the table's breakpoints
(from the vehicle config or imported from an ECU table), not an arbitrary
histogram. A breakpoint is the *centre* of its cell: a sample belongs to the
nearest breakpoint on each axis, and a cell reaches half way to its neighbours
(and half a cell beyond the first and last breakpoint). A sample further out than
that is off the table. Breakpoints must be strictly increasing and positive; the
error says which axis and which index is wrong so a tuner can fix the config.

Array order everywhere is ``[map_index, rpm_index]`` (rows = MAP, columns = rpm),
the way tuning software draws a fuel table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from core.config import ConfigError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

DEFAULT_RPM: tuple[float, ...] = (
    750, 1000, 1250, 1500, 1750, 2000, 2500, 3000,
    3500, 4000, 4500, 5000, 5500, 6000, 6500, 7000,
)  # fmt: skip
"""Default rpm breakpoints: 250 rpm steps up to 2000 (idle and tip-in detail), then 500."""

DEFAULT_MAP_KPA: tuple[float, ...] = (
    20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 95, 105,
)  # fmt: skip
"""Default MAP breakpoints: 5 kPa steps to 85 kPa, then 95 and 105 (WOT, no boost)."""


MAX_BREAKPOINTS = 64
"""Largest axis: bounds grid, planner and store memory (64 x 64 = 4096 cells)."""


class AxesError(ConfigError):
    """Bad table axes. The message names the axis and what is wrong with it."""


def _validate_axis(name: str, values: Any) -> F64:
    """One axis as a read-only float64 array, or AxesError saying what is wrong."""
    if isinstance(values, (str, bytes)):
        raise AxesError(f"{name} axis: expected a list of numbers, got {values!r}")
    if hasattr(values, "__len__") and len(values) > MAX_BREAKPOINTS:
        raise AxesError(
            f"{name} axis: {len(values)} breakpoints, at most {MAX_BREAKPOINTS} "
            f"(ECU fuel tables are at most 32 x 32)"
        )
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise AxesError(f"{name} axis: expected a list of numbers, got {values!r}") from None
    if arr.ndim != 1:
        raise AxesError(f"{name} axis: expected a flat list of breakpoints, got shape {arr.shape}")
    if arr.size < 2:
        raise AxesError(f"{name} axis: needs at least 2 breakpoints, got {arr.size}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise AxesError(f"{name} axis: value at index {i} is {arr[i]}, not a finite number")
    if arr[0] <= 0.0:
        raise AxesError(
            f"{name} axis: breakpoints must be greater than 0, got {arr[0]:g} at index 0"
        )
    step_bad = np.flatnonzero(np.diff(arr) <= 0.0)
    if step_bad.size:
        i = int(step_bad[0]) + 1
        raise AxesError(
            f"{name} axis: value {arr[i]:g} at index {i} is not greater than {arr[i - 1]:g} "
            f"at index {i - 1}; breakpoints must be strictly increasing"
        )
    arr.setflags(write=False)
    return arr


def _as_float_array(x: Any) -> F64:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class AxisLookup:
    """Precomputed lookup tables of one axis, shared by the grid and the planner.

    Attributes:
        points: The breakpoints.
        mids: Cell boundaries between breakpoints (n - 1 midpoints).
        lo: Lowest value still on the table (half a cell below the first breakpoint).
        hi: Highest value still on the table (half a cell above the last breakpoint).
        edges: ``[lo, *mids, hi]``: the n + 1 cell boundaries.
        inv_step: 1 / (points[i + 1] - points[i]) for the bilinear fractions.
    """

    points: F64
    mids: F64
    lo: float
    hi: float
    edges: F64
    inv_step: F64

    @classmethod
    def of(cls, arr: F64) -> AxisLookup:
        mids = (arr[1:] + arr[:-1]) * 0.5
        lo = float(arr[0] - (arr[1] - arr[0]) * 0.5)
        hi = float(arr[-1] + (arr[-1] - arr[-2]) * 0.5)
        edges = np.concatenate(([lo], mids, [hi]))
        inv_step = 1.0 / np.diff(arr)
        for a in (mids, edges, inv_step):
            a.setflags(write=False)
        return cls(arr, mids, lo, hi, edges, inv_step)


@dataclass(frozen=True, eq=False)
class TableAxes:
    """rpm and MAP breakpoints of a fuel table (validated, read-only).

    Attributes:
        rpm: rpm breakpoints, strictly increasing, > 0.
        map_kpa: MAP breakpoints in kPa, strictly increasing, > 0.
    """

    rpm: F64
    map_kpa: F64
    rpm_lookup: AxisLookup = field(init=False, repr=False, compare=False)
    map_lookup: AxisLookup = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rpm = _validate_axis("rpm", self.rpm)
        map_kpa = _validate_axis("map_kpa", self.map_kpa)
        object.__setattr__(self, "rpm", rpm)
        object.__setattr__(self, "map_kpa", map_kpa)
        # Lookup tables computed once: cell boundaries and the outer limits.
        object.__setattr__(self, "rpm_lookup", AxisLookup.of(rpm))
        object.__setattr__(self, "map_lookup", AxisLookup.of(map_kpa))

    # -- construction -----------------------------------------------------------------

    @classmethod
    def default(cls) -> TableAxes:
        """16 x 16 covering 750-7000 rpm and 20-105 kPa (see DEFAULT_RPM, DEFAULT_MAP_KPA)."""
        return cls(np.array(DEFAULT_RPM, dtype=np.float64), np.array(DEFAULT_MAP_KPA))

    @classmethod
    def linear(
        cls,
        rpm_min: float,
        rpm_max: float,
        n_rpm: int,
        map_min: float,
        map_max: float,
        n_map: int,
    ) -> TableAxes:
        """Evenly spaced breakpoints, both ends included."""
        for name, n in (("rpm", n_rpm), ("map_kpa", n_map)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 2:
                raise AxesError(f"{name} axis: needs an integer count of at least 2, got {n!r}")
        return cls(np.linspace(rpm_min, rpm_max, n_rpm), np.linspace(map_min, map_max, n_map))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableAxes:
        """From ``{"rpm": [...], "map_kpa": [...]}`` (a config section or a log header)."""
        if not isinstance(d, Mapping):
            raise AxesError(f"axes: expected a table with 'rpm' and 'map_kpa', got {d!r}")
        unknown = sorted(set(d) - {"rpm", "map_kpa"})
        if unknown:
            raise AxesError(f"axes: unknown key {unknown[0]!r}; expected only 'rpm' and 'map_kpa'")
        for key in ("rpm", "map_kpa"):
            if key not in d:
                raise AxesError(f"axes: missing {key!r} (a list of breakpoints)")
        return cls(_validate_axis("rpm", d["rpm"]), _validate_axis("map_kpa", d["map_kpa"]))

    def to_dict(self) -> dict[str, list[float]]:
        return {"rpm": [float(v) for v in self.rpm], "map_kpa": [float(v) for v in self.map_kpa]}

    # -- shape and comparison ---------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """(n_map, n_rpm): the shape of every per-cell array."""
        return (int(self.map_kpa.size), int(self.rpm.size))

    @property
    def n_cells(self) -> int:
        return int(self.map_kpa.size * self.rpm.size)

    @property
    def rpm_edges(self) -> F64:
        """n_rpm + 1 cell boundaries: half a cell outside the ends, midpoints between."""
        return self.rpm_lookup.edges

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableAxes):
            return NotImplemented
        return bool(
            np.array_equal(self.rpm, other.rpm) and np.array_equal(self.map_kpa, other.map_kpa)
        )

    def __hash__(self) -> int:
        return hash((self.rpm.tobytes(), self.map_kpa.tobytes()))

    def __repr__(self) -> str:
        return (
            f"TableAxes(rpm={_short(self.rpm)} ({self.rpm.size}), "
            f"map_kpa={_short(self.map_kpa)} ({self.map_kpa.size}))"
        )

    # -- lookups ----------------------------------------------------------------------

    def nearest(self, rpm: Any, map_kpa: Any) -> tuple[I64, I64]:
        """Nearest cell of each sample as ``(map_idx, rpm_idx)`` int64 arrays.

        A value exactly half way between two breakpoints goes to the upper cell.
        Both indices are -1 where the sample is more than half a cell outside the
        axes on either axis, or is NaN: such a sample is in no cell.
        """
        rpm_a = _as_float_array(rpm)
        map_a = _as_float_array(map_kpa)
        rpm_idx = np.searchsorted(self.rpm_lookup.mids, rpm_a, side="right")
        map_idx = np.searchsorted(self.map_lookup.mids, map_a, side="right")
        inside = self.inside(rpm_a, map_a)
        return (
            np.where(inside, map_idx, -1).astype(np.int64),
            np.where(inside, rpm_idx, -1).astype(np.int64),
        )

    def flat_index(self, rpm: Any, map_kpa: Any) -> I64:
        """Flat nearest-cell index ``map_idx * n_rpm + rpm_idx`` per sample; -1 off the table.

        The one flat-cell helper: the grid bins with it, the planner counts where a
        modelled test puts its samples with
        ``np.bincount(idx[idx >= 0], minlength=axes.n_cells)``, the tracker compares.
        """
        map_idx, rpm_idx = self.nearest(rpm, map_kpa)
        flat: I64 = np.where(map_idx >= 0, map_idx * self.shape[1] + rpm_idx, -1)
        return flat

    def inside(self, rpm: Any, map_kpa: Any) -> npt.NDArray[np.bool_]:
        """True where a sample is at most half a cell outside both axes (NaN is outside)."""
        rpm_a = _as_float_array(rpm)
        map_a = _as_float_array(map_kpa)
        r, m = self.rpm_lookup, self.map_lookup
        inside: npt.NDArray[np.bool_] = (
            (rpm_a >= r.lo) & (rpm_a <= r.hi) & (map_a >= m.lo) & (map_a <= m.hi)
        )
        return inside

    def cell_center(self, map_idx: Any, rpm_idx: Any) -> tuple[Any, Any]:
        """The breakpoints ``(rpm, map_kpa)`` at a cell: the inverse of :meth:`nearest`.

        Scalars give floats, arrays give arrays. An index out of range is an IndexError.
        """
        m = np.asarray(map_idx)
        r = np.asarray(rpm_idx)
        n_map, n_rpm = self.shape
        if np.any((m < 0) | (m >= n_map)) or np.any((r < 0) | (r >= n_rpm)):
            raise IndexError(f"cell ({map_idx}, {rpm_idx}) is outside a {n_map} x {n_rpm} table")
        rpm_v = self.rpm[r]
        map_v = self.map_kpa[m]
        if rpm_v.ndim == 0 and map_v.ndim == 0:
            return float(rpm_v), float(map_v)
        return rpm_v, map_v


def _short(arr: F64) -> str:
    if arr.size <= 4:
        return "[" + ", ".join(f"{v:g}" for v in arr) + "]"
    return f"[{arr[0]:g}, {arr[1]:g}, ..., {arr[-1]:g}]"


__all__ = ["DEFAULT_MAP_KPA", "DEFAULT_RPM", "AxesError", "AxisLookup", "TableAxes"]
