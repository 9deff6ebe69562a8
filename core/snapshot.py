"""Immutable views the engine publishes for the TUI and the headless printer.

The engine builds one :class:`Snapshot` per tick and swaps a reference; readers
(the TUI timer, the headless status line) take the newest one whenever they like.
Nothing in a snapshot is mutated after publication, and arrays in it are private
read-only copies, so a reader on another thread never sees half an update.

The planner's result types live here too, so the UI and headless code can show a
plan without importing the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.source import SourceState

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    uri: str
    state: SourceState
    message: str
    rate_hz: float
    """Samples per second over the last few seconds."""
    samples: int
    """Samples received since the session started."""


@dataclass(frozen=True, slots=True)
class GridView:
    """Read-only copy of the coverage grid's per-cell arrays, rows = MAP, columns = rpm."""

    rpm_axis: F64
    map_axis: F64
    hits: I64
    weight: F64
    dwell_s: F64
    afr_mean: F64
    """Weighted mean AFR per cell (NaN where no data)."""
    lambda_mean: F64
    afr_error_pct: F64
    """(measured lambda / target lambda - 1) x 100 per cell: + lean, - rich (NaN where unknown)."""
    knock_events: I64
    hit_target: int
    covered_pct: float
    covered_cells: int


@dataclass(frozen=True, slots=True)
class Target:
    """A cell the tuner should visit next."""

    map_index: int
    rpm_index: int
    rpm: float
    map_kpa: float
    priority: int
    """1 (highest) .. 3."""
    deficit: int
    """Hits still missing to reach the target."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One candidate test, ranked."""

    test_type: str
    """``wot_pull``, ``part_throttle_sweep``, ``steady_state``, ``tip_in``, ``idle_low_map``, ``street_cruise``."""
    description: str
    rpm_range: tuple[float, float]
    map_range: tuple[float, float]
    minutes: float
    expected_gain: float
    efficiency: float
    """Gain per minute normalised to 0..1 over the candidates of this plan."""
    band: str
    """``high`` (>= 0.7), ``medium`` (0.4-0.7), ``low`` (< 0.4)."""
    priority: int
    cells: tuple[tuple[int, int], ...]
    """(map_index, rpm_index) pairs the test is expected to fill."""


@dataclass(frozen=True, slots=True)
class FilteredTest:
    test_type: str
    description: str
    reason: str
    """The constraint that removed it, e.g. ``max_rpm 5500 < 6000 needed``."""


@dataclass(frozen=True, slots=True)
class PlanView:
    suggestions: tuple[Suggestion, ...] = ()
    filtered: tuple[FilteredTest, ...] = ()
    targets: tuple[Target, ...] = ()
    instruction: str = ""
    """One plain instruction from the current operating point, e.g. 'hold 3000 rpm, raise MAP to 85 kPa'."""
    prediction_error_pct: float | None = None
    """The planner's mean absolute error of predicted vs actual hits so far."""


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    path: str
    bytes_written: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class History:
    """The last ~30 s of a few channels for the strip charts (times relative to ``Snapshot.now_t``)."""

    t_rel_s: F64
    rpm: F64
    afr: F64
    afr_target: F64


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    """Increases by one per published snapshot."""
    elapsed_s: float
    """Session wall-clock time since start (for replay: data time since the first sample)."""
    now_t: float
    """Time of the newest fused sample, on the sources' clock."""
    values: Mapping[str, float]
    """Latest fused value per canonical channel; NaN when stale."""
    sources: tuple[SourceInfo, ...]
    grid: GridView
    current_cell: tuple[int, int] | None
    """(map_index, rpm_index) of the operating point, or None when off the table / no data."""
    samples_total: int
    samples_binned: int
    rejects: Mapping[str, int]
    history: History
    plan: PlanView = field(default_factory=PlanView)
    recording: RecordingInfo | None = None
    vehicle: str = ""
    pulls_done: int = 0
    pulls_max: int | None = None
    in_pull: bool = False
    alarms: tuple[str, ...] = ()
    finished: bool = False
    """All sources are finite and done (replay or batch simulation)."""
    paused: bool = False
    speed: float = 1.0
