"""Snapshot tests: the dashboard (80 x 24 up to 160 x 48) and the pulls screen, deterministic.

The session runs a seeded simulator at ``speed=max`` (sample times are sim time)
with a frozen clock, through the real engine and tracker, so every figure on
screen (coverage, plan, elapsed time, rates) is the same on every run.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.dynosheet import SheetTap
from core.session import Session
from core.vehicle import VehicleConfig
from drivers.registry import create_sources
from dynoai_tui.commands.common import make_tracker, with_dyno_sheet
from dynoai_tui.tui.app import DynoApp

SIM = "sim:vtwin?scenario=pulls&seed=7&rate=100&speed=max&duration=90"


def frozen_session() -> Session:
    config = VehicleConfig()
    inner = make_tracker(config, None, run_id="snapshot-test", log_path=None)
    inner.warm_now()  # simulated candidates from the first plan: deterministic
    tracker = with_dyno_sheet(inner, config)
    session = Session(create_sources([SIM]), config=config, tracker=tracker, clock=lambda: 1000.0)
    session.run_to_end()
    return session


@pytest.fixture(scope="module")
def session() -> Session:
    return frozen_session()


def app_for(session: Session) -> DynoApp:
    return DynoApp(session, clock=lambda: 1_700_000_000.0)


def test_dashboard_100x30(snap_compare: Any, session: Session) -> None:
    assert snap_compare(app_for(session), terminal_size=(100, 30))


def test_dashboard_160x48(snap_compare: Any, session: Session) -> None:
    assert snap_compare(app_for(session), terminal_size=(160, 48))


def test_dashboard_afr_error_view_with_regions_160x48(snap_compare: Any, session: Session) -> None:
    assert snap_compare(app_for(session), terminal_size=(160, 48), press=["v", "v", "o"])


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard_small_and_medium(snap_compare: Any, session: Session, size) -> None:
    assert snap_compare(app_for(session), terminal_size=size)


def test_dashboard_mean_afr_view_120x40(snap_compare: Any, session: Session) -> None:
    """The mean-AFR numbers keep a blank column between cells (was 13.113.213.4)."""
    assert snap_compare(app_for(session), terminal_size=(120, 40), press=["v"])


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)])
def test_pulls_screen(snap_compare: Any, session: Session, size) -> None:
    assert isinstance(session.tracker, SheetTap) and len(session.tracker.sheet.pulls) >= 1
    assert snap_compare(app_for(session), terminal_size=size, press=["g"])
