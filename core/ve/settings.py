"""VE correction settings (vehicle config ``[ve]``): confidence threshold, authority, locks.

Defaults follow what tuners do by hand: change only cells the planner would call
covered (confidence 1.0), never more than 15 % a pass (a base map that is further
off than that wants a second session, not a leap), lock the overrun area (closed
throttle above idle: the wideband reads air there, the filters drop most of it, and
the ECU's decel fuel cut owns it anyway). Idle is not locked by default; tuners who
manage idle with the idle VE or closed loop set ``lock_idle = true``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from core.config import ConfigError


@dataclass(frozen=True)
class VeSettings:
    """How far and where the correction may change the VE table."""

    min_confidence: float = 1.0
    """A cell changes only when its confidence (0..1, the planner's "covered") reaches this."""
    max_change_pct: float = 15.0
    """Authority: no cell moves more than this percent in one pass."""
    lock_idle: bool = False
    """Leave idle cells (rpm <= idle_rpm_max and MAP <= idle_map_max_kpa) alone."""
    idle_rpm_max: float = 1250.0
    idle_map_max_kpa: float = 45.0
    lock_decel: bool = True
    """Leave overrun cells (rpm >= decel_rpm_min and MAP <= decel_map_max_kpa) alone."""
    decel_rpm_min: float = 1750.0
    decel_map_max_kpa: float = 25.0
    locked_cells: tuple[tuple[float, float], ...] = ()
    """Cells the tuner pins, as (rpm, map_kpa) breakpoints (nearest cell)."""
    smooth: bool = False
    """Extend corrections into unvisited neighbours (marked extrapolated)."""
    smooth_rings: int = 1
    """How many cells out from corrected cells smoothing reaches."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            where = f"ve.{f.name}"
            if f.name in ("lock_idle", "lock_decel", "smooth"):
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: expected true or false, got {value!r}")
            elif f.name == "locked_cells":
                object.__setattr__(self, f.name, _cells(value, where))
            elif f.name == "smooth_rings":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                    raise ConfigError(f"{where}: expected a whole number 1..5, got {value!r}")
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{where}: expected a number, got {value!r}")
                if not math.isfinite(value) or value < 0:
                    raise ConfigError(f"{where}: must be a finite number >= 0, got {value!r}")
                object.__setattr__(self, f.name, float(value))
        if self.min_confidence > 1.0:
            raise ConfigError(f"ve.min_confidence: {self.min_confidence:g} is above 1 (0..1)")
        if not 0.0 < self.max_change_pct <= 50.0:
            raise ConfigError(f"ve.max_change_pct: {self.max_change_pct:g} is outside (0, 50]")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> VeSettings:
        if not isinstance(d, Mapping):
            raise ConfigError(f"ve: expected a table of settings, got {d!r}")
        known = {f.name for f in fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"ve.{key}: unknown setting (known: {', '.join(sorted(known))})")
        return cls(**dict(d))


def _cells(value: Any, where: str) -> tuple[tuple[float, float], ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of [rpm, map_kpa] pairs, got {value!r}")
    out = []
    for i, pair in enumerate(value):
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2
        ok = ok and all(not isinstance(v, bool) and isinstance(v, (int, float)) for v in pair)
        if not ok:
            raise ConfigError(f"{where}[{i}]: expected [rpm, map_kpa], got {pair!r}")
        out.append((float(pair[0]), float(pair[1])))
    return tuple(out)


__all__ = ["VeSettings"]
