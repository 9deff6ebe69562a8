"""VE correction against the simulator's truth: two 20-minute sessions on a base tune that is off.

The simulated V-twin's ECU runs its base tune (VE up to ~10-12 % off the true VE in broad
hills and valleys, front and rear tables identical as in a kit map, while the cylinders
really differ by 2-6 %). Session 1 (20 simulated minutes) is binned through the
pipeline on the tune's axes and corrected (``core.ve.evidence.correct_recordings``);
session 2 runs the same routine on the *corrected* tune and corrects again.

Routine: the guided operator of issue 11 is not on main yet, so this is the strong fixed
routine a tuner runs on a load-control (eddy) dyno for VE work: idle, then steady-state
holds at every rpm breakpoint from idle to below redline, stepping MAP through every
breakpoint the engine can hold there, low rpm to high, a cool-down every three holds.

Measured per table (front and rear), on cells that are confident and not locked:
share within 2 % of the true VE after session 1 (target >= 90 %), share of
priority-1 and -2 cells that are confident (target >= 80 %; also shown for the cells the
engine can physically hold on an eddy dyno), share within 1 % after session 2 (target
>= 90 %). For comparison: the base tune's share within 2 %, and an ungated correction
(every cell with any kept sample changed, no confidence threshold).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.coverage.regions import DEFAULT_REGIONS, priority_map  # noqa: E402
from core.tune import Tune  # noqa: E402
from core.ve import VeSettings  # noqa: E402
from core.ve.evidence import correct_recordings, declared_of  # noqa: E402
from core.ve.result import VeResult  # noqa: E402
from core.vehicle import VehicleConfig  # noqa: E402
from sim import scenarios as sc  # noqa: E402
from sim.ecu import base_tune, true_ve_tables  # noqa: E402
from sim.simulation import sim_channel_units  # noqa: E402
from sim.source import run_segments  # noqa: E402
from sim.vehicles import Vehicle, get_vehicle  # noqa: E402

SESSION_S = 20 * 60.0
HOLD_S = 3.0
TARGETS = {"within2": 90.0, "p12_confident": 80.0, "within1_second": 90.0}


def routine(v: Vehicle, tune: Tune, budget_s: float = SESSION_S) -> list[sc.Segment]:
    """The fixed VE routine on ``tune``'s breakpoints, trimmed to fit ``budget_s``."""
    axes = tune.axes
    hold_s = HOLD_S
    while True:
        segs: list[sc.Segment] = [sc.Idle(30.0)]
        rpms = [float(r) for r in axes.rpm if v.idle_rpm < r <= v.redline_rpm - 300.0]
        for n, rpm in enumerate(rpms):
            lowest = sc.min_hold_map_kpa(v, rpm)
            steps = tuple(float(m) for m in axes.map_kpa if lowest <= m <= 100.0)
            if not steps:
                continue
            settle = None if n == 0 or segs[-1].kind == "cool_down" else 3.0
            segs.append(sc.SteadyHold(rpm, steps, hold_s=hold_s, settle_s=settle))
            if n % 3 == 2:
                segs.append(sc.CoolDown(20.0))
        total = sum(s.duration_s(v) for s in segs)
        if total <= budget_s or hold_s <= 1.5:
            break
        hold_s -= 0.25
    if total < budget_s:
        segs.append(sc.Idle(budget_s - total))
    return segs


def session(v: Vehicle, tune: Tune, seed: int, settings: VeSettings) -> VeResult:
    blocks = list(run_segments(routine(v, tune), v.name, seed=seed, tune=tune, block_s=1.0))
    twin = "lambda_front" in blocks[0].columns
    config = VehicleConfig(kind=v.name, axes=tune.axes)
    recording = (declared_of(sim_channel_units(twin)), blocks)
    return correct_recordings(tune, [recording], config, settings, runs=(f"sim seed {seed}",))


def _share(mask: np.ndarray, of: np.ndarray) -> float:
    n = int(np.count_nonzero(of))
    return 100.0 * int(np.count_nonzero(mask & of)) / n if n else float("nan")


def reachable_mask(v: Vehicle, tune: Tune) -> np.ndarray:
    """Cells an eddy dyno can hold in steady state (MAP from the lowest holdable to WOT)."""
    axes = tune.axes
    out = np.zeros(axes.shape, dtype=bool)
    for r, rpm in enumerate(axes.rpm):
        if rpm < v.idle_rpm - 125.0 or rpm > v.redline_rpm:
            continue
        lowest = sc.min_hold_map_kpa(v, float(rpm)) if rpm > v.idle_rpm + 125.0 else 30.0
        out[:, r] = (axes.map_kpa >= lowest - 2.5) & (axes.map_kpa <= 100.0)
    return out


