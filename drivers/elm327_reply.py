"""Parsing ELM327 replies: pure functions, no I/O (so they can be fuzzed and unit tested).

A reply is everything up to the ``>`` prompt. With ``ATS0 ATH0`` a single-frame
answer is one hex line (``410C145F``); a CAN multi-frame answer is a byte-count
line followed by indexed frame lines (``00C`` / ``0: 410C145F0B26`` /
``1: 112B0F39055F``), concatenated and cut to the count. Several ECUs answering
give several messages.

With headers on (``ATH1``, what the driver polls with once ``ATDPN`` has named
the protocol) every line starts with the sender: 3 hex digits on 11-bit CAN
(``7E8``), 8 on 29-bit CAN (``18DAF110``), then the ISO-TP PCI byte and data;
on the older protocols 3 header bytes (source address last) and a checksum.
Frames are reassembled per sender, so when two ECUs answer a functional request
and their frames interleave (``7E8 10 ..`` / ``7E9 03 ..`` / ``7E8 21 ..``) each
message stays whole; with headers off such a reply cannot be told apart.
Messages are ordered by sender (the engine ECU, lowest ID, first). Error words (``NO DATA``, ``?``, ``STOPPED``,
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

_TEXT = re.compile(rb"[\x00\t\r\n -~]*")
"""What an ELM327 reply is made of: printable ASCII and line ends (NULs are allowed,
as in :func:`parse_reply`). Bytes read at the wrong baud are mostly anything else."""
_CHIP = re.compile(rb"ELM|STN|OBD", re.IGNORECASE)
"""A chip's name in the banner ATZ prints (``ELM327 v1.5``; STN11xx chips and most
clones print an ELM327 banner too)."""


def reply_length(buf: bytes | bytearray, banner: bool = False) -> int | None:
    """Length of the reply at the front of ``buf`` up to its ``>`` prompt; None until then.

    A ``>`` counts as the prompt only at the start of a line (after CR or LF, PROTOCOLS.md
    §4a), after a reply that is all text: random bytes hold a ``>`` now and then, and
    taking one for a prompt had every init command "answered" at a wrong baud. ATZ
    (``banner``) resets the chip, whose UART may put out a junk byte first; there the
    line before the prompt must be plain text naming the chip (``ELM327 v1.5``).
    """
    at = 0
    while (at := buf.find(b">", at) + 1) > 0:
        if at < 2 or buf[at - 2] not in b"\r\n":
            continue
        head = bytes(buf[: at - 1])
        if not banner:
            if _TEXT.fullmatch(head):
                return at
            continue
        lines = [line for line in re.split(rb"[\r\n]+", head.replace(b"\x00", b"")) if line.strip()]
        if lines and re.fullmatch(rb"[ -~]+", lines[-1]) and _CHIP.search(lines[-1]):
            return at
    return None


_HEX = re.compile(r"^[0-9A-F]+$")
_FRAME = re.compile(r"^([0-9A-F]):([0-9A-F]*)$")
_COUNT = re.compile(r"^[0-9A-F]{3}$")


HEADER_MODES = ("", "can11", "can29", "legacy")
"""How reply lines are framed: '' (ATH0), CAN 11-bit, CAN 29-bit, J1850/ISO 9141/KWP."""


def header_mode(protocol: str) -> str:
    """The ATH1 line format for an ``ATDPN`` protocol number (1-9, A-C)."""
    if protocol in ("7", "9", "A"):
        return "can29"
    if protocol in ("6", "8", "B", "C"):
        return "can11"
    return "legacy"


@dataclass(slots=True)
class ElmReply:
    """One decoded reply."""

    lines: list[str] = field(default_factory=list)
    """Text lines without echo, progress lines or blanks."""
    error: str = ""
    """The ELM's error word, or '' (``BUS INIT: ...ERROR`` is reported as ``BUS INIT ERROR``)."""
    messages: list[bytes] = field(default_factory=list)
    """Hex lines / reassembled multi-frame messages as bytes."""
    senders: list[str] = field(default_factory=list)
    """With headers on: the sender of each message (same order); empty otherwise."""
    incomplete: int = 0
    """Multi-frame messages whose frames did not all arrive (dropped, never guessed)."""

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


