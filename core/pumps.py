"""Pump threads: each source read on its own thread into one bounded queue.

Decision: blocking device I/O never reaches the engine tick. Each source gets a
daemon thread that reads it and puts ``(source, block)`` on one bounded queue
(back-pressure instead of unbounded memory when the engine falls behind); a
replay source that jumped (seek) puts :data:`RESET` so the engine rebuilds from
scratch. A driver error marks that source FAILED and ends its thread only; the
session goes on with the others. The engine takes at most what is queued *now*
per tick (:meth:`SourcePumps.take`), so a source faster than the engine cannot
starve the tick of publishing, planning and flushing. A block a pump has read when
the stop comes is kept for the stop's last :meth:`SourcePumps.take`, not dropped: it
was taken off the device, so it belongs in the grid and the recording.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from core.source import Source, SourceError, SourceState

RESET = object()
"""Queue sentinel: a replay source jumped (seek), rebuild from scratch."""


class SourcePumps:
    """The pump threads of one session and the queue they fill.

    Args:
        stop: Set to stop the pumps (the session's stop event, shared with its engine).
        maxsize: Bound of the queue, in blocks.
    """

    def __init__(self, stop: threading.Event, maxsize: int = 512) -> None:
        self._stop = stop
        self._queue: queue.Queue[tuple[Source, Any]] = queue.Queue(maxsize=maxsize)
        self._threads: dict[int, threading.Thread] = {}
        """Pump thread by id of its source."""
        self._late: list[tuple[Source, Any]] = []
        """Blocks read when the stop came (the queue is no longer waited on then)."""
        self._late_lock = threading.Lock()

    def start(self, sources: Sequence[Source]) -> None:
        """One daemon thread per source."""
        for src in sources:
            th = threading.Thread(
                target=self._pump, args=(src,), name=f"pump-{src.name}", daemon=True
            )
            th.start()
            self._threads[id(src)] = th

    def join(self, timeout: float = 2.0) -> None:
        """Wait for the pump threads to end (after the stop event is set)."""
        for th in self._threads.values():
            th.join(timeout=timeout)

    def running(self, src: Source) -> bool:
        """Whether ``src``'s pump thread is still alive (it may be inside ``read``)."""
        th = self._threads.get(id(src))
        return th is not None and th.is_alive()

    def empty(self) -> bool:
        with self._late_lock:
            return self._queue.empty() and not self._late

    def take(self) -> Iterator[tuple[Source, Any]]:
        """What is queued now, in arrival order; blocks that arrive meanwhile wait."""
        for _ in range(max(self._queue.qsize(), 1)):
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                break
        with self._late_lock:
            late, self._late = self._late, []
        yield from late

    def _pump(self, src: Source) -> None:
        generation = getattr(src, "generation", 0)
        while not self._stop.is_set():
            try:
                blk = src.read(0.1)
            except SourceError as exc:
                src.set_status(SourceState.FAILED, str(exc))
                return
            except Exception as exc:  # a driver bug must not take the session down
                src.set_status(SourceState.FAILED, f"driver error: {exc!r}")
                return
            gen = getattr(src, "generation", 0)
            if gen != generation:
                generation = gen
                if not self._put((src, RESET)):
                    return  # stopped at a jump: what follows it is of a run never started
            if blk is None:
                if (
                    src.status.state is SourceState.FINISHED
                    and getattr(src, "control", None) is None
                ):
                    return  # a seekable replay stays alive: the user may seek back after the end
                continue
            self._put((src, blk))

    def _put(self, item: tuple[Source, Any]) -> bool:
        """Queue ``item``; False once stopped (a block is then kept for the last take)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        if item[1] is not RESET:
            with self._late_lock:
                self._late.append(item)
        return False
