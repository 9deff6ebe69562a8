"""Where the simulated minutes go: the guided operator and the best expert, test by test.

A diagnostic for ``bench/bench_planner.py`` (issue 11): for one case (vehicle, start,
constraint) it runs the guided operator and an expert routine (+counter) exactly as the
bench does, and splits every second of sim time until 80 % and 95 % of the goal:

* by phase: moving/settling (the ride or brake to a test's start and its settle),
  the test itself, cool-down, release/idle between tests;
* by what the kept (filtered, binned) data did: seconds of settled dwell on goal cells
  it made trusted, on cells already trusted, on goal cells still untrusted at the
  mark, off the goal; the rest of the test time kept no data at all (dead time).

The physics floor (:func:`bench.bench_planner.floor_seconds`) is printed beside it.

    python bench/planner_breakdown.py vtwin street [--max-rpm 5000] [--routine idle_midrange_wot]
        [--top-down]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_planner as bp  # noqa: E402
from core.coverage.axes import TableAxes  # noqa: E402
from core.coverage.filters import FilterLimits  # noqa: E402
from core.coverage.regions import DEFAULT_REGIONS, priority_map  # noqa: E402
from core.frames import Block  # noqa: E402
from core.plan.candidates import Constraints  # noqa: E402
from core.plan.testsim import ADDITIVE, ModelKey, grid_arrays  # noqa: E402
from core.plan.value import confidence  # noqa: E402
from sim import scenarios as sc  # noqa: E402
from sim.guided import GuidedOperator  # noqa: E402
from sim.live import Watcher, with_live_steps  # noqa: E402
from sim.simulation import Simulation  # noqa: E402
from sim.testsim import pipeline  # noqa: E402
from sim.vehicles import get_vehicle  # noqa: E402


@dataclass
class Slice:
    test: str
    phase_s: dict[str, float]
    dwell: np.ndarray
    trusted_before: np.ndarray
    t_end: float


@dataclass
class Recorder:
    """Wraps a Watcher's read: each block's phase split, kept dwell per cell, trust before."""

    watch: Watcher
    base: dict[str, np.ndarray]
    label: object
    blocks: list[Slice] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._read = self.watch.read
        self.watch.read = self.read  # type: ignore[method-assign]

    def arrays(self) -> dict[str, np.ndarray]:
        now = grid_arrays(self.watch.pipe.grid)
        return {k: now[k] + self.base[k] for k in ADDITIVE}

    def read(self, n: int) -> Block:
        sim = self.watch.sim
        before = self.arrays()
        trusted = confidence(before, bp.RULE) >= 1.0
        n = self.watch.limit(n)
        if sim.segment_left == 0:
            block = self._read(n)  # starts the next segment
            seg = sim.current
            t0 = 0.0
        else:
            seg = sim.current
            t0 = (sim.step - sim._seg_t0_step) / sim.rate_hz
            block = self._read(n)
        seconds = len(block) / sim.rate_hz
        after = self.arrays()
        self.blocks.append(
            Slice(
                str(self.label() if callable(self.label) else self.label),
                split_phase(seg, t0, seconds),
                after["dwell_s"] - before["dwell_s"],
                trusted,
                sim.sim_time_s,
            )
        )
        return block


def split_phase(seg: sc.Segment, t0: float, seconds: float) -> dict[str, float]:
    """``seconds`` of ``seg`` from ``t0`` split into moving/settling and the rest."""
    if isinstance(seg, sc.CoolDown):
        return {"cool-down": seconds}
    if isinstance(seg, sc.Release):
        return {"release": seconds}
    if isinstance(seg, sc.Idle):
        return {"idle": seconds}
    setup = getattr(seg, "settle_s", None)
    if isinstance(seg, sc.WotPull):
        setup = seg.setup_s
    setup = setup or 0.0
    move = min(max(setup - t0, 0.0), seconds)
    return {"move/settle": move, "test": seconds - move}


def summarise(blocks: list[Slice], goal: np.ndarray, t_mark: float, trusted_at_mark: np.ndarray):
    """Per test: phase seconds and kept dwell by destination, up to ``t_mark``."""
    per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    order: list[str] = []
    for b in blocks:
        if b.t_end > t_mark + 1e-9:
            break
        row = per[b.test]
        if b.test not in order:
            order.append(b.test)
        for k, v in b.phase_s.items():
            row[k] += v
        d = np.maximum(b.dwell, 0.0)
        made = goal & ~b.trusted_before & trusted_at_mark
        row["dwell: made trusted"] += float(d[made].sum())
        row["dwell: already trusted"] += float(d[b.trusted_before].sum())
        row["dwell: still untrusted"] += float(d[goal & ~b.trusted_before & ~trusted_at_mark].sum())
        row["dwell: off goal"] += float(d[~goal & ~b.trusted_before].sum())
    return order, per


COLS = (
    "move/settle",
    "test",
    "cool-down",
    "release",
    "idle",
    "dwell: made trusted",
    "dwell: already trusted",
    "dwell: still untrusted",
    "dwell: off goal",
)


def report(name: str, blocks: list[Slice], goal: np.ndarray, marks: dict[float, float]) -> None:
    for g, minutes in sorted(marks.items()):
        t_mark = minutes * 60.0
        last = [b for b in blocks if b.t_end <= t_mark + 1e-9]
        trusted_at_mark = np.zeros_like(goal)
        if last:
            i = len(last) - 1
            trusted_at_mark = blocks[i + 1].trusted_before if i + 1 < len(blocks) else goal
        order, per = summarise(blocks, goal, t_mark, trusted_at_mark)
        print(f"\n{name} to {int(100 * g)} % ({t_mark:.1f} s)")
        print(f"  {'test':<48}" + "".join(f"{c.split(': ')[-1][:10]:>11}" for c in COLS))
        total: dict[str, float] = defaultdict(float)
        for t in order:
            print(f"  {t[:48]:<48}" + "".join(f"{per[t][c]:11.1f}" for c in COLS))
            for c in COLS:
                total[c] += per[t][c]
        print(f"  {'TOTAL':<48}" + "".join(f"{total[c]:11.1f}" for c in COLS))
        kept = sum(total[c] for c in COLS if c.startswith("dwell"))
        wall = sum(total[c] for c in COLS if not c.startswith("dwell"))
        print(f"  seconds with no kept data (any phase): {wall - kept:.1f} of {wall:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("vtwin", "car"))
    parser.add_argument("start", choices=("empty", "street"))
    parser.add_argument("--max-rpm", type=float, default=None)
    parser.add_argument("--routine", default="idle_midrange_wot")
    parser.add_argument("--no-expert", action="store_true")
    parser.add_argument(
        "--top-down", action="store_true", help="the expert runs each hold from its highest MAP"
    )
    parser.add_argument(
        "--no-release", action="store_true", help="the expert goes from hold to hold on throttle"
    )
    args = parser.parse_args()
    axes = TableAxes.default()
    key = ModelKey(args.kind, axes, FilterLimits(), bp.RATE_HZ)
    constraints = Constraints(max_rpm=args.max_rpm)
    goal = (priority_map(axes, DEFAULT_REGIONS) <= 2).ravel() & bp.goal_cells(key, constraints)
    empty = {k: np.zeros(axes.n_cells) for k in ADDITIVE}
    base = bp.street_session(key, seed=5) if args.start == "street" else empty
    start_trusted = confidence(base, bp.RULE) >= 1.0
    floor = bp.floor_seconds(key, constraints, goal, base)
    print(
        f"goal {int(goal.sum())} cells, {int((goal & start_trusted).sum())} trusted at start; "
        + ", ".join(f"floor {int(100 * g)} % = {floor[g]:.1f} s" for g in bp.GOALS)
    )

    prog = bp.Progress(goal, base)
    op = GuidedOperator(
        key, DEFAULT_REGIONS, constraints, bp.RULE, base=base, seed=9, straight_on=True
    )
    assert op._watch is not None

    def label() -> str:
        cur = op._current
        return f"{op.plans}. {cur[0].description}" if cur is not None else f"{op.plans}. -"

    rec = Recorder(op._watch, base, label)
    op.run_until(lambda o: prog.check(grid_arrays(o.grid), o.sim_time_s), bp.MAX_MIN * 60.0)  # type: ignore[arg-type]
    report("GUIDED", rec.blocks, goal, prog.reached)
    for c in op.checked:
        print(
            f"  checked {c.description[:50]:<50} predicted {c.predicted_min * 60:5.1f} s, "
            f"took {c.actual_min * 60:5.1f} s, hits error {c.error_pct:5.1f} %"
        )
    if args.no_expert:
        return
    path = bp.ROUTINES / f"{args.kind}_{args.routine}.toml"
    prog = bp.Progress(goal, base)
    segs = with_live_steps(
        bp.expert_segments(
            path, args.kind, constraints, args.start == "street", top_down=args.top_down
        )
    )
    if args.no_release:
        segs = bp.straight_on(segs)
    sim = Simulation(get_vehicle(args.kind), segs, seed=9, rate_hz=key.rate_hz, loop=True)
    pipe = pipeline(key)
    watch = Watcher(sim, pipe, bp.RULE, base, cut_idle=True)

    def seg_label() -> str:
        s = sim.current
        rpm = getattr(s, "rpm", getattr(s, "rpm_start", ""))
        return f"{s.kind} {rpm}"

    rec = Recorder(watch, base, seg_label)
    n = round(0.5 * key.rate_hz)
    while sim.sim_time_s < bp.MAX_MIN * 60.0:
        watch.read(n)
        if prog.check(grid_arrays(pipe.grid), sim.sim_time_s):
            break
    report(f"EXPERT {args.routine} +counter", rec.blocks, goal, prog.reached)


if __name__ == "__main__":
    main()
