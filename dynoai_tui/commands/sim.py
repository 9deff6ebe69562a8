"""``dynoai sim``: write a synthetic log from the simulator, faster than real time."""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from pathlib import Path

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
    parser.add_argument("--scenario", default="pulls", help="pulls | steady | street | idle")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same log)")
    parser.add_argument("--kind", default="vtwin", help="simulated vehicle: vtwin | car")
    parser.add_argument(
        "--rate", type=float, default=100.0, metavar="HZ", help="samples/s (1..1000)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    from sim.simulation import sim_channel_units
    from sim.source import generate
    from sim.vehicles import SimParamError

    if args.duration <= 0:
        raise CommandError(f"--duration must be positive, got {args.duration:g}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CommandError(f"recording {out} already exists; add --overwrite to replace it")
    uri = f"sim:{args.kind}?scenario={args.scenario}&seed={args.seed}&rate={args.rate:g}"
    try:
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
    return EXIT_OK
