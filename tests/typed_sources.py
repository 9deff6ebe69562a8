"""``create_source`` returns the base ``Source``; tests that reach a driver's own
counters or hooks need the concrete class. ``source_as`` makes it through the registry
(as the CLI does) and checks the class, so the type is proven, not cast."""

from __future__ import annotations

from typing import TypeVar

from core.source import Source
from drivers.registry import create_source

S = TypeVar("S", bound=Source)


def source_as(kind: type[S], raw: str, name: str | None = None) -> S:
    """The source ``raw`` names, checked to be a ``kind``."""
    src = create_source(raw, name)
    assert isinstance(src, kind), f"{raw!r} made a {type(src).__name__}, not a {kind.__name__}"
    return src
