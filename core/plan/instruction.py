"""The live instruction line: one plain sentence that holds still.

A plan is recomputed every second and its ranking can wobble when two tests are
worth almost the same; an instruction that followed it would flip between
"raise" and "lower" every second, and worse, point somewhere else in the middle of
a WOT pull. So the instruction commits to one suggestion and keeps it:

* while a detected test runs, it follows that test ("hold WOT to 5800 rpm",
  "hold 3000 rpm, MAP 70 kPa, then 75 kPa") and never names another cell. When the
  tuner runs another offered test than the committed one (the engine sits at another
  hold's rpm and MAP, the throttle is wide open), the line follows what he runs: it
  commits to that suggestion, or says what is running when none matches; a wide-open
  throttle is a WOT pull from its first sample, before the detector has seen 1000 rpm;
* a hold is followed from its first step: once the engine sits at the committed hold's
  rpm with the throttle open on its steps (or on the step that just turned trusted), the
  line reads as during the hold, before the detector's 4 s of steady rpm call it a test
  (top-down steps last ~1.2 s: "next: hold ..." had named the hold being run for three);
* a serpentine is followed row by row, in its order: its turns (MAP stepping to the
  next row, which the detector may call a tip-in) are part of it, and a closed
  serpentine's closing hold (``Recipe.hold_steps``, at the rpm where its last row ends)
  reads like any hold, in the closing order ("hold 2000 rpm, MAP 65 kPa until trusted,
  then 95 kPa"), whatever the detector makes of it. Released there, the serpentine is
  over and the line names the next test;
* when the test ends, it commits to the plan's top suggestion at once;
* otherwise it changes only when another suggestion has been on top for
  ``switch_s`` seconds in a row, or the committed one is no longer offered
  (its cells are covered, or a constraint removed it). A hold the plan now offers
  with fewer steps (one turned trusted) is the same hold: the line stays on it.
"""

from __future__ import annotations

import bisect
import copy
import math
import re
from collections.abc import Mapping

from core.plan.marks import BY_RPM
from core.plan.recipe import Recipe
from core.plan.types import PlanView, Suggestion

NOW_RE = re.compile(r"\(now -?\d+\)")
"""The live MAP reading a walk's line carries ("roll MAP down to 50 kPa, ... (now 62)")."""


def with_map_now(line: str, map_kpa: float) -> str:
    """``line`` with its "(now N)" MAP reading set to ``map_kpa`` (as is if it has none).

    The line is made when the plan is (once a second of data), and the reading in it was
    that moment's MAP: rolling at 5 kPa/s, the headless line read "(now 53)" with the
    engine at 50 kPa, and "(now 53)" again 2 s later at 56 on the next ramp. The dashboard
    and the status line put the newest sample's MAP in it, as the MAP gauge shows it.
    """
    if not math.isfinite(map_kpa) or "(now " not in line:
        return line
    return NOW_RE.sub(f"(now {map_kpa:.0f})", line, count=1)


SWITCH_S = 5.0
"""Seconds another suggestion must stay on top before the instruction moves to it."""
HOLD_TYPES = ("steady_state", "idle_low_map")
ROW_TOL_KPA = 4.0
"""MAP within this of one of a serpentine's rows counts as riding that row."""
TURN_BRIDGE_S = 3.0
"""A serpentine's turn (MAP moving to the next row) is bridged for this long."""
WOT_TPS_PCT = 90.0
"""Throttle at or above this is a WOT pull to the instruction (the detector's threshold)."""
CLOSED_TPS_PCT = 2.0
"""Throttle at or below this is closed: a hold under its lowest step is then let go (an
idle/low-MAP hold at 30 kPa reads about 2 %: its MAP is on the step, so it is not)."""
COOL_OPEN_KPA = 50.0
"""Without a throttle reading, MAP at or above this after a pull ends its cool-down."""
JUST_DONE_KPA = 12.0
"""MAP up to this above a hold's highest offered step is the step that just turned trusted
(the table's rows are 5-10 kPa apart on the default axes, 85 -> 95 the widest), not a step
of the tuner's own."""
LINE_MAX = 76
"""The instruction fits one line of an 80-column terminal: the dashboard draws it after
"▶ " inside a cell of padding each side (78 had the cool-down's last word cut to "…")."""
RPM_TOL = 150.0
"""rpm within this of a hold's rpm (or a sweep's range) is running that test."""
CLOSED_RPM_TOL = 25.0
"""With the throttle closed, a hold runs only with rpm within this of its rpm: the absorber
holds a hold's rpm to a few rpm, and it can only brake, so an engine idling under the
hold's rpm is idling. `dynoai log --source sim:` (a scripted idle first) read "hold 1000
rpm, MAP 35 kPa until trusted, then release" for its whole idle at 950 rpm and 31 kPa (the
35-kPa step within ROW_TOL_KPA, 950 within RPM_TOL)."""
ADOPT_RPM_TOL = 60.0
"""Before the detector sees a test: rpm within this of another hold, at one of its steps..."""
ADOPT_S = 1.5
"""...for this long, and the engine is running that hold, not the committed one."""
PLANNING = "planning the next test"
"""What the line says between a test's end and the first plan made after it
(:meth:`Instructor.interim`)."""
DONE_NAMES = {
    "wot_pull": "pull",
    "steady_state": "hold",
    "idle_low_map": "hold",
    "part_throttle_sweep": "sweep",
    "map_ramps": "MAP ramps",
    "tip_in": "tip-in",
}
"""The finished test as the interim line names it ("hold done: planning the next test")."""


def _same(a: Suggestion, b: Suggestion) -> bool:
    return a.test_type == b.test_type and a.rpm_range == b.rpm_range and a.map_range == b.map_range


def _same_hold(a: Suggestion, b: Suggestion) -> bool:
    """Both are the hold at one rpm, whichever of its steps are still offered."""
    return a.test_type in HOLD_TYPES and b.test_type in HOLD_TYPES and a.rpm_range == b.rpm_range


