"""User-written routines: ``dynoai sim --scenario FILE.toml``.

A tuner writes the routine they run on the dyno as a list of segments in TOML;
the simulator runs it (looping until ``--duration``) through the same segment
machinery as the built-in scenarios (:mod:`sim.scenarios`), so a routine and the
planner's guided operator are timed by the same physics. Format::

    name = "my routine"
    description = "who runs it and why"        # optional
    vehicle = "vtwin"                          # optional: the preset it was written for;
                                               # run on another, the file is refused

    [[segment]]
    kind = "idle"                 # seconds
    seconds = 60
    [[segment]]
    kind = "wot_pull"             # rpm_from, rpm_to
    rpm_from = 2000
    rpm_to = 5500
    [[segment]]
    kind = "cool_down"            # seconds
    seconds = 60
    [[segment]]
    kind = "steady_hold"          # rpm, map_kpa (list), hold_s
    rpm = 3000
    map_kpa = [50, 60, 70, 80]
    hold_s = 3
    [[segment]]
    kind = "part_throttle_sweep"  # map_kpa, rpm_from, rpm_to (rate_rpm_s optional)
    map_kpa = 60
    rpm_from = 1500
    rpm_to = 5000
    [[segment]]
    kind = "row_sweeps"           # map_kpa (list, run order), rpm_from, rpm_to, rate_rpm_s
    map_kpa = [70, 50, 75, 55]    # serpentine: up at 70, down at 50, up at 75 ... (turn_s optional)
    rpm_from = 1875
    rpm_to = 4750
    rate_rpm_s = 300
    [[segment]]
    kind = "map_ramps"            # rpm (list, run order), map_kpa (cells, ascending)
    rpm = [4500, 4000, 3500]      # one slow MAP roll per column: down, up, down ...
    map_kpa = [50, 55, 60, 65, 70, 75, 80, 85, 95]
    map_top = 95.5                # the top cell's upper bound: keep it under WOT MAP
    cell_s = 1.1                  # seconds through each cell (lead, first optional)
    [[segment]]
    kind = "tip_in"               # rpm, map_from, map_to, hold_s
    rpm = 3000
    map_from = 45
    map_to = 85
    hold_s = 2
    [[segment]]
    kind = "cruise"               # seconds (rpm_lo, rpm_hi, map_lo, map_hi optional)
    seconds = 60

Decision: validation is strict (unknown keys, wrong types, values outside what the
simulated engine can do) and every error names the segment (1-based, with its
kind) and the key, because a silently ignored typo in a routine would make a
benchmark against it meaningless. What the engine can do comes from the vehicle
the routine runs on (:class:`Reach`): rpm from the model's first rpm (500) to its
rev limit (V-twin 6000, car 7200), MAP from 10 kPa to the barometer (~101 kPa:
every preset is naturally aspirated). A ``wot_pull`` to 19000 rpm or a hold at
250 kPa ran before, the engine simply never getting there.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.scenarios import (
    CoolDown,
    Cruise,
    Idle,
    MapRamps,
    PartThrottleSweep,
    RowSweeps,
    Scenario,
    Segment,
    SteadyHold,
    TipIn,
    WotPull,
    chain,
)
from sim.vehicles import (
    MODEL_MAP_MIN_KPA,
    MODEL_RPM_MIN,
    VEHICLES,
    SimParamError,
    Vehicle,
    get_vehicle,
    max_map_kpa,
)

SECONDS_RANGE = (0.1, 3600.0)
TOP_KEYS = {"name", "description", "vehicle", "segment"}


@dataclass(frozen=True, slots=True)
class Reach:
    """The rpm and MAP a routine may ask of the engine it runs on, and why those."""

    vehicle: str
    rpm: tuple[float, float]
    map_kpa: tuple[float, float]

    @classmethod
    def of(cls, vehicle: Vehicle) -> Reach:
        return cls(
            vehicle.name,
            (MODEL_RPM_MIN, vehicle.rev_limit_rpm),
            (MODEL_MAP_MIN_KPA, max_map_kpa(vehicle)),
        )

    def rpm_why(self, value: float) -> str:
        if value > self.rpm[1]:
            return f"the {self.vehicle}'s rev limit is {self.rpm[1]:g} rpm"
        return f"the {self.vehicle} model starts at {self.rpm[0]:g} rpm"

    def map_why(self, value: float) -> str:
        if value > self.map_kpa[1]:
            return (
                f"the {self.vehicle} is naturally aspirated: MAP tops out at the "
                f"barometer, {self.map_kpa[1]:g} kPa"
            )
        return f"the {self.vehicle} model starts at {self.map_kpa[0]:g} kPa"


class ScenarioFileError(SimParamError):
    """A routine file that cannot be run; the message names the file, segment and key."""


def is_scenario_file(name: str) -> bool:
    """True when ``--scenario`` names a TOML file rather than a built-in scenario."""
    return name.lower().endswith(".toml")


class _Seg:
    """Typed access to one ``[[segment]]`` table, with errors that name it."""

    def __init__(self, where: str, table: Mapping[str, Any], reach: Reach) -> None:
        self.where = where
        self.table = table
        self.reach = reach
        self.used: set[str] = {"kind"}

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is _REQUIRED:
                raise ScenarioFileError(f"{self.where}: {key}: missing")
            return default
        return self.table[key]

    def number(
        self,
        key: str,
        lo: float,
        hi: float,
        default: Any = None,
        unit: str = "",
        why: Why | None = None,
    ) -> float:
        value = self._get(key, _REQUIRED if default is None else default)
        return self._checked(key, value, lo, hi, unit, why)

    def numbers(
        self, key: str, lo: float, hi: float, unit: str = "", why: Why | None = None
    ) -> tuple[float, ...]:
        value = self._get(key, _REQUIRED)
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ScenarioFileError(f"{self.where}: {key}: the list is empty")
        return tuple(self._checked(key, item, lo, hi, unit, why) for item in items)

    def _checked(
        self, key: str, value: Any, lo: float, hi: float, unit: str, why: Why | None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioFileError(f"{self.where}: {key}: {value!r} is not a number")
        number = float(value)
        if not (math.isfinite(number) and lo <= number <= hi):
            reason = f" ({why(number)})" if why is not None and math.isfinite(number) else ""
            raise ScenarioFileError(
                f"{self.where}: {key}: {value!r} is outside {lo:g}..{hi:g}{unit}{reason}"
            )
        return number

    def check_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used - {"kind"}))
            raise ScenarioFileError(f"{self.where}: {unknown[0]}: unknown key (known: {known})")


_REQUIRED = object()
Why = Callable[[float], str]
"""Why a value is out of range, in the engine's terms (:class:`Reach`)."""


