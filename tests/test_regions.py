import numpy as np
import pytest

from core.config import ConfigError
from core.coverage.axes import TableAxes
from core.coverage.regions import (
    DEFAULT_REGIONS,
    Region,
    priority_map,
    ranked_gaps,
    region_coverage,
    regions_from_config,
)

AXES = TableAxes.default()


def test_default_priorities_follow_the_brief():
    prio = priority_map(AXES, DEFAULT_REGIONS)
    r = list(AXES.rpm)
    m = list(AXES.map_kpa)
    assert prio[m.index(85), r.index(3000)] == 1  # high-MAP midrange
    assert prio[m.index(60), r.index(2000)] == 1  # tip-in
    assert prio[m.index(30), r.index(1000)] == 2  # idle / low MAP
    assert prio[m.index(30), r.index(6000)] == 3  # the rest
    # WOT / high-load rows are priority 1 across the whole rpm range (they break engines)
    assert prio[m.index(95), r.index(6500)] == 1
    assert prio[m.index(105), r.index(3000)] == 1
    assert prio[m.index(95), r.index(1500)] == 3  # below where a pull starts


def test_knock_raises_priority_one_level():
    knock = np.zeros(AXES.shape, dtype=np.int64)
    knock[0, 15] = 2  # a priority-3 cell
    knock[2, 1] = 1  # a priority-2 cell
    prio = priority_map(AXES, DEFAULT_REGIONS, knock)
    assert prio[0, 15] == 2 and prio[2, 1] == 1
    with pytest.raises(ValueError, match="shape"):
        priority_map(AXES, DEFAULT_REGIONS, np.zeros((3, 3)))


def test_region_narrower_than_a_cell_still_gets_one():
    region = Region("narrow", 1, 3100.0, 3200.0, 86.0, 87.0)
    assert region.mask(AXES).sum() == 1


def test_from_mapping_names_the_bad_key():
    with pytest.raises(ConfigError, match=r"regions\.x\.rpm_max"):
        Region.from_mapping({"name": "x", "rpm_min": 1, "map_min_kpa": 1, "map_max_kpa": 2})
    with pytest.raises(ConfigError, match=r"regions\.x\.priority"):
        Region.from_mapping(
            {
                "name": "x",
                "priority": 7,
                "rpm_min": 1,
                "rpm_max": 2,
                "map_min_kpa": 1,
                "map_max_kpa": 2,
            }
        )
    with pytest.raises(ConfigError, match="rpm_min"):
        Region.from_mapping(
            {"name": "x", "rpm_min": "a lot", "rpm_max": 2, "map_min_kpa": 1, "map_max_kpa": 2}
        )
    with pytest.raises(ConfigError, match="must be above"):
        Region("x", 1, 3000, 2000, 10, 20)
    regions = regions_from_config([r.to_mapping() for r in DEFAULT_REGIONS])
    assert regions == DEFAULT_REGIONS


def test_region_coverage_and_ranked_gaps():
    hits = np.zeros(AXES.shape, dtype=np.int64)
    prio = priority_map(AXES, DEFAULT_REGIONS)
    hits[prio == 2] = 10
    hits[0, 15] = 4
    cov = {c.name: c for c in region_coverage(AXES, DEFAULT_REGIONS, hits >= 10)}
    assert cov["idle_low_map"].covered_pct == 100.0
    assert cov["tip_in"].covered == 0
    gaps = ranked_gaps(AXES, hits, prio, 10)
    assert gaps[0].priority == 1
    assert all(a.priority <= b.priority for a, b in zip(gaps, gaps[1:], strict=False))
    p3 = [g for g in gaps if g.priority == 3]
    assert p3[-1].deficit == 6 and (p3[-1].map_index, p3[-1].rpm_index) == (0, 15)