def running_first(
    suggestions: tuple[Suggestion, ...], running: Suggestion | None
) -> tuple[Suggestion, ...]:
    """``suggestions`` with the test the line follows first (:attr:`Instructor.running`).

    Its own entry moves up, or what is left of it (a hold's steps still untrusted, a
    walk's columns still to run); when the plan no longer offers it, it is listed first
    as it was named.
    """
    if running is None:
        return suggestions
    from core.plan.ramps import same_walk

    for i, s in enumerate(suggestions):
        if _same(s, running) or _same_hold(s, running) or same_walk(running.recipe, s.recipe):
            return (s, *suggestions[:i], *suggestions[i + 1 :])
    return (running, *suggestions)


class Instructor:
    """Turns successive plans into one steady instruction (see the module docstring)."""

    def __init__(self, switch_s: float = SWITCH_S) -> None:
        self.switch_s = switch_s
        self.committed: Suggestion | None = None
        self._challenger: Suggestion | None = None
        self._challenger_since = math.inf
        self._in_test: str | None = None
        self._serpentine_seen = -math.inf
        self._seen: Suggestion | None = None
        self._seen_since = math.inf
        self._row = -1
        """The committed serpentine's row reached so far, in its order (-1: not started)."""
        self._at_end = False
        """The serpentine's last row reached its end rpm (the closing hold, if any, runs)."""
        self._step = 0
        """The closing hold's step reached so far, in the closing order."""
        self._over: Suggestion | None = None
        """The serpentine that has ended (released at its end): no longer bridged."""
        self._ramp = -1
        """The committed MAP ramps' column reached so far, in run order (-1: not started)."""
        self._cooling = False
        """A WOT pull ended and the throttle has stayed shut since: its cool-down at idle."""
        self._cool_from = math.nan
        """Stream time the pull ended (the cool-down's clock)."""
        self._clt_before = math.nan
        """Coolant when the pull began: what the cool-down brings it back towards."""
        self._holding = False
        """The line follows the committed hold the engine sits on (no detected test yet)."""
        self._let_go: float | None = None
        """A hold is over or was let go (throttle closed, MAP under this): the steady rpm or
        idle the detector sees until the throttle opens is the tuner waiting, not a test."""
        self._running: Suggestion | None = None
        self._approaching = False
        """The last line named the committed test next while the engine rode to it (a test
        the detector sees, not one the line names)."""
        self.advice: tuple[Suggestion, float] | None = None
        """What a tuner reads off the line between tests: the suggestion it names ``next:``
        and the stream time of the update that named it (also while the engine sits on that
        hold before the detector calls it a test: the line then reads as during it). None
        while the line follows a detected test (or names none). One tuple, replaced whole:
        another thread may read it (the demo's simulated tuner, ``sim.guided``)."""

    @property
    def running(self) -> Suggestion | None:
        """The offered test the last line followed as it ran (None: it named the next one).

        The next-tests list shows it first while it runs (``VehicleTracker.plan_result``):
        mid-walk, the plan re-made each second ranked "hold 5500 rpm: MAP 95 kPa" first
        while the line said "4500 rpm: roll MAP down to 50 kPa".
        """
        return self._running

    def named(self, op: Mapping[str, float]) -> tuple[Suggestion, int | None] | None:
        """The offered test the last line names, and where the line is in it (None: none).

        The test it follows as it runs, with the leg it is on, as the line chose it (a
        hold's step, MAP ramps' stop, a serpentine's row or closing step; from the
        engine's rpm for a pull or a one-row sweep: ``core.plan.marks.BY_RPM``); else the
        one it names next (also during a cool-down, and on the ride to it), with None:
        from its start. The next cells are its (``core.plan.marks.line_targets``).
        """
        s = self._running
        if s is None:
            nxt = self.advice[0] if self.advice is not None else None
            if nxt is None and self._approaching:
                nxt = self.committed
            return None if nxt is None else (nxt, None)
        map_kpa = float(op.get("map_kpa", math.nan))
        steps = _steps(s)

        def nearest() -> int:  # as ``_during`` and ``_sweeping`` pick the step or row
            if not math.isfinite(map_kpa):
                return 0
            return min(range(len(steps)), key=lambda j: abs(steps[j] - map_kpa))

        if s.test_type == "map_ramps":
            return s, max(self._ramp, 0)
        if s.test_type == "part_throttle_sweep" and len(steps) >= 2:
            return s, len(steps) + self._step if self._at_end else nearest()
        if s.test_type in HOLD_TYPES:
            return s, nearest()
        if s.test_type in ("wot_pull", "part_throttle_sweep"):
            return s, BY_RPM
        return s, 0

    @property
    def following(self) -> bool:
        """The last line followed a running test (a serpentine's down legs and turns too)."""
        return self._in_test is not None

    @property
    def cooling(self) -> bool:
        """A WOT pull ended and its cool-down at idle runs: the line says so."""
        return self._cooling

    def probe(
        self, t: float, view: PlanView, current_test: str | None, op: Mapping[str, float]
    ) -> Instructor:
        """A copy of this instruction updated as the next plan would; this one is untouched."""
        probe = copy.copy(self)  # every attribute is replaced by update, never mutated
        probe.update(t, view, current_test, op)
        return probe

    def interim(
        self, t: float, view: PlanView, current_test: str | None, op: Mapping[str, float]
    ) -> str | None:
        """The line at ``t`` when the test the last line followed is over, before a plan is.

        The line is made when a plan is (about once a second, and a plan takes a while on
        the planner thread): after the tuner let go at the end of a WOT pull it still said
        "hold WOT to 5400 rpm" for up to a second and more (QA). This runs on a copy the
        update the next plan will run, against the last plan's ``view``: when that update
        follows no test any more, the test is over, and the line says so, and that the
        next is being planned, naming none (the last view's top may be the very test just
        finished). Nothing is committed here: the next plan commits as it would have. Only
        a WOT pull's end, or any test's with the throttle closed, is said over: the next
        plan sees those the same way whatever it offers.

        None: the line shown stands (the test still runs, or it names the next one).
        """
        if not self.following and self._running is None:
            return None
        probe = self.probe(t, view, current_test, op)
        if probe.following or probe.running is not None:
            return None
        if not probe.cooling and not _below(op, math.inf):
            # with the throttle open the last plan's view decides, and the next plan's may
            # not agree: in the demo a hold the last plan offered at 95 kPa alone read over
            # as the tuner stepped on to 85, which the next plan offered ("hold done", then
            # "hold 1500 rpm, MAP 85 kPa" 0.13 s later). A closed throttle is a release.
            return None
        if probe.cooling:
            # no clock nor coolant: a plan is due within a second or so, and the coolant's
            # noise made the line flicker 74/75 °C from one tick to the next
            return _cooling_line(None)
        # what the line named: the test it followed (the detector may have called the ride
        # onto a hold a sweep: the demo read "sweep done" after "hold 5500 rpm, MAP 95 kPa"),
        # none when it named the test ridden to next (the ride, or the test, is over)
        if self._running is not None:
            done = self._running.test_type
        elif self._approaching:
            return PLANNING
        else:
            done = self._in_test or ""
        return f"{DONE_NAMES.get(done, done.replace('_', ' '))} done: {PLANNING}"

    def update(
        self, t: float, view: PlanView, current_test: str | None, op: Mapping[str, float]
    ) -> str:
        """The instruction at stream time ``t`` for ``view`` while ``current_test`` runs."""
        self.advice = None
        self._running = None
        self._approaching = False
        ramps = self._follow_ramps(op)
        if ramps is not None:
            self._in_test, self._seen = "map_ramps", None
            self._running = self.committed
            return ramps
        ending = self._follow_serpentine(op)
        if ending is not None:
            self._in_test, self._seen = "part_throttle_sweep", None
            self._running = self.committed
            return ending
        if (
            current_test == "tip_in"
            and self._row >= 0
            and self._over is None
            and self._on_serpentine(t, op)
        ):
            current_test = "part_throttle_sweep"  # a serpentine's turn onto its next row
        tps = float(op.get("tps_pct", math.nan))
        c = self.committed
        if self._let_go is not None and (
            _opened(op, self._let_go) or (c is not None and _on_hold(c, op))
        ):
            self._let_go = None  # the throttle opened, or the engine sits on the next hold
        if (
            (current_test in HOLD_TYPES or self._in_test in HOLD_TYPES)
            and c is not None
            and c.test_type in HOLD_TYPES
            and not _on_hold(c, op)
            and (current_test is None or _below(op, min(_steps(c)) - ROW_TOL_KPA))
        ):
            self._let_go = min(_steps(c)) - ROW_TOL_KPA  # the hold is over or let go
        if current_test in HOLD_TYPES and self._let_go is not None:
            # the detector still sees steady rpm (or an idle as rpm falls), but the throttle
            # closed under the hold's lowest step: the tuner has finished it and reads the
            # line for the next test, whatever the line commits to meanwhile
            current_test = None
        if current_test == "part_throttle_sweep" and _below(op, math.inf):
            # the detector still calls the last seconds' rise a sweep (the ride up onto a
            # hold too short for its 4 s of steady rpm), but the throttle is shut: the
            # tuner let go and reads the line for the next test (was "part throttle sweep
            # in progress (5459 rpm, 13 kPa): finish it" after "hold 5500 rpm: MAP 95 kPa")
            current_test = None
        if (
            current_test in HOLD_TYPES
            and _below(op, math.inf)
            and not any(_runs(s, current_test, op) and not _under(s, op) for s in view.suggestions)
        ):
            # an idle (or a closed-throttle hold) that is none of the offered tests: the
            # engine waits for the next one (was "hold 1000 rpm, MAP 40 kPa until
            # trusted" for a second while a 950-rpm idle sat under that hold's step)
            current_test = None
        if current_test is None and math.isfinite(tps) and tps >= WOT_TPS_PCT:
            current_test = "wot_pull"  # the throttle is open: that is the pull, from now
        if current_test is None and self._on_serpentine(t, op):
            # a down leg is no test the detector knows (rpm falls at part throttle):
            # the serpentine is still running, so the line keeps following it
            current_test = "part_throttle_sweep"
        if current_test == "wot_pull" and self._in_test != "wot_pull":
            self._clt_before = float(op.get("clt_c", math.nan))
        if self._in_test == "wot_pull" and current_test != "wot_pull":
            self._cooling = True  # the pull ended: its cool-down at idle runs now
            self._cool_from = t
        elif self._cooling and (current_test == "wot_pull" or _opened(op, COOL_OPEN_KPA)):
            self._cooling = False
        if self._cooling and current_test in HOLD_TYPES:
            current_test = None  # the idle the detector sees is the pull's cool-down
        ended = self._in_test is not None and current_test is None
        self._in_test = current_test
        top = view.suggestions[0] if view.suggestions else None
        if current_test is not None:
            self._seen = None
            c = self.committed
            approach = c is not None and (
                _riding_to(c, op) or _on_hold(c, op) or _to_pull_start(c, op)
            )
            tip_offered = any(_runs(s, "tip_in", op) for s in view.suggestions)
            if approach and (
                current_test == "part_throttle_sweep"
                or (current_test == "tip_in" and not tip_offered)
            ):
                # rpm rising at part throttle towards the committed hold, or the throttle
                # opening onto its step: its approach, not an offered sweep that happens to
                # start here
                assert self.committed is not None
                if _at_hold(self.committed, op):  # arrived: the ride's end is its first step
                    self._running = self.committed
                    return self._during(self.committed.test_type, op)
                self._approaching = True
                return _next_line(self.committed, op)
            if self.committed is None or not _runs(self.committed, current_test, op):
                running = next(
                    (
                        s
                        for s in view.suggestions
                        if _runs(s, current_test, op) and not _under(s, op)
                    ),
                    None,
                )
                if running is not None:
                    self._commit(running)
            c = self.committed
            if current_test in HOLD_TYPES and c is not None and _runs(c, current_test, op):
                # followed as a detected hold: keep following it if the detector's segment
                # ends while the engine stays on it (an idle split at a new rpm restarts)
                self._holding = True
            if c is not None and _runs(c, current_test, op):
                self._running = c
            return self._during(current_test, op)
        self._follow_visible_hold(t, view, op)
        if top is None:
            self.committed = None
            return view.instruction or "all reachable cells are covered"
        offered = self.committed is not None and any(
            _same(s, self.committed) for s in view.suggestions
        )
        shrunk = None if offered else _shrunk(self.committed, view)
        if shrunk is not None and (
            not ended
            or _on_hold(shrunk, op)
            or (self.committed is not None and _on_hold(self.committed, op))
        ):
            # the hold goes on: a step of it turned trusted (the engine may be on its way
            # from that step to the next, on neither)
            self._commit(shrunk)
        elif self.committed is None or not offered or (ended and not _on_hold(self.committed, op)):
            # a test ended (unless it was the ride onto the committed hold, now running)
            self._commit(top)
        elif not _same(top, self.committed) and not _on_hold(self.committed, op):
            if self._challenger is None or not _same(self._challenger, top):
                self._challenger, self._challenger_since = top, t
            elif t - self._challenger_since >= self.switch_s:
                self._commit(top)
        else:
            self._challenger = None
        assert self.committed is not None
        self.advice = (self.committed, t)
        if self._cooling:
            clt = (float(op.get("clt_c", math.nan)), self._clt_before)
            return _cooling_line(self.committed, t - self._cool_from, clt)
        holding = self._let_go is None and _at_hold(self.committed, op)
        if holding and (self._holding or _opened(op, -math.inf)):
            # the tuner is on the committed hold already (throttle open, MAP on a step):
            # the detector's 4 s of steady rpm have not called it a test yet, and a
            # top-down step lasts ~1.2 s, so "next: hold ..." would name the hold he runs
            # for its first three steps. The line reads as during the hold; ``advice``
            # still names it, so whoever reads the advice runs this same hold. The throttle
            # must open to start it (an idle at 950 rpm and 31 kPa is no 1000-rpm hold);
            # then the low steps of an idle/low-MAP hold, at ~1 % throttle, are followed too.
            self._holding = True
            self._running = self.committed
            return self._during(self.committed.test_type, op)
        self._holding = False
        return _next_line(self.committed, op)

    def _serpentine(self) -> tuple[Suggestion, tuple[float, ...]] | None:
        """The committed serpentine and its rows in run order (None: none, or it is over)."""
        c = self.committed
        rows = _steps(c) if c is not None else ()
        if c is None or c.test_type != "part_throttle_sweep" or len(rows) < 2 or self._over:
            return None
        return c, rows

    def _on_serpentine(self, t: float, op: Mapping[str, float]) -> bool:
        """The committed serpentine is running: rpm in its range, MAP on one of its rows.

        Bridged for :data:`TURN_BRIDGE_S` across a turn (MAP between two rows).
        """
        found = self._serpentine()
        if found is None:
            return False
        c, rows = found
        rpm = float(op.get("rpm", math.nan))
        map_kpa = float(op.get("map_kpa", math.nan))
        lo, hi = c.rpm_range
        hi = max(hi, _end_rpm(c, rows))
        on = (
            math.isfinite(rpm)
            and lo - 150.0 <= rpm <= hi + 150.0
            and math.isfinite(map_kpa)
            and min(abs(m - map_kpa) for m in rows) <= ROW_TOL_KPA
        )
        if on:
            self._serpentine_seen = t
        return on or t - self._serpentine_seen <= TURN_BRIDGE_S

    def _follow_visible_hold(self, t: float, view: PlanView, op: Mapping[str, float]) -> None:
        """Commit to another offered hold the engine has sat on for :data:`ADOPT_S`.

        The detector needs 4 s of steady rpm (5 s of idle) before it calls a hold a
        test; a tuner on a live hold moves on after 2 s per step. Until then the line
        would name the committed test while the engine visibly runs another one.
        """
        rpm = float(op.get("rpm", math.nan))
        map_kpa = float(op.get("map_kpa", math.nan))
        c = self.committed
        if not (math.isfinite(rpm) and math.isfinite(map_kpa)):
            return
        if c is not None and abs(c.rpm_range[0] - rpm) <= RPM_TOL and c.test_type in HOLD_TYPES:
            self._seen = None
            return
        here = next((s for s in view.suggestions if _at_hold(s, op, ADOPT_RPM_TOL)), None)
        if here is None or (c is not None and _same(here, c)):
            self._seen = None
            return
        # the same hold as its steps turn trusted (the plan offers the rest, ~1.2 s a step)
        if self._seen is None or not _same_hold(self._seen, here):
            self._seen, self._seen_since = here, t
        elif t - self._seen_since >= ADOPT_S:
            self._commit(here)
            self._seen = None

    def _follow_serpentine(self, op: Mapping[str, float]) -> str | None:
        """Track the committed serpentine's rows; the line while its last row has ended.

        Rows are reached in their order only (MAP on the next row, rpm in the span), so
        a turn passing another row's MAP, or the closing hold stepping through MAP values
        the rows share, never sends the line back to a ramp. Once the last row is at its
        end rpm, the closing hold's line is returned (None without one); leaving that rpm
        or closing the throttle ends the serpentine.
        """
        found = self._serpentine()
        if found is None:
            return None
        c, rows = found
        rpm = float(op.get("rpm", math.nan))
        map_kpa = float(op.get("map_kpa", math.nan))
        if not (math.isfinite(rpm) and math.isfinite(map_kpa)):
            return None
        lo, hi = c.rpm_range
        end = _end_rpm(c, rows)
        closing = tuple(getattr(c.recipe, "hold_steps", ()) or ())
        if self._at_end:
            held = closing or rows[-1:]
            if abs(rpm - end) > RPM_TOL or map_kpa < min(held) - 2.0 * ROW_TOL_KPA:
                self._over, self._serpentine_seen = c, -math.inf  # released: it is over
                return None
            if not closing:
                return None
            ahead = [j for j in range(self._step, len(closing))
                     if abs(closing[j] - map_kpa) <= ROW_TOL_KPA]  # fmt: skip
            if ahead:
                self._step = ahead[0]
            then = (
                f", then {closing[self._step + 1]:.0f} kPa"
                if self._step + 1 < len(closing)
                else ", then release"
            )
            return f"hold {end:.0f} rpm, MAP {closing[self._step]:.0f} kPa until trusted{then}"
        in_span = lo - RPM_TOL <= rpm <= max(hi, end) + RPM_TOL
        nxt = self._row + 1
        if in_span and nxt < len(rows) and abs(rows[nxt] - map_kpa) <= ROW_TOL_KPA:
            self._row = nxt
        if self._row == len(rows) - 1 and abs(rpm - end) <= RPM_TOL:
            self._at_end, self._step = True, 0
            return self._follow_serpentine(op)
        return None

    def _follow_ramps(self, op: Mapping[str, float]) -> str | None:
        """The line along committed MAP ramps (None: none committed, not begun, or over).

        The detector sees each column's ramp as a steady hold and the turns between
        them as no test, so the walk is followed by the engine's rpm: it begins when the
        engine reaches its first stop (a lead column, or the first ramp's) with the
        throttle open at the top of the span, moves on to each next stop as the absorber
        brings the engine there, and is over when the throttle closes under the span
        (the release at its end).
        """
        c = self.committed
        if c is None or c.test_type != "map_ramps":
            self._ramp = -1
            return None
        lead = tuple(getattr(c.recipe, "lead", ()) or ())
        stops = (*lead, *(getattr(c.recipe, "columns", ()) or ()))
        rpm = float(op.get("rpm", math.nan))
        map_kpa = float(op.get("map_kpa", math.nan))
        if len(stops) <= len(lead) or not math.isfinite(rpm) or not math.isfinite(map_kpa):
            return None
        steps = _steps(c)
        top, low = max(steps), min(steps)
        if self._ramp < 0:
            if abs(rpm - stops[0]) > RPM_TOL or map_kpa < top - 2.0 * ROW_TOL_KPA:
                return None  # not there yet: the line names the walk as next
            self._ramp = 0
        elif map_kpa < low - 2.0 * ROW_TOL_KPA or _below(op, low - 2.0 * ROW_TOL_KPA):
            self._ramp = -1
            self._over = c  # released under the span: the walk is over
            return None
        near = min(range(len(stops)), key=lambda j: abs(stops[j] - rpm))
        if near > self._ramp and abs(stops[near] - rpm) <= RPM_TOL:
            self._ramp = near
        i = self._ramp
        cell_s = float(getattr(c.recipe, "cell_s", 0.0) or 0.0)
        then = f", then {stops[i + 1]:.0f} rpm" if i + 1 < len(stops) else ", then release"
        if i < len(lead):
            at = float(getattr(c.recipe, "lead_kpa", top) or top)
            return f"{stops[i]:.0f} rpm: hold {at:.0f} kPa {cell_s:.1f} s (now {map_kpa:.0f}){then}"
        first_down = steps[0] >= top
        j = i - len(lead)  # the ramp, of the walk's columns
        down = (j % 2 == 0) == first_down
        pace = _pace(c.recipe, j, sorted(steps), map_kpa) or f"{cell_s:.1f} s a cell"
        to = c.recipe.ramp_end_kpa(j) if isinstance(c.recipe, Recipe) else (low if down else top)
        return (
            f"{stops[i]:.0f} rpm: roll MAP {'down' if down else 'up'} to "
            f"{to:.0f} kPa, {pace} (now {map_kpa:.0f}){then}"
        )

    def _commit(self, s: Suggestion) -> None:
        if self.committed is None or not _same(s, self.committed) or self._over is not None:
            self._row, self._at_end, self._step, self._over = -1, False, 0, None
            self._ramp = -1
        self.committed = s
        self._challenger = None
        self._challenger_since = math.inf

    def _during(self, kind: str, op: Mapping[str, float]) -> str:
        c = self.committed
        rpm = float(op.get("rpm", math.nan))
        map_kpa = float(op.get("map_kpa", math.nan))
        if kind == "wot_pull":
            top = c.rpm_range[1] if c is not None and c.test_type == "wot_pull" else None
            if top and math.isfinite(rpm) and rpm > top + RPM_TOL:
                # past the suggested top (the tuner runs on to his own): "hold WOT to 4500
                # rpm" read at 4817 rpm as if the pull had fallen short
                return f"WOT pull past {top:.0f} rpm: its cells are in, lift when you are done"
            return f"hold WOT to {top:.0f} rpm" if top else "hold WOT to the top of the pull"
        if kind in HOLD_TYPES and c is not None and _runs(c, kind, op):
            steps = _steps(c)
            if math.isfinite(map_kpa) and map_kpa > max(steps) + JUST_DONE_KPA:
                # above the hold's rows: a step of the tuner's own, not this suggestion's
                return f"hold {rpm:.0f} rpm at {map_kpa:.0f} kPa in progress: finish it"
            here = (
                min(steps, key=lambda m: abs(m - map_kpa)) if math.isfinite(map_kpa) else steps[0]
            )
            later = steps[steps.index(here) + 1 :]  # in the hold's order (highest MAP first)
            then = f", then {later[0]:.0f} kPa" if later else ", then release"
            return f"hold {c.rpm_range[0]:.0f} rpm, MAP {here:.0f} kPa until trusted{then}"
        if kind == "part_throttle_sweep" and c is not None and _runs(c, kind, op):
            return _sweeping(c, map_kpa)
        where = f" ({rpm:.0f} rpm, {map_kpa:.0f} kPa)" if math.isfinite(rpm) else ""
        return f"{kind.replace('_', ' ')} in progress{where}: finish it"