def _rpm(s: _Seg, key: str, default: Any = None) -> float:
    return s.number(key, *s.reach.rpm, default=default, unit=" rpm", why=s.reach.rpm_why)


def _rpms(s: _Seg, key: str) -> tuple[float, ...]:
    return s.numbers(key, *s.reach.rpm, unit=" rpm", why=s.reach.rpm_why)


def _kpa(s: _Seg, key: str, default: Any = None) -> float:
    return s.number(key, *s.reach.map_kpa, default=default, unit=" kPa", why=s.reach.map_why)


def _kpas(s: _Seg, key: str) -> tuple[float, ...]:
    return s.numbers(key, *s.reach.map_kpa, unit=" kPa", why=s.reach.map_why)


def _secs(s: _Seg, key: str, default: Any = None) -> float:
    return s.number(key, *SECONDS_RANGE, default=default, unit=" s")


def _idle(s: _Seg) -> Segment:
    return Idle(_secs(s, "seconds"))


def _cool_down(s: _Seg) -> Segment:
    return CoolDown(_secs(s, "seconds"))


def _wot_pull(s: _Seg) -> Segment:
    lo, hi = _rpm(s, "rpm_from"), _rpm(s, "rpm_to")
    if hi <= lo:
        raise ScenarioFileError(f"{s.where}: rpm_to: {hi:g} must be above rpm_from {lo:g}")
    return WotPull(lo, hi)


