"""Session records: what was built, in what conditions, on which dyno, what the tune became.

A coverage grid alone cannot teach the next bike anything: the same 3000 rpm / 90 kPa
cell needs +18 % VE on a Stage 2 Twin Cam 103 and +4 % on a stock one. So each
vehicle carries a record (build, conditions, dyno, widebands, tuner notes), edited
as TOML (``dynoai vehicle edit V``), kept in the vehicle store and copied into the
header of every new recording, so the record travels with the data it describes.

Decision: every field is optional (``None`` = not recorded) and a record with
nothing in it is valid: a partly documented session is still worth keeping, and
the export says which fields are missing instead of inventing them. What *is*
written is validated: a misspelt key, a wrong type or an implausible value is one
:class:`RecordError` naming the key. Units follow the project (°C, kPa, m, cc)
with the shop's usual units accepted as alternatives (``ambient_f``,
``baro_inhg``, ``altitude_ft``, ``displacement_ci``) and converted once, on
input. Cam overlap, when not measured, is derived from the durations and the
lobe separation angle (overlap = (intake + exhaust duration) / 2 - 2 x LSA).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

RECORD_VERSION = 1
"""Version of the record layout (in headers and in the store)."""
HEADER_KEY = "session_record"
"""Key of the record in a recording header's free metadata."""

ENGINE_FAMILIES = (
    "twin_cam",
    "milwaukee_eight",
    "evolution",
    "sportster",
    "revolution_max",
    "shovelhead",
    "inline_four",
    "other",
)
LOAD_TYPES = ("inertia", "eddy", "hub", "road_load", "other")
VE_NOT_RECORDED = "not recorded"


class RecordError(ValueError):
    """A bad session-record value; the message names the key and the reason."""


@dataclass(frozen=True, slots=True)
class Cam:
    """The camshaft: grind, durations, lifts, lobe separation, overlap."""

    profile: str | None = None
    """Grind name, e.g. "S&S 475"."""
    intake_duration_deg: float | None = None
    exhaust_duration_deg: float | None = None
    intake_lift_in: float | None = None
    exhaust_lift_in: float | None = None
    lsa_deg: float | None = None
    """Lobe separation angle."""
    overlap_front_deg: float | None = None
    overlap_rear_deg: float | None = None

    def overlap_deg(self) -> float | None:
        """Measured overlap (mean of front and rear), else derived from durations and LSA."""
        measured = [v for v in (self.overlap_front_deg, self.overlap_rear_deg) if v is not None]
        if measured:
            return sum(measured) / len(measured)
        if None in (self.intake_duration_deg, self.exhaust_duration_deg, self.lsa_deg):
            return None
        ind, exd, lsa = self.intake_duration_deg, self.exhaust_duration_deg, self.lsa_deg
        assert ind is not None and exd is not None and lsa is not None
        return (ind + exd) / 2.0 - 2.0 * lsa