def _runs(s: Suggestion, kind: str, op: Mapping[str, float]) -> bool:
    """``s`` is the test of type ``kind`` the engine is running at ``op``."""
    rpm = float(op.get("rpm", math.nan))
    map_kpa = float(op.get("map_kpa", math.nan))
    if kind in HOLD_TYPES:
        tol = CLOSED_RPM_TOL if _below(op, math.inf) else RPM_TOL
        return s.test_type in HOLD_TYPES and (
            not math.isfinite(rpm) or abs(s.rpm_range[0] - rpm) <= tol
        )
    if s.test_type != kind:
        return False
    if kind == "part_throttle_sweep" and math.isfinite(rpm):
        lo, hi = s.rpm_range
        rows = _steps(s)
        hi = max(hi, _end_rpm(s, rows))  # a serpentine's last row may run on past the span
        on_row = (
            len(set(rows)) >= 2  # a serpentine: its turns are bridged by rpm and time
            or not math.isfinite(map_kpa)
            or min(abs(m - map_kpa) for m in rows) <= 2.0 * ROW_TOL_KPA
        )
        return lo - RPM_TOL <= rpm <= hi + RPM_TOL and on_row
    return True


def _shrunk(c: Suggestion | None, view: PlanView) -> Suggestion | None:
    """The committed hold as the plan offers it now (same rpm, the steps still needed).

    A hold's steps turn trusted one by one; the plan then offers the rest of it, a
    different suggestion. The tuner is still on that hold: the line stays on it.
    """
    if c is None or c.test_type not in HOLD_TYPES:
        return None
    return next(
        (s for s in view.suggestions if s.test_type in HOLD_TYPES and s.rpm_range == c.rpm_range),
        None,
    )


