"""``dynoai log``: headless logging for SSH, recording every source to a .dynolog."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core.coverage.export import grid_to_json
from core.session import Session
from dynoai_tui.commands.common import (
    add_source_option,
    add_vehicle_options,
    check_output_path,
    exit_code_after,
    load_vehicle,
    make_sources,
    make_tracker,
    new_run_id,
    open_store,
    record_header,
    with_dyno_sheet,
    with_source_kind,
    write_output_file,
)
from dynoai_tui.commands.headless import (
    as_stored,
    heatmap_from,
    print_summary,
    run_headless,
    summary_text,
)
from dynoai_tui.commands.statusline import add_status_options

NAME = "log"
HELP = "headless logging (for SSH): record sources to a .dynolog, status on stderr"
DEFAULT_OUT = "dynoai-%Y%m%d-%H%M%S.dynolog"
"""The recording without ``--out``: local date and time it started (``time.strftime``)."""
DEFAULT_OUT_EXAMPLE = "dynoai-20250301-142530.dynolog"
"""What ``--help`` shows for :data:`DEFAULT_OUT` (the help once said ``dynoai-<time>``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_option(parser)
    parser.add_argument(
        "--out",
        metavar="FILE",
        help=f"recording (default: dynoai-<date>-<time>.dynolog, e.g. {DEFAULT_OUT_EXAMPLE})",
    )
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--coverage-json", metavar="FILE", help="also write the final coverage JSON here"
    )
    add_status_options(parser)
    add_vehicle_options(parser)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.coverage_json, "--coverage-json")
    out = Path(args.out or time.strftime(DEFAULT_OUT))
    store = open_store(args) if args.vehicle else None
    sources = make_sources(args.source)
    cfg = with_source_kind(load_vehicle(args, store), args, store, sources)
    run_id = new_run_id()
    tracker = with_dyno_sheet(
        make_tracker(cfg, store, run_id=run_id, log_path=str(out.resolve())), cfg
    )
    session = Session(
        sources, config=cfg, tracker=tracker, record_path=out, run_id=run_id,
        header_metadata=record_header(store, args.vehicle),
    )  # fmt: skip
    final, why = run_headless(
        session,
        duration_s=args.duration,
        status_format=args.status_format,
        bell=not args.no_bell,
    )
    print_summary(heatmap_from(session))
    final, _ = as_stored(final, session.tracker)  # a new run id: the store takes the run
    print_summary(
        summary_text(
            final,
            recording_path=str(out),
            note=f"stopped: {why}",
            not_saved=session.not_saved,
            stored_as=args.vehicle,
        )  # fmt: skip
    )
    if args.coverage_json:
        data = grid_to_json(session.grid, samples=final.samples_total, rejects=final.rejects)
        write_output_file(args.coverage_json, json.dumps(data, indent=1), "--coverage-json")
    return exit_code_after(session, final)
