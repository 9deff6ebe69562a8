"""``dynoai ve``: correct the tune's VE table from a vehicle's logs, and write it back.

The vehicle's recorded logs (or ``--log`` files) are re-binned through the pipeline on
the *tune's own axes*, so the result lines up with the table the tuner loads, whatever
axes the sessions were shown on. Output: a ``.msq`` (the original file with new VE
numbers), a paste block (``tsv``), ``csv`` or the JSON contract (``docs/VE.md``); the
summary (cells changed, by how much, which were held back and why, knock advice) goes
to stderr when the data goes to stdout or a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dynoai_tui.commands.common import (
    EXIT_OK,
    CommandError,
    add_vehicle_options,
    check_output_path,
    open_store,
    warning_line,
    write_output_file,
)

NAME = "ve"
HELP = "correct the tune's VE table from a vehicle's logs; write .msq, paste block, CSV or JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vehicle_options(parser)
    parser.add_argument(
        "--tune",
        metavar="FILE",
        help="the tune to correct (.msq or a table copied with axes); default: the vehicle's "
        "(dynoai vehicle set-tune)",
    )
    parser.add_argument(
        "--log",
        action="append",
        metavar="FILE",
        help="use this log (repeat for more) instead of the vehicle's recorded runs",
    )
    parser.add_argument("--out", metavar="FILE", help="write here (.msq: the corrected tune)")
    parser.add_argument(
        "--format",
        choices=("text", "json", "csv", "tsv", "msq"),
        help="text summary (default on a terminal), json contract, csv, tsv paste block, msq",
    )
    parser.add_argument(
        "--knock",
        action="store_true",
        help="export the knock table and timing advice instead (.msq: advice applied to the "
        "tune's spark table)",
    )
    parser.add_argument("--max-change", type=float, metavar="PCT", help="authority per pass, %%")
    parser.add_argument(
        "--min-confidence", type=float, metavar="X", help="cells below this confidence hold (0..1)"
    )
    parser.add_argument(
        "--smooth", action="store_true", help="extend changes into unvisited neighbour cells"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.out:
        suffix = Path(args.out).suffix.lower()
        return {".msq": "msq", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv"}.get(
            suffix, "msq"
        )
    return "text"


def _settings(args: argparse.Namespace, base: Any) -> Any:
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if args.max_change is not None:
        changes["max_change_pct"] = args.max_change
    if args.min_confidence is not None:
        changes["min_confidence"] = args.min_confidence
    if args.smooth:
        changes["smooth"] = True
    return replace(base, **changes) if changes else base


def run(args: argparse.Namespace) -> int:
    from core.config import ConfigError
    from core.source import SourceError
    from core.tune import read_tune
    from core.tune.kept import kept_tune
    from core.ve.evidence import correct_recordings
    from dynoai_tui.commands.common import load_vehicle

    fmt = _format(args)
    if fmt == "msq" and not args.out:
        raise CommandError("--format msq needs --out FILE.msq")
    if not args.vehicle and not args.log:
        raise CommandError("give --vehicle V (its recorded runs) or --log FILE")
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise CommandError(f"{args.out} exists; add --overwrite to replace it")
    check_output_path(args.out, "--out")  # before the logs are read

    store = open_store(args) if args.vehicle else None
    if store is not None and not store.has_vehicle(args.vehicle):
        known = ", ".join(store.list_vehicles()) or "none yet"
        raise CommandError(f"no vehicle named {args.vehicle!r} in the store (known: {known})")
    cfg = load_vehicle(args, store)
    try:
        settings = _settings(args, cfg.ve)
        if args.tune:
            tune = read_tune(args.tune)
        elif store is not None and (kept := kept_tune(store.data_dir, args.vehicle)) is not None:
            tune = kept
        else:
            # without a vehicle the hint read "give --tune FILE (or --tune FILE)"
            where = (
                f"or keep one for the vehicle: dynoai vehicle set-tune {args.vehicle} FILE"
                if args.vehicle
                else "a .msq, or a table copied with its axes"
            )
            raise CommandError(f"no tune to correct: give --tune FILE ({where})")
    except ConfigError as exc:
        raise CommandError(str(exc)) from None

    logs, notes = _logs(args, store)
    if not logs:
        raise CommandError("no recorded logs to learn from" + (f" ({notes[0]})" if notes else ""))
    try:
        result = correct_recordings(tune, logs, cfg, settings, notes=notes)
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    _check_lambda(result)
    for line in result.warnings:
        warning_line(line)

    if store is not None and args.vehicle:
        _keep_for_fleet(store, args.vehicle, tune, result)
    summary = "\n".join(result.summary_lines()) + "\n"
    try:
        data = _render(result, fmt, args.knock)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if fmt == "text":
        sys.stdout.write(summary)
        return EXIT_OK
    if args.out:
        write_output_file(args.out, data, "--out")
        sys.stderr.write(summary)
        what = "knock table" if args.knock else "corrected VE"
        sys.stderr.write(f"wrote {args.out}: {what} ({fmt})\n")
    else:
        sys.stderr.write(summary)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


def _check_lambda(result: Any) -> None:
    """No log with a wideband is bad input; some without one are a warning (``warnings``).

    QA: a log with no lambda column read "0 of 256 cells changed ... 232 without data",
    exit 0, never why.
    """
    from core.ve.evidence import NO_LAMBDA

    missing = result.without_lambda
    if not missing or len(missing) < len(result.runs):
        return
    damaged = [w for w in result.warnings if not w.endswith(NO_LAMBDA)]
    for line in damaged:
        warning_line(line)
    if len(missing) == 1:
        raise CommandError(f"{missing[0]}: {NO_LAMBDA}")
    raise CommandError(
        f"none of the {len(missing)} logs has a wideband lambda/AFR: nothing to correct fuel against"
    )


def _keep_for_fleet(store: Any, vehicle: str, tune: Any, result: Any) -> None:
    """The session record keeps the VE table before and after (docs/fleet.md), on the latest run."""
    from core.fleet.records_store import set_ve_tables
    from core.store import StoreError

    runs = store.list_runs(vehicle)
    if not runs:
        return
    table = result.tables["ve"]
    try:
        set_ve_tables(
            store, vehicle, runs[-1].run_id, tune.axes.rpm, tune.axes.map_kpa,
            table.ve_base, table.ve_new,
        )  # fmt: skip
    except StoreError as exc:
        warning_line(f"VE tables not kept for the fleet record: {exc}")


def _render(result: Any, fmt: str, knock: bool) -> bytes:
    from core.ve.result import knock_csv, knock_json, knock_tsv

    if knock:
        k = result.knock
        if fmt == "msq":
            return bytes(result.knock_msq())
        if fmt == "json":
            return (json.dumps(knock_json(k), indent=1) + "\n").encode()
        return (knock_csv(k) if fmt == "csv" else knock_tsv(k)).encode()
    if fmt == "json":
        return (json.dumps(result.to_json(), indent=1) + "\n").encode()
    if fmt == "csv":
        return str(result.to_csv()).encode()
    if fmt == "tsv":
        return str(result.to_tsv(_decimals(result))).encode()
    if fmt == "msq":
        return bytes(result.msq())
    return b""


def _decimals(result: Any) -> int:
    name = result.base.names.get("ve")
    digits = result.base.digits.get(name) if name else None
    return 1 if digits is None else max(int(digits), 0)


def _logs(args: argparse.Namespace, store: Any) -> tuple[list[str], list[str]]:
    """Log paths to learn from, and notes about runs that could not be used."""
    from core.ve.evidence import vehicle_logs

    if args.log:
        missing = [p for p in args.log if not Path(p).is_file()]
        if missing:
            raise CommandError(f"{missing[0]}: no such file")
        return list(args.log), []
    logs, notes = vehicle_logs(store, args.vehicle)
    return logs, notes
