"""Predictions checked before the fact: each suggestion's expected hits vs what the test added.

The planner publishes suggestions with their expected hits per cell and minutes
(``Suggestion.expected_hits``, ``Suggestion.minutes``). When the tuner then runs a
test and the detector recognises it, the suggestion that was on offer *before
the test started* and matches it (same test type, the same rpm column or range)
is compared with the hits the test actually added, cell by cell. A test nobody
suggested is not counted: there was no prediction to check.

Like is compared with like:

* a hold is checked against the prediction it had as the top suggestion when the
  engine left the previous test (the line named it then, refined from where the
  engine was; :data:`TOP_SLACK_S`), else the list's entry on offer then;
* a hold is matched by its rpm column *and* its MAP steps (a hold at the same rpm
  but other rows is another test), and compared on its own rpm column only: the
  detector's segment can run into the next test (a 1250-rpm hold at a closed
  throttle is "idle" until the next hold's throttle opens), and those hits are
  not the hold's; each step's cell counts its hits until the step was done (its
  cell trusted, :data:`STEP_DONE_S`), which the detector cannot see when the last
  step is a closed throttle;
* a single-row sweep is matched by its rpm range and its MAP row;
* a WOT pull is the suggested one when it starts and ends within the log's rpm
  tolerance of the suggested range (a longer or shorter pull is another test), and is
  compared on its own envelope (:func:`_pull_cells`): its prediction includes the
  ride to the start rpm and the cool-down, which are no pull to the detector;
* a serpentine (one suggestion, several rows, up and down legs) is ONE suggestion
  but the detector sees each up leg as its own sweep (a down leg is no test it
  knows). The serpentine on offer before its first leg is kept, and each detected
  up leg is checked against that serpentine's share in the leg's row, plus the
  down leg's row ridden since the previous up leg; the hits counted are those the
  run added in those rows since the engine left the test before the serpentine (its
  entry: the ride to the span and the settle on the first row, which its prediction
  includes). Each row is ridden once, so that is what the serpentine put there,
  however the detector splits the legs (an up leg's segment runs on into the next
  row's turn). Its first leg must be its first row: a ramp on another of its rows
  first (the ride up to a hold at WOT-ish MAP) is no leg of it;

Error per test: ``core.plan.learning.prediction_error_pct`` (symmetric weighted
absolute error over cells, 0 % exact). Reported per test type.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.plan.learning import prediction_error_pct
from core.plan.pulls import LOOKBACK_S, DetectedTest
from core.plan.ramps import same_walk
from core.plan.types import PlanView, Suggestion

HISTORY_S = 600.0
"""Plans kept to look up what was on offer before a test started."""
HOLD_TYPES = ("steady_state", "idle_low_map")
MAP_TOL_KPA = 4.0
"""A detected MAP level within this of a suggested row or step is that row or step."""
ENTRY_S = LOOKBACK_S
"""Seconds before a serpentine's first detected leg that its first ramp may have begun:
the detector classifies a sample as a sweep from rpm's rise over the last LOOKBACK_S,
so a leg is detected up to that late. The gap to the next leg is timed from there."""
HOLD_RPM_TOL = 50.0
"""A detected hold or idle is a suggested hold when its median rpm is this close: the
absorber holds a hold's rpm within a few rpm, and an idle wanders around its own. A
cool-down idle at 947 rpm and 32 kPa matched "hold 1000 rpm: MAP 40 35 kPa" (its 35-kPa
step within 4 kPa) in a headless log of fixed pulls: "idle_low_map: 194 % mean error"
for a hold nobody ran."""
HOLD_ENTRY_S = 10.0
"""A hold's (or a serpentine's) check counts its cells' hits from the previous test's
end, at most this long before the detector saw it (the ride to the hold and its first
steps, or to the span and the settle on the first row, which the model counts from
where the engine was, are not yet a test to the detector)."""
STEP_DONE_S = 1.75
"""A hold's step is done this long after its cell turned trusted: the model's operator
looks at the grid every 0.25 s and, after the last step, releases for 1.5 s
(``sim.live.WATCH_S``, ``sim.scenarios.RELEASE_S``), and the prediction counts both. Hits
after that are the wait for the next test, not the hold: the last step of a low-MAP hold
is a closed throttle, and a tuner who waits there for the next line keeps filling its
cell (the demo's 1250-rpm hold: 259 hits predicted at 25 kPa, 390 added, most of them
after the line had moved on)."""
TOP_SLACK_S = 1.5
"""A hold's check takes the prediction it had as the top suggestion (refined from where the
engine was) when it became the top at most this long after the engine left the previous
test: the line names the next test when the current one ends, re-planned about once a
second. Checked against the list's estimate instead (a hold's first step run from idle,
~3 s of settle in its cell), the demo's 1000-rpm hold read 255 hits predicted at 40 kPa
against 132 added, where its own refined prediction said 117."""
STEP_LOOKBACK_S = 5.0
"""A hold may begin up to this long before the engine leaves the previous test: the line
names the next test when the current one's steps are done, and the tuner starts it
while the detector still sees the last test. A hold checked against a top named while
the previous test ran counts its cells' hits from then (at most this long before), and
a step whose cell turned trusted since then is one it ran."""
TOPS_KEPT = 16
"""Tops remembered (each a new top suggestion; a session changes top a few times a minute)."""
LEG_SLACK_S = 10.0
"""Slack on the gap between two up legs of one serpentine (a down leg and two turns)."""


@dataclass(frozen=True, slots=True)
class CheckedPrediction:
    """One suggestion compared with the test that followed it."""

    test_type: str
    description: str
    predicted_hits: float
    actual_hits: float
    predicted_min: float
    actual_min: float
    error_pct: float


def _rows(s: Suggestion) -> tuple[float, ...]:
    """The suggestion's MAP steps (a hold) or rows (a sweep, a serpentine in run order)."""
    steps = getattr(s.recipe, "map_steps", ())
    return tuple(float(m) for m in steps) if steps else (s.map_range[0],)


