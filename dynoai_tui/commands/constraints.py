"""``dynoai constraints --vehicle V [--set key=value ...]``: show or change a vehicle's limits.

Keys: min_rpm, max_rpm, min_map_kpa, max_map_kpa, max_pulls_per_session, lug_rpm
(numbers, or ``none`` to clear) and environment (dyno / street / both). Saved constraints take
precedence over the vehicle config's ``[constraints]`` table.
"""

from __future__ import annotations

import argparse
import sys

from dynoai_tui.commands.common import (
    EXIT_OK,
    CommandError,
    add_vehicle_options,
    load_vehicle,
    open_store,
    warning_line,
)

NAME = "constraints"
HELP = "show or set a vehicle's planner constraints (rpm / MAP limits, pulls, environment)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vehicle_options(parser, vehicle_required=True)
    parser.add_argument(
        "--set",
        dest="updates",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. max_rpm=5800, max_pulls_per_session=8, environment=dyno, max_rpm=none",
    )


def parse_updates(items: list[str]) -> dict[str, str]:
    updates: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set {item!r}: expected KEY=VALUE, e.g. max_rpm=5800")
        updates[key.strip()] = value
    return updates


def run(args: argparse.Namespace) -> int:
    from core.store import StoreError

    updates = parse_updates(args.updates)
    store = open_store(args)
    try:
        new_vehicle = not updates and not store.has_vehicle(args.vehicle) and not args.config
        if new_vehicle:
            # Like `dynoai plan` for a new bike: show what would apply, say it is new.
            known = ", ".join(store.list_vehicles()) or "none yet"
            warning_line(
                f"no vehicle named {args.vehicle!r} yet (known: {known}): these are the defaults; "
                f"set one to create it, e.g. dynoai constraints --vehicle {args.vehicle} "
                "--set max_rpm=5800"
            )
        creates = bool(updates) and not store.has_vehicle(args.vehicle) and not args.config
        known = ", ".join(store.list_vehicles()) or "none yet"
        cfg = load_vehicle(args, store)
        current = store.get_constraints(cfg.name) or cfg.constraints
        if updates:
            current = current.with_updates(updates)
            store.set_constraints(cfg.name, current)
        if creates:
            # a typo (fxx for fx) saved the limit under a new name and left fx without
            # it; said once it was saved (before a bad value's error it read as if the
            # vehicle had been made)
            warning_line(
                f"no vehicle named {args.vehicle!r} before (known: {known}): the constraints "
                "created it; check the name if you meant one of those"
            )
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    values = current.to_mapping()
    sys.stdout.write(f"constraints of {cfg.name}{' (saved)' if updates else ''}:\n")
    for key in ("min_rpm", "max_rpm", "min_map_kpa", "max_map_kpa", "max_pulls_per_session",
                "environment", "lug_rpm"):  # fmt: skip
        value = values.get(key)
        if key == "lug_rpm" and not value:
            value = None  # 0: no limit
        shown = (
            "no limit" if value is None else (f"{value:g}" if isinstance(value, float) else value)
        )
        sys.stdout.write(f"  {key:<22} {shown}\n")
    return EXIT_OK
