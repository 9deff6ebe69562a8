"""What a test is worth: per-cell confidence, its value to the tuner, and a candidate's gain.

Split out of ``simplan``: the gain rule (weighted rise in cell value) is shared
by the candidate tests, the hold composer and the ranking, and by the guided
operator and ``dynoai plan`` that report confidence, so it is one small module
everyone imports rather than a corner of the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.coverage.confidence import CoverageRule
from core.plan.recipe import Recipe

F64 = npt.NDArray[np.float64]

PLAN_WEIGHT = (0.0, 10.0, 6.0, 1.0)
"""Planning weight of a cell's confidence by priority (index 1..3). Priority 1 and 2 are
what a tuner must have before the bike leaves; priority 3 is polish, worth a step only
when nothing more important is left (see MIN_STEP_RATE)."""


def confidence(arrays: Mapping[str, F64], rule: CoverageRule) -> F64:
    """Per-cell confidence 0..1 of additive grid arrays (broadcasts over candidates).

    The grid's own rule (:class:`core.coverage.confidence.CoverageRule`) on the mean and
    standard deviation the grid would compute from these sums.
    """
    w = arrays["lam_weight"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(w > 0, arrays["lam_wsum"] / w, np.nan)
        std = np.sqrt(np.maximum(np.where(w > 0, arrays["lam_wsum2"] / w, np.nan) - mean**2, 0.0))
    return rule.confidence(arrays["hits"], arrays["dwell_s"], w, mean, std)


def cell_value(conf: F64) -> F64:
    """What a cell's confidence is worth to the tuner: half for progress, half for trusted.

    A cell is only usable for correction once it is trusted, so finishing a cell
    that is at 0.9 is worth more than starting one at 0: topping up is not starved.
    """
    return np.asarray(0.5 * conf + 0.5 * (conf >= 1.0), dtype=np.float64)


EDGE_REPEATS = 3
"""A test that would have to be run more than this many times over to make a cell
trusted only grazes it (:func:`value_gain`)."""
EDGE_SHARE = PLAN_WEIGHT[3] / PLAN_WEIGHT[1]
"""What a grazed cell's progress is worth, as a share of its weight: priority 1 counts
as polish."""


def value_gain(weights: F64, value0: F64, conf1: F64) -> F64:
    """Per-cell gain of a test: ``weights`` x the rise in :func:`cell_value`, a grazed cell's less.

    ``value0``: each cell's value now; ``conf1``: its confidence after the test. A cell
    the test would have to be run more than :data:`EDGE_REPEATS` times over to trust is
    data at the edge of what the test reaches, and its progress is worth
    :data:`EDGE_SHARE` of the weight. Valued in full, the car's WOT pull 2000-4500 rpm,
    each run adding ~0.06 s to 105 kPa at 4000 rpm (the engine's WOT MAP there is at the
    cell's lower edge), was the demo's top test fifteen times running, knocking every
    time, while 5000-7000 rpm at 45-85 kPa waited for the priority-1 cells to be done.
    """
    conf0 = np.where(value0 >= 1.0, 1.0, 2.0 * value0)
    rise = np.maximum(cell_value(conf1) - value0, 0.0)
    grazed = (conf1 < 1.0) & ((conf1 - conf0) * EDGE_REPEATS < 1.0 - conf0)
    return np.asarray(weights * rise * np.where(grazed, EDGE_SHARE, 1.0), dtype=np.float64)


@dataclass(slots=True)
class Candidate:
    """One test on offer: its recipe, the data it would add, its minutes and its gain."""

    recipe: Recipe
    arrays: dict[str, F64]
    minutes: float
    gain: float = 0.0
    per_cell: F64 = field(default_factory=lambda: np.zeros(0))
