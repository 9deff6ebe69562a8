"""Bytes of a text log to ``str``: the encodings tuning tools actually write.

* UTF-8, with or without a byte-order mark (TunerStudio, RomRaider, most loggers);
* UTF-16 with a byte-order mark (BlueDriver, some Windows exports), and UTF-16
  without one when every other byte of ASCII text is zero;
* Windows-1252 / Latin-1 (older Windows tools: ``°C`` written as one byte 0xB0).

A file that is none of these (NUL bytes or control characters in what should be
text) is refused with one line saying so, rather than parsed into nonsense.
"""

from __future__ import annotations

import codecs

_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13, 12)) + b"\x7f"
MAX_CONTROL_FRACTION = 0.001
"""More control characters than this (per byte) in decoded text: not a text log."""


class NotTextError(ValueError):
    """The bytes are not a text log in any encoding we read."""


def detect_encoding(head: bytes) -> str:
    """The encoding of a text log from its first bytes (BOM, UTF-16 zero pattern, UTF-8)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 8:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            return "cp1252"
    return "utf-8"


def decode_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``; raises NotTextError when the bytes are not text."""
    encoding = detect_encoding(data[:65536])
    if encoding == "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "cp1252"
    if encoding == "cp1252":
        text = _cp1252(data)
    elif encoding != "utf-8":
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise NotTextError(f"not valid {encoding} text (at byte {exc.start})") from None
    if "\x00" in text:
        raise NotTextError(f"binary data (a NUL byte at character {text.index(chr(0))})")
    _check_control(text)
    if "\n" not in text and "\r" in text:
        text = text.replace("\r", "\n")  # classic Mac line ends
    return text, encoding


def _cp1252(data: bytes) -> str:
    """cp1252 leaves five bytes undefined; Latin-1 maps them, so nothing is lost."""
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _check_control(text: str) -> None:
    sample = text[:1_000_000]
    bad = sum(sample.count(chr(c)) for c in _CONTROL)
    if bad > max(2, MAX_CONTROL_FRACTION * len(sample)):
        raise NotTextError(f"binary data ({bad} control characters in the first {len(sample)})")