def _on_hold(c: Suggestion, op: Mapping[str, float]) -> bool:
    """The engine sits on hold ``c``: at its rpm, MAP on one of its steps or between two.

    Before the detector's 4 s of steady rpm call it a test, the tuner already runs it.
    Between two steps the MAP is on none (the knock-boosted "hold 1750 rpm: MAP 95 85 80
    ...": at 89 kPa on the way from 95 to 85 the detector's segment ended, the hold read
    as over, and the line said "next: MAP ramps 5500->5000" for 3 s while the tuner went
    on stepping down it).
    """
    rpm = float(op.get("rpm", math.nan))
    map_kpa = float(op.get("map_kpa", math.nan))
    steps = _steps(c)
    return (
        c.test_type in HOLD_TYPES
        and math.isfinite(rpm)
        and math.isfinite(map_kpa)
        and abs(c.rpm_range[0] - rpm) <= RPM_TOL
        and min(steps) - ROW_TOL_KPA <= map_kpa <= max(steps) + ROW_TOL_KPA
    )


def _at_hold(c: Suggestion, op: Mapping[str, float], rpm_tol: float = RPM_TOL) -> bool:
    """The engine runs hold ``c``: at its rpm, MAP on its steps or a step above them.

    Steps turn trusted one by one (~1.2 s each, highest MAP first) and the plan then offers
    the rest, so a tuner still on the step that just turned trusted sits one step above
    the hold as offered: he is running it, and the line's next step is the one to take.
    """
    rpm = float(op.get("rpm", math.nan))
    map_kpa = float(op.get("map_kpa", math.nan))
    steps = _steps(c)
    return (
        c.test_type in HOLD_TYPES
        and math.isfinite(rpm)
        and math.isfinite(map_kpa)
        and abs(c.rpm_range[0] - rpm) <= rpm_tol
        and min(steps) - ROW_TOL_KPA <= map_kpa <= max(steps) + JUST_DONE_KPA
    )


