"""Seed a new vehicle's planner calibration with fleet priors (``--priors DIR``).

A vehicle the store has never learned anything about starts from the fleet's
fill rates, lead times, sample rate, WOT MAP and never-reached cells for its model
(from its session record), instead of the generic prior (fill rate 1, 50 rows/s,
97 kPa at WOT). A vehicle with its own learned fits keeps them: its history beats
the fleet's (seeded fits have ``tests == 0`` until the vehicle's own first test). The priors weigh at most ``PRIOR_MAX_HITS`` hits per test type, and the
usual forgetting fades them as the vehicle's own tests come in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def seed_calibration(store: Any, vehicle: str, location: str | Path) -> str:
    """Apply fleet priors to ``vehicle`` if it has learned nothing yet; returns what was done."""
    from core.fleet import queries as q
    from core.fleet.records_store import get_record

    current = store.get_calibration(vehicle) if store.has_vehicle(vehicle) else None
    if current is not None and any(fit.tests > 0 for fit in current.fits.values()):
        return f"vehicle {vehicle} has its own learned fill rates; fleet priors not applied"
    record = get_record(store, vehicle) if store.has_vehicle(vehicle) else None
    model = record.build.model_key() if record is not None else None
    db = q.connect(location)
    priors = q.priors(db, model)
    if not priors["fits"]:
        return f"fleet dataset {location} has no tests to learn from; planning without priors"
    store.set_calibration(vehicle, q.calibration_from_priors(priors))
    scope = f"model {priors['model']!r}" if priors["model"] else "the whole fleet"
    why = "" if model is None else ("" if priors["model"] else f" (no sessions of {model!r})")
    if record is None:
        why = f" (vehicle {vehicle} has no session record: dynoai vehicle edit {vehicle})"
    rates = ", ".join(
        f"{k} {f['actual'] / f['model']:.2f}" for k, f in sorted(priors["fits"].items())
    )
    return (
        f"fleet priors from {scope}{why}: {priors['sessions']} session(s) of "
        f"{priors['vehicles']} vehicle(s); fill rates {rates}"
    )
