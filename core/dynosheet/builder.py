"""Live and offline feed of the dyno sheet: recent fused rows cut into a sheet per pull.

Split out of the dyno sheet: :class:`SheetTap` wraps the session's tracker so
the builder sees exactly the fused blocks and pull events the tracker sees
(nothing re-fused or re-detected), and :class:`DynoSheetBuilder` keeps the last
``KEEP_S`` seconds of rows and cuts a :class:`~core.dynosheet.sheet.PullSheet`
at each WOT ``pull_stop``. Building the curves is :func:`~core.dynosheet.sheet.pull_sheet`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import STOICH_GASOLINE
from core.dynosheet.correction import CORRECTIONS
from core.dynosheet.sheet import DEFAULT_SMOOTHING_RPM, PullSheet, pull_sheet
from core.frames import Block
from core.source import SourceEvent
from core.window import RowWindow, merge

F64 = npt.NDArray[np.float64]

KEEP_S = 180.0
"""Seconds of fused rows kept for the pull in progress (a WOT pull lasts < 30 s)."""
_CHANNELS = (
    "rpm", "power_hp", "torque_nm", "lambda", "drum_speed_kph", "baro_kpa", "iat_c",
    "humidity_pct",
)  # fmt: skip


class DynoSheetBuilder:
    """Keeps the recent fused rows and cuts a :class:`PullSheet` at each WOT ``pull_stop``.

    Fed from the engine thread; ``pulls`` is an immutable tuple swapped by
    reference, so the UI reads it from its own thread without a lock.
    """

    def __init__(
        self,
        *,
        stoich: float = STOICH_GASOLINE,
        smoothing_rpm: float = DEFAULT_SMOOTHING_RPM,
        correction: str = "sae",
        humidity_pct: float | None = None,
    ) -> None:
        if correction not in CORRECTIONS:
            raise ValueError(f"correction {correction!r} is not one of {', '.join(CORRECTIONS)}")
        self.stoich = stoich
        self.smoothing_rpm = smoothing_rpm
        self.correction = correction
        self.humidity_pct = humidity_pct
        self.pulls: tuple[PullSheet, ...] = ()
        self._rows = RowWindow(KEEP_S)

    def reset(self) -> None:
        """A replay seek: the data restarts, and so do the pulls."""
        self._rows.clear()
        self.pulls = ()

    def feed(
        self, block: Block, events: Iterable[SourceEvent] = (), *, cut_short: bool = False
    ) -> list[PullSheet]:
        """Take fused rows and the events the detector emitted for them; return new sheets.

        ``cut_short``: these events close pulls because the data ended, not the pull.
        """
        if len(block):
            cols = {"t": block.t}
            for name in _CHANNELS:
                if name in block.columns:
                    cols[name] = block.columns[name]
            self._rows.add(cols)
            self._rows.trim(float(block.t[-1]))
        made = []
        for event in events:
            if event.kind == "pull_stop" and event.data.get("test_type") == "wot_pull":
                t0 = float(event.data.get("t_start", event.t))
                sheet = self._cut(t0, event.t, cut_short)
                if sheet is not None:
                    made.append(sheet)
                    self.pulls = (*self.pulls, sheet)
        return made

    def _cut(self, t0: float, t1: float, cut_short: bool) -> PullSheet | None:
        pieces = [r for r in self._rows.pieces() if r["t"][-1] >= t0 and r["t"][0] <= t1]
        if not pieces:
            return None
        cols: dict[str, F64] = merge(pieces)
        sel = (cols["t"] >= t0) & (cols["t"] <= t1)
        cols = {k: v[sel] for k, v in cols.items()}
        if "rpm" not in cols:
            return None
        return pull_sheet(
            len(self.pulls) + 1,
            cols,
            stoich=self.stoich,
            smoothing_rpm=self.smoothing_rpm,
            correction=self.correction,
            humidity_pct=self.humidity_pct,
            cut_short=cut_short,
        )


class SheetTap:
    """Wraps the session's tracker: every fused block and pull event also feeds a builder.

    The engine calls ``on_rows`` with the fused, filtered rows; the wrapped
    tracker detects pulls there, and the tap passes the same rows and events on.
    Everything else is the wrapped tracker's.
    """

    def __init__(self, inner: Any, builder: DynoSheetBuilder) -> None:
        self.inner = inner
        self.sheet = builder

    def on_rows(self, block: Block, result: Any, grid: Any) -> list[SourceEvent]:
        events: list[SourceEvent] = self.inner.on_rows(block, result, grid)
        self.sheet.feed(block, events)
        return events

    def restart_run(self) -> None:
        self.sheet.reset()
        self.inner.restart_run()

    def finish(self, grid: Any, stats: Mapping[str, object]) -> None:
        self.close_open_test()
        self.inner.finish(grid, stats)

    def close_open_test(self) -> list[SourceEvent]:
        """The data has ended: the pull in progress goes on the sheet, cut short.

        It is closed by the tracker (the test it closes was cut part-way: kept, not
        checked), or by its detector. The engine calls this when a replay's log ends
        (``Session._end_of_data``), with the dashboard still open, and :meth:`finish`
        again at the stop, when there is nothing left to close. Delegated to the
        tracker as the other hooks are, the pull the log ended in never reached the sheet.
        """
        close = getattr(self.inner, "close_open_test", None)
        if close is not None:
            events: list[SourceEvent] = close()
        else:
            events = self.inner.detector.flush() if hasattr(self.inner, "detector") else []
        for event in events:
            self.sheet.feed(Block("fused", np.empty(0), {}), [event], cut_short=True)
        return events

    def plan(self, grid: Any, values: Mapping[str, float], *, final: bool = False) -> Any:
        return self.inner.plan(grid, values, final=final)

    def checkpoint(self, grid: Any) -> None:
        self.inner.checkpoint(grid)

    def set_constraints(self, constraints: Any) -> None:
        self.inner.set_constraints(constraints)

    def __getattr__(self, name: str) -> Any:
        # Everything the tap does not change is the wrapped tracker's (checked
        # predictions, calibration, warm-up of the candidate models, ...).
        return getattr(self.inner, name)

    @property
    def pulls_done(self) -> int:
        return int(self.inner.pulls_done)

    @property
    def pulls_max(self) -> int | None:
        return self.inner.pulls_max