def _below(op: Mapping[str, float], map_kpa_max: float) -> bool:
    """The throttle is closed and MAP is under ``map_kpa_max``.

    With ``map_kpa_max`` :data:`ROW_TOL_KPA` under a hold's lowest step this is the hold
    let go (a settled step sits within a kPa or two of its row). The throttle must read
    closed: MAP under a step with the throttle opening is the ride onto it, and without a
    throttle reading the two cannot be told apart (the line then keeps the hold).
    """
    map_kpa = float(op.get("map_kpa", math.nan))
    tps = float(op.get("tps_pct", math.nan))
    return math.isfinite(map_kpa) and map_kpa < map_kpa_max and tps <= CLOSED_TPS_PCT


def _under(s: Suggestion, op: Mapping[str, float]) -> bool:
    """Hold ``s`` is not what runs: the throttle is shut under its lowest step."""
    return s.test_type in HOLD_TYPES and _below(op, min(_steps(s)) - ROW_TOL_KPA)


def _opened(op: Mapping[str, float], map_kpa_max: float) -> bool:
    """The throttle opened again (where it is logged; else MAP back to ``map_kpa_max``)."""
    tps = float(op.get("tps_pct", math.nan))
    if math.isfinite(tps):
        return tps > CLOSED_TPS_PCT
    map_kpa = float(op.get("map_kpa", math.nan))
    return math.isfinite(map_kpa) and map_kpa >= map_kpa_max


