"""Which text flavour a log is, from its first lines (never from the extension).

Split out of ``csvlogs``: recognising a tool's export is one decision (a banner,
a section name, the header's column names, the row under the header) and the
readers should not need to know how it was made. ``ARROW_FLAVOURS`` says which
flavours are one plain table the Arrow fast path can read.
"""

from __future__ import annotations

import re

from core.formats.clock import is_clock
from core.formats.csvtext import HEAD_LINES, SIGNAL_NAMES, VALUE_NAMES, header_row
from core.formats.names import normalise, split_name_unit
from core.formats.table import find_time_column, is_number, sniff_delimiter, split_row

FLAVOURS = {
    "haltech": "Haltech NSP CSV",
    "hptuners": "HP Tuners VCM Scanner CSV",
    "powervision": "Power Vision long CSV",
    "carscanner": "Car Scanner CSV",
    "msl": "MSL (MegaLogViewer text)",
    "tunerstudio": "TunerStudio / MegaLogViewer CSV",
    "romraider": "RomRaider logger CSV",
    "ecumaster": "ECUMaster EMU CSV",
    "evoscan": "EvoScan CSV",
    "torque": "Torque Pro CSV",
    "ecutek": "EcuTek / ProECU CSV",
    "bluedriver": "BlueDriver CSV",
    "winpep": "Dynojet WinPEP export",
    "csv": "CSV",
}


def detect_text(lines: list[str], time_name: str | None = None) -> str | None:
    """The flavour key for a text log's first lines, or None when it is not one we read."""
    body = [ln.strip() for ln in lines[:HEAD_LINES]]
    first = next((ln for ln in body if ln), "")
    if first.startswith("%DataLog%"):
        return "haltech"
    if "hp tuners" in first.lower() or "[Channel Information]" in body:
        return "hptuners"
    if looks_like_msl(lines):
        return "msl"
    h = header_row(lines, time_name)
    if h is None:
        return None
    header = lines[h]
    delim = sniff_delimiter(header)
    cells = split_row(header, delim)
    keys = [normalise(split_name_unit(c)[0]) for c in cells]
    banner = " ".join(body[:h]).lower()
    long_form = any(k in SIGNAL_NAMES for k in keys) and any(k in VALUE_NAMES for k in keys)
    if long_form and "pid" in keys and "seconds" in keys:
        return "carscanner"
    if len(cells) in (3, 4) and long_form:
        return "powervision"
    # Power Core / WinPEP 8 name channels after their RT-150 module, "(DWRT CPU) Power"
    # (PROTOCOLS §7), with no banner; WinPEP 7 writes a banner naming itself.
    if "winpep" in banner or any(c.lstrip().upper().startswith("(DWRT ") for c in cells):
        return "winpep"
    if "bluedriver" in banner or "bluedriver" in header.lower():
        return "bluedriver"
    if "ecutek" in banner or "proecu" in banner:
        return "ecutek"
    if keys[:1] == ["logid"] or "logentryseconds" in keys:
        return "evoscan"
    if "gps time" in keys and "device time" in keys:
        return "torque"
    if cells[0] == "TIME" or sum("/" in c for c in cells) > len(cells) // 2:
        return "ecumaster"
    following = next((ln for ln in lines[h + 1 :] if ln.strip()), "")
    second = split_row(following, delim)
    if second and sum(not is_number(c) for c in second if c) > len(second) // 2:
        return "tunerstudio"
    if split_name_unit(cells[0])[0] == "Time" and any(
        k.startswith(("plx ", "innovate ", "aem ", "zeitronix ", "lc 1 ", "lc 2 ")) for k in keys
    ):
        return "romraider"
    if cells[0].strip() == "Time (msec)" or (cells[0].strip() == "Time" and is_clock(second[0])):
        return "romraider"
    if cells[0].strip() == "Time" and re.fullmatch(r"\d+", second[0] if second else ""):
        return "ecutek"
    return "csv"


def looks_like_msl(lines: list[str]) -> bool:
    """Quoted signature lines followed by a tab-separated names row with a Time column."""
    body = [ln for ln in lines if ln.strip()]
    if not body or not body[0].lstrip().startswith('"'):
        return False
    names = next((ln for ln in body if not ln.lstrip().startswith('"')), "")
    return "\t" in names and find_time_column(names.split("\t")) is not None


ARROW_FLAVOURS = frozenset(
    {
        "romraider",
        "tunerstudio",
        "msl",
        "ecumaster",
        "evoscan",
        "torque",
        "ecutek",
        "bluedriver",
        "winpep",
        "csv",
    }
)
"""Flavours whose data rows are one plain table: the Arrow fast path can read them."""
