"""The engine: sources -> queue -> tick -> fuse -> filters -> grid -> recorder -> Snapshot.

Each source runs in its own pump thread (blocking I/O never reaches the engine);
pump threads put ``(source, block)`` on one bounded queue. The engine thread
ticks every ``tick_s``: it drains the queue in arrival order, rounds every column
to float32 (the recorder's precision, so a replay bins exactly what live binned),
records the raw block, fuses, filters, bins, lets the vehicle tracker see the
rows, and publishes an immutable :class:`core.snapshot.Snapshot`. Readers take
``session.snapshot`` whenever they like; nothing is pushed per sample.

``run_to_end()`` drives finite sources (replay, batch simulation) synchronously
through the very same ``_ingest`` path, as fast as the data can be read.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.coverage.filters import FilterChain, FilterResult
from core.coverage.grid import CoverageGrid
from core.frames import Block
from core.fusion import Fuser
from core.plan.types import PlanView
from core.record import LogFileError, LogHeader, LogWriter
from core.snapshot import History, RecordingInfo, Snapshot, SourceInfo
from core.source import Source, SourceError, SourceEvent, SourceState
from core.vehicle import VehicleConfig

HISTORY_S = 30.0
PLAN_INTERVAL_S = 1.0
CHECKPOINT_INTERVAL_S = 60.0
RATE_WINDOW_S = 2.0
_RESET = object()
"""Queue sentinel: a replay source jumped (seek), rebuild from scratch."""


class Tracker(Protocol):
    """What the engine needs from ``core.plan.tracker.VehicleTracker``."""

    def on_rows(
        self, block: Block, result: FilterResult, grid: CoverageGrid
    ) -> list[SourceEvent]: ...

    def plan(self, grid: CoverageGrid, values: Mapping[str, float]) -> PlanView: ...

    def checkpoint(self, grid: CoverageGrid) -> None: ...

    def finish(self, grid: CoverageGrid, stats: Mapping[str, object]) -> None: ...

    def set_constraints(self, constraints: Any) -> None: ...

    def restart_run(self) -> None: ...

    @property
    def pulls_done(self) -> int: ...

    @property
    def pulls_max(self) -> int | None: ...


def to_recorded_precision(block: Block) -> Block:
    """Round every column to float32 (lossless for real sensors; what the recorder keeps)."""
    return Block(
        block.source,
        block.t,
        {k: v.astype(np.float32).astype(np.float64) for k, v in block.columns.items()},
    )


_OWNER_KEY = {"afr": "lambda", "afr_target": "lambda_target"}
"""AFR and lambda are one measurement: whoever owns lambda owns AFR too."""


def channel_owners(declared: Sequence[tuple[str, Mapping[str, str]]]) -> dict[str, str]:
    """Which source feeds each channel when several could (e.g. ECU O2 vs a wideband).

    A dedicated wideband (declares lambda/AFR but not rpm) owns the mixture
    channels; otherwise the first source in ``--source`` order owns a channel. The
    others' values for it are still recorded, but not fused, shown or binned.
    """

    def dedicated_wideband(channels: Mapping[str, str]) -> bool:
        return bool({"lambda", "afr"} & set(channels)) and "rpm" not in channels

    owners: dict[str, str] = {}
    for name, channels in sorted(declared, key=lambda d: not dedicated_wideband(d[1])):
        for channel in channels:
            owners.setdefault(_OWNER_KEY.get(channel, channel), name)
    return owners


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


class Session:
    """One logging / dashboard session over one or more sources.

    Args:
        sources: Sources to open (not yet opened); their names must be unique.
        config: Vehicle settings (axes, filters, delay, ...).
        tracker: Per-vehicle memory and planner (``core.plan.tracker.VehicleTracker``).
        record_path: Start recording to this .dynolog at once.
        tick_s: Engine tick period (20-50 ms).
        clock: Monotonic clock (injectable for tests).
        run_id: Identifies this run in the vehicle store; written into the recording.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        config: VehicleConfig | None = None,
        tracker: Tracker | None = None,
        record_path: str | Path | None = None,
        tick_s: float = 0.03,
        clock: Callable[[], float] = time.monotonic,
        run_id: str = "",
    ) -> None:
        self.sources = list(sources)
        self.run_id = run_id
        self.config = config or VehicleConfig()
        self.tracker = tracker
        self.tick_s = tick_s
        self._clock = clock
        self._record_request = Path(record_path) if record_path is not None else None
        self._queue: queue.Queue[tuple[Source, Any]] = queue.Queue(maxsize=512)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._engine: threading.Thread | None = None
        self._snapshot_ref: Snapshot | None = None
        self._rates = {s.name: _Rate() for s in self.sources}
        self._writer: LogWriter | None = None
        self._record_started = 0.0
        self._record_error = ""
        self.events: deque[SourceEvent] = deque(maxlen=200)
        """Recent events (markers, pulls, disconnects) for the UI."""
        self.realtime = all(s.realtime for s in self.sources)
        self.data_clock = not self.realtime or any(s.own_clock for s in self.sources)
        """Judge staleness and elapsed time by sample time (replay), not the wall clock."""
        self.finite = bool(self.sources) and all(s.finite for s in self.sources)
        self._reset_state()
        self._started_wall = self._clock()
        self._seq = 0
        self.replay = next(
            (getattr(s, "control", None) for s in self.sources if getattr(s, "control", None)), None
        )
        """Playback control of a replay source (pause, speed, seek), else None."""

    # -- state ------------------------------------------------------------------

    def _declared_channels(self) -> list[tuple[str, Mapping[str, str]]]:
        declared: list[tuple[str, Mapping[str, str]]] = []
        for src in self.sources:
            recorded = getattr(src, "recorded_sources", None)
            declared.extend(recorded() if recorded is not None else [(src.name, src.channels())])
        return declared

    def _reset_state(self) -> None:
        cfg = self.config
        declared = self._declared_channels()
        self._owners = channel_owners(declared)
        expect_mixture = any({"lambda", "afr"} & set(channels) for _, channels in declared)
        self._fuser = Fuser(
            cfg.lambda_delay_ms / 1000.0, cfg.stoich, cfg.staleness_s, expect_mixture=expect_mixture
        )
        self._filters = FilterChain(cfg.filters)
        self.grid = CoverageGrid(cfg.axes, hit_target=cfg.hit_target, stoich=cfg.stoich)
        self._samples_total = 0
        self._latest: dict[str, tuple[float, float]] = {}
        self._first_t: float | None = None
        self._newest_t = 0.0
        self._history: deque[tuple[float, float, float, float]] = deque()
        self._last_plan_wall = -math.inf
        self._last_checkpoint_wall = self._clock() if hasattr(self, "_clock") else 0.0
        self._plan = PlanView()
        self._in_pull = False
        self._generations: dict[str, int] = {}

    # -- life cycle ---------------------------------------------------------------

    def open_sources(self) -> None:
        """Open every source; on failure close the ones opened and re-raise (clear message)."""
        opened: list[Source] = []
        try:
            for src in self.sources:
                src.open()
                opened.append(src)
        except SourceError:
            for src in opened:
                src.close()
            raise
        self._reset_state()  # channels are known once the sources are open
        self._started_wall = self._clock()
        self._last_checkpoint_wall = self._started_wall
        if self._record_request is not None:
            try:
                self.start_recording(self._record_request)
            except (LogFileError, OSError):
                for src in self.sources:
                    with contextlib.suppress(SourceError, OSError):
                        src.close()
                raise
        self._publish()

    def start(self) -> None:
        """Open the sources and start the pump threads and the engine tick thread."""
        self.open_sources()
        for src in self.sources:
            th = threading.Thread(
                target=self._pump, args=(src,), name=f"pump-{src.name}", daemon=True
            )
            th.start()
            self._threads.append(th)
        self._engine = threading.Thread(target=self._engine_loop, name="engine", daemon=True)
        self._engine.start()

    def run_to_end(self, *, should_stop: Callable[[], bool] = lambda: False) -> Snapshot:
        """Drive finite, non-realtime sources synchronously to their end (fastest path)."""
        self.open_sources()
        active = list(self.sources)
        while active and not should_stop():
            for src in list(active):
                try:
                    blk = src.read(0.0)
                except SourceError as exc:
                    src.set_status(SourceState.FAILED, str(exc))
                    active.remove(src)
                    continue
                if blk is None:
                    if src.status.state in (SourceState.FINISHED, SourceState.FAILED):
                        active.remove(src)
                    continue
                self._ingest(src, blk)
            self._after_tick()
        return self.stop()

    def stop(self) -> Snapshot:
        """Stop everything, bin what is pending, flush and close the recording. Idempotent."""
        self._stop.set()
        for th in self._threads:
            th.join(timeout=2.0)
        if self._engine is not None:
            self._engine.join(timeout=5.0)
            self._engine = None
        with self._lock:
            self._drain_queue()
            tail = self._fuser.flush()
            if tail is not None:
                self._bin(tail)
            for src in self.sources:
                with contextlib.suppress(SourceError, OSError):
                    src.close()
            self._collect_events()
            if self.tracker is not None:
                self.tracker.finish(self.grid, self.stats())
            self.stop_recording()
            return self._publish(finished=True)

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot_ref
        if snap is None:
            snap = self._publish()
        return snap

    @property
    def finished(self) -> bool:
        return self.snapshot.finished

    def stats(self) -> dict[str, object]:
        return {
            "samples": self._samples_total,
            "samples_binned": self.grid.samples_binned,
            "rejects": self.rejects(),
            "covered_pct": self.grid.covered_pct(),
            "duration_s": self._elapsed(),
        }

    def rejects(self) -> dict[str, int]:
        merged = dict(self._filters.rejects)
        for k, v in self.grid.rejects.items():
            merged[k] = merged.get(k, 0) + v
        return merged

    # -- commands from the UI / CLI -------------------------------------------------

    def start_recording(self, path: str | Path) -> None:
        header = LogHeader(
            created_at=time.time(),
            t0=self._clock(),
            vehicle=self.config.name,
            sources={s.name: {"uri": s.uri, "channels": s.channels()} for s in self.sources},
            axes=self.config.axes.to_dict(),
            metadata={
                "lambda_delay_ms": self.config.lambda_delay_ms,
                "stoich": self.config.stoich,
                "hit_target": self.config.hit_target,
                "app": "dynoai-tui",
                "run_id": self.run_id,
            },
        )
        with self._lock:
            if self._writer is not None:
                return
            self._writer = LogWriter(Path(path), header)
            self._record_started = self._clock()
            self._record_error = ""

    def stop_recording(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def set_constraints(self, constraints: Any) -> None:
        """Apply edited constraints to the running plan (re-planned at the next tick)."""
        with self._lock:
            if self.tracker is not None:
                self.tracker.set_constraints(constraints)
            self._last_plan_wall = -math.inf

    def mark(self, kind: str, text: str = "") -> None:
        """Record a marker / note / manual pull start or stop at the current data time."""
        event = SourceEvent("user", kind, self._newest_t, text)
        with self._lock:
            if kind == "pull_start":
                self._in_pull = True
            elif kind == "pull_stop":
                self._in_pull = False
            self._record_event(event)

    # -- engine -------------------------------------------------------------------

    def _pump(self, src: Source) -> None:
        generation = getattr(src, "generation", 0)
        while not self._stop.is_set():
            try:
                blk = src.read(0.1)
            except SourceError as exc:
                src.set_status(SourceState.FAILED, str(exc))
                return
            except Exception as exc:  # a driver bug must not take the session down
                src.set_status(SourceState.FAILED, f"driver error: {exc!r}")
                return
            gen = getattr(src, "generation", 0)
            if gen != generation:
                generation = gen
                self._put((src, _RESET))
            if blk is None:
                if (
                    src.status.state is SourceState.FINISHED
                    and getattr(src, "control", None) is None
                ):
                    return  # a seekable replay stays alive: the user may seek back after the end
                continue
            self._put((src, blk))

    def _put(self, item: tuple[Source, Any]) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _engine_loop(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            with self._lock:
                self._drain_queue()
                self._after_tick()
            spent = self._clock() - started
            self._stop.wait(max(0.0, self.tick_s - spent))

    def _drain_queue(self) -> None:
        while True:
            try:
                src, item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _RESET:
                self._reset_state()
                if self.tracker is not None:
                    self.tracker.restart_run()
                continue
            self._ingest(src, item)

    def _ingest(self, src: Source, block: Block) -> None:
        if len(block) == 0:
            return
        block = to_recorded_precision(block)
        self._rates[src.name].add(self._clock(), len(block))
        self._samples_total += len(block)
        if self._writer is not None:
            self._write(lambda w: w.write_block(block))
        block = self._owned_columns(block)
        self._show(block)
        fused = self._fuser.push(block)
        if fused is not None:
            self._bin(fused)

    def _owned_columns(self, block: Block) -> Block:
        owners = self._owners
        cols = {
            k: v
            for k, v in block.columns.items()
            if owners.setdefault(_OWNER_KEY.get(k, k), block.source) == block.source
        }
        return block if len(cols) == len(block.columns) else Block(block.source, block.t, cols)

    def _show(self, block: Block) -> None:
        """Gauges, the operating cell and history follow the newest raw samples.

        Only binning needs lambda aligned to the engine state (fused rows wait for
        the transport delay); the tuner must see every reading the moment it arrives.
        """
        last_t = float(block.t[-1])
        if self._first_t is None:
            self._first_t = float(block.t[0])
        self._newest_t = max(self._newest_t, last_t)
        stoich = self.config.stoich
        for name, values in block.columns.items():
            self._latest[name] = (last_t, float(values[-1]))
        for lam_name, afr_name in (("lambda", "afr"), ("lambda_target", "afr_target")):
            if lam_name in block.columns:
                self._latest[afr_name] = (last_t, self._latest[lam_name][1] * stoich)
            elif afr_name in block.columns:
                self._latest[lam_name] = (last_t, self._latest[afr_name][1] / stoich)
        self._history.append(
            (last_t, self._value("rpm"), self._value("afr"), self._value("afr_target"))
        )
        while self._history and last_t - self._history[0][0] > HISTORY_S:
            self._history.popleft()

    def _bin(self, fused: Block) -> None:
        result = self._filters.apply(fused)
        self.grid.update(fused, result)
        if self.tracker is not None:
            for event in self.tracker.on_rows(fused, result, self.grid):
                # Holds, tip-ins and idle are recorded too; only a WOT pull is "in pull".
                if event.data.get("test_type") == "wot_pull":
                    self._in_pull = event.kind == "pull_start"
                self._record_event(event)

    def _value(self, name: str) -> float:
        held = self._latest.get(name)
        return held[1] if held is not None else math.nan

    def _after_tick(self) -> None:
        self._collect_events()
        wall = self._clock()
        if self.tracker is not None:
            if wall - self._last_plan_wall >= PLAN_INTERVAL_S:
                self._plan = self.tracker.plan(self.grid, self._current_values())
                self._last_plan_wall = wall
            if wall - self._last_checkpoint_wall >= CHECKPOINT_INTERVAL_S:
                self.tracker.checkpoint(self.grid)
                self._last_checkpoint_wall = wall
        if self._writer is not None:
            self._write(lambda w: w.tick())
        self._publish()

    def _collect_events(self) -> None:
        for src in self.sources:
            for event in src.drain_events():
                self._record_event(event)

    def _record_event(self, event: SourceEvent) -> None:
        self.events.append(event)
        if self._writer is not None and not event.data.get("replayed"):
            self._write(lambda w: w.write_event(event))

    def _write(self, op: Callable[[LogWriter], object]) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            op(writer)
        except (OSError, LogFileError) as exc:
            # Disk full / unplugged USB stick: keep the session (and what was written) alive.
            self._record_error = f"recording stopped: {getattr(exc, 'strerror', None) or exc}"
            self._writer = None
            with contextlib.suppress(OSError, LogFileError):
                writer.close()

    # -- snapshot -------------------------------------------------------------------

    def _now_t(self) -> float:
        return self._newest_t if self.data_clock else self._clock()

    def _current_values(self) -> dict[str, float]:
        now = self._now_t()
        values = {}
        for name, (t, v) in self._latest.items():
            limit = self._fuser.stale_limit(name)
            values[name] = v if now - t <= limit + self.tick_s else math.nan
        return values

    def _elapsed(self) -> float:
        if not self.data_clock:
            return self._clock() - self._started_wall
        return (self._newest_t - self._first_t) if self._first_t is not None else 0.0

    def _publish(self, *, finished: bool | None = None) -> Snapshot:
        values = self._current_values()
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
            for s in self.sources
        )
        if finished is None:
            finished = (
                self.finite
                and all(
                    s.status.state in (SourceState.FINISHED, SourceState.FAILED)
                    for s in self.sources
                )
                and self._queue.empty()
            )
        rpm, map_kpa = values.get("rpm", math.nan), values.get("map_kpa", math.nan)
        cell = (
            self.grid.cell_of(rpm, map_kpa)
            if math.isfinite(rpm) and math.isfinite(map_kpa)
            else None
        )
        hist = np.array(self._history, dtype=np.float64).reshape(-1, 4)
        history = History(hist[:, 0] - self._newest_t, hist[:, 1], hist[:, 2], hist[:, 3])
        recording = None
        writer = self._writer
        if writer is not None:
            recording = RecordingInfo(
                str(writer.path), writer.bytes_written, wall - self._record_started
            )
        replay = self.replay
        self._seq += 1
        snap = Snapshot(
            seq=self._seq,
            elapsed_s=self._elapsed(),
            now_t=self._newest_t,
            values=values,
            sources=infos,
            grid=self.grid.view(),
            current_cell=cell,
            samples_total=self._samples_total,
            samples_binned=self.grid.samples_binned,
            rejects=self.rejects(),
            history=history,
            plan=self._plan,
            recording=recording,
            vehicle=self.config.name,
            pulls_done=self.tracker.pulls_done if self.tracker is not None else 0,
            pulls_max=self.tracker.pulls_max if self.tracker is not None else None,
            in_pull=self._in_pull,
            alarms=self._alarms(values, infos),
            finished=finished,
            paused=bool(replay is not None and replay.paused),
            speed=float(replay.speed) if replay is not None else 1.0,
        )
        self._snapshot_ref = snap
        return snap

    def _alarms(self, values: Mapping[str, float], infos: Sequence[SourceInfo]) -> tuple[str, ...]:
        alarms: list[str] = []
        tps, lam = values.get("tps_pct", math.nan), values.get("lambda", math.nan)
        lam_target = values.get("lambda_target", math.nan)
        if tps >= 85 and lam > (lam_target * 1.05 if math.isfinite(lam_target) else 0.92):
            alarms.append(f"LEAN AT WOT: AFR {lam * self.config.stoich:.1f}")
        if values.get("knock_retard_deg", 0.0) > 0.0:
            alarms.append(f"KNOCK: {values['knock_retard_deg']:.1f} deg retard")
        if values.get("iat_c", math.nan) >= 60.0:
            alarms.append(f"HIGH IAT {values['iat_c']:.0f} C")
        if values.get("clt_c", math.nan) >= 110.0:
            alarms.append(f"HIGH CLT {values['clt_c']:.0f} C")
        for info in infos:
            if info.state in (SourceState.RECONNECTING, SourceState.FAILED, SourceState.STALE):
                why = f": {info.message}" if info.message else ""
                alarms.append(f"SOURCE {info.name} {info.state.value.upper()}{why}")
        if self._record_error:
            alarms.append(self._record_error.upper())
        return tuple(alarms)
