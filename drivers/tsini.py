"""Read an ECU's TunerStudio ``.ini``: signature, realtime command, framing and output channels.

Every TunerStudio-compatible ECU (Speeduino, rusEFI, MegaSquirt 2/3) ships an
``.ini`` that says how to talk to *that* firmware: the signature its query command
answers (``[MegaTune]``/``[TunerStudio]`` ``signature``, ``queryCommand``), the
framing (``messageEnvelopeFormat = msEnvelope_1.0`` = CRC32 envelope; absent =
plain commands), the byte order (``endianness``), the realtime command and block
size (``ochGetCommand``, ``ochBlockSize``) and where each value sits in the block
(``[OutputChannels]``). Offsets move between firmware releases, so a driver must
take them from the ini that matches the ECU's signature, never from a fixed table.

Only what is needed to decode the realtime block is read; other sections pass
through the preprocessor and are otherwise ignored. Format, from EFI Analytics'
"ECU Definition files" description and the inis the firmwares publish:

- ``#if SYMBOL`` / ``#elif`` / ``#else`` / ``#endif``, ``#set`` / ``#unset``;
  symbols default from ``[SettingGroups]`` (a group's ``DEFAULT`` option sets
  nothing, otherwise its first option; a group without options is an off flag).
  ``CELSIUS`` is set unless the caller unsets it: the project works in °C.
- ``name = scalar, TYPE, OFFSET, "units", SCALE, TRANSLATE``:
  value = (raw + TRANSLATE) * SCALE (TunerStudio's ``userValue = (msValue +
  translate) * scale``), TYPE one of U08 S08 U16 S16 U32 S32 F32.
- ``name = bits, TYPE, OFFSET, [lo:hi]``: bits lo..hi of the word, unsigned.
- ``name = { expression }``: computed by TunerStudio (see :mod:`drivers.tsexpr`).
  Those that only need other channels are evaluated; those that need tune
  constants or functions are listed in :attr:`EcuIni.skipped`, not guessed.

A malformed line is one :class:`IniError` naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from drivers.tsdefs import (
    TYPES,
    ComputedDef,
    EcuIni,
    FieldDef,
    IniError,
    expand_command,
)
from drivers.tsexpr import ExprError, parse_expr

__all__ = ["EcuIni", "FieldDef", "ComputedDef", "IniError", "load_ini", "parse_ini"]

ENVELOPE_FORMAT = "msenvelope_1.0"
DEFAULT_SYMBOLS = frozenset({"CELSIUS"})
"""Symbols set before the file's own: temperatures in °C."""

_BITS = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*\]$")
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*)$")
_HEADER_SECTIONS = ("megatune", "tunerstudio", "constants")
# -- parsing ---------------------------------------------------------------------------


