"""Metadata a shipped DBC preset carries for dynoai: channel names and validity gates.

A DBC says how to pull numbers out of a frame, not whether a number means
anything. Some devices send a status bit beside the value (the AEM X-Series
sends lambda 0.0 with "lambda valid" clear while it warms up or calibrates in
free air), and binning that 0.0 would poison the grid. So a preset can declare,
per signal, in ordinary DBC signal attributes (readable by any DBC tool):

* ``DynoChannel`` - the canonical channel the signal feeds (``rpm``,
  ``lambda`` ...), or ``-`` for "not a channel", so a preset does not depend on
  name guessing;
* ``DynoValidIf`` - conditions on other signals of the same frame, all of which
  must hold for the value to be data: ``"LambdaValid=1,SensorFault=0"``. When
  one fails the value becomes NaN (never a number), and the failing condition
  is reported so the status line can say why.

And per database, ``DynoBaseId`` (an INT attribute): the first frame ID of a
stream whose IDs the device lets the user move (ECUMaster "Base ID", the Link
Generic Dash ID, the AEM unit number). The ``base_id=`` URI option then shifts
every frame of the preset by ``base_id - DynoBaseId``.

Any DBC can use them, not only the shipped presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.source import SourceError

CHANNEL_ATTR = "DynoChannel"
VALID_IF_ATTR = "DynoValidIf"
BASE_ID_ATTR = "DynoBaseId"
NOT_A_CHANNEL = "-"


def signal_attr(signal: Any, name: str) -> str:
    """A string attribute of a cantools signal ('' when the DBC does not set it)."""
    dbc = getattr(signal, "dbc", None)
    attrs = getattr(dbc, "attributes", None) or {}
    attr = attrs.get(name)
    return str(attr.value).strip() if attr is not None else ""


def database_base_id(db: Any) -> int | None:
    """The ``DynoBaseId`` a DBC declares, or None."""
    dbc = getattr(db, "dbc", None)
    attrs = getattr(dbc, "attributes", None) or {}
    attr = attrs.get(BASE_ID_ATTR)
    return int(attr.value) if attr is not None else None


@dataclass(frozen=True, slots=True)
class Gate:
    """``signal == value`` conditions that must all hold for a gated signal to be data."""

    conditions: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, text: str, message: Any, where: str) -> Gate:
        names = {s.name for s in message.signals}
        conditions: list[tuple[str, float]] = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in names:
                raise SourceError(
                    f"{where}: {VALID_IF_ATTR} {text!r} in {message.name}: {item!r} is not "
                    "SIGNAL=VALUE with a signal of the same frame"
                )
            try:
                conditions.append((name, float(value)))
            except ValueError:
                raise SourceError(
                    f"{where}: {VALID_IF_ATTR} {text!r} in {message.name}: {value!r} is not a number"
                ) from None
        return cls(tuple(conditions))

    def failed(self, raw: dict[str, Any]) -> str:
        """The first condition a decoded frame breaks ('' when the value is data)."""
        for name, want in self.conditions:
            got = raw.get(name)
            if got is None or float(got) != want:
                shown = "missing" if got is None else f"{float(got):g}"
                return f"{name}={shown} (needs {want:g})"
        return ""
