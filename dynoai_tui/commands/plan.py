"""``dynoai plan --vehicle V [--json]``: the next tests for a vehicle, ranked.

JSON (a documented contract for scripts, ``"format": "dynoai.plan/1"``):

* ``vehicle``, ``covered_pct``, ``runs``, ``stale_runs`` (runs on other axes, not counted).
* ``suggestions``: ranked list of objects with ``test_type``, ``description``,
  ``rpm_range`` [lo, hi], ``map_range`` [lo, hi] (kPa), ``minutes``, ``expected_gain``,
  ``efficiency`` (0..1), ``band`` (high / medium / low), ``priority`` (1..3) and
  ``cells`` ([map_index, rpm_index] pairs the test is expected to fill).
* ``filtered``: tests the constraints removed: ``test_type``, ``description``, ``reason``.
* ``targets``: live target cells: ``map_index``, ``rpm_index``, ``rpm``, ``map_kpa``,
  ``priority``, ``deficit``; the first suggestion's cells first, nearest to where it
  begins; ``instruction``: where to go from idle (the first target).
* ``prediction_error_pct``: how well the kinematic model fitted the detected tests, after the
  fact (null before any test); the checked-before-the-fact figures are the next key.
* ``prediction_errors_by_type``: ``test_type``, ``mean_error_pct``, ``tests``: suggestions
  checked against the test the tuner then ran (the prediction was made before the test).
* ``opening``: true when the vehicle has no runs (the opening plan); ``covered_pct`` counts
  trusted cells (hits, settled dwell and lambda standard error, see ``core.plan.value``).
* each suggestion also has ``expected_hits``: [map_index, rpm_index, hits] after the filters,
  and ``knock_cells``: [map_index, rpm_index] of the cells it loads where knock was seen (the
  text form marks such a test with a warning sign).
* ``constraints``: the constraints applied.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dynoai_tui.commands.common import (
    EXIT_OK,
    CommandError,
    add_vehicle_options,
    load_vehicle,
    open_store,
    report_store_damage,
    warning_line,
)

NAME = "plan"
HELP = "the next tests for a vehicle, ranked by expected coverage gain per minute"
FORMAT_TAG = "dynoai.plan/1"
IDLE_POINT = {"rpm": 950.0, "map_kpa": 35.0}
"""Operating point the printed instruction starts from (engine idling, before a session)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vehicle_options(parser, vehicle_required=True)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--top", type=int, default=10, help="suggestions shown in text (default 10)"
    )


def stored_inputs(store: Any, cfg: Any) -> tuple[Any, Any, Any, list[Any]]:
    """(coverage, calibration, constraints, runs) of vehicle ``cfg.name`` as stored.

    What the plan is made on; a vehicle the store does not know has no coverage yet.
    Raises ``StoreError``.
    """
    from core.coverage.grid import CoverageGrid
    from core.plan.learning import Calibration

    if not store.has_vehicle(cfg.name):
        return CoverageGrid(cfg.axes, cfg.hit_target), Calibration(), cfg.constraints, []
    constraints = store.get_constraints(cfg.name) or cfg.constraints
    grid = store.cumulative_grid(cfg.name, cfg.axes, cfg.hit_target, rule=cfg.coverage_rule)
    return grid, store.get_calibration(cfg.name), constraints, store.list_runs(cfg.name)


def full_plan(cfg: Any, grid: Any, calibration: Any, constraints: Any) -> Any:
    """The next session's plan: every simulated candidate, from idle, no pull done yet.

    ``dynoai plan`` prints it; ``dynoai replay --headless`` names its first test as the
    next one (``replay.end_plan``). A ``PlanView``.
    """
    from core.plan.simplan import plan_model
    from core.plan.testsim import grid_arrays, model_key
    from sim.testsim import SimCandidates

    return plan_model(
        grid_arrays(grid), grid.knock_events, SimCandidates(model_key(cfg, calibration)),
        cfg.regions, constraints, calibration, 0, cfg.coverage_rule, operating_point=IDLE_POINT,
    )  # fmt: skip


