"""What a TunerStudio ini says, as data: channel definitions, commands, block decoding.

Parsed from the file by :mod:`drivers.tsini`; used by :mod:`drivers.tunerstudio`.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field

from drivers.tsexpr import Expr

TYPES: dict[str, tuple[str, int]] = {
    "U08": ("B", 1), "S08": ("b", 1), "U16": ("H", 2), "S16": ("h", 2),
    "U32": ("I", 4), "S32": ("i", 4), "F32": ("f", 4),
}  # fmt: skip
"""ini type -> (struct code, size in bytes)."""
_FORMAT = re.compile(r"%(\d?)([oci])")


class IniError(ValueError):
    """A malformed ini line: ``FILE:LINE: what is wrong``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A value read straight from the realtime block (``scalar`` or ``bits``)."""

    name: str
    kind: str
    type: str
    offset: int
    units: str = ""
    scale: float = 1.0
    translate: float = 0.0
    bits: tuple[int, int] | None = None
    line: int = 0

    @property
    def size(self) -> int:
        return TYPES[self.type][1]

    def decode(self, block: bytes, byte_order: str) -> float:
        raw = struct.unpack_from(byte_order + TYPES[self.type][0], block, self.offset)[0]
        if self.bits is not None:
            lo, hi = self.bits
            return float((int(raw) >> lo) & ((1 << (hi - lo + 1)) - 1))
        return (float(raw) + self.translate) * self.scale


@dataclass(frozen=True, slots=True)
class ComputedDef:
    """A channel TunerStudio computes from others (``name = { expression }``)."""

    name: str
    expr: Expr
    units: str = ""
    line: int = 0


@dataclass
class EcuIni:
    """What one ini says about one firmware's serial protocol and realtime block."""

    path: str
    signature: str = ""
    query_command: str = ""
    version_info: str = ""
    endianness: str = "little"
    envelope: bool = False
    """True: msEnvelope_1.0 (length + payload + CRC32) framing; False: plain commands."""
    och_command: str = ""
    och_block_size: int = 0
    blocking_factor: int = 0
    """Largest realtime chunk per request (0 = no limit given)."""
    fields: dict[str, FieldDef] = field(default_factory=dict)
    computed: dict[str, ComputedDef] = field(default_factory=dict)
    computed_order: list[str] = field(default_factory=list)
    """Computed channels that can be evaluated, dependencies first."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Channels not decoded, with why (needs a tune constant, a function, ...)."""
    symbols: frozenset[str] = frozenset()
    och_line: int = 0

    @property
    def byte_order(self) -> str:
        return "<" if self.endianness == "little" else ">"

    def decode(self, block: bytes) -> dict[str, float]:
        """Every readable and computable channel from a realtime block (missing bytes: NaN)."""
        order = self.byte_order
        values: dict[str, float] = {}
        for name, fdef in self.fields.items():
            if fdef.offset + fdef.size <= len(block):
                values[name] = fdef.decode(block, order)
            else:
                values[name] = math.nan
        for name in self.computed_order:
            try:
                values[name] = self.computed[name].expr.evaluate(values)
            except (KeyError, OverflowError, ValueError):
                values[name] = math.nan
        return values

    def och_request(self, offset: int, count: int, can_id: int = 0) -> bytes:
        """The realtime command for ``count`` bytes from ``offset`` (before any framing)."""
        return expand_command(self.och_command, self.endianness, offset, count, can_id)

    def query_request(self, can_id: int = 0) -> bytes:
        return expand_command(self.query_command or "Q", self.endianness, 0, 0, can_id)

    @property
    def och_has_range(self) -> bool:
        """Whether the realtime command takes offset/count (else it returns the whole block)."""
        return "%" in self.och_command


def expand_command(template: str, endianness: str, offset: int, count: int, can_id: int) -> bytes:
    r"""Bytes of a TunerStudio command string: ``\xHH``, ``\$tsCanId``, ``%2o`` offset, ``%2c`` count."""
    out = bytearray()
    order = "little" if endianness == "little" else "big"
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template):
            nxt = template[i + 1]
            if nxt == "x" and re.match(r"[0-9a-fA-F]{2}", template[i + 2 : i + 4]):
                out.append(int(template[i + 2 : i + 4], 16))
                i += 4
                continue
            if nxt == "$":
                m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", template[i + 2 :])
                if m is None or m.group(0) != "tsCanId":
                    raise ValueError(f"unknown variable in command {template!r}")
                out.append(can_id & 0xFF)
                i += 2 + len(m.group(0))
                continue
            escapes = {"n": 10, "r": 13, "t": 9, "0": 0, "\\": 92, '"': 34}
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            raise ValueError(f"unknown escape \\{nxt} in command {template!r}")
        if ch == "%":
            m = _FORMAT.match(template, i)
            if m is None:
                raise ValueError(f"unknown %-field in command {template!r}")
            width = int(m.group(1) or "1")
            if m.group(2) == "i":
                raise ValueError(f"command {template!r} needs a page id: not a realtime command")
            value = offset if m.group(2) == "o" else count
            out += value.to_bytes(width, "little" if order == "little" else "big")
            i = m.end()
            continue
        out += ch.encode("latin-1")
        i += 1
    return bytes(out)