def _near(m: float, levels: Sequence[float]) -> bool:
    return any(abs(m - v) <= MAP_TOL_KPA for v in levels)


def _matches(
    s: Suggestion, test: DetectedTest, rpm_tol: float, levels: Sequence[float] = ()
) -> bool:
    """``s`` is the test detected.

    ``levels``: a hold's MAP levels known to be run, besides the detector's plateaus
    (``PredictionLog._top``: the ride onto it, steps whose cell turned trusted during it).
    """
    kind = test.test_type
    if s.test_type in HOLD_TYPES and kind in HOLD_TYPES:
        if abs(s.rpm_range[0] - test.rpm_median) > min(rpm_tol, HOLD_RPM_TOL):
            return False
        levels = levels or test.map_plateaus_kpa or (test.map_min_kpa, test.map_max_kpa)
        steps = _rows(s)
        return sum(_near(m, levels) for m in steps) * 2 >= len(steps)
    if s.test_type != kind:
        return False
    if kind == "wot_pull":
        # the pull suggested, not another one: a headless guided run checked "WOT pull
        # 2000-4500 rpm" against a pull to 5810 (65 % "error"), and the fill factor
        # learned from that check put the next pull's prediction 75 % high
        lo, hi = s.rpm_range
        return abs(test.rpm_start - lo) <= rpm_tol and abs(test.rpm_max - hi) <= rpm_tol
    if kind == "part_throttle_sweep":
        lo, hi = s.rpm_range
        overlap = min(hi, test.rpm_max) - max(lo, test.rpm_start)
        if overlap < 0.5 * (hi - lo):
            return False
        return _near(test.map_median_kpa, _rows(s))
    return True


RIDE_GAP_S = 2.0
"""A rise that ends at most this long before a hold is detected is the ride onto it."""


def _rode_onto(prev: DetectedTest, test: DetectedTest, rpm_tol: float) -> bool:
    """``prev`` was the ride up onto hold ``test``: a rise that ended at the hold's rpm.

    Riding up at the hold's first (highest) MAP, the engine fills that step's cell as it
    arrives: the demo's ride at 95 kPa to a 4500-rpm hold was detected as a sweep, the
    hold's window then opened at the sweep's end, and the 95-kPa step read 65 predicted
    hits against 1 counted.
    """
    return (
        test.test_type in HOLD_TYPES
        and prev.test_type in ("part_throttle_sweep", "tip_in")
        and abs(prev.rpm_max - test.rpm_median) <= rpm_tol
        and test.t_start - prev.t_stop <= RIDE_GAP_S
    )


def _nearest(values: Sequence[float], x: float) -> int:
    return min(range(len(values)), key=lambda i: abs(float(values[i]) - x))


