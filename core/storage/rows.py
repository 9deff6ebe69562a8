"""How one run row is encoded and checked: ``.npz`` arrays, JSON axes and stats.

Decision: arrays are stored as ``.npz`` bytes and read back with
``allow_pickle=False``, so nothing in the file can run code. A row that does not
decode (arrays, axes, stats, or a grid that does not fit its axes) raises one
:class:`StoreError` naming the run; the store notes it as damaged and skips that
run, so damage stays local.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.coverage.axes import TableAxes
from core.coverage.grid import CoverageGrid, GridError
from core.storage.errors import StoreError

RUN_COLUMNS = "run_id, log_path, started_at, duration_s, stats_json, axes_json, arrays, final"
"""The columns of a run row, in the order :func:`decode_run` expects."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run of a vehicle as listed by :meth:`core.store.VehicleStore.list_runs`."""

    run_id: str
    log_path: str | None
    started_at: float | None
    duration_s: float | None
    stats: dict[str, Any]
    axes: TableAxes
    hits_total: int
    final: bool
    """False while the run is only checkpointed (still running, or crashed)."""


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buf.getvalue()


def decode_arrays(blob: bytes, what: str) -> dict[str, np.ndarray]:
    if not isinstance(blob, bytes):
        raise StoreError(f"{what}: stored coverage arrays are not a blob")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise StoreError(f"{what}: stored coverage arrays are unreadable ({exc})") from None


def parse_stats(stats_json: object, what: str) -> dict[str, Any]:
    try:
        stats = json.loads(stats_json) if isinstance(stats_json, str) else None
    except json.JSONDecodeError as exc:
        raise StoreError(f"{what}: stored run stats are unreadable ({exc})") from None
    if not isinstance(stats, dict):
        raise StoreError(f"{what}: stored run stats are not a table")
    return stats


def parse_axes(axes_json: str, run_id: str) -> TableAxes:
    try:
        return TableAxes.from_dict(json.loads(axes_json))
    except (json.JSONDecodeError, ValueError) as exc:
        raise StoreError(f"run {run_id!r}: stored axes are unreadable ({exc})") from None


def hits_total(arrays: Mapping[str, np.ndarray]) -> int:
    return int(np.asarray(arrays.get("hits", 0)).sum())


def decode_run(name: str, row: tuple[Any, ...]) -> tuple[RunInfo, dict[str, np.ndarray]]:
    """A run row (:data:`RUN_COLUMNS`) decoded and checked against its axes.

    Raises:
        StoreError, GridError, ValueError, TypeError: the row does not decode.
    """
    run_id, log_path, started, duration, stats_json, axes_json, blob, final = row
    what = f"run {run_id!r} of {name!r}"
    arrays = decode_arrays(blob, what)
    info = RunInfo(
        str(run_id), log_path, started, duration, parse_stats(stats_json, what),
        parse_axes(axes_json, str(run_id)), hits_total(arrays), bool(final),
    )  # fmt: skip
    CoverageGrid.from_arrays(info.axes, arrays, 1)
    return info, arrays


ROW_ERRORS = (StoreError, GridError, ValueError, TypeError)
"""What :func:`decode_run` raises for a damaged row."""