def load_ini(
    path: str | Path, set_symbols: Iterable[str] = (), unset_symbols: Iterable[str] = ()
) -> EcuIni:
    """Read and parse an ini file; raises :class:`IniError` (unreadable file too)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise IniError(name, 0, f"cannot read the ini: {exc.strerror or exc}") from None
    # The inis in the wild are Latin-1 or UTF-8 ("°C"); only ASCII matters for decoding.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_ini(text, name, set_symbols, unset_symbols)


def parse_ini(
    text: str,
    path: str = "<ini>",
    set_symbols: Iterable[str] = (),
    unset_symbols: Iterable[str] = (),
) -> EcuIni:
    """Parse ini text (see the module docstring for what is read)."""
    lines = text.splitlines()
    forced_on, forced_off = set(set_symbols), set(unset_symbols)
    symbols = (set(DEFAULT_SYMBOLS) | _group_defaults(lines)) - forced_off
    symbols |= forced_on
    ini = EcuIni(path)
    section = ""
    # if-stack entries: (parent active, this branch active, a branch already taken, line)
    stack: list[tuple[bool, bool, bool, int]] = []
    active = True
    for number, raw_line in enumerate(lines, 1):
        line = _strip_comment(raw_line).strip()
        if not line:
            continue
        if line.startswith("#"):
            active = _directive(line, number, path, stack, active, symbols, forced_on, forced_off)
            continue
        if not active:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise IniError(path, number, f"section header {line!r} has no closing ']'")
            section = line[1:-1].strip().lower()
            continue
        m = _KEY_VALUE.match(line)
        if m is None:
            if section == "outputchannels":
                raise IniError(path, number, f"expected 'name = value', found {line!r}")
            continue
        key, value = m.group(1), m.group(2).strip()
        if section in _HEADER_SECTIONS:
            _header(ini, key, value, number)
        elif section == "outputchannels":
            _output_channel(ini, key, value, number)
    if stack:
        raise IniError(path, stack[-1][3], "#if without #endif")
    ini.symbols = frozenset(symbols)
    _finish(ini)
    return ini


def _strip_comment(line: str) -> str:
    """Drop a ``;`` comment that is not inside quotes or braces."""
    quote = False
    depth = 0
    for i, ch in enumerate(line):
        if ch == '"':
            quote = not quote
        elif not quote and ch == "{":
            depth += 1
        elif not quote and ch == "}":
            depth = max(0, depth - 1)
        elif ch == ";" and not quote and depth == 0:
            return line[:i]
    return line


def _group_defaults(lines: list[str]) -> set[str]:
    """Symbols set by ``[SettingGroups]`` defaults (first option, or none for DEFAULT)."""
    section = ""
    groups: list[list[str]] = []
    for raw in lines:
        line = _strip_comment(raw).strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section != "settinggroups":
            continue
        m = _KEY_VALUE.match(line)
        if m is None:
            continue
        key = m.group(1).lower()
        first = m.group(2).split(",")[0].strip()
        if key == "settinggroup":
            groups.append([])
        elif key == "settingoption" and groups:
            groups[-1].append(first)
    return {options[0] for options in groups if options and "DEFAULT" not in options}


def _directive(
    line: str,
    number: int,
    path: str,
    stack: list[tuple[bool, bool, bool, int]],
    active: bool,
    symbols: set[str],
    forced_on: set[str],
    forced_off: set[str],
) -> bool:
    """Apply one ``#`` line; returns whether the following lines are active."""
    parts = line[1:].split()
    word = parts[0].lower() if parts else ""
    arg = parts[1] if len(parts) > 1 else ""
    if word in ("if", "elif") and not arg:
        raise IniError(path, number, f"#{word} needs a symbol")
    if word == "if":
        taken = arg in symbols
        stack.append((active, active and taken, taken, number))
        return active and taken
    if word in ("elif", "else", "endif") and not stack:
        raise IniError(path, number, f"#{word} without #if")
    if word == "elif":
        parent, _, taken, start = stack[-1]
        now = not taken and arg in symbols
        stack[-1] = (parent, parent and now, taken or now, start)
        return parent and now
    if word == "else":
        parent, _, taken, start = stack[-1]
        stack[-1] = (parent, parent and not taken, True, start)
        return parent and not taken
    if word == "endif":
        return stack.pop()[0]
    if word in ("set", "unset") and active and arg:
        if word == "set" and arg not in forced_off:
            symbols.add(arg)
        elif word == "unset" and arg not in forced_on:
            symbols.discard(arg)
    elif word == "include" and active:
        raise IniError(path, number, "#include is not supported: pass the expanded ini")
    return active


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _header(ini: EcuIni, key: str, value: str, number: int) -> None:
    k = key.lower()
    if k == "signature":
        ini.signature = _unquote(value)
    elif k == "querycommand":
        ini.query_command = _unquote(value)
    elif k == "versioninfo":
        ini.version_info = _unquote(value)
    elif k == "endianness":
        word = value.strip().lower()
        if word not in ("little", "big"):
            raise IniError(ini.path, number, f"endianness must be little or big, not {value!r}")
        ini.endianness = word
    elif k == "messageenvelopeformat":
        ini.envelope = value.strip().lower() == ENVELOPE_FORMAT
    elif k == "blockingfactor":
        ini.blocking_factor = _int(ini, value, number, "blockingFactor")
    elif k in ("ochgetcommand", "ochblocksize"):
        _output_channel(ini, key, value, number)


def _int(ini: EcuIni, value: str, number: int, what: str) -> int:
    try:
        return int(value.strip(), 0)
    except ValueError:
        raise IniError(ini.path, number, f"{what} must be a whole number, not {value!r}") from None


def split_values(value: str) -> list[str]:
    """Split on commas that are outside quotes, braces and brackets."""
    out: list[str] = []
    depth = 0
    quote = False
    start = 0
    for i, ch in enumerate(value):
        if ch == '"':
            quote = not quote
        elif quote:
            continue
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return out


