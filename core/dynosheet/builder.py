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
from core.plan.pulls import IDLE_RPM_MAX, MIN_RISE_RPM
from core.source import SourceEvent
from core.window import RowWindow, merge

F64 = npt.NDArray[np.float64]

KEEP_S = 180.0
"""Seconds of fused rows kept for the pull in progress (a WOT pull lasts < 30 s)."""
_CHANNELS = (
    "rpm", "power_hp", "torque_nm", "lambda", "drum_speed_kph", "baro_kpa", "iat_c",
    "ambient_c", "humidity_pct",
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

    def manual_pull(self, t0: float, t1: float) -> tuple[PullSheet | None, str]:
        """A pull the tuner marked from ``t0`` to ``t1``: its sheet, or why it is not kept.

        Kept as a detected WOT pull is (``core.plan.pulls``): the rpm must rise at least
        ``MIN_RISE_RPM`` from the mark; the sheet runs from the mark to the top rpm. The
        reason is one line for the dashboard's toast: a mark at idle was dropped with
        only "Pull stopped", the count unchanged and no sheet.
        """
        cols = self._columns(t0, t1)
        rpm = cols.get("rpm", np.empty(0))
        good = np.flatnonzero(np.isfinite(rpm))
        if good.size < 2:
            return None, "no engine data (rpm) between start and stop"
        first, top = float(rpm[good[0]]), float(rpm[good].max())
        if top < IDLE_RPM_MAX:
            return None, (
                f"the engine idled at {first:.0f} rpm (a pull must gain {MIN_RISE_RPM:.0f} rpm)"
            )
        if top - first < MIN_RISE_RPM:
            return None, (
                f"rpm never rose above {top:.0f} (from {first:.0f}; a pull must gain "
                f"{MIN_RISE_RPM:.0f} rpm)"
            )
        end = int(good[np.argmax(rpm[good])]) + 1
        sheet = pull_sheet(
            len(self.pulls) + 1,
            {k: v[:end] for k, v in cols.items()},
            stoich=self.stoich,
            smoothing_rpm=self.smoothing_rpm,
            correction=self.correction,
            humidity_pct=self.humidity_pct,
        )
        if sheet is None:
            return None, "too few rpm points for a dyno sheet"
        self.pulls = (*self.pulls, sheet)
        return sheet, ""

    def _columns(self, t0: float, t1: float) -> dict[str, F64]:
        """The kept rows from ``t0`` to ``t1``, by channel (empty when none are kept)."""
        pieces = [r for r in self._rows.pieces() if r["t"][-1] >= t0 and r["t"][0] <= t1]
        if not pieces:
            return {}
        cols: dict[str, F64] = merge(pieces)
        sel = (cols["t"] >= t0) & (cols["t"] <= t1)
        return {k: v[sel] for k, v in cols.items()}

    def _cut(self, t0: float, t1: float, cut_short: bool) -> PullSheet | None:
        cols = self._columns(t0, t1)
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

    def manual_pull(self, t0: float | None, t1: float) -> str:
        """The tuner marked a pull by hand (``p``) from ``t0`` to ``t1``: what became of it.

        One line for the dashboard's toast (``Session.mark``). A pull the detector found
        (at WOT) is counted once, as that one; one marked where the rpm rose as a pull's
        does is kept: counted, and drawn on the sheet; any other is dropped, saying why.
        Before, every manual pull was dropped in silence ("Pull stopped", count unchanged).
        """
        detector = getattr(self.inner, "detector", None)
        running = detector is not None and detector.current_test == "wot_pull"
        if running:
            return (
                f"Pull stopped: the WOT pull under way is found at WOT and counted "
                f"(pull {self.pulls_done})"
            )
        if t0 is None:
            return "Pull stopped: no pull was marked (p marks its start)"
        for done in self.sheet.pulls:
            if done.t_start <= t1 and done.t_stop >= t0:
                return f"Pull stopped: already counted as pull {done.index}, found at WOT"
        sheet, why = self.sheet.manual_pull(t0, t1)
        if sheet is None:
            return f"Pull stopped: not kept, {why}"
        count = getattr(self.inner, "count_manual_pull", None)
        if count is not None:
            count()
        return (
            f"Pull stopped: kept as pull {sheet.index}, {sheet.rpm[0]:.0f}-{sheet.rpm[-1]:.0f}"
            f" rpm in {sheet.t_stop - sheet.t_start:.1f} s"
        )

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