@dataclass(slots=True)
class _Serpentine:
    """A serpentine whose legs are being checked: its suggestion and the rows seen."""

    suggestion: Suggestion
    rows: tuple[float, ...]
    t_last: float
    """Stop of the last detected up leg (or the entry before the first)."""
    gap_s: float
    t_begin: float
    """Where the engine left the previous test: every leg's hits are counted from here."""
    seen: set[int] = field(default_factory=set)


class PredictionLog:
    """Suggestions offered over time and the checks of the tests that followed them."""

    def __init__(self, rpm_tol: float = 150.0) -> None:
        self.rpm_tol = rpm_tol
        self._offers: deque[tuple[float, tuple[Suggestion, ...]]] = deque()
        self._tops: deque[tuple[float, Suggestion]] = deque(maxlen=TOPS_KEPT)
        """(when it became the top, the top suggestion then) for each change of top."""
        self.checked: list[CheckedPrediction] = []
        self._serpentine: _Serpentine | None = None
        self._ramps: _Serpentine | None = None
        """MAP ramps being checked column by column (``rows`` holds their columns' rpm)."""
        self._last_stop = -np.inf
        self._last_test: DetectedTest | None = None
        self.compared: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        """The last check's (predicted, actual) hits per cell, as compared (None: no match)."""

    def offer(self, view: PlanView, t: float, open_since: float | None = None) -> None:
        """Remember what was suggested at stream time ``t``.

        ``open_since``: start of the segment the detector has open (None when none).
        A test found later starts there or at ``t`` or after, and :meth:`check` wants
        the last offer at or before its start; so only two offers can still matter:
        the last one at or before ``open_since`` and the newest. The ones between are
        dropped, or a plan a second kept ten minutes of suggestions alive (about
        18 MB at 1 kHz, issue 10's soak).
        """
        offers = self._offers
        if view.suggestions:
            offers.append((t, view.suggestions))
            top = view.suggestions[0]
            last = self._tops[-1][1] if self._tops else None
            if last is None or not _same_top(last, top):
                self._tops.append((t, top))
        while offers and offers[0][0] < t - HISTORY_S:
            offers.popleft()
        if len(offers) <= 2:
            return
        newest = offers.pop()
        if open_since is None:
            offers.clear()
        else:
            while len(offers) > 1 and offers[1][0] <= open_since:
                offers.popleft()  # a later offer is also at or before the open segment's start
            while len(offers) > 1:
                offers.pop()
            if offers[0][0] > open_since:
                offers.clear()
        offers.append(newest)

    def clear(self) -> None:
        self._offers.clear()
        self._tops.clear()
        self.checked.clear()
        self._serpentine = None
        self._ramps = None
        self._last_stop = -np.inf
        self._last_test = None
        self.compared = None

    def check(
        self,
        test: DetectedTest,
        actual: npt.NDArray[np.float64],
        n_rpm: int,
        *,
        axes_kpa: Sequence[float] = (),
        axes_rpm: Sequence[float] = (),
        hits_between: Callable[[float, float], npt.NDArray[np.float64]] | None = None,
        trusted_at: Callable[[int], float] | None = None,
    ) -> CheckedPrediction | None:
        """Compare the suggestion on offer before ``test`` began with what it added.

        ``actual`` is what the test's own window added. With the table's axes
        (``axes_kpa``, ``axes_rpm``) and ``hits_between(t0, t1)`` (what the run added
        in that window), a hold is compared on its rpm column and a serpentine's legs
        on their rows (see the module docstring). ``trusted_at(cell)``: the stream time
        the cell turned trusted (NaN: not yet), where a hold's step ends.
        """
        self.compared = None
        last_stop, self._last_stop = self._last_stop, test.t_stop
        prev, self._last_test = self._last_test, test
        ridden: tuple[float, ...] = ()
        if prev is not None and _rode_onto(prev, test, self.rpm_tol):
            # the detector's previous "test" was the ride onto this hold (a rise at the
            # hold's first step's MAP, called a sweep or a tip-in): its end is no bound,
            # and the step ridden at is one the tuner ran
            last_stop = prev.t_start
            ridden = (prev.map_median_kpa,)
        if test.test_type == "part_throttle_sweep" and hits_between is not None and axes_kpa:
            leg = self._serpentine_leg(test, n_rpm, axes_kpa, hits_between)
            if leg is not None:
                return leg
        w0 = max(last_stop, test.t_start - HOLD_ENTRY_S)
        if test.test_type in HOLD_TYPES and hits_between is not None and axes_rpm:
            leg = self._ramp_leg(test, w0, n_rpm, axes_rpm, hits_between)
            if leg is not None:
                return leg
        match = None
        since = w0
        if test.test_type in HOLD_TYPES and hits_between is not None:
            # the hold on offer when the engine left the previous test: the detector
            # sees a hold seconds late, when the offer may be its remaining steps only
            done = ridden
            if trusted_at is not None and axes_rpm and axes_kpa:
                done = (*ridden, *_done_steps(test, w0, n_rpm, axes_kpa, axes_rpm, trusted_at))
            named_since = prev.t_start if prev is not None else -math.inf
            top = self._top(w0, test, done, named_since)
            if top is not None:
                # its prediction counts from when it was made, on the data there then
                # (named while the previous test ran: the tuner may have begun it then)
                at, match = top
                if at >= w0:
                    since = at
                elif prev is not None and at > prev.t_start:
                    since = max(at, w0 - STEP_LOOKBACK_S)
            else:
                match = self._offered(w0, test)
        if match is None:
            # the plan on offer when the detector saw the test begin; its top was refined
            # from where the engine was then, so it counts from then too
            at, match, was_top = self._offered_at(test.t_start, test)
            if match is not None and was_top and test.test_type in HOLD_TYPES:
                since = max(w0, at)
        if match is None:
            return None
        if (
            match.test_type == "part_throttle_sweep"
            and len(_rows(match)) >= 2
            and hits_between is not None
            and axes_kpa
        ):
            rate = float(getattr(match.recipe, "rate_rpm_s", 0.0) or 0.0)
            lo, hi = match.rpm_range
            gap = (hi - lo) / rate if rate > 0 else 30.0
            self._serpentine = _Serpentine(
                match, _rows(match), test.t_start - ENTRY_S, gap + LEG_SLACK_S, w0
            )
            first = self._serpentine_leg(test, n_rpm, axes_kpa, hits_between)
            if first is None:
                self._serpentine = None  # not its first row: the tuner is not running it
            return first
        predicted = _predicted(match, actual.size, n_rpm)
        if match.test_type in HOLD_TYPES and axes_rpm and axes_kpa and hits_between is not None:
            # the hold's own cells, from the previous test's end (see HOLD_ENTRY_S)
            actual = hits_between(since, test.t_stop)
            col = _nearest(axes_rpm, match.rpm_range[0])
            keep = np.zeros(actual.size, dtype=bool)
            for m in _rows(match):
                cell = _nearest(axes_kpa, m) * n_rpm + col
                # a step whose cell turned trusted this run before the hold began was
                # never run: what lands there is the wait after the hold (see
                # _until_trusted; -inf, trusted before the run, and NaN count whole)
                t_trusted = math.nan if trusted_at is None else trusted_at(cell)
                keep[cell] = not -math.inf < t_trusted < since
            if not keep.any():
                return None
            if trusted_at is not None:
                actual = _until_trusted(actual, keep, since, test.t_stop, trusted_at, hits_between)
            predicted, actual = np.where(keep, predicted, 0.0), np.where(keep, actual, 0.0)
        if match.test_type == "wot_pull" and axes_rpm and axes_kpa:
            keep = _pull_cells(test, axes_kpa, axes_rpm)
            predicted, actual = np.where(keep, predicted, 0.0), np.where(keep, actual, 0.0)
        return self._record(match, test, predicted, actual)

    def _top(
        self,
        w0: float,
        test: DetectedTest,
        ridden: tuple[float, ...] = (),
        named_since: float = math.inf,
    ) -> tuple[float, Suggestion] | None:
        """(when it became the top, the top) as the engine left the previous test, if ``test``.

        The last change of top at most :data:`TOP_SLACK_S` after ``w0`` (the engine leaving
        the previous test) that is ``test``, as it was then: its prediction refined from
        where the engine was; changes after ``w0`` that are not ``test`` are passed over.
        None when no top named since the previous test began (``named_since``; without
        it, the top at ``w0``) is ``test``, or it names a step the tuner did not run
        (the demo's "hold 750 rpm: MAP 45 40 35 kPa" was the top, then the plan dropped
        its 45-kPa step and the tuner ran 40 and 35: checked as the top, 98.7 %).
        ``ridden``: MAP levels run besides the detector's plateaus: the ride onto the hold,
        its first step (the detector's hold begins after it: a top "MAP 95 85 ... 50"
        ridden up at 95 kPa is the one run), and steps whose cell turned trusted during
        the hold (:func:`_done_steps`).

        ``named_since``: the previous test's start. A top named after it that is ``test``
        counts even when the plan moved on before the engine left: the line holds what
        it named (hysteresis) and the tuner runs that. The demo's "hold 1250 rpm: MAP 40
        35 30 25" was named in the 1500-rpm hold's release and the walk became the top
        0.5 s before the detector closed that hold; checked against the list's estimate
        from idle (its 40-kPa step 290 hits with the settle, 113 added), it read 57 %.
        """
        levels = test.map_plateaus_kpa or (test.map_min_kpa, test.map_max_kpa)
        levels = (*levels, *ridden)
        latest = w0 + TOP_SLACK_S
        if not math.isfinite(named_since):
            # the run's first test: the engine left idle when the line named it, any time
            # before the detector saw the hold (the car demo named its first hold 6 s in,
            # once the opening work was simulated, 4 s before the detector saw it: past
            # the slack, that hold was never checked)
            latest = max(latest, test.t_start)
        at_w0 = False  # passed the top on offer when the engine left
        for at, top in reversed(self._tops):
            if at > latest:
                continue
            if at_w0 and at < named_since:
                return None  # named before the last test began: not what the line said
            ran = all(_near(m, levels) for m in _rows(top))  # every step it names
            if ran and _matches(top, test, self.rpm_tol, levels):
                return at, top
            at_w0 = at_w0 or at <= w0
            # a change of top after the engine left: the plan may have moved on while the
            # tuner began the hold the line had named (the demo at 80x24: "hold 1250 rpm:
            # MAP 40 35 30 25" named 2.8 s before the 1500-rpm hold's detected end, the
            # top MAP ramps 0.2 s after it; checked against the list's estimate from
            # idle: 61.9 %)
        return None

    def _offered(self, t: float, test: DetectedTest) -> Suggestion | None:
        """The suggestion matching ``test`` in the plan on offer at ``t`` (None: none)."""
        return self._offered_at(t, test)[1]

    def _offered_at(self, t: float, test: DetectedTest) -> tuple[float, Suggestion | None, bool]:
        """(when offered, the suggestion matching ``test`` in the plan on offer at ``t``, top?)."""
        offered = [(at, s) for at, s in self._offers if at <= t]
        if not offered:
            return t, None, False
        at, plan = offered[-1]
        match = next((s for s in plan if _matches(s, test, self.rpm_tol)), None)
        return at, match, match is not None and match is plan[0]

    def _serpentine_leg(
        self,
        test: DetectedTest,
        n_rpm: int,
        axes_kpa: Sequence[float],
        hits_between: Callable[[float, float], npt.NDArray[np.float64]],
    ) -> CheckedPrediction | None:
        """Check an up leg of the serpentine in progress (None: not one of its legs)."""
        sp = self._serpentine
        if sp is None or test.t_start - sp.t_last > sp.gap_s:
            return None
        if not sp.seen and abs(sp.rows[0] - test.map_median_kpa) > MAP_TOL_KPA:
            # a serpentine starts on its first row: a ramp on another of its rows first
            # is something else (the demo's ride up at 95 kPa to a 5500-rpm hold was
            # checked as the serpentine's 95-kPa leg: 48 % "error")
            return None
        free = [i for i in range(len(sp.rows)) if i not in sp.seen]
        if not free:
            return None
        i = min(free, key=lambda j: abs(sp.rows[j] - test.map_median_kpa))
        if abs(sp.rows[i] - test.map_median_kpa) > MAP_TOL_KPA:
            return None
        legs = [i]
        if i % 2 == 0 and i - 1 in free and sp.seen:
            legs.insert(0, i - 1)  # the down leg ridden since the previous up leg
        rows_idx = {_nearest(axes_kpa, sp.rows[j]) for j in legs}
        actual = hits_between(sp.t_begin, test.t_stop)
        keep = np.zeros(actual.size, dtype=bool)
        for r in rows_idx:
            keep[r * n_rpm : (r + 1) * n_rpm] = True
        return self._leg(sp, legs, test, keep, actual, n_rpm)

    def _ramp_leg(
        self,
        test: DetectedTest,
        w0: float,
        n_rpm: int,
        axes_rpm: Sequence[float],
        hits_between: Callable[[float, float], npt.NDArray[np.float64]],
    ) -> CheckedPrediction | None:
        """Check one column of MAP ramps (None: ``test`` is no column of a walk on offer).

        The detector sees each column's ramp as a steady test of its own (the turn
        between columns moves the rpm). The walk on offer when the engine left the
        previous test is kept from its first column on; each column is checked on its
        own cells, counted from the walk's start (every column is ridden once, and the
        turn into it, which its prediction includes, lands in its end cell).
        """
        if len(test.map_plateaus_kpa) > 1:
            return None  # MAP held at steps: a hold, not a ramp
        rp = self._ramps
        if rp is not None and test.t_start - rp.t_last > rp.gap_s:
            rp = self._ramps = None
        if rp is None:
            walk = self._top_of(w0, "map_ramps") or self._offered_of(test.t_start, "map_ramps")
            columns = tuple(getattr(walk.recipe, "columns", ())) if walk is not None else ()
            if walk is None or not columns:
                return None
            if abs(columns[0] - test.rpm_median) > HOLD_RPM_TOL:
                return None  # a walk starts at its first column
            gap = 2.0 * float(getattr(walk.recipe, "cell_s", 1.0)) * len(_rows(walk))
            rp = self._ramps = _Serpentine(walk, columns, w0, gap + LEG_SLACK_S, w0)
        free = [i for i in range(len(rp.rows)) if i not in rp.seen]
        i = min(free, key=lambda j: abs(rp.rows[j] - test.rpm_median), default=None)
        if i is None or abs(rp.rows[i] - test.rpm_median) > HOLD_RPM_TOL:
            return None
        # to the newest sample, not the detected end: the turn out of this column (which
        # its prediction includes too, in its end cell) is after the detected end, while
        # the engine's rpm moves. Cut at the end, every column's end cell read ~35 of its
        # ~110 hits short (the demo's walk columns: 5-6 % low). Only this column's cells
        # count, and the engine has left it by then (the tracker checks a test once some
        # data has come after it). The last column has no turn after it: it ends there,
        # before the release and whatever test follows at its rpm.
        last = i == len(rp.rows) - 1
        actual = hits_between(rp.t_begin, test.t_stop if last else math.inf)
        keep = np.zeros(actual.size, dtype=bool)
        keep[_nearest(axes_rpm, rp.rows[i]) :: n_rpm] = True
        return self._leg(rp, [i], test, keep, actual, n_rpm)

    def _leg(
        self,
        run: _Serpentine,
        legs: Sequence[int],
        test: DetectedTest,
        keep: npt.NDArray[np.bool_],
        actual: npt.NDArray[np.float64],
        n_rpm: int,
    ) -> CheckedPrediction:
        """Record legs ``legs`` of a multi-leg test (a serpentine's rows, ramps' columns)."""
        predicted = np.where(keep, _predicted(run.suggestion, actual.size, n_rpm), 0.0)
        run.seen.update(legs)
        run.t_last = test.t_stop
        if len(run.seen) == len(run.rows):  # every leg seen: the test is over
            if self._serpentine is run:
                self._serpentine = None
            if self._ramps is run:
                self._ramps = None
        return self._record(run.suggestion, test, predicted, np.where(keep, actual, 0.0))

    def _top_of(self, w0: float, test_type: str) -> Suggestion | None:
        """The top suggestion when the engine left the previous test, if of ``test_type``."""
        for at, top in reversed(self._tops):
            if at <= w0 + TOP_SLACK_S:
                return top if top.test_type == test_type else None
        return None

    def _offered_of(self, t: float, test_type: str) -> Suggestion | None:
        """The first suggestion of ``test_type`` in the plan on offer at ``t``, if any."""
        offered = [s for at, s in self._offers if at <= t]
        if not offered:
            return None
        return next((s for s in offered[-1] if s.test_type == test_type), None)

    def _record(
        self,
        match: Suggestion,
        test: DetectedTest,
        predicted: npt.NDArray[np.float64],
        actual: npt.NDArray[np.float64],
    ) -> CheckedPrediction:
        checked = CheckedPrediction(
            match.test_type, match.description, float(predicted.sum()), float(actual.sum()),
            match.minutes, test.duration_s / 60.0, prediction_error_pct(predicted, actual),
        )  # fmt: skip
        self.checked.append(checked)
        self.compared = (predicted, actual)
        return checked

    def by_type(self) -> tuple[tuple[str, float, int], ...]:
        """(test type, mean error %, tests) over the checked predictions."""
        out: dict[str, list[float]] = {}
        for c in self.checked:
            out.setdefault(c.test_type, []).append(c.error_pct)
        return tuple((k, float(np.mean(v)), len(v)) for k, v in sorted(out.items()))


