"""Any TunerStudio ECU on serial, decoded from its own ``.ini`` (``ts:/dev/ttyACM0?ini=FILE``).

The session: ask the signature (the ini's ``queryCommand``), check it is the
firmware the ini was written for (offsets move between releases, so a wrong ini
means wrong numbers with no warning), then poll the realtime block with the
ini's ``ochGetCommand`` and decode the ``[OutputChannels]`` the canonical
channels need. Framing follows the ini: ``msEnvelope_1.0`` wraps every command
and reply in ``[u16 BE length] payload [u32 BE CRC-32]`` with a status byte
first in each reply (Speeduino 2022+, rusEFI, MS3); without it commands are
plain bytes and the reply is the raw block (Speeduino before 2022, MS2).

URI params: ``ini`` (the ECU's ini, required for ``ts:``), ``baud`` (115200),
``protocol`` (auto = as the ini says | crc | legacy), ``set``/``unset``
(comma-separated ini symbols, e.g. ``unset=CELSIUS``), ``check`` (on: refuse an
ECU whose signature differs from the ini's), ``can_id`` (0), ``stoich`` (14.7).
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from collections.abc import Callable

from core.channels import STOICH_GASOLINE
from core.source import SourceError
from drivers.registry import SourceURI
from drivers.serial_base import Row, SerialSource, StreamParser
from drivers.tschannels import CANONICAL_SOURCES, CANONICAL_UNITS, map_channels, needed_end
from drivers.tsini import EcuIni, IniError, load_ini

MAX_FRAME_PAYLOAD = 4096
"""Larger envelope length fields are garbage (realtime chunks are a few hundred bytes)."""
REPLY_TIMEOUT_S = 0.5
"""Speeduino's SERIAL_TIMEOUT is 400 ms, rusEFI's is similar: a later reply will not come."""
QUIET_S = 0.08
"""A plain (unframed) reply is complete once the line is quiet this long."""
STATUS_TEXT = {
    0x80: "ECU timeout",
    0x82: "ECU saw a CRC error",
    0x83: "ECU does not know the command",
    0x84: "range error: the ECU's block is shorter than the ini says (wrong ini?)",
    0x85: "ECU busy",
    0x8D: "ECU framing error",
}
PROTOCOLS = ("auto", "crc", "legacy")


def frame(payload: bytes) -> bytes:
    """Wrap a payload in the msEnvelope: length (u16 BE), payload, CRC-32 (zlib) BE."""
    return struct.pack(">H", len(payload)) + payload + struct.pack(">I", zlib.crc32(payload))


class ReplyParser:
    """Incremental reply reader: CRC-checked envelope payloads, or raw bytes when plain.

    Envelope mode hunts for a length whose CRC checks out, so garbage before a
    reply (a DTR glitch byte, a half reply from before a reconnect) is skipped.
    """

    def __init__(self, envelope: bool = True) -> None:
        self.envelope = envelope
        self.status_text = ""
        self.payloads: list[bytes] = []
        self.raw = bytearray()
        self.crc_errors = 0
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()
        self.raw.clear()
        self.payloads.clear()

    def feed(self, data: bytes, t: float) -> list[Row]:
        if not self.envelope:
            self.raw += data[: MAX_FRAME_PAYLOAD - len(self.raw)]
            return []
        self._buf += data
        buf = self._buf
        while (start := self._find_frame()) >= 0:
            length = (buf[start] << 8) | buf[start + 1]
            self.payloads.append(bytes(buf[start + 2 : start + 2 + length]))
            del buf[: start + 2 + length + 4]
        if len(buf) > 2 * (MAX_FRAME_PAYLOAD + 6):
            del buf[: len(buf) - (MAX_FRAME_PAYLOAD + 6)]
        return []

    def _find_frame(self) -> int:
        """Start of the first complete frame whose CRC checks out (-1: none yet).

        Not only at the buffer's head: garbage that looks like a long length field
        must not hide a short valid reply behind it until more bytes arrive.
        """
        buf = self._buf
        for i in range(len(buf) - 6):
            length = (buf[i] << 8) | buf[i + 1]
            if not 1 <= length <= MAX_FRAME_PAYLOAD or i + 6 + length > len(buf):
                continue
            (crc,) = struct.unpack_from(">I", buf, i + 2 + length)
            if crc == zlib.crc32(buf[i + 2 : i + 2 + length]):
                return i
            if i == 0:
                self.crc_errors += 1
        return -1


def signature_text(reply: bytes, framed: bool) -> str:
    """The signature string in a query reply ('' when it is not text)."""
    if framed and reply[:1] == b"\x00":
        reply = reply[1:]
    text = reply.replace(b"\x00", b" ").decode("latin-1").strip()
    if not text or any(not (ch.isprintable()) for ch in text):
        return ""
    return text


class TunerStudioSource(SerialSource):
    """A TunerStudio-protocol ECU decoded from its ini (``ts:/dev/ttyACM0?ini=rusefi.ini``)."""

    default_baud = 115200
    expected_period_s = 0.1
    ini_required = True

    def __init__(self, uri: SourceURI, name: str) -> None:
        self.protocol_request = (uri.get("protocol") or "auto").lower()
        if self.protocol_request not in PROTOCOLS:
            raise SourceError(f"{uri.raw}: protocol must be one of {', '.join(PROTOCOLS)}")
        self.stoich = uri.get_float("stoich", STOICH_GASOLINE)
        if self.stoich <= 0:
            raise SourceError(f"{uri.raw}: stoich={self.stoich:g} must be positive")
        self.can_id = uri.get_int("can_id", 0)
        if not 0 <= self.can_id <= 14:
            raise SourceError(f"{uri.raw}: can_id={self.can_id} must be 0..14")
        self.check_signature = uri.get_bool("check", True)
        self.set_symbols = _symbols(uri.get("set"))
        self.unset_symbols = _symbols(uri.get("unset"))
        self.ini_path = uri.get("ini") or ""
        self.user_ini: EcuIni | None = None
        if self.ini_path:
            self.user_ini = self._load(self.ini_path)
        elif self.ini_required:
            raise SourceError(
                f"{uri.raw}: give the ECU's TunerStudio ini, e.g. {uri.scheme}:{uri.path or '/dev/ttyACM0'}"
                "?ini=mainController.ini (TunerStudio keeps it in the project's projectCfg folder)"
            )
        self.ini: EcuIni | None = self.user_ini
        self.signature = ""
        self.protocol = ""
        self._answered = ""
        self.mapping: dict[str, tuple[str, Callable[[float], float]]] = {}
        self.spans: list[tuple[int, int]] = []
        self.parser_ts = ReplyParser()
        self._pending: tuple[bytes, int, float] | None = None
        """(command, reply length, sent at) of a realtime request whose reply is still due."""
        self._chunks: list[bytes] = []
        """The realtime block read so far when it takes several requests (blockingFactor)."""
        self._chunks_t = 0.0
        super().__init__(uri, name)

    def make_parser(self, uri: SourceURI) -> StreamParser:
        self.parser_ts = ReplyParser()
        return self.parser_ts

    def _load(self, path: str) -> EcuIni:
        try:
            return load_ini(path, self.set_symbols, self.unset_symbols)
        except IniError as exc:
            raise SourceError(f"bad ini {exc}") from None

    def channels(self) -> dict[str, str]:
        if self.ini is None:
            return {"rpm": "rpm", "map_kpa": "kPa", "tps_pct": "%", "afr": "AFR", "lambda": "λ"}
        names = set(map_channels(self.ini))
        if "afr" in names or "lambda" in names:
            names |= {"afr", "lambda"}
        return {n: CANONICAL_UNITS[n] for n, _ in CANONICAL_SOURCES if n in names}

    # -- session start -----------------------------------------------------------------

    def _after_open(self) -> None:
        self._pending = None
        self._chunks.clear()
        self.signature = self._query_signature()
        ini = self._ini_for(self.signature)
        self._use_ini(ini)
        if not self._poll(REPLY_TIMEOUT_S):
            why = self.parser_ts.status_text or "no reply"
            raise SourceError(
                f"the ECU on {self.port_path} ({self.signature}) answered its signature but "
                f"not the realtime command of {ini.path}: {why}"
            )
        self.emit("note", time.monotonic(), self.describe())

    def _query_signature(self) -> str:
        ini = self.user_ini
        self._answered = ""
        if self.protocol_request != "auto":
            modes = [self.protocol_request]
        elif ini is not None and not ini.envelope:
            modes = ["legacy", "crc"]
        else:
            modes = ["crc", "legacy"]
        command = ini.query_request(self.can_id) if ini is not None else b"Q"
        for mode in modes:
            self._drain_quiet()
            text = self._ask_signature(command, mode == "crc")
            if text:
                self._answered = mode
                return text
        tried = " and ".join(f"'{m}'" for m in modes)
        raise SourceError(
            f"no answer to the signature query on {self.port_path} at {self.baud} baud "
            f"(tried {tried} framing): is it a TunerStudio ECU (Speeduino, rusEFI, MegaSquirt)?"
        )

    def _drain_quiet(self) -> None:
        """Drop what is in flight (a reply to an earlier try) until the line is quiet."""
        self.port.reset_input_buffer()
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < QUIET_S / 2:
            if self.port.read(self.port.in_waiting or 1):
                last = time.monotonic()

    def _ask_signature(self, command: bytes, framed: bool) -> str:
        parser = ReplyParser(framed)
        self.parser = self.parser_ts = parser
        self.port.write(frame(command) if framed else command)
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        last_byte = 0.0
        while time.monotonic() < deadline:
            chunk = self.port.read(self.port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                last_byte = now
                self._feed(chunk, now)
            if framed:
                for payload in parser.payloads:
                    if text := signature_text(payload, True):
                        return text
                parser.payloads.clear()
            elif last_byte and now - last_byte >= QUIET_S:
                return signature_text(bytes(parser.raw), False)
        return "" if framed else signature_text(bytes(parser.raw), False)

    def _ini_for(self, signature: str) -> EcuIni:
        ini = self.user_ini
        assert ini is not None
        if self.check_signature and ini.signature and signature != ini.signature:
            raise SourceError(
                f"the ECU on {self.port_path} answers {signature!r} but {ini.path} is for "
                f"{ini.signature!r}: pass the ini for this firmware with ?ini=FILE "
                "(or check=off to decode with it anyway)"
            )
        return ini

    def _use_ini(self, ini: EcuIni) -> None:
        self.ini = ini
        # Speeduino refuses plain commands after a framed one, so poll the way it answered.
        self.protocol = self._answered or ("crc" if ini.envelope else "legacy")
        self.mapping = map_channels(ini)
        if not self.mapping:
            raise SourceError(f"{ini.path}: no channel this program uses (rpm, map, tps, afr ...)")
        command = ini.och_command or "A"
        ini.och_command = command
        if ini.och_has_range:
            end = needed_end(ini, {name for name, _ in self.mapping.values()})
            chunk = ini.blocking_factor if ini.blocking_factor > 0 else end
            self.spans = [(o, min(chunk, end - o)) for o in range(0, end, chunk)]
        elif ini.och_block_size > 0:
            self.spans = [(0, ini.och_block_size)]
        else:
            raise SourceError(f"{ini.path}: ochGetCommand {command!r} needs an ochBlockSize")

    def describe(self) -> str:
        """One line for the log: which ini, framing, what is read and what is not."""
        ini = self.ini
        if ini is None:
            return ""
        read = ", ".join(f"{c}={n}" for c, (n, _) in self.mapping.items())
        text = (
            f"{self.signature} decoded with {ini.path} "
            f"({'msEnvelope_1.0' if self.protocol == 'crc' else 'plain commands'}): {read}"
        )
        if ini.skipped:
            items = [f"{n} ({why})" for n, why in sorted(ini.skipped.items())]
            more = f" and {len(items) - 6} more" if len(items) > 6 else ""
            text += f"; not read: {'; '.join(items[:6])}{more}"
        return text

    # -- polling -------------------------------------------------------------------------

    def _poll(self, timeout: float) -> list[Row]:
        """One realtime block (in one or more requests), decoded to canonical channels."""
        ini = self.ini
        if ini is None:
            return []
        framed = self.protocol == "crc"
        if self.parser_ts.envelope != framed:
            self.parser = self.parser_ts = ReplyParser(framed)
        chunks = self._chunks
        if chunks and time.monotonic() - self._chunks_t > 2 * REPLY_TIMEOUT_S:
            chunks.clear()  # too old to join with what comes next
        for offset, count in self.spans[len(chunks) :]:
            data = self._request(
                ini.och_request(offset, count, self.can_id), count, framed, timeout
            )
            if data is None:
                if self._pending is None:
                    chunks.clear()  # refused or short: start the block again
                return []  # else its reply is still due: the next call goes on from here
            if not chunks:
                self._chunks_t = time.monotonic()
            chunks.append(data)
        block = b"".join(chunks)
        chunks.clear()
        now = time.monotonic()
        rows = [(now, self._canonical(ini.decode(block)))]
        self.parser_ts.status_text = ""
        self._count_frames(rows, now)
        return rows

    def _request(self, command: bytes, count: int, framed: bool, timeout: float) -> bytes | None:
        """Send one realtime command and wait up to ``timeout`` for its reply.

        Never two requests in flight: a reply still due (asked less than the ECU's
        serial timeout ago) is waited for before anything is sent, and taken when it
        answers this same command. Otherwise a late plain reply would be spliced into
        the next block, and a late first chunk taken for the second.
        """
        start = time.monotonic()
        deadline = start + min(max(timeout, 0.05), REPLY_TIMEOUT_S)
        if self._pending is not None:
            pending, pending_count, sent = self._pending
            if start - sent < REPLY_TIMEOUT_S:
                done, data = self._await_reply(
                    pending_count, framed, min(deadline, sent + REPLY_TIMEOUT_S)
                )
                if not done:
                    return None
                self._pending = None
                if pending == command:
                    return data
            else:
                self._pending = None
                self._drain_quiet()  # it will not come now: drop any piece of it
        parser = self.parser_ts
        parser.payloads.clear()
        parser.raw.clear()
        parser.reset()
        self.port.write(frame(command) if framed else command)
        self._pending = (command, count, time.monotonic())
        done, data = self._await_reply(count, framed, deadline)
        if done:
            self._pending = None
        return data

    def _await_reply(self, count: int, framed: bool, deadline: float) -> tuple[bool, bytes | None]:
        """(True, data or None if refused/short) once the reply is in; (False, None) at deadline."""
        parser = self.parser_ts
        while True:
            chunk = self.port.read(self.port.in_waiting or 1)
            if chunk:
                self._feed(chunk, time.monotonic())
            if framed and parser.payloads:
                payload = parser.payloads.pop(0)
                if payload[0] != 0x00:
                    code = payload[0]
                    parser.status_text = STATUS_TEXT.get(code, f"ECU status 0x{code:02X}")
                    return True, None
                if len(payload) - 1 < count:
                    parser.status_text = f"short reply ({len(payload) - 1} of {count} bytes)"
                    return True, None
                return True, payload[1 : 1 + count]
            if not framed and len(parser.raw) >= count:
                data = bytes(parser.raw[:count])
                parser.raw.clear()
                return True, data
            if time.monotonic() >= deadline:
                break
        if not framed and parser.raw:
            parser.status_text = f"short reply ({len(parser.raw)} of {count} bytes)"
        return False, None

    def _canonical(self, values: dict[str, float]) -> dict[str, float]:
        out = {c: conv(values[name]) for c, (name, conv) in self.mapping.items()}
        for key in ("afr", "afr_target", "lambda", "lambda_target"):
            if key in out and not out[key] > 0:
                out[key] = math.nan  # 0 = no sensor / not computed yet
        for afr, lam in (("afr", "lambda"), ("afr_target", "lambda_target")):
            if afr in out and lam not in out:
                out[lam] = out[afr] / self.stoich
            elif lam in out and afr not in out:
                out[afr] = out[lam] * self.stoich
        return out


def _symbols(text: str | None) -> set[str]:
    return {s.strip() for s in (text or "").split(",") if s.strip()}
