"""The layer contracts: import-linter over the whole tree, plus the module-level rules it cannot see.

import-linter (contracts in pyproject.toml) checks the layers: dynoai_tui on drivers
and sim, both on core; core.record and core.coverage never import core.plan; core,
drivers and sim never import textual; core never imports pyserial or python-can.
Two rules are about *where* an import stands, which import-linter does not
distinguish, so they are checked here on the syntax tree.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_level_imports(path: Path) -> list[str]:
    """Modules imported at module level (not inside a function), TYPE_CHECKING blocks excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                break
            if isinstance(sub, ast.Import):
                names += [a.name for a in sub.names]
            elif isinstance(sub, ast.ImportFrom) and sub.module:
                names.append(sub.module)
    return names


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is a test dependency: pip install -e '.[test]'")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_commands_never_import_the_tui_or_textual_at_module_level():
    for path in sorted((ROOT / "dynoai_tui" / "commands").glob("*.py")):
        for name in _module_level_imports(path):
            assert not name.startswith(("textual", "dynoai_tui.tui")), f"{path.name}: {name}"


def test_drivers_and_sim_use_only_public_names_of_core():
    for pkg in ("drivers", "sim"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core"):
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, (
                        f"{path.relative_to(ROOT)} imports {private} from {node.module}"
                    )


def test_every_command_module_is_registered_with_its_own_name_and_help():
    import importlib

    from dynoai_tui.commands import COMMANDS

    modules = {
        p.stem
        for p in (ROOT / "dynoai_tui" / "commands").glob("*.py")
        if "def run(" in p.read_text(encoding="utf-8") and p.stem != "__init__"
    }
    assert modules == {module for module, _ in COMMANDS.values()}
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"dynoai_tui.commands.{module_name}")
        assert (name, help_text) == (module.NAME, module.HELP)


def test_help_builds_the_parser_without_importing_any_command_or_numpy():
    code = (
        "import sys; from dynoai_tui.cli import build_parser; build_parser().format_help(); "
        "bad = [m for m in sys.modules if m.startswith(('numpy', 'core', 'textual', "
        "'dynoai_tui.commands.'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