PULL_ROWS_KPA = 10.0
"""A WOT pull is compared on the rows within this of its median MAP (the wide-open rows)."""


def _until_trusted(
    actual: npt.NDArray[np.float64],
    keep: npt.NDArray[np.bool_],
    w0: float,
    t_stop: float,
    trusted_at: Callable[[int], float],
    hits_between: Callable[[float, float], npt.NDArray[np.float64]],
) -> npt.NDArray[np.float64]:
    """A hold's hits per step cell, each counted until its step was done (see STEP_DONE_S)."""
    out = actual.copy()
    for cell in np.flatnonzero(keep):
        trusted = trusted_at(int(cell))  # NaN (not yet) and -inf (before the run) keep all
        if w0 <= trusted and trusted + STEP_DONE_S < t_stop:
            out[cell] = hits_between(w0, trusted + STEP_DONE_S)[cell]
    return out


def _done_steps(
    test: DetectedTest,
    w0: float,
    n_rpm: int,
    axes_kpa: Sequence[float],
    axes_rpm: Sequence[float],
    trusted_at: Callable[[int], float],
) -> tuple[float, ...]:
    """MAP rows of the hold's column whose cell turned trusted during the hold: steps it ran.

    The detector's MAP plateaus miss a step held ~1 s (the demo's 1250-rpm hold showed
    40, 30 and 26 kPa for "MAP 40 35 30 25"); a step's goal is its cell trusted.
    """
    col = _nearest(axes_rpm, test.rpm_median)
    return tuple(
        float(m)
        for r, m in enumerate(axes_kpa)
        if w0 - STEP_LOOKBACK_S <= trusted_at(r * n_rpm + col) <= test.t_stop
    )


