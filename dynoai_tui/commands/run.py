"""``dynoai run``: the live dashboard on one or more sources (bare ``dynoai`` = simulator).

Builds the same pipeline as ``dynoai log`` (sources, vehicle config, tracker,
session) and hands it to the Textual app. Textual is imported only inside
``run`` so ``dynoai --help`` and the headless commands never load it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.session import Session
from dynoai_tui.commands.common import (
    add_source_option,
    add_vehicle_options,
    load_vehicle,
    make_sources,
    make_tracker,
    new_run_id,
    open_store,
    record_header,
    with_dyno_sheet,
    with_source_kind,
)

NAME = "run"
HELP = "live dashboard (TUI) on sources; with no command, on the built-in simulator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_option(parser)
    parser.add_argument(
        "--record", metavar="FILE", help="record to this .dynolog from the start (r toggles later)"
    )
    parser.add_argument(
        "--record-dir",
        metavar="DIR",
        help="where the r key writes recordings (default: the current directory)",
    )
    parser.add_argument(
        "--no-bell", action="store_true", help="no terminal bell on lean-at-WOT / knock (b toggles)"
    )
    add_vehicle_options(parser)


def build_session(args: argparse.Namespace) -> tuple[Session, object]:
    """Sources, config, tracker and session for the dashboard; nothing is opened yet."""
    vehicle = getattr(args, "vehicle", None)
    store = open_store(args) if vehicle else None
    sources = make_sources(getattr(args, "source", None))
    cfg = with_source_kind(load_vehicle(args, store), args, store, sources)
    record = getattr(args, "record", None)
    record_path = Path(record).expanduser() if record else None
    run_id = new_run_id()
    log_path = str(record_path.resolve()) if record_path is not None else None
    tracker = with_dyno_sheet(make_tracker(cfg, store, run_id=run_id, log_path=log_path), cfg)
    session = Session(
        sources, config=cfg, tracker=tracker, record_path=record_path, run_id=run_id,
        header_metadata=record_header(store, vehicle),
    )  # fmt: skip
    return session, store


def run(args: argparse.Namespace) -> int:
    session, store = build_session(args)
    from dynoai_tui.tui.app import run_tui

    return run_tui(
        session,
        store=store,
        vehicle=getattr(args, "vehicle", None) or "",
        record_dir=getattr(args, "record_dir", None),
        bell=not getattr(args, "no_bell", False),
    )
