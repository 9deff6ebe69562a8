"""``dynoai sim``: write a synthetic log from the simulator, faster than real time.

``--write-tune`` / ``--write-true-ve`` write what the simulated ECU runs and what the
engine really breathes, so a VE correction can be checked against the truth;
``--tune`` runs the simulated ECU on a tune (e.g. a corrected one).
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.coverage.axes import TableAxes
from core.record import LogHeader, LogWriter
from core.source import SourceError
from dynoai_tui.commands.common import EXIT_OK, CommandError, write_output_file
from dynoai_tui.commands.headless import format_size

if TYPE_CHECKING:
    from core.tune import Tune

NAME = "sim"
HELP = "write a synthetic .dynolog from the engine + dyno simulator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE", help="the .dynolog to write")
    parser.add_argument("--duration", type=float, metavar="S", help="seconds of data (with --out)")
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
    parser.add_argument(
        "--tune", metavar="FILE", help="run the simulated ECU on this tune (.msq or pasted table)"
    )
    parser.add_argument(
        "--write-tune",
        metavar="FILE.msq",
        help="write the simulated ECU's base tune (and run the log on it)",
    )
    parser.add_argument(
        "--write-true-ve",
        metavar="FILE.csv",
        help="write the engine's true VE on the tune's axes (a twin also writes FILE-rear.csv)",
    )
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="the ECU trims fuel toward the target below 70 kPa and logs fuel_trim_pct",
    )
    parser.add_argument(
        "--ve-error",
        type=float,
        default=10.0,
        metavar="PCT",
        help="peak error of the base tune's VE, percent (default 10)",
    )


def _tune_files(args: argparse.Namespace) -> Tune | None:
    """Load --tune or build the base tune for --write-tune; write the requested files."""
    from core.tune import TuneError, read_tune, render_msq, table_text
    from sim.ecu import base_tune, true_ve_tables
    from sim.vehicles import SimParamError, get_vehicle

    if args.tune and args.write_tune:
        raise CommandError("--tune and --write-tune: give one (the ECU runs one tune)")
    if not 0.0 <= args.ve_error <= 30.0:
        raise CommandError(f"--ve-error {args.ve_error:g} is out of range; use 0 to 30 percent")
    try:
        vehicle = get_vehicle(args.kind)
        tune = read_tune(args.tune) if args.tune else None
        if args.write_tune:
            tune = base_tune(vehicle, args.seed, ve_error_pct=args.ve_error)
            comment = f"DynoAI simulator base tune: {vehicle.name}, seed {args.seed}"
            _write(
                args.write_tune,
                render_msq(tune, signature="dynoai sim", comment=comment),
                args,
                "--write-tune",
            )
            print(f"wrote {args.write_tune}: simulated {vehicle.name} ECU base tune")
        if args.write_true_ve:
            axes = tune.axes if tune is not None else TableAxes.default()
            for key, table in true_ve_tables(vehicle, axes).items():
                path = Path(args.write_true_ve)
                if key == "ve_rear":
                    path = path.with_name(f"{path.stem}-rear{path.suffix}")
                _write(str(path), table_text(table, decimals=3).encode(), args, "--write-true-ve")
                print(f"wrote {path}: true VE ({table.name}), rows = MAP, columns = rpm")
    except (TuneError, SimParamError) as exc:
        raise CommandError(str(exc)) from None
    return tune


def _write(path: str, data: bytes, args: argparse.Namespace, what: str) -> None:
    p = Path(path)
    if p.exists() and not args.overwrite:
        raise CommandError(f"{p} exists; add --overwrite to replace it")
    write_output_file(p, data, what)


def run(args: argparse.Namespace) -> int:
    from sim.guided import guided_blocks
    from sim.simulation import sim_channel_units
    from sim.source import generate
    from sim.vehicles import SimParamError

    if args.out is None and not (args.write_tune or args.write_true_ve):
        raise CommandError("give --out FILE --duration S (and/or --write-tune, --write-true-ve)")
    if args.out is not None and args.duration is None:
        raise CommandError("--out needs --duration S")
    tune = _tune_files(args)
    if args.out is None:
        return EXIT_OK
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CommandError(f"recording {out} already exists; add --overwrite to replace it")
    uri = f"sim:{args.kind}?scenario={args.scenario}&seed={args.seed}&rate={args.rate:g}"
    tune_path = args.tune or args.write_tune
    if tune_path:
        uri += f"&tune={tune_path}"
    if args.closed_loop:
        uri += "&closed_loop=1"
    operator = None
    try:
        if args.scenario == "guided":
            if tune is not None or args.closed_loop:
                raise CommandError(
                    "--scenario guided runs the simulator's own ECU: --tune, --write-tune and "
                    "--closed-loop go with the other scenarios"
                )
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
                tune=tune,
                closed_loop=args.closed_loop,
            )
        first = next(blocks)
    except (SourceError, SimParamError) as exc:
        raise CommandError(str(exc)) from None
    twin = "lambda_front" in first.columns
    header = LogHeader(
        created_at=time.time(),
        t0=0.0,
        vehicle=f"sim-{args.kind}",
        sources={"sim": {"uri": uri, "channels": sim_channel_units(twin, args.closed_loop)}},
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
    from dynoai_tui.commands.common import load_vehicle, open_store, warning_line
    from sim.guided import guided_operator

    if not args.vehicle:
        return guided_operator(args.kind, args.rate, args.seed)
    store = open_store(args)
    try:
        known = store.has_vehicle(args.vehicle)
        cfg = load_vehicle(args, store)
        if not known:
            # (a misspelt name read as a vehicle with nothing stored, without a word)
            warning_line(
                f"vehicle {args.vehicle!r} is not in the store: the operator starts "
                "from an empty table"
            )
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
