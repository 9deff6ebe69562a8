"""The simulator as a Source (``sim:`` URIs) and as plain block generators.

``sim:vtwin?scenario=pulls&seed=7&rate=100&speed=1&duration=60``: the path is the
vehicle preset (default ``vtwin``); ``speed`` is a multiple of real time or ``max``;
``duration`` (seconds of sim time) makes it finite, otherwise the scenario loops.

Time base: in real time (any numeric ``speed``) a sample's time is
``time.monotonic()`` at open plus its sim time, so at ``speed=1`` the simulator
shares the clock of live hardware; ``read`` sleeps until the next ~20 ms of samples
is due. At ``speed=max`` the source is not real time: times are sim time from 0 and
each ``read`` returns the next block at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from core.frames import Block
from core.plan.types import Suggestion
from core.source import Source, SourceError, SourceState, SourceURI
from core.tune import Tune, TuneError, read_tune
from core.vehicle import VehicleConfig
from sim.guided import GuidedOperator, guided_operator
from sim.scenarios import Segment, build_scenario
from sim.simulation import DEFAULT_LAMBDA_DELAY_S, Simulation, check_rate, sim_channel_units
from sim.vehicles import SimParamError, get_vehicle

F64 = npt.NDArray[np.float64]

GUIDED = "guided"
"""``scenario=guided``: a simulated operator running the planner's top suggestion (sim.guided)."""
LIVE_BLOCK_S = 0.02
"""Sim time per block in real-time mode (an engine tick drains one or two)."""
MAX_SPEED_BLOCK_S = 0.5
"""Sim time per block at ``speed=max``."""
FOLLOW_MAX_SPEED = 5.0
"""A guided source follows the dashboard's line up to this speed (``SimSource.follow``): the
session plans a real-time source once a second of its data, at most every 0.2 s of wall time
(``core.session.PLAN_MIN_WALL_S``)."""
_KNOWN_PARAMS = {
    "scenario",
    "seed",
    "rate",
    "speed",
    "duration",
    "lambda_delay_ms",
    "name",
    "tune",
    "closed_loop",
}


def generate(
    vehicle: str = "vtwin",
    scenario: str = "pulls",
    seed: int = 1,
    rate_hz: float = 100.0,
    duration_s: float = 60.0,
    block_s: float = 0.5,
    source: str = "sim",
    tune: Tune | None = None,
    closed_loop: bool = False,
) -> Iterator[Block]:
    """Blocks of a named scenario (looped as needed) for ``duration_s`` of sim time from t=0.

    With ``tune`` the simulated ECU fuels from that tune (see :mod:`sim.ecu`).

    Raises:
        SimParamError: unknown vehicle or scenario, rate outside 1..1000 Hz, duration <= 0.
    """
    v = get_vehicle(vehicle)
    if not duration_s > 0.0:
        raise SimParamError(f"duration {duration_s:g} s must be more than 0")
    plan = build_scenario(scenario, v)
    sim = Simulation(
        v,
        plan.segments,
        seed=seed,
        rate_hz=rate_hz,
        loop=True,
        source=source,
        tune=tune,
        closed_loop=closed_loop,
    )
    return _blocks(sim, block_s, total=round(duration_s * sim.rate_hz))


def run_segments(
    segments: Sequence[Segment],
    vehicle: str = "vtwin",
    seed: int = 1,
    rate_hz: float = 100.0,
    block_s: float = 0.5,
    source: str = "sim",
    tune: Tune | None = None,
    closed_loop: bool = False,
) -> Iterator[Block]:
    """Execute a custom plan once (e.g. the planner's tests) and yield its blocks from t=0."""
    sim = Simulation(
        get_vehicle(vehicle),
        segments,
        seed=seed,
        rate_hz=rate_hz,
        source=source,
        tune=tune,
        closed_loop=closed_loop,
    )
    return _blocks(sim, block_s, total=sim.total_steps)


