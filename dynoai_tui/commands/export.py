"""``dynoai export --parquet DIR [--vehicle V | --all]``: the vehicle store as a fleet dataset.

Writes the documented, versioned, Hive-partitioned Parquet dataset of
``docs/fleet.md`` (sessions, cells, tests, patterns, and with ``--samples`` the
fused rows). Every run is re-read from its recording. Several stores (dynos, shops)
may export into one folder: each writes only its own files (named by its store id),
replaces only the runs it exported before, and never removes another store's runs.
Re-exporting is idempotent: the same runs give the same files. A run the store no
longer holds stays in the dataset (the line ``kept N run(s)`` says so) unless
``--prune`` removes it.
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
        "--prune",
        action="store_true",
        help="remove runs this store exported before and no longer holds (default: keep them)",
    )
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
            store, args.parquet, vehicles, shop=args.shop, with_samples=args.samples,
            prune=args.prune,
        )  # fmt: skip
    except (StoreError, DatasetError) as exc:
        raise CommandError(str(exc)) from None
    for vehicle, run_id, why in report.skipped:
        earlier = (
            "; its earlier export stays in the dataset"
            if (vehicle, run_id) in report.kept_skipped
            else ""
        )
        warning_line(f"vehicle {vehicle}, run {run_id}: not exported: {why}{earlier}")
    for text in report.warnings:
        warning_line(text)
    rate = report.runs / report.seconds if report.seconds > 0 else 0.0
    lines = [
        f"exported {report.runs} run(s) of {report.vehicles} vehicle(s) to {args.parquet} "
        f"as store {report.store_id}: {report.files} file(s), {report.bytes / 1024:.1f} KiB, "
        f"{report.seconds:.2f} s ({rate:.1f} runs/s)"
    ]
    if report.kept:
        lines.append(
            f"kept {len(report.kept)} run(s) no longer in the store ({_per_vehicle(report.kept)}): "
            "exported before, they stay in the dataset; --prune removes them"
        )
    if report.removed:
        lines.append(
            f"removed {len(report.removed)} run(s) no longer in the store "
            f"({_per_vehicle(report.removed)}) from the dataset (--prune)"
        )
    sys.stdout.write("".join(line + "\n" for line in lines))
    return EXIT_OK


def _per_vehicle(runs: list[tuple[str, str]]) -> str:
    counts: dict[str, int] = {}
    for vehicle, _ in runs:
        counts[vehicle] = counts.get(vehicle, 0) + 1
    return ", ".join(f"{vehicle}: {n}" for vehicle, n in sorted(counts.items()))
