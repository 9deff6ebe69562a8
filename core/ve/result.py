"""The VE correction result and its exports: JSON contract, CSV, paste block, text, .msq.

``VeResult`` is what other parts consume (the fleet records of issue 15 take
``ve_base`` / ``ve_new`` per table from it). The JSON contract is documented in
``docs/VE.md``; rows are MAP (ascending), columns rpm (ascending), NaN is ``null``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.tune import Tune, TuneError, msq_bytes, paste_block
from core.ve.correct import VeTableResult
from core.ve.knock import KnockResult, advised_spark, describe

JSON_FORMAT = "dynoai-ve"
JSON_VERSION = 1
TABLE_LABEL = {"ve": "front", "ve_rear": "rear"}


@dataclass(frozen=True)
class VeResult:
    """A corrected tune: one result per VE table, the knock table, and where it came from.

    Attributes:
        base: The tune that was corrected.
        tables: ``{"ve": ...}`` plus ``{"ve_rear": ...}`` on a twin with two tables.
        knock: Knock evidence and timing advice on the same axes (None without knock data).
        runs: Logs the evidence came from.
        notes: Things the tuner should know (missing logs, a channel not found ...).
        warnings: The notes that say a log was not what it should be (a truncated or
            damaged file, no wideband): the command prints each as a warning line.
        without_lambda: Runs that had no lambda reading (they corrected nothing).
    """

    base: Tune
    tables: dict[str, VeTableResult]
    knock: KnockResult | None = None
    runs: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    without_lambda: tuple[str, ...] = field(default_factory=tuple)

    @property
    def twin(self) -> bool:
        return "ve_rear" in self.tables

    def corrected_tune(self) -> Tune:
        front = self.tables["ve"].ve_new
        rear = self.tables["ve_rear"].ve_new if self.twin else None
        return self.base.with_ve(front, rear)

    def msq(self) -> bytes:
        """The corrected tune as ``.msq`` bytes (the original file with new VE numbers)."""
        return msq_bytes(self.corrected_tune())

    def knock_msq(self) -> bytes:
        """The tune with the knock advice applied to its spark table (nothing else changed)."""
        if self.knock is None:
            raise TuneError("no knock data")
        if self.base.spark is None or self.base.kind != "msq":
            raise TuneError(
                f"{self.base.source or 'the tune'} has no spark table to write advice into"
            )
        spark = advised_spark(self.base.spark, self.knock)
        return msq_bytes(replace(self.base, spark=spark), keys=("spark",))

    # -- exports ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        front = self.tables["ve"]
        out: dict[str, Any] = {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "source": self.base.source,
            "cylinder": "front" if self.twin else "all",
            "rpm_axis": [float(v) for v in front.axes.rpm],
            "map_axis": [float(v) for v in front.axes.map_kpa],
            **_table_json(front),
            "runs": list(self.runs),
            "notes": list(self.notes),
        }
        if self.twin:
            out["rear"] = _table_json(self.tables["ve_rear"])
        if self.knock is not None:
            out["knock"] = knock_json(self.knock)
        return out

    def to_csv(self) -> str:
        """One row per cell and table: the long form spreadsheets and pandas like."""
        buf = io.StringIO()
        buf.write(
            "table,rpm,map_kpa,ve_base,ve_new,change_pct,confidence,hits,locked,extrapolated,reason\n"
        )
        for key, t in self.tables.items():
            label = TABLE_LABEL[key] if self.twin else "ve"
            for m, map_kpa in enumerate(t.axes.map_kpa):
                for r, rpm in enumerate(t.axes.rpm):
                    buf.write(
                        f"{label},{rpm:g},{map_kpa:g},{t.ve_base[m, r]:.2f},{t.ve_new[m, r]:.2f},"
                        f"{t.change_pct[m, r]:.2f},{t.confidence[m, r]:.3f},{int(t.hits[m, r])},"
                        f"{int(t.locked[m, r])},{int(t.extrapolated[m, r])},{t.reason[m, r]}\n"
                    )
        return buf.getvalue()

    def to_tsv(self, decimals: int = 1) -> str:
        """The new VE as paste blocks (values only, highest MAP row first)."""
        if not self.twin:
            return paste_block(self.tables["ve"].ve_new, decimals)
        return "\n".join(
            f"# {TABLE_LABEL[k]} VE\n" + paste_block(t.ve_new, decimals)
            for k, t in self.tables.items()
        )

    def summary_lines(self) -> list[str]:
        lines = [f"VE correction of {self.base.source or 'the tune'} from {len(self.runs)} log(s)"]
        for key, t in self.tables.items():
            s = t.summary()
            label = f"{TABLE_LABEL[key]} " if self.twin else ""
            line = (
                f"{label}VE: {s['changed']} of {s['cells']} cells changed, "
                f"mean {s['mean_abs_change_pct']:.1f} %, max {s['max_abs_change_pct']:.1f} %"
            )
            largest = s["largest"]
            if isinstance(largest, dict):
                line += f" ({largest['change_pct']:+.1f} % at {largest['rpm']:.0f} rpm / {largest['map_kpa']:.0f} kPa)"
            lines.append(line)
            held = s["held_back"]
            if isinstance(held, dict) and held:
                lines.append(
                    "  held back: "
                    + ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in held.items())
                )
            extras = []
            if s["clipped"]:
                extras.append(f"{s['clipped']} limited to +-{t.settings.max_change_pct:g} %")
            if s["extrapolated"]:
                extras.append(f"{s['extrapolated']} extrapolated")
            extras.append(f"{s['no_data']} without data")
            lines.append("  " + ", ".join(extras))
        if self.knock is not None:
            lines.extend(describe(self.knock))
        lines.extend(f"note: {n}" for n in self.notes)
        return lines


def _rows(a: np.ndarray, decimals: int | None = 2) -> list[list[Any]]:
    out: list[list[Any]] = []
    for row in a.tolist():
        cells: list[Any] = []
        for v in row:
            if isinstance(v, float):
                cells.append(
                    None
                    if not math.isfinite(v)
                    else (round(v, decimals) if decimals is not None else v)
                )
            else:
                cells.append(v)
        out.append(cells)
    return out


def _table_json(t: VeTableResult) -> dict[str, Any]:
    return {
        "ve_base": _rows(t.ve_base, 3),
        "ve_new": _rows(t.ve_new, 3),
        "change_pct": _rows(t.change_pct, 2),
        "confidence": _rows(t.confidence, 3),
        "locked": t.locked.tolist(),
        "extrapolated": t.extrapolated.tolist(),
        "reason": t.reason.tolist(),
        "hits": t.hits.tolist(),
        "summary": t.summary(),
    }


def knock_json(k: KnockResult) -> dict[str, Any]:
    return {
        "rpm_axis": [float(v) for v in k.axes.rpm],
        "map_axis": [float(v) for v in k.axes.map_kpa],
        "events": k.events.tolist(),
        "max_retard_deg": _rows(k.max_retard_deg, 2),
        "advice_deg": _rows(k.advice_deg, 1),
        "confidence": _rows(k.confidence, 2),
        "summary": k.summary(),
    }


def knock_csv(k: KnockResult) -> str:
    buf = io.StringIO()
    buf.write("rpm,map_kpa,events,max_retard_deg,advice_deg,confidence\n")
    for m, map_kpa in enumerate(k.axes.map_kpa):
        for r, rpm in enumerate(k.axes.rpm):
            buf.write(
                f"{rpm:g},{map_kpa:g},{int(k.events[m, r])},{k.max_retard_deg[m, r]:.1f},"
                f"{k.advice_deg[m, r]:.1f},{k.confidence[m, r]:.2f}\n"
            )
    return buf.getvalue()


def knock_tsv(k: KnockResult) -> str:
    """Timing advice (degrees to add; negative = retard) as a paste block for a trim table."""
    return paste_block(k.advice_deg, 1)


__all__ = ["JSON_FORMAT", "JSON_VERSION", "VeResult", "knock_csv", "knock_json", "knock_tsv"]
