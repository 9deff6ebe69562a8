"""Dynojet JetDrive wire format (PROTOCOLS.md §7): parse, encode, map channels.

Pure functions, no sockets, so the parser is tested byte-exact and fuzzed.
Every message is one UDP datagram: an 8-byte little-endian "KLHDV" header
``key u8 | length u16 | host u16 | seq u8 | dest u16`` then ``length`` bytes.
ChannelInfo (0x01) names a provider's channels (50-byte provider name, then
34-byte ``id u16, vendor u8, name[30], unit u8`` blocks); ChannelValues (0x02)
carries 10-byte ``id u16, ts_ms u32, value f32`` blocks. Channel IDs are per
provider (host), so the mapping to canonical names is keyed by ``(host, id)``.

Units: a channel carries a unit *category*, and Dynojet's reference code
defines what each category means on the wire (``JDUnit.cs`` in the Apache-2.0
jetdrive-sharp, "Copyright 2020 Dynojet Research Inc"): metric SI whatever the
Power Core display shows -- Speed km/h, Force N, Power kW, Torque N·m,
Temperature °C, Pressure kPa, FlowRate kg/h. That is the default here; an
``imperial`` table stays for third-party providers that put hp, lb·ft, mph,
°F and inHg behind the same categories.

Parsing follows the reference receiver (``InboundKLHDVMessage.Decode``,
``JetdriveClient.OnMessageReceived``): a datagram whose declared length runs
past its end, or a ChannelInfo shorter than the 50-byte provider name, is an
error; blocks are read while a whole one fits (``idx + 10 <= length``), so a
trailing partial block is ignored, not fatal, and is counted by the caller.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from core.channels import STOICH_GASOLINE, W_PER_HP

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
    """One decoded KLHDV message: key, host, sequence, destination and value bytes."""

    key: int
    host: int
    seq: int
    dest: int
    value: bytes


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel a JetDrive provider announces: id, vendor, name and unit."""

    chan_id: int
    vendor: int
    name: str
    unit: int


@dataclass(frozen=True, slots=True)
class Provider:
    """A JetDrive provider (host) and the channels it announced."""

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


def partial_bytes(msg: Message) -> int:
    """Bytes of a trailing partial block the parsers below skip (0 for a clean message)."""
    if msg.key == KEY_CHANNEL_INFO:
        return max(len(msg.value) - PROVIDER_NAME_BYTES, 0) % INFO.size
    if msg.key == KEY_CHANNEL_VALUES:
        return len(msg.value) % VALUE.size
    return 0


def parse_channel_info(msg: Message) -> Provider:
    """The provider name and channels in a ChannelInfo message (whole 34-byte blocks)."""
    body = msg.value
    if len(body) < PROVIDER_NAME_BYTES:
        raise JetDriveError(
            f"JetDrive channel info of {len(body)} bytes is shorter than the 50-byte "
            f"provider name (host 0x{msg.host:04X})"
        )
    channels: dict[int, ChannelInfo] = {}
    for off in range(PROVIDER_NAME_BYTES, len(body) - INFO.size + 1, INFO.size):
        chan_id, vendor, name, unit = INFO.unpack_from(body, off)
        channels[chan_id] = ChannelInfo(chan_id, vendor, _text(name), unit)
    return Provider(msg.host, _text(body[:PROVIDER_NAME_BYTES]), channels)


def parse_channel_values(msg: Message) -> list[tuple[int, int, float]]:
    """``(chan_id, timestamp_ms, value)`` for each whole 10-byte block of a ChannelValues message."""
    body = msg.value
    return [
        VALUE.unpack_from(body, off) for off in range(0, len(body) - VALUE.size + 1, VALUE.size)
    ]


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

KW_PER_HP = W_PER_HP / 1000.0
"""Mechanical horsepower in kW (core.channels.W_PER_HP), the hp the project shows."""

METRIC = {
    2: ("km/h", 1.0, 0.0),
    4: ("kW", 1.0 / KW_PER_HP, 0.0),
    5: ("N·m", 1.0, 0.0),
    6: ("°C", 1.0, 0.0),
    7: ("kPa", 1.0, 0.0),
}
"""JDUnit category -> (wire unit, scale, offset) to the canonical unit (hp, N·m, km/h, °C, kPa)."""

IMPERIAL = {
    2: ("mph", 1.609344, 0.0),
    4: ("hp", 1.0, 0.0),
    5: ("lb·ft", 1.3558179483314004, 0.0),
    6: ("°F", 5 / 9, -160 / 9),
    7: ("inHg", 3.386388640341, 0.0),
}
"""The same categories for a provider that sends imperial values (``units=imperial``)."""

UNIT_SYSTEMS = {"metric": METRIC, "imperial": IMPERIAL}

_NAMES: list[tuple[str, str]] = [
    (r"^(engine |digital )?rpm( (?P<n>\d))?$", "rpm"),
    (r"^power$|^power drum 1$", "power_hp"),
    (r"^torque$|^torque drum 1$", "torque_nm"),
    (r"^(drum )?speed( drum 1)?$", "drum_speed_kph"),
    (r"^(wb |wideband )?(afr|air ?fuel( ratio)?|lambda)( \d)?\b", "lambda"),
    (r"^(map|manifold (absolute )?pressure)( \d)?$", "map_kpa"),
    (r"^(tps|throttle( position)?)( \d)?$", "tps_pct"),
    (r"^(iat|intake air temp(erature)?)$", "iat_c"),
    (r"^(clt|coolant( temp(erature)?)?|engine temp(erature)?)$", "clt_c"),
    (r"^(spark advance|ignition timing|timing)$", "spark_deg"),
    (r"^(relative )?humidity( \d)?$", "humidity_pct"),
]
"""Channel name (module prefix stripped, lower case) -> canonical. A numbered
RPM input beyond the first ("Digital RPM 2") becomes an extra ``rpm2`` column."""


def canonical_for(
    info: ChannelInfo, units: str = "metric", stoich: float = STOICH_GASOLINE
) -> tuple[str, float, float] | None:
    """``(column, scale, offset)`` for a JetDrive channel, or ``None`` when it is not one of ours.

    The ``(module)`` prefix WinPEP shows is ignored; the atmosphere module's
    pressure becomes ``baro_kpa``, its temperature ``ambient_c`` and its humidity
    ``humidity_pct``: the dyno's weather inputs to the SAE J1349 factor. AFR channels (by unit or name) become lambda.
    ``units`` names the table the Power/Torque/Speed/Temperature/Pressure
    categories are read with (``metric`` = JDUnit, the default).
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
    column = None
    if "atmo" in module and info.unit == 7:
        column = "baro_kpa"
    elif "atmo" in module and info.unit == 6:
        column = "ambient_c"
    else:
        for pattern, target in _NAMES:
            found = re.search(pattern, name)
            if found:
                number = found.groupdict().get("n")
                column = f"{target}{number}" if number and int(number) > 1 else target
                break
    if column is None:
        return None
    conv = UNIT_SYSTEMS[units].get(info.unit)
    if conv is None:
        return column, 1.0, 0.0
    if column == "map_kpa" and info.unit == 7:
        return column, 1.0, 0.0  # engine MAP channels are kPa in every setup
    return column, conv[1], conv[2]
