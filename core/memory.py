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
import mmap
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

MMAP_THRESHOLD = 128 * 1024
"""Allocations from this size get their own mapping, unmapped when freed, when
no free chunk and not the top of the heap can hold them (glibc's initial value,
held fixed: see :func:`configure_allocator`; :func:`mapped_buffer` maps always)."""
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number (glibc ``malloc.h``)."""

MAPPED_MIN_BYTES = 64 * 1024
"""Buffers from this size that live for seconds to minutes get their own mapping
(:func:`mapped_buffer`): at most 1/16 of such a buffer is lost to page rounding."""

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
    middle of it and leave holes; held at 128 kB those the heap has no room for
    are mapped and unmapped whole. Measured at 10 min of the 1 kHz soak: heap 49 MB instead of 59 MB for
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


def mapped_buffer(nbytes: int) -> npt.NDArray[np.uint8]:
    """A writable byte array in a mapping of its own, unmapped with its last view.

    Measured in issue 10's soak (``malloc_info`` of the 1 kHz headless run): the
    row windows' chunks (130-200 kB, kept 3-5 minutes) were not mapped on their own
    although they are above the mmap threshold, because glibc only maps a request
    when no free chunk and not the top of the heap can hold it, and a thread's heap
    nearly always can. So ~35 MB of minutes-old chunks sat in the engine thread's
    heap between short-lived arrays, and every chunk dropped left a hole that later
    allocations only partly filled: the heap, and the resident size, crept up
    through the hour. Mapped here, a dropped chunk goes back to the system whole, on
    any C library.
    """
    if nbytes <= 0:
        return np.empty(0, dtype=np.uint8)
    if sys.platform == "win32":  # pragma: no cover - anonymous mappings take no flags there
        area = mmap.mmap(-1, nbytes)
    else:
        area = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(area, dtype=np.uint8)
