"""Knock table: events and the largest retard per cell, with timing advice.

Advice is conservative and only where knock was *seen* (an event whose nearest
cell this is): take out at least what the ECU's knock control had to pull there,
rounded up to the next half degree, never less than 1 degree and never more than
``MAX_ADVICE_DEG`` in one step (past that the fuel, the IAT or a sensor wants
looking at before more timing comes out). Confidence grows with the number of
events: one event is a hint (0.33), three or more in the cell are a pattern (1.0).
Cells without knock get no advice; dynoai never advises *adding* timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.coverage.axes import TableAxes
from core.tune import Table

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MAX_ADVICE_DEG = 4.0
MIN_ADVICE_DEG = 1.0
EVENTS_FOR_FULL_CONFIDENCE = 3


@dataclass(frozen=True)
class KnockResult:
    """Per-cell knock evidence and advice (arrays shaped like the table, rows = MAP)."""

    axes: TableAxes
    events: I64
    max_retard_deg: F64
    advice_deg: F64
    """Timing change to make, degrees (negative = retard; 0 = leave it)."""
    confidence: F64

    def summary(self) -> dict[str, object]:
        seen = self.events > 0
        cells = [
            {
                "rpm": float(self.axes.rpm[r]),
                "map_kpa": float(self.axes.map_kpa[m]),
                "events": int(self.events[m, r]),
                "max_retard_deg": round(float(self.max_retard_deg[m, r]), 1),
                "advice_deg": float(self.advice_deg[m, r]),
                "confidence": round(float(self.confidence[m, r]), 2),
            }
            for m, r in zip(*np.nonzero(seen), strict=True)
        ]
        cells.sort(key=lambda c: (-int(c["events"]), -float(c["max_retard_deg"])))
        return {
            "cells_with_knock": int(np.count_nonzero(seen)),
            "events": int(self.events.sum()),
            "cells": cells,
        }


def advise(axes: TableAxes, events: I64, max_retard_deg: F64) -> KnockResult:
    """Timing advice from per-cell knock events and max retard (see the module docstring)."""
    ev = np.asarray(events, dtype=np.int64)
    ret = np.nan_to_num(np.asarray(max_retard_deg, dtype=np.float64), nan=0.0)
    seen = ev > 0
    step = np.ceil(np.maximum(ret, MIN_ADVICE_DEG) * 2.0) / 2.0
    advice = np.where(seen, -np.minimum(step, MAX_ADVICE_DEG), 0.0)
    confidence = np.where(seen, np.minimum(ev / EVENTS_FOR_FULL_CONFIDENCE, 1.0), 0.0)
    return KnockResult(axes, ev, ret, advice + 0.0, confidence)


def advised_spark(spark: Table, knock: KnockResult) -> Table:
    """The spark table with the advice applied at the nearest spark cell of each knock cell.

    The spark table may have its own axes; where several knock cells land on one spark
    cell the largest retard wins.
    """
    change = np.zeros(spark.axes.shape)
    for m, r in zip(*np.nonzero(knock.advice_deg < 0.0), strict=True):
        sm, sr = spark.axes.nearest(knock.axes.rpm[r], knock.axes.map_kpa[m])
        if int(sm) >= 0:
            change[int(sm), int(sr)] = min(change[int(sm), int(sr)], float(knock.advice_deg[m, r]))
    return spark.with_values(spark.values + change)


def describe(result: KnockResult, limit: int = 8) -> list[str]:
    """Plain lines for a tuner: where knock was seen and what to do."""
    s = result.summary()
    if not s["cells_with_knock"]:
        return ["knock: none seen"]
    lines = [f"knock: {s['events']} event(s) in {s['cells_with_knock']} cell(s)"]
    for c in s["cells"][:limit]:  # type: ignore[index]
        lines.append(
            f"  {c['rpm']:.0f} rpm / {c['map_kpa']:.0f} kPa: {c['events']} event(s), up to "
            f"{c['max_retard_deg']:.1f} deg pulled -> retard {abs(c['advice_deg']):.1f} deg "
            f"(confidence {c['confidence']:.2f})"
        )
    more = int(s["cells_with_knock"]) - limit  # type: ignore[call-overload]
    if more > 0:
        lines.append(f"  ... and {more} more cell(s)")
    return lines


__all__ = ["KnockResult", "advise", "advised_spark", "describe"]