def _sweep(s: _Seg) -> Segment:
    map_kpa = _kpa(s, "map_kpa")
    lo, hi = _rpm(s, "rpm_from"), _rpm(s, "rpm_to")
    if hi == lo:
        raise ScenarioFileError(f"{s.where}: rpm_to: {hi:g} must differ from rpm_from")
    rate = s.number("rate_rpm_s", 20.0, 2000.0, default=250.0, unit=" rpm/s")
    return PartThrottleSweep(map_kpa, lo, hi, rate_rpm_s=rate)


def _row_sweeps(s: _Seg) -> Segment:
    rows = _kpas(s, "map_kpa")
    lo, hi = _rpm(s, "rpm_from"), _rpm(s, "rpm_to")
    if hi == lo:
        raise ScenarioFileError(f"{s.where}: rpm_to: {hi:g} must differ from rpm_from")
    rate = s.number("rate_rpm_s", 20.0, 2000.0, default=250.0, unit=" rpm/s")
    turn = s.number("turn_s", 0.0, 30.0, default=1.0, unit=" s")
    return RowSweeps(rows, lo, hi, rate_rpm_s=rate, turn_s=turn)


def _map_ramps(s: _Seg) -> Segment:
    columns = _rpms(s, "rpm")
    cells = _kpas(s, "map_kpa")
    if len(cells) < 2 or any(b <= a for a, b in zip(cells, cells[1:], strict=False)):
        raise ScenarioFileError(f"{s.where}: map_kpa: needs at least two cells, ascending")
    default_top = cells[-1] + 0.5 * (cells[-1] - cells[-2])
    top = _kpa(s, "map_top", default=default_top)
    edges = (
        cells[0] - 0.5 * (cells[1] - cells[0]),
        *(0.5 * (a + b) for a, b in zip(cells, cells[1:], strict=False)),
        top,
    )
    if top <= edges[-2]:
        raise ScenarioFileError(
            f"{s.where}: map_top: {top:g} must be above {edges[-2]:g} (the top cell's lower bound)"
        )
    cell_s = s.number("cell_s", 0.2, 30.0, default=1.1, unit=" s")
    first = s._get("first", "down")
    if first not in ("down", "up"):
        raise ScenarioFileError(f'{s.where}: first: {first!r} must be "down" or "up"')
    lead = _rpms(s, "lead") if "lead" in s.table else ()
    s.used.add("lead")
    if lead and first != "down":
        raise ScenarioFileError(f'{s.where}: lead: needs first = "down" (held in the top cell)')
    lead_kpa = 0.5 * (edges[-2] + edges[-1]) if lead else 0.0
    return MapRamps(columns, edges, cell_s, first == "down", lead=lead, lead_kpa=lead_kpa)


def _steady(s: _Seg) -> Segment:
    rpm = _rpm(s, "rpm")
    steps = _kpas(s, "map_kpa")
    return SteadyHold(rpm, steps, hold_s=_secs(s, "hold_s", default=4.0))


def _tip_in(s: _Seg) -> Segment:
    rpm = _rpm(s, "rpm")
    lo, hi = _kpa(s, "map_from"), _kpa(s, "map_to")
    if hi <= lo:
        raise ScenarioFileError(f"{s.where}: map_to: {hi:g} must be above map_from {lo:g}")
    return TipIn(rpm, lo, hi, hold_s=_secs(s, "hold_s", default=3.0))


def _cruise(s: _Seg) -> Segment:
    seconds = _secs(s, "seconds")
    rpm_lo = _rpm(s, "rpm_lo", default=-1.0) if "rpm_lo" in s.table else None
    rpm_hi = _rpm(s, "rpm_hi", default=-1.0) if "rpm_hi" in s.table else None
    s.used.update({"rpm_lo", "rpm_hi"})
    map_lo, map_hi = _kpa(s, "map_lo", default=35.0), _kpa(s, "map_hi", default=75.0)
    if map_hi <= map_lo:
        raise ScenarioFileError(f"{s.where}: map_hi: {map_hi:g} must be above map_lo {map_lo:g}")
    if rpm_lo is not None and rpm_hi is not None and rpm_hi <= rpm_lo:
        raise ScenarioFileError(f"{s.where}: rpm_hi: {rpm_hi:g} must be above rpm_lo {rpm_lo:g}")
    return Cruise(seconds, rpm_lo, rpm_hi, map_lo, map_hi)


