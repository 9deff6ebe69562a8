"""The lint and type checks run with the tests, so one command checks everything (STYLE.md 11)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["core", "drivers", "sim", "dynoai_tui", "tests", "bench"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_is_clean():
    out = _run(sys.executable, "-m", "ruff", "check", *PACKAGES)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_clean():
    out = _run(sys.executable, "-m", "ruff", "format", "--check", *PACKAGES)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean():
    out = _run(sys.executable, "-m", "mypy")
    assert out.returncode == 0, out.stdout + out.stderr
