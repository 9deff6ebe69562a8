"""The ``dynoai`` command: argument parsing and dispatch to one module per subcommand.

Each subcommand lives in ``dynoai_tui/cmd_*.py`` with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; a module imports its heavy
dependencies inside ``run`` so ``dynoai --help`` stays fast and the headless
commands never import textual. Errors meant for people become one line on stderr
and an exit code (see ``dynoai_tui.common``); anything else is a bug and keeps its
traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from dynoai_tui.common import EXIT_INTERNAL, error_line, translate_errors

COMMANDS = (
    "run",
    "log",
    "replay",
    "import",
    "coverage",
    "plan",
    "constraints",
    "vehicle",
    "sim",
    "sources",
    "probe",
)

EPILOG = """exit codes: 0 done (also after Ctrl-C / SIGTERM / SIGHUP), 1 internal error,
2 bad input (usage, URI, file, config), 3 device or source failure.
With no command, dynoai opens the dashboard on the built-in simulator."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"dynoai_tui.cmd_{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynoai",
        description="DynoAI: live dyno/ECU dashboard, fuel-table coverage and the next pull to do.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _module(name)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not [a for a in args_list if not a.startswith("-")] and not {"-h", "--help"} & set(
        args_list
    ):
        args_list = [*args_list, "run"]
    args = parser.parse_args(args_list)
    try:
        code: int = args._run(args)
        return code
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
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
