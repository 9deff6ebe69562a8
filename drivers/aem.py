r"""AEM UEGO / X-Series serial ASCII: one reading per line at about 10 Hz.

Two forms exist: the X-Series gauge (30-0300) and legacy 30-4100 send the shown
value and CR LF at 9600 baud (``14.7\r\n``), lambda or AFR depending on the
gauge's display mode; the "UEGO Lambda" variant sends
``1.000\tReady\tNo-errors\r`` at 19200. The line itself cannot say whether it
is lambda or AFR, so the URI says (``mode=afr`` or ``mode=lambda``); the default
``mode=auto`` takes a value below 3 as lambda. Status fields other than
``Ready`` / ``No-errors`` mark the reading invalid and become the status message.

After every (re)connect the first line is dropped: it may be the tail of a line
(``7\r\n`` from ``14.7\r\n``) and would read as a wildly wrong mixture.
"""

from __future__ import annotations

import math

from core.channels import STOICH_GASOLINE
from core.source import SourceError
from drivers.registry import SourceURI
from drivers.serial_base import Row, SerialSource

MAX_LINE_BYTES = 64
"""A longer run without a line end is garbage (wrong baud); it is dropped."""

MODES = ("auto", "afr", "lambda")
LAMBDA_BELOW = 3.0
"""``mode=auto``: a reading below this is lambda, otherwise AFR."""


class AemLineParser:
    """Incremental AEM line parser: ``feed(bytes, t) -> rows``; pure, no I/O."""

    def __init__(self, mode: str = "auto", stoich: float = STOICH_GASOLINE) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} must be one of {', '.join(MODES)}")
        self.mode = mode
        self.stoich = stoich
        self.status_text = ""
        self.bad_lines = 0
        self._buf = bytearray()
        self._drop_partial = True

    def reset(self) -> None:
        self._buf.clear()
        self._drop_partial = True

    def feed(self, data: bytes, t: float) -> list[Row]:
        rows: list[Row] = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._drop_partial:
                    self._drop_partial = False
                elif self._buf:
                    row = self._line(bytes(self._buf))
                    if row is not None:
                        rows.append((t, row))
                self._buf.clear()
            elif not self._drop_partial:
                self._buf.append(byte)
                if len(self._buf) > MAX_LINE_BYTES:
                    self.bad_lines += 1
                    self._buf.clear()
                    self._drop_partial = True
        return rows

    def _line(self, line: bytes) -> dict[str, float] | None:
        try:
            fields = line.decode("ascii").split("\t")
            value = float(fields[0])
        except (UnicodeDecodeError, ValueError):
            self.bad_lines += 1
            return None
        if not math.isfinite(value) or value <= 0.0:
            self.bad_lines += 1
            return None
        status = [f.strip() for f in fields[1:] if f.strip()]
        bad = [f for f in status if f.lower() not in ("ready", "no-errors")]
        self.status_text = " ".join(bad)
        is_lambda = self.mode == "lambda" or (self.mode == "auto" and value < LAMBDA_BELOW)
        lam = value if is_lambda else value / self.stoich
        if bad:
            lam = math.nan
        return {"lambda": lam, "afr": lam * self.stoich}


class AemSerialSource(SerialSource):
    """An AEM wideband's serial output (``aem:/dev/ttyUSB0?baud=9600&mode=afr``)."""

    default_baud = 9600
    expected_period_s = 0.1

    def make_parser(self, uri: SourceURI) -> AemLineParser:
        mode = (uri.get("mode") or "auto").lower()
        if mode not in MODES:
            raise SourceError(f"{uri.raw}: mode={mode!r} must be one of {', '.join(MODES)}")
        stoich = uri.get_float("stoich", STOICH_GASOLINE)
        if not 3.0 <= stoich <= 20.0:
            raise SourceError(f"{uri.raw}: stoich={stoich} is not a plausible AFR (e.g. 14.7)")
        return AemLineParser(mode, stoich)

    def channels(self) -> dict[str, str]:
        return {"lambda": "λ", "afr": "AFR"}
