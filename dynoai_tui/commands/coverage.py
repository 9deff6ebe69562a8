"""``dynoai coverage``: the coverage grid of a log file, or a vehicle's cumulative coverage."""

from __future__ import annotations

import argparse
import json
import math
import sys

from core.coverage.export import grid_to_csv, grid_to_json, grid_to_text
from dynoai_tui.commands.common import (
    EXIT_OK,
    CommandError,
    add_vehicle_options,
    open_store,
    report_store_damage,
    warning_line,
)

NAME = "coverage"
HELP = "coverage of a log file (FILE) or of a vehicle across its runs (--vehicle)"
FORMATS = ("text", "json", "csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="a .dynolog or an MLG / MSL / CSV log")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument("--map", metavar="CANON=NAME,...", help="CSV column mapping, e.g. rpm=RPM")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="with --vehicle: rebuild coverage from the recorded logs (after an axes change)",
    )
    add_vehicle_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.file is None and not args.vehicle:
        raise CommandError("name a log FILE or a --vehicle (see 'dynoai coverage --help')")
    if args.file is None:
        return _vehicle_coverage(args)
    if args.rebuild:
        raise CommandError("--rebuild goes with --vehicle, not with a FILE")
    from core.session import Session
    from dynoai_tui.commands.replay import build_session

    session: Session
    session, source, _ = build_session(_as_replay_args(args), speed=math.inf)
    source.close()
    final = session.run_to_end()
    grid = session.grid
    if args.format == "json":
        data = grid_to_json(grid, samples=final.samples_total, rejects=final.rejects)
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    elif args.format == "csv":
        sys.stdout.write(grid_to_csv(grid))
    else:
        sys.stdout.write(grid_to_text(grid, view="hits") + "\n")
    warning = source.log.recovery_warning if source.log is not None else ""
    if warning:
        warning_line(f"{args.file}: {warning}")
    return EXIT_OK


def _as_replay_args(args: argparse.Namespace) -> argparse.Namespace:
    """A FILE's coverage is read-only: it never adds the log to a vehicle."""
    ns = argparse.Namespace(**vars(args))
    ns.vehicle = None
    return ns


def _vehicle_coverage(args: argparse.Namespace) -> int:
    from core.coverage.report import (
        vehicle_coverage_csv,
        vehicle_coverage_json,
        vehicle_coverage_text,
    )
    from core.pipeline import bin_log
    from dynoai_tui.commands.common import load_vehicle

    store = open_store(args)
    if not store.has_vehicle(args.vehicle):
        known = ", ".join(store.list_vehicles()) or "none yet"
        raise CommandError(f"no vehicle named {args.vehicle!r} in the store (known: {known})")
    cfg = load_vehicle(args, store)
    if args.rebuild:
        damaged: list[str] = []
        report = store.rebuild(
            args.vehicle, cfg.axes, lambda path: bin_log(path, cfg, damaged=damaged).grid
        )
        for line in damaged:
            warning_line(line)
        for run_id, why in report.missing:
            warning_line(f"run {run_id} not rebuilt: {why}")
        print(f"rebuilt {len(report.rebuilt)} run(s) on the current axes", file=sys.stderr)
    grid = store.cumulative_grid(args.vehicle, cfg.axes, cfg.hit_target, rule=cfg.coverage_rule)
    runs = len(store.list_runs(args.vehicle))
    stale = len(store.stale_runs(args.vehicle, cfg.axes))
    report_store_damage(store)
    if args.format == "json":
        data = vehicle_coverage_json(args.vehicle, grid, cfg.regions, runs=runs)
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    elif args.format == "csv":
        sys.stdout.write(vehicle_coverage_csv(grid, cfg.regions))
    else:
        text = vehicle_coverage_text(args.vehicle, grid, cfg.regions, runs=runs, stale_runs=stale)
        sys.stdout.write(text.rstrip("\n") + "\n")
    return EXIT_OK
