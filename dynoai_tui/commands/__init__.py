"""The ``dynoai`` subcommands: one module per subcommand, found through :data:`COMMANDS`.

Each module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
The table below is the registry (the python-can BACKENDS pattern): ``dynoai --help``
lists every command from it without importing any command module, and the CLI imports
only the module of the command being run. ``tests/test_cli_registry.py`` checks that
every command module is registered and that its ``NAME``/``HELP`` match the table.
No module here imports textual at module level; the TUI commands import
``dynoai_tui.tui`` inside ``run``.
"""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "run",
        "live dashboard (TUI) on sources; with no command, on the built-in simulator",
    ),
    "log": ("log", "headless logging (for SSH): record sources to a .dynolog, status on stderr"),
    "replay": ("replay", "replay a .dynolog (or an MLG / MSL / CSV log) with coverage and plan"),
    "import": (
        "import_log",
        "convert an MLG / MSL / CSV log from another tool into a .dynolog, with a summary",
    ),
    "coverage": (
        "coverage",
        "coverage of a log file (FILE) or of a vehicle across its runs (--vehicle)",
    ),
    "plan": ("plan", "the next tests for a vehicle, ranked by expected coverage gain per minute"),
    "constraints": (
        "constraints",
        "show or set a vehicle's planner constraints (rpm / MAP limits, pulls, environment)",
    ),
    "vehicle": (
        "vehicle",
        "list vehicles, reset one's coverage, edit/show its session record, set its base tune, or check its rows",
    ),
    "ve": (
        "ve",
        "correct the tune's VE table from a vehicle's logs; write .msq, paste block, CSV or JSON",
    ),
    "report": (
        "report",
        "dyno sheet: power, torque and AFR vs rpm per WOT pull, weather corrected",
    ),
    "sim": ("sim", "write a synthetic .dynolog from the engine + dyno simulator"),
    "sources": (
        "sources",
        "list serial ports, CAN interfaces and the source URI forms with examples",
    ),
    "probe": ("probe", "open one source URI, print decoded values live with the sample rate"),
    "export": (
        "export",
        "export vehicles' runs, build records and measured patterns as a Parquet dataset",
    ),
    "fleet": (
        "fleet",
        "query a fleet dataset with DuckDB: coverage per model, fill rates, patterns, priors",
    ),
}
"""command name -> (module in this package, one-line help)."""
