"""``dynoai vehicle list`` / ``dynoai vehicle reset V``: manage the vehicle store.

``reset`` forgets a vehicle's runs, coverage and learned planner calibration and
keeps its config and constraints (settings are not data), so the next session
starts from an empty table.
"""

from __future__ import annotations

import argparse
import sys

from dynoai_tui.commands.common import EXIT_OK, CommandError, open_store

NAME = "vehicle"
HELP = "list vehicles in the store, or reset one's coverage"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "reset"), help="what to do")
    parser.add_argument("name", nargs="?", help="vehicle name (for reset)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the vehicle store lives (default: $DYNOAI_DATA_DIR or the user data directory)",
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
                sys.stdout.write(f"{name}\t{len(runs)} run(s)\n")
            return EXIT_OK
        if not args.name:
            raise CommandError("vehicle reset needs a NAME, e.g. dynoai vehicle reset fxbb")
        removed = store.reset_vehicle(args.name)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    sys.stdout.write(f"vehicle {args.name}: removed {removed} run(s) and the planner calibration\n")
    return EXIT_OK
