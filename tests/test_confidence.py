"""Covered = trusted: hits AND settled dwell AND a small standard error of mean lambda."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import ConfigError
from core.coverage.axes import TableAxes
from core.coverage.confidence import CoverageRule
from core.coverage.filters import FilterChain
from core.coverage.grid import CoverageGrid
from core.frames import Block
from core.vehicle import parse_config_text

AXES = TableAxes.linear(1000, 5000, 5, 20, 100, 5)


def steady(seconds: float, lam_sd: float, *, rate_hz: float = 100.0, seed: int = 1) -> Block:
    """A warm engine held at 3000 rpm / 60 kPa, lambda 0.9 with the given noise."""
    n = int(seconds * rate_hz)
    rng = np.random.default_rng(seed)
    return Block("t", np.arange(n) / rate_hz, {
        "rpm": np.full(n, 3000.0), "map_kpa": np.full(n, 60.0), "tps_pct": np.full(n, 30.0),
        "clt_c": np.full(n, 90.0), "lambda": 0.9 + lam_sd * rng.standard_normal(n),
    })  # fmt: skip


def bin_steady(block: Block, rule: CoverageRule | None = None) -> CoverageGrid:
    grid = CoverageGrid(AXES, rule=rule)
    grid.update(block, FilterChain().apply(block))
    return grid


def test_ten_hits_in_a_tenth_of_a_second_is_not_covered():
    grid = bin_steady(steady(0.1, 0.005))
    assert grid.hits[2, 2] == 10
    assert not grid.covered_mask()[2, 2]
    assert grid.confidence()[2, 2] == pytest.approx(0.1, abs=0.02)  # dwell 0.1 of 1 s


def test_two_settled_seconds_of_a_steady_mixture_are_covered():
    grid = bin_steady(steady(2.0, 0.03))
    assert grid.covered_mask()[2, 2] and grid.confidence()[2, 2] == 1.0
    assert grid.covered_cells() == 1


def test_a_noisy_mixture_needs_more_data_before_its_mean_is_trusted():
    noisy = bin_steady(steady(1.2, 0.25))
    se = noisy.rule.se_pct(noisy.lam_weight, noisy.lambda_mean(), noisy.lambda_std())[2, 2]
    assert se > 1.0  # 0.25 / sqrt(120) / 0.9 = 2.5 %
    assert not noisy.covered_mask()[2, 2]
    assert noisy.confidence()[2, 2] == pytest.approx(1.0 / se, rel=0.01)
    longer = bin_steady(steady(10.0, 0.25))
    assert longer.covered_mask()[2, 2]


def test_a_cell_without_lambda_is_never_covered():
    grid = CoverageGrid(AXES)
    grid.hits[1, 1], grid.dwell_s[1, 1] = 500, 5.0
    assert grid.confidence()[1, 1] == 0.0


def test_the_rule_is_vehicle_config_with_clear_errors():
    cfg = parse_config_text(
        "[coverage]\nhit_target = 20\nmin_dwell_s = 2.5\nmax_lambda_se_pct = 0.5\n"
    )
    assert cfg.coverage_rule == CoverageRule(20, 2.5, 0.5)
    with pytest.raises(ConfigError, match="coverage.min_dwell_s"):
        parse_config_text("[coverage]\nmin_dwell_s = -1\n")
    with pytest.raises(ConfigError, match="coverage.hit_target"):
        parse_config_text("[coverage]\nhit_target = 1.5\n")
    with pytest.raises(ConfigError, match="coverage.dwell: unknown key"):
        parse_config_text("[coverage]\ndwell = 1\n")
    # QA: both tables set it, to different values, and one was silently ignored
    with pytest.raises(ConfigError, match="vehicle.hit_target = 5 and coverage.hit_target = 20"):
        parse_config_text("[vehicle]\nhit_target = 5\n[coverage]\nhit_target = 20\n")
    same = parse_config_text("[vehicle]\nhit_target = 20\n[coverage]\nhit_target = 20\n")
    assert same.hit_target == 20


def test_grid_copies_and_views_keep_the_rule():
    rule = CoverageRule(min_dwell_s=0.0)
    grid = bin_steady(steady(0.2, 0.001), rule)
    assert grid.covered_mask()[2, 2]
    assert grid.copy().covered_mask()[2, 2]
    view = grid.view()
    assert view.covered_cells == 1 and view.confidence[2, 2] == 1.0
