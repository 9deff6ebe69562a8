"""Header and field validation for the .dynolog reader: a recording's word is checked.

A header is trusted no more than a block: a 90 KB file once declared 5000 x 5000
axes (24 GB of grid) and stoich 0. Every header value is range-checked here as a
vehicle config's would be (axes through ``TableAxes``, numbers against
``HEADER_NUMBERS``), so a hostile or damaged header is one clear error, never an
out-of-memory kill or a division by zero later. Split from the reader, which is about
framing and resync.
"""

from __future__ import annotations

import math
from typing import Any

from core.config import ConfigError
from core.coverage.axes import TableAxes
from core.record.format import (
    HEADER_NUMBERS,
    MAX_CHANNELS_PER_BLOCK,
    MAX_SOURCES,
    CodecError,
    LogHeader,
)


def field_of(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CodecError(f"{body.get('k')!r} record field {key!r} is not {kind.__name__}")
    return value


def float_of(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise CodecError(f"{body.get('k')!r} record field {key!r} is not a number")
    return float(value)


def header_from(body: dict[str, Any], version: int) -> LogHeader:
    sources = field_of(body, "sources", dict)
    if len(sources) > MAX_SOURCES:
        raise CodecError(f"{len(sources)} sources, at most {MAX_SOURCES}")
    for name, info in sources.items():
        if not isinstance(info, dict):
            raise CodecError(f"source {name!r} entry is not a map")
        if not isinstance(info.get("uri", ""), str):
            raise CodecError(f"source {name!r} uri is not a string")
        channels = info.get("channels", {})
        if not isinstance(channels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in channels.items()
        ):
            raise CodecError(f"source {name!r} channels are not a map of channel to unit")
        if len(channels) > MAX_CHANNELS_PER_BLOCK:
            raise CodecError(f"source {name!r} declares {len(channels)} channels")
    axes = body.get("axes")
    if axes is not None:
        axes = header_axes(axes)
    metadata = field_of(body, "metadata", dict)
    for key, (lo, hi, whole) in HEADER_NUMBERS.items():
        if key not in metadata:
            continue
        value = metadata[key]
        kind = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kind):
            raise CodecError(f"{key} {value!r} is not a {'whole ' if whole else ''}number")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise CodecError(f"{key} {value!r} is outside {lo:g}..{hi:g}")
    if not isinstance(metadata.get("run_id", ""), str):
        raise CodecError("run_id is not a string")
    return LogHeader(
        created_at=float_of(body, "created_at"),
        t0=float_of(body, "t0"),
        vehicle=field_of(body, "vehicle", str),
        sources=sources,
        axes=axes,
        metadata=metadata,
        format_version=version,
    )


def header_axes(axes: object) -> dict[str, list[float]]:
    """The header's table axes, checked as a config's axes are (size capped, increasing)."""
    if not isinstance(axes, dict):
        raise CodecError("axes is not a map")
    for name, values in axes.items():
        if not isinstance(values, list) or not all(
            isinstance(v, float | int) and not isinstance(v, bool) for v in values
        ):
            raise CodecError(f"axis {name!r} is not a list of numbers")
    try:
        return TableAxes.from_dict(axes).to_dict()
    except ConfigError as exc:
        raise CodecError(str(exc)) from None
