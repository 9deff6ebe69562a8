"""VehicleTracker: the seam between the engine and the vehicle's memory and planner.

The engine (``core.session``) calls it on every tick with the rows it just
binned, asks it for a plan about once a second, checkpoints it at least every
minute and finishes it at the end. The tracker detects tests in the stream
(``core.plan.pulls``), learns from each one (``core.plan.learning``), plans against the
vehicle's stored coverage plus this run (``core.plan.planner``) and writes this run's
grid to the store (``core.store``), idempotently, so a crash loses at most the
last minute of coverage and a finished run is never counted twice.

Actual hits per detected test come from the rows the filters kept, binned with
the grid's own cell rule and kept for the last few minutes, so a test's actual
hits are exactly what it added to the grid.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.filters import FilterResult
from core.coverage.grid import CoverageGrid
from core.coverage.regions import Region, axis_arrays, priority_map
from core.frames import Block
from core.plan.instruction import Instructor, running_first
from core.plan.learning import Calibration
from core.plan.marks import line_targets
from core.plan.planner import Constraints, plan_arrays
from core.plan.predictions import CheckedPrediction, PredictionLog
from core.plan.pulls import DetectedTest, PullDetector
from core.plan.simplan import plan_model
from core.plan.testmodels import TestSpec, expected_hits
from core.plan.testsim import ADDITIVE, CandidateModel, grid_arrays
from core.plan.types import PlanView, Suggestion, Target
from core.plan.value import confidence
from core.saver import BackgroundSaver
from core.source import SourceEvent
from core.store import RunRefused, StoreError, VehicleStore
from core.window import RowWindow

WARMUP_AFTER_S = 5.0
"""Seconds of data before the simulated candidates are computed in the background."""
OPENING_AFTER_S = 1.0
"""Seconds of data before a new vehicle's opening work is simulated (``scope="opening"``,
~1 s of CPU): enough rows to measure their rate, so the model is keyed to it."""
OPENING_MAX_S = 120.0
"""A run's first seconds of data in which plans may come from the opening work alone. It
stands in while the rest warms up (~20-35 s), for an engine that has only idled; a run
that already holds minutes of data (a replay read at full speed) is planned in full or
by the kinematic planner, never from the idle / low-MAP holds alone."""
STALL_ALARM_S = 5.0
"""A store write waiting longer than this (a lock held elsewhere) shows an alarm."""
FINISH_WAIT_S = 20.0
"""How long the end of a run waits for the store (a lock, a full disk) before giving up."""
WAITING_INSTRUCTION = "simulating the first tests (idle / low-MAP holds)"
"""A new vehicle's instruction until its opening work is simulated (a second or two)."""
ESTIMATE_PREFIX = "simulating tests; for now: "
"""Leads the kinematic planner's line while the simulated candidates warm up."""
BUFFER_S = 300.0
"""Kept-row history for attributing hits to a test (longer tests are truncated)."""
CHECK_AFTER_S = 1.5
"""A finished test is checked once this much data has come after its end: what it added
in its own cells still arrives while the engine moves on (a MAP-ramp column's end cell
takes the first half of the turn to the next column, ~0.5 s, which the detector sees as
no test; checked at once, the demo's walk columns read ~30 of that cell's ~110 hits
short)."""


def observed_spec(test: DetectedTest, axes: TableAxes) -> TestSpec:
    """The kinematic model of a test the detector saw, from its observed envelope."""
    duration = max(test.duration_s, 1e-3)
    kind = test.test_type
    if kind in ("wot_pull", "part_throttle_sweep"):
        m = test.map_median_kpa
        return TestSpec(kind, test.rpm_start, test.rpm_max, m, m, duration)
    if kind == "steady_state" and test.map_plateaus_kpa:
        steps = test.map_plateaus_kpa
        return TestSpec(
            kind, test.rpm_median, test.rpm_median, min(steps), max(steps), duration,
            map_steps_kpa=steps,
        )  # fmt: skip
    if kind == "steady_state":
        lo, hi = axes.nearest([test.rpm_median] * 2, [test.map_min_kpa, test.map_max_kpa])[0]
        lo_i, hi_i = (int(lo), int(hi)) if lo >= 0 and hi >= 0 else (0, axes.shape[0] - 1)
        steps = tuple(float(v) for v in axes.map_kpa[lo_i : hi_i + 1])
        return TestSpec(
            kind,
            test.rpm_median,
            test.rpm_median,
            steps[0],
            steps[-1],
            duration,
            map_steps_kpa=steps,
        )
    if kind == "tip_in":
        return TestSpec(
            kind, test.rpm_start, test.rpm_start, test.map_start_kpa, test.map_max_kpa, duration,
            rpm_steps=(test.rpm_start,),
        )  # fmt: skip
    m = test.map_median_kpa
    return TestSpec(
        kind, test.rpm_median, test.rpm_median, m, m, duration,
        rpm_steps=(test.rpm_median,), map_steps_kpa=(m,),
    )  # fmt: skip