def main() -> int:
    v = get_vehicle("vtwin")
    started = time.monotonic()
    base = base_tune(v, seed=11)
    truth = true_ve_tables(v, base.axes)
    settings = VeSettings()
    first = session(v, base, seed=21, settings=settings)
    second = session(v, first.corrected_tune(), seed=22, settings=settings)
    ungated = VeSettings(min_confidence=0.0)
    prio = priority_map(base.axes, DEFAULT_REGIONS)
    p12 = prio <= 2
    reach = reachable_mask(v, base)

    rows = []
    for key, label in (("ve", "front"), ("ve_rear", "rear")):
        t1, t2 = first.tables[key], second.tables[key]
        true = truth[key].values
        conf1 = (t1.confidence >= settings.min_confidence) & ~t1.locked
        conf2 = (t2.confidence >= settings.min_confidence) & ~t2.locked
        err_base = np.abs(t1.ve_base / true - 1.0)
        err1 = np.abs(t1.ve_new / true - 1.0)
        err2 = np.abs(t2.ve_new / true - 1.0)
        # Ungated: every cell with a kept sample takes its raw ratio (within authority).
        ratio = np.where(np.isfinite(t1.ratio), np.clip(t1.ratio, 0.85, 1.15), 1.0)
        err_ungated = np.abs(t1.ve_base * ratio / true - 1.0)
        any_data = np.isfinite(t1.ratio) & ~t1.locked
        rows.append(
            {
                "table": label,
                "confident_cells": int(conf1.sum()),
                "base_within2": _share(err_base <= 0.02, conf1),
                "within2": _share(err1 <= 0.02, conf1),
                "ungated_within2": _share(err_ungated <= 0.02, any_data),
                "ungated_cells": int(any_data.sum()),
                "p12_confident": _share(conf1, p12),
                "p12_reachable_confident": _share(conf1, p12 & reach),
                "within1_second": _share(err2 <= 0.01, conf2),
                "max_err1": float(err1[conf1].max() * 100.0) if conf1.any() else float("nan"),
                "max_err2": float(err2[conf2].max() * 100.0) if conf2.any() else float("nan"),
            }
        )
    _ = ungated
    spent = time.monotonic() - started
    print("bench_ve: V-twin, fixed VE routine (guided operator not on main), 2 x 20 simulated min")
    print(
        f"base tune: seed 11, up to {np.max(np.abs(base.ve.values / truth['ve'].values - 1)) * 100:.1f} % off the true front VE"
    )
    print(f"{'measure':44s} {'front':>8s} {'rear':>8s} {'target':>8s}")
    lines = [
        ("confident, unlocked cells after session 1", "confident_cells", "{:8d}", None),
        ("base tune within 2 % (same cells)", "base_within2", "{:7.1f}%", None),
        ("unlocked cells with any kept sample", "ungated_cells", "{:8d}", None),
        ("ungated correction within 2 % (cells w/ data)", "ungated_within2", "{:7.1f}%", None),
        ("session 1: confident cells within 2 %", "within2", "{:7.1f}%", "within2"),
        ("session 1: P1+P2 cells confident", "p12_confident", "{:7.1f}%", "p12_confident"),
        (
            "  of P1+P2 cells an eddy dyno can hold",
            "p12_reachable_confident",
            "{:7.1f}%",
            "p12_confident",
        ),
        ("session 2: confident cells within 1 %", "within1_second", "{:7.1f}%", "within1_second"),
        ("largest error, session 1 (confident), %", "max_err1", "{:8.2f}", None),
        ("largest error, session 2 (confident), %", "max_err2", "{:8.2f}", None),
    ]
    ok = True
    for text, key, fmt, target in lines:
        front, rear = rows[0][key], rows[1][key]
        tgt = f">= {TARGETS[target]:.0f}%" if target else ""
        print(f"{text:44s} {fmt.format(front)} {fmt.format(rear)} {tgt:>8s}")
        if target and key != "p12_reachable_confident":
            ok &= front >= TARGETS[target] and rear >= TARGETS[target]
    print(f"(wall time {spent:.1f} s)")
    for line in first.summary_lines():
        print("  " + line)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
