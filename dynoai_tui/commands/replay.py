"""``dynoai replay``: a recorded or imported log through the same engine as live data."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from core.coverage.export import grid_to_json
from core.record import LogHeader
from core.record.replay import ReplaySource
from core.session import Session
from core.snapshot import Snapshot
from core.source import SourceError, SourceURI
from core.vehicle import VehicleConfig
from dynoai_tui.commands.common import (
    EXIT_BAD_INPUT,
    CommandError,
    add_vehicle_options,
    adopt_kind,
    check_output_path,
    exit_code_after,
    load_vehicle,
    make_tracker,
    open_store,
    report_store_damage,
    run_identity,
    warning_line,
    with_dyno_sheet,
    write_output_file,
)
from dynoai_tui.commands.headless import (
    as_stored,
    heatmap_from,
    print_summary,
    run_headless,
    run_unless_stopped,
    summary_text,
)
from dynoai_tui.commands.statusline import add_status_options

NAME = "replay"
HELP = "replay a .dynolog (or an MLG / MSL / CSV log) with coverage and plan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a .dynolog recording or a log another tool wrote")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--speed", type=float, metavar="X", help="playback speed (default 1, headless: max)"
    )
    speed.add_argument("--max-speed", action="store_true", help="as fast as possible")
    parser.add_argument(
        "--headless", action="store_true", help="no TUI: status on stderr, summary on stdout"
    )
    parser.add_argument(
        "--map", metavar="CANON=NAME,...", help="CSV column mapping, e.g. rpm=Engine Speed"
    )
    parser.add_argument(
        "--time-unit",
        choices=("ms", "s"),
        help="unit of an imported log's time column when the log does not say",
    )
    parser.add_argument(
        "--coverage-json", metavar="FILE", help="also write the final coverage JSON here"
    )
    add_status_options(parser)
    add_vehicle_options(parser)


def config_for_log(header: LogHeader, cfg: VehicleConfig, *, explicit: bool) -> VehicleConfig:
    """Unless the user chose a config, bin the log the way it was recorded."""
    if explicit:
        return cfg
    from core.coverage.axes import TableAxes

    meta = header.metadata
    changes: dict[str, object] = {}
    kinds = {_sim_kind(str(info.get("uri", ""))) for info in header.sources.values()}
    if len(kinds) == 1 and None not in kinds:
        changes["kind"] = kinds.pop()  # a simulator's recording: its engine
    if header.axes:
        changes["axes"] = TableAxes.from_dict(header.axes)
    for key in ("lambda_delay_ms", "stoich"):
        if isinstance(meta.get(key), int | float):
            changes[key] = float(meta[key])
    if isinstance(meta.get("hit_target"), int):
        changes["hit_target"] = int(meta["hit_target"])
    return cfg.with_overrides(**changes)


def _sim_kind(uri: str) -> str | None:
    """The engine of a recorded ``sim:`` source URI (None: another source, or unknown)."""
    from core.vehicle import VEHICLE_KINDS
    from drivers.registry import parse_uri

    try:
        parsed = parse_uri(uri)
    except SourceError:
        return None
    kind = parsed.path.strip("/") or "vtwin"
    return kind if parsed.scheme == "sim" and kind in VEHICLE_KINDS else None


def log_length_s(source: ReplaySource) -> float | None:
    """Data time from the log's first to its last sample (read once, for the replay header)."""
    from core.frames import Block
    from core.record.replay import RecordedLog

    first, last = math.inf, -math.inf
    try:
        log = RecordedLog(source.path, source.channel_map)
    except SourceError:
        return None
    try:
        for item in log.records():
            if isinstance(item, Block) and len(item):
                first = min(first, float(item.t[0]))
                last = max(last, float(item.t[-1]))
    finally:
        log.close()
    return last - first if last >= first else None


def build_session(
    args: argparse.Namespace, *, speed: float
) -> tuple[Session, ReplaySource, object]:
    path = Path(args.file).expanduser()
    params = {"speed": "max" if math.isinf(speed) else repr(speed)}
    if args.map:
        params["map"] = args.map
    if getattr(args, "time_unit", None):
        params["time_unit"] = args.time_unit
    uri = SourceURI(f"replay:{path}?{urlencode(params)}", "replay", str(path), params)
    try:
        source = ReplaySource(uri, "replay")
        source.open()
    except SourceError as exc:  # missing, corrupt or unknown file: bad input, not a device
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    store = open_store(args) if args.vehicle else None
    base = load_vehicle(args, store)
    explicit = bool(args.config) or bool(store is not None and store.get_config_toml(args.vehicle))
    assert source.log is not None
    header = source.log.header
    if source.log.is_dynolog and (args.map or getattr(args, "time_unit", None)):
        # a recording names its own channels and times: the options are for foreign logs
        given = " and ".join(
            o for o, v in (("--map", args.map), ("--time-unit", args.time_unit)) if v
        )
        warning_line(f"{args.file} is a DynoAI recording: {given} ignored (they map CSV logs)")
    cfg = config_for_log(header, base, explicit=explicit)
    if cfg.kind != base.kind:  # a simulator's recording: the vehicle keeps its engine
        cfg = adopt_kind(cfg, store, args.vehicle, cfg.kind)
    run_id, part_of, segment_id = run_identity(path, header.metadata)
    tracker = with_dyno_sheet(
        make_tracker(
            cfg,
            store,
            run_id=run_id,
            log_path=str(path.resolve()),
            part_of=part_of,
            segment_id=segment_id,
        ),  # fmt: skip
        cfg,
    )
    session = Session([source], config=cfg, tracker=tracker, run_id=run_id)
    return session, source, store


