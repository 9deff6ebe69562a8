"""A session with no config of its own plans for the engine the simulator runs.

``dynoai log --source 'sim:car?scenario=guided'`` had no --config and no vehicle, so the
vehicle was the default V-twin: the planner simulated V-twin holds, the simulated tuner
ran them on the car ("hold 1250 rpm: MAP 40 35 30 25" predicted 259 hits in the car's
25-kPa cell from the V-twin's model, 145 added) and the headless summary read
"idle_low_map: 26.7 % mean error".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dynoai_tui.commands.common import make_sources, with_source_kind
from dynoai_tui.commands.run import build_session


def _args(source: list[str], config: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(
        source=source, vehicle=None, config=config, data_dir=None, priors=None, record=None
    )


def test_the_dashboard_of_a_simulated_car_plans_for_the_car(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DYNOAI_CONFIG", raising=False)
    session, _ = build_session(_args(["sim:car?scenario=guided"]))
    assert session.config.kind == "car"
    assert session.tracker.inner.model.key.kind == "car"  # type: ignore[union-attr]
    session, _ = build_session(_args(["sim:"]))
    assert session.tracker.inner.model.key.kind == "vtwin"  # type: ignore[union-attr]


def test_a_config_keeps_its_own_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DYNOAI_CONFIG", raising=False)
    bike = tmp_path / "bike.toml"
    bike.write_text('[vehicle]\nname = "bike"\nkind = "vtwin"\n', encoding="utf-8")
    session, _ = build_session(_args(["sim:car?scenario=guided"], config=str(bike)))
    assert session.config.kind == "vtwin"  # the user's word, even against the simulator
    monkeypatch.setenv("DYNOAI_CONFIG", str(bike))
    session, _ = build_session(_args(["sim:car?scenario=guided"]))
    assert session.config.kind == "vtwin"


def test_sources_that_disagree_or_are_not_simulated_leave_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.vehicle import VehicleConfig

    monkeypatch.delenv("DYNOAI_CONFIG", raising=False)
    cfg = VehicleConfig()
    both = make_sources(["sim:car?seed=1", "sim:vtwin?seed=2"])
    assert with_source_kind(cfg, _args([]), None, both).kind == cfg.kind
    car = make_sources(["sim:car"])
    assert with_source_kind(cfg, _args([]), None, car).kind == "car"
    assert with_source_kind(cfg, _args([]), None, []).kind == cfg.kind


def test_a_named_vehicle_keeps_the_simulated_engine_for_the_next_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the planner's learned factors are per model: a car logged as the car and then
    # planned as the default V-twin would carry the car's factors onto the V-twin's model
    from core.store import VehicleStore
    from dynoai_tui.commands.common import load_vehicle

    monkeypatch.delenv("DYNOAI_CONFIG", raising=False)
    args = _args(["sim:car?scenario=guided"])
    args.vehicle, args.data_dir = "golf", str(tmp_path)
    session, store = build_session(args)
    assert session.config.kind == "car"
    later = argparse.Namespace(vehicle="golf", config=None, data_dir=str(tmp_path), priors=None)
    assert load_vehicle(later, VehicleStore(tmp_path)).kind == "car"  # as `plan` reads it
    assert load_vehicle(later, VehicleStore(tmp_path)).name == "golf"
    # a vehicle with a config of its own keeps it, whatever the simulator runs
    args.vehicle = "bike"
    VehicleStore(tmp_path).set_config_toml("bike", '[vehicle]\nkind = "vtwin"\n')
    session, _ = build_session(args)
    assert session.config.kind == "vtwin"


def test_a_simulators_recording_replays_as_its_engine(tmp_path: Path) -> None:
    # `dynoai replay car.dynolog --vehicle X` (recorded from sim:car?scenario=guided) with
    # no config planned the default V-twin; the header names the recorded source
    from core.record.format import LogHeader
    from core.store import VehicleStore
    from core.vehicle import VehicleConfig
    from dynoai_tui.commands.common import adopt_kind
    from dynoai_tui.commands.replay import config_for_log

    def header(*uris: str) -> LogHeader:
        return LogHeader(
            0.0, sources={f"s{i}": {"uri": u, "channels": {}} for i, u in enumerate(uris)}
        )

    base = VehicleConfig()
    assert config_for_log(header("sim:car?scenario=guided"), base, explicit=False).kind == "car"
    assert config_for_log(header("sim:car"), base, explicit=True).kind == "vtwin"
    for other in (("innovate:/dev/ttyUSB0",), ("sim:car", "sim:vtwin"), ("nonsense",), ()):
        assert config_for_log(header(*other), base, explicit=False).kind == "vtwin", other
    store = VehicleStore(tmp_path)
    assert adopt_kind(base, store, "golf", "car").kind == "car"
    assert store.get_config_toml("golf") == '[vehicle]\nkind = "car"\n'
    store.set_config_toml("bike", '[vehicle]\nkind = "vtwin"\n')
    adopt_kind(base, store, "bike", "car")
    assert store.get_config_toml("bike") == '[vehicle]\nkind = "vtwin"\n'  # its own, kept
