"""Turning CAN frames into canonical channels: the AEM X-Series frame and DBC files.

Two decoders, both pure (no bus, no threads) so they are unit- and fuzz-tested
with byte vectors:

* :func:`decode_aem_xseries` - the AEMnet UEGO frame (29-bit ID 0x180..0x18F,
  PROTOCOLS.md §2b), hand-written because its status bits decide whether the
  lambda is data at all, and a tuner needs to see *why* not (free-air cal,
  sensor fault, warming up).
* :class:`DbcDecoder` - any DBC through cantools, with a channel map from DBC
  signal names to canonical names (a ``map=`` entry, else the signal's
  ``DynoChannel`` attribute, else a name alias), and validity gates from the
  ``DynoValidIf`` attribute (:mod:`drivers.dbc_meta`): a gated value whose
  status bits say "not data" is NaN, never a number. Presets ship in
  ``drivers/dbc/`` and are chosen by name (``dbc=haltech``). A frame-ID lookup is built once so unknown
  IDs cost one dict miss, and every mapped signal carries an affine unit
  conversion chosen from the DBC unit string (psi/bar -> kPa, degF -> °C,
  AFR -> lambda ...), so the hot path is a multiply and an add.

Mixture is canonical as lambda; whenever a decoder yields lambda it also yields
``afr`` from the configured stoichiometric ratio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.channels import CHANNELS, STOICH_GASOLINE
from core.source import SourceError
from drivers.dbc_meta import (
    BASE_ID_ATTR,
    CHANNEL_ATTR,
    NOT_A_CHANNEL,
    VALID_IF_ATTR,
    Gate,
    database_base_id,
    signal_attr,
)

AEM_FIRST_ID = 0x180
AEM_LAST_ID = 0x18F
BUILTIN_DBC_DIR = Path(__file__).with_name("dbc")


@dataclass(frozen=True, slots=True)
class AemReading:
    """One decoded AEM X-Series frame. ``lambda_`` is NaN unless the unit says it is valid."""

    lambda_: float
    o2_pct: float
    batt_v: float
    valid: bool
    free_air_cal: bool
    lsu49: bool
    sensor_fault: bool

    @property
    def reason(self) -> str:
        """Why there is no lambda, for the status line (empty when valid)."""
        if self.sensor_fault:
            return "AEM wideband reports a sensor fault (check the O2 sensor and its cable)"
        if self.free_air_cal:
            return "AEM wideband is in free-air calibration (sensor out of the exhaust?)"
        if not self.valid:
            return "AEM wideband lambda not valid yet (sensor warming up)"
        return ""

    def channels(self, stoich: float = STOICH_GASOLINE) -> dict[str, float]:
        return {
            "lambda": self.lambda_,
            "afr": self.lambda_ * stoich,
            "o2_pct": self.o2_pct,
            "batt_v": self.batt_v,
        }


def decode_aem_xseries(data: bytes | bytearray) -> AemReading | None:
    """Decode an AEM X-Series UEGO frame; ``None`` when it is not 8 bytes long.

    Layout (big-endian): bytes 0-1 lambda u16 x 0.0001; 2-3 O2 s16 x 0.001 %;
    4 supply volts u8 x 0.1; byte 6 bit7 lambda valid, bit5 free-air cal in use,
    bit1 LSU4.9 detected; byte 7 bit6 sensor fault. Lambda is NaN unless it is
    valid, fault-free and not in free-air calibration (a sensor in free air reads
    air, not exhaust).
    """
    if len(data) != 8:
        return None
    flags, faults = data[6], data[7]
    valid = bool(flags & 0x80)
    fault = bool(faults & 0x40)
    free_air = bool(flags & 0x20)
    lam = ((data[0] << 8) | data[1]) * 0.0001
    o2_raw = (data[2] << 8) | data[3]
    if o2_raw >= 0x8000:
        o2_raw -= 0x10000
    return AemReading(
        lambda_=lam if valid and not fault and not free_air else math.nan,
        o2_pct=o2_raw * 0.001,
        batt_v=data[4] * 0.1,
        valid=valid,
        free_air_cal=free_air,
        lsu49=bool(flags & 0x02),
        sensor_fault=fault,
    )


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


ALIASES: dict[str, str] = {
    **dict.fromkeys(["rpm", "enginespeed", "engspeed", "enginerpm", "erpm"], "rpm"),
    **dict.fromkeys(
        ["map", "mapkpa", "manifoldpressure", "manifoldabsolutepressure", "manifoldabspressure"],
        "map_kpa",
    ),
    **dict.fromkeys(["tps", "tpspct", "throttle", "throttleposition", "throttlepos"], "tps_pct"),
    **dict.fromkeys(["lambda", "lambda1", "wblambda", "lam", "lambdavalue"], "lambda"),
    **dict.fromkeys(["afr", "afr1", "wbafr", "airfuelratio", "wbo2afr"], "afr"),
    **dict.fromkeys(["lambdatarget", "targetlambda"], "lambda_target"),
    **dict.fromkeys(["afrtarget", "targetafr"], "afr_target"),
    **dict.fromkeys(["iat", "mat", "intakeairtemp", "intakeairtemperature", "airtemp"], "iat_c"),
    **dict.fromkeys(
        ["clt", "ect", "coolant", "coolanttemp", "coolanttemperature", "enginetemp"], "clt_c"
    ),
    **dict.fromkeys(
        ["spark", "advance", "sparkadvance", "ignitionadvance", "ignitiontiming", "timing"],
        "spark_deg",
    ),
    **dict.fromkeys(["knock", "knockcount"], "knock_count"),
    **dict.fromkeys(["knockretard"], "knock_retard_deg"),
    **dict.fromkeys(["baro", "barometricpressure", "baropressure"], "baro_kpa"),
    **dict.fromkeys(["battery", "batteryvoltage", "vbatt", "battv", "systemvolts"], "batt_v"),
    **dict.fromkeys(["vss", "vehiclespeed", "speed"], "vehicle_speed_kph"),
    **dict.fromkeys(["egt", "exhausttemp"], "egt_c"),
    **dict.fromkeys(["oxygen", "o2"], "o2_pct"),
    **dict.fromkeys(["gear"], "gear"),
    **dict.fromkeys(["ve", "vepct"], "ve_pct"),
    **dict.fromkeys(["pw", "pulsewidth", "injpw", "injectorpw"], "pw_ms"),
}
"""Normalised DBC signal name -> canonical channel, used when no ``map=`` entry names it."""

_UNIT_FACTORS: dict[str, dict[str, tuple[float, float]]] = {
    "kPa": {
        "kpa": (1, 0),
        "psi": (6.894757293168361, 0),
        "bar": (100, 0),
        "mbar": (0.1, 0),
        "hpa": (0.1, 0),
        "pa": (0.001, 0),
        "inhg": (3.386388640341, 0),
    },
    "°C": {
        "c": (1, 0),
        "degc": (1, 0),
        "celsius": (1, 0),
        "f": (5 / 9, -160 / 9),
        "degf": (5 / 9, -160 / 9),
        "fahrenheit": (5 / 9, -160 / 9),
        "k": (1, -273.15),
    },
    "km/h": {"kmh": (1, 0), "kph": (1, 0), "mph": (1.609344, 0), "ms": (3.6, 0)},
    "N·m": {"nm": (1, 0), "lbft": (1.3558179483314004, 0), "ftlb": (1.3558179483314004, 0)},
    "hp": {"hp": (1, 0), "kw": (1 / 0.745699872, 0), "w": (0.001 / 0.745699872, 0)},
    "V": {"v": (1, 0), "volt": (1, 0), "volts": (1, 0), "mv": (0.001, 0)},
    "ms": {"ms": (1, 0), "us": (0.001, 0), "s": (1000, 0)},
    "%": {"pct": (1, 0), "percent": (1, 0)},
    "deg": {"deg": (1, 0), "degrees": (1, 0), "btdc": (1, 0), "degbtdc": (1, 0)},
    "rpm": {"rpm": (1, 0), "1min": (1, 0)},
}


def conversion(canonical: str, unit: str, stoich: float) -> tuple[str, float, float] | None:
    """``(target channel, scale, offset)`` turning a DBC value in ``unit`` into ``canonical``.

    An empty unit is taken to be the canonical unit already. AFR-valued signals
    (named ``afr`` or with an AFR unit) become lambda, the canonical mixture
    channel. ``None`` when the unit cannot be converted to the channel's unit.
    """
    key = _norm(unit.replace("°", "deg").replace("%", "pct"))
    if canonical in ("lambda", "afr", "lambda_target", "afr_target"):
        target = "lambda_target" if canonical.endswith("target") else "lambda"
        if key in ("afr", "1", "ratio") or (canonical.startswith("afr") and key in ("", "afr")):
            return target, 1.0 / stoich, 0.0
        if key in ("", "lambda", "lam", "l"):
            return target, 1.0, 0.0
        return None
    channel_unit = CHANNELS[canonical].unit
    if not key or key == _norm(channel_unit.replace("°", "deg").replace("%", "pct")):
        return canonical, 1.0, 0.0
    factor = _UNIT_FACTORS.get(channel_unit, {}).get(key)
    if factor is None:
        return None
    return canonical, float(factor[0]), float(factor[1])


def _id_shift(db: Any, base_id: int | None, where: str) -> int:
    """How far ``base_id=`` moves every frame of a DBC that declares ``DynoBaseId``."""
    if base_id is None:
        return 0
    declared = database_base_id(db)
    if declared is None:
        raise SourceError(
            f"{where}: base_id= needs a DBC that declares its first frame ID "
            f"({BASE_ID_ATTR}); presets that do: ecumaster_emu, link_generic_dash, aem_xseries"
        )
    return base_id - declared


def _gate_names(text: str) -> list[str]:
    """Signal names a ``DynoValidIf`` text refers to (its inputs are not channels)."""
    return [part.partition("=")[0].strip() for part in text.split(",") if part.strip()]


def parse_channel_map(text: str, where: str) -> dict[str, str]:
    """Parse ``SIGNAL:canonical,MSG.SIGNAL:canonical`` into a dict; bad entries raise."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        signal, sep, canonical = item.partition(":")
        canonical = canonical.strip()
        if not sep or not signal.strip():
            raise SourceError(f"{where}: map entry {item!r} is not SIGNAL:channel")
        if canonical not in CHANNELS:
            known = ", ".join(sorted(CHANNELS))
            raise SourceError(
                f"{where}: map entry {item!r}: {canonical!r} is not a channel ({known})"
            )
        mapping[signal.strip()] = canonical
    return mapping


