"""The ``dynoai`` command: argument parsing and dispatch to one module per subcommand.

Each subcommand lives in ``dynoai_tui/commands/`` with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``, registered in
:data:`dynoai_tui.commands.COMMANDS`. The parser is built from that table: only the
module of the command being run is imported, so ``dynoai --help`` loads no numpy and
no core module, and the headless commands never import textual. Errors meant for people become one line on stderr
and an exit code (see ``dynoai_tui.commands.common``); anything else is a bug and keeps its
traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from types import ModuleType

from dynoai_tui import INTERRUPTED, raise_interrupt
from dynoai_tui.commands import COMMANDS

EPILOG = """exit codes: 0 done (also after Ctrl-C / SIGTERM / SIGHUP, or when the reader of
the output leaves early, as head does), 1 internal error,
2 bad input (usage, URI, file, config), 3 device or source failure, 4 run ended but
not everything was saved (recording stopped early, vehicle store not written).
With no command, dynoai opens the dashboard on the built-in simulator."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"dynoai_tui.commands.{COMMANDS[name][0]}")


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (its first word that is not an option)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported (its options added)."""
    parser = argparse.ArgumentParser(
        prog="dynoai",
        description="DynoAI: live dyno/ECU dashboard, fuel-table coverage and the next pull to do.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = _module(name)
            module.add_arguments(cmd)
            cmd.set_defaults(_run=module.run)
    return parser


DEMO_SOURCE = "sim:vtwin?scenario=guided"
"""What bare ``dynoai`` runs (see sim.guided)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; its exit code.

    The reader of stdout leaving early (``dynoai sources | head -1``) ends the command
    quietly with exit 0, after the Python docs' "Note on SIGPIPE": stdout is pointed at
    /dev/null so the interpreter's final flush cannot raise again, and SIGPIPE keeps
    Python's ignore (its default would also kill a run whose TCP source drops). Exit 0,
    not the recipe's 1: here 1 means a bug to report, and the reader choosing to stop
    is no failure; a recording being written is closed first (``run_headless``,
    ``LogWriter``'s ``with``), as after Ctrl-C. ``stdout`` is flushed inside the ``try``,
    so the broken pipe of the last buffered lines is found here too.
    """
    try:
        try:
            return _main(argv)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        from dynoai_tui.commands.common import silence_stdout

        silence_stdout()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not [a for a in args_list if not a.startswith("-")] and not {"-h", "--help"} & set(
        args_list
    ):
        args_list = [*args_list, "run"]
        if "--source" not in args_list:
            # The demo: a simulated operator runs the planner's top suggestion, so the
            # heatmap fills and the suggestions change as they would on a real dyno.
            args_list += ["--source", DEMO_SOURCE]
    try:
        parser = build_parser(_command_of(args_list))
        args = parser.parse_args(args_list)
        if not hasattr(args, "_run"):
            parser.print_help()
            return 0
        from dynoai_tui.commands.common import EXIT_INTERNAL, error_line, translate_errors
    except KeyboardInterrupt:  # Ctrl-C while the command's modules load
        INTERRUPTED.clear()
        return 0
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    ):
        # From here on Ctrl-C raises KeyboardInterrupt as usual (and still sets the latch).
        # Started with SIGINT ignored (a background job of a script), it stays ignored.
        signal.signal(signal.SIGINT, raise_interrupt)
    if INTERRUPTED.is_set():  # Ctrl-C while the modules loaded: nothing has started yet
        INTERRUPTED.clear()
        return 0

    try:
        from dynoai_tui.commands.common import check_args

        check_args(args)
        code: int = args._run(args)
        return code
    except KeyboardInterrupt:
        INTERRUPTED.clear()
        return 0
    except Exception as exc:
        from dynoai_tui.commands.common import stdout_closed

        if isinstance(exc, BrokenPipeError) and stdout_closed():
            raise  # the reader of our output left: a quiet exit (main)
        known = translate_errors(exc)
        if known is not None:
            error_line(str(known))
            return known.code
        if args.debug:
            traceback.print_exc()
        error_line(f"internal error: {exc!r} (run with --debug for the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
