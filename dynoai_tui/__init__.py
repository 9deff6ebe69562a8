"""The ``dynoai`` command: the CLI, its subcommands (commands/) and the Textual dashboard (tui/).

Ctrl-C while Python is still importing DynoAI (the first tenths of a second after
``dynoai`` starts) ends quietly with exit 0, like a Ctrl-C at any later time. A
KeyboardInterrupt raised in the middle of an import can land in importlib's own
clean-up callback, where Python prints "Exception ignored" and *drops* it: the run
would go on as if the tuner had never pressed Ctrl-C. So until the command's modules
are loaded, SIGINT only sets :data:`INTERRUPTED`; ``dynoai_tui.cli.main`` checks it
after the imports, and every later SIGINT handler sets it too, so a Ctrl-C that Python
swallowed is still seen by the run loop (``commands.headless.StopSignals``).
"""

from __future__ import annotations

import signal as _signal
import sys as _sys
import threading as _threading

INTERRUPTED = _threading.Event()
"""Set by every SIGINT DynoAI receives, whatever else its handler then does."""


def _latch_interrupt(signum: int, frame: object) -> None:
    INTERRUPTED.set()


def raise_interrupt(signum: int, frame: object) -> None:
    """Python's own Ctrl-C behaviour (KeyboardInterrupt), remembered in INTERRUPTED."""
    INTERRUPTED.set()
    raise KeyboardInterrupt


if (
    _threading.current_thread() is _threading.main_thread()
    and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    and "pytest" not in _sys.modules  # a developer's Ctrl-C must still stop the test run
):
    _signal.signal(_signal.SIGINT, _latch_interrupt)
