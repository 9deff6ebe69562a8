"""Covered = trusted: the per-cell confidence rule the heatmap, planner and VE share.

A tuner does not trust a cell's mean lambda on ten samples taken in a tenth of a
second while the engine swept through. A cell is *covered* when it holds enough
settled data, all three together:

* at least ``hit_target`` kept samples whose nearest cell it is;
* at least ``min_dwell_s`` seconds of settled dwell (the filters have already
  dropped transients: throttle movement, tip-in hold-off, fuel cut, so kept dwell
  is settled dwell);
* a mean lambda whose standard error is within ``max_lambda_se_pct`` percent
  (std / sqrt(n) / mean, with n the cell's share of lambda samples).

Confidence is the weakest of the three ratios, clipped to 0..1; covered means 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.config import ConfigError

F64 = npt.NDArray[np.float64]


ROUNDING = 1e-9
"""Confidence this close under 1 is 1: the dwell is a float sum of sample intervals."""


@dataclass(frozen=True, slots=True)
class CoverageRule:
    """When a cell's data is enough to trust (``[coverage]`` in the vehicle TOML)."""

    hit_target: int = 10
    """Kept samples with this as their nearest cell."""
    min_dwell_s: float = 1.0
    """Seconds of settled (kept) dwell in the cell."""
    max_lambda_se_pct: float = 1.0
    """Largest standard error of the cell's mean lambda, percent of the mean."""

    def __post_init__(self) -> None:
        if isinstance(self.hit_target, bool) or not isinstance(self.hit_target, int):
            raise ConfigError(
                f"coverage.hit_target: expected a whole number, got {self.hit_target!r}"
            )
        if self.hit_target < 1:
            raise ConfigError(f"coverage.hit_target: must be >= 1, got {self.hit_target}")
        if not 0.0 <= self.min_dwell_s <= 600.0:
            raise ConfigError(f"coverage.min_dwell_s: {self.min_dwell_s} is outside 0..600 s")
        if not 0.01 <= self.max_lambda_se_pct <= 100.0:
            raise ConfigError(
                f"coverage.max_lambda_se_pct: {self.max_lambda_se_pct} is outside 0.01..100 %"
            )

    def confidence(
        self, hits: npt.ArrayLike, dwell_s: F64, lam_weight: F64, lam_mean: F64, lam_std: F64
    ) -> F64:
        """Per-cell confidence 0..1 (1 = covered); 0 where no lambda was binned."""
        hits_f = np.asarray(hits, dtype=np.float64)
        by_hits = hits_f / self.hit_target
        by_dwell = dwell_s / self.min_dwell_s if self.min_dwell_s > 0 else np.ones_like(dwell_s)
        with np.errstate(divide="ignore", invalid="ignore"):
            se_pct = 100.0 * lam_std / np.sqrt(lam_weight) / lam_mean
            by_se = np.where(se_pct <= self.max_lambda_se_pct, 1.0, self.max_lambda_se_pct / se_pct)
        by_se = np.where(np.isfinite(by_se) & (lam_weight > 0), by_se, 0.0)
        conf: F64 = np.clip(np.minimum(np.minimum(by_hits, by_dwell), by_se), 0.0, 1.0)
        # fifty 0.02-s dwells sum to 0.99999999...: one second is one second
        conf[conf >= 1.0 - ROUNDING] = 1.0
        return conf

    def se_pct(self, lam_weight: F64, lam_mean: F64, lam_std: F64) -> F64:
        """Standard error of each cell's mean lambda, percent (NaN where none)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            se: F64 = np.where(
                lam_weight > 0, 100.0 * lam_std / np.sqrt(lam_weight) / lam_mean, np.nan
            )
        return se
