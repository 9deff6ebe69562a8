"""The engine: sources -> queue -> tick -> Pipeline -> recorder -> Snapshot.

Each source runs in its own pump thread (blocking I/O never reaches the engine);
pump threads put ``(source, block)`` on one bounded queue. The engine thread
ticks every ``tick_s``: it drains the queue in arrival order, rounds every column
to float32 (the recorder's precision, so a replay bins exactly what live binned),
hands the raw block to the :class:`core.recorder.Recorder`, feeds the
:class:`core.pipeline.Pipeline` (ownership, fusion, filters, grid, tracker hook)
and publishes an immutable :class:`core.snapshot.Snapshot` built by
:class:`core.snapshot_builder.SnapshotBuilder`. Readers take ``session.snapshot``
whenever they like; nothing is pushed per sample.

The session's one job is the life cycle: tick, planning and checkpoint cadence,
start/stop. The pump threads and their queue are :mod:`core.pumps`; how a failed
engine step is contained and reported is :mod:`core.engine_faults`; what it needs
from the tracker is :class:`core.tracker_protocol.Tracker`. ``run_to_end()`` drives finite sources (replay,
batch simulation) synchronously through the very same ``_ingest`` path.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.coverage.filters import FilterResult
from core.coverage.grid import CoverageGrid
from core.engine_faults import contain, fault_alarms, not_saved_lines
from core.frames import Block
from core.memory import TRIM_INTERVAL_S, configure_allocator, release_free_memory
from core.pipeline import Pipeline, to_recorded_precision
from core.plan.types import PlanView
from core.pumps import RESET, SourcePumps
from core.record import LogFileError
from core.recorder import Recorder, session_header
from core.snapshot import Snapshot
from core.snapshot_builder import SnapshotBuilder
from core.source import Source, SourceError, SourceEvent, SourceState
from core.tracker_protocol import Tracker
from core.vehicle import VehicleConfig

PLAN_INTERVAL_S = 1.0
PLAN_MIN_WALL_S = 0.2
"""A real-time source faster than real time (the simulator at ``speed=4``) is planned once
a second of its data, at most every this many wall seconds: planned once a wall second, a
guided run at speed 4 had its line (and the tops its checks compare) 4 s of data behind the
operator (steady holds 9.1 % against 3 % in the real-time demo)."""
CHECKPOINT_INTERVAL_S = 60.0


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
        header_metadata: Extra recording-header keys (the vehicle's session record).
        release_memory: Called every ``TRIM_INTERVAL_S`` of the clock to hand the
            allocator's free pages back (``core.memory``; injectable for tests).
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
        header_metadata: Mapping[str, Any] | None = None,
        release_memory: Callable[[], object] = release_free_memory,
    ) -> None:
        self.sources = list(sources)
        self._release_memory = release_memory
        self.run_id = run_id
        self.header_metadata = dict(header_metadata or {})
        """Extra keys for the recording header (e.g. the vehicle's session record)."""
        self.config = config or VehicleConfig()
        self.tracker = tracker
        self.tick_s = tick_s
        self._clock = clock
        self._record_request = Path(record_path) if record_path is not None else None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._pumps = SourcePumps(self._stop)
        self._engine: threading.Thread | None = None
        self._planner: ThreadPoolExecutor | None = None
        """Where a live session's plans compute (:meth:`_request_plan`), off the engine's tick."""
        self._snapshot_ref: Snapshot | None = None
        self.recorder = Recorder(clock)
        self.faults: dict[str, str] = {}
        """Errors the engine contained (tracker, planner, a tick), by what failed."""
        self.realtime = all(s.realtime for s in self.sources)
        self.data_clock = not self.realtime or any(s.own_clock for s in self.sources)
        """Judge staleness and elapsed time by sample time (replay), not the wall clock."""
        self.finite = bool(self.sources) and all(s.finite for s in self.sources)
        self.pipeline = Pipeline(self.config, self._declared_channels(), on_rows=self._on_rows)
        self.view = SnapshotBuilder(
            self.config,
            self.sources,
            clock=clock,
            data_clock=self.data_clock,
            stale_limit=lambda name: self.pipeline.stale_limit(name),
            tick_s=tick_s,
        )
        self.view.on_event = self._record_event
        self._reset_state()
        self.replay = next(
            (getattr(s, "control", None) for s in self.sources if getattr(s, "control", None)), None
        )
        """Playback control of a replay source (pause, speed, seek), else None."""
        advice = getattr(tracker, "advice", None)
        for src in self.sources if advice is not None else ():
            follow = getattr(src, "follow", None)
            if follow is not None:
                # the demo's simulated tuner runs what the dashboard names (sim.source),
                # counting the vehicle's stored runs as the screen does
                stored = getattr(tracker, "stored", None)
                follow(advice, stored() if stored is not None else None)

    # -- state ------------------------------------------------------------------

    @property
    def grid(self) -> CoverageGrid:
        """The coverage grid this session has built so far."""
        return self.pipeline.grid

    def _declared_channels(self) -> list[tuple[str, Mapping[str, str]]]:
        declared: list[tuple[str, Mapping[str, str]]] = []
        for src in self.sources:
            recorded = getattr(src, "recorded_sources", None)
            declared.extend(recorded() if recorded is not None else [(src.name, src.channels())])
        return declared

    def _reset_state(self) -> None:
        self.pipeline.declared = [(n, dict(c)) for n, c in self._declared_channels()]
        self.pipeline.reset()
        self.view.reset()
        self._last_plan_wall = -math.inf
        self._last_plan_data = -math.inf
        self._data_t = -math.inf
        self._last_checkpoint_wall = self._clock()
        self._last_trim_wall = self._clock()
        self._plan = PlanView()
        self._plan_job: tuple[Any, Future[PlanView]] | None = None
        """A plan computing on the planner thread (its request, its result to come)."""
        self._replan_due = False
        """A test began or ended since the last plan was asked for: plan at the first tick
        the planner is free, not at the next second (:meth:`_after_tick`)."""
        self._interim: str | None = None
        """The tracker's interim line shown (a test is over, the plan after it to come)."""
        self._in_pull = False
        self._manual_since: float | None = None
        """Data time of a manual pull's start (``p``), until its stop."""
        self._data_ended = False
        """Every finite source has ended and its data is binned (:meth:`_end_of_data`)."""

    # -- life cycle ---------------------------------------------------------------

    def open_sources(self) -> None:
        """Open every source; on failure close the ones opened and re-raise (clear message)."""
        configure_allocator()  # a long run's heap stays compact (core.memory, issue 10)
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
        self.view.started_wall = self._clock()
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
        self._pumps.start(self.sources)
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
        self._pumps.join(timeout=2.0)
        if self._engine is not None:
            self._engine.join(timeout=5.0)
            self._engine = None
        if self._planner is not None:
            # a plan still computing is for a moment already past: the summary's is
            # made below, on the final coverage
            self._planner.shutdown(wait=False, cancel_futures=True)
            self._planner = None
        self._plan_job = None
        with self._lock:
            try:
                self._drain_queue()
                self._take_held()
                self.pipeline.flush()
                for src in self.sources:
                    with contextlib.suppress(SourceError, OSError):
                        src.close()
                self._collect_events()
                if self.tracker is not None:
                    self.tracker.finish(self.grid, self.stats())
            except Exception as exc:  # the recording is closed whatever failed above
                self._fault("stop", exc)
            finally:
                self.stop_recording()
            if self.tracker is not None:
                # the summary's next test, on the run's final coverage (the engine plans
                # once a second of wall time: a replay read at full speed ended with the
                # plan of its first block)
                try:
                    self._plan = self.tracker.plan(
                        self.grid, self.view.current_values(), final=True
                    )
                except Exception as exc:
                    self._fault("planner", exc)
            return self._publish(finished=True)

    @property
    def not_saved(self) -> list[str]:
        """After :meth:`stop`: what of this run is not safely on disk, one line each.

        Empty when everything was saved. The commands print these lines and exit
        with code 4 (see ``dynoai_tui.commands.common``).
        """
        return not_saved_lines(self.recorder, self.tracker, self.faults)

    def _fault(self, what: str, exc: BaseException) -> None:
        """Contain an error of one engine step: note it for the alarms and go on."""
        contain(self.faults, what, exc)

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
            "samples": self.view.samples_total,
            "samples_binned": self.grid.samples_binned,
            "rejects": self.rejects(),
            "covered_pct": self.grid.covered_pct(),
            "duration_s": self.view.elapsed(),
        }

    def rejects(self) -> dict[str, int]:
        return self.pipeline.rejects()

    # -- commands from the UI / CLI -------------------------------------------------

    def start_recording(self, path: str | Path) -> None:
        segment_id = uuid.uuid4().hex
        header = session_header(
            self.config,
            self.sources,
            t0=self._clock(),
            run_id=self.run_id,
            metadata=self.header_metadata,
            segment_id=segment_id,
        )
        with self._lock:
            if self.recorder.active:
                return
            self.recorder.start(path, header)
            add_segment = getattr(self.tracker, "add_segment", None)
            if add_segment is not None:  # the run lists its recording segments (issue 10)
                add_segment(segment_id, str(Path(path).resolve()))

    def stop_recording(self) -> None:
        with self._lock:
            self.recorder.stop()

    @property
    def recording(self) -> bool:
        return self.recorder.active

    def set_constraints(self, constraints: Any) -> None:
        """Apply edited constraints to the running plan (re-planned at the next tick)."""
        with self._lock:
            if self.tracker is not None:
                self.tracker.set_constraints(constraints)
            self._last_plan_wall = -math.inf

    def mark(self, kind: str, text: str = "") -> str:
        """Record a marker / note / manual pull start or stop at the current data time.

        Returns, at a manual pull's stop, what became of it in one line (kept and counted,
        or dropped and why: the tracker's ``manual_pull``), else ''. The recorded event
        carries it too (``data["outcome"]``).
        """
        with self._lock:
            t = self.view.newest_t
            outcome = ""
            if kind == "pull_start":
                self._in_pull = True
                self._manual_since = t
            elif kind == "pull_stop":
                if self._manual_since is not None:  # (a detected pull runs on: still in it)
                    self._in_pull = False
                outcome = self._manual_pull(t)
            data = {"outcome": outcome} if outcome else {}
            self._record_event(SourceEvent("user", kind, t, text, data))
        return outcome

    def _manual_pull(self, t_stop: float) -> str:
        """Judge the pull marked by hand up to ``t_stop`` (tracker ``manual_pull``), '' if none can."""
        since, self._manual_since = self._manual_since, None
        judge = getattr(self.tracker, "manual_pull", None)
        if judge is None:
            return ""
        try:
            return str(judge(since, t_stop))
        except Exception as exc:  # a mark must never take the session down
            self._fault("manual pull", exc)
            return ""

    # -- engine -------------------------------------------------------------------

    def _engine_loop(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            self._tick()
            spent = self._clock() - started
            self._stop.wait(max(0.0, self.tick_s - spent))

    def _tick(self) -> None:
        """One engine tick: ingest, plan and publish under the lock, then the allocator trim."""
        with self._lock:
            try:
                self._drain_queue()
                self._after_tick()
            except Exception as exc:  # the engine (and the recording) must go on
                self._fault("engine tick", exc)
        self._trim_if_due()

    def _trim_if_due(self) -> None:
        """Hand glibc's free heap pages back every ``TRIM_INTERVAL_S`` (issue 10's soak).

        glibc keeps freed heap pages resident; over an hour they, not live objects,
        made the resident size creep (``core.memory``). Run outside the session lock:
        the walk over the free lists takes 1-70 ms on a loaded machine, which a UI
        command or a snapshot read waiting on the lock would otherwise wait out.
        """
        wall = self._clock()
        if wall - self._last_trim_wall < TRIM_INTERVAL_S:
            return
        self._last_trim_wall = wall
        try:
            self._release_memory()
        except Exception as exc:  # a failed trim costs memory, never the run
            with self._lock:
                self._fault("memory trim", exc)

    def _drain_queue(self) -> None:
        """Ingest what is queued now; blocks that arrive meanwhile wait for the next tick.

        Draining until empty let a source faster than the engine (a replay or the
        simulator at x30) keep the queue non-empty forever, so the tick never
        published a snapshot, planned or flushed the recorder.
        """
        for src, item in self._pumps.take():
            if item is RESET:
                self._reset_state()
                if self.tracker is not None:
                    self.tracker.restart_run()
                continue
            self._ingest(src, item)

    def _take_held(self) -> None:
        """At the stop: ingest what each source took off its device but had not handed over.

        Only from a source whose pump has ended: one still inside ``read`` (a device
        that hangs past the join) owns its buffers, and what it holds is lost with it.
        """
        for src in self.sources:
            if self._pumps.running(src):
                continue
            for block in src.take_held():
                self._ingest(src, block)

    def _ingest(self, src: Source, block: Block) -> None:
        if len(block) == 0:
            return
        block = to_recorded_precision(block)
        self.view.count(src.name, len(block))
        self.recorder.write_block(block)
        self.view.show(self.pipeline.push(block, rounded=True))

    def _on_rows(self, fused: Block, result: FilterResult, grid: CoverageGrid) -> None:
        if self.tracker is None:
            return
        if len(fused):
            self._data_t = float(fused.t[-1])
        try:
            events = self.tracker.on_rows(fused, result, grid)
        except Exception as exc:  # pull detection / learning: binning goes on without it
            self._fault("pull detection", exc)
            return
        for event in events:
            # Holds, tip-ins and idle are recorded too; only a WOT pull is "in pull".
            if event.data.get("test_type") == "wot_pull":
                self._in_pull = event.kind == "pull_start"
            if event.kind in ("pull_start", "pull_stop") and self.realtime:
                self._replan_due = True  # the line's plan predates this test's start or end
            self._record_event(event)

    def _after_tick(self) -> None:
        self._collect_events()
        if not self._data_ended and self._sources_done():
            self._end_of_data()
        wall = self._clock()
        if self.tracker is not None:
            self._collect_plan()
            self._interim_line()
            since = wall - self._last_plan_wall
            if self._plan_job is None and (
                since >= PLAN_INTERVAL_S
                or self._replan_due
                or (
                    self.realtime
                    and since >= PLAN_MIN_WALL_S
                    and self._data_t - self._last_plan_data >= PLAN_INTERVAL_S
                )
            ):
                self._last_plan_wall, self._last_plan_data = wall, self._data_t
                self._replan_due = False
                try:
                    self._request_plan()
                except Exception as exc:
                    self._fault("planner", exc)
            if wall - self._last_checkpoint_wall >= CHECKPOINT_INTERVAL_S:
                self._last_checkpoint_wall = wall
                try:
                    self.tracker.checkpoint(self.grid)  # queued: the store never blocks a tick
                except Exception as exc:
                    self._fault("store checkpoint", exc)
        self.recorder.tick()
        self._publish()

    def _sources_done(self) -> bool:
        """Every source is finite and has ended, and nothing of theirs waits in the queue."""
        return (
            self.finite
            and all(
                s.status.state in (SourceState.FINISHED, SourceState.FAILED) for s in self.sources
            )
            and self._pumps.empty()
        )

    def _end_of_data(self) -> None:
        """The data has ended (a replay at the end of its log): close what it left open.

        What :meth:`stop` does at the end of the data, done when it ends: the rows still
        waiting for the lambda delay are binned and the test the data ended in is closed
        cut short (kept, not checked, as ``dynoai replay --headless`` has it). A replay's
        dashboard stays open after its log ends; it said "IN PULL" with the gauges held at
        WOT for good, its knock alarm on, and the pull the log ended in never reached the
        dyno sheet. The alarms judged from values go off too (``SnapshotBuilder.build``).
        A seek back restarts all of it (``_reset_state``). :meth:`stop` then finds nothing
        left to close.
        """
        self._data_ended = True
        self.pipeline.flush()
        close = getattr(self.tracker, "close_open_test", None)
        if close is not None:
            try:
                for event in close():
                    self._record_event(event)
            except Exception as exc:  # the end of the data must not take the session down
                self._fault("pull detection", exc)
        self._in_pull = False

    def _request_plan(self) -> None:
        """Plan on the current grid: on the planner thread in a live session, else now.

        A plan took 0.4-1.3 s of CPU in the demo (the top test re-simulated from where
        the engine is, every second of a hold or a ride), and the engine, waiting on it
        under the session lock, published nothing meanwhile: the dashboard stood still
        31 % of the time, up to 1.7 s at once, in the holds and rides a tuner watches
        closest. The request copies what the plan reads (the tracker's
        ``plan_request``), the planner thread computes it, and the engine takes the
        result in at a later tick (``plan_result``). A replay read as fast as it goes
        plans in line, as before: its plans follow its data exactly.
        """
        assert self.tracker is not None
        values = self.view.current_values()
        plan_request = getattr(self.tracker, "plan_request", None)
        if plan_request is None or not self.realtime:
            self._plan = self.tracker.plan(self.grid, values)
            return
        request = plan_request(self.grid, values)
        if self._planner is None:
            self._planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner")
        self._plan_job = (request, self._planner.submit(request.compute))

    def _interim_line(self) -> None:
        """Show the tracker's interim line while a test is over and no plan after it is in.

        A live line is made when a plan is taken in: once a second, and a plan computes for
        up to a second on the planner thread. Released at the end of a WOT pull, the line
        said "hold WOT to 5400 rpm" for up to 1.7 s of data (QA; ``tests/test_live_line.py``).
        From the tick the test is seen over the line says so ("cool down at idle: planning
        the next test"), and a plan is asked for as soon as the planner is free; a plan
        asked for before the end (still computing) is taken in as before and this line
        shown over it, until the first plan made after the end is in.
        """
        interim = getattr(self.tracker, "interim_line", None)
        if interim is None or not self.realtime:
            return
        try:
            line = interim(self.view.current_values())
        except Exception as exc:  # the line stays the last plan's; the engine goes on
            self._fault("planner", exc)
            return
        if line is None:
            self._interim = None
            return
        if self._interim is None:
            # the first tick the test is over: its wording holds until the plan after the
            # end is in (a plan asked for before the end, taken in meanwhile, may name the
            # test over differently: the demo read "sweep done", then "hold done")
            self._interim, self._replan_due = line, True
        if self._plan.instruction != self._interim or self._plan.running or self._plan.targets:
            # it names no test: no next cells either (they were the finished test's)
            self._plan = replace(self._plan, instruction=self._interim, running=False, targets=())

    def _collect_plan(self) -> None:
        """Take in the plan the planner thread finished, if it has."""
        job = self._plan_job
        if job is None or not job[1].done():
            return
        request, future = job
        self._plan_job = None
        try:
            assert self.tracker is not None
            self._plan = self.tracker.plan_result(request, future.result())  # type: ignore[attr-defined]
        except Exception as exc:
            self._fault("planner", exc)

    def _collect_events(self) -> None:
        for src in self.sources:
            for event in src.drain_events():
                self._record_event(event)

    def _record_event(self, event: SourceEvent) -> None:
        if not event.data.get("replayed"):
            self.recorder.write_event(event)

    # -- snapshot -------------------------------------------------------------------

    def _publish(self, *, finished: bool | None = None) -> Snapshot:
        if finished is None:
            finished = self._sources_done()
        replay = self.replay
        snap = self.view.build(
            grid=self.grid,
            sources=self.sources,
            rejects=self.rejects(),
            plan=self._plan,
            recording=self.recorder.info(),
            record_error=self.recorder.error,
            faults=fault_alarms(self.faults, self.tracker),
            pulls_done=self.tracker.pulls_done if self.tracker is not None else 0,
            pulls_max=self.tracker.pulls_max if self.tracker is not None else None,
            in_pull=self._in_pull,
            finished=finished,
            data_ended=self._data_ended,
            paused=bool(replay is not None and replay.paused),
            speed=float(replay.speed) if replay is not None else 1.0,
            stored=getattr(self.tracker, "stored_grid", None),
            rows_pending=self.pipeline.rows_pending,
            rows_flushed=self.pipeline.rows_flushed,
        )
        self._snapshot_ref = snap
        return snap
