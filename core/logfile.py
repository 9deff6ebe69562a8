"""The .dynolog recording format (msgpack stream): writer and tolerant reader.

(Being written: the header type below is the pinned contract other modules use.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAGIC = "DYNOLOG"
FORMAT_VERSION = 1


@dataclass(slots=True)
class LogHeader:
    """Record 0 of every .dynolog: what was recorded, by what, when."""

    created_at: float
    """Wall-clock start, Unix seconds (UTC)."""
    t0: float = 0.0
    """Source-clock time at ``created_at`` (maps block times to wall time)."""
    vehicle: str = ""
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Source name -> {"uri": str, "channels": {channel: unit}}."""
    axes: dict[str, list[float]] | None = None
    """{"rpm": [...], "map_kpa": [...]} of the table the session binned into."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free metadata (importer name, original file, lambda delay, stoich, ...)."""
    format_version: int = FORMAT_VERSION