def build_plan(args: argparse.Namespace) -> dict[str, Any]:
    """The plan as the JSON-ready dict documented above."""
    from core.plan.testsim import grid_arrays
    from core.plan.value import confidence
    from core.store import StoreError

    store = open_store(args)
    try:
        if not store.has_vehicle(args.vehicle):
            _say_new_vehicle(store, args.vehicle)
        cfg = load_vehicle(args, store)
        grid, calibration, constraints, runs = stored_inputs(store, cfg)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    report_store_damage(store)
    rule = cfg.coverage_rule
    arrays = grid_arrays(grid)
    view = full_plan(cfg, grid, calibration, constraints)
    trusted = confidence(arrays, rule) >= 1.0
    return {
        "format": FORMAT_TAG,
        "vehicle": cfg.name,
        "opening": not runs,
        "covered_pct": round(100.0 * float(trusted.mean()), 2),
        "runs": len(runs),
        "stale_runs": sum(1 for r in runs if r.axes != cfg.axes),
        "constraints": constraints.to_mapping(),
        "suggestions": [
            {
                "test_type": s.test_type, "description": s.description,
                "rpm_range": list(s.rpm_range), "map_range": list(s.map_range),
                "minutes": s.minutes, "expected_gain": s.expected_gain,
                "efficiency": s.efficiency, "band": s.band, "priority": s.priority,
                "cells": [list(c) for c in s.cells],
                "expected_hits": [[r, c, h] for r, c, h in s.expected_hits],
                "knock_cells": [list(c) for c in s.knock_cells],
            }
            for s in view.suggestions
        ],
        "filtered": [
            {"test_type": f.test_type, "description": f.description, "reason": f.reason}
            for f in view.filtered
        ],
        "targets": [
            {"map_index": t.map_index, "rpm_index": t.rpm_index, "rpm": t.rpm,
             "map_kpa": t.map_kpa, "priority": t.priority, "deficit": t.deficit}
            for t in view.targets
        ],
        "instruction": view.instruction,
        "prediction_error_pct": (
            None if view.prediction_error_pct is None else round(view.prediction_error_pct, 1)
        ),
        "prediction_errors_by_type": [
            {"test_type": t, "mean_error_pct": round(e, 1), "tests": n}
            for t, e, n in calibration.checks_by_type()
        ],
    }  # fmt: skip


def _say_new_vehicle(store: Any, vehicle: str) -> None:
    """One stderr line: the name is not in the store (the opening plan of a new vehicle).

    A new name is how a new bike starts, so it is no error; but ``--vehicle fxbbb`` for
    fxbb silently planned an empty vehicle. The known names make a typo visible.
    """
    names = store.list_vehicles()
    known = ", ".join(names) or "none yet"
    warning_line(
        f"no vehicle named {vehicle!r} yet (known: {known}): the opening plan of a new "
        "vehicle; check the name if you meant one of those"
    )


def render_text(data: dict[str, Any], top: int) -> str:
    # the kinematic model's after-the-fact error stays in the JSON only: printed beside the
    # checked figures it read "151.3 %" next to "checked idle_low_map: 7.2 %", unexplained
    lines = [
        f"vehicle {data['vehicle']}: {data['covered_pct']:.1f} % covered over {data['runs']} run(s)"
    ]
    if not data["prediction_errors_by_type"]:
        lines.append(
            "predictions checked: none yet (each is checked against the test you then run)"
        )
    if data["opening"]:
        lines.insert(
            0,
            f"vehicle {data['vehicle']} has no runs yet: opening plan "
            "(idle / low-MAP work first, then the load columns; predictions from the simulator)",
        )
    for e in data["prediction_errors_by_type"]:
        lines.append(
            f"  predictions checked, {e['test_type']}: {e['mean_error_pct']:.1f} % mean error "
            f"over {e['tests']} test(s)"
        )
    if data["stale_runs"]:
        lines.append(
            f"{data['stale_runs']} run(s) on other axes are not counted "
            f"(dynoai coverage --vehicle {data['vehicle']} --rebuild)"
        )
    if not data["suggestions"]:
        lines.append(f"no test to suggest: {data['instruction'] or 'nothing left to gain'}")
    else:
        lines.append(" #  P  band    eff   gain   min  test")
        for i, s in enumerate(data["suggestions"][:top], 1):
            lines.append(
                f"{i:>2}  {s['priority']}  {s['band']:<6} {s['efficiency']:>4.2f} "
                f"{s['expected_gain']:>6.1f} {s['minutes']:>5.1f}  "
                f"{'⚠ knock seen there: ' if s['knock_cells'] else ''}{s['description']}"
            )
    if data["filtered"]:
        lines.append("not offered (a constraint, or too little gain for its time):")
        seen: set[tuple[str, str]] = set()
        for f in data["filtered"]:
            key = (f["test_type"], f["reason"])
            if key not in seen:
                seen.add(key)
                lines.append(f"  {f['description']}: {f['reason']}")
    if data["targets"]:
        # the first test's cells lead the targets; say where they end (QA read 2000/50
        # and 2500/50 after three 1000-rpm cells as part of "hold 1000 rpm")
        first = data["suggestions"][0] if data["suggestions"] else None
        of_first = {(r, c) for r, c, _ in first["expected_hits"]} if first else set()
        mine = [t for t in data["targets"] if (t["map_index"], t["rpm_index"]) in of_first]
        rest = [t for t in data["targets"] if t not in mine]

        def listed(targets: list[dict[str, Any]]) -> str:
            return ", ".join(f"{t['rpm']:.0f}/{t['map_kpa']:.0f}" for t in targets)

        cells = listed(mine) + " (test 1)" if mine else ""
        if rest:
            cells += ("; then " if cells else "") + listed(rest)
        lines.append(f"target cells (rpm/kPa): {cells}")
        lines.append(f"from idle: {data['instruction']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise CommandError(f"--top {args.top}: must be at least 1")
    data = build_plan(args)
    if args.json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        sys.stdout.write(render_text(data, args.top) + "\n")
    return EXIT_OK
