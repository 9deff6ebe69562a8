"""Fake serial devices on pty pairs for the driver tests (no hardware needed)."""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path


def garbage_stream(seed: int, chunk_bytes: int = 64) -> Callable[[], bytes]:
    """Fresh random bytes on every call, the same sequence for one seed (wrong baud, noise)."""
    rng = random.Random(seed)
    return lambda: rng.randbytes(chunk_bytes)


class PtyStreamer:
    """A fake streaming device (Innovate, AEM) on a pty master.

    With ``link`` the slave is reached through a symlink that a later device
    re-points, so a driver sees one stable path across an unplug / replug
    (like /dev/serial/by-id/...).
    """

    def __init__(
        self,
        payload: bytes | Callable[[], bytes],
        period_s: float = 0.02,
        link: Path | None = None,
    ) -> None:
        """``payload`` is written every ``period_s``: the same bytes, or a new call's."""
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.link = link
        if link is not None:
            tmp = link.with_suffix(".new")
            os.symlink(self.path, tmp)
            os.replace(tmp, link)
            self.path = str(link)
        self.payload = payload
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                payload = self.payload if isinstance(self.payload, bytes) else self.payload()
                os.write(self.master, payload)
            except OSError:
                return
            time.sleep(self.period_s)

    def unplug(self) -> None:
        """Stop and close both ends: the driver's next read fails like a pulled USB cable.

        The link goes too, as udev removes /dev/serial/by-id/... on unplug: a link left
        dangling at the closed /dev/pts/N would follow whatever pty next gets that number.
        """
        self._stop.set()
        self._thread.join(1.0)
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


Splitter = Callable[[bytearray], bytes | None]
"""Takes one complete request off the front of the buffer (or returns None to wait)."""


def split_cr(buf: bytearray) -> bytes | None:
    """ELM327 framing: a command ends in CR."""
    end = buf.find(b"\r")
    if end < 0:
        return None
    request = bytes(buf[:end])
    del buf[: end + 1]
    return request


class PtyResponder:
    """A fake request/response device (ELM327, Speeduino) on a pty master.

    ``handler(request) -> reply bytes`` answers each request the splitter cuts
    off the input; ``requests`` records them so tests can assert what was sent.
    """

    def __init__(
        self,
        handler: Callable[[bytes], bytes],
        split: Splitter = split_cr,
        write_chunk: int = 0,
        write_gap_s: float = 0.0,
    ) -> None:
        """``write_chunk`` > 0 sends each reply in pieces that size (1 = byte at a time)."""
        self.master, self.slave = os.openpty()
        self.write_chunk = write_chunk
        self.write_gap_s = write_gap_s
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.handler = handler
        self.split = split
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while (request := self.split(buf)) is not None:
                self.requests.append(request)
                reply = self.handler(request)
                if reply:
                    step = self.write_chunk or len(reply)
                    try:
                        for i in range(0, len(reply), step):
                            os.write(self.master, reply[i : i + step])
                            if self.write_gap_s:
                                time.sleep(self.write_gap_s)
                    except OSError:
                        return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
