"""Dynojet JetDrive wire format (PROTOCOLS.md §7): parse, encode, map channels.

Pure functions, no sockets, so the parser is tested byte-exact and fuzzed.
Every message is one UDP datagram: an 8-byte little-endian "KLHDV" header
``key u8 | length u16 | host u16 | seq u8 | dest u16`` then ``length`` bytes.
ChannelInfo (0x01) names a provider's channels (50-byte provider name, then
34-byte ``id u16, vendor u8, name[30], unit u8`` blocks); ChannelValues (0x02)
carries 10-byte ``id u16, ts_ms u32, value f32`` blocks. Channel IDs are per
provider (host), so the mapping to canonical names is keyed by ``(host, id)``.

JetDrive sends a unit *category* (Power, Torque, Speed ...), not the unit, so
the unit system Power Core is set to is an option: imperial (hp, lb·ft, mph,
°F, inHg; the US default) or metric (kW, N·m, km/h, °C, kPa). UNVERIFIED
against a live Power Core; the choice is one URI option away.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from core.channels import STOICH_GASOLINE

KEY_CHANNEL_INFO = 0x01
KEY_CHANNEL_VALUES = 0x02
KEY_CLEAR_CHANNEL_INFO = 0x03
KEY_PING = 0x04
KEY_PONG = 0x05
KEY_REQUEST_CHANNEL_INFO = 0x06
ALL_HOSTS = 0xFFFF
HEADER = struct.Struct("<BHHBH")
VALUE = struct.Struct("<HIf")
INFO = struct.Struct("<HB30sB")
PROVIDER_NAME_BYTES = 50
DEFAULT_GROUP = "224.0.2.10"
DEFAULT_PORT = 22344

UNITS = {
    0: "Time", 1: "Distance", 2: "Speed", 3: "Force", 4: "Power", 5: "Torque",
    6: "Temperature", 7: "Pressure", 8: "RPM", 9: "GearRatio", 10: "Acceleration",
    11: "AFR", 12: "FlowRate", 13: "Lambda", 14: "Volts", 15: "Amps", 16: "Percentage",
    254: "Extended", 255: "NoUnit",
}  # fmt: skip
"""JetDrive unit categories."""


class JetDriveError(ValueError):
    """A datagram that is not a well-formed JetDrive message (the text says what is wrong)."""


@dataclass(frozen=True, slots=True)
class Message:
    key: int
    host: int
    seq: int
    dest: int
    value: bytes


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    chan_id: int
    vendor: int
    name: str
    unit: int


@dataclass(frozen=True, slots=True)
class Provider:
    host: int
    name: str
    channels: dict[int, ChannelInfo] = field(default_factory=dict)


def parse_message(datagram: bytes) -> Message:
    """Split one datagram into header fields and value bytes."""
    if len(datagram) < HEADER.size:
        raise JetDriveError(
            f"JetDrive datagram of {len(datagram)} bytes is shorter than its header"
        )
    key, length, host, seq, dest = HEADER.unpack_from(datagram)
    if HEADER.size + length > len(datagram):
        raise JetDriveError(
            f"JetDrive message key 0x{key:02X} says {length} bytes, datagram has "
            f"{len(datagram) - HEADER.size}"
        )
    return Message(key, host, seq, dest, bytes(datagram[HEADER.size : HEADER.size + length]))


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()


def parse_channel_info(msg: Message) -> Provider:
    """The provider name and channels in a ChannelInfo message."""
    body = msg.value
    if len(body) < PROVIDER_NAME_BYTES or (len(body) - PROVIDER_NAME_BYTES) % INFO.size:
        raise JetDriveError(
            f"JetDrive channel info of {len(body)} bytes is not 50 + n x 34 (host 0x{msg.host:04X})"
        )
    channels: dict[int, ChannelInfo] = {}
    for off in range(PROVIDER_NAME_BYTES, len(body), INFO.size):
        chan_id, vendor, name, unit = INFO.unpack_from(body, off)
        channels[chan_id] = ChannelInfo(chan_id, vendor, _text(name), unit)
    return Provider(msg.host, _text(body[:PROVIDER_NAME_BYTES]), channels)


def parse_channel_values(msg: Message) -> list[tuple[int, int, float]]:
    """``(chan_id, timestamp_ms, value)`` for each block of a ChannelValues message."""
    body = msg.value
    if len(body) % VALUE.size:
        raise JetDriveError(f"JetDrive channel values of {len(body)} bytes is not n x 10")
    return [VALUE.unpack_from(body, off) for off in range(0, len(body), VALUE.size)]


def encode_message(
    key: int, host: int, seq: int, value: bytes = b"", dest: int = ALL_HOSTS
) -> bytes:
    return HEADER.pack(key, len(value), host & 0xFFFF, seq & 0xFF, dest & 0xFFFF) + value


def encode_channel_info(provider: str, channels: list[ChannelInfo]) -> bytes:
    body = provider.encode()[:PROVIDER_NAME_BYTES].ljust(PROVIDER_NAME_BYTES, b"\0")
    for ch in channels:
        body += INFO.pack(ch.chan_id, ch.vendor, ch.name.encode()[:30].ljust(30, b"\0"), ch.unit)
    return body


def encode_channel_values(values: list[tuple[int, int, float]]) -> bytes:
    return b"".join(
        VALUE.pack(chan_id, ts_ms & 0xFFFFFFFF, value) for chan_id, ts_ms, value in values
    )


# -- mapping to canonical channels --------------------------------------------------

_IMPERIAL = {
    2: ("kph_from_mph", 1.609344, 0.0),
    4: ("hp", 1.0, 0.0),
    5: ("nm_from_lbft", 1.3558179483314004, 0.0),
    6: ("c_from_f", 5 / 9, -160 / 9),
    7: ("kpa_from_inhg", 3.386388640341, 0.0),
}
_METRIC = {
    2: ("kph", 1.0, 0.0),
    4: ("hp_from_kw", 1 / 0.745699872, 0.0),
    5: ("nm", 1.0, 0.0),
    6: ("c", 1.0, 0.0),
    7: ("kpa", 1.0, 0.0),
}
_NAMES: list[tuple[str, str]] = [
    (r"^(engine )?rpm( \d)?$", "rpm"),
    (r"^power$|^power drum 1$", "power_hp"),
    (r"^torque$|^torque drum 1$", "torque_nm"),
    (r"^(drum )?speed( drum 1)?$", "drum_speed_kph"),
    (r"^(wb |wideband )?(afr|air ?fuel( ratio)?|lambda)( \d)?\b", "lambda"),
    (r"^(map|manifold (absolute )?pressure)( \d)?$", "map_kpa"),
    (r"^(tps|throttle( position)?)( \d)?$", "tps_pct"),
    (r"^(iat|intake air temp(erature)?)$", "iat_c"),
    (r"^(clt|coolant( temp(erature)?)?|engine temp(erature)?)$", "clt_c"),
    (r"^(spark advance|ignition timing|timing)$", "spark_deg"),
]


def canonical_for(
    info: ChannelInfo, metric: bool = False, stoich: float = STOICH_GASOLINE
) -> tuple[str, float, float] | None:
    """``(canonical, scale, offset)`` for a JetDrive channel, or ``None`` when it is not one of ours.

    The ``(module)`` prefix WinPEP shows is ignored; the atmosphere module's
    pressure becomes ``baro_kpa``. AFR channels (by unit or name) become lambda.
    """
    module = ""
    name = info.name.strip()
    match = re.match(r"^\(([^)]*)\)\s*(.*)$", name)
    if match:
        module, name = match.group(1).lower(), match.group(2)
    name = name.lower().strip()
    if info.unit == 11 or (info.unit != 13 and re.search(r"\bafr\b", name)):
        return "lambda", 1.0 / stoich, 0.0
    if info.unit == 13:
        return "lambda", 1.0, 0.0
    canonical = None
    if "atmo" in module and info.unit == 7:
        canonical = "baro_kpa"
    else:
        for pattern, target in _NAMES:
            if re.search(pattern, name):
                canonical = target
                break
    if canonical is None:
        return None
    conv = (_METRIC if metric else _IMPERIAL).get(info.unit)
    if conv is None:
        return canonical, 1.0, 0.0
    if canonical == "map_kpa" and info.unit == 7 and not metric:
        return canonical, 1.0, 0.0  # engine MAP channels are kPa even in imperial setups
    return canonical, conv[1], conv[2]