def _pull_cells(
    test: DetectedTest, axes_kpa: Sequence[float], axes_rpm: Sequence[float]
) -> npt.NDArray[np.bool_]:
    """The cells of a detected pull's own envelope: its wide-open rows over its rpm range.

    The suggestion's prediction is the pull with its ride to the start rpm and its
    cool-down at idle (``Recipe`` "then cool down"); the detector's pull is the pull
    alone, and the cool-down is an idle to it. Compared whole, a pull read as 178-182 %
    off in the demo and a headless log (every idle hit of the cool-down was "missing").
    """
    kpa = np.asarray(axes_kpa, dtype=np.float64)
    rpm = np.asarray(axes_rpm, dtype=np.float64)
    rows = kpa >= test.map_median_kpa - PULL_ROWS_KPA
    lo, hi = _nearest(axes_rpm, test.rpm_min), _nearest(axes_rpm, test.rpm_max)
    cols = (np.arange(rpm.size) >= lo) & (np.arange(rpm.size) <= hi)
    return np.asarray(np.outer(rows, cols).ravel(), dtype=bool)


def _same_top(last: Suggestion, top: Suggestion) -> bool:
    """``top`` is the test ``last`` named: the same, or the rest of the same MAP-ramp walk.

    On the ride up to a walk the plan is made again each second, and the walk's pace
    changes as the ride fills its top cells (``core.plan.ramps``: a cell part-way there
    is passed quicker). Taken as a new top, the walk's columns were checked against a
    prediction refined from the middle of the ride, which left the ride's own data out:
    the demo's 2500-rpm column read 15.5 % off (its 95-kPa cell 67 hits predicted, 177
    added).
    """
    if (last.recipe, last.description) == (top.recipe, top.description):
        return True
    return same_walk(last.recipe, top.recipe)


def _predicted(s: Suggestion, n_cells: int, n_rpm: int) -> npt.NDArray[np.float64]:
    predicted = np.zeros(n_cells)
    for r, c, h in s.expected_hits:
        if r * n_rpm + c < n_cells:
            predicted[r * n_rpm + c] = h
    return predicted
