"""The guided operator: a simulated tuner who always runs the planner's top suggestion.

This closes the loop in the simulator. One continuous engine (heat, knock and
all carry over from test to test) is driven test by test: when a test ends, the
operator asks the planner for the next one against the coverage so far (a
starting coverage, e.g. the vehicle's stored runs, plus everything this session
binned), runs the top suggestion's segments from where the engine is, and checks
the suggestion's prediction against what the test actually added: expected hits
per cell and minutes, made before the test ran. The fill-rate factors learn from
each test (``core.plan.learning``).

It reads a starting coverage and calibration but writes nothing: recording its
stream and replaying the log into a vehicle adds the run like any other.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.coverage.regions import Region
from core.frames import Block
from core.plan.candidates import Constraints
from core.plan.learning import Calibration, prediction_error_pct
from core.plan.predictions import CheckedPrediction
from core.plan.recipe import Recipe
from core.plan.simplan import plan_model
from core.plan.testsim import ADDITIVE, ModelKey, grid_arrays
from core.plan.types import PlanView, Suggestion
from core.plan.value import confidence
from sim.live import Watcher, with_live_steps
from sim.model import Controller
from sim.scenarios import Idle, LiveStep, MapRamps, Release, Segment, chain, end_rpm
from sim.simulation import Simulation
from sim.testsim import SimCandidates, pipeline, recipe_segments, without_release
from sim.vehicles import get_vehicle

F64 = npt.NDArray[np.float64]
WAIT_S = 0.25
"""Idling while the warm-up runs, the operator looks again this often (sim seconds)."""
FRESH_S = 0.2
"""Following the dashboard: its line counts once it was written on data this long after
the last test ended (before, it may still name the test just run)."""
FOLLOW_WAIT_S = 4.0
"""Following the dashboard: with no line naming a next test this long after a test
ended (the planner still warming, a detector still calling the test running), the
operator plans the next test itself, so the demo never stalls."""


class FedSimulation(Simulation):
    """A continuous simulation whose next segment comes from ``feed`` when one ends."""

    def __init__(self, kind: str, feed: Callable[[], Segment], **kwargs: object) -> None:
        self._feed = feed
        super().__init__(get_vehicle(kind), (Idle(1.0),), loop=True, **kwargs)  # type: ignore[arg-type]

    def _next_segment(self) -> Controller:
        self._occurrence += 1
        seg = self._feed()
        self.current = seg
        self._seg_left = max(1, round(seg.duration_s(self.vehicle) * self.rate_hz))
        self._seg_t0_step = self.step
        seed = int(
            np.random.SeedSequence([self.seed, 0x5E6, self._occurrence]).generate_state(1)[0]
        )
        return seg.start(self.model, seed)


@dataclass(slots=True)
class GuidedOperator:
    """Runs the planner's top suggestion, test after test, on one simulated engine.

    Attributes:
        key: Simulator preset, axes, filter limits, logging rate.
        regions: Priority regions.
        constraints: The vehicle's constraints.
        rule: When a cell is covered.
        base: Starting coverage (additive arrays, flat), e.g. the vehicle's stored runs.
        calibration: Starting calibration (copied; learning stays in this operator).
        seed: Simulation seed.
    """

    key: ModelKey
    regions: tuple[Region, ...]
    constraints: Constraints
    rule: CoverageRule = field(default_factory=CoverageRule)
    base: Mapping[str, F64] | None = None
    base_knock: npt.NDArray[np.int64] | None = None
    calibration: Calibration = field(default_factory=Calibration)
    seed: int = 1
    checked: list[CheckedPrediction] = field(default_factory=list)
    plans: int = 0
    last_plan: PlanView | None = None
    pulls: int = 0
    _queue: list[Segment] = field(default_factory=list)
    _current: tuple[Suggestion, float, F64] | None = None
    _pipe: object = None
    model: SimCandidates | None = None
    _sim: FedSimulation | None = None
    _rpm_here: float | None = None
    _map_here: float | None = None
    """The MAP the last segment held at its end when the throttle stays open there (a hold's
    last step, going straight on): where the next test's prediction starts from."""
    _expect_done: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    live_holds: bool = True
    """Each MAP step of a hold ends when its cell turns trusted (the instruction moves on),
    at most ``sim.live.MAX_STEP_S``; False: every step lasts the planned ``HOLD_STEP_S``."""
    _watch: Watcher | None = None
    warm_in_background: bool = False
    """Simulate the candidates in a thread instead of blocking at start: the live demo
    shows an idling engine at once, as a real session starts. The thread simulates the
    opening work first (``plan_model(scope="opening")``: the idle / low-MAP holds, ~1 s
    of CPU against the full warm-up's ~10-15 s), and the operator runs the plans made
    from it while the rest warms; once all is simulated, every plan is the full one.
    Before, the engine idled for the whole warm-up (~30 s in the bare ``dynoai`` demo
    on a loaded 2-core machine)."""
    straight_on: bool = False
    """From a hold the operator goes straight on to the next test at the last step's
    throttle, without closing it 1.5 s first: a hold's segments lose their closing release
    and its prediction leaves it out (``SimCandidates(straight_on=True)``). The bench's
    guided operator runs this way, as its strongest expert does (``bench_planner``);
    the live demo does not (it releases and reads the dashboard's next line)."""
    _warm: threading.Event = field(default_factory=threading.Event)
    """Every candidate is simulated: plans are full ones."""
    _opening: threading.Event = field(default_factory=threading.Event)
    """The opening work is simulated: plans may be made from it (``scope="opening"``)."""
    advice: Callable[[], tuple[Suggestion, float] | None] | None = None
    """The dashboard's line, as a tuner reads it between tests: the suggestion it names
    next and the sim time of the update that named it (``Instructor.advice``). Set (the
    live demo, ``sim.source``), the operator runs what the screen says instead of
    planning on its own: the two planners, a second apart on different data, could pick
    two near-equal tests, and the screen then named one while the engine rode to the
    other. Between tests it waits at the rpm where it released for a line written
    after the test ended (:data:`FRESH_S`), at most :data:`FOLLOW_WAIT_S`."""
    followed: int = 0
    """Tests run as the dashboard named them (the rest the operator planned itself)."""
    _waiting: bool = False
    _ended_at: float = 0.0
    _wait_from: float = 0.0

    def __post_init__(self) -> None:
        if not self.warm_in_background:
            self._warm.set()
            self._opening.set()
        self._pipe = pipeline(self.key)
        self.model = SimCandidates(self.key)
        self._sim = FedSimulation(
            self.key.kind, self._next, seed=self.seed, rate_hz=self.key.rate_hz
        )
        if self.live_holds:
            self._watch = Watcher(self._sim, self._pipe, self.rule, self.base)
        if self.warm_in_background:
            threading.Thread(target=self._warm_up, name="guided-warmup", daemon=True).start()

    @property
    def warm(self) -> bool:
        """True once every candidate is simulated (plans are full ones)."""
        return self._warm.is_set()

    # -- coverage so far -----------------------------------------------------------

    @property
    def grid(self) -> object:
        """The session's grid (what the operator's stream binned)."""
        return self._pipe.grid  # type: ignore[attr-defined]

    def arrays(self) -> dict[str, F64]:
        """Starting coverage + this session, flat additive arrays."""
        now = grid_arrays(self.grid)  # type: ignore[arg-type]
        if self.base is None:
            return now
        return {k: now[k] + np.asarray(self.base[k], dtype=np.float64).ravel() for k in ADDITIVE}

    @property
    def sim_time_s(self) -> float:
        return 0.0 if self._sim is None else self._sim.sim_time_s

    # -- running -------------------------------------------------------------------

    def read(self, max_samples: int) -> Block:
        """The next block (never straddling two tests), already binned into :attr:`grid`."""
        sim = self._sim
        assert sim is not None
        if self._watch is not None:
            return self._watch.read(max_samples)
        n = min(max_samples, sim.segment_left) if sim.segment_left > 0 else max_samples
        if sim.segment_left == 0:
            n = 1  # the next segment starts here; read it with fresh bounds next time
        block = sim.next_block(n)
        assert block is not None
        self._pipe.push(block)  # type: ignore[attr-defined]
        return block

    def run_until(
        self, done: Callable[[GuidedOperator], bool], max_s: float, block_s: float = 0.5
    ) -> None:
        """Run until ``done(self)`` or ``max_s`` seconds of sim time."""
        n = max(1, round(block_s * self.key.rate_hz))
        while self.sim_time_s < max_s and not done(self):
            self.read(n)

    def _warm_up(self) -> None:
        """Simulate the opening work, then every candidate.

        The caches are shared with the dashboard's tracker, which waits for what this
        thread is simulating instead of simulating it too (``sim.testsim.single_flight``).
        """
        empty = {k: np.zeros(self.key.axes.n_cells) for k in ADDITIVE}
        for scope, done in (("opening", self._opening), ("all", self._warm)):
            self._warm_scope(empty, scope)
            done.set()

    def _warm_scope(self, empty: Mapping[str, F64], scope: str) -> None:
        plan_model(
            empty, None, SimCandidates(self.key), self.regions, self.constraints,
            Calibration(), 0, self.rule, scope=scope,
        )  # fmt: skip

    def _next(self) -> Segment:
        if not self._queue:
            self._finish_test()
            now = self.sim_time_s
            if not self._waiting:
                self._waiting, self._ended_at, self._wait_from = True, now, now
            if not self._opening.is_set():
                self._wait_from = now  # the fallback's clock starts once it could plan
            shown = self._shown()
            if shown is not None:
                self.followed += 1
                self._run(shown)
            elif not self._opening.is_set() or (
                self.advice is not None and now - self._wait_from < FOLLOW_WAIT_S
            ):
                # idling while the opening work warms, or released at the last test's rpm
                # until the dashboard names the next test
                return Idle(WAIT_S) if self._rpm_here is None else Release(self._rpm_here, WAIT_S)
            else:
                self._start_test("all" if self._warm.is_set() else "opening")
            self._waiting = False
        seg = self._queue.pop(0)
        self._rpm_here = end_rpm(seg) if end_rpm(seg) is not None else None
        self._map_here = _on_throttle_at(seg)
        return seg

    def _start_test(self, scope: str = "all") -> None:
        # the knock this run has seen raises its cells' priority as it does the
        # dashboard's plan (``VehicleTracker.plan``): without it the demo's operator ran
        # its own top test while the line named the knock cell's hold for minutes
        knock = np.asarray(self.grid.knock_events)  # type: ignore[attr-defined]
        if self.base_knock is not None:
            knock = self.base_knock + knock
        op = {"rpm": self._rpm_here} if self._rpm_here is not None else {}
        if op and self._map_here is not None:
            op["map_kpa"] = self._map_here  # straight on from a hold's last step or a walk
        model = SimCandidates(self.key, self.straight_on, on_throttle=self._map_here is not None)
        view = plan_model(
            self.arrays(), knock, model, self.regions, self.constraints, self.calibration,
            self.pulls, self.rule, operating_point=op, scope=scope,
        )  # fmt: skip
        self.plans += 1
        self.last_plan = view
        if not view.suggestions:
            # (the opening work done before the rest is simulated: look again in a second)
            self._queue = [Idle(10.0 if scope == "all" else WAIT_S)]
            self._current = None
            return
        self._run(view.suggestions[0])

    def _shown(self) -> Suggestion | None:
        """The test the dashboard names next, if its line was written after the last test ended."""
        if self.advice is None:
            return None
        got = self.advice()
        if got is None:
            return None
        shown, t = got
        if t < self._ended_at + FRESH_S or not isinstance(shown.recipe, Recipe):
            return None
        return shown

    def _run(self, top: Suggestion) -> None:
        """Queue ``top``'s segments from where the engine is; its prediction is checked at the end."""
        recipe = top.recipe
        assert isinstance(recipe, Recipe)
        segs = chain(recipe_segments(recipe, self.key.kind), self.key.kind, self._rpm_here)
        if self.live_holds:
            segs = with_live_steps(segs)
            if self.straight_on:
                segs = without_release(segs)
        self._queue = list(segs)
        if recipe.test_type == "wot_pull":
            self.pulls += 1
        hits_now = np.array(self.grid.hits, dtype=np.float64).ravel()  # type: ignore[attr-defined]
        self._current = (top, self.sim_time_s, hits_now)
        # cells this test is expected to make trusted (checked when it ends)
        self._expect_done = np.zeros(self.key.axes.n_cells, dtype=bool)
        n_rpm = self.key.axes.shape[1]
        for r, c in top.cells:
            self._expect_done[r * n_rpm + c] = True

    def _finish_test(self) -> None:
        if self._current is None:
            return
        top, t0, hits_before = self._current
        self._current = None
        n_rpm = self.key.axes.shape[1]
        predicted = np.zeros(self.key.axes.n_cells)
        for r, c, h in top.expected_hits:
            predicted[r * n_rpm + c] = h
        actual = np.array(self.grid.hits, dtype=np.float64).ravel() - hits_before  # type: ignore[attr-defined]
        error = prediction_error_pct(predicted, actual)
        self.calibration.record_check(top.test_type, error)
        axes = self.key.axes
        self.calibration.observe_model(
            top.test_type, predicted, actual, axes.rpm, axes.map_kpa, self.rule.hit_target
        )
        trusted = confidence(self.arrays(), self.rule) >= 1.0
        self.calibration.observe_stalls(axes.rpm, axes.map_kpa, self._expect_done, trusted)
        self.checked.append(
            CheckedPrediction(
                top.test_type, top.description, float(predicted.sum()), float(actual.sum()),
                top.minutes, (self.sim_time_s - t0) / 60.0, error,
            )
        )  # fmt: skip

    def errors_by_type(self) -> dict[str, tuple[float, int]]:
        """Mean prediction error (%) and count per test type, over the checked tests."""
        out: dict[str, list[float]] = {}
        for c in self.checked:
            out.setdefault(c.test_type, []).append(c.error_pct)
        return {k: (float(np.mean(v)), len(v)) for k, v in out.items()}


