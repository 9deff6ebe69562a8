"""Simulator generation speed, as a multiple of real time.

Target: >= 100x real time at 100 Hz (a planner benchmark runs many simulated
sessions; the live source needs ~1x). 1 kHz is reported for information.
"""

from __future__ import annotations

import time

from sim.source import generate

TARGET_X_AT_100_HZ = 100.0


def measure(rate_hz: float, duration_s: float, vehicle: str, scenario: str) -> float:
    start = time.perf_counter()
    samples = sum(
        len(b) for b in generate(vehicle, scenario, seed=1, rate_hz=rate_hz, duration_s=duration_s)
    )
    elapsed = time.perf_counter() - start
    assert samples == round(rate_hz * duration_s)
    return duration_s / elapsed


def main() -> None:
    plans = (("vtwin", "pulls"), ("vtwin", "steady"), ("vtwin", "street"), ("car", "pulls"))
    for vehicle, scenario in plans:
        x = measure(100.0, 300.0, vehicle, scenario)
        verdict = "OK" if x >= TARGET_X_AT_100_HZ else "BELOW TARGET"
        name = f"{vehicle}/{scenario}"
        target = f"target >= {TARGET_X_AT_100_HZ:.0f}x"
        print(f"sim {name:13s} @ 100 Hz: {x:6.0f}x real time ({target}) {verdict}")
    for scenario in ("pulls", "steady"):
        x = measure(1000.0, 60.0, "vtwin", scenario)
        name = f"vtwin/{scenario}"
        print(f"sim {name:13s} @ 1 kHz:  {x:6.0f}x real time (no target; live needs >= 1x)")


if __name__ == "__main__":
    main()
