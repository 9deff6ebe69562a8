"""The live instruction line, second by second, as the dashboard's tracker writes it.

A diagnostic for issue 11 item 7 (the instruction holds still and follows the running
test): the guided operator runs the planner's top suggestion on the simulator, the
stream goes through the dashboard's own pipeline and tracker (candidates warmed first,
as after the background warm-up), and every second prints what the engine does, the
test the detector sees, the line, and the test the operator runs.

    python bench/instruction_trace.py car street --seconds 100
    python bench/instruction_trace.py vtwin empty --seconds 200 --follow --rate 100

``--follow``: the operator runs what the line names, as the demo's tuner does, and the
run ends with the tracker's checks of its suggestions (the TUI's "checked:" line).

``street`` starts from the bench's partly covered vehicle (``bench_planner.street_session``);
on the car the first test is then a serpentine with its closing hold.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_planner as bp  # noqa: E402
from core.pipeline import Pipeline  # noqa: E402
from core.plan.testsim import grid_arrays, model_key  # noqa: E402
from core.plan.tracker import VehicleTracker  # noqa: E402
from core.vehicle import VehicleConfig  # noqa: E402
from sim import scenarios as sc  # noqa: E402
from sim.guided import guided_operator  # noqa: E402
from sim.simulation import Simulation, sim_channel_units  # noqa: E402
from sim.testsim import SimCandidates, pipeline  # noqa: E402
from sim.vehicles import get_vehicle  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("vtwin", "car"))
    parser.add_argument("start", choices=("empty", "street"))
    parser.add_argument("--seconds", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=9, help="the operator's seed")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="the operator runs what the line names (as the demo's tuner); at the end, the "
        "tracker's checks of its suggestions (what the TUI and the headless summary report)",
    )
    parser.add_argument("--rate", type=float, default=bp.RATE_HZ, help="samples per second")
    args = parser.parse_args()
    rate = args.rate
    cfg = VehicleConfig(kind=args.kind)
    key = replace(model_key(cfg), rate_hz=rate)
    base = pipeline(key).grid
    if args.start == "street":  # as bench_planner.street_session, keeping the grid
        street = Simulation(
            get_vehicle(args.kind), (sc.Idle(10.0), sc.Cruise(bp.STREET_S)), seed=5, rate_hz=rate
        )
        pipe = pipeline(key)
        while (block := street.next_block(round(rate))) is not None:
            pipe.push(block)
        base = pipe.grid
    tracker = VehicleTracker(
        axes=cfg.axes, hit_target=cfg.hit_target, regions=cfg.regions,
        constraints=cfg.constraints, store=None, vehicle="trace", run_id="trace",
        log_path=None, rule=cfg.coverage_rule, model=SimCandidates(key),
    )  # fmt: skip
    tracker._base = base.copy()
    tracker.warm_now()
    advice = tracker.advice if args.follow else None
    op = guided_operator(args.kind, rate, args.seed, base=grid_arrays(base), advice=advice)
    live = Pipeline(cfg, [("sim", sim_channel_units())], on_rows=tracker.on_rows)
    last = -math.inf
    while op.sim_time_s < args.seconds:
        block = op.read(round(0.25 * rate))
        live.push(block)
        t = float(block.t[-1])
        if t - last < 1.0:  # the session plans about once a second
            continue
        last = t
        values = {k: float(block.column(k)[-1]) for k in ("rpm", "map_kpa", "tps_pct")}
        line = tracker.plan(live.grid, values).instruction
        running = op._current[0].description if op._current is not None else "-"
        detected = tracker.detector.current_test or "-"
        print(
            f"{t:6.1f} s  {values['rpm']:5.0f} rpm {values['map_kpa']:5.1f} kPa "
            f"{values['tps_pct']:5.1f} %  detected {detected:<19} | {line}\n"
            f"{'':9}operator: {running}"
        )
    if args.follow:
        print("\nchecked before the fact (the tracker's checks, as the TUI and summary show them):")
        for c in tracker.predictions.checked:
            print(
                f"  {c.test_type:<19} {c.description[:52]:<52} predicted {c.predicted_hits:6.0f}"
                f" added {c.actual_hits:6.0f}  {c.error_pct:5.1f} %"
            )
        for kind, err, n in tracker.calibration.checks_by_type():
            print(f"  {kind}: {err:.1f} % mean error over {n} test(s)")


if __name__ == "__main__":
    main()
