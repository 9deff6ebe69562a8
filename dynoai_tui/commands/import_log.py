"""``dynoai import``: turn an MLG / MSL / CSV log from another tool into a .dynolog.

The summary (duration, rate, channels mapped and unmapped with each unit
conversion, gaps, markers, checksum errors) goes to stdout so it can be kept with
the file; the progress bar goes to stderr and only when stderr is a terminal.
Bad input (unknown format, truncated file, no rpm column, existing output) is
one ``dynoai: error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from core.channels import STOICH_GASOLINE
from core.formats import LogImportError, open_log, parse_channel_map
from core.frames import Block
from core.record import LogFileError, LogWriter
from core.record.replay import is_dynolog
from dynoai_tui.commands.common import EXIT_BAD_INPUT, EXIT_OK, error_line

NAME = "import"
HELP = "convert an MLG / MSL / CSV log from another tool into a .dynolog, with a summary"

_PROGRESS_MIN_BYTES = 1 << 20
"""Files smaller than this import too fast for a progress bar to help."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the log: MLG (binary), MSL, or CSV (format detected)")
    parser.add_argument(
        "--out", metavar="FILE", help="the .dynolog to write (default: FILE with .dynolog suffix)"
    )
    parser.add_argument(
        "--map",
        action="append",
        metavar='CHANNEL="COLUMN",...',
        help='name columns yourself: rpm="Engine Speed",map_kpa=MAP (time=COLUMN for the time)',
    )
    parser.add_argument(
        "--time-unit",
        choices=("ms", "s"),
        help="unit of a time column the log does not label (with --map time=COLUMN)",
    )
    parser.add_argument(
        "--stoich",
        type=float,
        default=STOICH_GASOLINE,
        help=f"stoichiometric AFR for AFR <-> lambda (default {STOICH_GASOLINE:g}; E85 9.77)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")


class _ProgressBar:
    """A one-line bar on a terminal, redrawn only when the percentage changes."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.percent = -1

    def __call__(self, done: int, total: int) -> None:
        percent = min(100, int(100 * done / total)) if total > 0 else 100
        if percent == self.percent:
            return
        self.percent = percent
        filled = percent * 30 // 100
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}%")
        self.stream.flush()

    def finish(self) -> None:
        if self.percent >= 0:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    src = Path(args.file)
    if src.is_file() and is_dynolog(src):
        error_line(f"{src} is already a DynoAI recording: replay it (dynoai replay {src})")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else src.with_suffix(".dynolog")
    if out.exists() and not args.force:
        error_line(f"{out} already exists; add --force to overwrite it")
        return EXIT_BAD_INPUT
    if out.resolve() == src.resolve():
        error_line(f"--out {out} is the input file; choose another name")
        return EXIT_BAD_INPUT
    if not args.stoich or not 5.0 <= args.stoich <= 20.0:
        error_line(f"--stoich {args.stoich:g} is not a fuel's stoichiometric AFR (5..20)")
        return EXIT_BAD_INPUT
    bar = None
    if sys.stderr.isatty() and src.is_file() and src.stat().st_size >= _PROGRESS_MIN_BYTES:
        bar = _ProgressBar(sys.stderr, f"reading {src.name}")
    try:
        channel_map = parse_channel_map(args.map)
        log = open_log(
            src,
            channel_map=channel_map,
            progress=bar,
            stoich=args.stoich,
            time_unit=args.time_unit,
        )
    except LogImportError as exc:
        if bar is not None:
            bar.finish()
        error_line(str(exc))
        return EXIT_BAD_INPUT
    if bar is not None:
        bar.finish()
    log.header.metadata["stoich"] = args.stoich
    blocks = events = 0
    try:
        writer = LogWriter(out, log.header, overwrite=args.force)
        with writer:
            for record in log.records():
                if isinstance(record, Block):
                    writer.write_block(record)
                    blocks += 1
                else:
                    writer.write_event(record)
                    events += 1
                writer.tick()
    except LogFileError as exc:
        error_line(str(exc))
        return EXIT_BAD_INPUT
    print(log.summary.to_text())
    print(f"wrote {out} ({blocks} blocks, {events} markers, {out.stat().st_size} bytes)")
    return EXIT_OK
