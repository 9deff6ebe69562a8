"""VehicleConfig: the one typed source of truth for a vehicle's settings.

Precedence, highest first: command-line options, environment
(``DYNOAI_CONFIG`` names a TOML file), the vehicle's TOML (from ``--config`` or
saved in the vehicle store), then the defaults below. Every bad value raises
:class:`core.config.ConfigError` naming the key, never a traceback.

TOML layout (every table optional)::

    [vehicle]
    name = "fxbb-114"
    kind = "vtwin"            # vtwin | car (display / simulator preset)
    stoich = 14.7             # AFR at lambda 1 for the fuel
    lambda_delay_ms = 90      # exhaust transport delay to the wideband
    hit_target = 10           # hits for a cell to count as covered

    [coverage]                # when a cell counts as covered (all three together)
    hit_target = 10           # kept samples (same as vehicle.hit_target)
    min_dwell_s = 1.0         # seconds of settled dwell
    max_lambda_se_pct = 1.0   # standard error of the cell's mean lambda, % of it

    [axes]                    # the ECU fuel table's breakpoints
    rpm = [750, 1000, ...]
    map_kpa = [20, 25, ...]

    [filters]                 # see core.coverage.filters.FilterLimits
    min_clt_c = 60

    [constraints]             # see core.plan.planner.Constraints
    max_rpm = 5800

    [[regions]]               # see core.coverage.regions.Region
    name = "torque peak"
    priority = 1
    rpm_min = 2500
    rpm_max = 4500
    map_min_kpa = 80
    map_max_kpa = 100

    [staleness]               # per-channel zero-order-hold limits, seconds
    lambda = 0.5

    [alarms]                  # see core.alarms.AlarmLimits
    lean_pct = 2.0

    [ve]                      # VE correction, see core.ve.settings.VeSettings
    max_change_pct = 15

Every key, unit and default: docs/vehicle.md.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.alarms import AlarmLimits
from core.channels import STOICH_GASOLINE
from core.config import ConfigError
from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.filters import FilterLimits
from core.coverage.regions import DEFAULT_REGIONS, Region
from core.plan.planner import Constraints
from core.ve.settings import VeSettings

VEHICLE_KINDS = ("vtwin", "car")


@dataclass(frozen=True)
class VehicleConfig:
    """Everything the engine, planner and UI need to know about one vehicle."""

    name: str = "demo"
    """Vehicle name in the store (``--vehicle``)."""
    kind: str = "vtwin"
    """``vtwin`` or ``car``: picks the simulator preset and gauge scales."""
    stoich: float = STOICH_GASOLINE
    """Stoichiometric AFR of the fuel (14.7 gasoline, ~9.8 E85, 6.4 methanol)."""
    lambda_delay_ms: float = 90.0
    """Exhaust transport delay from combustion to the wideband reading."""
    hit_target: int = 10
    """Nearest-cell hits for a cell to count as covered."""
    axes: TableAxes = field(default_factory=TableAxes.default)
    filters: FilterLimits = field(default_factory=FilterLimits)
    constraints: Constraints = field(default_factory=Constraints)
    regions: tuple[Region, ...] = DEFAULT_REGIONS
    staleness_s: Mapping[str, float] = field(default_factory=dict)
    """Per-channel overrides of the zero-order-hold staleness limit."""
    ve: VeSettings = field(default_factory=VeSettings)
    """VE correction: confidence threshold, authority, locks, smoothing."""
    min_dwell_s: float = 1.0
    """Seconds of settled dwell for a cell to count as covered ([coverage])."""
    max_lambda_se_pct: float = 1.0
    """Largest standard error of a covered cell's mean lambda, % ([coverage])."""
    alarms: AlarmLimits = field(default_factory=AlarmLimits)
    """Alarm thresholds (``[alarms]``)."""

    @property
    def coverage_rule(self) -> CoverageRule:
        """The covered = trusted rule (hits, settled dwell, lambda SE) for this vehicle."""
        return CoverageRule(self.hit_target, self.min_dwell_s, self.max_lambda_se_pct)

    def with_overrides(self, **changes: Any) -> VehicleConfig:
        """A copy with command-line overrides applied (None values ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _number(table: Mapping[str, Any], key: str, where: str, lo: float, hi: float) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{where}.{key}: {value} is outside {lo:g}..{hi:g}")
    return float(value)


def config_from_mapping(data: Mapping[str, Any], *, source: str = "config") -> VehicleConfig:
    """Build a VehicleConfig from parsed TOML; ``source`` names the file in errors."""
    known = {
        "vehicle",
        "coverage",
        "axes",
        "filters",
        "constraints",
        "regions",
        "staleness",
        "alarms",
        "ve",
    }
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown section [{key}] (known: {', '.join(sorted(known))})"
            )
    cfg = VehicleConfig()
    vehicle = data.get("vehicle", {})
    if not isinstance(vehicle, Mapping):
        raise ConfigError(f"{source}: [vehicle] must be a table")
    changes: dict[str, Any] = {}
    for key in vehicle:
        where = f"{source}: vehicle"
        if key == "name":
            if not isinstance(vehicle[key], str) or not vehicle[key].strip():
                raise ConfigError(f"{where}.name: expected a non-empty string")
            changes["name"] = vehicle[key].strip()
        elif key == "kind":
            if vehicle[key] not in VEHICLE_KINDS:
                raise ConfigError(
                    f"{where}.kind: {vehicle[key]!r} is not one of {', '.join(VEHICLE_KINDS)}"
                )
            changes["kind"] = vehicle[key]
        elif key == "stoich":
            changes["stoich"] = _number(vehicle, key, where, 5.0, 20.0)
        elif key == "lambda_delay_ms":
            changes["lambda_delay_ms"] = _number(vehicle, key, where, 0.0, 2000.0)
        elif key == "hit_target":
            target = _number(vehicle, key, where, 1, 100000)
            if not target.is_integer():
                raise ConfigError(
                    f"{where}.hit_target: expected a whole number of hits, got {target:g}"
                )
            changes["hit_target"] = int(target)
        else:
            raise ConfigError(f"{where}.{key}: unknown key")
    if "coverage" in data:
        coverage = _coverage(data["coverage"], source)
        both = changes.get("hit_target"), coverage.get("hit_target")
        if None not in both and both[0] != both[1]:
            # one of the two was silently ignored: which one counts is not obvious
            raise ConfigError(
                f"{source}: vehicle.hit_target = {both[0]} and coverage.hit_target = "
                f"{both[1]} disagree; set it in one place"
            )
        changes.update(coverage)
    if "axes" in data:
        try:
            changes["axes"] = TableAxes.from_dict(data["axes"])
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigError(f"{source}: axes: {exc}") from None
    if "filters" in data:
        changes["filters"] = _sub(FilterLimits.from_mapping, data["filters"], source, "filters")
    if "constraints" in data:
        changes["constraints"] = _sub(
            Constraints.from_mapping, data["constraints"], source, "constraints"
        )
    if "regions" in data:
        regions = data["regions"]
        if not isinstance(regions, list):
            raise ConfigError(f"{source}: regions must be an array of tables ([[regions]])")
        changes["regions"] = tuple(
            _sub(Region.from_mapping, r, source, f"regions[{i}]") for i, r in enumerate(regions)
        )
    if "alarms" in data:
        changes["alarms"] = _sub(AlarmLimits.from_mapping, data["alarms"], source, "alarms")
    if "ve" in data:
        changes["ve"] = _sub(VeSettings.from_mapping, data["ve"], source, "ve")
    if "staleness" in data:
        table = data["staleness"]
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [staleness] must be a table")
        changes["staleness_s"] = {
            k: _number(table, k, f"{source}: staleness", 0.001, 3600.0) for k in table
        }
    return replace(cfg, **changes)


def _coverage(table: Any, source: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [coverage] must be a table")
    where = f"{source}: coverage"
    out: dict[str, Any] = {}
    for key in table:
        if key == "hit_target":
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}.hit_target: expected a whole number, got {value!r}")
            out["hit_target"] = int(_number(table, key, where, 1, 100000))
        elif key == "min_dwell_s":
            out["min_dwell_s"] = _number(table, key, where, 0.0, 600.0)
        elif key == "max_lambda_se_pct":
            out["max_lambda_se_pct"] = _number(table, key, where, 0.01, 100.0)
        else:
            raise ConfigError(
                f"{where}.{key}: unknown key (known: hit_target, min_dwell_s, max_lambda_se_pct)"
            )
    return out


def _sub(factory: Any, table: Any, source: str, where: str) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: {where} must be a table")
    try:
        return factory(table)
    except ConfigError as exc:
        text = str(exc)
        prefix = "" if text.startswith(where.split("[")[0]) else f"{where}: "
        raise ConfigError(f"{source}: {prefix}{text}") from None


def parse_config_text(text: str, *, source: str = "config") -> VehicleConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    return config_from_mapping(data, source=source)


def load_config_file(path: str | Path) -> VehicleConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc}") from None
    return parse_config_text(text, source=str(p))


def resolve_config(
    *,
    config_file: str | Path | None = None,
    stored_toml: str | None = None,
    vehicle: str | None = None,
) -> VehicleConfig:
    """Apply the precedence rules: ``--config`` > ``DYNOAI_CONFIG`` > the stored TOML > defaults."""
    env_file = os.environ.get("DYNOAI_CONFIG")
    if config_file is not None:
        cfg = load_config_file(config_file)
    elif env_file:
        cfg = load_config_file(env_file)
    elif stored_toml:
        cfg = parse_config_text(stored_toml, source=f"stored config of vehicle {vehicle!r}")
    else:
        cfg = VehicleConfig()
    if vehicle:
        cfg = replace(cfg, name=vehicle)
    return cfg
