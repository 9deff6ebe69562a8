"""The bare ``dynoai`` demo starts its first test at once, on the planner's opening work.

Found by hand in tmux (issue 11 item 10): after launching ``dynoai`` the guided
operator idled ~22-35 s before its first test while every candidate was simulated
(two threads simulating the same candidates, the operator's and the dashboard
tracker's), and the next-tests panel showed the kinematic planner's suggestions
("hold at 2000 rpm, step MAP 70-95 kPa") meanwhile. The warm-up now simulates the
opening work first (``plan_model(scope="opening")``: the idle / low-MAP holds an
empty vehicle's plan ranks first, ~1/8 of the simulation); the operator runs plans
made from it while the rest warms, then the full planner's, unchanged.

The warm-up runs in wall time and the engine in sim time, so the tests gate the
full warm-up on an event instead of timing it: while it is held, the operator must
already be running tests (wall-clock figures: ``bench/bench_demo_start.py``).
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import numpy as np
import pytest

import sim.guided as guided
from core.pipeline import Pipeline
from core.plan import holds
from core.plan.testsim import model_key
from core.plan.tracker import WAITING_INSTRUCTION, VehicleTracker
from core.vehicle import VehicleConfig
from sim import testsim
from sim.guided import guided_operator
from sim.scenarios import Idle, build_scenario
from sim.simulation import Simulation, sim_channel_units
from sim.testsim import SimCandidates, cached_sparse
from sim.vehicles import get_vehicle

RATE_HZ = 50.0  # (the demo runs 100 Hz; 50 Hz halves the simulation, same logic)
OPENING_TYPES = {"idle_low_map", "wot_pull"}


def _clear_caches() -> None:
    for name in ("simulate_segments", "simulate_column", "simulate_live_column", "simulate_rows",
                 "simulate_entry", "simulate_live_from"):  # fmt: skip
        getattr(testsim, name).cache_clear()
    testsim._simulate_from_sparse.cache_clear()
    holds._PAIRS.clear()


def test_operator_runs_the_opening_work_while_the_full_warm_up_is_held(monkeypatch: Any) -> None:
    gate = threading.Event()
    real = guided.plan_model
    full_plans: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = []

    def gated(*args: Any, **kwargs: Any) -> Any:
        scope = kwargs.get("scope", "all")
        if threading.current_thread().name == "guided-warmup" and scope == "all":
            gate.wait(600.0)  # the full warm-up waits until the test lets it go
        if threading.current_thread().name == "guided-warmup" or scope != "all":
            return real(*args, **kwargs)
        frozen = (copy.deepcopy(args), copy.deepcopy(kwargs))
        view = real(*args, **kwargs)
        full_plans.append((*frozen, view))
        return view

    monkeypatch.setattr(guided, "plan_model", gated)
    _clear_caches()
    op = guided_operator("vtwin", RATE_HZ, 1, warm_in_background=True)
    try:
        # the engine idles while the opening work is simulated (the live demo's first second)
        deadline = time.monotonic() + 300.0
        while op._current is None and time.monotonic() < deadline:
            op.read(round(0.02 * RATE_HZ))
            time.sleep(0.005)
        assert op._current is not None, "the operator never left idle with the full warm-up held"
        assert not op.warm  # started before the rest was simulated
        started_at = op.sim_time_s
        # from here on, sim time: it runs the opening work test after test, rpm off idle
        rpm_max = 0.0
        while op.sim_time_s < started_at + 60.0:
            rpm_max = max(rpm_max, float(op.read(round(0.5 * RATE_HZ)).column("rpm").max()))
        assert not op.warm
        assert op.plans >= 2 and len(op.checked) >= 1
        assert op.checked[0].test_type in OPENING_TYPES
        # then the low columns' other holds: never a tip-in, never a sweep or pull yet
        assert {c.test_type for c in op.checked} <= {"idle_low_map", "steady_state"}
        assert rpm_max >= 1200.0  # the idle is ~950 rpm: a hold above it ran
        # the rest is simulated: the next plans are the full planner's
        gate.set()
        deadline = time.monotonic() + 600.0
        while not op.warm and time.monotonic() < deadline:
            time.sleep(0.05)
        assert op.warm
        op.run_until(lambda o: bool(full_plans), op.sim_time_s + 600.0)
        assert full_plans
    finally:
        gate.set()
    # ... and equal to a plan made on cold caches (the opening stage left nothing behind
    # that changes the full ranking)
    args, kwargs, view = full_plans[0]
    _clear_caches()
    fresh = real(*args, **kwargs)
    assert [s.recipe for s in view.suggestions] == [s.recipe for s in fresh.suggestions]
    assert [s.expected_gain for s in view.suggestions] == pytest.approx(
        [s.expected_gain for s in fresh.suggestions]
    )


def test_opening_plan_of_an_empty_vehicle_is_idle_work_from_the_opening_candidates() -> None:
    """The opening scope offers idle / low-MAP work only; its top is one of the full plan's
    idle holds, the very same recipe, and the full plan's top is one of its (the order may
    differ: the full plan's walk orders them from where the engine is, and its floor is
    set by faster tests the opening does not simulate)."""
    from core.plan.learning import Calibration
    from core.plan.simplan import plan_model
    from core.plan.testsim import ADDITIVE

    cfg = VehicleConfig(kind="car")
    model = SimCandidates(model_key(cfg))
    empty = {k: np.zeros(cfg.axes.n_cells) for k in ADDITIVE}
    views = {
        scope: plan_model(
            empty,
            None,
            model,
            tuple(cfg.regions),
            cfg.constraints,
            Calibration(),
            0,
            cfg.coverage_rule,
            scope=scope,
        )  # fmt: skip
        for scope in ("opening", "all")
    }
    opening, full = views["opening"], views["all"]
    assert opening.suggestions and {s.test_type for s in opening.suggestions} == {"idle_low_map"}
    assert full.suggestions[0].test_type in OPENING_TYPES
    assert opening.suggestions[0].recipe in {s.recipe for s in full.suggestions}
    assert full.suggestions[0].recipe in {s.recipe for s in opening.suggestions}
    with pytest.raises(ValueError, match="scope"):
        plan_model(empty, None, model, (), cfg.constraints, Calibration(), 0, cfg.coverage_rule,
                   scope="some")  # fmt: skip


def test_tracker_of_a_new_vehicle_plans_the_opening_work_not_the_kinematic_fallback() -> None:
    """The dashboard's panel: no kinematic suggestions while the opening work is simulated,
    then the simulated opening plan, long before the full warm-up (5 s of data) starts."""
    cfg = VehicleConfig(kind="vtwin")
    tracker = VehicleTracker(
        axes=cfg.axes, hit_target=cfg.hit_target, regions=cfg.regions,
        constraints=cfg.constraints, store=None, vehicle="demo", run_id="demo", log_path=None,
        rule=cfg.coverage_rule, model=SimCandidates(model_key(cfg)),
        clock=lambda: sim.sim_time_s,  # wall time as a live session's: the data's
    )  # fmt: skip
    pipe = Pipeline(cfg, [("sim", sim_channel_units())], on_rows=tracker.on_rows)
    sim = Simulation(get_vehicle("vtwin"), (Idle(60.0),), seed=1, rate_hz=100.0)
    views = []
    for _ in range(3):  # 3 s of idling, a plan a second (as the session plans)
        block = sim.next_block(100)
        assert block is not None
        pipe.push(block)
        values = {k: float(block.column(k)[-1]) for k in ("rpm", "map_kpa")}
        views.append(tracker.plan(pipe.grid, values))
    assert tracker._opening_ready.wait(300.0)
    views.append(tracker.plan(pipe.grid, values))
    assert not tracker._warm_started  # the full warm-up waits for 5 s of data, as before
    assert tracker.model is not None and tracker.model.key.rate_hz == 100.0  # keyed to the rows
    for view in views:  # waiting, or the simulated opening work: never the kinematic plan
        assert view.instruction == WAITING_INSTRUCTION or (
            view.suggestions and {s.test_type for s in view.suggestions} == {"idle_low_map"}
        ), view
    assert views[-1].suggestions and views[-1].instruction != WAITING_INSTRUCTION


def test_a_simulation_two_threads_ask_for_at_once_runs_once() -> None:
    """The operator's and the tracker's warm-ups share each candidate (single flight)."""
    calls: list[int] = []
    entered, release = threading.Event(), threading.Event()

    @cached_sparse(maxsize=4)
    def slow(key: int) -> dict[str, np.ndarray]:
        calls.append(key)
        entered.set()
        release.wait(30.0)
        return {"hits": np.ones(4)}

    out: list[object] = []
    first = threading.Thread(target=lambda: out.append(slow(1)))
    first.start()
    assert entered.wait(30.0)
    second = threading.Thread(target=lambda: out.append(slow(1)))
    second.start()
    deadline = time.monotonic() + 1.0  # without single flight the second call enters here
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    first.join(30.0)
    second.join(30.0)
    assert calls == [1]
    assert len(out) == 2 and all(np.array_equal(o["hits"], np.ones(4)) for o in out)  # type: ignore[index]


def test_a_replay_read_at_full_speed_neither_warms_up_nor_plans_from_the_opening_work() -> None:
    """`dynoai replay FILE --headless --max-speed`: an hour read in a second or two.

    Measured with ``bench/bench_replay.py``: the warm-ups started after 1 and 5 s of
    *data*, i.e. at once, shared the CPU with the replay (1 h: 13-17 s instead of ~2)
    for a result the summary did not wait for; and the summary's next test came from
    the opening work (idle / low-MAP holds alone) of a run holding an hour of data.
    Now the warm-ups also wait for wall time, and the opening work only plans a run's
    first OPENING_MAX_S of data.
    """
    from core.plan.tracker import OPENING_MAX_S

    cfg = VehicleConfig(kind="vtwin")
    wall = [0.0]  # wall time stands still while the file is read
    tracker = VehicleTracker(
        axes=cfg.axes, hit_target=cfg.hit_target, regions=cfg.regions,
        constraints=cfg.constraints, store=None, vehicle="replayed", run_id="r", log_path=None,
        rule=cfg.coverage_rule, model=SimCandidates(model_key(cfg)), clock=lambda: wall[0],
    )  # fmt: skip
    pipe = Pipeline(cfg, [("sim", sim_channel_units())], on_rows=tracker.on_rows)
    sim = Simulation(get_vehicle("vtwin"), build_scenario("pulls", "vtwin").segments, seed=2,
                     rate_hz=100.0)  # fmt: skip
    views = []
    while sim.sim_time_s < OPENING_MAX_S + 30.0:
        block = sim.next_block(100)
        assert block is not None
        pipe.push(block)
        values = {k: float(block.column(k)[-1]) for k in ("rpm", "map_kpa")}
        views.append(tracker.plan(pipe.grid, values))
    assert not tracker._opening_started and not tracker._warm_started
    wall[0] = 2.0  # the read is over; a second later the opening would be due
    view = tracker.plan(pipe.grid, values)
    assert not tracker._opening_started  # the run holds minutes of data: not an opening
    assert not tracker._warm_started  # the full warm-up waits for 5 s of wall time
    # the kinematic planner answers, never "simulating the first tests" for a full run
    assert view.suggestions and view.instruction != WAITING_INSTRUCTION
    assert {s.test_type for s in view.suggestions} != {"idle_low_map"}