@dataclass(slots=True)
class _MessagePlan:
    message: Any
    signals: list[tuple[str, str, float, float]]
    """(DBC signal name, canonical target, scale, offset)."""
    gates: dict[str, Gate] = field(default_factory=dict)
    """DBC signal name -> the conditions under which its value is data."""


def builtin_presets() -> list[str]:
    """Names of the DBC presets shipped in ``drivers/dbc`` (``dbc=NAME``)."""
    return sorted(p.stem for p in BUILTIN_DBC_DIR.glob("*.dbc"))


def _syntax_error(exc: BaseException) -> str:
    """The parse error cantools raised, as one printable line: where, and the text there.

    cantools quotes the offending line; from a binary file that is raw bytes (newlines,
    control characters) that would spill over the terminal, so only printable text is kept.
    """
    text = str(exc).strip()
    where = re.search(r"line \d+, column \d+", text)
    context = re.search(r'"([^"\n]{1,60}>>!<<[^"\n]{0,60})"', text)
    if where is None:
        first = text.splitlines()[0] if text else ""
        return first if first.isprintable() and len(first) <= 120 else "syntax error"
    if context is not None and context.group(1).isprintable():
        return f"syntax error at {where.group(0)}: {context.group(1)}"
    return f"syntax error at {where.group(0)}"