def _to_pull_start(c: Suggestion, op: Mapping[str, float]) -> bool:
    """The engine rides at part throttle up to the committed pull's start rpm (or sits there).

    The detector calls that rise a part-throttle sweep; it is the pull's approach.
    """
    rpm = float(op.get("rpm", math.nan))
    tps = float(op.get("tps_pct", math.nan))
    return (
        c.test_type == "wot_pull"
        and math.isfinite(rpm)
        and rpm <= c.rpm_range[0] + RPM_TOL
        and not tps >= WOT_TPS_PCT
    )


def _next_line(c: Suggestion, op: Mapping[str, float]) -> str:
    """The "next: ..." line for ``c``; where to bring the engine unless its short form says.

    One rule for the ride up (a sweep the detector sees) and the wait before it: the
    headless demo's line toggled "next: MAP ramps 4500->2000 rpm, ..." with and without
    " (bring it to 4500 rpm)" each second on the ride up to the walk.
    """
    short = _short(c)
    if short != c.description:  # a serpentine or a walk names its start rpm already
        return f"next: {short}"
    return f"next: {short}{_approach(c, op)}"


def _riding_to(c: Suggestion | None, op: Mapping[str, float]) -> bool:
    """The engine is still below the committed hold's rpm, or MAP ramps' first column."""
    rpm = float(op.get("rpm", math.nan))
    if c is None or not math.isfinite(rpm):
        return False
    if c.test_type == "map_ramps":
        return rpm < float(getattr(c.recipe, "start_rpm", c.rpm_range[0])) - RPM_TOL
    return c.test_type in HOLD_TYPES and rpm < c.rpm_range[0] - RPM_TOL


