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

import numpy as np

from core import channels as ch
from core.formats.csvdetect import ARROW_FLAVOURS, FLAVOURS, detect_text
from core.formats.csvlogs import read_text_log
from core.formats.csvtext import Options
from core.formats.csvwide import NeedFullText, Source
from core.formats.decode import NotTextError, decode_text, detect_encoding
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
from core.formats.table import split_lines

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

MAX_FILE_BYTES = 2 << 30
"""Logs larger than this are refused up front (memory is a few times the file size)."""

TIME_UNITS = ("ms", "s")


def _supported() -> str:
    return "MLG, " + ", ".join(v for k, v in FLAVOURS.items() if k != "csv") + ", CSV"


def detect_format(path: Path, text: str, channel_map: Mapping[str, str] | None = None) -> str:
    """The text flavour key of a decoded log, from its first lines.

    Raises:
        LogImportError: the content matches none of the formats we read.
    """
    time_name = (channel_map or {}).get("time")
    head_end = 0
    for _ in range(200):
        nxt = text.find("\n", head_end)
        if nxt < 0:
            head_end = len(text)
            break
        head_end = nxt + 1
    flavour = detect_text(split_lines(text[:head_end]), time_name)
    if flavour is None:
        if time_name is not None:
            raise LogImportError(f"{path}: no header row has a column named {time_name!r}")
        raise LogImportError(
            f"{path}: unknown log format (no MLG signature, and no header row with a time "
            f"column); name the time column with --map time=COLUMN"
        )
    return flavour


def open_log(
    path: str | Path,
    *,
    channel_map: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stoich: float = ch.STOICH_GASOLINE,
    time_unit: str | None = None,
) -> ImportedLog:
    """Read a foreign log onto canonical channels and units.

    Args:
        path: The log file (MLG, MSL, or a text log of a supported tool).
        channel_map: Explicit canonical -> original column choices (``rpm="Engine
            Speed"``); the key ``time`` names the time column.
        progress: Called as ``progress(done, total)`` while reading a long file.
        stoich: Stoichiometric AFR used when lambda is derived from AFR.
        time_unit: ``ms`` or ``s`` for a time column whose unit the log does not say.

    Raises:
        LogImportError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise LogImportError(f"--time-unit {time_unit!r}: expected ms or s")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
            size = path.stat().st_size
    except OSError as exc:
        raise LogImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise LogImportError(f"{path}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise LogImportError(f"{path}: {size / 1e9:.1f} GB is larger than the 2 GB import limit")
    # Garbage numbers (1e308, inf) overflow in unit and clock arithmetic: they become
    # inf/NaN, which later steps drop; numpy's warnings would break the one-line rule.
    with np.errstate(all="ignore"):
        return _open(path, head, size, channel_map, progress, stoich, time_unit)


def _open(
    path: Path,
    head: bytes,
    size: int,
    channel_map: Mapping[str, str] | None,
    progress: Callable[[int, int], None] | None,
    stoich: float,
    time_unit: str | None,
) -> ImportedLog:
    """open_log after the checks: MLG, the Arrow fast path, or the text path."""
    raw: RawLog
    try:
        if head.startswith(MAGIC[:5]):
            raw = read_mlg(path, progress)
        else:
            options = Options(dict(channel_map or {}), time_unit)
            fast = _read_fast(path, size, options, channel_map, progress)
            if fast is not None:
                raw = fast
            else:
                data = path.read_bytes()
                try:
                    text, _ = decode_text(data)
                except NotTextError as exc:
                    raise LogImportError(
                        f"{path}: unknown log format ({exc}; not MLG and not a text log); "
                        f"supported: {_supported()}"
                    ) from None
                del data
                if not text.strip():
                    raise LogImportError(f"{path}: the file holds only blank lines")
                kind = detect_format(path, text, channel_map)
                raw = read_text_log(path, text, kind, options, progress)
                del text
    except OSError as exc:
        raise LogImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except MemoryError:
        raise LogImportError(f"{path}: not enough memory to import this file") from None
    return build_imported(raw, path, channel_map, stoich)


FAST_MIN_BYTES = 4 << 20
"""Text logs at least this large try the Arrow fast path first."""
_FAST_HEAD_BYTES = 1 << 18


def _read_fast(
    path: Path,
    size: int,
    options: Options,
    channel_map: Mapping[str, str] | None,
    progress: Callable[[int, int], None] | None,
) -> RawLog | None:
    """A large UTF-8 table streamed from the file by Arrow, or None for the text path."""
    if size < FAST_MIN_BYTES:
        return None
    with path.open("rb") as fh:
        head_bytes = fh.read(_FAST_HEAD_BYTES)
    encoding = detect_encoding(head_bytes[:65536])
    if encoding not in ("utf-8", "utf-8-sig"):
        return None
    head_bytes = head_bytes[: head_bytes.rfind(b"\n") + 1]
    try:
        head = head_bytes.decode("utf-8-sig")
        decode_text(head_bytes)  # the same binary / control-character checks
    except (UnicodeDecodeError, NotTextError):
        return None
    try:
        kind = detect_format(path, head, channel_map)
    except LogImportError:
        return None
    if kind not in ARROW_FLAVOURS:
        return None
    try:
        bom = 3 if encoding == "utf-8-sig" else 0
        return read_text_log(path, head, kind, options, progress, Source(str(path), bom))
    except NeedFullText:
        return None


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
