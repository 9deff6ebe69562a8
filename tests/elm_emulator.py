"""Run the real ELM327-emulator (Ircama) on a pty for tests and the OBD benchmark.

``elm -s car -b FILE`` writes the pty path as the first line of FILE and then
reads commands from stdin; SIGINT stops it cleanly (PROTOCOLS.md §9).

The emulator's own logging config writes a DEBUG log file ``elm.log`` into the
working directory on every request. We run it in a temporary directory with a
logging config (``ELM_LOG_CFG``) of warnings only: no litter in the checkout, and
the peer's speed is not dominated by its own debug log (which would distort the
OBD benchmark for both contenders alike).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 15.0
QUIET_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "level": "WARNING",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": ["console"]},
}


def emulator_available() -> bool:
    return shutil.which("elm") is not None or _module_runnable()


def _module_runnable() -> bool:
    try:
        import elm  # noqa: F401
    except ImportError:
        return False
    return True


def quiet_emulator_env(folder: Path) -> dict[str, str]:
    """Environment that keeps the emulator's logging at warnings, configured in ``folder``."""
    log_cfg = folder / "elm_log.yaml"
    log_cfg.write_text(json.dumps(QUIET_LOGGING))  # JSON is valid YAML
    return {**os.environ, "ELM_LOG_CFG": str(log_cfg)}


@contextlib.contextmanager
def running_emulator(scenario: str = "car") -> Iterator[str]:
    """Start the emulator, yield its pty path, stop it with SIGINT on exit."""
    with tempfile.TemporaryDirectory(prefix="elm") as tmp:
        out = Path(tmp) / "elm.out"
        env = quiet_emulator_env(Path(tmp))
        cmd = [sys.executable, "-m", "elm", "-s", scenario, "-b", str(out)]
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            pty = _wait_for_pty(out, proc)
            yield pty
        finally:
            _stop(proc)


def _wait_for_pty(out: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ELM327-emulator exited with code {proc.returncode}")
        if out.exists():
            text = out.read_text(errors="replace")
            first = text.splitlines()[0].strip() if text else ""
            if first.startswith("/dev/") and "STARTED" in text:
                return first
        time.sleep(0.05)
    raise RuntimeError("ELM327-emulator did not report its pty within 15 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=5.0)
    if proc.stdin is not None:
        proc.stdin.close()
