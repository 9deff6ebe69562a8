"""Parsing ELM327 replies: pure functions, no I/O (so they can be fuzzed and unit tested).

A reply is everything up to the ``>`` prompt. With ``ATS0 ATH0`` a single-frame
answer is one hex line (``410C145F``); a CAN multi-frame answer is a byte-count
line followed by indexed frame lines (``00C`` / ``0: 410C145F0B26`` /
``1: 112B0F39055F``), concatenated and cut to the count. Several ECUs answering
give several messages. Error words (``NO DATA``, ``?``, ``STOPPED``,
``CAN ERROR``, ``BUS INIT: ...ERROR``, ``UNABLE TO CONNECT`` ...) become
``ElmReply.error``; ``SEARCHING...`` and ``BUS INIT: ...OK`` are just progress.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers import obd_pids
from drivers.serial_base import Row

ERRORS = (
    "NO DATA",
    "UNABLE TO CONNECT",
    "CAN ERROR",
    "BUS ERROR",
    "BUS BUSY",
    "FB ERROR",
    "DATA ERROR",
    "BUFFER FULL",
    "STOPPED",
    "LV RESET",
    "ACT ALERT",
    "ERR",
    "<RX ERROR",
    "?",
)
"""Error replies, longest meaning first (``ERR94`` etc. match ``ERR``)."""

BUS_ERRORS = ("UNABLE TO CONNECT", "CAN ERROR", "BUS INIT", "BUS ERROR", "LV RESET", "ACT ALERT")
"""Errors after which the adapter must search for the protocol again."""

ERROR_HINTS = {
    "NO DATA": "no data from the car (ignition off or PID not answered)",
    "?": "the adapter did not understand the request",
    "STOPPED": "request interrupted",
}

MAX_REPLY_BYTES = 4096
"""A 'reply' longer than this without a prompt is noise; it is dropped."""

_HEX = re.compile(r"^[0-9A-F]+$")
_FRAME = re.compile(r"^([0-9A-F]):([0-9A-F]*)$")
_COUNT = re.compile(r"^[0-9A-F]{3}$")


@dataclass(slots=True)
class ElmReply:
    """One decoded reply."""

    lines: list[str] = field(default_factory=list)
    """Text lines without echo, progress lines or blanks."""
    error: str = ""
    """The ELM's error word, or '' (``BUS INIT: ...ERROR`` is reported as ``BUS INIT ERROR``)."""
    messages: list[bytes] = field(default_factory=list)
    """Hex lines / reassembled multi-frame messages as bytes."""

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def is_bus_error(error: str) -> bool:
    return any(error.startswith(word) for word in BUS_ERRORS)


def _error_of(line: str) -> str:
    if line.startswith("BUS INIT"):
        return "" if line.endswith("OK") else "BUS INIT ERROR"
    for word in ERRORS:
        if line.startswith(word):
            return word
    return ""


def parse_reply(raw: bytes, sent: str = "") -> ElmReply:
    """Split one reply (up to and including ``>``) into lines, error and messages."""
    text = raw.decode("ascii", errors="replace").replace(">", "").replace("\x00", "")
    reply = ElmReply()
    count: int | None = None
    frames: list[str] = []
    sent_key = sent.replace(" ", "").upper()

    def flush() -> None:
        nonlocal count, frames
        if frames:
            joined = "".join(frames)
            data = bytes.fromhex(joined[: len(joined) // 2 * 2])
            reply.messages.append(data[:count] if count is not None else data)
        count, frames = None, []

    for raw_line in re.split(r"[\r\n]+", text):
        line = raw_line.strip().upper()
        key = line.replace(" ", "")
        if not key or key == sent_key or key.startswith("SEARCHING"):
            continue
        reply.lines.append(line)
        error = _error_of(line)
        if error:
            reply.error = reply.error or error
            continue
        frame = _FRAME.match(key)
        if frame and count is not None:
            frames.append(frame.group(2))
        elif _COUNT.match(key):
            flush()
            count = int(key, 16)
        elif _HEX.match(key):
            flush()
            reply.messages.append(bytes.fromhex(key[: len(key) // 2 * 2]))
    flush()
    return reply


class ElmReplyParser:
    """Incremental: bytes in, a row per complete Mode 01 reply with decoded channels.

    Also keeps what the driver needs to judge the reply: the error word and the
    PIDs that came back (for the multi-PID fallback).
    """

    def __init__(self) -> None:
        self.status_text = ""
        self.replies = 0
        self.last_error = ""
        self.last_pids: set[int] = set()
        self.expected: frozenset[int] | None = None
        """PIDs of the request in flight (helps split multi-PID answers); None = any."""
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes, t: float) -> list[Row]:
        self._buf += data
        rows: list[Row] = []
        while True:
            end = self._buf.find(b">")
            if end < 0:
                break
            raw = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            row = self._reply(parse_reply(raw), t)
            if row is not None:
                rows.append(row)
        if len(self._buf) > MAX_REPLY_BYTES:
            self._buf.clear()
        return rows

    def _reply(self, reply: ElmReply, t: float) -> Row | None:
        self.replies += 1
        self.last_error = reply.error
        self.last_pids = set()
        values: dict[str, float] = {}
        for message in reply.messages:
            for pid, data in obd_pids.split_mode01(message, self.expected).items():
                self.last_pids.add(pid)
                if pid in obd_pids.SUPPORTED_PIDS:
                    values.update(obd_pids.decode_pid(pid, data))
        if reply.error:
            self.status_text = f"{reply.error}: {ERROR_HINTS.get(reply.error, 'retrying')}"
        elif values:
            self.status_text = ""
        return (t, values) if values else None
