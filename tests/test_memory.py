"""Handing the allocator's free pages back during a long run (issue 10's soak, core.memory)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.memory import TRIM_INTERVAL_S, can_release, mapped_buffer, release_free_memory
from core.session import Session
from tests.test_session import ScriptedSource, sweep_blocks


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and can_release()), reason="needs glibc's malloc_trim"
)
def test_free_pages_between_live_objects_are_returned() -> None:
    """The soak's pattern: freed buffers between small survivors stay resident until trimmed.

    48 MB of 8 kB buffers (a second of 1 kHz rows is one such column) are freed while
    a 1 kB object allocated after each survives: glibc can return nothing from the top
    of the heap, so the resident size keeps the 48 MB; the trim gives most of it back.
    """
    big, small = [], []
    for _ in range(6000):
        big.append(bytearray(8192))
        small.append(bytearray(1024))
    del big
    before = _rss_mb()
    assert release_free_memory()
    after = _rss_mb()
    assert before - after >= 20.0, (before, after)
    del small


def test_session_trims_on_its_clock() -> None:
    """The engine hands free pages back every TRIM_INTERVAL_S of its clock, not per tick,
    with the session lock free (a UI command must not wait out the trim)."""
    now = [0.0]
    calls: list[float] = []
    lock_free: list[bool] = []

    def release() -> None:
        calls.append(now[0])
        probe = threading.Thread(target=lambda: lock_free.append(_try_lock(session)))
        probe.start()
        probe.join()

    src = ScriptedSource(sweep_blocks(seconds=2.0), realtime=False)
    session = Session([src], clock=lambda: now[0], release_memory=release)
    session.open_sources()
    for step in range(int(5 * TRIM_INTERVAL_S)):  # one tick per clock second
        now[0] = float(step)
        session._tick()
    session.stop()
    assert calls == [TRIM_INTERVAL_S * k for k in range(1, 5)]
    assert lock_free == [True] * 4


def _try_lock(session: Session) -> bool:
    got = session._lock.acquire(blocking=False)
    if got:
        session._lock.release()
    return got


def test_a_failing_trim_is_an_alarm_not_a_dead_engine() -> None:
    """Outside the tick's lock the trim keeps the tick's containment: noted, engine goes on."""
    now = [0.0]

    def release() -> None:
        raise OSError("malloc_trim failed")

    src = ScriptedSource(sweep_blocks(seconds=2.0), realtime=False)
    session = Session([src], clock=lambda: now[0], release_memory=release)
    session.open_sources()
    for step in range(int(2 * TRIM_INTERVAL_S)):
        now[0] = float(step)
        session._tick()
    session.stop()
    assert "memory trim" in session.faults  # said like every contained engine error


_MAPPED_AFTER_BIG_FREE = """
import ctypes, sys
from core.memory import configure_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert configure_allocator()
big = bytearray(4 << 20)
del big  # glibc's dynamic threshold rises to the size of this freed mapped block
before = libc.mallinfo2().hblkhd
blocks = [bytearray(1 << 20) for _ in range(4)]
print((libc.mallinfo2().hblkhd - before) >> 20)
"""


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and can_release()), reason="needs glibc's mallopt"
)
def test_mmap_threshold_stays_fixed() -> None:
    """Blocks of 128 kB and more keep their own mapping after a bigger one was freed.

    A fresh interpreter each: by default glibc raises its threshold to the size of a
    freed mapped block, so once a 4 MB array was freed the 1 MB ones come from the
    heap (0 MB mapped); held fixed they are mapped (and unmapped when freed).
    """
    root = Path(__file__).resolve().parent.parent

    def mapped_mb(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _MAPPED_AFTER_BIG_FREE, mode],
            cwd=root, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return int(out.stdout.strip())

    assert mapped_mb("dynamic") == 0
    assert mapped_mb("fixed") >= 4


def _mapped(address: int) -> bool:
    with open("/proc/self/maps", encoding="ascii") as fh:
        for line in fh:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                return True
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_mapped_buffer_is_unmapped_when_its_last_view_goes() -> None:
    """The row windows' chunks (core.window.merge) live in such a buffer: a view on a
    column keeps the mapping, and dropping the last view hands it back whole."""
    import numpy as np

    buf = mapped_buffer(200_000)
    assert buf.flags.writeable and buf.nbytes == 200_000
    column = buf[16:816].view(np.float64)
    column[:] = 2.5
    address = buf.ctypes.data
    del buf
    assert _mapped(address) and float(column.sum()) == 250.0
    del column
    assert not _mapped(address)
    assert mapped_buffer(0).nbytes == 0
