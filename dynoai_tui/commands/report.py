"""``dynoai report``: the dyno sheet of a recording, or of a vehicle's recorded runs.

The log goes through the same engine as a replay (fusion, filters, the tracker's
pull detector) with a :class:`core.dynosheet.SheetTap` on the tracker, so the
sheet shows exactly the pulls the dashboard showed. Formats: ``text`` (peaks and
a table per pull), ``json`` (the contract in docs/report.md), ``png`` and
``html`` (a sheet to hand the customer; needs matplotlib, see
:mod:`dynoai_tui.commands.sheet_plot`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from core.dynosheet import (
    CORRECTIONS,
    DEFAULT_SMOOTHING_RPM,
    DynoSheetBuilder,
    PullSheet,
    SheetTap,
    sheet_to_dict,
    sheet_to_text,
)
from dynoai_tui.commands.common import (
    EXIT_OK,
    CommandError,
    add_vehicle_options,
    check_output_path,
    open_store,
    warning_line,
    write_output_file,
)

NAME = "report"
HELP = "dyno sheet: power, torque and AFR vs rpm per WOT pull, weather corrected"
FORMATS = ("text", "json", "png", "html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="a .dynolog or an MLG / MSL / CSV log")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument(
        "--out", metavar="FILE", help="write here (png/html default: <log>-sheet.png/.html)"
    )
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="sae",
        help="weather correction: sae (SAE J1349, default), std (SAE J607), none",
    )
    parser.add_argument(
        "--smoothing",
        type=float,
        default=DEFAULT_SMOOTHING_RPM,
        metavar="RPM",
        help=f"moving-average window in rpm (default {DEFAULT_SMOOTHING_RPM:.0f}, 0 = none)",
    )
    parser.add_argument(
        "--humidity",
        type=float,
        metavar="PCT",
        help="relative humidity for the correction when the log has none (default: dry air)",
    )
    parser.add_argument("--map", metavar="CANON=NAME,...", help="CSV column mapping, e.g. rpm=RPM")
    add_vehicle_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.file is None and not args.vehicle:
        raise CommandError("name a log FILE or a --vehicle (see 'dynoai report --help')")
    if not 0 <= args.smoothing <= 2000:
        raise CommandError(f"--smoothing {args.smoothing:g} is outside 0..2000 rpm")
    if args.humidity is not None and not 0 <= args.humidity <= 100:
        raise CommandError(f"--humidity {args.humidity:g} is outside 0..100 %")
    out = _out_path(args)
    # before the log is read: a sheet that cannot be written was found only at the end
    check_output_path(out, "--out" if args.out else "sheet")
    logs = [Path(args.file)] if args.file else _vehicle_logs(args)
    pulls: list[PullSheet] = []
    vehicle, stoich = args.vehicle or "", 14.7
    for log in logs:
        sheets, vehicle_of_log, stoich = _sheets_of(log, args, first_index=len(pulls) + 1)
        pulls.extend(sheets)
        vehicle = vehicle or vehicle_of_log
    source = str(logs[0]) if len(logs) == 1 else f"{len(logs)} runs of {args.vehicle}"
    title = f"Dyno sheet · {vehicle or 'unnamed vehicle'} · {source}"
    if args.format == "json":
        data = sheet_to_dict(
            pulls, source=source, vehicle=vehicle, stoich=stoich, correction=args.correction
        )
        _emit(json.dumps(data, indent=1) + "\n", out)
    elif args.format == "text":
        _emit(sheet_to_text(pulls, title=title) + "\n", out)
    else:
        if not pulls:
            raise CommandError(f"{source}: no WOT pull found, nothing to plot")
        from dynoai_tui.commands.sheet_plot import figure_png, html_page

        assert out is not None  # png and html always go to a file
        page = figure_png if args.format == "png" else html_page
        replaced = out.exists()
        write_output_file(out, page(pulls, title=title), "--out" if args.out else "sheet")
        # a sheet is made again from its log, so an earlier one is replaced, but not silently
        again = " (replaced the earlier sheet)" if replaced else ""
        print(f"wrote {out}: {len(pulls)} pull(s){again}", file=sys.stderr)
    return EXIT_OK


def _out_path(args: argparse.Namespace) -> Path | None:
    """Where the sheet goes: ``--out``, else stdout (text, json) or beside the log (png, html)."""
    if args.out:
        return Path(args.out)
    if args.format in ("text", "json"):
        return None
    default = Path(args.file).with_suffix("") if args.file else Path(args.vehicle or "sheet")
    return Path(f"{default}-sheet.{args.format}")


def _emit(text: str, out: Path | None) -> None:
    if out is not None:
        write_output_file(out, text, "--out")
    else:
        sys.stdout.write(text)


def _vehicle_logs(args: argparse.Namespace) -> list[Path]:
    store = open_store(args)
    if not store.has_vehicle(args.vehicle):
        known = ", ".join(store.list_vehicles()) or "none yet"
        raise CommandError(f"no vehicle named {args.vehicle!r} in the store (known: {known})")
    logs = []
    for run_info in store.list_runs(args.vehicle):
        if run_info.log_path and Path(run_info.log_path).is_file():
            logs.append(Path(run_info.log_path))
        else:
            warning_line(f"run {run_info.run_id}: its log {run_info.log_path or '(none)'} is gone")
    if not logs:
        raise CommandError(f"vehicle {args.vehicle!r} has no recorded log to report on")
    return logs


def _sheets_of(
    log: Path, args: argparse.Namespace, *, first_index: int
) -> tuple[list[PullSheet], str, float]:
    from dynoai_tui.commands.replay import build_session

    ns = argparse.Namespace(**vars(args))
    ns.file, ns.vehicle = str(log), None  # a report never adds the log to a vehicle
    session, source, _ = build_session(ns, speed=math.inf)
    source.close()
    builder = DynoSheetBuilder(
        stoich=session.config.stoich,
        smoothing_rpm=args.smoothing,
        correction=args.correction,
        humidity_pct=args.humidity,
    )
    assert isinstance(session.tracker, SheetTap)
    session.tracker.sheet = builder
    session.run_to_end()
    warning = source.log.recovery_warning if source.log is not None else ""
    if warning:
        warning_line(f"{log}: {warning}")
    header_vehicle = source.log.header.vehicle if source.log is not None else ""
    sheets = [_renumber(p, first_index + i) for i, p in enumerate(builder.pulls)]
    return sheets, header_vehicle, session.config.stoich


def _renumber(pull: PullSheet, index: int) -> PullSheet:
    from dataclasses import replace

    return pull if pull.index == index else replace(pull, index=index)
