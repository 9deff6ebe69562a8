"""ELM327 OBD-II adapter: init, protocol auto-detect, Mode 01 polling with multi-PID requests.

The adapter is request/response: one ASCII command ending in CR, a reply ending
in the ``>`` prompt. Throughput is bounded by round trips, so on CAN protocols
we ask for up to six PIDs in one request (ISO 15765-4) and parse the ISO-TP
formatted reply the ELM prints with headers off (``00C`` byte count, then
``0: ..`` ``1: ..`` frame lines). If the adapter or ECU answers a multi-PID
request wrongly (``?``, missing PIDs), we fall back to one PID per request, with
the expected reply count appended (``010C1``) so the ELM returns on the first
frame instead of waiting out its timeout.

Init: ``ATZ ATE0 ATL0 ATS0 ATH0 ATSP<protocol>``, then ``0100`` (triggers the
protocol search, may print ``SEARCHING...``), ``ATDPN`` (CAN 11/29-bit or not),
then ``ATH1``: from here on every reply line names its ECU, and frames are
reassembled per ECU (:mod:`drivers.elm327_reply`), so a TCM answering the same
functional request can no longer splice its frame into the ECM's message (as
python-OBD does, for the same reason). Then the 0120 / 0140 bitmaps so we only
poll PIDs the car supports. Bus errors
(``UNABLE TO CONNECT``, ``CAN ERROR``, ``BUS INIT: ...ERROR``) become the status
message and the init is redone later with backoff; they never raise out of read.

One ``read`` performs one request/response (a few ms on CAN adapters, up to the
reply timeout on a dead bus), so it may overrun a short read timeout once.
URI params: ``baud`` (38400), ``protocol`` (0 = auto), ``pids`` (hex list such
as ``0C,0B,11``), ``multi`` (true), ``repeat`` (true: resend an unchanged request
as a bare CR, which the ELM327 repeats), ``stoich`` (14.7).
"""

from __future__ import annotations

import time

from core.channels import CHANNELS, STOICH_GASOLINE
from core.source import SourceError, SourceState
from drivers import obd_pids
from drivers.elm327_reply import (
    ElmReply,
    ElmReplyParser,
    header_mode,
    is_bus_error,
    parse_reply,
    reply_length,
)
from drivers.registry import SourceURI
from drivers.serial_base import Row, SerialSource

INIT_COMMANDS = ("ATE0", "ATL0", "ATS0", "ATH0")
RESET_TIMEOUT_S = 3.0
SEARCH_TIMEOUT_S = 15.0
"""First request after ATSP0: the adapter tries every protocol in turn."""
COMMAND_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 1.5
"""A Mode 01 reply; above the ELM's own 200 ms ATST default, with room for slow clones."""
MULTI_FAILURES_BEFORE_FALLBACK = 3
NO_ANSWER_LIMIT = 3
"""Replies without a prompt in a row before we call the adapter lost and reconnect."""
CAN_PROTOCOLS = frozenset("6789ABC")
BAUD_RATES = (38400, 9600, 115200)
"""Adapter rates to suggest after no answer, most common first (38400 is the ELM327's
default, 9600 some clones', 115200 many STN-based and newer adapters'): the two not
in use are named."""


class ElmNoAnswer(OSError):
    """The adapter stopped answering (no prompt): handled like a lost port."""


