"""The dyno sheet as ``dynoai report`` prints it: the JSON contract and the text sheet.

Split out of the dyno sheet: rendering is presentation of finished
:class:`~core.dynosheet.sheet.PullSheet` objects; the JSON shape
(``dynoai-dynosheet`` version 1, see docs/report.md) is a contract other tools
read, so it changes here and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.dynosheet.correction import CORRECTION_NAMES
from core.dynosheet.sheet import BIN_RPM, PullSheet


def sheet_to_dict(
    pulls: Sequence[PullSheet], *, source: str, vehicle: str, stoich: float, correction: str
) -> dict[str, Any]:
    """The JSON contract of ``dynoai report --format json`` (see docs/report.md)."""
    return {
        "format": "dynoai-dynosheet",
        "version": 1,
        "source": source,
        "vehicle": vehicle,
        "stoich": stoich,
        "correction": correction,
        "correction_name": CORRECTION_NAMES[correction],
        "bin_rpm": BIN_RPM,
        "smoothing_rpm": pulls[0].smoothing_rpm if pulls else None,
        "pulls": [p.to_dict() for p in pulls],
    }


def sheet_to_text(pulls: Sequence[PullSheet], *, title: str, step_rpm: float = 250.0) -> str:
    """A plain-text dyno sheet: peaks per pull, then each pull's table every ``step_rpm``."""
    if not pulls:
        return f"{title}\nno WOT pull found"
    lines = [title, ""]
    lines.append(" pull  rpm range    peak power      peak torque      AFR range   correction")
    for p in pulls:
        hp, hp_rpm = p.peak("power_hp")
        nm, nm_rpm = p.peak("torque_nm")
        afr = p.afr[np.isfinite(p.afr)]
        afr_range = f"{afr.min():.1f}-{afr.max():.1f}" if afr.size else "--"
        power = f"{hp:6.1f} hp @ {hp_rpm:4.0f}" if hp is not None else "      --        "
        torque = f"{nm:6.1f} Nm @ {nm_rpm:4.0f}" if nm is not None else "      --        "
        cut = " (cut short: the data ended during the pull)" if p.cut_short else ""
        lines.append(
            f" {p.index:4d}  {p.rpm[0]:4.0f}-{p.rpm[-1]:4.0f}  {power}  {torque}  "
            f"{afr_range:>10}   {p.correction.describe()}{cut}"
        )
    smoothing = pulls[0].smoothing_rpm
    lines.append("")
    lines.append(
        f"curves: {BIN_RPM:.0f} rpm bins, smoothed over {smoothing:.0f} rpm"
        if smoothing
        else f"curves: {BIN_RPM:.0f} rpm bins, not smoothed"
    )
    for p in pulls:
        lines.append("")
        lines.append(f"pull {p.index}")
        lines.append("   rpm   power hp  torque Nm    AFR  lambda  drum km/h")
        marks = np.arange(math.ceil(p.rpm[0] / step_rpm) * step_rpm, p.rpm[-1] + 1, step_rpm)
        for mark in marks:
            i = int(np.argmin(np.abs(p.rpm - mark)))
            lines.append(
                f"  {p.rpm[i]:4.0f}  {_fmt(p.power_hp[i], 9, 1)}  {_fmt(p.torque_nm[i], 9, 1)}"
                f"  {_fmt(p.afr[i], 5, 1)}  {_fmt(p.lambda_[i], 6, 3)}  {_fmt(p.drum_kph[i], 9, 1)}"
            )
    return "\n".join(lines)


def _fmt(value: float, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if math.isfinite(value) else "--".rjust(width)
