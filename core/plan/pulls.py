"""Pull detection: segment a run into WOT pulls, sweeps, steady holds, tip-ins and idle.

The planner learns from every test and counts pulls against the session limit,
so it has to recognise tests in the stream by itself: the tuner should not have
to press a key before each pull. Each fused sample (decimated to ~20 Hz, which is
plenty for manoeuvres lasting seconds) is classified from the throttle and from
how rpm and throttle moved over the last second:

    wot    throttle >= 90 %, or, with no throttle reading, rpm rising >= 100 rpm/s
           while the dyno measures power (a dyno export: WinPEP / Power Core
           write no throttle, PROTOCOLS §7; its run file is the pull)
    idle   rpm below 1300 with the throttle closed
    tip    throttle up >= 15 points within the last second (a roll-on)
    sweep  rpm rising >= 100 rpm/s at part throttle
    steady rpm within +-60 rpm of a second ago, above idle

Runs of one class become segments; a segment is a test when it is long enough
for its kind (a WOT pull must gain >= 1000 rpm, a sweep too, a steady hold
must last 4 s, idle 5 s, a roll-on 0.3 s). An idle that settles at a new rpm (150 rpm
from where it last held steady: the absorber moved a low-MAP hold to another column)
is a new test from where its rpm left the old level. The detector emits ``pull_start``
(when a test is confirmed, stamped with the segment's start) and ``pull_stop``
events with ``{"test_type": ...}`` for the recorder, and keeps the finished
tests for the learner.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.frames import Block
from core.source import SourceEvent

EVENT_SOURCE = "pulls"
"""``SourceEvent.source`` of the events the detector emits."""

WOT_TPS_PCT = 90.0
MIN_RISE_RPM = 1000.0
IDLE_RPM_MAX = 1300.0
IDLE_TPS_MAX_PCT = 5.0
TIP_RISE_PCT = 15.0
SWEEP_RATE_RPM_S = 100.0
STEADY_BAND_RPM = 60.0
IDLE_SPLIT_RPM = 150.0
"""An idle/low-MAP segment that settles this far from the rpm it last held steady is a new
test: the absorber holding 1250, then 1000, then 750 rpm at a closed-ish throttle (a
low-MAP hold's steps read 0-3 %) was one "idle" of three holds, checked against one of
them (the demo's "idle_low_map 43 %")."""
IDLE_LEVEL_RPM = 20.0
"""An idle point is held steady (sets the level, or is at a new one) when its rpm is within
this of a second before: a cold idle settling drifts ~5 rpm/s and moves the level along;
an rpm sagging after a release (~50 rpm/s) or the absorber's move does not."""
LOOKBACK_S = 1.0
RISE_NOISE_RPM = 15.0
"""A rise told by its rate (a sweep; a pull with no throttle channel) is found ~0.5 s into
it, once the last second's rate passes SWEEP_RATE_RPM_S. It then takes back the points
since the rise began: those no class claimed, from their lowest rpm on; a steady hold or
an idle gives up its end where it sits more than this above its level (median rpm). Before, a WinPEP run from 2500 rpm began its sheet at 2600."""
DECIMATE_S = 0.05
MAX_SEGMENT_POINTS = 12000
"""Points a segment keeps (10 min at DECIMATE_S); longer ones are thinned, not grown."""
PLATEAU_BAND_KPA = 3.0
PLATEAU_MIN_S = 1.0
MIN_DURATION_S = {"steady": 4.0, "idle": 5.0, "tip": 0.3}
TEST_TYPE = {
    "wot": "wot_pull",
    "sweep": "part_throttle_sweep",
    "steady": "steady_state",
    "tip": "tip_in",
    "idle": "idle_low_map",
}


@dataclass(frozen=True, slots=True)
class DetectedTest:
    """One test found in the stream, with the envelope it actually covered."""

    test_type: str
    t_start: float
    t_stop: float
    rpm_start: float
    rpm_min: float
    rpm_max: float
    rpm_median: float
    map_min_kpa: float
    map_max_kpa: float
    map_median_kpa: float
    map_start_kpa: float
    map_end_kpa: float
    map_plateaus_kpa: tuple[float, ...] = ()
    """MAP levels held for >= 1 s (the steps of a steady-state hold), in order."""

    @property
    def duration_s(self) -> float:
        return self.t_stop - self.t_start


@dataclass(slots=True)
class _Segment:
    kind: str
    t: list[float] = field(default_factory=list)
    rpm: list[float] = field(default_factory=list)
    map_kpa: list[float] = field(default_factory=list)
    tps: list[float] = field(default_factory=list)
    confirmed: bool = False
    level: float = math.nan
    """The rpm of the segment's latest steady point (idle: where it is held)."""

    def add(self, t: float, rpm: float, map_kpa: float, tps: float) -> None:
        self.t.append(t)
        self.rpm.append(rpm)
        self.map_kpa.append(map_kpa)
        self.tps.append(tps)
        if len(self.t) >= MAX_SEGMENT_POINTS:
            self._thin()

    def _thin(self) -> None:
        """Keep every other point (and the top rpm): an hour of idle stays bounded."""
        top = max(
            range(len(self.rpm)), key=lambda i: self.rpm[i] if self.rpm[i] == self.rpm[i] else -1
        )
        keep = sorted({*range(0, len(self.t), 2), top, len(self.t) - 1})
        for values in (self.t, self.rpm, self.map_kpa, self.tps):
            values[:] = [values[i] for i in keep]

    def is_test(self) -> bool:
        if len(self.t) < 2:
            return False
        if self.kind in ("wot", "sweep"):
            return max(self.rpm) - self.rpm[0] >= MIN_RISE_RPM
        if self.kind in MIN_DURATION_S:
            return self.t[-1] - self.t[0] >= MIN_DURATION_S[self.kind]
        return False

    def result(self) -> DetectedTest:
        rpm = np.array(self.rpm)
        kpa = np.array(self.map_kpa)
        kpa_ok = kpa[np.isfinite(kpa)]
        if kpa_ok.size == 0:
            kpa_ok = np.array([math.nan])
        if self.kind in ("wot", "sweep"):
            # the pull ends at its top rpm; what follows is the roll-off
            top = int(np.argmax(rpm))
            rpm, kpa_ok = rpm[: top + 1], kpa_ok[: max(top + 1, 1)]
            t_stop = self.t[top]
        else:
            t_stop = self.t[-1]
        return DetectedTest(
            TEST_TYPE[self.kind],
            self.t[0],
            t_stop,
            float(rpm[0]),
            float(rpm.min()),
            float(rpm.max()),
            float(np.median(rpm)),
            float(kpa_ok.min()),
            float(kpa_ok.max()),
            float(np.median(kpa_ok)),
            float(kpa_ok[0]),
            float(kpa_ok[-1]),
            _plateaus(self.t, self.map_kpa),
        )


class PullDetector:
    """Stateful test segmenter over successive fused blocks of one session."""

    def __init__(self, source: str = EVENT_SOURCE) -> None:
        self.source = source
        self.pulls = 0
        """WOT pulls detected this session (counted against ``max_pulls_per_session``)."""
        self._history: deque[tuple[float, float, float]] = deque()
        self._tps_low: deque[tuple[float, float]] = deque()
        """(t, tps) of the history's finite throttle readings, rising: its first is the
        window's lowest (a monotonic queue; a min over the window per point cost ~1 s of
        a 1-h replay)."""
        self._last_t = -math.inf
        self._segment: _Segment | None = None
        self._completed: list[DetectedTest] = []
        self._steady_here = False
        """The last classified point's rpm is within IDLE_LEVEL_RPM of a second before."""
        self._unclaimed: deque[tuple[float, float, float, float]] = deque()
        """Points (t, rpm, MAP, TPS) of the last second that no class claimed ("none")."""

    @property
    def in_pull(self) -> bool:
        """A confirmed test is running right now."""
        return self._segment is not None and self._segment.confirmed

    @property
    def open_since(self) -> float | None:
        """Stream time the open segment began (a test found later may start there), or None."""
        seg = self._segment
        return seg.t[0] if seg is not None and seg.t else None

    @property
    def current_test(self) -> str | None:
        seg = self._segment
        return TEST_TYPE[seg.kind] if seg is not None and seg.confirmed else None

    def drain_completed(self) -> list[DetectedTest]:
        """Tests finished since the last call, oldest first."""
        done, self._completed = self._completed, []
        return done

    def feed(self, block: Block) -> list[SourceEvent]:
        """Classify the block's samples; return pull_start / pull_stop events."""
        events: list[SourceEvent] = []
        if len(block) == 0:
            return events
        t_all = block.t
        rpm_all = block.column("rpm")
        map_all = block.column("map_kpa")
        tps_all = block.column("tps_pct")
        # no throttle channel at all (a dyno export), not a throttle reading gone stale
        load_all = _dyno_load(block) & ("tps_pct" not in block.columns)
        for i in self._decimate(t_all):
            t, rpm, map_kpa, tps = (
                float(t_all[i]), float(rpm_all[i]), float(map_all[i]), float(tps_all[i]),
            )  # fmt: skip
            kind = self._classify(t, rpm, tps, loaded=bool(load_all[i]))
            seg = self._segment
            if seg is not None and seg.kind != kind:
                # a hold's end that already rose is the start of what comes next
                tail = self._rise_tail(seg) if seg.kind in ("steady", "idle") else []
                events.extend(self._close())
                seg = None
                self._unclaimed.extend(tail)
            elif seg is not None and kind == "idle" and self._steady_here:
                if abs(rpm - seg.level) > IDLE_SPLIT_RPM:
                    events.extend(self._split())  # held at a new rpm: the next test
                    seg = self._segment
                if seg is not None:
                    seg.level = rpm
            unclaimed = self._unclaimed
            while unclaimed and unclaimed[0][0] < t - LOOKBACK_S:
                unclaimed.popleft()
            if kind == "none":
                unclaimed.append((t, rpm, map_kpa, tps))
                continue
            if seg is None:
                seg = self._segment = _Segment(kind)
                if kind == "idle" and self._steady_here:
                    seg.level = rpm
                if kind == "sweep" or (kind == "wot" and not math.isfinite(tps)):
                    for point in _from_lowest(list(unclaimed)):
                        seg.add(*point)
            unclaimed.clear()
            seg.add(t, rpm, map_kpa, tps)
            if not seg.confirmed and seg.is_test():
                seg.confirmed = True
                if kind == "wot":
                    self.pulls += 1
                events.append(self._started(seg))
        return events

    @staticmethod
    def _rise_tail(seg: _Segment) -> list[tuple[float, float, float, float]]:
        """Take off ``seg``'s end where the rpm already rose above its level (a rise's start)."""
        finite = [r for r in seg.rpm if math.isfinite(r)]
        if not finite:
            return []
        level = float(np.median(finite))
        cut = len(seg.rpm)
        while cut > 1 and seg.rpm[cut - 1] > level + RISE_NOISE_RPM:
            cut -= 1
        tail = list(zip(seg.t[cut:], seg.rpm[cut:], seg.map_kpa[cut:], seg.tps[cut:], strict=True))
        del seg.t[cut:], seg.rpm[cut:], seg.map_kpa[cut:], seg.tps[cut:]
        return tail

    def _started(self, seg: _Segment) -> SourceEvent:
        kind = TEST_TYPE[seg.kind]
        return SourceEvent(
            self.source, "pull_start", seg.t[0], f"{kind} started", {"test_type": kind}
        )

    def flush(self) -> list[SourceEvent]:
        """Close the segment in progress (end of the run)."""
        return self._close()

    def _decimate(self, t: np.ndarray) -> list[int]:
        """Indices of samples at least DECIMATE_S after the previously used one."""
        keep: list[int] = []
        last = self._last_t
        if t.size and t[-1] - last < DECIMATE_S:
            return keep
        for i in range(t.size):
            ti = float(t[i])
            if ti - last >= DECIMATE_S:
                keep.append(i)
                last = ti
        self._last_t = last
        return keep

    def _classify(self, t: float, rpm: float, tps: float, *, loaded: bool = False) -> str:
        """The class of one point; ``loaded``: a dyno measures power or torque here."""
        hist, low = self._history, self._tps_low
        while hist and hist[0][0] < t - LOOKBACK_S:
            hist.popleft()
        while low and low[0][0] < t - LOOKBACK_S:
            low.popleft()
        ago = hist[0] if hist else None
        tps_min = low[0][1] if low else math.nan
        hist.append((t, rpm, tps))
        if math.isfinite(tps):
            while low and low[-1][1] >= tps:
                low.pop()
            low.append((t, tps))
        self._steady_here = (
            ago is not None
            and t - ago[0] >= 0.5 * LOOKBACK_S
            and abs(rpm - ago[1]) <= IDLE_LEVEL_RPM
        )
        if not math.isfinite(rpm):
            return "none"
        if math.isfinite(tps) and tps >= WOT_TPS_PCT:
            return "wot"
        if rpm < IDLE_RPM_MAX and (not math.isfinite(tps) or tps < IDLE_TPS_MAX_PCT):
            return "idle"
        if ago is None or t - ago[0] < 0.5 * LOOKBACK_S:
            return "none"
        if math.isfinite(tps) and math.isfinite(tps_min) and tps - tps_min >= TIP_RISE_PCT:
            return "tip"
        rate = (rpm - ago[1]) / (t - ago[0])
        if rate >= SWEEP_RATE_RPM_S:
            # With no throttle channel a part-throttle sweep cannot be told from a pull by
            # the throttle; a dyno's measured power under a rising rpm is its pull.
            return "wot" if loaded and not math.isfinite(tps) else "sweep"
        if abs(rpm - ago[1]) <= STEADY_BAND_RPM and rpm >= IDLE_RPM_MAX:
            return "steady"
        return "none"

    def _split(self) -> list[SourceEvent]:
        """End the idle segment where its rpm left its level; the points after start the next.

        The engine is now steady at a new rpm: the move there (a ride down on the
        absorber, an rpm sag after a release) belongs to the next test.
        """
        seg = self._segment
        assert seg is not None
        cut = len(seg.rpm)
        while cut > 1 and abs(seg.rpm[cut - 1] - seg.level) > IDLE_SPLIT_RPM:
            cut -= 1
        rest = _Segment(seg.kind, seg.t[cut:], seg.rpm[cut:], seg.map_kpa[cut:], seg.tps[cut:])
        del seg.t[cut:], seg.rpm[cut:], seg.map_kpa[cut:], seg.tps[cut:]
        events = self._close()
        self._segment = rest
        if rest.t and rest.is_test():
            rest.confirmed = True
            events.append(self._started(rest))
        return events

    def _close(self) -> list[SourceEvent]:
        seg, self._segment = self._segment, None
        if seg is None or not seg.confirmed:
            return []
        test = seg.result()
        self._completed.append(test)
        return [
            SourceEvent(
                self.source,
                "pull_stop",
                test.t_stop,
                f"{test.test_type} {test.rpm_start:.0f}-{test.rpm_max:.0f} rpm, {test.duration_s:.1f} s",
                {
                    "test_type": test.test_type,
                    "t_start": test.t_start,
                    "rpm_start": test.rpm_start,
                    "rpm_max": test.rpm_max,
                    "map_median_kpa": test.map_median_kpa,
                },
            )
        ]


def _from_lowest(
    points: list[tuple[float, float, float, float]],
) -> list[tuple[float, float, float, float]]:
    """The points from the lowest rpm on: where a rise began (any dip before it cut off)."""
    rpms = [p[1] if math.isfinite(p[1]) else math.inf for p in points]
    if not rpms or min(rpms) == math.inf:
        return []
    low = min(rpms)
    return points[max(i for i, r in enumerate(rpms) if r == low) :]


def _dyno_load(block: Block) -> np.ndarray:
    """Per sample: positive power or torque is logged (as a dyno measures it under load)."""
    with np.errstate(invalid="ignore"):
        power = block.column("power_hp") > 0.0
        torque = block.column("torque_nm") > 0.0
    return power | torque


def _plateaus(t: list[float], map_kpa: list[float]) -> tuple[float, ...]:
    """Median MAP of each stretch held within +-PLATEAU_BAND_KPA for >= PLATEAU_MIN_S."""
    out: list[float] = []
    start = 0
    for i in range(1, len(t) + 1):
        if i < len(t) and abs(map_kpa[i] - map_kpa[start]) <= PLATEAU_BAND_KPA:
            continue
        if t[i - 1] - t[start] >= PLATEAU_MIN_S:
            out.append(float(np.nanmedian(map_kpa[start:i])))
        start = i
    return tuple(out)
