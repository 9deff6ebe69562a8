"""RowWindow: recent rows merged into one-second chunks (issue 10's soak).

Kept one piece per engine tick, the pull tracker's 5-minute window held ~10,000
pieces at 33 ticks/s; the array headers, not the samples, were most of its memory
and it followed the machine's load. Merged, the window holds a few hundred chunks
whatever the tick rate, and the rows it returns are the same.
"""

from __future__ import annotations

import numpy as np

from core.window import RowWindow, merge


def feed(window: RowWindow, tick_s: float, seconds: float, rate_hz: float = 100.0) -> np.ndarray:
    """Pieces of ``tick_s`` of rows at ``rate_hz``; returns every time fed."""
    t = np.arange(0.0, seconds, 1.0 / rate_hz)
    step = max(1, round(tick_s * rate_hz))
    for i in range(0, t.size, step):
        part = t[i : i + step]
        window.add({"t": part, "tk": part[::2], "cell": (part[::2] * 10).astype(np.int64)})
        window.trim(float(part[-1]))
    return t


def test_rows_are_kept_in_order_and_trimmed_by_their_last_time() -> None:
    window = RowWindow(keep_s=30.0)
    t = feed(window, tick_s=0.03, seconds=100.0)
    got = merge(window.pieces())
    newest = t[-1]
    assert np.all(np.diff(got["t"]) > 0) and got["t"][-1] == newest
    # every row of the last 30 s is there, and at most one window chunk more
    assert got["t"][0] <= newest - 30.0 < got["t"][0] + window.max_chunk_s + 1.1
    assert np.array_equal(got["t"], t[t >= got["t"][0]])
    assert np.array_equal(got["cell"], (got["tk"] * 10).astype(np.int64))


def test_the_number_of_pieces_does_not_follow_the_tick_rate() -> None:
    fast, slow = RowWindow(keep_s=300.0), RowWindow(keep_s=300.0)
    feed(fast, tick_s=0.01, seconds=400.0)
    feed(slow, tick_s=0.1, seconds=400.0)
    # one piece per tick would be 30,000 and 3,000; merged: a few dozen chunks, the small
    # chunks of the last 10 s and the pieces of the last second
    assert len(fast) <= 310 / fast.max_chunk_s + 10 / 0.64 + 64 + 2
    assert len(slow) <= 310 / slow.max_chunk_s + 10 + 10 + 2
    assert np.array_equal(merge(fast.pieces())["t"][-30000:], merge(slow.pieces())["t"][-30000:])


def test_a_column_missing_from_a_piece_is_nan_there() -> None:
    window = RowWindow(keep_s=10.0, chunk_pieces=2, chunk_bytes=1)
    window.add({"t": np.array([0.0, 0.1]), "rpm": np.array([1000.0, 1100.0])})
    window.add({"t": np.array([0.2]), "rpm": np.array([1200.0]), "power_hp": np.array([50.0])})
    (chunk,) = window.pieces()
    assert np.array_equal(chunk["power_hp"], [np.nan, np.nan, 50.0], equal_nan=True)
    assert np.array_equal(chunk["rpm"], [1000.0, 1100.0, 1200.0])


def test_a_chunk_is_one_allocation_so_a_1khz_window_chunk_is_mapped_and_freed_whole() -> None:
    """Issue 10's soak: each column its own ~8 kB array left the heap holed as the windows
    dropped minutes-old rows; one buffer per chunk in a mapping of its own (glibc's mmap
    threshold alone left these chunks in the engine thread's heap: ``malloc_info``
    showed ~35 MB of them there) goes back to the system whole."""
    import mmap

    from core.memory import MMAP_THRESHOLD

    window = RowWindow(keep_s=30.0)
    t = np.arange(0.0, 20.0, 0.001)
    for i in range(0, t.size, 30):  # 30-ms ticks at 1 kHz, the tracker's three columns
        part = t[i : i + 30]
        window.add({"t": part, "tk": part[::2], "cell": np.arange(part[::2].size)})
        window.trim(float(part[-1]))
    chunks = window.pieces()
    first = chunks[0]
    (_one_buffer,) = {id(v.base) for v in first.values()}
    buffer = first["t"].base
    assert buffer is not None and buffer.nbytes >= MMAP_THRESHOLD
    assert isinstance(buffer.base, memoryview) and isinstance(buffer.base.obj, mmap.mmap)
    assert first["t"][-1] - first["t"][0] < 10.0  # reached by bytes, before max_chunk_s
    assert first["cell"].dtype == np.int64
    for v in first.values():
        assert v.ctypes.data % 8 == 0
    got = merge(chunks)
    assert np.array_equal(got["t"], t)  # 20 s < keep_s: every row, in order
    assert np.array_equal(got["tk"], t[::2])
