"""A vehicle's kept tune: byte-exact copy beside the store, [axes] rewritten, odd names safe."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.coverage.axes import TableAxes
from core.tune import read_tune
from core.tune.kept import keep_tune, kept_tune, tune_dir, with_axes_toml
from core.vehicle import parse_config_text

DATA = Path(__file__).parent / "data" / "tunes"

TOML = """[vehicle]
kind = "vtwin"

[axes]
rpm = [1000, 2000]
map_kpa = [30, 100]

[[regions]]
name = "cruise"
priority = 2
rpm_min = 2000
rpm_max = 3500
map_min_kpa = 40
map_max_kpa = 60

[filters]
min_clt_c = 55
"""


def test_axes_replaced_everything_else_kept() -> None:
    axes = TableAxes(np.array([800.0, 1500.0, 2500.0]), np.array([30.0, 70.0]))
    text = with_axes_toml(TOML, axes)
    cfg = parse_config_text(text)
    assert cfg.axes == axes
    assert cfg.kind == "vtwin" and cfg.filters.min_clt_c == 55
    assert [r.name for r in cfg.regions] == ["cruise"]
    assert text.count("[axes]") == 1
    assert parse_config_text(with_axes_toml(None, axes)).axes == axes


def test_keep_is_a_byte_copy_and_odd_names_stay_inside(tmp_path: Path) -> None:
    src = DATA / "speeduino.msq"
    tune, dest = keep_tune(tmp_path, "bike", src)
    assert dest.read_bytes() == src.read_bytes()
    assert kept_tune(tmp_path, "bike").ve.values.tolist() == tune.ve.values.tolist()  # type: ignore[union-attr]
    # A second set-tune replaces the first.
    keep_tune(tmp_path, "bike", DATA / "rusefi.msq")
    assert read_tune(tune_dir(tmp_path, "bike") / "base.msq").names["family"] == "rusEFI"
    odd = tune_dir(tmp_path, "../../etc")
    assert odd.parent == tmp_path / "tunes" and odd.name.startswith("v-")
    assert kept_tune(tmp_path, "nobody") is None