def _cooling_line(
    s: Suggestion | None,
    elapsed_s: float = math.nan,
    clt: tuple[float, float] = (math.nan, math.nan),
) -> str:
    """The line while a pull's cool-down runs: idle first, then ``s`` (held briefly).

    With how long it has run and the coolant now against before the pull (QA: "cool down,
    then MAP ramps ..." stood for 40 s with no clock and no target): the tuner sees the
    heat come out and decides, as on any dyno; the planner's own cool-down (its minutes)
    waits until the intake air is back within 1.5 °C of an idling engine's. ``s`` None:
    the next test is still being planned (:meth:`Instructor.interim`).

    The coolant is why the tuner waits, so it stays: a long test's name gives way first
    (:func:`_names`, its shorter forms), then "at idle", then the coolant before the pull,
    and the coolant only when even the test's shortest name leaves it no room (the demo's
    "cool down at idle 0:18, then part-throttle sweep 1500-5800 rpm at 70 kPa" had lost
    it, at 160 columns too).
    """
    then = ", then "
    if s is None:
        names, then = [PLANNING], ": "
    else:
        names = _names(s)
    clock = ""
    if math.isfinite(elapsed_s):
        whole = max(0, int(elapsed_s))
        clock = f" {whole // 60}:{whole % 60:02d}"
    now, before = clt
    coolants = [""]
    if math.isfinite(now):
        coolants = [f" (CLT {now:.0f} °C)", ""]
        if math.isfinite(before):
            coolants.insert(0, f" (CLT {now:.0f} °C, was {before:.0f})")
    forms = []
    for coolant in coolants:
        forms.append(f"cool down at idle{clock}{coolant}{then}{names[0]}")
        forms += [f"cool down{clock}{coolant}{then}{what}" for what in names]
    for line in forms:
        if len(line) <= LINE_MAX:
            return line
    return fit_line(forms[-1], LINE_MAX)


def _names(s: Suggestion) -> list[str]:
    """``s`` named for the cool-down's line, the full name first, then shorter ones.

    Each shorter form drops detail, never the test's kind nor its rpm (the heatmap marks
    its cells there): "hold 1000 rpm, 2 MAP steps", "hold 1000 rpm"; "MAP ramps 4500->2000
    rpm"; "sweep 1500-5800 rpm at 70 kPa", "sweep 1500-5800 rpm".
    """
    lo, hi = s.rpm_range
    steps = _steps(s)
    kind = s.test_type
    names: list[str] = []
    if lo <= 0:  # no rpm to name: an idle in neutral, a street cruise
        return [_short(s)]
    if kind in HOLD_TYPES and len(steps) > 1:
        names.append(f"hold {lo:.0f} rpm, {len(steps)} MAP steps")
    else:
        names.append(_short(s))
    walk = _walk_span(s)
    if walk is not None:
        stops = (*(getattr(s.recipe, "lead", ()) or ()), *(getattr(s.recipe, "columns", ()) or ()))
        names += [walk, f"MAP ramps {stops[0]:.0f}->{stops[-1]:.0f} rpm"]
    elif kind in HOLD_TYPES and s.recipe is not None:
        if len(steps) == 1:
            names.append(f"hold {lo:.0f} rpm, MAP {steps[0]:.0f} kPa")
        names.append(f"hold {lo:.0f} rpm")
    elif kind == "part_throttle_sweep" and len(steps) >= 2:
        names += [
            f"{len(steps)} row sweeps {lo:.0f}<->{hi:.0f} rpm, {steps[0]:.0f} kPa first",
            f"{len(steps)} row sweeps {lo:.0f}<->{hi:.0f} rpm",
        ]
    elif kind == "part_throttle_sweep":
        names += [
            f"sweep {lo:.0f}-{hi:.0f} rpm at {steps[0]:.0f} kPa",
            f"sweep {lo:.0f}-{hi:.0f} rpm",
        ]
    elif kind == "wot_pull":
        names.append(f"WOT pull {lo:.0f}-{hi:.0f} rpm")
    return list(dict.fromkeys(names))


def fit_line(line: str, width: int) -> str:
    """``line`` in ``width`` cells: shorter wording first, then whole parts left out.

    In order: the hold's ", each until trusted" (the panel says it), a long MAP step list
    as its span ("MAP 85-25 kPa, 13 steps"), the last ", then ..." (what comes after the
    step at hand), and only then a cut at a word's end with "…". At 80 columns the
    dashboard's line read "..., each until trus…" (QA).
    """
    if len(line) <= width:
        return line
    shorter = line.replace(", each until trusted", "")
    if len(shorter) > width:
        shorter = STEPS_RE.sub(_step_span, shorter, count=1)
    while len(shorter) > width and ", then " in shorter:
        shorter = shorter[: shorter.rindex(", then ")]
    if len(shorter) <= width:
        return shorter
    cut = shorter[: max(width - 1, 0)]
    if " " in cut and shorter[len(cut)] != " ":
        cut = cut[: cut.rindex(" ")]  # a word's end, not its middle
    return cut.rstrip(" ,:;") + "…"


