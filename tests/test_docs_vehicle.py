"""docs/vehicle.md: every example parses, and every key the code accepts is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from core.alarms import AlarmLimits
from core.coverage.filters import FilterLimits
from core.plan.candidates import Constraints
from core.vehicle import parse_config_text

DOC = (Path(__file__).parent.parent / "docs" / "vehicle.md").read_text(encoding="utf-8")


def test_examples_parse():
    blocks = re.findall(r"```toml\n(.*?)```", DOC, flags=re.S)
    assert len(blocks) == 2
    vtwin, car = (parse_config_text(b, source="docs/vehicle.md") for b in blocks)
    assert vtwin.kind == "vtwin" and vtwin.alarms.egt_c == 870 and vtwin.constraints.max_rpm == 5800
    assert car.kind == "car" and car.stoich == 9.8 and "egt" in car.alarms.bell


def test_every_key_is_documented():
    keys = (
        [f.name for f in fields(FilterLimits)]
        + [f.name for f in fields(Constraints)]
        + [f.name for f in fields(AlarmLimits)]
        + ["name", "kind", "stoich", "lambda_delay_ms", "hit_target", "rpm", "map_kpa",
           "priority", "rpm_min", "rpm_max", "map_min_kpa", "map_max_kpa", "min_dwell_s",
           "max_lambda_se_pct"]
    )  # fmt: skip
    for key in keys:
        assert f"`{key}`" in DOC, key
    for table in ("[vehicle]", "[coverage]", "[axes]", "[filters]", "[constraints]", "[[regions]]",
                  "[staleness]", "[alarms]"):  # fmt: skip
        assert f"`{table}`" in DOC, table
