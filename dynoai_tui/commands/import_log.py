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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from core.channels import STOICH_GASOLINE
from core.formats import LogImportError, open_log, parse_channel_map
from core.formats.mapping import MappedChannel, afr_in_lambda
from core.frames import Block
from core.pipeline import Pipeline
from core.record import LogFileError, LogWriter
from core.record.replay import is_dynolog
from core.vehicle import VehicleConfig
from dynoai_tui.commands.common import EXIT_BAD_INPUT, EXIT_OK, error_line, warning_line

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


REJECT_WORDS = {
    "stale_channel": "rpm, MAP or lambda missing, or older than its staleness limit",
    "engine_not_running": "rpm under the running limit",
    "cold": "coolant under the warm limit",
    "decel_fuel_cut": "fuel cut or throttle closing",
    "wideband_dead": "lambda under the dead-sensor limit",
    "wideband_railed": "lambda on the lean rail",
    "accel_enrich": "throttle opening or accel enrichment",
    "transient_holdoff": "just after a throttle transient",
    "outside_table": "rpm or MAP off the table's axes",
}
"""The filters' reject reasons (``core.coverage.filters.REASONS``) in a tuner's words."""


def binned_line(
    pipeline: Pipeline,
    columns: Mapping[str, npt.NDArray[np.float64]],
    said: Sequence[str] = (),
    mapped: Sequence[MappedChannel] = (),
) -> str:
    """What a replay of the import bins on the default table, and why the rest does not.

    With nothing binned it names the rpm and MAP the log holds, the first thing to check
    against the table (a tool logging MAP in psi, a sensor unplugged, an engine cranking),
    unless the summary's checks (``said``) already said nothing bins. Samples on the lean
    rail from a lambda column that holds AFR get the ``--map`` that imports it as AFR.
    """
    grid = pipeline.grid
    binned = int(grid.hits.sum())
    total = binned + sum(pipeline.rejects().values())
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(pipeline.rejects().items()) if v)
    line = (
        f"  binned on the default table: {binned} of {total} samples, "
        f"{int(np.count_nonzero(grid.hits))} cells"
        + (f"; not binned: {rejects}" if rejects else "")
    )
    if binned == 0 and total and not any("0 samples binned" in n for n in said):
        top = max(pipeline.rejects().items(), key=lambda kv: kv[1])[0]
        seen = [
            f"{label} {np.nanmin(v):.0f}-{np.nanmax(v):.0f}{unit}"
            for name, label, unit in (("rpm", "rpm", ""), ("map_kpa", "MAP", " kPa"))
            if (v := columns.get(name)) is not None and np.isfinite(v).any()
        ]
        why = REJECT_WORDS.get(top, top)
        held = f"; the log holds {', '.join(seen)}" if seen else ""
        line += f"\n  grid will lack: every sample ({why}{held})"
    if pipeline.rejects().get("wideband_railed") and (hint := afr_in_lambda(mapped, columns)):
        line += f"\n  lean rail: {hint}"
    return line


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
    # the samples through the filters and grid a replay uses, as they are written: what
    # the summary's channel checks cannot see (a log at 431 rpm and 10 kPa, an engine
    # cranking with its MAP sensor unplugged, mapped every channel and binned nothing)
    declared = [(n, dict(i.get("channels", {}))) for n, i in log.header.sources.items()]
    pipeline = Pipeline(VehicleConfig(stoich=args.stoich), declared)
    try:
        writer = LogWriter(out, log.header, overwrite=args.force)
        with writer:
            for record in log.records():
                if isinstance(record, Block):
                    writer.write_block(record)
                    blocks += 1
                    if len(record):
                        pipeline.push(record)
                else:
                    writer.write_event(record)
                    events += 1
                writer.tick()
    except LogFileError as exc:
        error_line(str(exc))
        return EXIT_BAD_INPUT
    pipeline.flush()
    print(log.summary.to_text())
    print(binned_line(pipeline, log.columns, said=log.summary.lacks, mapped=log.summary.mapped))
    print(f"wrote {out} ({blocks} blocks, {events} markers, {out.stat().st_size} bytes)")
    if log.summary.damage:
        # the summary's notes say it on stdout (kept with the file); the warning on stderr
        # is the line replay, coverage, report and ve give for the same file
        sys.stdout.flush()
        warning_line(f"{src}: damaged log: " + "; ".join(log.summary.damage))
    return EXIT_OK
