"""Importers for logs other tuning tools write: MLG, MSL and CSV flavours.

``open_log`` is the one entry point: it recognises the format from the file's
content (the MLVLG magic, the MSL signature lines, the CSV flavour's header),
never from the extension alone, because tuners rename files freely. Every format
ends as the same :class:`ImportedLog` on canonical channels and units, so replay,
``dynoai coverage`` and ``dynoai import`` share one path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from core import channels as ch
from core.formats.csvlogs import FLAVOURS, detect_csv, read_csv_log
from core.formats.mapping import MappedChannel
from core.formats.mlg import MAGIC, read_mlg
from core.formats.model import (
    SOURCE_NAME,
    ImportedLog,
    ImportSummary,
    LogImportError,
    RawLog,
    build_imported,
)
from core.formats.msl import looks_like_msl, read_msl

__all__ = [
    "SOURCE_NAME",
    "ImportSummary",
    "ImportedLog",
    "LogImportError",
    "MappedChannel",
    "detect_format",
    "open_log",
    "parse_channel_map",
]

_SNIFF_BYTES = 16384


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def detect_format(path: Path, head: bytes, channel_map: Mapping[str, str] | None = None) -> str:
    """``mlg``, ``msl`` or a CSV flavour key, from the first bytes of the file.

    Raises:
        LogImportError: the content matches none of the formats we read.
    """
    if head.startswith(MAGIC[:5]):
        return "mlg"
    if b"\x00" in head:
        raise LogImportError(
            f"{path}: unknown log format (binary, not MLG); "
            f"supported: MLG, MSL, CSV ({', '.join(FLAVOURS.values())})"
        )
    lines = _decode(head).splitlines()
    if len(head) == _SNIFF_BYTES and lines:
        lines = lines[:-1]
    if looks_like_msl(lines):
        return "msl"
    flavour = detect_csv(lines, (channel_map or {}).get("time"))
    if flavour is None:
        raise LogImportError(
            f"{path}: unknown log format (no MLG signature, no MSL header, no CSV header "
            f"with a time column); name the time column with --map time=<column>"
        )
    return flavour


def open_log(
    path: str | Path,
    *,
    channel_map: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stoich: float = ch.STOICH_GASOLINE,
) -> ImportedLog:
    """Read a foreign log onto canonical channels and units.

    Args:
        path: The log file (MLG, MSL or CSV of a supported flavour).
        channel_map: Explicit canonical -> original column choices (``rpm="Engine
            Speed"``); the key ``time`` names the time column of a plain CSV.
        progress: Called as ``progress(done, total)`` while reading a long file.
        stoich: Stoichiometric AFR used when lambda is derived from AFR.

    Raises:
        LogImportError: unreadable, unknown format, truncated, or no rpm column.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise LogImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise LogImportError(f"{path}: the file is empty")
    kind = detect_format(path, head, channel_map)
    raw: RawLog
    try:
        if kind == "mlg":
            raw = read_mlg(path, progress)
        else:
            text = _decode(path.read_bytes())
            if kind == "msl":
                raw = read_msl(path, text, progress)
            else:
                raw = read_csv_log(path, text, kind, channel_map, progress)
    except OSError as exc:
        raise LogImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return build_imported(raw, path, channel_map, stoich)


def parse_channel_map(spec: str | list[str] | None) -> dict[str, str]:
    """``'rpm="Engine Speed",map_kpa=MAP'`` (or a list of such) -> ``{"rpm": "Engine Speed", ...}``.

    Raises:
        LogImportError: an item is not ``channel=column``.
    """
    items: list[str] = []
    for part in [spec] if isinstance(spec, str) else list(spec or []):
        items.extend(_split_items(part))
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip().strip('"').strip("'")
        if not sep or not key or not value:
            raise LogImportError(f'--map {item!r}: expected channel="column name"')
        out[key] = value
    return out


def _split_items(spec: str) -> list[str]:
    """Split on commas outside double quotes."""
    items, cur, quoted = [], [], False
    for char in spec:
        if char == '"':
            quoted = not quoted
            cur.append(char)
        elif char == "," and not quoted:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(char)
    items.append("".join(cur))
    return [i for i in items if i.strip()]