def _on_throttle_at(seg: Segment) -> float | None:
    """The MAP ``seg`` leaves the engine on the throttle at, or None when it closes it.

    A hold's step, or a MAP-ramp walk gone straight on from (``MapRamps.release`` off):
    the next test's prediction starts there, not from a released engine.
    """
    if isinstance(seg, LiveStep):
        return seg.map_kpa
    if isinstance(seg, MapRamps) and not seg.release:
        return seg.end_map_kpa
    return None


def first_error(op: GuidedOperator) -> float:
    """Relative error of the first suggestion's total hits vs what it added (%)."""
    if not op.checked:
        return math.nan
    c = op.checked[0]
    return 100.0 * (c.predicted_hits - c.actual_hits) / max(c.actual_hits, 1e-9)


def guided_operator(
    kind: str = "vtwin",
    rate_hz: float = 100.0,
    seed: int = 1,
    *,
    config: object = None,
    constraints: Constraints | None = None,
    base: Mapping[str, F64] | None = None,
    base_knock: npt.NDArray[np.int64] | None = None,
    calibration: Calibration | None = None,
    warm_in_background: bool = False,
    advice: Callable[[], tuple[Suggestion, float] | None] | None = None,
    straight_on: bool = False,
) -> GuidedOperator:
    """An operator for ``kind`` at ``rate_hz``, on ``config``'s axes, filters and regions.

    ``config`` is a ``core.vehicle.VehicleConfig`` (default: the defaults). ``base``,
    ``base_knock`` and ``calibration`` are the vehicle's stored coverage and learning
    (read only: the operator learns on its own copy). ``advice``: the dashboard's line
    to follow (:attr:`GuidedOperator.advice`). ``straight_on``: see
    :attr:`GuidedOperator.straight_on`.
    """
    import copy

    from core.vehicle import VehicleConfig

    cfg = config if isinstance(config, VehicleConfig) else VehicleConfig(kind=kind)
    key = ModelKey(kind, cfg.axes, cfg.filters, float(rate_hz), cfg.lambda_delay_ms, cfg.hit_target)
    return GuidedOperator(
        key,
        tuple(cfg.regions),
        constraints if constraints is not None else cfg.constraints,
        cfg.coverage_rule,
        base=base,
        base_knock=base_knock,
        calibration=copy.deepcopy(calibration) if calibration is not None else Calibration(),
        seed=seed,
        warm_in_background=warm_in_background,
        advice=advice,
        straight_on=straight_on,
    )


def guided_blocks(op: GuidedOperator, duration_s: float, block_s: float = 0.5) -> Iterator[Block]:
    """The operator's stream for ``duration_s`` of sim time, in blocks of about ``block_s``."""
    n = max(1, round(block_s * op.key.rate_hz))
    total = round(duration_s * op.key.rate_hz)
    done = 0
    while done < total:
        block = op.read(min(n, total - done))
        done += len(block)
        yield block