@dataclass(frozen=True, slots=True)
class Build:
    """What was built: engine, cam, intake, exhaust, fuel."""

    model: str | None = None
    """What the shop calls it ("M8 114 Stage 2"); the fleet groups by it."""
    engine_family: str | None = None
    displacement_cc: float | None = None
    compression_ratio: float | None = None
    stage: int | None = None
    """0 = stock .. 5."""
    cam: Cam = field(default_factory=Cam)
    exhaust: str | None = None
    air_cleaner: str | None = None
    throttle_body_mm: float | None = None
    injector_flow_lb_hr: float | None = None
    fuel_octane: float | None = None
    """Pump octane (AKI as the pump shows it); E85 ~ 105."""

    def model_key(self) -> str:
        """The fleet's grouping key: ``model`` if given, else family + displacement + stage."""
        if self.model:
            return self.model
        parts = [self.engine_family or "unknown"]
        if self.displacement_cc is not None:
            parts.append(f"{self.displacement_cc / CC_PER_CI:.0f}ci")
        if self.stage is not None:
            parts.append(f"stage{self.stage}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Conditions:
    """The air the engine breathed during the session."""

    ambient_c: float | None = None
    baro_kpa: float | None = None
    humidity_pct: float | None = None
    altitude_m: float | None = None


@dataclass(frozen=True, slots=True)
class Dyno:
    """The dyno and how it was run."""

    type: str | None = None
    """Make and model, e.g. "Dynojet 250i"."""
    load_type: str | None = None
    fan_airflow_cfm: float | None = None
    warmup_min: float | None = None


@dataclass(frozen=True, slots=True)
class Widebands:
    """Which sources are the front and rear cylinders' widebands."""

    front: str | None = None
    """Source name of the front cylinder's wideband (a ``--source`` name)."""
    rear: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Everything a model could learn from about one vehicle's sessions (all optional)."""

    shop: str | None = None
    tuner: str | None = None
    notes: str | None = None
    build: Build = field(default_factory=Build)
    conditions: Conditions = field(default_factory=Conditions)
    dyno: Dyno = field(default_factory=Dyno)
    widebands: Widebands = field(default_factory=Widebands)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (canonical units, None left out) for headers and the store."""
        return {"version": RECORD_VERSION, **_dict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "record") -> SessionRecord:
        """Read :meth:`to_dict` output (a header or the store); validates like TOML input."""
        body = {k: v for k, v in data.items() if k != "version"}
        return parse_mapping(body, where)

    def missing(self) -> list[str]:
        """Dotted names of the fields not recorded (for ``vehicle show`` and the export)."""
        out: list[str] = []
        _missing(self, "", out)
        return out


CC_PER_CI = 16.387064
_NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "build.displacement_cc": (50.0, 5000.0),
    "build.compression_ratio": (6.0, 16.0),
    "build.stage": (0, 5),
    "build.throttle_body_mm": (20.0, 120.0),
    "build.injector_flow_lb_hr": (1.0, 200.0),
    "build.fuel_octane": (80.0, 120.0),
    "build.cam.intake_duration_deg": (150.0, 340.0),
    "build.cam.exhaust_duration_deg": (150.0, 340.0),
    "build.cam.intake_lift_in": (0.2, 0.9),
    "build.cam.exhaust_lift_in": (0.2, 0.9),
    "build.cam.lsa_deg": (90.0, 130.0),
    "build.cam.overlap_front_deg": (-40.0, 120.0),
    "build.cam.overlap_rear_deg": (-40.0, 120.0),
    "conditions.ambient_c": (-30.0, 60.0),
    "conditions.baro_kpa": (50.0, 110.0),
    "conditions.humidity_pct": (0.0, 100.0),
    "conditions.altitude_m": (-500.0, 6000.0),
    "dyno.fan_airflow_cfm": (0.0, 200000.0),
    "dyno.warmup_min": (0.0, 600.0),
}
_CHOICES = {"build.engine_family": ENGINE_FAMILIES, "dyno.load_type": LOAD_TYPES}
_ALTERNATIVES: dict[str, tuple[str, Any]] = {
    # other unit -> (canonical key, converter)
    "build.displacement_ci": ("displacement_cc", lambda v: v * CC_PER_CI),
    "conditions.ambient_f": ("ambient_c", lambda v: (v - 32.0) * 5.0 / 9.0),
    "conditions.baro_inhg": ("baro_kpa", lambda v: v * 3.386388640341),
    "conditions.altitude_ft": ("altitude_m", lambda v: v * 0.3048),
}
_SECTIONS: dict[str, type] = {
    "build": Build,
    "build.cam": Cam,
    "conditions": Conditions,
    "dyno": Dyno,
    "widebands": Widebands,
}


def parse_toml(text: str, where: str = "record") -> SessionRecord:
    """Parse and validate record TOML; :class:`RecordError` names the key on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecordError(f"{where}: not valid TOML ({exc})") from None
    return parse_mapping(data, where)


def parse_mapping(data: Mapping[str, Any], where: str = "record") -> SessionRecord:
    top = {f.name for f in fields(SessionRecord)}
    for key in data:
        if key not in top:
            raise RecordError(_unknown(where, key, sorted(top)))
    kwargs: dict[str, Any] = {}
    for key in ("shop", "tuner", "notes"):
        if key in data:
            kwargs[key] = _text(data[key], key, where)
    for section in ("build", "conditions", "dyno", "widebands"):
        if section in data:
            kwargs[section] = _section(data[section], section, where)
    return SessionRecord(**kwargs)


def _section(value: Any, path: str, where: str) -> Any:
    cls = _SECTIONS[path]
    if not isinstance(value, Mapping):
        raise RecordError(f"{where}: [{path}] must be a table of keys, not {value!r}")
    names = {f.name: f for f in fields(cls)}
    allowed = sorted(
        [
            *names,
            *(
                k.rsplit(".", 1)[1]
                for k in _ALTERNATIVES
                if k.startswith(path + ".") and k.count(".") == path.count(".") + 1
            ),
        ]
    )
    kwargs: dict[str, Any] = {}
    for key, raw in value.items():
        dotted = f"{path}.{key}"
        if dotted in _ALTERNATIVES:
            target, convert = _ALTERNATIVES[dotted]
            if target in value:
                raise RecordError(f"{where}: {dotted} and {path}.{target} both given; keep one")
            converted = round(convert(_number(raw, dotted, where, check=False)), 3)
            kwargs[target] = _number(converted, f"{path}.{target}", where)
            continue
        if key not in names:
            raise RecordError(_unknown(where, dotted, allowed))
        if f"{dotted}" in _SECTIONS:
            kwargs[key] = _section(raw, dotted, where)
        elif dotted in _NUMBER_RANGES:
            kwargs[key] = _number(raw, dotted, where)
        else:
            text = _text(raw, dotted, where)
            choices = _CHOICES.get(dotted)
            if choices is not None and text is not None:
                text = text.strip().lower().replace("-", "_").replace(" ", "_")
                if text not in choices:
                    raise RecordError(
                        f"{where}: {dotted} = {raw!r} is not known; use one of: {', '.join(choices)}"
                    )
            kwargs[key] = text
    return cls(**kwargs)


def _unknown(where: str, key: str, allowed: list[str]) -> str:
    return f"{where}: unknown key {key!r}; known keys here: {', '.join(allowed)}"


def _text(value: Any, key: str, where: str) -> str | None:
    if not isinstance(value, str):
        raise RecordError(f"{where}: {key} must be text in quotes, not {value!r}")
    if len(value) > 10000:
        raise RecordError(f"{where}: {key} is longer than 10000 characters")
    return value.strip() or None


def _number(value: Any, key: str, where: str, *, check: bool = True) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{where}: {key} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise RecordError(f"{where}: {key} must be a finite number, not {value!r}")
    if not check:
        return number
    lo, hi = _NUMBER_RANGES[key]
    if not lo <= number <= hi:
        raise RecordError(
            f"{where}: {key} = {value!r} is outside the plausible range {lo:g} to {hi:g}"
        )
    if key == "build.stage":
        if number != int(number):
            raise RecordError(f"{where}: build.stage must be a whole number (0 = stock)")
        return int(number)
    return number


def _dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if hasattr(value, "__dataclass_fields__"):
            inner = _dict(value)
            if inner:
                out[f.name] = inner
        elif value is not None:
            out[f.name] = value
    return out


def _missing(obj: Any, prefix: str, out: list[str]) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if hasattr(value, "__dataclass_fields__"):
            _missing(value, f"{prefix}{f.name}.", out)
        elif value is None:
            out.append(prefix + f.name)


# -- TOML out ---------------------------------------------------------------------------

_TEMPLATE_HELP = {
    "shop": "shop or site name; the export partitions by it",
    "tuner": "who tuned",
    "notes": "challenges met, solutions applied",
    "build.model": "what the shop calls it; the fleet groups by it",
    "build.engine_family": " | ".join(ENGINE_FAMILIES),
    "build.displacement_cc": "or displacement_ci",
    "build.stage": "0 = stock .. 5",
    "build.exhaust": 'e.g. "2-into-1", "true dual"',
    "build.fuel_octane": "pump octane; E85 ~ 105",
    "build.cam.profile": 'e.g. "S&S 475"',
    "build.cam.lsa_deg": "lobe separation angle",
    "build.cam.overlap_front_deg": "measured; else derived from durations and LSA",
    "conditions.ambient_c": "or ambient_f",
    "conditions.baro_kpa": "or baro_inhg",
    "conditions.altitude_m": "or altitude_ft",
    "dyno.type": 'e.g. "Dynojet 250i"',
    "dyno.load_type": " | ".join(LOAD_TYPES),
    "widebands.front": "source name of the front cylinder's wideband (--source NAME=URI)",
    "widebands.rear": "source name of the rear cylinder's wideband",
}


def to_toml(record: SessionRecord, *, template: bool = True) -> str:
    """TOML for the editor: recorded values set, the rest as commented-out keys with hints."""
    lines = ["# dynoai session record: every key is optional; delete the # to fill one in."]
    _emit(record, "", lines, template)
    return "\n".join(lines).rstrip() + "\n"


def _emit(obj: Any, path: str, lines: list[str], template: bool) -> None:
    subs = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        dotted = f"{path}{f.name}"
        if hasattr(value, "__dataclass_fields__"):
            subs.append((dotted, value))
            continue
        hint = _TEMPLATE_HELP.get(dotted)
        comment = f"  # {hint}" if hint else ""
        if value is None:
            if template:
                lines.append(f"# {f.name} = {comment.strip()}" if comment else f"# {f.name} =")
        else:
            lines.append(f"{f.name} = {_toml_value(value)}{comment}")
    for dotted, value in subs:
        if not template and not _dict(value):
            continue
        lines.append("")
        lines.append(f"[{dotted}]")
        _emit(value, dotted + ".", lines, template)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        if "\n" in value:
            return '"""\n' + value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def merge_record(base: SessionRecord, **changes: Any) -> SessionRecord:
    """``base`` with top-level fields replaced (used by tests and generators)."""
    return replace(base, **changes)