class Elm327Source(SerialSource):
    """An ELM327 (or STN11xx) OBD-II adapter (``elm327:/dev/ttyUSB1?baud=38400``)."""

    default_baud = 38400
    expected_period_s = 0.5
    parser: ElmReplyParser

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(uri, name)
        self.protocol_request = (uri.get("protocol") or "0").upper()
        if len(self.protocol_request) != 1 or self.protocol_request not in "0123456789ABC":
            raise SourceError(f"{uri.raw}: protocol={self.protocol_request!r} must be 0-9 or A-C")
        self.want_multi = uri.get_bool("multi", True)
        self.repeat = uri.get_bool("repeat", True)
        """Repeat an unchanged request with a bare CR (ELM327 feature; off for odd clones)."""
        self._last_cmd = ""
        self.stoich = uri.get_float("stoich", STOICH_GASOLINE)
        self.user_pids = obd_pids.parse_pid_option(uri.get("pids"), uri.raw)
        self.protocol = ""
        self.is_can = False
        self.supported: set[int] = set()
        self.poll_pids: list[int] = []
        self.groups: list[list[int]] = []
        self.multi = False
        self.requests = 0
        self._next_group = 0
        self._multi_failures = 0
        self._no_answer = 0
        self._need_init = False
        self._retry_init_t = 0.0

    def make_parser(self, uri: SourceURI) -> ElmReplyParser:
        return ElmReplyParser()

    def channels(self) -> dict[str, str]:
        pids = self.poll_pids or self.user_pids or list(obd_pids.DEFAULT_POLL_PIDS)
        names: set[str] = set()
        for pid in pids:
            names |= set(obd_pids.decode_pid(pid, bytes(obd_pids.SUPPORTED_PIDS[pid].n_bytes)))
        if "lambda" in names:
            names.add("afr")
        if "lambda_target" in names:
            names.add("afr_target")
        return {n: CHANNELS[n].unit for n in sorted(names) if n in CHANNELS}

    # -- init ---------------------------------------------------------------------------

    def _command(self, cmd: str, timeout_s: float = COMMAND_TIMEOUT_S) -> ElmReply:
        """Send one command and wait for its prompt; raises ElmNoAnswer on timeout.

        Only a real prompt ends the wait (:func:`reply_length`): noise at a wrong baud
        holds stray ``>`` bytes, and must not pass for an answer to ATZ and the rest.
        """
        self._last_cmd = ""
        self.port.write(cmd.encode("ascii") + b"\r")
        buf = bytearray()
        deadline = time.monotonic() + timeout_s
        while (length := reply_length(buf, banner=cmd == "ATZ")) is None:
            if time.monotonic() >= deadline:
                got = f"{len(buf)} bytes, none an ELM327 reply" if buf else "nothing came back"
                raise ElmNoAnswer(f"{cmd}: {got}")
            buf += self.port.read(self.port.in_waiting or 1)
        self.bytes_received += len(buf)
        return parse_reply(bytes(buf[:length]), sent=cmd, headers=self.parser.headers)

    def _set_headers(self, mode: str) -> None:
        """Headers on (``ATH1``, lines framed as ``mode``) or off (``ATH0``, mode '')."""
        if mode == self.parser.headers:
            return
        reply = self._command("ATH1" if mode else "ATH0")
        if reply.error:
            raise SourceError(f"the adapter refused {'ATH1' if mode else 'ATH0'} ({reply.error})")
        self.parser.headers = mode

    def _after_open(self) -> None:
        try:
            self._init_adapter()
        except ElmNoAnswer as exc:
            others = " or ".join(f"?baud={b}" for b in BAUD_RATES if b != self.baud)
            raise SourceError(
                f"no answer from the ELM327 adapter on {self.port_path} at {self.baud} baud "
                f"({exc}): wrong baud (try {others}) or not an ELM327?"
            ) from None

    def _init_adapter(self) -> None:
        self.port.write(b"\r")  # end any half-sent command so ATZ starts clean
        time.sleep(0.05)
        self.port.reset_input_buffer()
        self.parser.headers = ""  # ATZ (and INIT_COMMANDS) leave headers off
        self._command("ATZ", RESET_TIMEOUT_S)
        # Drop late replies to whatever a previous program sent (e.g. its own ATZ on
        # close): otherwise every later reply would be paired with the wrong command.
        time.sleep(0.1)
        self.port.reset_input_buffer()
        for cmd in INIT_COMMANDS:
            self._command(cmd)
        self._command(f"ATSP{self.protocol_request}")
        self._connect_car()

    def _connect_car(self) -> None:
        """Protocol search, protocol number, headers on, supported PIDs, poll plan."""
        self._set_headers("")  # the search reply's format is only known after ATDPN
        first = self._command("0100", SEARCH_TIMEOUT_S)
        if first.error:
            raise SourceError(
                f"the adapter answers but the car does not ({first.error}): is the ignition on?"
            )
        supported = self._bitmap(first, 0x00)
        if not supported:  # a stray reply in between: ask once more before giving up
            first = self._command("0100", SEARCH_TIMEOUT_S)
            supported = self._bitmap(first, 0x00)
        if not supported:
            raise SourceError(f"no valid answer to 0100 from the car (got {first.text[:40]!r})")
        dpn = self._command("ATDPN").text.upper()
        self.protocol = dpn[1:] if len(dpn) == 2 and dpn[0] == "A" else dpn[:1]
        self.is_can = self.protocol in CAN_PROTOCOLS
        self._set_headers(header_mode(self.protocol))
        for base in (0x20, 0x40):
            if base in supported:
                supported |= self._bitmap(self._command(f"01{base:02X}"), base)
        self.supported = supported
        self._plan()
        self._need_init = False

    @staticmethod
    def _bitmap(reply: ElmReply, base: int) -> set[int]:
        out: set[int] = set()
        for message in reply.messages:
            data = obd_pids.split_mode01(message).get(base)
            if data is not None:
                out |= obd_pids.parse_supported(base, data)
        return out

    def _plan(self) -> None:
        wanted = list(self.user_pids) or obd_pids.default_pids(self.supported)
        self.poll_pids = [p for p in wanted if p in self.supported]
        if not self.poll_pids:
            names = ", ".join(f"{p:02X}" for p in wanted or obd_pids.DEFAULT_POLL_PIDS)
            raise SourceError(f"the car supports none of the PIDs asked for ({names})")
        self.multi = self.want_multi and self.is_can and len(self.poll_pids) > 1
        if self.multi and not self._multi_works():
            self.multi = False
        self._regroup()

    def _multi_works(self) -> bool:
        group = self.poll_pids[: obd_pids.MAX_PIDS_PER_REQUEST]
        reply = self._command("01" + "".join(f"{p:02X}" for p in group), REPLY_TIMEOUT_S)
        got: set[int] = set()
        for message in reply.messages:
            got |= set(obd_pids.split_mode01(message, group))
        return not reply.error and got >= set(group)

    def _regroup(self) -> None:
        per = obd_pids.MAX_PIDS_PER_REQUEST if self.multi else 1
        self.groups = obd_pids.group_requests(self.poll_pids, per)
        self._next_group = 0

    # -- polling ------------------------------------------------------------------------

    def _poll(self, timeout: float) -> list[Row]:
        if self._need_init:
            return self._reinit(timeout)
        group = self.groups[self._next_group]
        self._next_group = (self._next_group + 1) % len(self.groups)
        cmd = "01" + "".join(f"{p:02X}" for p in group)
        if len(group) == 1 and self.is_can:
            cmd += "1"  # one reply frame expected: the ELM returns without waiting ATST
        self.parser.expected = frozenset(group)
        if self.repeat and cmd == self._last_cmd:
            self.port.write(b"\r")  # a bare CR repeats the last command: 12 fewer bytes
        else:
            self.port.write(cmd.encode("ascii") + b"\r")
        self._last_cmd = cmd
        self.requests += 1
        done = self.parser.replies
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        rows: list[Row] = []
        while self.parser.replies == done:
            if time.monotonic() >= deadline:
                self._last_cmd = ""  # resend in full next time
                self._no_answer += 1
                if self._no_answer >= NO_ANSWER_LIMIT:
                    raise ElmNoAnswer(f"the adapter stopped answering ({cmd} timed out)")
                self.parser.reset()
                return []
            chunk = self.port.read(self.port.in_waiting or 1)
            if chunk:
                rows = self._feed(chunk, time.monotonic())
        self._no_answer = 0
        self._bytes_since_frame = 0  # a prompt arrived: the baud is right
        self._check_reply(group)
        return [(t, self._with_afr(v)) for t, v in rows]

    def _with_afr(self, values: dict[str, float]) -> dict[str, float]:
        if "lambda" in values:
            values["afr"] = values["lambda"] * self.stoich
        if "lambda_target" in values:
            values["afr_target"] = values["lambda_target"] * self.stoich
        return values

    def _check_reply(self, group: list[int]) -> None:
        error = self.parser.last_error
        if error and is_bus_error(error):
            self._need_init = True
            self._retry_init_t = time.monotonic() + 1.0
            self.set_status(SourceState.STALE, f"car not answering ({error}); retrying")
            return
        if not self.multi:
            return
        partial = not error and not set(group) <= self.parser.last_pids
        if error == "?" or partial:  # NO DATA (ignition off) says nothing about multi-PID
            self._multi_failures += 1
            if error == "?" or self._multi_failures >= MULTI_FAILURES_BEFORE_FALLBACK:
                self.multi = False
                self._regroup()
                self.parser.status_text = "multi-PID requests not answered; one PID per request"
        else:
            self._multi_failures = 0

    def _reinit(self, timeout: float) -> list[Row]:
        wait_s = self._retry_init_t - time.monotonic()
        if wait_s > 0:
            time.sleep(min(wait_s, timeout))
            return []
        try:
            self._command(f"ATSP{self.protocol_request}")
            self._connect_car()
        except SourceError as exc:
            self._retry_init_t = time.monotonic() + 2.0
            self.set_status(SourceState.STALE, f"{exc}; retrying")
        return []
