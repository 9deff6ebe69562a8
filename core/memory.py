"""Give the C allocator's free pages back to the system during a long run (issue 10).

What the hour-long soak measured (``bench/bench_soak.py``, glibc 2.36, 1 kHz headless):
after the 10-minute warm-up the bytes the program holds stay flat (tracemalloc's
traced total and glibc's ``mallinfo2().uordblks``, ~36 MB), while the heap the
allocator keeps (``arena``) and the free bytes inside it (``fordblks``) keep
creeping up: numpy arrays of a few kB (a second of 1 kHz rows per column) with
lifetimes of seconds to minutes interleave with small long-lived objects, and
glibc returns free memory to the system only from the top of the heap. The
resident size follows the free bytes, not the live ones. ``MALLOC_ARENA_MAX=2``
changed nothing (not a per-thread-arena effect); ``malloc_trim(0)``, which
releases every whole free page inside the heap, took the resident size back to
live + a few MB each time.

:func:`release_free_memory` is that call; the engine (``core.session``) makes it
every :data:`TRIM_INTERVAL_S`. It frees nothing Python holds and moves no object;
it costs a walk over the free lists (about a millisecond for tens of MB). On a C
library without ``malloc_trim`` (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

MMAP_THRESHOLD = 128 * 1024
"""Allocations from this size get their own mapping, unmapped when freed (glibc's
initial value, held fixed: see :func:`configure_allocator`)."""
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number (glibc ``malloc.h``)."""

TRIM_INTERVAL_S = 30.0
"""Seconds between two trims in a live session (free pages pile up over minutes)."""

_GLIBC: Any = None
_LOOKED_UP = False
_CONFIGURED = False


def _glibc() -> Any:
    """The C library with ``malloc_trim`` and ``mallopt`` typed (None: not glibc)."""
    global _GLIBC, _LOOKED_UP
    if not _LOOKED_UP:
        _LOOKED_UP = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.malloc_trim.restype = ctypes.c_int
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.mallopt.restype = ctypes.c_int
            except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
                return None
            _GLIBC = libc
    return _GLIBC


def _malloc_trim() -> Any:
    libc = _glibc()
    return None if libc is None else libc.malloc_trim


def configure_allocator() -> bool:
    """Hold glibc's mmap threshold at 128 kB for the process; True if set (once is enough).

    glibc raises the threshold to the size of each mapped block that is freed (up
    to 32 MB), after which arrays of a few hundred kB (the planner's per-second
    candidate matrices) that no free chunk fits extend the heap, are freed in the
    middle of it and leave holes; held at 128 kB they are mapped and unmapped
    whole. Measured at 10 min of the 1 kHz soak: heap 49 MB instead of 59 MB for
    the same ~36 MB in use.
    """
    global _CONFIGURED
    libc = _glibc()
    if libc is None:
        return False
    if not _CONFIGURED:
        _CONFIGURED = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _CONFIGURED


def can_release() -> bool:
    """True when this C library can hand free heap pages back (glibc's ``malloc_trim``)."""
    return _malloc_trim() is not None


def release_free_memory() -> bool:
    """Return the allocator's whole free pages to the system; True if any were released."""
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
