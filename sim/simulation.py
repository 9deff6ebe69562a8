"""Simulation: a plan of segments run through the engine model, delivered as Blocks.

This is where the model's raw states become what instruments report: the wideband
sees the mixture through its transport delay and rails lean in fuel cut, sensors
add noise, the dyno computes power from torque and rpm. Every random draw comes
from its own seeded stream consumed sample by sample, so the same seed gives the
same samples whatever the block size (a 20 ms live block or a 0.5 s batch block).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.channels import CHANNELS, STOICH_GASOLINE, power_hp_from_torque
from core.frames import Block
from core.tune import Tune
from sim.delay import DelayLine
from sim.ecu import apply_tune, cylinder_factors
from sim.model import MODE_FREE, Command, Controller, EngineModel, as_arrays
from sim.scenarios import Segment
from sim.vehicles import SimParamError, Vehicle, build_tables

SIM_CHANNELS = (
    "rpm",
    "map_kpa",
    "tps_pct",
    "lambda",
    "afr",
    "afr_target",
    "lambda_target",
    "knock_count",
    "knock_retard_deg",
    "iat_c",
    "clt_c",
    "spark_deg",
    "power_hp",
    "torque_nm",
    "drum_speed_kph",
    "baro_kpa",
    "batt_v",
    "ve_pct",
    "accel_enrich_pct",
    "dfco",
)
"""Canonical channels the simulator emits, in block column order."""
TWIN_CHANNELS = ("lambda_front", "lambda_rear")
"""Extra channels of a twin running a tune: one wideband per header (``lambda`` is their mean)."""

WIDEBAND_LEAN_RAIL_LAMBDA = 1.70
"""A wideband in free air (fuel cut) reads its lean limit; AFR 25.0, the top of the AFR range."""
WIDEBAND_RICH_RAIL_LAMBDA = 0.55
DEFAULT_LAMBDA_DELAY_S = 0.09
MAX_RATE_HZ = 1000.0

_NOISY = (
    "rpm",
    "map_kpa",
    "tps_pct",
    "lambda",
    "iat_c",
    "clt_c",
    "torque_nm",
    "drum",
    "baro",
    "batt",
)


def sim_channel_units(twin: bool = False, closed_loop: bool = False) -> dict[str, str]:
    """{channel: unit} for every channel the simulator emits (for log headers)."""
    names: tuple[str, ...] = SIM_CHANNELS + TWIN_CHANNELS if twin else SIM_CHANNELS
    if closed_loop:
        names += ("fuel_trim_pct",)
    return {name: CHANNELS[name].unit for name in names}


def check_rate(rate_hz: float) -> float:
    if not 1.0 <= rate_hz <= MAX_RATE_HZ:
        raise SimParamError(f"sample rate {rate_hz:g} Hz is out of range; use 1 to 1000 Hz")
    return float(rate_hz)


def _idle_in_neutral(t_s: float, rpm: float, map_kpa: float) -> Command:
    return (MODE_FREE, math.nan, math.nan, math.nan, 0.0, False)


class Simulation:
    """Runs ``segments`` once (or forever with ``loop``) on one vehicle, deterministically.

    Attributes:
        model: The engine model (its ``tables`` hold the true and ECU VE for checks).
        total_steps: Samples in one pass of the plan; ``None`` when looping.
    """

    def __init__(
        self,
        vehicle: Vehicle,
        segments: Sequence[Segment],
        seed: int = 1,
        rate_hz: float = 100.0,
        loop: bool = False,
        lambda_delay_s: float = DEFAULT_LAMBDA_DELAY_S,
        sensor_noise: bool = True,
        source: str = "sim",
        tune: Tune | None = None,
        closed_loop: bool = False,
    ) -> None:
        if not segments:
            raise SimParamError("a simulation needs at least one segment")
        if not 0.0 <= lambda_delay_s <= 1.0:
            raise SimParamError(f"lambda delay {lambda_delay_s:g} s is out of range; use 0 to 1 s")
        self.rate_hz = check_rate(rate_hz)
        self.vehicle = vehicle
        self.segments = tuple(segments)
        self.seed = int(seed)
        self.loop = loop
        self.source = source
        self.sensor_noise = sensor_noise
        tables = build_tables(vehicle, self.seed)
        if tune is not None:
            tables = apply_tune(vehicle, tables, tune)
        self.tune = tune
        """The tune the ECU runs (None: the model's own fine table)."""
        self.twin = tables.ve_ecu_front is not None
        """Front and rear widebands (a twin running a tune)."""
        self.closed_loop = closed_loop
        """The ECU trims fuel at part load and logs ``fuel_trim_pct``."""
        self.model = EngineModel(vehicle, tables, self.rate_hz, closed_loop=closed_loop)
        self._twin_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x7C1]))
        self._twin_delay = (
            DelayLine(lambda_delay_s, self.rate_hz),
            DelayLine(lambda_delay_s, self.rate_hz),
        )
        knock_seq, noise_seq = np.random.SeedSequence([self.seed, 0x51]).spawn(2)
        self._knock_rng = np.random.default_rng(knock_seq)
        self._noise_rng = np.random.default_rng(noise_seq)
        self._delay = DelayLine(lambda_delay_s, self.rate_hz)
        self._settle_at_idle()
        self._seg_steps = [
            max(1, round(s.duration_s(vehicle) * self.rate_hz)) for s in self.segments
        ]
        self.total_steps: int | None = None if loop else sum(self._seg_steps)
        self.step = 0
        """Samples produced so far."""
        self._occurrence = -1
        self.current: Segment = self.segments[0]
        """The segment being run."""
        self._seg_left = 0
        self._seg_t0_step = 0
        self._controller = self._next_segment()

    def _settle_at_idle(self, seconds: float = 5.0) -> None:
        """Run the warm engine at idle off the record, so sample 0 is a settled idle."""
        n = round(seconds * self.rate_hz)
        self.model.run(n, 0, _idle_in_neutral, [1.0] * n)

    @property
    def done(self) -> bool:
        return self.total_steps is not None and self.step >= self.total_steps

    @property
    def sim_time_s(self) -> float:
        """Time of the next sample."""
        return self.step / self.rate_hz

    def _next_segment(self) -> Controller:
        self._occurrence += 1
        index = self._occurrence % len(self.segments)
        self.current = self.segments[index]
        self._seg_left = self._seg_steps[index]
        self._seg_t0_step = self.step
        seed = int(
            np.random.SeedSequence([self.seed, 0x5E6, self._occurrence]).generate_state(1)[0]
        )
        return self.segments[index].start(self.model, seed)

    @property
    def occurrence(self) -> int:
        """Segments started so far, minus one (the current one's index in a first pass)."""
        return self._occurrence

    @property
    def segment_elapsed_s(self) -> float:
        """Seconds since the current segment began."""
        return (self.step - self._seg_t0_step) / self.rate_hz

    @property
    def segment_left(self) -> int:
        """Samples left in the current segment (0: the next read starts the next one)."""
        return self._seg_left

    def cut(self) -> None:
        """End the current segment now: the next sample starts the next one.

        A looping simulation only (a plan's length is fixed up front): the live
        operator ends a hold step when its cell turns trusted.
        """
        if self.total_steps is not None:
            raise SimParamError("only a looping simulation can cut a segment short")
        self._seg_left = 0

    def next_block(self, max_samples: int) -> Block | None:
        """Up to ``max_samples`` new samples (fewer at the plan's end); ``None`` once done."""
        if self.done or max_samples <= 0:
            return None
        n = (
            max_samples
            if self.total_steps is None
            else min(max_samples, self.total_steps - self.step)
        )
        parts: list[dict[str, list[float]]] = []
        left = n
        while left > 0:
            if self._seg_left == 0:
                self._controller = self._next_segment()
            take = min(left, self._seg_left)
            u = self._knock_rng.random(take).tolist()
            parts.append(self.model.run(take, self.step - self._seg_t0_step, self._controller, u))
            self.step += take
            self._seg_left -= take
            left -= take
        raw = as_arrays({k: [x for p in parts for x in p[k]] for k in parts[0]})
        t = (self.step - n + np.arange(n)) / self.rate_hz
        return Block(self.source, t, self._instruments(raw, n))

    def _instruments(self, raw: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        noise = self._noise_rng.standard_normal((n, len(_NOISY)))
        if not self.sensor_noise:
            noise[:] = 0.0
        z = {name: noise[:, i] for i, name in enumerate(_NOISY)}
        rpm = np.maximum(raw["rpm"] * (1.0 + 0.001 * z["rpm"]), 0.0)
        lam_seen = self._delay.push(raw["lambda_sensor"])
        lam = np.clip(
            lam_seen * (1.0 + 0.005 * z["lambda"]),
            WIDEBAND_RICH_RAIL_LAMBDA,
            WIDEBAND_LEAN_RAIL_LAMBDA,
        )
        coupled = raw["torque_nm"] != 0.0
        torque = np.where(
            coupled,
            raw["torque_nm"] + (0.5 + 0.01 * np.abs(raw["torque_nm"])) * z["torque_nm"],
            0.0,
        )
        power = np.maximum(power_hp_from_torque(torque, rpm), 0.0)
        drum = np.where(
            raw["drum_speed_kph"] > 0.5,
            raw["drum_speed_kph"] + 0.05 * z["drum"],
            raw["drum_speed_kph"],
        )
        cylinders: dict[str, np.ndarray] = {}
        if self.twin:
            lam, cylinders = self._widebands(raw, n)
        batt = 12.6 + 1.6 * np.clip((raw["rpm"] - 500.0) / 900.0, 0.0, 1.0) + 0.03 * z["batt"]
        return {
            "rpm": rpm,
            "map_kpa": np.maximum(raw["map_kpa"] + 0.25 * z["map_kpa"], 0.0),
            "tps_pct": np.clip(raw["tps_pct"] + 0.1 * z["tps_pct"], 0.0, 100.0),
            "lambda": lam,
            "afr": lam * STOICH_GASOLINE,
            "afr_target": raw["lambda_target"] * STOICH_GASOLINE,
            "lambda_target": raw["lambda_target"],
            "knock_count": raw["knock_count"],
            "knock_retard_deg": raw["knock_retard_deg"],
            "iat_c": raw["iat_c"] + 0.1 * z["iat_c"],
            "clt_c": raw["clt_c"] + 0.1 * z["clt_c"],
            "spark_deg": raw["spark_deg"],
            "power_hp": power,
            "torque_nm": torque,
            "drum_speed_kph": np.maximum(drum, 0.0),
            "baro_kpa": self.vehicle.baro_kpa + 0.1 * z["baro"],
            "batt_v": batt,
            "ve_pct": raw["ve_pct"],
            "accel_enrich_pct": raw["accel_enrich_pct"],
            "dfco": raw["dfco"],
            **cylinders,
            **({"fuel_trim_pct": raw["fuel_trim_pct"]} if self.closed_loop else {}),
        }

    def _widebands(
        self, raw: dict[str, np.ndarray], n: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Front and rear wideband readings, and their mean as the ``lambda`` channel."""
        factors = cylinder_factors(self.model.tables, raw["rpm"], raw["map_kpa"])
        assert factors is not None  # self.twin
        z = self._twin_rng.standard_normal((n, 2))
        if not self.sensor_noise:
            z[:] = 0.0
        out = {}
        for k, (name, factor) in enumerate(zip(TWIN_CHANNELS, factors, strict=True)):
            seen = self._twin_delay[k].push(raw["lambda_sensor"] * factor)
            out[name] = np.clip(
                seen * (1.0 + 0.005 * z[:, k]), WIDEBAND_RICH_RAIL_LAMBDA, WIDEBAND_LEAN_RAIL_LAMBDA
            )
        return (out["lambda_front"] + out["lambda_rear"]) / 2.0, out
