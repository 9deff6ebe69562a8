"""The dashboard's "export VE" key: the table corrected so far, written next to the recordings.

With the vehicle's tune (``dynoai vehicle set-tune``) on the session's axes this is the
corrected ``.msq`` (the original file, new VE numbers) plus its JSON; without one it is
the change in percent per cell as CSV with axes, which a tuner can apply by hand or
with TunerStudio's "multiply by %". The CSV has a number exactly where the heatmap's
VE view shows a correction (changed, clipped, extrapolated; "0.00" = confident and on
target) and an empty field where the correction changes nothing (no hits, not yet
confident, locked): QA read "0.00" in cells the hits view showed empty, where it meant
"no data" and "no change needed" alike. Runs on the UI thread: the files are a few kB.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.coverage.view import GridView
from core.tune import Table
from core.tune.kept import kept_tune
from core.tune.paste import table_text
from core.ve.live import grid_axes, live_result, live_table, same_axes
from core.ve.settings import VeSettings
from dynoai_tui.tui.paths import toast_path


def export_live_ve(
    grid: GridView, config: Any, store: Any, vehicle: str, folder: Path, now: float
) -> str:
    """Write the export files; returns the message for the tuner (raises OSError/ValueError)."""
    settings = getattr(config, "ve", None) or VeSettings()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    stem = f"ve-{vehicle or 'session'}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    tune = kept_tune(store.data_dir, vehicle) if store is not None and vehicle else None
    if tune is not None and same_axes(tune.axes, grid_axes(grid)):
        name = tune.names.get("ve")
        digits = tune.digits.get(name) if name else None
        result = live_result(grid, tune, settings, 1 if digits is None else digits)
        msq = folder / f"{stem}.msq"
        msq.write_bytes(result.msq())
        (folder / f"{stem}.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
        s = result.tables["ve"].summary()
        return (
            f"VE exported: {s['changed']} cells changed, max {s['max_abs_change_pct']:.1f} %\n"
            f"{toast_path(msq)}"
        )
    live = live_table(grid, settings)
    path = folder / f"{stem}-change-pct.csv"
    changed = (live.reason == "changed") | (live.reason == "clipped")
    applied = np.where(changed | live.extrapolated, live.change_pct, np.nan)
    path.write_text(table_text(Table(live.axes, live.change_pct), applied, decimals=2))
    if store is None or not vehicle:
        # the bare demo has no vehicle to keep a tune for (QA: the toast said "no tune
        # kept for this vehicle: dynoai vehicle set-tune" with no vehicle at all)
        why = "no vehicle: run with --vehicle NAME and keep its tune for an .msq"
    elif tune is None:
        why = f"no tune kept for {vehicle}: dynoai vehicle set-tune {vehicle} FILE"
    else:
        why = f"{vehicle}'s tune has other axes: dynoai vehicle set-tune {vehicle} FILE"
    cells = f"{int(changed.sum())} cells"
    if live.extrapolated.any():
        cells += f", {int(live.extrapolated.sum())} extrapolated"
    return f"VE change % exported ({cells}; {why})\n{toast_path(path)}"


__all__ = ["export_live_ve"]
