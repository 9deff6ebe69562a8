"""``dynoai sim``: write a synthetic log from the simulator, faster than real time."""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from pathlib import Path
from typing import Any

from core.coverage.axes import TableAxes
from core.record import LogHeader, LogWriter
from core.source import SourceError
from dynoai_tui.commands.common import EXIT_OK, CommandError
from dynoai_tui.commands.headless import format_size

NAME = "sim"
HELP = "write a synthetic .dynolog from the engine + dyno simulator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE", help="the .dynolog to write")
    parser.add_argument(
        "--duration", type=float, required=True, metavar="S", help="seconds of data"
    )
    parser.add_argument(
        "--scenario",
        default="pulls",
        help="pulls | steady | street | idle | FILE.toml (a routine, see sim/scenario_file.py) "
        "| guided (a simulated operator running the planner's top suggestion; with --vehicle "
        "it starts from that vehicle's stored coverage and constraints, read only)",
    )
    parser.add_argument("--vehicle", help="guided: the stored vehicle to start from")
    parser.add_argument("--data-dir", metavar="DIR", help="where the vehicle store lives")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same log)")
    parser.add_argument("--kind", default="vtwin", help="simulated vehicle: vtwin | car")
    parser.add_argument(
        "--rate", type=float, default=100.0, metavar="HZ", help="samples/s (1..1000)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    from sim.guided import guided_blocks
    from sim.simulation import sim_channel_units
    from sim.source import generate
    from sim.vehicles import SimParamError

    if args.duration <= 0:
        raise CommandError(f"--duration must be positive, got {args.duration:g}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CommandError(f"recording {out} already exists; add --overwrite to replace it")
    uri = f"sim:{args.kind}?scenario={args.scenario}&seed={args.seed}&rate={args.rate:g}"
    operator = None
    try:
        if args.scenario == "guided":
            operator = _guided(args)
            blocks = guided_blocks(operator, args.duration)
        elif args.vehicle:
            raise CommandError("--vehicle is only used with --scenario guided")
        else:
            blocks = generate(
                vehicle=args.kind,
                scenario=args.scenario,
                seed=args.seed,
                rate_hz=args.rate,
                duration_s=args.duration,
            )
        first = next(blocks)
    except (SourceError, SimParamError) as exc:
        raise CommandError(str(exc)) from None
    header = LogHeader(
        created_at=time.time(),
        t0=0.0,
        vehicle=f"sim-{args.kind}",
        sources={"sim": {"uri": uri, "channels": sim_channel_units()}},
        axes=TableAxes.default().to_dict(),
        metadata={"generator": "dynoai sim", "run_id": uuid.uuid4().hex, "scenario": args.scenario},
    )
    started = time.monotonic()
    samples = 0
    with LogWriter(out, header, overwrite=args.overwrite) as writer:
        for block in itertools.chain([first], blocks):
            writer.write_block(block)
            samples += len(block)
    size = writer.bytes_written  # after close: everything flushed
    spent = time.monotonic() - started
    print(
        f"wrote {out}: {samples} samples, {args.duration:g} s of {args.scenario} "
        f"in {spent:.2f} s ({args.duration / max(spent, 1e-9):.0f}x real time), {format_size(size)}"
    )
    if operator is not None:
        for c in operator.checked:
            print(
                f"  {c.description}: predicted {c.predicted_hits:.0f} hits in {c.predicted_min:.2f} min, "
                f"added {c.actual_hits:.0f} in {c.actual_min:.2f} min ({c.error_pct:.0f} % cell error)"
            )
        for t, (err, n) in sorted(operator.errors_by_type().items()):
            print(f"prediction error {t}: {err:.1f} % mean over {n} test(s)")
    return EXIT_OK


def _guided(args: argparse.Namespace) -> Any:
    """The guided operator, starting from ``--vehicle``'s stored coverage (read only)."""
    from core.plan.testsim import grid_arrays
    from core.store import StoreError
    from dynoai_tui.commands.common import load_vehicle, open_store
    from sim.guided import guided_operator

    if not args.vehicle:
        return guided_operator(args.kind, args.rate, args.seed)
    store = open_store(args)
    try:
        known = store.has_vehicle(args.vehicle)
        cfg = load_vehicle(args, store)
        if not known:
            return guided_operator(cfg.kind, args.rate, args.seed, config=cfg)
        grid = store.cumulative_grid(cfg.name, cfg.axes, cfg.hit_target)
        return guided_operator(
            cfg.kind, args.rate, args.seed, config=cfg,
            constraints=store.get_constraints(cfg.name) or cfg.constraints,
            base=grid_arrays(grid), base_knock=grid.knock_events,
            calibration=store.get_calibration(cfg.name),
        )  # fmt: skip
    except StoreError as exc:
        raise CommandError(str(exc)) from None
