"""core, drivers, sim and the headless command path never import textual (STYLE.md 1)."""

import subprocess
import sys

import pytest

MODULES = [
    "core.channels",
    "core.frames",
    "core.fusion",
    "core.coverage.grid",
    "core.coverage.filters",
    "core.session",
    "core.record",
    "core.vehicle",
    "core.plan.planner",
    "core.store",
    "core.plan.tracker",
    "core.formats",
    "drivers.registry",
    "sim.source",
    "core.record.replay",
    "dynoai_tui.cli",
    "dynoai_tui.commands.headless",
    "dynoai_tui.commands.log",
    "dynoai_tui.commands.replay",
]


@pytest.mark.parametrize("module", MODULES)
def test_module_does_not_import_textual(module):
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_building_the_cli_parser_does_not_import_textual_serial_or_can():
    code = (
        "import sys\n"
        "from dynoai_tui.cli import build_parser\n"
        "build_parser()\n"
        "heavy = ('textual', 'serial', 'can', 'cantools', 'pyarrow', 'duckdb')\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_simulator_source_does_not_import_serial_or_can():
    code = (
        "import sys\n"
        "from drivers.registry import create_source\n"
        "create_source('sim:')\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('serial', 'can', 'textual')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_fleet_modules_and_commands_load_pyarrow_and_duckdb_only_when_used():
    code = (
        "import sys\n"
        "import core.fleet.record, core.fleet.records_store, core.fleet.patterns\n"
        "import core.fleet.analyze, core.fleet.dataset, core.fleet.queries, core.fleet.export\n"
        "import dynoai_tui.commands.export, dynoai_tui.commands.fleet, dynoai_tui.commands.log, dynoai_tui.commands.run\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'duckdb', 'textual')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
