"""Predictions checked before the fact: each suggestion's expected hits vs what the test added.

The planner publishes suggestions with their expected hits per cell and minutes
(``Suggestion.expected_hits``, ``Suggestion.minutes``). When the tuner then runs a
test and the detector recognises it, the suggestion that was on offer *before
the test started* and matches it (same test type, the same rpm column or range)
is compared with the hits the test actually added, cell by cell. A test nobody
suggested is not counted: there was no prediction to check.

Error per test: ``core.plan.learning.prediction_error_pct`` (symmetric weighted
absolute error over cells, 0 % exact). Reported per test type.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.plan.learning import prediction_error_pct
from core.plan.pulls import DetectedTest
from core.plan.types import PlanView, Suggestion

HISTORY_S = 600.0
"""Plans kept to look up what was on offer before a test started."""
HOLD_TYPES = ("steady_state", "idle_low_map")


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


def _matches(s: Suggestion, test: DetectedTest, rpm_tol: float) -> bool:
    kind = test.test_type
    if s.test_type in HOLD_TYPES and kind in HOLD_TYPES:
        return abs(s.rpm_range[0] - test.rpm_median) <= rpm_tol
    if s.test_type != kind:
        return False
    if kind in ("wot_pull", "part_throttle_sweep"):
        lo, hi = s.rpm_range
        overlap = min(hi, test.rpm_max) - max(lo, test.rpm_start)
        return overlap >= 0.5 * (hi - lo)
    return True


class PredictionLog:
    """Suggestions offered over time and the checks of the tests that followed them."""

    def __init__(self, rpm_tol: float = 150.0) -> None:
        self.rpm_tol = rpm_tol
        self._offers: deque[tuple[float, tuple[Suggestion, ...]]] = deque()
        self.checked: list[CheckedPrediction] = []

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
        self.checked.clear()

    def check(
        self, test: DetectedTest, actual: npt.NDArray[np.float64], n_rpm: int
    ) -> CheckedPrediction | None:
        """Compare the suggestion on offer before ``test`` began with what it added."""
        offered = [s for t, s in self._offers if t <= test.t_start]
        if not offered:
            return None
        match = next((s for s in offered[-1] if _matches(s, test, self.rpm_tol)), None)
        if match is None:
            return None
        predicted = np.zeros_like(actual)
        for r, c, h in match.expected_hits:
            if r * n_rpm + c < predicted.size:
                predicted[r * n_rpm + c] = h
        checked = CheckedPrediction(
            match.test_type, match.description, float(predicted.sum()), float(actual.sum()),
            match.minutes, test.duration_s / 60.0, prediction_error_pct(predicted, actual),
        )  # fmt: skip
        self.checked.append(checked)
        return checked

    def by_type(self) -> tuple[tuple[str, float, int], ...]:
        """(test type, mean error %, tests) over the checked predictions."""
        out: dict[str, list[float]] = {}
        for c in self.checked:
            out.setdefault(c.test_type, []).append(c.error_pct)
        return tuple((k, float(np.mean(v)), len(v)) for k, v in sorted(out.items()))
