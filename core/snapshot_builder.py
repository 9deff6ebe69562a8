"""SnapshotBuilder: what the dashboard shows, assembled from raw samples and engine state.

Gauges, the operating cell and the 30 s history follow the newest *raw* sample of
each channel: only binning waits for the lambda transport delay (fused rows), and a
tuner must see every reading the moment it arrives. Values older than their
channel's staleness limit are shown as NaN (``--``), never silently held.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from core.alarms import ALARM_CHANNELS, Alarm, AlarmWatch
from core.coverage.grid import CoverageGrid
from core.frames import F64, Block
from core.plan.instruction import with_map_now
from core.plan.types import PlanView
from core.snapshot import History, RecordingInfo, Snapshot, SourceInfo
from core.source import Source, SourceEvent, SourceState
from core.vehicle import VehicleConfig

_GONE = (SourceState.RECONNECTING, SourceState.FAILED)
_SILENT = (SourceState.STALE, SourceState.RECONNECTING, SourceState.FAILED)
"""Source states that deliver no data."""
_AFR_OF = {"lambda": "afr", "lambda_target": "afr_target"}
"""Lambda channels a source may give as AFR instead."""
"""Source states whose device is gone: what it delivered is no reading any more."""

HISTORY_S = 30.0
RATE_WINDOW_S = 2.0


class _Rate:
    def __init__(self) -> None:
        self.samples = 0
        self._window: deque[tuple[float, int]] = deque()

    def add(self, now: float, n: int) -> None:
        self.samples += n
        self._window.append((now, n))

    def rate(self, now: float) -> float:
        while self._window and now - self._window[0][0] > RATE_WINDOW_S:
            self._window.popleft()
        if not self._window:
            return 0.0
        span = max(now - self._window[0][0], 0.5)
        return sum(n for _, n in self._window) / span


class SnapshotBuilder:
    """Display state (latest values, history, rates) and the immutable Snapshot from it.

    Args:
        config: The vehicle (stoich for AFR <-> lambda on the gauges, alarm limits).
        sources: The session's sources (names for the rate counters).
        clock: The session's monotonic clock.
        data_clock: Judge staleness and elapsed time by sample time (replay).
        stale_limit: Seconds after which a channel's value is shown as NaN.
        tick_s: The engine tick (a value is not stale within one tick of its limit).
    """

    def __init__(
        self,
        config: VehicleConfig,
        sources: Sequence[Source],
        *,
        clock: Callable[[], float],
        data_clock: bool,
        stale_limit: Callable[[str], float],
        tick_s: float,
    ) -> None:
        self.config = config
        self._clock = clock
        self.data_clock = data_clock
        self.stale_limit = stale_limit
        self.tick_s = tick_s
        self._sources = [s.name for s in sources]
        self._seq = 0
        self.on_event: Callable[[SourceEvent], None] | None = None
        """Receives alarm onsets and clears (the session records them)."""
        self.started_wall = clock()
        self.reset()

    def reset(self) -> None:
        """Forget what was shown (a replay seek starts from scratch)."""
        self.samples_total = 0
        self._rates = {name: _Rate() for name in self._sources}  # per-source counts restart too
        self._alarm_watch = AlarmWatch(self.config.alarms, self.config.stoich)
        self._latest: dict[str, tuple[float, float]] = {}
        self._owner: dict[str, str] = {}
        """Channel -> the source whose block last set it."""
        self._lost: frozenset[str] = frozenset()
        """Sources whose device is gone (``reconnecting`` / ``failed``) at the last build."""
        self._first_t: float | None = None
        self.newest_t = 0.0
        self._history: deque[tuple[float, float, float, float]] = deque()

    def count(self, source: str, n: int) -> None:
        """``n`` samples arrived from ``source`` (rates and totals)."""
        self._rates[source].add(self._clock(), n)
        self.samples_total += n

    def show(self, block: Block) -> None:
        """Gauges, the operating cell and history take the newest raw samples."""
        last_t = float(block.t[-1])
        if self._first_t is None:
            self._first_t = float(block.t[0])
        self.newest_t = max(self.newest_t, last_t)
        self._alarm_watch.judge(block.t, self._alarm_columns(block), block.source, self.on_event)
        stoich = self.config.stoich
        for name, values in block.columns.items():
            self._latest[name] = (last_t, float(values[-1]))
            self._owner[name] = block.source
        for lam_name, afr_name in _AFR_OF.items():
            if lam_name in block.columns:
                self._latest[afr_name] = (last_t, self._latest[lam_name][1] * stoich)
                self._owner[afr_name] = block.source
            elif afr_name in block.columns:
                self._latest[lam_name] = (last_t, self._latest[afr_name][1] / stoich)
                self._owner[lam_name] = block.source
        self._history.append(
            (last_t, self._value("rpm"), self._value("afr"), self._value("afr_target"))
        )
        while self._history and last_t - self._history[0][0] > HISTORY_S:
            self._history.popleft()

    def _alarm_columns(self, block: Block) -> dict[str, F64]:
        """The channels the value alarms read, at each of the block's sample times.

        The block's own columns where it has them (AFR converted to lambda), else the
        value held from another source while it is fresh at that sample's time, as
        :meth:`current_values` holds it for the gauges.
        """
        t = np.asarray(block.t, dtype=np.float64)
        stoich = self.config.stoich
        cols: dict[str, F64] = {}
        for name in ALARM_CHANNELS:
            own = block.columns.get(name)
            if own is None and name in _AFR_OF:
                afr = block.columns.get(_AFR_OF[name])
                own = None if afr is None else np.asarray(afr, dtype=np.float64) / stoich
            if own is not None:
                cols[name] = np.asarray(own, dtype=np.float64)
                continue
            held = self._latest.get(name)
            if held is None or self._owner.get(name) in self._lost:
                continue
            fresh = t - held[0] <= self.stale_limit(name) + self.tick_s
            if fresh.any():
                cols[name] = np.where(fresh, held[1], np.nan)
        return cols

    def _value(self, name: str) -> float:
        held = self._latest.get(name)
        return held[1] if held is not None else math.nan

    def now_t(self) -> float:
        return self.newest_t if self.data_clock else self._clock()

    def current_values(self) -> dict[str, float]:
        """The latest value of every channel, NaN where older than its staleness limit."""
        now = self.now_t()
        values = {}
        lost = self._lost
        for name, (t, v) in self._latest.items():
            fresh = now - t <= self.stale_limit(name) + self.tick_s
            # a source whose device is gone holds nothing: its lambda target read 14.5
            # for the 2 s of a target's staleness after the ELM327's port vanished (QA)
            values[name] = v if fresh and self._owner.get(name) not in lost else math.nan
        return values

    def elapsed(self) -> float:
        if not self.data_clock:
            return self._clock() - self.started_wall
        return (self.newest_t - self._first_t) if self._first_t is not None else 0.0

    def source_infos(self, sources: Sequence[Source]) -> tuple[SourceInfo, ...]:
        wall = self._clock()
        infos = tuple(
            SourceInfo(
                s.name,
                s.uri,
                s.status.state,
                s.status.message,
                self._rates[s.name].rate(wall),
                self._rates[s.name].samples,
            )
            for s in sources
        )
        self._lost = frozenset(i.name for i in infos if i.state in _GONE)
        return infos

    def build(
        self,
        *,
        grid: CoverageGrid,
        sources: Sequence[Source],
        rejects: Mapping[str, int],
        plan: PlanView,
        recording: RecordingInfo | None,
        record_error: str,
        faults: Sequence[str] = (),
        pulls_done: int,
        pulls_max: int | None,
        in_pull: bool,
        finished: bool,
        paused: bool,
        speed: float,
        stored: CoverageGrid | None = None,
        data_ended: bool = False,
        rows_pending: int = 0,
        rows_flushed: int = 0,
    ) -> Snapshot:
        """The Snapshot of now.

        ``data_ended``: the finite sources have ended (``Session._end_of_data``); the
        gauges keep the log's last values, but no alarm is judged from them.
        """
        infos = self.source_infos(sources)  # first: a lost source's values go at once
        values = self.current_values()
        rpm, map_kpa = values.get("rpm", math.nan), values.get("map_kpa", math.nan)
        cell = grid.cell_of(rpm, map_kpa) if math.isfinite(rpm) and math.isfinite(map_kpa) else None
        line = with_map_now(plan.instruction, map_kpa)
        if line != plan.instruction:
            plan = replace(plan, instruction=line)  # the walk's "(now N)": this sample's MAP
        silent = [i for i in infos if i.state in _SILENT]
        if silent and not math.isfinite(rpm) and not data_ended:
            # a pty left silent for 49 s: the line went on saying "go to 2000 rpm, 50 kPa"
            # with no engine data to follow it by; the alarm line said why, at the side
            names = ", ".join(f"{i.name} {i.state.value}" for i in silent)
            plan = replace(plan, instruction=f"no engine data: {names}; check the device and cable")
        hist = np.array(self._history, dtype=np.float64).reshape(-1, 4)
        history = History(hist[:, 0] - self.newest_t, hist[:, 1], hist[:, 2], hist[:, 3])
        self._seq += 1
        vehicle_grid = None
        if stored is not None and stored.axes == grid.axes and stored.hits.any():
            both = stored.copy()
            both.merge(grid)
            vehicle_grid = both.view()
        return Snapshot(
            seq=self._seq,
            elapsed_s=self.elapsed(),
            now_t=self.newest_t,
            values=values,
            sources=infos,
            grid=grid.view(),
            current_cell=cell,
            samples_total=self.samples_total,
            samples_binned=grid.samples_binned,
            rejects=dict(rejects),
            history=history,
            plan=plan,
            recording=recording,
            vehicle=self.config.name,
            pulls_done=pulls_done,
            pulls_max=pulls_max,
            in_pull=in_pull,
            alarms=self._alarms(values, infos, record_error, pulls_done, pulls_max, data_ended)
            + tuple(faults),
            alarms_seen=self._alarm_watch.seen,
            finished=finished,
            paused=paused,
            speed=speed,
            vehicle_grid=vehicle_grid,
            rows_pending=rows_pending,
            rows_flushed=rows_flushed,
        )

    def _alarms(
        self,
        values: Mapping[str, float],
        infos: Sequence[SourceInfo],
        record_error: str,
        pulls_done: int = 0,
        pulls_max: int | None = None,
        data_ended: bool = False,
    ) -> tuple[str, ...]:
        alarms = self._alarm_watch.update(
            values, infos, self.now_t(), record_error, self.on_event, ended=data_ended
        )
        if pulls_max is not None and pulls_done > pulls_max:
            text = f"PULLS {pulls_done}/{pulls_max}: OVER THE SESSION LIMIT"
            alarms = (Alarm(text, "pulls_over_limit"), *alarms)
        return alarms
