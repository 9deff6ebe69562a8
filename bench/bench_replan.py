"""One full re-plan on a 32 x 32 table (target <= 50 ms).

Measures both a cold plan (candidates simulated through the axes) and the
steady-state re-plan the engine does every second (candidates cached, coverage
changed), on a half-covered grid with a learned calibration.
"""

from __future__ import annotations

import time

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.grid import CoverageGrid
from core.coverage.regions import DEFAULT_REGIONS
from core.plan.candidates import _cached_matrix
from core.plan.learning import Calibration
from core.plan.planner import Constraints, plan

TARGET_MS = 50.0


def main() -> None:
    axes = TableAxes.linear(500, 8000, 32, 15, 105, 32)
    rng = np.random.default_rng(1)
    grid = CoverageGrid(axes)
    grid.hits[:] = rng.integers(0, 20, size=axes.shape)
    cal = Calibration()
    cal.observe("wot_pull", np.full(10, 100.0), np.full(10, 80.0), lead_s=1.0)
    constraints = Constraints(max_rpm=7000, max_pulls_per_session=10)
    cold = []
    for _ in range(5):
        _cached_matrix.cache_clear()
        t0 = time.perf_counter()
        plan(
            grid,
            axes,
            DEFAULT_REGIONS,
            constraints,
            cal,
            0,
            operating_point={"rpm": 3000, "map_kpa": 60},
        )
        cold.append((time.perf_counter() - t0) * 1000)
    warm = []
    for i in range(20):
        grid.hits[i % 32, :] += 1
        t0 = time.perf_counter()
        view = plan(
            grid,
            axes,
            DEFAULT_REGIONS,
            constraints,
            cal,
            0,
            operating_point={"rpm": 3000, "map_kpa": 60},
        )
        warm.append((time.perf_counter() - t0) * 1000)
    n = len(view.suggestions) + len(view.filtered)
    for label, values in (
        ("cold (candidates simulated)", cold),
        ("re-plan (cached candidates)", warm),
    ):
        ms = float(np.median(values))
        ok = "OK" if ms <= TARGET_MS else "MISS"
        print(
            f"32x32 {label}: {ms:.1f} ms median over {len(values)}, {n} candidates (target <= {TARGET_MS:.0f} ms) {ok}"
        )


if __name__ == "__main__":
    main()