@dataclass(slots=True)
class PlanRequest:
    """One plan's inputs, copied on the engine's thread (:meth:`VehicleTracker.plan_request`).

    :meth:`compute` reads only these, so it may run on another thread while the engine
    bins new rows: planning took 0.4-1.3 s a second in the demo (the top re-simulated
    from where the engine is), and with the engine waiting on it the dashboard stood
    still for 31 % of the time, up to 1.7 s at once.
    """

    kind: str
    """``model`` (the simulated candidates), ``waiting`` (a new vehicle's opening work is
    being simulated) or ``kinematic``."""
    t: float
    """The data time the plan is for (its predictions are offered at it)."""
    values: dict[str, float]
    final: bool
    calibration: Calibration
    constraints: Constraints
    regions: tuple[Region, ...]
    pulls_done: int
    knock: npt.NDArray[np.int64]
    hits: npt.NDArray[np.int64]
    axes: TableAxes
    hit_target: int
    scope: str
    redline_rpm: float | None = None
    model: CandidateModel | None = None
    rule: CoverageRule | None = None
    arrays: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    reuse: Suggestion | None = None
    open_since: float | None = None
    current_test: str | None = None
    running: Suggestion | None = None
    """The suggestion the line follows as it runs (its cells lead the targets)."""
    from_idle: bool = False
    """The line says to cool down at idle after a WOT pull: the next test is planned from
    idle, where the tuner starts it, not from the rpm the pull was let go at. The demo's
    plan made at the release (5755 rpm) found nothing worth a minute from there, and the
    line read "covered as far as this engine reaches" for a second, then "cool down at
    idle 0:01, then part-throttle sweep 1500-5800 rpm" from the next plan (5019 rpm)."""

    def compute(self) -> PlanView:
        """The plan itself (the heavy part; touches no tracker state)."""
        if self.kind == "waiting":
            return PlanView(instruction=WAITING_INSTRUCTION)
        if self.kind == "kinematic":
            return self.kinematic()
        assert self.model is not None and self.rule is not None
        op = {**self.values, "rpm": math.nan} if self.from_idle else self.values
        return plan_model(
            self.arrays, self.knock, self.model, self.regions, self.constraints,
            self.calibration, self.pulls_done, self.rule, operating_point=op,
            scope=self.scope, reuse=self.reuse, running=self.running,
        )  # fmt: skip

    def kinematic(self) -> PlanView:
        """The kinematic planner's plan (no simulated candidates)."""
        return plan_arrays(
            self.hits, self.knock, self.axes, self.regions, self.constraints, self.calibration,
            self.pulls_done, self.hit_target, operating_point=self.values,
            redline_rpm=self.redline_rpm,
        )  # fmt: skip


