"""OBD-II Mode 01 PIDs (SAE J1979): lengths, decoding to canonical channels, bitmaps.

Pure functions shared by the ELM327 driver (text replies) and the OBD-over-CAN
driver (ISO-TP payloads), so both agree byte for byte on what a reply means.
Formulas follow SAE J1979 as python-OBD implements them, except two of its
gotchas: wide-range O2 PIDs keep the lambda bytes (A, B), and PID 0x44 uses the
exact factor 2/65536 rather than the rounded 0.0000305.

Channel names: the first wide-range O2 sensor (PID 0x24 or 0x34) is canonical
``lambda``; sensors 2..8 become the extra columns ``lambda_o2s2`` .. ``lambda_o2s8``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

MODE01_REPLY = 0x41
"""First byte of a positive Mode 01 reply (0x01 + 0x40)."""

MAX_PIDS_PER_REQUEST = 6
"""ISO 15765-4 allows up to six PIDs in one Mode 01 request (CAN protocols only)."""

BITMAP_PIDS = (0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0)
"""PIDs whose reply is a 32-bit 'PIDs supported [base+1 .. base+0x20]' bitmap."""


@dataclass(frozen=True, slots=True)
class PidInfo:
    """What one Mode 01 PID carries."""

    pid: int
    n_bytes: int
    """Data bytes after ``41 <pid>``."""
    label: str


def _lam(a: int, b: int) -> float:
    return (256 * a + b) * 2.0 / 65536.0


PID_LENGTHS: dict[int, int] = {
    **dict.fromkeys(BITMAP_PIDS, 4),
    0x01: 4, 0x03: 2, 0x04: 1, 0x05: 1, 0x06: 1, 0x07: 1, 0x08: 1, 0x09: 1,
    0x0A: 1, 0x0B: 1, 0x0C: 2, 0x0D: 1, 0x0E: 1, 0x0F: 1, 0x10: 2, 0x11: 1,
    0x12: 1, 0x13: 1, 0x14: 2, 0x15: 2, 0x16: 2, 0x17: 2, 0x18: 2, 0x19: 2,
    0x1A: 2, 0x1B: 2, 0x1C: 1, 0x1D: 1, 0x1E: 1, 0x1F: 2, 0x21: 2, 0x22: 2,
    0x23: 2, **dict.fromkeys(range(0x24, 0x2C), 4), 0x2C: 1, 0x2D: 1, 0x2E: 1,
    0x2F: 1, 0x30: 1, 0x31: 2, 0x32: 2, 0x33: 1, **dict.fromkeys(range(0x34, 0x3C), 4),
    0x3C: 2, 0x3D: 2, 0x3E: 2, 0x3F: 2, 0x41: 4, 0x42: 2, 0x43: 2, 0x44: 2,
    0x45: 1, 0x46: 1, 0x47: 1, 0x48: 1, 0x49: 1, 0x4A: 1, 0x4B: 1, 0x4C: 1,
    0x4D: 2, 0x4E: 2,
}  # fmt: skip
"""Data length of each standard Mode 01 PID; needed to split multi-PID replies."""

SUPPORTED_PIDS: dict[int, PidInfo] = {
    p.pid: p
    for p in (
        PidInfo(0x04, 1, "calculated engine load"),
        PidInfo(0x05, 1, "coolant temperature"),
        PidInfo(0x0B, 1, "intake manifold absolute pressure"),
        PidInfo(0x0C, 2, "engine speed"),
        PidInfo(0x0D, 1, "vehicle speed"),
        PidInfo(0x0E, 1, "timing advance"),
        PidInfo(0x0F, 1, "intake air temperature"),
        PidInfo(0x10, 2, "mass air flow rate"),
        PidInfo(0x11, 1, "throttle position"),
        *(PidInfo(p, 4, f"O2 S{p - 0x23} wide-range lambda + volts") for p in range(0x24, 0x2C)),
        PidInfo(0x33, 1, "barometric pressure"),
        *(PidInfo(p, 4, f"O2 S{p - 0x33} wide-range lambda + mA") for p in range(0x34, 0x3C)),
        PidInfo(0x42, 2, "control module voltage"),
        PidInfo(0x44, 2, "commanded equivalence ratio"),
    )
}
"""The PIDs :func:`decode_pid` turns into channels."""

DEFAULT_POLL_PIDS = (0x0C, 0x0B, 0x11, 0x0F, 0x05, 0x0E, 0x0D, 0x44)
"""What a tuner wants, fastest-changing first (a wideband PID is added when supported)."""

LOAD_FALLBACK_PIDS = (0x04, 0x10)
"""Calculated load and MAF: polled by default when the car has no MAP PID (a MAF car),
so the grid still has a load axis."""


def default_pids(supported: Collection[int]) -> list[int]:
    """The default poll list for a car with these PIDs supported.

    Tuner PIDs it supports, its first wideband PID (fourth), and load + MAF when
    it has no MAP sensor.
    """
    pids = [p for p in DEFAULT_POLL_PIDS if p in supported]
    if 0x0B not in supported:
        at = 1 if pids and pids[0] == 0x0C else 0
        pids[at:at] = [p for p in LOAD_FALLBACK_PIDS if p in supported]
    wide = wideband_pid(supported)
    if wide is not None:
        pids.insert(min(3, len(pids)), wide)
    return pids


class PidDecodeError(ValueError):
    """A PID reply too short for its PID, or a PID this module does not decode."""


def decode_pid(pid: int, data: bytes) -> dict[str, float]:
    """Decode the data bytes of one Mode 01 PID (after ``41 <pid>``) to canonical channels.

    Raises:
        PidDecodeError: unknown PID or too few bytes.
    """
    info = SUPPORTED_PIDS.get(pid)
    if info is None:
        raise PidDecodeError(f"PID 0x{pid:02X} is not decoded")
    if len(data) < info.n_bytes:
        raise PidDecodeError(f"PID 0x{pid:02X} needs {info.n_bytes} bytes, got {len(data)}")
    a = data[0]
    b = data[1] if info.n_bytes > 1 else 0
    if pid == 0x0C:
        return {"rpm": (256 * a + b) / 4.0}
    if pid == 0x0B:
        return {"map_kpa": float(a)}
    if pid == 0x04:
        return {"load_pct": a * 100.0 / 255.0}
    if pid == 0x10:
        return {"maf_gs": (256 * a + b) / 100.0}
    if pid == 0x11:
        return {"tps_pct": a * 100.0 / 255.0}
    if pid == 0x0F:
        return {"iat_c": a - 40.0}
    if pid == 0x05:
        return {"clt_c": a - 40.0}
    if pid == 0x0D:
        return {"vehicle_speed_kph": float(a)}
    if pid == 0x0E:
        return {"spark_deg": a / 2.0 - 64.0}
    if pid == 0x33:
        return {"baro_kpa": float(a)}
    if pid == 0x42:
        return {"batt_v": (256 * a + b) / 1000.0}
    if pid == 0x44:
        return {"lambda_target": _lam(a, b)}
    sensor = pid - 0x23 if pid < 0x34 else pid - 0x33
    name = "lambda" if sensor == 1 else f"lambda_o2s{sensor}"
    return {name: _lam(a, b)}


def wideband_pid(supported: Iterable[int]) -> int | None:
    """The PID of the first wide-range O2 sensor the ECU supports (0x24.. before 0x34..)."""
    have = set(supported)
    for pid in (*range(0x24, 0x2C), *range(0x34, 0x3C)):
        if pid in have:
            return pid
    return None


def parse_supported(base_pid: int, data: bytes) -> set[int]:
    """PIDs flagged in a 'PIDs supported' bitmap reply (bit 7 of A = base + 1)."""
    if len(data) < 4:
        raise PidDecodeError(f"PID 0x{base_pid:02X} bitmap needs 4 bytes, got {len(data)}")
    bits = int.from_bytes(data[:4], "big")
    return {base_pid + 32 - i for i in range(32) if bits >> i & 1}


def split_mode01(payload: bytes, expected: Collection[int] | None = None) -> dict[int, bytes]:
    """Split a (multi-PID) Mode 01 reply ``41 p1 d.. p2 d..`` into ``{pid: data}``.

    Stops at the first PID of unknown length or at a truncated tail (padding),
    keeping what was decoded before it; a payload not starting 0x41 gives ``{}``.
    With ``expected`` (the PIDs requested), a repeated ``41`` before a requested
    PID is skipped (some ECUs and the ELM327-emulator repeat the service byte
    inside a multi-PID answer) and an unrequested PID ends the split.
    """
    out: dict[int, bytes] = {}
    if len(payload) < 2 or payload[0] != MODE01_REPLY:
        return out
    i = 1
    while i < len(payload):
        pid = payload[i]
        if expected is not None and pid not in expected:
            if pid == MODE01_REPLY and i + 1 < len(payload) and payload[i + 1] in expected:
                i += 1
                continue
            break
        n = PID_LENGTHS.get(pid)
        if n is None or i + 1 + n > len(payload):
            break
        out[pid] = bytes(payload[i + 1 : i + 1 + n])
        i += 1 + n
    return out


def decode_mode01(payload: bytes) -> dict[str, float]:
    """All channels in one Mode 01 reply payload (PIDs this module does not decode are skipped)."""
    values: dict[str, float] = {}
    for pid, data in split_mode01(payload).items():
        if pid in SUPPORTED_PIDS:
            values.update(decode_pid(pid, data))
    return values


def group_requests(pids: Iterable[int], per_request: int = MAX_PIDS_PER_REQUEST) -> list[list[int]]:
    """Split PIDs into request groups of at most ``per_request`` (1 for non-CAN protocols)."""
    if per_request < 1:
        raise ValueError("per_request must be at least 1")
    ordered = list(dict.fromkeys(pids))
    return [ordered[i : i + per_request] for i in range(0, len(ordered), per_request)]


def request_bytes(pids: Iterable[int]) -> bytes:
    """The Mode 01 request payload for these PIDs, e.g. ``01 0C 0B 11``."""
    return bytes([0x01, *pids])


def parse_pid_option(text: str | None, where: str) -> list[int]:
    """The ``pids=0C,0B,...`` URI option: hex PIDs this module decodes, in order.

    Raises:
        SourceError: an entry that is not hex, or a PID with no decoder here.
    """
    from core.source import SourceError

    pids: list[int] = []
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        try:
            pid = int(item, 16)
        except ValueError:
            raise SourceError(f"{where}: pids entry {item!r} is not a hex PID like 0C") from None
        if pid not in SUPPORTED_PIDS:
            known = ",".join(f"{p:02X}" for p in sorted(SUPPORTED_PIDS))
            raise SourceError(f"{where}: PID {item} is not one dynoai decodes; known: {known}")
        pids.append(pid)
    return pids