class _Reassembly:
    """ISO-TP frames (PCI byte first) of one sender put back together."""

    def __init__(self) -> None:
        self.total = 0
        self.data = bytearray()
        self.next_seq = 1
        self.open = False

    def frame(self, body: bytes) -> bytes | None:
        """Feed one frame; returns a complete message, else None."""
        if not body:
            return None
        kind, low = body[0] >> 4, body[0] & 0x0F
        if kind == 0:  # single frame: low nibble = length
            self.open = False
            return bytes(body[1 : 1 + low]) if 0 < low <= len(body) - 1 else None
        if kind == 1 and len(body) >= 2:  # first frame: 12-bit length
            self.total = (low << 8) | body[1]
            self.data = bytearray(body[2:])
            self.next_seq, self.open = 1, True
        elif kind == 2 and self.open:  # consecutive frame
            if low != self.next_seq & 0x0F:
                self.open = False  # a frame went missing: drop, never splice
                raise ValueError("consecutive frame out of sequence")
            self.data += body[1:]
            self.next_seq += 1
        else:
            return None  # flow control or a stray frame
        if self.open and len(self.data) >= self.total:
            self.open = False
            return bytes(self.data[: self.total])
        return None


def _headered(reply: ElmReply, keys: list[str], mode: str) -> None:
    """Messages from header-on lines, reassembled per sender."""
    found: list[tuple[str, int, bytes]] = []
    pending: dict[str, _Reassembly] = {}
    width = 3 if mode == "can11" else 8
    for order, key in enumerate(keys):
        if mode == "legacy":
            raw = bytes.fromhex(key[: len(key) // 2 * 2])
            if len(raw) >= 5:  # 3 header bytes (source last), data, checksum
                found.append((f"{raw[2]:02X}", order, raw[3:-1]))
            continue
        if len(key) <= width or (len(key) - width) % 2:
            continue
        sender, body = key[:width], bytes.fromhex(key[width:])
        state = pending.setdefault(sender, _Reassembly())
        try:
            message = state.frame(body)
        except ValueError:
            reply.incomplete += 1
            continue
        if message is not None:
            found.append((sender, order, message))
    reply.incomplete += sum(1 for state in pending.values() if state.open)
    for sender, _, message in sorted(found, key=lambda item: (item[0], item[1])):
        reply.senders.append(sender)
        reply.messages.append(message)


def parse_reply(raw: bytes, sent: str = "", headers: str = "") -> ElmReply:
    """Split one reply (up to and including ``>``) into lines, error and messages.

    ``headers`` says how lines are framed (see :data:`HEADER_MODES`).
    """
    text = raw.decode("ascii", errors="replace").replace(">", "").replace("\x00", "")
    reply = ElmReply()
    hex_lines: list[str] = []
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
        if headers:
            if _HEX.match(key):
                hex_lines.append(key)
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
    if headers:
        _headered(reply, hex_lines, headers)
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
        self.headers = ""
        """Line format of the replies (:data:`HEADER_MODES`); set by the driver after ATDPN."""
        self.senders: set[str] = set()
        """ECUs that have answered (with headers on)."""
        self.incomplete = 0
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
            row = self._reply(parse_reply(raw, headers=self.headers), t)
            if row is not None:
                rows.append(row)
        if len(self._buf) > MAX_REPLY_BYTES:
            self._buf.clear()
        return rows

    def _reply(self, reply: ElmReply, t: float) -> Row | None:
        self.replies += 1
        self.last_error = reply.error
        self.last_pids = set()
        self.incomplete += reply.incomplete
        self.senders.update(reply.senders)
        values: dict[str, float] = {}
        for message in reply.messages:  # engine ECU first: it wins a PID two ECUs answer
            for pid, data in obd_pids.split_mode01(message, self.expected).items():
                self.last_pids.add(pid)
                if pid in obd_pids.SUPPORTED_PIDS:
                    for name, value in obd_pids.decode_pid(pid, data).items():
                        values.setdefault(name, value)
        if reply.error:
            self.status_text = f"{reply.error}: {ERROR_HINTS.get(reply.error, 'retrying')}"
        elif values:
            self.status_text = ""
        return (t, values) if values else None
