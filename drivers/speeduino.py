"""Speeduino ECU over USB serial (115200 8N1): the TunerStudio source with the right ini.

The realtime block's layout changes between firmware releases (202207 has
advance at 23, 202305 moved it to 24 when TPSdot grew to 16 bits), so the
source reads the ECU's signature (``Q``: e.g. ``"speeduino 202207"``) first and
decodes with the ini written for that firmware: one the user gives
(``speeduino:/dev/ttyACM0?ini=speeduino.ini``) or one of the minimal inis this
package ships (``drivers/ini/speeduino-*.ini``). Without one it stops with a
clear error naming the firmware, never guessing offsets.

The signature query tries the CRC envelope first (Speeduino 2022+), then the
plain ``Q`` of older firmware: Speeduino refuses legacy commands after the first
CRC command, so the order matters (PROTOCOLS.md §5). Other URI params as
:mod:`drivers.tunerstudio`; ``ini`` is optional here.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.source import SourceError
from drivers.tsini import EcuIni
from drivers.tunerstudio import TunerStudioSource, frame

__all__ = ["SHIPPED_INIS", "SpeeduinoSource", "frame", "realtime_request", "shipped_ini_path"]

INI_DIR = Path(__file__).with_name("ini")
SHIPPED_INIS = {
    "speeduino 202207": "speeduino-202207.ini",
    "speeduino 202305": "speeduino-202305.ini",
    "speeduino 202501": "speeduino-202501.ini",
}
"""Firmware signature -> ini shipped in ``drivers/ini`` (a point release 202501.7 uses 202501's)."""


def realtime_request(offset: int = 0, count: int = 130, can_id: int = 0) -> bytes:
    """The framed ``'r'`` command for ``count`` bytes of the realtime block from ``offset``."""
    return frame(
        b"r" + bytes([can_id, 0x30]) + offset.to_bytes(2, "little") + count.to_bytes(2, "little")
    )


def shipped_ini_path(signature: str) -> Path | None:
    """The shipped ini for a firmware signature, or None."""
    key = signature.strip()
    name = SHIPPED_INIS.get(key) or SHIPPED_INIS.get(re.sub(r"\.\d+$", "", key))
    return INI_DIR / name if name else None


class SpeeduinoSource(TunerStudioSource):
    """A Speeduino on USB serial (``speeduino:/dev/ttyACM0``, optional ``?ini=FILE``)."""

    ini_required = False

    def _ini_for(self, signature: str) -> EcuIni:
        if self.user_ini is not None:
            return super()._ini_for(signature)
        if not signature.lower().startswith("speeduino"):
            raise SourceError(
                f"the ECU on {self.port_path} answers {signature!r}, not a Speeduino: "
                f"use ts:{self.port_path}?ini=FILE with that ECU's TunerStudio ini"
            )
        path = shipped_ini_path(signature)
        if path is None:
            shipped = ", ".join(s.split()[-1] for s in SHIPPED_INIS)
            raise SourceError(
                f"no ini for Speeduino firmware {signature!r} (this version knows {shipped}): "
                f"pass the firmware's own speeduino.ini with speeduino:{self.port_path}?ini=FILE "
                "(reference/speeduino.ini in the firmware release, or the TunerStudio "
                "project's projectCfg/mainController.ini)"
            )
        ini = self._load(str(path))
        ini.signature = signature
        return ini
