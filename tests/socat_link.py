"""A serial device that can be unplugged and plugged back: two ptys linked by socat.

``socat pty,link=DEV pty,link=PEER`` makes two pty pairs and copies bytes between
them; the driver opens ``DEV`` (a symlink, like /dev/serial/by-id/...) and a fake
device talks on ``PEER``. Killing socat is the cable pulled: both links vanish
and the driver's next read fails with EIO. Starting it again is the replug.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

SOCAT = shutil.which("socat")


class SocatLink:
    def __init__(self, directory: Path, name: str = "ttyDEV") -> None:
        self.dev = directory / name
        self.peer = directory / f"{name}.peer"
        self.proc: subprocess.Popen[bytes] | None = None

    def plug(self, timeout_s: float = 3.0) -> None:
        if SOCAT is None:
            raise RuntimeError("socat is not installed")
        self.proc = subprocess.Popen(
            [SOCAT, f"pty,raw,echo=0,link={self.dev}", f"pty,raw,echo=0,link={self.peer}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not (self.dev.exists() and self.peer.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create its links")
            time.sleep(0.002)

    def unplug(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(5)
        deadline = time.monotonic() + 2.0
        while self.dev.exists() and time.monotonic() < deadline:
            time.sleep(0.005)


class PeerDevice:
    """The fake device on the peer side: streams ``payload`` or answers requests."""

    def __init__(
        self,
        path: Path,
        payload: bytes = b"",
        period_s: float = 0.02,
        handler: Callable[[bytes], bytes] | None = None,
        split: Callable[[bytearray], bytes | None] | None = None,
    ) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self.payload = payload
        self.period_s = period_s
        self.handler = handler
        self.split = split
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            try:
                if self.handler is None:
                    os.write(self.fd, self.payload)
                    time.sleep(self.period_s)
                    continue
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                buf += os.read(self.fd, 4096)
                assert self.split is not None
                while (request := self.split(buf)) is not None:
                    if reply := self.handler(request):
                        os.write(self.fd, reply)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        with contextlib.suppress(OSError):
            os.close(self.fd)
