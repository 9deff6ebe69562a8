"""Deterministic snapshots and a scripted session for the dashboard tests.

The dashboard renders only from ``Snapshot`` objects, so these tests publish
real Snapshots built from numpy arrays (same types the engine publishes) through
a small session object that records the commands the keys send.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.coverage.view import GridView
from core.plan.types import PlanView, Target
from core.snapshot import History, RecordingInfo, Snapshot, SourceInfo
from core.source import SourceState

RPM_AXIS = np.linspace(750.0, 7000.0, 16)
MAP_AXIS = np.linspace(20.0, 105.0, 16)


def grid_view(hits: np.ndarray, *, hit_target: int = 10, afr: float = 13.2) -> GridView:
    hits = np.asarray(hits, dtype=np.int64)
    has = hits > 0
    afr_mean = np.where(has, afr, np.nan)
    err = np.where(has, (afr / 13.0 - 1.0) * 100.0, np.nan)
    covered = int((hits >= hit_target).sum())
    return GridView(
        rpm_axis=RPM_AXIS,
        map_axis=MAP_AXIS,
        hits=hits,
        weight=hits.astype(np.float64),
        dwell_s=hits * 0.01,
        afr_mean=afr_mean,
        lambda_mean=afr_mean / 14.7,
        afr_error_pct=err,
        knock_events=np.zeros_like(hits),
        hit_target=hit_target,
        covered_pct=100.0 * covered / hits.size,
        covered_cells=covered,
        confidence=np.minimum(hits / hit_target, 1.0),
    )


def cell_of(rpm: float, map_kpa: float) -> tuple[int, int] | None:
    if not (math.isfinite(rpm) and math.isfinite(map_kpa)):
        return None
    return int(np.abs(MAP_AXIS - map_kpa).argmin()), int(np.abs(RPM_AXIS - rpm).argmin())


def targets_for(
    hits: np.ndarray, cells: list[tuple[int, int]], hit_target: int = 10
) -> tuple[Target, ...]:
    return tuple(
        Target(r, c, float(RPM_AXIS[c]), float(MAP_AXIS[r]), 1, int(hit_target - hits[r, c]))
        for r, c in cells
        if hits[r, c] < hit_target
    )


def snapshot(
    seq: int = 1,
    *,
    values: dict[str, float] | None = None,
    hits: np.ndarray | None = None,
    plan: PlanView | None = None,
    recording: RecordingInfo | None = None,
    state: SourceState = SourceState.CONNECTED,
    elapsed_s: float = 12.0,
) -> Snapshot:
    vals = {
        "rpm": 3000.0,
        "map_kpa": 60.0,
        "tps_pct": 35.0,
        "afr": 13.1,
        "afr_target": 13.0,
        "lambda": 13.1 / 14.7,
        "knock_count": 0.0,
        "iat_c": 31.0,
        "clt_c": 88.0,
    }
    vals.update(values or {})
    hits = np.zeros((16, 16), dtype=np.int64) if hits is None else hits
    t = np.linspace(-30.0, 0.0, 300)
    history = History(
        t, 3000.0 + 1000.0 * np.sin(t / 3), 13.0 + 0.5 * np.sin(t), np.full(300, 13.0)
    )
    return Snapshot(
        seq=seq,
        elapsed_s=elapsed_s,
        now_t=100.0,
        values=vals,
        sources=(SourceInfo("sim", "sim:", state, "", 1000.0, 12000),),
        grid=grid_view(hits),
        current_cell=cell_of(vals["rpm"], vals["map_kpa"]),
        samples_total=12000,
        samples_binned=11000,
        rejects={},
        history=history,
        plan=plan or PlanView(),
        recording=recording,
        vehicle="demo",
        pulls_done=1,
        pulls_max=8,
    )


class ScriptedSession:
    """Publishes the snapshots a test sets; records what the dashboard asks of it."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap
        self.marks: list[tuple[str, str]] = []
        self.recording_path: Path | None = None
        self.replay: Any = None
        self.constraints: Any = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snap

    def publish(self, snap: Snapshot) -> None:
        self._snap = replace(snap, seq=self._snap.seq + 1)

    @property
    def recording(self) -> bool:
        return self.recording_path is not None

    def start_recording(self, path: str | Path) -> None:
        self.recording_path = Path(path)
        self.publish(replace(self._snap, recording=RecordingInfo(str(path), 0, 0.0)))

    def stop_recording(self) -> None:
        self.recording_path = None
        self.publish(replace(self._snap, recording=None))

    def mark(self, kind: str, text: str = "") -> None:
        self.marks.append((kind, text))

    def set_constraints(self, constraints: Any) -> None:
        self.constraints = constraints


def sync(fn: Any) -> Any:
    """Run an async test body with asyncio.run (the project has no async pytest plugin)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
