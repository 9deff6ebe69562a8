"""``dynoai vehicle list|reset|edit|show|set-tune|check``: manage the vehicle store.

``set-tune`` keeps the vehicle's base tune (see :mod:`core.tune.kept`) and makes its
VE axes the vehicle's grid axes; runs binned on the old axes are then stale until
``dynoai coverage --vehicle V --rebuild`` re-bins them from their logs.

``check`` decodes every stored row of a vehicle (config, constraints, calibration,
each run's arrays, axes and stats) and lists what is damaged, by run: exit 0 when
all is readable, 2 when something is not (the readable runs keep working; a
damaged run is left out of coverage until it is replaced or the vehicle reset).

``reset`` forgets a vehicle's runs, coverage and learned planner calibration and
keeps its config and constraints (settings are not data), so the next session
starts from an empty table. ``edit`` / ``show`` handle the vehicle's session record
(build, conditions, dyno, notes; see ``dynoai_tui/record_edit.py``).
"""

from __future__ import annotations

import argparse
import sys

from dynoai_tui.commands.common import EXIT_BAD_INPUT, EXIT_OK, CommandError, open_store, printable

NAME = "vehicle"
HELP = "list vehicles, reset one's coverage, edit/show its session record, set its base tune, or check its rows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=("list", "reset", "edit", "show", "set-tune", "check"), help="what to do"
    )
    parser.add_argument(
        "name", nargs="?", help="vehicle name (for reset, edit, show, set-tune, check)"
    )
    parser.add_argument(
        "file", nargs="?", help="set-tune: the tune (.msq or a table copied with axes)"
    )
    parser.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="edit: take the record from this TOML file instead of opening $EDITOR",
    )
    parser.add_argument("--json", action="store_true", help="show: the record as JSON")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the vehicle store lives (default: $DYNOAI_DATA_DIR or the user data directory)",
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help="reset without asking (scripts, no terminal)"
    )


def run(args: argparse.Namespace) -> int:
    from core.store import StoreError

    store = open_store(args)
    try:
        if args.action == "list":
            names = store.list_vehicles()
            if not names:
                sys.stdout.write(f"no vehicles in {store.path}\n")
            for name in names:
                runs = store.list_runs(name)
                bad = sum(1 for vehicle, _ in store.damaged if vehicle == name)
                damaged = f", {bad} damaged (dynoai vehicle check {name})" if bad else ""
                sys.stdout.write(f"{printable(name)}\t{len(runs)} run(s){damaged}\n")
            return EXIT_OK
        if args.action == "set-tune":
            return _set_tune(store, args)
        if not args.name:
            raise CommandError(
                f"vehicle {args.action} needs a NAME, e.g. dynoai vehicle {args.action} fxbb"
            )
        if args.action in ("edit", "show"):
            from dynoai_tui.commands import record_edit

            return (
                record_edit.edit(store, args.name, args)
                if args.action == "edit"
                else (record_edit.show(store, args.name, args))
            )
        if args.action == "check":
            good, problems = store.check(args.name)
            for problem in problems:
                sys.stdout.write(f"damaged: {printable(problem)}\n")
            sys.stdout.write(
                f"vehicle {printable(args.name)}: {good} readable run(s), "
                f"{len(problems)} problem(s)\n"
            )
            return EXIT_BAD_INPUT if problems else EXIT_OK
        if not store.has_vehicle(args.name):
            known = ", ".join(store.list_vehicles()) or "none yet"
            raise CommandError(f"no vehicle named {args.name!r} in the store (known: {known})")
        if not args.yes and not _confirm_reset(args.name, len(store.list_runs(args.name))):
            sys.stdout.write(f"vehicle {args.name}: not reset\n")
            return EXIT_OK
        removed = store.reset_vehicle(args.name)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    sys.stdout.write(f"vehicle {args.name}: removed {removed} run(s) and the planner calibration\n")
    return EXIT_OK


def _confirm_reset(name: str, runs: int) -> bool:
    """Ask on a terminal; without one (a script, a pipe) demand --yes. Nothing is deleted unasked."""
    what = f"vehicle {name}: remove {runs} run(s) and the learned planner calibration"
    if not sys.stdin.isatty():
        raise CommandError(f"{what}? add --yes to confirm (no terminal to ask on)")
    sys.stderr.write(f"{what}? [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline().strip().lower()
    except (OSError, KeyboardInterrupt):
        answer = ""
    return answer in ("y", "yes")


def _set_tune(store: object, args: argparse.Namespace) -> int:
    from core.config import ConfigError
    from core.store import VehicleStore
    from core.tune.kept import keep_tune, with_axes_toml
    from core.vehicle import parse_config_text

    assert isinstance(store, VehicleStore)
    if not args.name or not args.file:
        raise CommandError(
            "vehicle set-tune needs a NAME and a FILE, e.g. dynoai vehicle set-tune fxbb base.msq"
        )
    try:
        tune, kept = keep_tune(store.data_dir, args.name, args.file)
        text = with_axes_toml(store.get_config_toml(args.name), tune.axes)
        parse_config_text(text, source=f"config of vehicle {args.name!r}")
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    store.set_config_toml(args.name, text)  # creates the vehicle if new
    n_map, n_rpm = tune.axes.shape
    rpm, mp = tune.axes.rpm, tune.axes.map_kpa
    rear = " and a rear VE table" if tune.ve_rear is not None else ""
    target = "" if tune.target_lambda is not None else "; no target table (logged targets are used)"
    sys.stdout.write(
        f"vehicle {args.name}: kept {tune.source}{rear} as {kept}{target}\n"
        f"grid axes now {n_rpm} rpm x {n_map} MAP ({rpm[0]:g}-{rpm[-1]:g} rpm, "
        f"{mp[0]:g}-{mp[-1]:g} kPa)\n"
    )
    stale = store.stale_runs(args.name, tune.axes)
    if stale:
        sys.stdout.write(
            f"{len(stale)} run(s) were binned on other axes: dynoai coverage --vehicle "
            f"{args.name} --rebuild\n"
        )
    return EXIT_OK
