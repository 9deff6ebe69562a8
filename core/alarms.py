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

:class:`AlarmWatch` is the one place that decides; the engine hands it every block
of samples (the value alarms are judged at each sample's data time, so a replay at
any speed sees what live did) and calls it for every published snapshot with the
source states, getting the alarm tuple back. Each alarm is an :class:`Alarm`: a ``str`` (what the screen and the
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

import numpy as np
import numpy.typing as npt

from core.config import ConfigError
from core.frames import F64
from core.snapshot import AlarmSeen, SourceInfo
from core.source import SourceEvent, SourceState

EVENT_SOURCE = "alarms"
"""``SourceEvent.source`` of alarm onset / clear events in the recording."""

RETARD_RESOLUTION_DEG = 0.01
"""Knock retard under this is none: no ECU reports it that finely, and the simulator's
decaying retard left "KNOCK: 7.7e-14 deg retard" on the alarm line."""


def retard_text(deg: float) -> str:
    """Knock retard as the alarm and the knock gauge both show it.

    One decimal from 0.1 degree, two significant digits under it ("0.034"): a trace of
    retard read "0.0 deg" at one decimal, and the gauge's "Knock ret 0.0 °" stood beside
    "KNOCK: 0.03 deg retard". Under :data:`RETARD_RESOLUTION_DEG` it is none ("0.0").
    """
    if not math.isfinite(deg):
        return "--"
    if abs(deg) < RETARD_RESOLUTION_DEG:
        return "0.0"
    return f"{deg:.1f}" if abs(deg) >= 0.1 else f"{deg:.2g}"


ALARM_CODES = ("lean_wot", "rich_wot", "knock", "iat", "clt", "egt", "source", "recording")
"""Every alarm code (for ``bell`` and ``disabled``)."""
ALARM_CHANNELS = (
    "tps_pct",
    "lambda",
    "lambda_target",
    "knock_retard_deg",
    "iat_c",
    "clt_c",
    "egt_c",
)
"""The channels the value alarms read."""

_LAGGED = frozenset({"lean_wot", "rich_wot"})
"""Codes whose condition must persist for ``hold_s`` before the alarm changes state."""

_TALLY_GAP_S = 5.0
"""A step in data time longer than this between two judgements adds nothing to an alarm's
seconds on (a replay seek, a source gap): nobody watched it being on then."""

_VALUE_CODES = frozenset({"lean_wot", "rich_wot", "knock", "iat", "clt", "egt"})
"""Alarms judged from the values at every sample (:meth:`AlarmWatch.judge`)."""
_OTHER_CODES = frozenset(ALARM_CODES) - _VALUE_CODES
"""Alarms judged per published snapshot (sources, the recording)."""

_TEMPERATURES = {"iat": ("IAT", "iat_c"), "clt": ("CLT", "clt_c"), "egt": ("EGT", "egt_c")}
_SNAPSHOTS = "snapshots"
"""The stream of value judgements made per published snapshot (:meth:`AlarmWatch.update`)."""
_SNAPSHOT_OTHERS = "snapshots:others"

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

    The value alarms (mixture, knock, temperatures) are judged at every sample's data
    time (:meth:`judge`, for each block the engine takes in), so what they report
    depends on the data only: a replay at full speed published a snapshot for every
    few hundred samples, and its summary said knock was on for 2.0 s where the
    recording holds 6.0 s. Source and recording alarms are judged per published
    snapshot (:meth:`update`), as are the value alarms when no sample came since
    (live, a silent source's values go stale between its samples).

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
        self._value_alarms: tuple[Alarm, ...] = ()
        """The value alarms as last judged."""
        self._judged_t = -math.inf
        """Newest data time the value alarms were judged at."""
        self._stream_t: dict[str, float] = {}
        """Stream (a source, or the snapshots) -> data time of its last judgement."""
        self._counted_until: dict[str, float] = {}
        """Code -> data time up to which its seconds on are counted (streams overlap)."""
        self._was_on: frozenset[str] = frozenset()
        """Source / recording alarm codes on at the last snapshot (their onsets)."""
        self._spell_s: dict[str, float] = {}
        """Source / recording alarm code -> seconds of its current spell on."""

    def judge(
        self,
        t: F64,
        columns: Mapping[str, F64],
        stream: str,
        on_event: Callable[[SourceEvent], None] | None = None,
    ) -> None:
        """Judge the value alarms at every sample time ``t`` of one block (vectorised).

        ``columns`` holds the alarm channels at those times (the block's own, or the
        values held from other sources, NaN where stale; a missing channel is NaN);
        ``stream`` names where the samples came from: each source keeps its own time
        steps, so blocks of several sources interleaving out of time order neither
        lose nor double-count an alarm's seconds. Onsets and clears go to ``on_event``
        at the data time of the sample they happened at.
        """
        t = np.asarray(t, dtype=np.float64)
        n = t.size
        if n == 0:
            return
        conditions, severity = self._conditions(columns, n)
        last_t = float(t[-1])
        self._judged_t = max(self._judged_t, last_t)
        quiet = not any(c.any() for c in conditions.values())
        if quiet and not self._value_alarms and not self._pending():
            self._stream_t[stream] = last_t  # the usual block: nothing near a limit
            return
        lim = self.limits
        on = {
            code: self._debounced(code, cond, t) if code in _LAGGED else cond
            for code, cond in conditions.items()
            if code not in lim.disabled
        }
        prev = self._stream_t.get(stream, math.nan)
        self._stream_t[stream] = last_t
        before = np.concatenate(([prev], t[:-1]))
        with np.errstate(invalid="ignore"):
            step = t - before
            counts = (step > 0.0) & (step <= _TALLY_GAP_S)  # not a seek, a gap, the first
        events: list[tuple[float, int, SourceEvent]] = []
        changed = False
        # codes in the order they come on in this block: a block holding a whole pull
        # (a replay at full speed) listed lean before knock in the summary when knock
        # came on first, as a paced replay listed them
        first_on = {code: int(np.argmax(is_on)) if is_on.any() else n for code, is_on in on.items()}
        ordered = sorted(on.items(), key=lambda item: first_on[item[0]])
        for order, (code, is_on) in enumerate(ordered):
            text_at = self._text_source(code, columns, conditions[code])
            was = code in self._active
            if not is_on.any() and not was:
                continue
            edges = np.flatnonzero(is_on[1:] != is_on[:-1]) + 1
            if is_on[0] != was:
                edges = np.concatenate(([0], edges))
            entry = self._seen.get(code)
            for i in edges.tolist():
                if is_on[i]:
                    text = text_at(i)
                    if entry is None:
                        entry = self._seen[code] = [0, 0.0, -math.inf, text]
                    entry[0] += 1
                    changed = True
                    self._active[code] = text
                    event = SourceEvent(EVENT_SOURCE, "alarm", float(t[i]), text, {"code": code})
                else:
                    text = self._active.pop(code, "")
                    event = SourceEvent(
                        EVENT_SOURCE, "alarm_clear", float(t[i]), text, {"code": code}
                    )
                events.append((float(t[i]), order, event))
            if is_on[-1]:
                self._active[code] = text_at(n - 1)
            if entry is None:
                continue
            counted = is_on & counts
            if counted.any():
                since = np.maximum(before[counted], self._counted_until.get(code, -math.inf))
                added = float(np.clip(t[counted] - since, 0.0, None).sum())
                entry[1] += added
                changed = changed or added > 0.0
            if is_on.any():
                self._counted_until[code] = max(
                    float(t[is_on].max()), self._counted_until.get(code, -math.inf)
                )
                bad = np.where(is_on & conditions[code], severity[code], np.nan)
                if not np.isnan(bad).all():
                    worst = int(np.nanargmax(bad))
                    if bad[worst] > entry[2]:
                        entry[2], entry[3] = float(bad[worst]), text_at(worst)
                        changed = True
        if on_event is not None:
            for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
                on_event(event)
        self._value_alarms = tuple(
            Alarm(self._active[code], code, code in lim.bell)
            for code, is_on in on.items()
            if is_on[-1]
        )
        if changed:
            self._refresh_seen()

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

        The value alarms are those :meth:`judge` found at the newest sample, judged
        again from ``values`` only when ``now_t`` is past every sample judged (live,
        between samples; or where nothing feeds :meth:`judge`).

        ``ended``: the data has ended (a replay at the end of its log). The values are
        the last ones held, not readings: nothing is judged from them, and the lagged
        alarms clear at once, as no more data time passes to debounce them (a replay
        that ended in a pull said "KNOCK: 4.5 deg retard" for as long as it stayed open).
        Source and recording alarms still apply.
        """
        at = np.array([now_t], dtype=np.float64)
        if ended:
            self._debounce.clear()
            self.judge(at, {}, _SNAPSHOTS, on_event)
        elif now_t > self._judged_t:
            columns = {
                k: np.array([values[k]], dtype=np.float64) for k in ALARM_CHANNELS if k in values
            }
            self.judge(at, columns, _SNAPSHOTS, on_event)
        found: list[tuple[str, str]] = []
        for info in infos:
            if info.state in _BAD_STATES:
                why = f": {info.message}" if info.message else ""
                found.append(("source", f"SOURCE {info.name} {info.state.value.upper()}{why}"))
        if recording_error:
            found.append(("recording", recording_error.upper()))
        lim = self.limits
        others = tuple(
            Alarm(text, code, code in lim.bell) for code, text in found if code not in lim.disabled
        )
        self._emit(others, now_t, on_event)
        self._tally(others, now_t)
        return self._value_alarms + others

    @property
    def seen(self) -> tuple[AlarmSeen, ...]:
        """Every alarm that came on so far: onsets, data seconds on, the worst reading.

        After a headless run over SSH the summary is all the tuner sees: the status
        line showed "KNOCK: 4.1 deg retard" for a moment and the summary said nothing.
        The value alarms are tallied at every sample (:meth:`judge`), so a replay at any
        speed tallies what its live run did.
        """
        return self._seen_view

    def _pending(self) -> bool:
        return any(d.changing_since is not None or d.active for d in self._debounce.values())

    def _conditions(
        self, columns: Mapping[str, F64], n: int
    ) -> tuple[dict[str, npt.NDArray[np.bool_]], dict[str, F64]]:
        """Each value alarm's condition at every sample, and how bad it is there."""
        lim = self.limits
        missing = np.full(n, np.nan)

        def col(name: str) -> F64:
            got = columns.get(name)
            return missing if got is None else np.asarray(got, dtype=np.float64)

        tps, lam, target = col("tps_pct"), col("lambda"), col("lambda_target")
        with np.errstate(invalid="ignore", divide="ignore"):
            wot = (tps >= lim.wot_tps_pct) & np.isfinite(lam)
            has = np.isfinite(target) & (target > 0)
            err = np.where(has, (lam / np.where(has, target, 1.0) - 1.0) * 100.0, np.nan)
            conditions = {
                "lean_wot": wot & np.where(has, err > lim.lean_pct, lam > lim.wot_lambda_max),
                "rich_wot": wot & has & (err < -lim.rich_pct),
            }
            severity = {
                # % over target, or over the no-target limit
                "lean_wot": np.where(has, err, (lam / lim.wot_lambda_max - 1.0) * 100.0),
                "rich_wot": -err,
            }
            retard = col("knock_retard_deg")
            conditions["knock"] = retard > max(lim.knock_retard_deg, RETARD_RESOLUTION_DEG)
            severity["knock"] = retard
            for code, channel, limit in (
                ("iat", "iat_c", lim.iat_c),
                ("clt", "clt_c", lim.clt_c),
                ("egt", "egt_c", lim.egt_c),
            ):
                value = col(channel)
                conditions[code] = value >= limit
                severity[code] = value
        return conditions, severity

    def _text_source(
        self, code: str, columns: Mapping[str, F64], condition: npt.NDArray[np.bool_]
    ) -> Callable[[int], str]:
        """The alarm's text at a sample index.

        A lagged alarm stays on for ``hold_s`` after its condition ends; its text rebuilt
        from the values then read "LEAN AT WOT: AFR 13.3 vs 14.3 target (-7%)" with the
        throttle shut and the mixture rich: it keeps the text of the last sample its
        condition held at (in this block or, failing that, an earlier one).
        """
        last_held = None
        if code in _LAGGED:
            idx = np.where(condition, np.arange(condition.size), -1)
            last_held = np.maximum.accumulate(idx)
            if condition.any():
                final = int(last_held[-1])
                self._texts[code] = self._text_of(code, columns, final)

        def text_at(i: int) -> str:
            if last_held is None:
                return self._text_of(code, columns, i)
            held = int(last_held[i])
            if held >= 0:
                return self._text_of(code, columns, held)
            return self._texts.get(code) or self._text_of(code, columns, i)

        return text_at

    def _text_of(self, code: str, columns: Mapping[str, F64], i: int) -> str:
        def at(name: str) -> float:
            got = columns.get(name)
            return math.nan if got is None else float(got[i])

        if code in _LAGGED:
            lam, target = at("lambda"), at("lambda_target")
            vs = ""
            if math.isfinite(target) and target > 0:
                err_pct = (lam / target - 1.0) * 100.0
                vs = f" vs {target * self.stoich:.1f} target ({err_pct:+.0f}%)"
            word = "LEAN" if code == "lean_wot" else "RICH"
            return f"{word} AT WOT: AFR {lam * self.stoich:.1f}{vs}"
        if code == "knock":
            return f"KNOCK: {retard_text(at('knock_retard_deg'))} deg retard"
        label, channel = _TEMPERATURES[code]
        return f"HIGH {label} {at(channel):.0f} °C"

    def _debounced(
        self, code: str, condition: npt.NDArray[np.bool_], t: F64
    ) -> npt.NDArray[np.bool_]:
        """A lagged alarm's state at each sample.

        It flips only after ``hold_s`` (data time) of the new condition; worked out run
        by run of the condition rather than sample by sample.
        """
        state = self._debounce.setdefault(code, _Debounce())
        hold = self.limits.hold_s
        out = np.empty(condition.size, dtype=bool)
        starts = np.concatenate(([0], np.flatnonzero(condition[1:] != condition[:-1]) + 1))
        ends = np.concatenate((starts[1:], [condition.size]))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            value = bool(condition[a])
            if value == state.active:
                state.changing_since = None
                out[a:b] = value
                continue
            since = state.changing_since
            if since is None or t[a] < since:
                since = float(t[a])
            flips = np.flatnonzero(t[a:b] - since >= hold)
            if flips.size:
                j = a + int(flips[0])
                out[a:j] = state.active
                out[j:b] = value
                state.active, state.changing_since = value, None
            else:
                out[a:b] = state.active
                state.changing_since = since
        return out

    def _tally(self, alarms: Sequence[Alarm], now_t: float) -> None:
        """Onsets and seconds on of the source and recording alarms (per snapshot).

        Their worst reading is the last text of their longest spell on: a pty left
        silent for 49 s summarised "worst SOURCE innovate STALE: no valid frame for
        0.3 s", the text it came on with.
        """
        last = self._stream_t.get(_SNAPSHOT_OTHERS, math.nan)
        self._stream_t[_SNAPSHOT_OTHERS] = now_t
        step = now_t - last if math.isfinite(last) else 0.0
        counts = 0.0 < step <= _TALLY_GAP_S  # not a replay seek, a gap or the first moment
        changed = False
        for alarm in alarms:
            entry = self._seen.get(alarm.code)
            if entry is None:
                entry = self._seen[alarm.code] = [0, 0.0, -math.inf, str(alarm)]
                changed = True
            if alarm.code not in self._was_on:
                entry[0] += 1
                self._spell_s[alarm.code] = 0.0
                changed = True
            if counts:
                entry[1] += step
                self._spell_s[alarm.code] = self._spell_s.get(alarm.code, 0.0) + step
                changed = True
            spell = self._spell_s.get(alarm.code, 0.0)
            if spell >= entry[2]:
                entry[2], entry[3] = spell, str(alarm)
                changed = True
        self._was_on = frozenset(a.code for a in alarms)
        if changed:
            self._refresh_seen()

    def _refresh_seen(self) -> None:
        self._seen_view = tuple(
            AlarmSeen(code, int(e[0]), float(e[1]), str(e[3])) for code, e in self._seen.items()
        )

    def _emit(
        self,
        alarms: Sequence[Alarm],
        now_t: float,
        on_event: Callable[[SourceEvent], None] | None,
    ) -> None:
        """Onset / clear events of the source and recording alarms (per snapshot)."""
        scope = _OTHER_CODES
        # One alarm per code and source (several sources can be lost at once).
        now = {f"{a.code}:{a.split(':')[0]}" if a.code == "source" else a.code: a for a in alarms}
        if on_event is not None:
            for key, alarm in now.items():
                if key not in self._active:
                    on_event(
                        SourceEvent(EVENT_SOURCE, "alarm", now_t, str(alarm), {"code": alarm.code})
                    )
            for key, text in self._active.items():
                if key not in now and key.partition(":")[0] in scope:
                    code = key.partition(":")[0]
                    on_event(SourceEvent(EVENT_SOURCE, "alarm_clear", now_t, text, {"code": code}))
        kept = {k: v for k, v in self._active.items() if k.partition(":")[0] not in scope}
        self._active = kept | {key: str(alarm) for key, alarm in now.items()}


def bell_onsets(previous: Sequence[str], current: Sequence[str]) -> bool:
    """True when an alarm that rings the bell is on now and was not before."""
    before = {getattr(a, "code", str(a)) for a in previous}
    return any(getattr(a, "bell", False) and a.code not in before for a in current)  # type: ignore[attr-defined]