def end_plan(final: Snapshot, session: Session, store: Any, args: argparse.Namespace) -> Snapshot:
    """``final`` with the next test worked out on every simulated candidate.

    A replay read at full speed ends before the simulated candidates are (seconds of
    simulation the replay does not wait for), so its last plan was the kinematic
    planner's quick estimate. Once, at the end, the plan is made as ``dynoai plan
    --vehicle V`` makes it after this run: on what the store holds (this run, or the
    stored run it kept), from idle. Without ``--vehicle``: on the replayed coverage,
    with what the replay learned. A signal during it keeps the quick estimate.
    """
    from dynoai_tui.commands.plan import full_plan, stored_inputs

    tracker = session.tracker
    if store is not None and args.vehicle:
        from core.store import StoreError
        from core.vehicle import resolve_config

        try:  # the config `dynoai plan --vehicle V` resolves, as stored after this run
            cfg = resolve_config(
                config_file=args.config,
                stored_toml=store.get_config_toml(args.vehicle),
                vehicle=args.vehicle,
            )
            grid, calibration, constraints, _ = stored_inputs(store, cfg)
        except StoreError as exc:
            warning_line(f"vehicle {args.vehicle!r}: the next test is an estimate: {exc}")
            return final
    else:
        cfg, grid = session.config, session.grid
        calibration, constraints = tracker.calibration, tracker.constraints  # type: ignore[union-attr]
    view = run_unless_stopped(
        lambda: full_plan(cfg, grid, calibration, constraints),
        "dynoai: planning the next test (a few seconds; Ctrl-C: summary now)",
    )
    if view is None:
        return final
    # the checked predictions are this run's (the summary's "predicted" lines)
    return replace(final, plan=replace(view, errors_by_type=final.plan.errors_by_type))


def lean_rail_hint(file: str, source: ReplaySource, rejects: Mapping[str, int]) -> None:
    """Warn of a foreign log's "Lambda" column that holds AFR, as ``dynoai import`` does."""
    log = source.log
    if rejects.get("wideband_railed") and log is not None and (hint := log.lean_rail_hint):
        warning_line(f"{file}: lean rail: {hint}")


def run(args: argparse.Namespace) -> int:
    check_output_path(args.coverage_json, "--coverage-json")
    if args.speed is not None and not 0.01 <= args.speed <= 1000:
        raise CommandError(f"--speed {args.speed:g} is outside 0.01..1000 (or use --max-speed)")
    if args.max_speed:
        speed = math.inf
    elif args.speed is not None:
        speed = args.speed
    else:
        speed = math.inf if args.headless else 1.0
    session, source, store = build_session(args, speed=speed)
    # The source was opened to read the header (which picks the config); the session
    # opens it again from the start.
    source.close()
    if not args.headless:
        from dynoai_tui.tui.app import run_tui

        code = run_tui(
            session,
            store=store,
            vehicle=args.vehicle
            or (source.log.header.vehicle if source.log is not None else "")
            or session.config.name,
            replay=True,
            bell=not args.no_bell,
            replay_length_s=log_length_s(source),
            # the summary names the next test `replay --headless` names (QA: the TUI's
            # said "hold 1500 rpm" from where the replay stood, headless "hold 1000")
            next_test=lambda final: end_plan(final, session, store, args),
        )
        lean_rail_hint(args.file, source, session.snapshot.rejects)
        return code
    final, why = run_headless(
        session, duration_s=None, status_format=args.status_format, bell=not args.no_bell
    )
    print_summary(heatmap_from(session))
    final, kept = as_stored(final, session.tracker)
    stopped = "" if why == "end of data" else why  # the signal that stopped the replay
    if not stopped:  # a signal wants the summary now: it keeps the quick plan's test
        final = end_plan(final, session, store, args)
    warning = ""
    if source.log is not None:
        warning = source.log.damage_so_far if stopped else source.log.recovery_warning
    refused = getattr(session.tracker, "store_note", "")
    print_summary(
        summary_text(
            final,
            recording_path=None,
            # the vehicle line says the store kept its run; the note then says why the
            # replay was a part: the signal that stopped it, or a cut file's recovery
            # (the refusal's numbers are in the warning below)
            note=(refused if not kept else "") or stopped or warning or why,
            not_saved=session.not_saved,
            stored_as=args.vehicle,
            kept=kept,
        )  # fmt: skip
    )
    if warning:
        warning_line(f"{args.file}: {warning}")
    if refused:
        warning_line(f"{args.file}: {refused}")
    lean_rail_hint(args.file, source, final.rejects)
    learned = getattr(session.tracker, "learn_note", "")
    if learned and not refused:
        warning_line(f"{args.file}: {learned}")
    report_store_damage(store)
    if args.coverage_json:
        data = grid_to_json(session.grid, samples=final.samples_total, rejects=final.rejects)
        write_output_file(args.coverage_json, json.dumps(data, indent=1), "--coverage-json")
    return exit_code_after(session)
