"""The ``dynoai`` command: the CLI, its subcommands (commands/) and the Textual dashboard (tui/).

Ctrl-C while Python is still importing DynoAI (the first tenths of a second after
``dynoai`` starts) ends quietly with exit 0, like a Ctrl-C at any later time,
instead of a KeyboardInterrupt traceback from the middle of an import.
``dynoai_tui.cli.main`` puts the normal handler back before it runs a command.
"""

from __future__ import annotations

import signal as _signal
import sys as _sys
import threading as _threading


def _quiet_interrupt(signum: int, frame: object) -> None:
    raise SystemExit(0)


if (
    _threading.current_thread() is _threading.main_thread()
    and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    and "pytest" not in _sys.modules  # a developer's Ctrl-C must still stop the test run
):
    _signal.signal(_signal.SIGINT, _quiet_interrupt)