CANTOOLS_SUFFIXES = frozenset({".dbc", ".kcd", ".sym", ".arxml", ".cdd"})
"""File name endings cantools reads by their own format; any other is read as a DBC."""


@dataclass(slots=True)
class DbcDecoder:
    """Decode frames through a DBC database into canonical channels."""

    plans: dict[tuple[int, bool], _MessagePlan]
    stoich: float = STOICH_GASOLINE
    mapped: dict[str, str] = field(default_factory=dict)
    """``MESSAGE.SIGNAL`` -> canonical, for the status line and ``channels()``."""
    unmapped: list[str] = field(default_factory=list)
    """Signals left out, with the reason (no canonical name, or a unit we cannot convert)."""
    decode_errors: int = 0
    gated_values: int = 0
    """Values turned to NaN by a ``DynoValidIf`` gate."""
    gate_reason: str = ""
    """Why the latest gated value was not data ('' once a gated value passes)."""

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        channel_map: dict[str, str] | None = None,
        stoich: float = STOICH_GASOLINE,
        base_id: int | None = None,
    ) -> DbcDecoder:
        """Load a DBC (a path, or the name of a built-in one such as ``aem_xseries``).

        ``base_id`` moves a stream whose first ID the DBC declares as ``DynoBaseId``.
        """
        import cantools

        file = Path(path).expanduser()
        if not file.exists() and (BUILTIN_DBC_DIR / f"{path}.dbc").exists():
            file = BUILTIN_DBC_DIR / f"{path}.dbc"
        # cantools picks the format by the file name and raises a bare ValueError for a
        # name it does not know; dbc= names a DBC, so read anything else as one.
        fmt = None if file.suffix.lower() in CANTOOLS_SUFFIXES else "dbc"
        try:
            db = cantools.database.load_file(str(file), database_format=fmt, strict=False)
        except FileNotFoundError:
            raise SourceError(
                f"DBC file {str(file)!r} not found; check the dbc= path or name a preset: "
                + ", ".join(builtin_presets())
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"DBC file {str(file)!r} cannot be read: {exc}") from None
        except cantools.database.UnsupportedDatabaseFormatError as exc:
            raise SourceError(
                f"DBC file {str(file)!r} is not a valid DBC: {_syntax_error(exc)}"
            ) from None
        return cls.from_database(db, channel_map or {}, stoich, str(file), base_id)

    @classmethod
    def from_database(
        cls,
        db: Any,
        channel_map: dict[str, str],
        stoich: float,
        where: str = "DBC",
        base_id: int | None = None,
    ) -> DbcDecoder:
        shift = _id_shift(db, base_id, where)
        plans: dict[tuple[int, bool], _MessagePlan] = {}
        mapped: dict[str, str] = {}
        unmapped: list[str] = []
        used: set[str] = set()
        for message in db.messages:
            signals: list[tuple[str, str, float, float]] = []
            gates: dict[str, Gate] = {}
            gate_inputs = {
                name
                for signal in message.signals
                for name in _gate_names(signal_attr(signal, VALID_IF_ATTR))
            }
            for signal in message.signals:
                full = f"{message.name}.{signal.name}"
                explicit = channel_map.get(full) or channel_map.get(signal.name)
                declared = signal_attr(signal, CHANNEL_ATTR)
                if declared and declared != NOT_A_CHANNEL and declared not in CHANNELS:
                    raise SourceError(
                        f"{where}: {full} declares {CHANNEL_ATTR} {declared!r}, not a channel"
                    )
                canonical = (
                    explicit
                    or declared
                    or (signal.name if signal.name in CHANNELS else ALIASES.get(_norm(signal.name)))
                )
                if canonical == NOT_A_CHANNEL or (canonical is None and signal.name in gate_inputs):
                    continue
                if canonical is None:
                    unmapped.append(f"{full} (no canonical name; add map={signal.name}:CHANNEL)")
                    continue
                conv = conversion(canonical, signal.unit or "", stoich)
                if conv is None:
                    text = f"{full}: unit {signal.unit!r} cannot be converted to {canonical}"
                    if explicit:
                        raise SourceError(f"{where}: {text}")
                    unmapped.append(text)
                    continue
                used.update(k for k in (full, signal.name) if k in channel_map)
                signals.append((signal.name, *conv))
                mapped[full] = conv[0]
                valid_if = signal_attr(signal, VALID_IF_ATTR)
                if valid_if:
                    gates[signal.name] = Gate.parse(valid_if, message, where)
            if signals:
                frame_id = message.frame_id + shift
                limit = 0x1FFFFFFF if message.is_extended_frame else 0x7FF
                if not 0 <= frame_id <= limit:
                    raise SourceError(
                        f"{where}: base_id=0x{base_id or 0:X} puts {message.name} at "
                        f"0x{frame_id:X}, outside the {'29' if limit > 0x7FF else '11'}-bit range"
                    )
                plans[(frame_id, bool(message.is_extended_frame))] = _MessagePlan(
                    message, signals, gates
                )
        missing = sorted(set(channel_map) - used)
        if missing:
            raise SourceError(
                f"{where}: map names signals the DBC does not have: {', '.join(missing)}"
            )
        if not plans:
            raise SourceError(
                f"{where}: no DBC signal maps to a dynoai channel; name them with "
                "map=SIGNAL:rpm,SIGNAL:map_kpa,..."
            )
        return cls(plans, stoich, mapped, unmapped)

    def channels(self) -> set[str]:
        names = set(self.mapped.values())
        if "lambda" in names:
            names.add("afr")
        return names

    def decode(
        self, frame_id: int, is_extended: bool, data: bytes | bytearray
    ) -> dict[str, float] | None:
        """Canonical values from one frame; ``None`` for IDs the DBC does not map or bad data."""
        plan = self.plans.get((frame_id, is_extended))
        if plan is None:
            return None
        try:
            raw = plan.message.decode(bytes(data), decode_choices=False, allow_truncated=True)
        except (ValueError, KeyError, IndexError, TypeError):
            # cantools raises DecodeError (a ValueError) or struct/bitstruct errors
            # for frames shorter or longer than the DBC says: count and skip.
            self.decode_errors += 1
            return None
        out: dict[str, float] = {}
        for name, target, scale, offset in plan.signals:
            value = raw.get(name)
            if value is None:
                continue
            gate = plan.gates.get(name)
            if gate is not None:
                why = gate.failed(raw)
                if why:
                    self.gated_values += 1
                    self.gate_reason = f"{plan.message.name}.{name} is not data: {why}"
                    out[target] = math.nan
                    continue
                self.gate_reason = ""
            out[target] = float(value) * scale + offset
        lam = out.get("lambda")
        if lam is not None:
            out["afr"] = lam * self.stoich
        return out
