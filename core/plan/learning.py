"""Learning from every test: a per-vehicle, per-test-type fill-rate factor.

The kinematic models in ``core.plan.testmodels`` say where a test drives the engine,
but not how many of those samples survive the filters (accel enrichment and
transient hold-off eat the start of a roll-on, a wideband warming up eats more),
nor how fast this operator really sweeps. So each vehicle keeps, per test type,
a factor ``f`` such that ``actual hits ~ f x model hits``.

Estimator: a gamma-Poisson update with exponential forgetting. Hits in a cell
are modelled as Poisson with mean ``f x predicted``; with a Gamma(alpha, beta)
belief about ``f`` the posterior after one test is
``Gamma(alpha + sum(actual), beta + sum(predicted))``, so the posterior mean
``alpha / beta`` is a ratio of hit totals that weighs each test by how much it
was expected to fill. Before each update both parameters are multiplied by
``FORGET`` (0.7), so the estimate follows drift (heat soak, a different
operator) instead of freezing after a few hundred pulls; the prior
Gamma(20, 20) (mean 1, worth 20 hits) only matters until the first test.

Filters reject rows while the engine settles after a test starts (throttle
snap, transient hold-off), which moves hits away from the test's first cells
rather than thinning them evenly; a per-test-type *lead* (seconds from the start
to the first kept row, EWMA) is learned too and the model leaves it out.

The prediction error of a test is the symmetric weighted absolute error over
cells, ``2 sum|f x predicted - actual| / (sum predicted + sum actual)``, with the factor
*before* the update (an honest out-of-sample figure); the planner reports the
mean of the recent ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from core.plan.testmodels import TEST_TYPES

PRIOR_HITS = 20.0
"""Prior strength: Gamma(PRIOR_HITS, PRIOR_HITS) has mean 1."""
FORGET = 0.7
"""Multiplier on the old evidence before each update (exponential forgetting)."""
ERRORS_KEPT = 20
"""Recent per-test prediction errors kept for the reported mean."""
RATE_EWMA = 0.2
"""Smoothing of the learned logging rate."""
DEFAULT_RATE_HZ = 50.0
"""Fused-row rate assumed before any run was seen."""
DEFAULT_WOT_MAP_KPA = 97.0
"""MAP at wide-open throttle assumed before any pull was seen (sea level, NA)."""
MISS_DISCOUNT = 0.3
"""Expected hits in a cell are multiplied by this once per test that should have filled it
but left it empty: an engine cannot hold 20 kPa at 750 rpm, and the planner should stop
promising it after being wrong about it."""
MISSES_KEPT = 4000


class CalibrationError(ValueError):
    """A stored calibration that cannot be read."""


@dataclass(slots=True)
class TestFit:
    """Gamma posterior of one test type's fill-rate factor."""

    alpha: float = PRIOR_HITS
    beta: float = PRIOR_HITS
    tests: int = 0
    lead_s: float = 0.0
    """Seconds at the start of the test in which the filters keep nothing (EWMA)."""

    @property
    def factor(self) -> float:
        return self.alpha / self.beta