def _blocks(sim: Simulation, block_s: float, total: int | None) -> Iterator[Block]:
    if not block_s > 0.0:
        raise SimParamError(f"block length {block_s:g} s must be more than 0")
    per_block = max(1, round(block_s * sim.rate_hz))

    def gen() -> Iterator[Block]:
        while total is None or sim.step < total:
            want = per_block if total is None else min(per_block, total - sim.step)
            block = sim.next_block(want)
            if block is None:
                return
            yield block

    return gen()


class SimSource(Source):
    """The built-in engine + dyno simulator as a live (or max-speed) source."""

    def __init__(self, uri: SourceURI, name: str) -> None:
        super().__init__(name, uri.raw)
        unknown = sorted(set(uri.params) - _KNOWN_PARAMS)
        if unknown:
            known = ", ".join(sorted(_KNOWN_PARAMS))
            raise SourceError(f"{uri.raw}: unknown option {unknown[0]!r}; sim options are: {known}")
        try:
            self._vehicle = get_vehicle(uri.path.strip("/") or "vtwin")
            self._guided = (uri.get("scenario") or "") == GUIDED
            self._scenario = build_scenario(
                "idle" if self._guided else uri.get("scenario") or "pulls", self._vehicle
            )
            self._rate_hz = check_rate(uri.get_float("rate", 100.0))
        except SimParamError as exc:
            raise SourceError(f"{uri.raw}: {exc}") from None
        self._seed = uri.get_int("seed", 1)
        if not 0 <= self._seed < 2**32:
            raise SourceError(f"{uri.raw}: seed={self._seed} must be 0 .. {2**32 - 1}")
        self._speed = self._parse_speed(uri)
        self.realtime = self._speed is not None
        duration = uri.get_float("duration", math.inf)
        if not duration > 0.0:
            raise SourceError(f"{uri.raw}: duration={duration:g} must be more than 0 seconds")
        self.finite = math.isfinite(duration)
        self._total = round(duration * self._rate_hz) if self.finite else None
        delay_ms = uri.get_float("lambda_delay_ms", DEFAULT_LAMBDA_DELAY_S * 1000.0)
        if not 0.0 <= delay_ms <= 1000.0:
            raise SourceError(f"{uri.raw}: lambda_delay_ms={delay_ms:g} is out of range 0..1000")
        self._lambda_delay_s = delay_ms / 1000.0
        tune_path = uri.get("tune")
        try:
            self._tune = read_tune(tune_path) if tune_path else None
        except TuneError as exc:
            raise SourceError(f"{uri.raw}: {exc}") from None
        self._twin = self._tune is not None and self._vehicle.cylinder_split_pct > 0.0
        raw_cl = (uri.get("closed_loop") or "0").strip().lower()
        if raw_cl not in ("0", "1", "true", "false", "no", "yes"):
            raise SourceError(f"{uri.raw}: closed_loop={raw_cl} must be 0 or 1")
        self._closed_loop = raw_cl in ("1", "true", "yes")
        self._sim: Simulation | None = None
        self._operator: GuidedOperator | None = None
        self._t_open = 0.0
        self._advice: Callable[[], tuple[Suggestion, float] | None] | None = None
        self._stored: Mapping[str, F64] | None = None

    @property
    def vehicle_kind(self) -> str:
        """The engine simulated: ``vtwin`` or ``car``.

        A session with no config of its own plans for it
        (``dynoai_tui.commands.common.with_source_kind``).
        """
        return self._vehicle.name

    @staticmethod
    def _parse_speed(uri: SourceURI) -> float | None:
        raw = (uri.get("speed") or "1").strip().lower()
        if raw == "max":
            return None
        try:
            speed = float(raw)
        except ValueError:
            speed = math.nan
        if not 0.01 <= speed <= 1000.0:
            raise SourceError(f"{uri.raw}: speed={raw} must be 'max' or a number from 0.01 to 1000")
        return speed

    def channels(self) -> dict[str, str]:
        return sim_channel_units(twin=self._twin, closed_loop=self._closed_loop)

    def open(self) -> None:
        if self._guided:
            self._operator = guided_operator(
                self._vehicle.name,
                self._rate_hz,
                self._seed,
                warm_in_background=self.realtime,  # at max speed: plan before the first block
                advice=self._advice_sim_time if self._advice is not None else None,
                base=self._stored,
            )
            assert self._operator._sim is not None
            self._sim = self._operator._sim
            self._t_open = time.monotonic()
            self.set_status(
                SourceState.CONNECTED,
                f"simulating {self._vehicle.name} / guided operator, seed {self._seed} "
                f"at {self._rate_hz:g} Hz",
            )
            return
        self._sim = Simulation(
            self._vehicle,
            self._scenario.segments,
            seed=self._seed,
            rate_hz=self._rate_hz,
            loop=True,
            lambda_delay_s=self._lambda_delay_s,
            source=self.name,
            tune=self._tune,
            closed_loop=self._closed_loop,
        )
        self._t_open = time.monotonic()
        plan = f"{self._vehicle.name} / {self._scenario.name}, seed {self._seed}"
        self.set_status(SourceState.CONNECTED, f"simulating {plan} at {self._rate_hz:g} Hz")

    def follow(
        self,
        advice: Callable[[], tuple[Suggestion, float] | None],
        stored: tuple[object, Mapping[str, F64]] | None = None,
    ) -> None:
        """The guided operator runs what the dashboard names next (``GuidedOperator.advice``).

        ``advice`` is the session tracker's (``VehicleTracker.advice``: the suggestion
        and the stream time of the line that named it). Only a guided source in real time
        at up to :data:`FOLLOW_MAX_SPEED` follows: the dashboard plans once a second of
        data at most five times a wall second, so faster the operator would wait out most
        tests' ends. ``stored``: the dashboard vehicle's coverage from its other runs
        (``VehicleTracker.stored``: the axes and the arrays), used when the table is the
        operator's (the preset's default axes); its steps end when the
        screen shows their cell trusted, which counts those runs (without it, after a
        street ride the tuner ran each step until trusted on this run's data alone, longer
        than the screen predicted: the first two low holds' checks read 50 % off on
        average, the first 10 % with it).
        """
        if not self._guided or self._speed is None or self._speed > FOLLOW_MAX_SPEED:
            return
        self._advice = advice
        if stored is not None and stored[0] == VehicleConfig(kind=self._vehicle.name).axes:
            self._stored = stored[1]
        if self._operator is not None:
            self._operator.advice = self._advice_sim_time

    def _advice_sim_time(self) -> tuple[Suggestion, float] | None:
        got = self._advice() if self._advice is not None else None
        if got is None:
            return None
        return got[0], got[1] - self._t_open  # real-time blocks carry t_open + sim time

    def _left(self, sim: Simulation) -> int | None:
        return None if self._total is None else self._total - sim.step

    def read(self, timeout: float = 0.1) -> Block | None:
        sim = self._sim
        if sim is None:
            raise SourceError(f"{self.uri}: read() before open()")
        left = self._left(sim)
        if left is not None and left <= 0:
            self.set_status(SourceState.FINISHED, "simulation finished")
            return None
        if self._speed is None:
            n = round(MAX_SPEED_BLOCK_S * sim.rate_hz)
            return self._next_block(sim, n if left is None else min(n, left))
        # Real time: wait until the next live block's worth of samples is due.
        per_block = max(1, round(LIVE_BLOCK_S * sim.rate_hz))
        due_at = self._t_open + (sim.step + per_block) / sim.rate_hz / self._speed
        wait_s = due_at - time.monotonic()
        if wait_s > 0.0:
            if wait_s > timeout:
                time.sleep(max(timeout, 0.0))
                return None
            time.sleep(wait_s)
        due_steps = math.floor((time.monotonic() - self._t_open) * self._speed * sim.rate_hz)
        # Catch up after a stall, but never hand over more than a second in one block.
        n = min(max(due_steps - sim.step, per_block), round(sim.rate_hz))
        block = self._next_block(sim, n if left is None else min(n, left))
        if block is None:
            return None
        return Block(block.source, block.t + self._t_open, block.columns)

    def _next_block(self, sim: Simulation, n: int) -> Block | None:
        if self._operator is not None:
            return self._operator.read(n)
        return sim.next_block(n)

    def close(self) -> None:
        self._sim = None
        self._operator = None
