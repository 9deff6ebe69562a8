"""The next cells (heatmap ◆, panel "Next cells") are the cells of the test the line names.

QA: the line read "hold 1000 rpm: MAP 40 35 kPa" while Next cells listed 1500/40 1500/35
1500/30 and the ◆ sat there; during a cool-down the line said "then hold 1000 rpm" while
◆ sat at 4500/85; a replay did the same. The plan's targets led with the plan's own top
test's cells and filled up with other tests', while the line holds on to the test it
committed to (``core.plan.instruction``). These run simulated sessions through the
tracker, planned each second of data as the engine does, and check at every plan whose
line names rpm (and MAP) that the marked cells are at those rpm and MAP, in the line's
order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import pairwise

import numpy as np
import pytest

from core.frames import Block
from core.pipeline import Pipeline
from core.plan.planner import Constraints
from core.plan.testsim import ModelKey
from core.plan.tracker import VehicleTracker
from core.plan.types import PlanView, Target
from core.vehicle import VehicleConfig
from sim.guided import guided_blocks, guided_operator
from sim.scenarios import build_scenario
from sim.simulation import Simulation, sim_channel_units
from sim.testsim import SimCandidates
from sim.vehicles import get_vehicle

RATE_HZ = 50.0
CFG = VehicleConfig(kind="vtwin", lambda_delay_ms=90.0)
RPM_AXIS = np.asarray(CFG.axes.rpm, dtype=np.float64)
MAP_AXIS = np.asarray(CFG.axes.map_kpa, dtype=np.float64)

Seen = list[tuple[str, tuple[Target, ...]]]


def _tracker() -> VehicleTracker:
    key = ModelKey("vtwin", CFG.axes, CFG.filters, RATE_HZ, CFG.lambda_delay_ms, CFG.hit_target)
    tracker = VehicleTracker(
        axes=CFG.axes, hit_target=CFG.hit_target, regions=tuple(CFG.regions),
        constraints=Constraints(), store=None, vehicle="v", run_id="r", log_path=None,
        model=SimCandidates(key),
    )  # fmt: skip
    tracker.warm_now()
    return tracker


def _planned(tracker: VehicleTracker, blocks: Iterator[Block]) -> Seen:
    """(line, next cells) of a plan made each second of data, as the engine plans."""
    pipe = Pipeline(CFG, [("sim", sim_channel_units())], on_rows=tracker.on_rows)
    seen: Seen = []
    last = -1.0
    for block in blocks:
        pipe.push(block)
        t = float(block.t[-1])
        if t - last >= 1.0:
            last = t
            values = {k: float(block.column(k)[-1]) for k in ("rpm", "map_kpa", "tps_pct", "clt_c")}
            view: PlanView = tracker.plan(pipe.grid, values)
            seen.append((view.instruction, view.targets))
    return seen


@pytest.fixture(scope="module")
def guided() -> Seen:
    """The demo: a simulated tuner follows the line (holds, MAP ramps)."""
    tracker = _tracker()
    op = guided_operator("vtwin", RATE_HZ, seed=1, config=CFG, advice=tracker.advice)
    return _planned(tracker, guided_blocks(op, 75.0, block_s=0.1))


@pytest.fixture(scope="module")
def replayed() -> Seen:
    """A recorded pulls session played back: WOT pulls, cool-downs, the line naming next."""
    tracker = _tracker()
    sim = Simulation(
        get_vehicle("vtwin"), build_scenario("pulls").segments, seed=1, rate_hz=RATE_HZ
    )
    blocks = iter(lambda: sim.next_block(5), None)
    return _planned(
        tracker, (b for _, b in zip(range(int(100 * RATE_HZ / 5)), blocks, strict=False))
    )


def _col(rpm: float) -> int:
    return int(np.argmin(np.abs(RPM_AXIS - rpm)))


RPM_RE = re.compile(r"(\d+)(?:(-|->|<->)(\d+))? rpm(?!/)")
HOLD_RE = re.compile(r"hold (\d+) rpm[:,] MAP ((?:\d+ )+)kPa")
THEN_RE = re.compile(r"until trusted, then (\d+) kPa")


def assert_marks_agree(line: str, targets: Sequence[Target]) -> None:
    """The marked cells are at the rpm (and MAP) ``line`` names, in the order it walks them."""
    if not targets:
        return  # nothing marked: nothing to contradict the line
    said = re.sub(r"\(bring it to \d+ rpm\)", "", line)  # the ride to the test, not its cells
    named: list[int] = []
    both_ways = False
    for m in RPM_RE.finditer(said):
        named.append(_col(float(m[1])))
        if m[3]:
            named.append(_col(float(m[3])))
            both_ways |= m[2] == "<->"
    assert named, f"cells marked under a line that names no rpm: {line!r} {targets}"
    cols = [_col(t.rpm) for t in targets]
    cells = [f"{t.rpm:.0f}/{t.map_kpa:.0f}" for t in targets]
    if len(set(named)) == 1 and re.search(r"\bto \d+ rpm", said):
        # "hold WOT to 5800 rpm", "ramp down to 1500 rpm": the cells on the way there
        ok = (
            all(c >= named[0] for c in cols)
            if "down to" in said
            else all(c <= named[0] for c in cols)
        )
        assert ok, (line, cells)
    else:
        assert all(min(named) <= c <= max(named) for c in cols), (line, cells)
    if not both_ways and len(set(named)) > 1:  # walked one way: the cells in that order
        way = np.sign(named[-1] - named[0])
        assert all(np.sign(b - a) in (0, way) for a, b in pairwise(cols)), (line, cells)
    hold = HOLD_RE.search(said)
    if hold:
        # a hold: its rpm, its steps in the line's order, from the step it names first
        steps = [float(v) for v in hold[2].split()]
        then = THEN_RE.search(said)
        if then:
            steps.append(float(then[1]))
        assert all(t.rpm == float(hold[1]) for t in targets), (line, cells)
        maps = [t.map_kpa for t in targets]
        down = len(steps) < 2 or steps[1] < steps[0]
        assert maps == sorted(maps, reverse=down), (line, cells)
        assert maps[0] <= steps[0] if down else maps[0] >= steps[0], (line, cells)
        if not then:
            assert set(maps) <= set(steps), (line, cells)
    span = re.search(r"(\d+)<->(\d+) kPa", said)
    if span:
        lo, hi = sorted((float(span[1]), float(span[2])))
        assert all(lo <= t.map_kpa <= hi for t in targets), (line, cells)


def _kinds(seen: Seen) -> set[str]:
    """The kinds of line checked with cells marked (the test covers what it claims)."""
    forms = {
        "next hold": r"^next: hold \d+ rpm: MAP",
        "hold running": r"^hold \d+ rpm, MAP \d+ kPa until trusted",
        "walk next": r"MAP ramps \d+->\d+ rpm",
        "walk running": r"^\d+ rpm: roll MAP",
        "pull": r"^hold WOT to",
        "cool-down": r"^cool down",
    }
    return {k for k, pat in forms.items() for line, t in seen if t and re.search(pat, line)}


def test_the_demos_marks_are_the_cells_of_the_test_its_line_names(guided: Seen) -> None:
    for line, targets in guided:
        assert_marks_agree(line, targets)
    assert {"next hold", "hold running", "walk next", "walk running"} <= _kinds(guided)


def test_a_replays_marks_are_the_cells_of_the_test_its_line_names(replayed: Seen) -> None:
    # a scripted pulls session: the line names the next test while the engine pulls and
    # cools down ("cool down ..., then hold 1000 rpm, 2 MAP steps" over ◆ at 4500/85)
    for line, targets in replayed:
        assert_marks_agree(line, targets)
    assert {"pull", "cool-down"} <= _kinds(replayed)


def test_the_check_itself_catches_the_marks_qa_saw() -> None:
    def t(rpm: float, kpa: float) -> Target:
        return Target(int(np.argmin(np.abs(MAP_AXIS - kpa))), _col(rpm), rpm, kpa, 1, 50)

    with pytest.raises(AssertionError):
        assert_marks_agree(
            "hold 1000 rpm: MAP 40 35 kPa, each until trusted",
            [t(1500, 40), t(1500, 35), t(1500, 30)],
        )
    with pytest.raises(AssertionError):
        assert_marks_agree(
            "cool down at idle 0:12 (CLT 90 °C, was 85), then hold 1000 rpm, 2 MAP steps",
            [t(4500, 85)],
        )
    with pytest.raises(AssertionError):  # the walk's cells out of its order
        assert_marks_agree(
            "4500 rpm: roll MAP down to 50 kPa, 1.1 s a cell (now 71), then 4000 rpm",
            [t(4000, 85), t(4500, 70)],
        )
    assert_marks_agree(
        "next: hold 1000 rpm: MAP 40 35 kPa, each until trusted", [t(1000, 40), t(1000, 35)]
    )
