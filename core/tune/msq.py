"""TunerStudio ``.msq`` tunes: read the VE and target tables, write corrected VE back.

Layout (learned from public TunerStudio files, e.g. the Speeduino project's
``reference/Base Tunes/*.msq``; no such file is copied here): an XML document in the
``http://www.msefi.com/:msq`` namespace, ISO-8859-1, with ``<page>`` elements holding
``<constant>`` (and ``<pcVariable>``) elements. A table is
``<constant name="veTable" rows="16" cols="16" digits="1" units="%">`` whose text is
``rows`` lines of ``cols`` numbers, the first line belonging to the *first* (lowest)
load breakpoint; an axis is a ``cols="1"`` constant of ``rows`` numbers, one a line.

Each firmware names its tables differently; :data:`DIALECTS` lists the names this
reader knows (Speeduino, rusEFI, MegaSquirt MS2/MS3). The first dialect whose VE table
and both axes are present wins.

Decisions:
- Parsing uses ``defusedxml`` (a tune arrives by e-mail from a customer; an XML
  entity bomb must be an error, not a hung dyno PC).
- Writing back replaces *only the numbers* inside the VE constants of the original
  text, keeping every other byte (whitespace, attribute order, comments, other pages)
  as TunerStudio wrote it, so the file still loads into the same project and a diff
  shows just the VE change. The text is handled as Latin-1, which maps every byte to
  one character and back, so nothing outside the numbers can change.
- Values are rounded to the constant's ``digits``: that is the ECU's own resolution
  (a Speeduino VE is a whole percent), and the summary reports it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from core.channels import STOICH_GASOLINE
from core.tune.table import F64, Table, Tune, TuneError

MSQ_NAMESPACE = "http://www.msefi.com/:msq"
MAX_MSQ_BYTES = 32 * 1024 * 1024
"""Real tunes are 50-500 kB; anything this big is not a tune."""


@dataclass(frozen=True)
class Dialect:
    """The constant names one firmware family uses for the tables dynoai touches."""

    family: str
    ve: tuple[str, str, str]
    """(table, rpm axis, load axis) of the (front) VE table."""
    target: tuple[str, str, str]
    """(table, rpm axis, load axis) of the AFR / lambda target table."""
    ve_rear: tuple[str, str, str] | None
    """The second VE table used for the rear cylinder on a V-twin, when the family has one."""
    stoich: str
    """Name of the stoichiometric ratio constant."""
    spark: tuple[str, str, str] | None = None
    """(table, rpm axis, load axis) of the spark advance table (knock advice is applied here)."""


DIALECTS: tuple[Dialect, ...] = (
    Dialect(
        "Speeduino",
        ("veTable", "rpmBins", "fuelLoadBins"),
        ("afrTable", "rpmBinsAFR", "loadBinsAFR"),
        ("veTable2", "fuelRPM2Bins", "fuelLoad2Bins"),
        "stoich",
        ("advTable1", "rpmBins2", "mapBins1"),
    ),
    Dialect(
        "rusEFI",
        ("veTable", "veRpmBins", "veLoadBins"),
        ("lambdaTable", "lambdaRpmBins", "lambdaLoadBins"),
        None,
        "stoichRatioPrimary",
        ("ignitionTable", "ignitionRpmBins", "ignitionLoadBins"),
    ),
    Dialect(
        "MegaSquirt",
        ("veTable1", "frpm_table1", "fmap_table1"),
        ("afrTable1", "arpm_table1", "amap_table1"),
        ("veTable2", "frpm_table2", "fmap_table2"),
        "stoich",
        ("advanceTable1", "srpm_table1", "smap_table1"),
    ),
)


@dataclass(frozen=True)
class _Constant:
    name: str
    rows: int
    cols: int
    digits: int | None
    units: str
    text: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _int_attr(el: ET.Element, key: str, default: int, where: str) -> int:
    raw = el.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TuneError(f"{where}: attribute {key}={raw!r} is not a whole number") from None
    if value < 0:
        raise TuneError(f"{where}: attribute {key}={raw!r} is negative")
    return value


def _constants(root: ET.Element, where: str) -> dict[str, _Constant]:
    found: dict[str, _Constant] = {}
    for el in root.iter():
        if _local(el.tag) not in ("constant", "pcVariable"):
            continue
        name = el.get("name")
        if not name:
            continue
        here = f"{where}: constant {name}"
        digits = el.get("digits")
        found[name] = _Constant(
            name,
            _int_attr(el, "rows", 1, here),
            _int_attr(el, "cols", 1, here),
            _int_attr(el, "digits", 0, here) if digits is not None else None,
            el.get("units") or "",
            el.text or "",
        )
    return found


def _numbers(c: _Constant, where: str) -> F64:
    parts = c.text.split()
    try:
        values = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        bad = next(p for p in parts if not _is_float(p))
        raise TuneError(f"{where}: constant {c.name} holds {bad!r}, not a number") from None
    want = c.rows * c.cols
    if values.size != want:
        raise TuneError(
            f"{where}: constant {c.name} declares {c.rows} x {c.cols} = {want} values "
            f"but holds {values.size}"
        )
    return values


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _table(consts: dict[str, _Constant], names: tuple[str, str, str], where: str) -> Table:
    tname, rname, lname = names
    tc, rc, lc = consts[tname], consts[rname], consts[lname]
    load_units = lc.units.lower()
    if "%" in load_units or "tps" in load_units:
        raise TuneError(
            f"{where}: {tname} is on a throttle (alpha-N) load axis ({lname} in {lc.units!r}); "
            "dynoai corrects MAP-based (speed-density) VE tables"
        )
    rpm = _numbers(rc, where)
    load = _numbers(lc, where)
    if tc.rows != load.size or tc.cols != rpm.size:
        raise TuneError(
            f"{where}: {tname} is {tc.rows} x {tc.cols} but its axes have "
            f"{load.size} load ({lname}) and {rpm.size} rpm ({rname}) breakpoints"
        )
    values = _numbers(tc, where).reshape(tc.rows, tc.cols)
    return Table.of(rpm, load, values, tname)


def _to_lambda(table: Table, units: str, stoich: float) -> Table:
    u = units.strip().lower()
    is_afr = "afr" in u or (
        u not in ("lambda", "λ", "lam") and float(np.median(table.values)) > 3.0
    )
    return table.with_values(table.values / stoich) if is_afr else table


def parse_msq(data: bytes, where: str = "tune") -> Tune:
    """A :class:`Tune` from the bytes of a ``.msq`` file.

    Raises:
        TuneError: not XML, not a tune, no VE table this reader knows, bad shapes.
    """
    if len(data) > MAX_MSQ_BYTES:
        raise TuneError(f"{where}: {len(data)} bytes is far too big for a tune file")
    try:
        root = fromstring(data)
    except DefusedXmlException as exc:
        raise TuneError(f"{where}: refused unsafe XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise TuneError(f"{where}: not a TunerStudio .msq (XML error: {exc})") from None
    if _local(root.tag) != "msq":
        raise TuneError(f"{where}: not a TunerStudio .msq (root element is <{_local(root.tag)}>)")
    consts = _constants(root, where)
    dialect = next((d for d in DIALECTS if all(n in consts for n in d.ve)), None)
    if dialect is None:
        known = "; ".join(f"{d.family}: {', '.join(d.ve)}" for d in DIALECTS)
        raise TuneError(
            f"{where}: no VE table with its rpm and load axes found (looked for {known})"
        )
    stoich = STOICH_GASOLINE
    if dialect.stoich in consts:
        s = _numbers(consts[dialect.stoich], where)
        if s.size == 1 and 1.0 <= float(s[0]) <= 40.0:
            stoich = float(s[0])
    ve = _table(consts, dialect.ve, where)
    names = {"ve": dialect.ve[0], "family": dialect.family}
    digits = {c.name: c.digits for c in consts.values() if c.digits is not None}
    target = None
    if all(n in consts for n in dialect.target):
        raw_target = _table(consts, dialect.target, where)
        target = _to_lambda(raw_target, consts[dialect.target[0]].units, stoich)
        names["target"] = dialect.target[0]
    rear = None
    if dialect.ve_rear is not None and all(n in consts for n in dialect.ve_rear):
        rear = _table(consts, dialect.ve_rear, where)
        names["ve_rear"] = dialect.ve_rear[0]
    spark = None
    if dialect.spark is not None and all(n in consts for n in dialect.spark):
        try:
            spark = _table(consts, dialect.spark, where)
            names["spark"] = dialect.spark[0]
        except TuneError:
            spark = None  # a TPS-load spark table: knock advice then stays in the exports
    return Tune(
        ve=ve,
        ve_rear=rear,
        spark=spark,
        target_lambda=target,
        stoich=stoich,
        source=f"{where} ({dialect.family})",
        kind="msq",
        names=names,
        raw=data.decode("latin-1"),
        digits=digits,
    )


def read_msq(path: str | Path) -> Tune:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TuneError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise TuneError(f"{p}: is a directory, not a tune file") from None
    except OSError as exc:
        raise TuneError(f"{p}: cannot read ({exc.strerror})") from None
    return parse_msq(data, str(p))


# -- writing ---------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def format_value(value: float, digits: int | None) -> str:
    """A number as TunerStudio writes it: at least one decimal, ``digits`` when more."""
    d = 1 if digits is None else max(1, digits)
    rounded = round(float(value), digits if digits is not None else 1)
    return f"{rounded:.{d}f}"


def _replace_constant(text: str, name: str, values: F64, digits: int | None) -> str:
    pattern = re.compile(
        r"(<(?:\w+:)?(constant|pcVariable)\b[^>]*\bname=\""
        + re.escape(name)
        + r"\"[^>]*>)(.*?)(</)",
        re.DOTALL,
    )
    match = pattern.search(text)
    if match is None:
        raise TuneError(f"constant {name} not found in the original tune text")
    flat = iter(values.ravel().tolist())
    body = _NUMBER.sub(lambda _m: format_value(next(flat), digits), match.group(3))
    return text[: match.start(3)] + body + text[match.end(3) :]


def msq_bytes(tune: Tune, keys: tuple[str, ...] = ("ve", "ve_rear")) -> bytes:
    """The tune as ``.msq`` bytes: the original file with new numbers, or a fresh file.

    ``keys`` are the tables written back ("ve", "ve_rear", "spark"); every other
    constant keeps its bytes.
    """
    if tune.kind != "msq" or tune.raw is None:
        return render_msq(tune)
    text = tune.raw
    tables = {**tune.ve_tables(), **({"spark": tune.spark} if tune.spark is not None else {})}
    for key, table in tables.items():
        if key not in keys:
            continue
        name = tune.names.get(key)
        if name is None:
            raise TuneError(f"the tune has no {key} constant to write back")
        text = _replace_constant(text, name, table.values, tune.digits.get(name))
    return text.encode("latin-1")


def write_msq(tune: Tune, path: str | Path) -> None:
    Path(path).write_bytes(msq_bytes(tune))


def _constant_xml(name: str, values: F64, rows: int, cols: int, digits: int, units: str) -> str:
    lines = []
    for r in range(rows):
        row = values.ravel()[r * cols : (r + 1) * cols]
        lines.append("         " + " ".join(format_value(v, digits) for v in row) + " \n")
    return (
        f'<constant cols="{cols}" digits="{digits}" name="{name}" rows="{rows}" units="{units}">\n'
        + "".join(lines)
        + "      </constant>\n"
    )


def _axis_digits(values: F64) -> int:
    """0 for whole-number breakpoints (as ECUs store them), else enough to keep them."""
    for digits in (0, 1, 2, 3):
        if np.allclose(np.round(values, digits), values, rtol=0.0, atol=1e-9):
            return digits
    return 4


def render_msq(
    tune: Tune,
    family: str = "MegaSquirt",
    signature: str = "dynoai tune export",
    comment: str = "",
) -> bytes:
    """A new ``.msq`` holding the tune's tables under ``family``'s constant names.

    Used for tunes that did not come from a ``.msq`` (a pasted table, the simulator's
    ECU). VE is written with one decimal (MS3 and rusEFI resolution), targets as AFR.
    """
    dialect = next((d for d in DIALECTS if d.family == family), None)
    if dialect is None:
        raise TuneError(f"unknown tune family {family!r}")
    parts: list[str] = []

    def table(names: tuple[str, str, str], t: Table, digits: int, units: str, values: Any) -> None:
        n_map, n_rpm = t.axes.shape
        parts.append(_constant_xml(names[0], np.asarray(values), n_map, n_rpm, digits, units))
        parts.append(_constant_xml(names[1], t.axes.rpm, n_rpm, 1, _axis_digits(t.axes.rpm), "RPM"))
        parts.append(
            _constant_xml(names[2], t.axes.map_kpa, n_map, 1, _axis_digits(t.axes.map_kpa), "kPa")
        )

    table(dialect.ve, tune.ve, 1, "%", tune.ve.values)
    if tune.ve_rear is not None:
        if dialect.ve_rear is None:
            raise TuneError(f"{family} tunes have no second VE table for the rear cylinder")
        table(dialect.ve_rear, tune.ve_rear, 1, "%", tune.ve_rear.values)
    if tune.spark is not None and dialect.spark is not None:
        table(dialect.spark, tune.spark, 1, "deg", tune.spark.values)
    if tune.target_lambda is not None:
        if family == "rusEFI":
            table(dialect.target, tune.target_lambda, 2, "lambda", tune.target_lambda.values)
        else:
            afr = tune.target_lambda.values * tune.stoich
            table(dialect.target, tune.target_lambda, 1, "AFR", afr)
    stoich = (
        f'<constant digits="1" name="{dialect.stoich}" units=":1">{tune.stoich:.1f}</constant>\n'
    )
    esc = comment.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    doc = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f'<msq xmlns="{MSQ_NAMESPACE}">\n'
        f'<bibliography author="DynoAI" tuneComment="{esc}" writeDate=""/>\n'
        f'<versionInfo fileFormat="5.0" firmwareInfo="{family}" nPages="1" signature="{signature}"/>\n'
        '<page number="0">\n' + stoich + "".join(parts) + "</page>\n</msq>\n"
    )
    return doc.encode("latin-1")


__all__ = ["DIALECTS", "Dialect", "msq_bytes", "parse_msq", "read_msq", "render_msq", "write_msq"]
