"""``dynoai probe URI``: open one source, show what it decodes and how fast, explain failures.

The first thing a tuner runs after plugging something in. Values are printed on
stdout about four times a second with the sample rate; a failure is one line on
stderr saying what is wrong (no such device, permission denied, no answer from
the adapter, bytes arriving but no valid frame = wrong baud or device type).
Exit 0 when samples arrived, 2 for a bad URI or option, 3 for a device failure.
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dynoai_tui.commands.common import (
    EXIT_BAD_INPUT,
    EXIT_DEVICE,
    EXIT_OK,
    error_line,
    silence_stdout,
)

if TYPE_CHECKING:
    from core.source import Source

NAME = "probe"
HELP = "open one source URI, print decoded values live with the sample rate"
PRINT_EVERY_S = 0.25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", metavar="URI", help="source URI, e.g. innovate:/dev/ttyUSB0")
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        metavar="N",
        help="how long to listen (default 5)",
    )


def value_parts(values: Mapping[str, float]) -> list[str]:
    """``rpm 3500``, ``map_kpa 95`` ...: canonical channels first, in their table order."""
    from core.channels import CHANNELS

    names = [n for n in CHANNELS if n in values] + sorted(n for n in values if n not in CHANNELS)
    return [f"{n} {'--' if math.isnan(values[n]) else f'{values[n]:.4g}'}" for n in names]


def format_values(values: Mapping[str, float]) -> str:
    return "  ".join(value_parts(values))


def probe_lines(
    elapsed_s: float, rate: float, state: str, values: Mapping[str, float], width: int
) -> list[str]:
    """One reading as lines of at most ``width`` characters.

    The first line has the time, the rate and the source state, then as many
    values as fit; the other values follow on indented lines (a sim source has
    twenty channels: one 330-character line wrapped and broke the terminal).
    """
    head = f"{elapsed_s:6.2f} s  {rate:.1f} samples/s  {state}"
    if len(head) > width:
        head = head[: width - 1] + "…"
    lines, line = [], head
    for part in value_parts(values):
        if len(line) + 2 + len(part) <= width:
            line += "  " + part
        else:
            lines.append(line)
            line = " " * 9 + part
    lines.append(line[:width])
    return lines


def run(args: argparse.Namespace) -> int:
    from core.source import SourceError
    from drivers.registry import create_source

    if not args.seconds > 0:
        error_line(f"--seconds must be positive, got {args.seconds:g}")
        return EXIT_BAD_INPUT
    try:
        source = create_source(args.uri)
    except SourceError as exc:
        error_line(str(exc))
        return EXIT_BAD_INPUT
    try:
        source.open()
    except SourceError as exc:
        error_line(str(exc))
        return EXIT_DEVICE
    try:
        return _listen(source, args.seconds)
    except BrokenPipeError:
        # The reader went away (``dynoai probe ... | head``): that is the tuner's choice,
        # not a failure. Point stdout at /dev/null so the interpreter's final flush of the
        # buffered rest cannot raise again on the closed pipe.
        silence_stdout()
        return EXIT_OK
    finally:
        source.close()


def _listen(source: Source, seconds: float) -> int:
    from core.source import SourceState

    print(f"probing {source.uri} for {seconds:g} s (Ctrl-C to stop)", flush=True)
    start = last_print = time.monotonic()
    latest: dict[str, float] = {}
    samples = 0
    window_samples = 0
    try:
        while (now := time.monotonic()) - start < seconds:
            block = source.read(0.05)
            if block is not None and len(block):
                samples += len(block)
                window_samples += len(block)
                for name, column in block.columns.items():
                    latest[name] = float(column[-1])
            for event in source.drain_events():
                print(f"# {event.kind}: {event.text}", flush=True)
            now = time.monotonic()
            if now - last_print >= PRINT_EVERY_S:
                rate = window_samples / (now - last_print)
                status = source.status
                state = status.state.value + (f" ({status.message})" if status.message else "")
                width = shutil.get_terminal_size((80, 24)).columns - 1
                for line in probe_lines(now - start, rate, state, latest, width):
                    print(line, flush=True)
                last_print, window_samples = now, 0
    except KeyboardInterrupt:
        pass
    elapsed = time.monotonic() - start
    print(f"{samples} samples in {elapsed:.1f} s: {samples / elapsed:.1f} samples/s", flush=True)
    if samples == 0:
        status = source.status
        reason = status.message or "no samples arrived"
        if status.state is SourceState.CONNECTED and not status.message:
            reason = "the device answered but sent no samples"
        error_line(f"{source.uri}: {reason}")
        return EXIT_DEVICE
    return EXIT_OK
