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

from core.coverage.view import GridView
from core.plan.types import PlanView
from core.source import SourceState

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One source's state and rate as the dashboard shows it."""

    name: str
    uri: str
    state: SourceState
    message: str
    rate_hz: float
    """Samples per second over the last few seconds."""
    samples: int
    """Samples received since the session started."""


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """The recording in progress: file, size and how long it has run."""

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
class AlarmSeen:
    """One alarm's run so far: how often it came on, for how long, and its worst reading."""

    code: str
    onsets: int
    seconds: float
    """Data time it was on."""
    worst: str
    """Its text at its worst (the most retard, the leanest, the hottest; a source's first)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the dashboard and the status line show, immutable, published per engine tick."""

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
    """Rows rejected, by reason. With ``samples_binned`` and ``rows_pending``, every fused row."""
    history: History
    plan: PlanView = field(default_factory=PlanView)
    recording: RecordingInfo | None = None
    vehicle: str = ""
    pulls_done: int = 0
    pulls_max: int | None = None
    in_pull: bool = False
    alarms: tuple[str, ...] = ()
    alarms_seen: tuple[AlarmSeen, ...] = ()
    """Every alarm that came on this run, in the order each first did (the summary's)."""
    finished: bool = False
    """All sources are finite and done (replay or batch simulation)."""
    paused: bool = False
    speed: float = 1.0
    vehicle_grid: GridView | None = None
    """This run with the vehicle's stored runs (``--vehicle`` with runs stored): the
    coverage the planner works from. None when this run is all there is. ``grid`` stays
    this run's (status, summaries, exports, and the mixture views: older runs ran on
    another tune)."""
    rows_pending: int = 0
    """Rows fused but neither binned nor rejected yet: they wait for later data (the
    lambda delay, another source or channel set). A run that ends, or whose sources
    fall silent, with rows pending filters them at the end with what had come; the
    status says ``pending`` so its counts are not taken for final."""
    rows_flushed: int = 0
    """Rows that were still pending when the data ended and were filtered then."""
