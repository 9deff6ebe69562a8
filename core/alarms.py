"""Alarms: the vehicle's ``[alarms]`` thresholds judged against the live values.

An alarm is something the tuner must react to within a second (back off the
throttle, stop the pull), so it must fire on what really happens on a dyno: the
simulator's engine runs about 3 % lean of target at WOT, and a lean WOT pull
is the classic way to melt a piston. Thresholds are per vehicle (a
turbo car on E85 and a carbureted V-twin disagree on what "hot" is) and live in
the vehicle TOML::

    [alarms]
    wot_tps_pct = 85        # throttle from which mixture alarms apply
    lean_pct = 2.0          # lean of the lambda target at WOT, percent
    rich_pct = 10.0         # rich of the lambda target at WOT, percent
    wot_lambda_max = 0.92   # lean limit at WOT when no target is logged
    knock_retard_deg = 0.0  # alarm when the ECU pulls more timing than this
    iat_c = 60              # intake air temperature limit
    clt_c = 110             # coolant temperature limit
    egt_c = 900             # exhaust gas temperature limit
    hold_s = 0.3            # a mixture condition must last this long (data time)
    bell = ["lean_wot", "knock"]   # alarms that ring the terminal bell
    disabled = []           # alarm codes switched off, e.g. ["rich_wot"]

:class:`AlarmWatch` is the one place that decides; the engine calls it for every
published snapshot with the current values and source states and gets the alarm
tuple back. Each alarm is an :class:`Alarm`: a ``str`` (what the screen and the
status line print) that also carries its ``code`` and whether it rings the bell.
The onset and the end of every alarm are handed to ``on_event`` as
:class:`core.source.SourceEvent` (kinds ``alarm`` / ``alarm_clear``), which the
engine writes into the recording.

Mixture readings are noisy (a wideband jitters by ~1 %), so the lean and rich
alarms need their condition to hold for ``hold_s`` of data time before they fire
and to be gone for as long before they clear; knock, temperatures and source
problems fire at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from core.config import ConfigError
from core.snapshot import AlarmSeen, SourceInfo
from core.source import SourceEvent, SourceState

EVENT_SOURCE = "alarms"
"""``SourceEvent.source`` of alarm onset / clear events in the recording."""

RETARD_RESOLUTION_DEG = 0.01
"""Knock retard under this is none: no ECU reports it that finely, and the simulator's
decaying retard left "KNOCK: 7.7e-14 deg retard" on the alarm line."""
ALARM_CODES = ("lean_wot", "rich_wot", "knock", "iat", "clt", "egt", "source", "recording")
"""Every alarm code (for ``bell`` and ``disabled``)."""

_LAGGED = frozenset({"lean_wot", "rich_wot"})
"""Codes whose condition must persist for ``hold_s`` before the alarm changes state."""

_TALLY_GAP_S = 5.0
"""A step in data time longer than this between two judgements adds nothing to an alarm's
seconds on (a replay seek, a source gap): nobody watched it being on then."""

_BAD_STATES = (SourceState.RECONNECTING, SourceState.FAILED, SourceState.STALE)


class Alarm(str):
    """An alarm's text as shown, with its ``code`` and whether it rings the bell."""

    code: str
    bell: bool

    def __new__(cls, text: str, code: str, bell: bool = False) -> Alarm:
        obj = super().__new__(cls, text)
        obj.code = code
        obj.bell = bell
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Alarm, (str(self), self.code, self.bell))


@dataclass(frozen=True)
class AlarmLimits:
    """Thresholds of the ``[alarms]`` table (see the module docstring for the TOML)."""

    wot_tps_pct: float = 85.0
    """Throttle (%) from which the lean / rich alarms apply."""
    lean_pct: float = 2.0
    """Lean of target at WOT (%) that fires: measured lambda > target x (1 + lean_pct/100)."""
    rich_pct: float = 10.0
    """Rich of target at WOT (%) that fires: measured lambda < target x (1 - rich_pct/100)."""
    wot_lambda_max: float = 0.92
    """Lean limit (lambda) at WOT when no lambda / AFR target is logged."""
    knock_retard_deg: float = 0.0
    """Fires when the ECU's knock retard exceeds this many degrees."""
    iat_c: float = 60.0
    """Intake air temperature limit, degC."""
    clt_c: float = 110.0
    """Coolant temperature limit, degC."""
    egt_c: float = 900.0
    """Exhaust gas temperature limit, degC (only where an EGT channel is logged)."""
    hold_s: float = 0.3
    """How long (data time) a lean / rich condition must last to fire, and be gone to clear."""
    bell: tuple[str, ...] = ("lean_wot", "knock")
    """Alarm codes that ring the terminal bell when they fire."""
    disabled: tuple[str, ...] = ()
    """Alarm codes switched off."""

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> AlarmLimits:
        """Validate an ``[alarms]`` table; every bad key or value is a ConfigError naming it."""
        ranges = {
            "wot_tps_pct": (1.0, 100.0),
            "lean_pct": (0.0, 50.0),
            "rich_pct": (0.0, 50.0),
            "wot_lambda_max": (0.5, 2.0),
            "knock_retard_deg": (0.0, 30.0),
            "iat_c": (-40.0, 200.0),
            "clt_c": (-40.0, 200.0),
            "egt_c": (0.0, 1500.0),
            "hold_s": (0.0, 10.0),
        }
        known = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"alarms.{key}: unknown key (known: {', '.join(sorted(known))})")
            if key in ranges:
                lo, hi = ranges[key]
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                if not ok or not math.isfinite(value):
                    raise ConfigError(f"alarms.{key}: expected a number, got {value!r}")
                if not lo <= value <= hi:
                    raise ConfigError(f"alarms.{key}: {value} is outside {lo:g}..{hi:g}")
                changes[key] = float(value)
            else:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"alarms.{key}: expected a list of alarm codes")
                unknown = [v for v in value if v not in ALARM_CODES]
                if unknown:
                    raise ConfigError(
                        f"alarms.{key}: unknown alarm {unknown[0]!r} "
                        f"(known: {', '.join(ALARM_CODES)})"
                    )
                changes[key] = tuple(value)
        return cls(**changes)


