"""Real logs written by other tools, under licences that allow redistribution.

Each file in tests/data/real/ was written by the tool named in its test (not by
us); its origin, commit and licence are in tests/data/README.md. The expected
values are read from the file's own raw text (quoted in each test), so the
tests check that the importer turns what the tool wrote into the right clock,
channels and units, not that it agrees with itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.formats import open_log

REAL = Path(__file__).parent / "data" / "real"


def _conv(log: object) -> dict[str, str]:
    return {m.canonical: m.conversion for m in log.summary.mapped}  # type: ignore[attr-defined]


def _orig(log: object) -> dict[str, str]:
    return {m.canonical: m.original for m in log.summary.mapped}  # type: ignore[attr-defined]


def test_torque_pro_tracklog() -> None:
    """Torque Pro trackLog export (iPzard/torque-pro-assistant, MIT): two drives.

    Device Time runs 28-Oct-2024 13:50:51.185 .. 15:46:46.432 with a pause of
    13:50:53.539 -> 15:46:36.640 between the two; '-' marks a PID not read.
    """
    log = open_log(REAL / "torque_pro_trackLog.csv")
    s = log.summary
    assert s.format_name == "Torque Pro CSV"
    assert s.rows == 30
    assert "Device Time" in s.clock
    # 15:46:46.432 - 13:50:51.185, from the file's own Device Time column
    assert s.duration_s == pytest.approx(6955.247, abs=1e-3)
    assert s.longest_gap_s == pytest.approx(6943.101, abs=1e-3)
    assert np.all(np.diff(log.t_s) > 0)
    c = log.columns
    # "Engine RPM(rpm)": 777 in the first row, 3118 the highest (15:46:37.696)
    assert c["rpm"][0] == pytest.approx(777.0)
    assert np.nanmax(c["rpm"]) == pytest.approx(3118.0)
    # "Engine Coolant Temperature(°F)": 195.8 degF = 91.0 degC
    assert c["clt_c"][0] == pytest.approx(91.0)
    assert _conv(log)["clt_c"] == "degF -> degC"
    # "Relative Throttle Position(%)" 4.31 -> 0.39 %
    assert c["tps_pct"][0] == pytest.approx(4.31)
    assert c["tps_pct"][-1] == pytest.approx(0.39)
    # "Air Fuel Ratio(Commanded)(:1)" is the ECU's target, never the measured
    # mixture; "Commanded Equivalence Ratio(lambda)" is the lambda target.
    assert _orig(log)["afr_target"] == "Air Fuel Ratio(Commanded)"
    assert _orig(log).get("afr") != "Air Fuel Ratio(Commanded)"
    assert _orig(log).get("lambda") != "Air Fuel Ratio(Commanded)"
    assert c["afr_target"][-1] == pytest.approx(14.08)
    assert c["lambda_target"][-1] == pytest.approx(1.0)
    # "Air Fuel Ratio(Measured)(:1)" is '-' in every row: no wideband reading
    assert np.all(np.isnan(c.get("lambda", np.array([np.nan]))))
