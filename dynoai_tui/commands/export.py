"""``dynoai export --parquet DIR [--vehicle V | --all]``: the vehicle store as a fleet dataset.

Writes the documented, versioned, Hive-partitioned Parquet dataset of
``docs/fleet.md`` (sessions, cells, tests, patterns, and with ``--samples`` the
fused rows). Every run is re-read from its recording. Re-exporting is idempotent:
the same runs give the same files, and a vehicle's partitions hold exactly the runs
the store has for it.
"""

from __future__ import annotations

import argparse
import sys

from dynoai_tui.commands.common import EXIT_OK, CommandError, open_store, warning_line

NAME = "export"
HELP = "export vehicles' runs, build records and measured patterns as a Parquet dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parquet", metavar="DIR", required=True, help="dataset folder (created)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--vehicle", help="export this vehicle")
    which.add_argument("--all", action="store_true", help="export every vehicle in the store")
    parser.add_argument(
        "--shop", help="shop name for the partition (default: the record's, else 'unknown')"
    )
    parser.add_argument("--samples", action="store_true", help="also write the fused rows (large)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the vehicle store lives (default: $DYNOAI_DATA_DIR or the user data directory)",
    )


def run(args: argparse.Namespace) -> int:
    from core.fleet.dataset import DatasetError
    from core.fleet.export import export_store
    from core.store import StoreError

    store = open_store(args)
    try:
        if args.all:
            vehicles = store.list_vehicles()
            if not vehicles:
                raise CommandError(f"the vehicle store {store.path} has no vehicles to export")
        else:
            if not store.has_vehicle(args.vehicle):
                known = store.list_vehicles()
                hint = (
                    f" (known: {', '.join(known)})" if known else " (the store has no vehicles yet)"
                )
                raise CommandError(f"unknown vehicle {args.vehicle!r}{hint}")
            vehicles = [args.vehicle]
        report = export_store(
            store, args.parquet, vehicles, shop=args.shop, with_samples=args.samples
        )
    except (StoreError, DatasetError) as exc:
        raise CommandError(str(exc)) from None
    for vehicle, run_id, why in report.skipped:
        warning_line(f"vehicle {vehicle}, run {run_id}: not exported: {why}")
    for text in report.warnings:
        warning_line(text)
    rate = report.runs / report.seconds if report.seconds > 0 else 0.0
    sys.stdout.write(
        f"exported {report.runs} run(s) of {report.vehicles} vehicle(s) to {args.parquet}: "
        f"{report.files} file(s), {report.bytes / 1024:.1f} KiB, {report.seconds:.2f} s "
        f"({rate:.1f} runs/s)\n"
    )
    return EXIT_OK