KINDS: dict[str, Callable[[_Seg], Segment]] = {
    "idle": _idle,
    "wot_pull": _wot_pull,
    "cool_down": _cool_down,
    "steady_hold": _steady,
    "part_throttle_sweep": _sweep,
    "row_sweeps": _row_sweeps,
    "map_ramps": _map_ramps,
    "tip_in": _tip_in,
    "cruise": _cruise,
}
"""Segment kinds a routine file may use and the builder of each."""


def parse_scenario(
    data: Mapping[str, Any], source: str = "scenario", vehicle: Vehicle | str = "vtwin"
) -> Scenario:
    """A :class:`Scenario` from a parsed TOML document; :class:`ScenarioFileError` if bad.

    Setup times come from physics on ``vehicle``: each test starts where the previous
    one left the engine (see :func:`sim.scenarios.chain`); its rev limit and MAP bound
    the values (:class:`Reach`).
    """
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ScenarioFileError(
            f"{source}: {unknown[0]}: unknown key (known: {', '.join(sorted(TOP_KEYS))})"
        )
    engine = get_vehicle(vehicle) if isinstance(vehicle, str) else vehicle
    _check_vehicle(data, source, engine)
    reach = Reach.of(engine)
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        raise ScenarioFileError(f"{source}: name: {name!r} must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ScenarioFileError(f"{source}: description: must be a string")
    tables = data.get("segment")
    if not isinstance(tables, list) or not tables:
        raise ScenarioFileError(f"{source}: segment: needs at least one [[segment]] table")
    segments: list[Segment] = []
    for i, table in enumerate(tables, 1):
        if not isinstance(table, Mapping):
            raise ScenarioFileError(f"{source}: segment {i}: expected a [[segment]] table")
        kind = table.get("kind")
        builder = KINDS.get(kind) if isinstance(kind, str) else None
        if builder is None:
            raise ScenarioFileError(
                f"{source}: segment {i}: kind: {kind!r} is not one of {', '.join(KINDS)}"
            )
        seg = _Seg(f"{source}: segment {i} ({kind})", table, reach)
        try:
            built = builder(seg)
        except SimParamError as exc:
            if isinstance(exc, ScenarioFileError):
                raise
            raise ScenarioFileError(f"{seg.where}: {exc}") from None
        seg.check_unknown()
        segments.append(built)
    return Scenario(name.strip(), description.strip(), chain(segments, engine))


def _check_vehicle(data: Mapping[str, Any], source: str, engine: Vehicle) -> None:
    """``vehicle``, when given, is a preset and the one the routine runs on.

    A routine written for the car (its 7000-rpm holds) run on the V-twin says so
    instead of failing on a number, or running on an engine it was not meant for.
    """
    if "vehicle" not in data:
        return
    named = data["vehicle"]
    known = ", ".join(VEHICLES)
    if not isinstance(named, str) or named not in VEHICLES:
        raise ScenarioFileError(f"{source}: vehicle: {named!r} is not a vehicle (known: {known})")
    if named != engine.name:
        raise ScenarioFileError(
            f"{source}: vehicle: the routine is for the {named}, the simulator runs the "
            f"{engine.name} (run it with dynoai sim --kind {named}, or sim:{named}?scenario=...)"
        )


def load_scenario(path: str | Path, vehicle: Vehicle | str = "vtwin") -> Scenario:
    """Read and validate a routine file; one :class:`ScenarioFileError` line if it is bad."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioFileError(f"{p}: scenario file not found") from None
    except OSError as exc:
        raise ScenarioFileError(f"{p}: cannot read the scenario file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ScenarioFileError(f"{p}: not a UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(f"{p}: not valid TOML ({exc})") from None
    return parse_scenario(data, str(p), vehicle)