class VehicleTracker:
    """Per-run pull detection, learning, planning and persistence for one vehicle."""

    def __init__(
        self,
        *,
        axes: TableAxes,
        hit_target: int,
        regions: Sequence[Region],
        constraints: Constraints,
        store: VehicleStore | None,
        vehicle: str,
        run_id: str,
        log_path: str | None,
        rule: CoverageRule | None = None,
        model: CandidateModel | None = None,
        part_of: str | None = None,
        segment_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.axes = axes
        self._clock = clock
        """Wall seconds: the warm-ups wait for real time as well as data (``_maybe_warm``)."""
        self.rule = rule
        self._rule = rule or CoverageRule(hit_target)
        """The rule in force (``rule``, else the default one at ``hit_target``)."""
        self.hit_target = hit_target
        self.regions = tuple(regions)
        self.constraints = constraints
        self.store = store
        self.vehicle = vehicle
        self.run_id = run_id
        self.log_path = log_path
        self.part_of = part_of
        self.segment_id = segment_id
        """A replay of one recording segment of live run ``part_of`` (see ``add_segment``)."""
        self.segments: list[str] = []
        self.segment_logs: list[str] = []
        self.store_note = ""
        """Why the store did not take this run (it already holds more), for the summary."""
        self.kept_run = ""
        """The stored run the store kept as it was instead of taking this one ('' when it
        took this run): a replay of part of a stored run (``RunRefused.kept_run``)."""
        self.not_saved = ""
        """What could not be written to the store by the end of the run ('' when all was)."""
        self.learn_note = ""
        """Why what this session learned is not saved ('' when it is): a replay of a run
        the store holds, whose lessons later runs built on (``VehicleStore.learned_before``)."""
        self.finish_wait_s = FINISH_WAIT_S
        self._saver = BackgroundSaver(f"store-{vehicle}") if store is not None else None
        self.started_at = time.time()
        if store is not None:
            self._base = store.cumulative_grid(
                vehicle, axes, hit_target, exclude_run=run_id, rule=rule
            )
            self.calibration = store.get_calibration(vehicle, run_id=run_id)
            if store.learned_before(vehicle, run_id):
                self.learn_note = (
                    f"run {run_id} already taught the planner of {vehicle!r} when it was stored, "
                    "and later runs built on that: what this session learned was not saved again"
                )
        else:
            self._base = CoverageGrid(axes, hit_target, rule=rule)
            self.calibration = Calibration()
        self._calibration_at_start = copy.deepcopy(self.calibration)
        self.detector = PullDetector()
        self.manual_pulls = 0
        """Pulls marked by hand and kept (:meth:`count_manual_pull`)."""
        self.tests: list[tuple[DetectedTest, float]] = []
        """Detected tests of this run with their prediction error (%)."""
        self.predictions = PredictionLog()
        """Suggestions offered before each test, checked when a test is detected."""
        self.instructor = Instructor()
        """The live instruction, held steady (follows a running test)."""
        self._line_view: PlanView | None = None
        """The last plan the line was made from (:meth:`interim_line` probes it)."""
        self._trusted_at = np.full(axes.n_cells, np.nan)
        """Stream time each cell turned trusted (stored coverage + this run); NaN: not yet."""
        self._trusted_at[self._base.covered_mask().ravel()] = -np.inf
        self._refined: Suggestion | None = None
        """The last plan's top suggestion, its prediction refined (``plan_model(reuse=)``)."""
        self._window = RowWindow(BUFFER_S)
        """Recent rows: ``t`` (every row), ``tk`` and ``cell`` (the kept rows' times, cells)."""
        self._finished: list[DetectedTest] = []
        """Tests the detector completed that wait for :data:`CHECK_AFTER_S` of data after them."""
        self._t_first: float | None = None
        self._t_last = 0.0
        self._wall_first = 0.0
        self.model = model
        """Simulator preset, filters and rate for the simulated-candidate planner (None: the
        kinematic planner only)."""
        self._model_ready = threading.Event()
        self._warm_started = False
        self._opening_ready = threading.Event()
        self._opening_started = False
        self._opening_done = False
        """The opening work left nothing to suggest (or there is none): kinematic plans."""

    def warm_now(self) -> None:
        """Simulate every candidate now (blocking; tests and benches want determinism)."""
        if self.model is not None and not self._model_ready.is_set():
            self._warm_started = True
            self._warm()

    def _maybe_warm(self) -> None:
        """Start the background warm-up once the run has WARMUP_AFTER_S of data (and of wall time).

        Not at start: the first seconds of a session (sources opening, the first
        samples) must not share the CPU with seconds of candidate simulation. A new
        vehicle (no stored coverage) has its opening work simulated first, after
        OPENING_AFTER_S: its plans are that work's until the rest is ready, so the
        panel shows the simulated planner's first test within a second or two
        instead of the kinematic planner's for the whole warm-up (bare ``dynoai``).
        """
        if self.model is None or self._warm_started or self._t_first is None:
            return
        data_s = self._t_last - self._t_first
        # Seconds of data AND of wall time: a replay read at full speed (an hour in a
        # second or two) does not share the CPU with seconds of simulation whose result
        # it would not wait for (it made a 1-h headless replay 10-17 s instead of ~2).
        seconds = min(data_s, self._clock() - self._wall_first)
        if not self._opening_started and seconds >= OPENING_AFTER_S and self._opening_window():
            self._opening_started = True
            self._match_rate()
            threading.Thread(target=self._warm_opening, name="plan-opening", daemon=True).start()
        if seconds >= WARMUP_AFTER_S:
            self._warm_started = True
            if not self._opening_started:
                self._match_rate()
            threading.Thread(target=self._warm, name="plan-warmup", daemon=True).start()

    def _opening_window(self) -> bool:
        """A new vehicle in its run's first OPENING_MAX_S of data: the opening work applies."""
        return (
            self._t_first is not None
            and self._t_last - self._t_first < OPENING_MAX_S
            and self._new_vehicle()
        )

    def _new_vehicle(self) -> bool:
        """No stored coverage: the plan opens with idle / low-MAP work (``simplan``)."""
        return not bool(np.any(self._base.hits))

    def _warm_opening(self) -> None:
        """Simulate the opening work (idle / low-MAP holds, idling) off the engine's tick."""
        assert self.model is not None
        empty = {k: np.zeros(self.axes.n_cells) for k in ADDITIVE}
        plan_model(
            empty, None, self.model, self.regions, self.constraints, Calibration(), 0,
            self._rule, scope="opening",
        )  # fmt: skip
        self._opening_ready.set()

    def _match_rate(self) -> None:
        """Key the simulated candidates to the rate the rows really arrive at.

        Hits per cell scale with the logging rate; a model keyed to a guess (50 Hz
        before a vehicle's first run) predicts half the hits of a 100-Hz source.
        """
        pieces = list(self._window.pieces())
        if self.model is None or not pieces:
            return
        first = float(pieces[0]["t"][0])
        if self._t_last <= first:
            return
        rate = sum(p["t"].size for p in pieces) / (self._t_last - first)
        rate = float(min(max(round(rate / 10.0) * 10.0, 10.0), 1000.0))
        if abs(rate - self.model.key.rate_hz) >= 10.0:
            self.model = self.model.at_rate(rate)

    def _warm(self) -> None:
        """Simulate every candidate once off the engine's tick (seconds), then plan with them."""
        assert self.model is not None
        empty = {k: np.zeros(self.axes.n_cells) for k in ADDITIVE}
        plan_model(
            empty, None, self.model, self.regions, self.constraints, Calibration(), 0,
            self._rule,
        )  # fmt: skip
        self._model_ready.set()

    @property
    def model_ready(self) -> bool:
        """True once the simulated candidates are cached and plans use them."""
        return self._model_ready.is_set()

    # -- the engine's calls ------------------------------------------------------------

    def on_rows(self, block: Block, result: FilterResult, grid: CoverageGrid) -> list[SourceEvent]:
        """Detect tests in the rows just binned and learn from finished ones."""
        if len(block) == 0:
            return []
        if self._t_first is None:
            self._t_first = float(block.t[0])
            self._wall_first = self._clock()
        self._t_last = float(block.t[-1])
        flat = self.axes.flat_index(block.column("rpm"), block.column("map_kpa"))
        sel = np.flatnonzero(result.keep & (flat >= 0))
        self._window.add({"t": block.t, "tk": block.t[sel], "cell": flat[sel]})
        self._mark_trusted(flat[sel], grid)
        events = self.detector.feed(block)
        self._learn_finished(upto=self._t_last - CHECK_AFTER_S)
        self._window.trim(self._t_last)
        return events

    def _mark_trusted(self, cells: npt.NDArray[np.intp], grid: CoverageGrid) -> None:
        """Note when the cells these kept rows fell in turned trusted (this block's end).

        Only cells not yet trusted are looked at, and only those the block touched: a
        long replay spends its rows in cells trusted long ago, so this costs ~nothing.
        """
        if cells.size == 0:
            return
        cells = np.unique(cells)
        cells = cells[np.isnan(self._trusted_at[cells])]
        if cells.size == 0:
            return
        base, run = self._base, grid
        arrays = {
            k: np.ravel(getattr(base, k))[cells].astype(np.float64)
            + np.ravel(getattr(run, k))[cells]
            for k in ADDITIVE
        }
        self._trusted_at[cells[confidence(arrays, self._rule) >= 1.0]] = self._t_last

    def trusted_at(self, cell: int) -> float:
        """Stream time ``cell`` turned trusted (-inf: before this run; NaN: not yet)."""
        return float(self._trusted_at[cell])

    def restart_run(self) -> None:
        """The run's data starts over (a replay seek): forget its tests and what they taught.

        Seeking back replays pulls already seen; counting or learning from them
        twice would inflate the pull count and skew the fill-rate factors.
        """
        self.calibration = copy.deepcopy(self._calibration_at_start)
        self.detector = PullDetector()
        self.manual_pulls = 0
        self.tests = []
        self._finished = []
        self.predictions.clear()
        self._window.clear()
        self._trusted_at[:] = np.nan
        self._trusted_at[self._base.covered_mask().ravel()] = -np.inf
        self._t_first = None
        self._t_last = 0.0

    def add_segment(self, segment_id: str, path: str) -> None:
        """The session started recording segment ``segment_id`` of this run to ``path``.

        The stored run lists its segments, so a later replay of one segment is known
        to be part of this run (not added twice, never replacing the whole run) and
        ``rebuild`` re-bins the run from all its segments.
        """
        if segment_id not in self.segments:
            self.segments.append(segment_id)
            self.segment_logs.append(path)
        if self.log_path is None:
            self.log_path = path

    @property
    def stored_grid(self) -> CoverageGrid | None:
        """The vehicle's stored coverage (other runs) the planner adds this run to; None: none.

        The dashboard's coverage views show it with this run: QA with two stored runs saw
        the list skip cells as covered that the heatmap, this run's alone, showed empty.
        """
        return self._base if self._base.hits.any() else None

    def held_grid(self) -> CoverageGrid | None:
        """The vehicle's coverage as the store holds it now (None: no store, or unreadable).

        After :meth:`finish`, what the run's summary reports as the vehicle's: base +
        this run counted a partial replay of a stored run the store had kept whole
        (12 cells trusted in the summary, 14 in the store).
        """
        if self.store is None:
            return None
        try:
            return self.store.cumulative_grid(
                self.vehicle, self.axes, self.hit_target, rule=self.rule
            )
        except StoreError:
            return None

    def set_constraints(self, constraints: Constraints) -> None:
        """New limits from the constraints editor take effect at the next plan."""
        self.constraints = constraints

    def plan(
        self, grid: CoverageGrid, values: Mapping[str, float], *, final: bool = False
    ) -> PlanView:
        """Plan on stored coverage (other runs) + this run's grid.

        With a simulator model, once its candidates are cached (a background warm-up
        at start), candidates are the simulated ones (``core.plan.simplan``); until then
        the kinematic planner answers, so the dashboard never waits. A new vehicle's
        opening work is cached first: until the rest is, plans are made from it alone.

        ``final``: the plan for the run's summary, on its final coverage. It starts no
        warm-up and never says "simulating the first tests": with the simulated model
        not ready (a replay read at full speed) the kinematic planner answers.

        The same as :meth:`plan_request`, its :meth:`PlanRequest.compute` and
        :meth:`plan_result` in a row; a live session runs the compute on a thread of
        its own (``core.session``).
        """
        request = self.plan_request(grid, values, final=final)
        return self.plan_result(request, request.compute())

    def plan_request(
        self, grid: CoverageGrid, values: Mapping[str, float], *, final: bool = False
    ) -> PlanRequest:
        """What a plan needs, copied now, on the engine's thread.

        The grid and the calibration go on changing while :meth:`PlanRequest.compute`
        runs elsewhere.
        """
        if not final:
            self._maybe_warm()
        scope = "all" if self._model_ready.is_set() else "opening"
        opening = self._opening_window()
        request = PlanRequest(
            kind="kinematic", t=self._t_last, values=dict(values), final=final,
            calibration=copy.deepcopy(self.calibration), constraints=self.constraints,
            regions=tuple(self.regions), pulls_done=self.pulls_done,
            knock=self._base.knock_events + grid.knock_events, hits=self._base.hits + grid.hits,
            axes=self.axes, hit_target=self.hit_target, scope=scope,
            redline_rpm=None if self.model is None else self.model.redline_rpm(),
        )  # fmt: skip
        if self.model is not None and (
            scope == "all" or (opening and self._opening_ready.is_set())
        ):
            base, run = grid_arrays(self._base), grid_arrays(grid)
            request.kind = "model"
            request.model, request.rule = self.model, self._rule
            request.arrays = {k: base[k] + run[k] for k in ADDITIVE}
            # while a test runs, the top's prediction from where it began stands
            # (no re-simulation from each point the engine passes)
            request.reuse = self._refined if self.instructor.following and not final else None
            request.open_since = self.detector.open_since
            request.current_test = self.detector.current_test
            request.running = self.instructor.running if not final else None
            request.from_idle = not final and self._cooling_now(request)
            return request
        if self.model is not None and not self._opening_done and opening and not final:
            # The first second or two of a new vehicle: the opening work is being
            # simulated. A kinematic plan here named other tests ("hold 2000 rpm, step
            # MAP 70-95 kPa") than the ones about to be suggested.
            request.kind = "waiting"
        return request

    def plan_result(self, request: PlanRequest, view: PlanView) -> PlanView:
        """Take a computed plan in, on the engine's thread.

        The predictions it offers, the line, the top to keep while a test runs.
        """
        if request.kind == "kinematic" and self.model is not None and not request.final:
            # the simulated candidates are not cached yet: a quick estimate, said so
            line = f"{ESTIMATE_PREFIX}{view.instruction}" if view.instruction else ""
            return replace(view, estimate=True, instruction=line)
        if request.kind != "model":
            return view
        self._refined = view.suggestions[0] if view.suggestions else None
        if not view.suggestions and request.scope == "opening":
            self._opening_done = True  # nothing left of it: kinematic until the rest
            return request.kinematic()
        if request.scope == "opening":
            view = replace(view, opening_only=True)
        self.predictions.offer(view, request.t, request.open_since)
        self._line_view = view
        instruction = self.instructor.update(request.t, view, request.current_test, request.values)
        running = self.instructor.running
        return replace(
            view,
            # the next cells are the cells of the test the line names, walked as it walks
            # them (QA read "hold 1000 rpm: MAP 40 35 kPa" over ◆ at 1500/40 1500/35 1500/30)
            targets=self._line_targets(request),
            # the test the line names leads the list: the one it follows, else the one it
            # says "next:" (held for the switch delay): QA read "cool down at idle, then
            # hold 1000 rpm" over a list whose first three were 1500, 1250 and 750 rpm
            suggestions=running_first(
                view.suggestions,
                running if running is not None else self._named(),
            ),
            instruction=instruction,
            errors_by_type=self.calibration.checks_by_type(),
            running=running is not None,
        )

    def _line_targets(self, request: PlanRequest) -> tuple[Target, ...]:
        """The next cells: the line's test's cells not yet trusted, from where the line is.

        None when the line names no offered test (``core.plan.marks``).
        """
        named = self.instructor.named(request.values)
        if named is None or request.rule is None:
            return ()
        rpm_axis, map_axis = axis_arrays(request.axes)
        conf = confidence(request.arrays, request.rule)
        prio = priority_map(request.axes, request.regions, request.knock)
        return line_targets(
            named[0], named[1], request.values, conf, prio, rpm_axis, map_axis,
            request.constraints,
        )  # fmt: skip

    def _cooling_now(self, request: PlanRequest) -> bool:
        """The line made from ``request``'s plan will say to cool down after a WOT pull.

        Asked of the line as it is now (the pull may have ended since the last plan).
        """
        if self._line_view is None:
            return self.instructor.cooling
        probe = self.instructor.probe(
            request.t, self._line_view, request.current_test, request.values
        )
        return probe.cooling

    def interim_line(self, values: Mapping[str, float]) -> str | None:
        """The line to show now when the test the last plan's line follows is over, else None.

        Asked by a live session at each tick, on the engine's thread: the line is made
        when a plan is taken in, and between the end of a test and the first plan made
        after it the last line still named the finished test (``Instructor.interim``).
        Cheap (the instruction's own update on a copy, against the last plan).
        """
        if self._line_view is None:
            return None
        return self.instructor.interim(
            self._t_last, self._line_view, self.detector.current_test, values
        )

    def _named(self) -> Suggestion | None:
        """The suggestion the line names as next (``Instructor.advice``), or None."""
        advice = self.instructor.advice
        return advice[0] if advice is not None else None

    def checkpoint(self, grid: CoverageGrid) -> None:
        """Persist this run's partial grid (replaces the previous checkpoint of this run).

        The write runs on the saver's thread and is retried until it lands; the
        engine never waits for the store.
        """
        self._save(grid, {}, final=False)

    def finish(self, grid: CoverageGrid, stats: Mapping[str, object]) -> None:
        """Close the test in progress, learn from it and store the run for good.

        Waits up to :attr:`finish_wait_s` for the store; what could not be saved in
        that time is named in :attr:`not_saved` (never an exception).
        """
        self.close_open_test()
        self._save(grid, stats, final=True)
        if self._saver is not None:
            if not self._saver.flush(self.finish_wait_s):
                self.not_saved = (
                    f"this run's coverage and learning were NOT saved to vehicle "
                    f"{self.vehicle!r}: {self._saver.error or 'the store did not answer'}"
                )
            self._saver.close()

    def close_open_test(self) -> list[SourceEvent]:
        """The data has ended: check the tests that ended, close the one in progress unchecked.

        The run is over, so no more data comes after any test. The test the run ended in
        was cut part-way: it is kept and learned from, not checked (``_learn_finished``).
        The pull events of the closing are returned. :meth:`finish` calls it; a wrapper
        that draws the pull the run ended in calls it first (``core.dynosheet.SheetTap``).
        Flushing the detector itself, that wrapper had the cut test checked as complete:
        a headless car demo stopped mid-column read "map_ramps: 59 % mean error".
        Calling it again does nothing.
        """
        self._learn_finished()
        events = self.detector.flush()
        self._learn_finished(cut=True)
        return events

    def wait_saved(self, timeout_s: float) -> bool:
        """Wait until every queued store write landed (True) or ``timeout_s`` passed."""
        return self._saver is None or self._saver.flush(timeout_s)

    @property
    def store_error(self) -> str:
        """Why a store write is waiting to be retried ('' when none is)."""
        saver = self._saver
        if saver is None or not saver.pending:
            return ""
        if saver.error:
            return saver.error
        stalled = saver.stalled_s
        if stalled >= STALL_ALARM_S:
            return f"the vehicle store has been busy for {stalled:.0f} s (another program holds it)"
        return ""

    def advice(self) -> tuple[Suggestion, float] | None:
        """The test the live line names next and the stream time it was written (``Instructor.advice``).

        None while the line follows a running test. Read by the demo's simulated tuner
        (``sim.guided``), from another thread: one tuple, replaced whole.
        """
        return self.instructor.advice

    def stored(self) -> tuple[object, dict[str, npt.NDArray[np.float64]]]:
        """The table's axes and the vehicle's coverage from its other runs (flat arrays).

        The demo's simulated tuner starts from it (``sim.source``): it ends each step
        when its cell shows trusted on the screen, which counts the stored runs too.
        """
        return self._base.axes, {k: v.copy() for k, v in grid_arrays(self._base).items()}

    @property
    def pulls_done(self) -> int:
        return self.detector.pulls + self.manual_pulls

    def count_manual_pull(self) -> None:
        """A pull the tuner marked by hand (``p``) was kept (``core.dynosheet.SheetTap``).

        It counts against ``max_pulls_per_session`` as a detected one does; the detector
        finds no WOT pull without a throttle channel, which is when a tuner marks one.
        """
        self.manual_pulls += 1

    @property
    def pulls_max(self) -> int | None:
        return self.constraints.max_pulls_per_session

    @property
    def prediction_error_pct(self) -> float | None:
        return self.calibration.mean_error_pct

    # -- internals ---------------------------------------------------------------------

    def _save(self, grid: CoverageGrid, stats: Mapping[str, object], *, final: bool) -> None:
        """Hand a copy of this run's state to the background saver (see core.saver)."""
        store = self.store
        if store is None or self._saver is None:
            return
        duration = None if self._t_first is None else self._t_last - self._t_first
        merged = {"pulls": self.pulls_done, "tests": len(self.tests), **dict(stats)}
        if self.segments:
            merged["segments"] = list(self.segments)
            merged["segment_logs"] = list(self.segment_logs)
        snapshot = CoverageGrid.from_arrays(grid.axes, grid.to_arrays(), grid.hit_target)
        calibration = copy.deepcopy(self.calibration)
        start_calibration = self._calibration_at_start
        log_path, started_at = self.log_path, self.started_at

        def job() -> None:
            try:
                store.add_run(
                    self.vehicle, self.run_id, snapshot, log_path=log_path,
                    started_at=started_at, duration_s=duration, stats=merged, final=final,
                    part_of=self.part_of, segment_id=self.segment_id,
                )  # fmt: skip
            except RunRefused as exc:
                if final:
                    self.store_note, self.kept_run = str(exc), exc.kept_run
                return  # the store keeps the larger run
            if final:
                self.store_note, self.kept_run = "", ""
            if not self.learn_note:
                store.set_calibration(
                    self.vehicle, calibration, learned_from=(self.run_id, start_calibration)
                )

        self._saver.submit(self.run_id, job)

    def _learn_finished(self, cut: bool = False, upto: float = math.inf) -> None:
        """Check and learn from each test the detector completed that ended by ``upto``.

        ``cut``: the test in progress when the run ended (``finish``). It is kept, but
        its suggestion is not checked: the tuner stopped part-way, and a part-run test
        compared with the whole suggestion reads as a model error and teaches the
        calibration one (the demo stopped 5 s into a 7-s walk column: "32 %").
        ``upto``: tests ending later wait (:data:`CHECK_AFTER_S`), in order.
        """
        self._finished.extend(self.detector.drain_completed())
        ready = 0
        while ready < len(self._finished) and self._finished[ready].t_stop <= upto:
            ready += 1
        done, self._finished = self._finished[:ready], self._finished[ready:]
        for test in done:
            actual = self._actual_hits(test.t_start, test.t_stop)
            checked = None
            if not cut:
                checked = self.predictions.check(
                    test, actual, self.axes.shape[1], axes_kpa=tuple(self.axes.map_kpa),
                    axes_rpm=tuple(self.axes.rpm), hits_between=self._actual_hits,
                    trusted_at=self.trusted_at,
                )  # fmt: skip
            if checked is not None:
                self.calibration.record_check(checked.test_type, checked.error_pct)
            self.tests.append((test, self.learn(test, checked)))

    def _actual_hits(self, t0: float, t1: float) -> npt.NDArray[np.float64]:
        actual = np.zeros(self.axes.n_cells)
        for piece in self._window.pieces():
            t_kept, idx = piece["tk"], piece["cell"]
            inside = (t_kept >= t0) & (t_kept <= t1)
            actual += np.bincount(idx[inside], minlength=self.axes.n_cells)
        return actual

    def learn(self, test: DetectedTest, checked: CheckedPrediction | None = None) -> float:
        """Compare the models' hits for ``test`` with what it actually added; update the factors.

        Each fill factor calibrates the model it was learned against. The kinematic one
        (``Calibration.fits``, also the fleet's priors) from its hits for the test as
        detected; the simulated candidates' (``Calibration.model_fits``) from the check
        of the suggestion the tuner ran (``checked``: its predicted hits, that factor
        taken out, against what the test added in the same cells), as the guided
        operator learns. One factor for both had scaled the demo's simulated hold
        predictions by the kinematic 0.90 after one hold (~10 % off on every hold after).
        """
        t0, t1 = test.t_start, test.t_stop
        actual = np.zeros(self.axes.n_cells)
        n_rows = 0
        first_kept = t1
        for piece in self._window.pieces():
            t_kept, idx, t_all = piece["tk"], piece["cell"], piece["t"]
            inside = (t_kept >= t0) & (t_kept <= t1)
            if inside.any():
                first_kept = min(first_kept, float(t_kept[inside][0]))
            actual += np.bincount(idx[inside], minlength=self.axes.n_cells)
            n_rows += int(np.count_nonzero((t_all >= t0) & (t_all <= t1)))
        rate_hz = n_rows / max(t1 - t0, 1e-3)
        lead = self.calibration.lead_s(test.test_type)
        spec = observed_spec(test, self.axes)
        model = expected_hits(spec, self.axes, rate_hz, lead)
        error = self.calibration.observe(test.test_type, model, actual, first_kept - t0)
        compared = self.predictions.compared
        if checked is not None and compared is not None:
            predicted, added = compared
            if self.model is not None:
                self.calibration.observe_model(
                    checked.test_type, predicted, added, self.axes.rpm, self.axes.map_kpa,
                    self.hit_target,
                )  # fmt: skip
        self.calibration.observe_reach(
            self.axes.rpm, self.axes.map_kpa, model, actual, self.hit_target
        )
        self.calibration.observe_rate(rate_hz)
        if test.test_type == "wot_pull":
            self.calibration.observe_wot_map(test.map_median_kpa)
        return error