def _output_channel(ini: EcuIni, key: str, value: str, number: int) -> None:
    k = key.lower()
    if k == "ochgetcommand":
        ini.och_command = _unquote(value)
        ini.och_line = number
        return
    if k == "ochblocksize":
        ini.och_block_size = _int(ini, value, number, "ochBlockSize")
        return
    if value.startswith("{"):
        _computed(ini, key, value, number)
        return
    parts = split_values(value)
    kind = parts[0].lower()
    if kind not in ("scalar", "bits"):
        if kind in ("array", "string"):
            ini.skipped[key] = f"{kind} channels are not decoded"
        return  # other settings of the section (scatteredOchGetCommand ...)
    if len(parts) < 3:
        raise IniError(ini.path, number, f"{key}: {kind} needs TYPE and OFFSET")
    type_ = parts[1].upper()
    if type_ not in TYPES:
        raise IniError(
            ini.path, number, f"{key}: unknown type {parts[1]!r} (U08 S08 U16 S16 U32 S32 F32)"
        )
    offset = _int(ini, parts[2], number, f"{key} offset")
    if offset < 0:
        raise IniError(ini.path, number, f"{key}: offset {offset} is negative")
    if kind == "bits":
        m = _BITS.match(parts[3]) if len(parts) > 3 else None
        if m is None:
            raise IniError(ini.path, number, f"{key}: bits needs a [lo:hi] range")
        lo, hi = int(m.group(1)), int(m.group(2))
        if type_ == "F32" or not lo <= hi < 8 * TYPES[type_][1]:
            raise IniError(ini.path, number, f"{key}: bit range [{lo}:{hi}] does not fit {type_}")
        _add_field(ini, FieldDef(key, "bits", type_, offset, bits=(lo, hi), line=number))
        return
    units = _unquote(parts[3]) if len(parts) > 3 and not parts[3].startswith("{") else ""
    scale = _number(ini, key, parts[4], number, "scale") if len(parts) > 4 else 1.0
    translate = _number(ini, key, parts[5], number, "translate") if len(parts) > 5 else 0.0
    if scale is None or translate is None:
        ini.skipped[key] = "its scale depends on the tune (not downloaded)"
        ini.fields.pop(key, None)
        return
    _add_field(ini, FieldDef(key, "scalar", type_, offset, units, scale, translate, None, number))


def _add_field(ini: EcuIni, fdef: FieldDef) -> None:
    ini.fields[fdef.name] = fdef
    ini.computed.pop(fdef.name, None)
    ini.skipped.pop(fdef.name, None)


def _number(ini: EcuIni, key: str, text: str, number: int, what: str) -> float | None:
    """A numeric field; None when it is an expression over tune values."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    try:
        expr = parse_expr(body)
    except ExprError as exc:
        raise IniError(ini.path, number, f"{key}: {what} {text!r}: {exc}") from None
    return expr.evaluate({}) if expr.constant else None


def _computed(ini: EcuIni, key: str, value: str, number: int) -> None:
    parts = split_values(value)
    body = parts[0]
    if not body.endswith("}"):
        raise IniError(ini.path, number, f"{key}: expression has no closing '}}'")
    try:
        expr = parse_expr(body[1:-1])
    except ExprError as exc:
        raise IniError(ini.path, number, f"{key}: {exc}") from None
    units = _unquote(parts[1]) if len(parts) > 1 else ""
    ini.computed[key] = ComputedDef(key, expr, units, number)
    ini.fields.pop(key, None)
    ini.skipped.pop(key, None)


def _finish(ini: EcuIni) -> None:
    """Check the block layout and order the computed channels that can be evaluated."""
    if ini.och_command:
        try:
            expand_command(ini.och_command, ini.endianness, 0, 0, 0)
        except ValueError as exc:
            raise IniError(ini.path, ini.och_line, f"ochGetCommand: {exc}") from None
    if ini.query_command:
        try:
            expand_command(ini.query_command, ini.endianness, 0, 0, 0)
        except ValueError as exc:
            raise IniError(ini.path, 0, f"queryCommand: {exc}") from None
    if ini.och_block_size:
        # TunerStudio does not check this either; a stray field past the block must not
        # make the whole ini unusable, but it is never decoded (and it is said).
        for fdef in list(ini.fields.values()):
            if fdef.offset + fdef.size > ini.och_block_size:
                del ini.fields[fdef.name]
                ini.skipped[fdef.name] = (
                    f"{fdef.type} at offset {fdef.offset} ends past ochBlockSize "
                    f"{ini.och_block_size} (line {fdef.line})"
                )
    resolved: set[str] = set(ini.fields)
    pending = dict(ini.computed)
    order: list[str] = []
    progress = True
    while pending and progress:
        progress = False
        for name, cdef in list(pending.items()):
            if cdef.expr.functions:
                continue
            if cdef.expr.names <= resolved:
                order.append(name)
                resolved.add(name)
                del pending[name]
                progress = True
    for name, cdef in pending.items():
        if cdef.expr.functions:
            why = f"calls {', '.join(sorted(cdef.expr.functions))}()"
        else:
            missing = sorted(cdef.expr.names - resolved - set(pending))
            why = f"needs {', '.join(missing)}" if missing else "depends on channels not read"
        ini.skipped[name] = f"computed by TunerStudio, {why}"
    ini.computed_order = order