@dataclass(slots=True)
class _Debounce:
    active: bool = False
    changing_since: float | None = None


class AlarmWatch:
    """Judges values against :class:`AlarmLimits`; keeps the little state debouncing needs.

    Args:
        limits: The vehicle's thresholds.
        stoich: AFR at lambda 1 (the lean alarm shows AFR, as the gauge does).
    """

    def __init__(self, limits: AlarmLimits | None = None, stoich: float = 14.7) -> None:
        self.limits = limits or AlarmLimits()
        self.stoich = stoich
        self._debounce: dict[str, _Debounce] = {}
        self._texts: dict[str, str] = {}
        """Code -> text of a lagged alarm when its condition last held (:meth:`_text`)."""
        self._active: dict[str, str] = {}
        """Code -> text of the alarms on now (to emit onset / clear events once)."""
        self._seen: dict[str, list[Any]] = {}
        """Code -> [onsets, seconds on, worst severity, worst text] (:attr:`seen`)."""
        self._seen_view: tuple[AlarmSeen, ...] = ()
        self._last_t = math.nan
        self._was_on: frozenset[str] = frozenset()

    def update(
        self,
        values: Mapping[str, float],
        infos: Sequence[SourceInfo],
        now_t: float,
        recording_error: str = "",
        on_event: Callable[[SourceEvent], None] | None = None,
        *,
        ended: bool = False,
    ) -> tuple[Alarm, ...]:
        """The alarms on at data time ``now_t``; onsets and clears go to ``on_event``.

        ``ended``: the data has ended (a replay at the end of its log). The values are
        the last ones held, not readings: nothing is judged from them, and the lagged
        alarms clear at once, as no more data time passes to debounce them (a replay
        that ended in a pull said "KNOCK: 4.5 deg retard" for as long as it stayed open).
        Source and recording alarms still apply.
        """
        if ended:
            values = {}
            self._debounce.clear()
        lim = self.limits
        found: list[tuple[str, str]] = []
        severity: dict[str, float] = {}
        """How bad each alarm found now is, for its worst reading (:attr:`seen`)."""
        tps = values.get("tps_pct", math.nan)
        lam = values.get("lambda", math.nan)
        target = values.get("lambda_target", math.nan)
        wot = tps >= lim.wot_tps_pct and math.isfinite(lam)
        if math.isfinite(target) and target > 0:
            err_pct = (lam / target - 1.0) * 100.0
            lean, rich = wot and err_pct > lim.lean_pct, wot and err_pct < -lim.rich_pct
            vs = f" vs {target * self.stoich:.1f} target ({err_pct:+.0f}%)"
            severity["lean_wot"], severity["rich_wot"] = err_pct, -err_pct
        else:
            lean, rich, vs = wot and lam > lim.wot_lambda_max, False, ""
        afr = lam * self.stoich
        if "lean_wot" not in severity:  # % over the no-target limit, as err_pct is over target
            severity["lean_wot"] = (lam / lim.wot_lambda_max - 1.0) * 100.0
        if self._held("lean_wot", lean, now_t):
            found.append(
                ("lean_wot", self._text("lean_wot", lean, f"LEAN AT WOT: AFR {afr:.1f}{vs}"))
            )
        if self._held("rich_wot", rich, now_t):
            found.append(
                ("rich_wot", self._text("rich_wot", rich, f"RICH AT WOT: AFR {afr:.1f}{vs}"))
            )
        retard = values.get("knock_retard_deg", math.nan)
        if retard > max(lim.knock_retard_deg, RETARD_RESOLUTION_DEG):
            # (a trace of retard read "0.0 deg" at one decimal)
            shown = f"{retard:.1f}" if retard >= 0.1 else f"{retard:.2g}"
            found.append(("knock", f"KNOCK: {shown} deg retard"))
            severity["knock"] = retard
        for code, channel, limit, label in (
            ("iat", "iat_c", lim.iat_c, "IAT"),
            ("clt", "clt_c", lim.clt_c, "CLT"),
            ("egt", "egt_c", lim.egt_c, "EGT"),
        ):
            value = values.get(channel, math.nan)
            if value >= limit:
                found.append((code, f"HIGH {label} {value:.0f} °C"))
                severity[code] = value
        for info in infos:
            if info.state in _BAD_STATES:
                why = f": {info.message}" if info.message else ""
                found.append(("source", f"SOURCE {info.name} {info.state.value.upper()}{why}"))
        if recording_error:
            found.append(("recording", recording_error.upper()))
        alarms = tuple(
            Alarm(text, code, code in lim.bell) for code, text in found if code not in lim.disabled
        )
        self._emit(alarms, now_t, on_event)
        self._tally(alarms, severity, now_t)
        return alarms

    @property
    def seen(self) -> tuple[AlarmSeen, ...]:
        """Every alarm that came on so far: onsets, data seconds on, the worst reading.

        After a headless run over SSH the summary is all the tuner sees: the status
        line showed "KNOCK: 4.1 deg retard" for a moment and the summary said nothing.
        Judged when :meth:`update` is, once per published snapshot (~30 a second live),
        like the alarm line: a replay at full speed judges fewer moments of its data.
        """
        return self._seen_view

    def _tally(self, alarms: Sequence[Alarm], severity: Mapping[str, float], now_t: float) -> None:
        step = now_t - self._last_t if math.isfinite(self._last_t) else 0.0
        self._last_t = now_t
        if not 0.0 < step <= _TALLY_GAP_S:
            step = 0.0  # a replay seek, or the first update: no time to add
        changed = False
        for alarm in alarms:
            entry = self._seen.get(alarm.code)
            bad = severity.get(alarm.code, -math.inf)
            if entry is None:
                self._seen[alarm.code] = [1, 0.0, bad, str(alarm)]
                changed = True
                continue
            if alarm.code not in self._was_on:
                entry[0] += 1
                changed = True
            entry[1] += step
            changed = changed or step > 0.0
            if bad > entry[2]:
                entry[2], entry[3] = bad, str(alarm)
                changed = True
        self._was_on = frozenset(a.code for a in alarms)
        if changed:
            self._seen_view = tuple(
                AlarmSeen(code, int(e[0]), float(e[1]), str(e[3])) for code, e in self._seen.items()
            )

    def _text(self, code: str, condition: bool, text: str) -> str:
        """A lagged alarm's text: the values now while its condition holds, else as it last held.

        The alarm stays on for ``hold_s`` after its condition ends; its text rebuilt from
        the values then read "LEAN AT WOT: AFR 13.3 vs 14.3 target (-7%)" with the
        throttle shut and the mixture rich.
        """
        if condition or code not in self._texts:
            self._texts[code] = text
        return self._texts[code]

    def _held(self, code: str, condition: bool, now_t: float) -> bool:
        """Debounced state of a lagged alarm: it flips only after ``hold_s`` of the new state."""
        state = self._debounce.setdefault(code, _Debounce())
        if condition == state.active:
            state.changing_since = None
        elif state.changing_since is None or now_t < state.changing_since:
            state.changing_since = now_t
        if state.changing_since is not None and now_t - state.changing_since >= self.limits.hold_s:
            state.active, state.changing_since = condition, None
        return state.active

    def _emit(
        self,
        alarms: Sequence[Alarm],
        now_t: float,
        on_event: Callable[[SourceEvent], None] | None,
    ) -> None:
        # One alarm per code and source (several sources can be lost at once).
        now = {f"{a.code}:{a.split(':')[0]}" if a.code == "source" else a.code: a for a in alarms}
        if on_event is not None:
            for key, alarm in now.items():
                if key not in self._active:
                    on_event(
                        SourceEvent(EVENT_SOURCE, "alarm", now_t, str(alarm), {"code": alarm.code})
                    )
            for key, text in self._active.items():
                if key not in now:
                    code = key.partition(":")[0]
                    on_event(SourceEvent(EVENT_SOURCE, "alarm_clear", now_t, text, {"code": code}))
        self._active = {key: str(alarm) for key, alarm in now.items()}


def bell_onsets(previous: Sequence[str], current: Sequence[str]) -> bool:
    """True when an alarm that rings the bell is on now and was not before."""
    before = {getattr(a, "code", str(a)) for a in previous}
    return any(getattr(a, "bell", False) and a.code not in before for a in current)  # type: ignore[attr-defined]