@dataclass(slots=True)
class Calibration:
    """What the planner has learned about one vehicle.

    Attributes:
        fits: Test type -> fill-rate posterior.
        sample_rate_hz: Fused rows per second the engine bins (EWMA over runs).
        wot_map_kpa: MAP the engine reaches at WOT (median of detected pulls, EWMA).
        errors_pct: Recent per-test prediction errors, oldest first.
    """

    fits: dict[str, TestFit] = field(default_factory=dict)
    sample_rate_hz: float = DEFAULT_RATE_HZ
    wot_map_kpa: float = DEFAULT_WOT_MAP_KPA
    errors_pct: list[float] = field(default_factory=list)
    misses: dict[str, int] = field(default_factory=dict)
    """``"rpm@map_kpa"`` of cells a test was expected to fill but left empty -> count."""
    stalls: dict[str, int] = field(default_factory=dict)
    """``"rpm@map_kpa"`` of cells a test was expected to make trusted that stayed short
    (e.g. a lambda too unsteady there) -> count; their planning weight is discounted."""
    checks: dict[str, list[float]] = field(default_factory=dict)
    """Test type -> recent errors (%) of suggestions checked against the test that followed
    (``core.plan.predictions``): the planner's prediction, made before the fact."""
    model_misses: dict[str, int] = field(default_factory=dict)
    """``misses`` of the simulated candidates (``observe_reach(simulated=True)``)."""
    model_fits: dict[str, TestFit] = field(default_factory=dict)
    """Test type -> fill-rate posterior of the SIMULATED candidates (``core.plan.simplan``),
    learned from the checks of their own suggestions (:meth:`observe_model`). ``fits``
    calibrate the kinematic model, learned from every detected test; the two models
    differ (the kinematic one expected ~10 % more of a settled hold than the simulated
    one, which the filters' hold-off explains), so one factor cannot serve both."""

    def observe_stalls(
        self,
        rpm_axis: npt.ArrayLike,
        map_axis: npt.ArrayLike,
        expected_done: npt.ArrayLike,
        trusted_after: npt.ArrayLike,
    ) -> None:
        """Count cells a test should have made trusted (flat masks) that are still not."""
        rpm = np.asarray(rpm_axis, dtype=np.float64)
        kpa = np.asarray(map_axis, dtype=np.float64)
        stalled = np.asarray(expected_done, dtype=bool) & ~np.asarray(trusted_after, dtype=bool)
        for j in np.flatnonzero(stalled):
            key = _cell_key(rpm[j % rpm.size], kpa[j // rpm.size])
            self.stalls[key] = self.stalls.get(key, 0) + 1
        for j in np.flatnonzero(np.asarray(trusted_after, dtype=bool)):
            self.stalls.pop(_cell_key(rpm[j % rpm.size], kpa[j // rpm.size]), None)

    def stall_weights(
        self, rpm_axis: npt.ArrayLike, map_axis: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """Per-cell multiplier (flat) on planning weight: MISS_DISCOUNT per stalled test."""
        rpm = np.asarray(rpm_axis, dtype=np.float64)
        kpa = np.asarray(map_axis, dtype=np.float64)
        out = np.ones(kpa.size * rpm.size)
        for key, count in self.stalls.items():
            r_txt, m_txt = key.split("@")
            c = np.flatnonzero(np.isclose(rpm, float(r_txt)))
            r = np.flatnonzero(np.isclose(kpa, float(m_txt)))
            if c.size and r.size:
                out[int(r[0]) * rpm.size + int(c[0])] = MISS_DISCOUNT**count
        return out

    def record_check(self, test_type: str, error_pct: float) -> None:
        """Keep one checked prediction's error for the per-type report."""
        kept = self.checks.setdefault(test_type, [])
        kept.append(float(error_pct))
        del kept[:-ERRORS_KEPT]

    def checks_by_type(self) -> tuple[tuple[str, float, int], ...]:
        """(test type, mean error %, tests) of the checked predictions."""
        return tuple((k, float(np.mean(v)), len(v)) for k, v in sorted(self.checks.items()) if v)

    def factor(self, test_type: str) -> float:
        """Fill-rate factor of the kinematic model (``core.plan.planner``)."""
        fit = self.fits.get(test_type)
        return fit.factor if fit else 1.0

    def model_factor(self, test_type: str) -> float:
        """Fill-rate factor of the simulated candidates (``core.plan.simplan``)."""
        fit = self.model_fits.get(test_type)
        return fit.factor if fit else 1.0

    def observe_model(
        self,
        test_type: str,
        predicted_hits: npt.ArrayLike,
        actual_hits: npt.ArrayLike,
        rpm_axis: npt.ArrayLike,
        map_axis: npt.ArrayLike,
        hit_target: int,
    ) -> float:
        """Fold in one checked suggestion of the simulated candidates; its error (%) before.

        ``predicted_hits``: the hits per cell the suggestion predicted (its fill factor
        applied, taken out here for the posterior); ``actual_hits``: what the test added in
        the same cells. Cells it predicted >= ``hit_target`` and left empty are its misses
        (:meth:`observe_reach` with ``simulated``). One method for the tracker and the
        guided operator, which each learn from their checks.
        """
        if test_type not in TEST_TYPES:
            raise ValueError(f"unknown test type {test_type!r}")
        predicted = np.asarray(predicted_hits, dtype=np.float64)
        factor = max(self.model_factor(test_type), 1e-9)
        fit = self.model_fits.setdefault(test_type, TestFit())
        error = _fold(fit, predicted / factor, actual_hits)
        self.observe_reach(rpm_axis, map_axis, predicted, actual_hits, hit_target, simulated=True)
        return error

    def lead_s(self, test_type: str) -> float:
        fit = self.fits.get(test_type)
        return fit.lead_s if fit else 0.0

    @property
    def mean_error_pct(self) -> float | None:
        return float(np.mean(self.errors_pct)) if self.errors_pct else None

    def observe(
        self,
        test_type: str,
        model_hits: npt.ArrayLike,
        actual_hits: npt.ArrayLike,
        lead_s: float | None = None,
    ) -> float:
        """Fold one detected test in; return its prediction error (%) before the update.

        Args:
            test_type: One of ``core.plan.testmodels.TEST_TYPES``.
            model_hits: Hits per cell the kinematic model expects (factor not applied,
                with the current :meth:`lead_s` already left out).
            actual_hits: Hits per cell the grid actually gained during the test.
            lead_s: Seconds from the test's start to its first kept row, if known; the
                learned lead follows it (EWMA, weight 0.5).
        """
        if test_type not in TEST_TYPES:
            raise ValueError(f"unknown test type {test_type!r}")
        fit = self.fits.setdefault(test_type, TestFit())
        error_pct = _fold(fit, model_hits, actual_hits)
        if lead_s is not None and np.isfinite(lead_s) and lead_s >= 0:
            fit.lead_s = lead_s if fit.tests == 1 else fit.lead_s + 0.5 * (lead_s - fit.lead_s)
        self.errors_pct.append(error_pct)
        del self.errors_pct[:-ERRORS_KEPT]
        return error_pct

    def observe_reach(
        self,
        rpm_axis: npt.ArrayLike,
        map_axis: npt.ArrayLike,
        model_hits: npt.ArrayLike,
        actual_hits: npt.ArrayLike,
        hit_target: int,
        *,
        simulated: bool = False,
    ) -> None:
        """Remember cells a test should have filled (>= target expected) but did not touch.

        Kept per model like the fill factors: the kinematic model's (``misses``) and, with
        ``simulated``, the simulated candidates' from a checked suggestion
        (``model_misses``). A detected ride up to a hold, a sweep to its top for the
        kinematic model, "missed" the top cell the hold then filled, and that 0.3
        discount had cut the simulated pull's prediction there.
        """
        misses = self.model_misses if simulated else self.misses
        rpm = np.asarray(rpm_axis, dtype=np.float64)
        kpa = np.asarray(map_axis, dtype=np.float64)
        model = np.asarray(model_hits, dtype=np.float64).reshape(kpa.size, rpm.size)
        actual = np.asarray(actual_hits, dtype=np.float64).reshape(kpa.size, rpm.size)
        for r, c in zip(*np.nonzero(actual > 0), strict=True):
            misses.pop(_cell_key(rpm[c], kpa[r]), None)
        for r, c in zip(*np.nonzero((model >= hit_target) & (actual == 0)), strict=True):
            key = _cell_key(rpm[c], kpa[r])
            misses[key] = misses.get(key, 0) + 1
        while len(misses) > MISSES_KEPT:
            misses.pop(next(iter(misses)))

    def reach(
        self, rpm_axis: npt.ArrayLike, map_axis: npt.ArrayLike, *, simulated: bool = False
    ) -> npt.NDArray[np.float64]:
        """Per-cell multiplier (flat, n_map * n_rpm) on expected hits from remembered misses.

        ``simulated``: the simulated candidates' misses (:meth:`observe_reach`).
        """
        misses = self.model_misses if simulated else self.misses
        rpm = np.asarray(rpm_axis, dtype=np.float64)
        kpa = np.asarray(map_axis, dtype=np.float64)
        out = np.ones((kpa.size, rpm.size))
        if misses:
            for r, m in enumerate(kpa):
                for c, n in enumerate(rpm):
                    count = misses.get(_cell_key(n, m))
                    if count:
                        out[r, c] = MISS_DISCOUNT**count
        return out.ravel()

    def observe_rate(self, rate_hz: float) -> None:
        if np.isfinite(rate_hz) and rate_hz > 0:
            self.sample_rate_hz += RATE_EWMA * (rate_hz - self.sample_rate_hz)

    def observe_wot_map(self, map_kpa: float) -> None:
        if np.isfinite(map_kpa) and map_kpa > 0:
            self.wot_map_kpa += 0.5 * (map_kpa - self.wot_map_kpa)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "fits": {k: [v.alpha, v.beta, v.tests, v.lead_s] for k, v in self.fits.items()},
            "sample_rate_hz": self.sample_rate_hz,
            "wot_map_kpa": self.wot_map_kpa,
            "errors_pct": list(self.errors_pct),
            "misses": dict(self.misses),
            "checks": {k: list(v) for k, v in self.checks.items()},
            "stalls": dict(self.stalls),
            "model_misses": dict(self.model_misses),
            "model_fits": {
                k: [v.alpha, v.beta, v.tests, v.lead_s] for k, v in self.model_fits.items()
            },
        }

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Calibration:
        try:
            fits, model_fits = (
                {
                    str(k): TestFit(
                        float(v[0]), float(v[1]), int(v[2]), float(v[3]) if len(v) > 3 else 0.0
                    )
                    for k, v in dict(d.get(name, {})).items()
                    if k in TEST_TYPES
                }
                for name in ("fits", "model_fits")  # model_fits: absent before issue 11
            )
            return cls(
                fits,
                float(d.get("sample_rate_hz", DEFAULT_RATE_HZ)),
                float(d.get("wot_map_kpa", DEFAULT_WOT_MAP_KPA)),
                [float(e) for e in d.get("errors_pct", [])][-ERRORS_KEPT:],
                {str(k): int(v) for k, v in dict(d.get("misses", {})).items()},
                {str(k): int(v) for k, v in dict(d.get("stalls", {})).items()},
                {
                    str(k): [float(e) for e in v][-ERRORS_KEPT:]
                    for k, v in dict(d.get("checks", {})).items()
                    if k in TEST_TYPES
                },
                {str(k): int(v) for k, v in dict(d.get("model_misses", {})).items()},
                model_fits,
            )
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise CalibrationError(f"planner calibration is unreadable ({exc})") from None


def prediction_error_pct(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Symmetric weighted absolute error over cells: 2 x sum|p - a| / (sum p + sum a) x 100.

    0 % is a perfect cell-by-cell prediction, 200 % is a test that filled none of the
    predicted cells. Symmetric, so a test that filled nothing has a bounded error.
    """
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    total = float(p.sum() + a.sum())
    return 200.0 * float(np.abs(p - a).sum()) / total if total > 0 else 0.0


def _fold(fit: TestFit, model_hits: npt.ArrayLike, actual_hits: npt.ArrayLike) -> float:
    """One test into a fill-rate posterior; the prediction error (%) it had before."""
    model = np.asarray(model_hits, dtype=np.float64)
    actual = np.asarray(actual_hits, dtype=np.float64)
    error_pct = prediction_error_pct(fit.factor * model, actual)
    fit.alpha = FORGET * fit.alpha + float(actual.sum())
    fit.beta = FORGET * fit.beta + float(model.sum())
    # keep the posterior proper if a test was expected to fill nothing
    fit.alpha, fit.beta = max(fit.alpha, 1e-3), max(fit.beta, 1e-3)
    fit.tests += 1
    return error_pct


def _cell_key(rpm: float, map_kpa: float) -> str:
    return f"{float(rpm):.0f}@{float(map_kpa):.1f}"