STEPS_RE = re.compile(r"MAP ((?:\d+ ){2,}\d+) kPa")
"""A hold's MAP step list ("MAP 85 80 75 70 kPa")."""


def _step_span(found: re.Match[str]) -> str:
    steps = found[1].split()
    return f"MAP {steps[0]}-{steps[-1]} kPa, {len(steps)} steps"


def _walk_span(s: Suggestion) -> str | None:
    """MAP ramps' rpm and MAP span ("MAP ramps 4500->2000 rpm, 95<->50 kPa"), else None."""
    rows = _steps(s)
    stops = (*(getattr(s.recipe, "lead", ()) or ()), *(getattr(s.recipe, "columns", ()) or ()))
    if s.test_type != "map_ramps" or not stops or not rows:
        return None
    return f"MAP ramps {stops[0]:.0f}->{stops[-1]:.0f} rpm, {max(rows):.0f}<->{min(rows):.0f} kPa"


def _short(s: Suggestion) -> str:
    """The suggestion for the one-line instruction: a serpentine's legs are on the panel."""
    rows = _steps(s)
    rate = float(getattr(s.recipe, "rate_rpm_s", 0.0) or 0.0)
    walk = _walk_span(s)
    if walk is not None:
        cell_s = float(getattr(s.recipe, "cell_s", 0.0) or 0.0)
        return f"{walk}, {cell_s:.1f} s a cell, from {rows[0]:.0f} kPa"
    if s.test_type != "part_throttle_sweep" or len(rows) < 2 or rate <= 0:
        return s.description
    lo, hi = s.rpm_range
    return f"{len(rows)} row sweeps {lo:.0f}<->{hi:.0f} rpm at {rate:.0f} rpm/s, {rows[0]:.0f} kPa first"


def _sweeping(c: Suggestion, map_kpa: float) -> str:
    """The sweep's line: the row to hold now, the ramp, and the next row (serpentine)."""
    rows = _steps(c)
    rate = float(getattr(c.recipe, "rate_rpm_s", 0.0) or 0.0)
    lo, hi = c.rpm_range
    if len(rows) < 2 or rate <= 0:
        return f"hold {c.map_range[0]:.0f} kPa, sweep to {hi:.0f} rpm"
    i = min(range(len(rows)), key=lambda j: abs(rows[j] - map_kpa)) if math.isfinite(map_kpa) else 0
    way, to = ("up", hi) if i % 2 == 0 else ("down", lo)
    if i + 1 == len(rows):
        to = _end_rpm(c, rows)  # the last row may run on past the span (``Recipe.run_on_rpm``)
    then = f", then {rows[i + 1]:.0f} kPa back" if i + 1 < len(rows) else ", then release"
    closing = tuple(getattr(c.recipe, "hold_steps", ()) or ())
    if i + 1 == len(rows) and closing:
        # the serpentine's closing hold: stay on the throttle where the last row ends
        steps = " ".join(f"{m:.0f}" for m in closing)
        then = f", then hold {steps} kPa there"  # each until trusted (one line at 80 columns)
    return f"hold {rows[i]:.0f} kPa, ramp {way} to {to:.0f} rpm at {rate:.0f} rpm/s{then}"


def _end_rpm(c: Suggestion, rows: tuple[float, ...]) -> float:
    """Where a serpentine's last row ends: the span's end, or where its run-on stops."""
    lo, hi = c.rpm_range
    if len(rows) % 2 == 0:
        return lo
    return max(hi, float(getattr(c.recipe, "run_on_rpm", 0.0) or 0.0))


def _steps(s: Suggestion) -> tuple[float, ...]:
    recipe = s.recipe
    steps = getattr(recipe, "map_steps", ())
    return tuple(steps) if steps else (s.map_range[0], s.map_range[1])


def _approach(s: Suggestion, op: Mapping[str, float]) -> str:
    """How to get to the test's start from where the engine is (empty when there)."""
    rpm = float(op.get("rpm", math.nan))
    if not math.isfinite(rpm) or s.test_type == "street_cruise" or s.rpm_range[0] <= 0:
        return ""
    start = float(getattr(s.recipe, "start_rpm", s.rpm_range[0]))
    if abs(rpm - start) <= 150.0 or s.description.startswith(f"hold {start:.0f} rpm"):
        return ""  # there already, or a hold that names its rpm first (one line at 80 columns)
    return f" (bring it to {start:.0f} rpm)"


def _pace(recipe: object, j: int, rows: list[float], map_kpa: float) -> str | None:
    """The pace of ramp ``j`` where the engine's MAP is when not ``cell_s`` a cell, or None.

    MAP ramps roll quickly past the cells a column already trusts (``Recipe.cell_times``
    at a roll's pace, under half of ``cell_s``): "quick past 70-75". A cell part-way there
    is passed in the seconds it still lacks: "0.4 s in 95".
    """
    times = getattr(recipe, "cell_times", ()) or ()
    edges = getattr(recipe, "map_edges", ()) or ()
    cell_s = float(getattr(recipe, "cell_s", 0.0) or 0.0)
    if not 0 <= j < len(times) or len(edges) != len(rows) + 1 or len(times[j]) != len(rows):
        return None
    k = bisect.bisect_right(edges, map_kpa) - 1
    if not 0 <= k < len(rows) or not 0.0 < times[j][k] < cell_s:
        return None
    if times[j][k] >= 0.5 * cell_s:
        return f"{times[j][k]:.1f} s in {rows[k]:.0f}"
    quick = {i for i, t in enumerate(times[j]) if 0.0 < t < 0.5 * cell_s}
    lo, hi = k, k
    while lo - 1 in quick:
        lo -= 1
    while hi + 1 in quick:
        hi += 1
    return f"quick past {rows[lo]:.0f}" + ("" if lo == hi else f"-{rows[hi]:.0f}")
