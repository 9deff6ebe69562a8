"""Engine + dyno model: the physics behind the simulator's channels.

Decision: the states that feed back on each other (throttle, MAP, rpm, fuel film,
knock retard, temperatures) are stepped in one scalar Python loop with local
variables and plain floats, because a feedback loop cannot be vectorised and numpy
scalars are slower than floats. The loop finds the table cell once per step and
interpolates every table with the same weights. Everything that does not feed back
(sensor noise, the wideband's transport delay, AFR, power, battery, baro) is done
on whole blocks with numpy afterwards (see :mod:`sim.simulation`).

Physics, kept simple but honest:

* MAP: the throttle (an orifice) in series with the engine (a pump whose demand
  grows with rpm x VE): MAP_ss = baro * a / (a + krpm * VE), with a first-order
  manifold-filling lag of ~1.5 engine cycles.
* Fuel: speed-density with the ECU's VE and target lambda, accel enrichment from
  the throttle rate, a wall film (x-tau model) so a tip-in needs that enrichment,
  decel fuel cut on a closed throttle above 1500 rpm. Lambda = air / fuel, so in
  steady state lambda = target * trueVE / ecuVE.
* Torque = (IMEP - pumping - friction) * Vd / 4pi, IMEP proportional to true VE x
  MAP x air density x mixture and spark efficiency.
* Dyno: ``FREE`` (neutral, idle controller), ``INERTIA`` (drum inertia, optional
  brake), ``SPEED`` (eddy absorber holding a target rpm; it can only brake).
* Knock: Poisson events at a rate growing with advance beyond the knock limit;
  each event steps retard up, retard decays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.physics import Grid, ModelTuning, drum_drag_nm, mixture_efficiency
from sim.vehicles import EngineTables, Vehicle

MODE_FREE = 0
"""Gearbox in neutral: the drum is not coupled; the ECU's idle controller holds idle."""
MODE_INERTIA = 1
"""In gear on the drum: rpm rises at (engine torque - losses - brake) / inertia."""
MODE_SPEED = 2
"""Eddy-current absorber holds the commanded rpm (brakes only, never drives)."""

Command = tuple[int, float, float, float, float, bool]
"""(mode, tps_pct, map_target_kpa, rpm_target, brake_nm, cell_fan); NaN = not commanded.

``tps_pct`` set: the operator holds that throttle. Else ``map_target_kpa`` set: the
operator chases that MAP (feed-forward + a P-controller on throttle speed). Neither:
throttle closed, the ECU's idle air controller works.
"""
Controller = Callable[[float, float, float], Command]
"""controller(t_s, rpm, map_kpa) -> Command, called once per step."""

OUTPUTS = (
    "rpm",
    "map_kpa",
    "tps_pct",
    "lambda_sensor",
    "lambda_target",
    "knock_count",
    "knock_retard_deg",
    "iat_c",
    "clt_c",
    "spark_deg",
    "torque_nm",
    "drum_speed_kph",
    "ve_pct",
    "accel_enrich_pct",
    "dfco",
    "fuel_trim_pct",
)
"""Raw (noise-free, undelayed) per-step outputs of :meth:`EngineModel.run`.

``fuel_trim_pct`` is the closed-loop correction (NaN while the loop is open or off)."""

CLOSED_LOOP_MAX_MAP_KPA = 70.0
"""The simulated ECU's closed loop runs at part load only (below this MAP), like most ECUs."""
CLOSED_LOOP_GAIN_PCT_S = 100.0
"""Integrator gain: trim moves this many %/s per unit of lambda error (1 s time constant)."""
CLOSED_LOOP_LIMIT_PCT = 25.0

LAMBDA_NO_FUEL = 10.0
"""Lambda reported for a cylinder that gets (almost) no fuel; the wideband rails below it."""


class EngineModel:
    """The engine's state and its stepping loop.

    Attributes:
        vehicle: The preset.
        tables: Its tables (the ECU VE error is seeded).
        rate_hz: Steps per second.
    """

    def __init__(
        self, vehicle: Vehicle, tables: EngineTables, rate_hz: float, closed_loop: bool = False
    ) -> None:
        self.vehicle = vehicle
        self.closed_loop = closed_loop
        """The ECU trims fuel toward the target at part load (narrowband-style integrator)."""
        self.fuel_trim_pct = 0.0
        self.tables = tables
        self.rate_hz = float(rate_hz)
        self.tuning = ModelTuning()
        self._grid = Grid(tables)
        v = vehicle
        self.rpm = v.idle_rpm
        self.rpm_prev = v.idle_rpm
        self.map_kpa = 33.0
        self.tps_pct = 0.0
        self.trim_pct = 0.0
        self.idle_i = 0.0
        self.film = 0.0
        self.film_primed = False
        self.ae_pct = 0.0
        self.lambda_sensor = math.nan
        """What the wideband element reads before the transport delay (NaN until the first step)."""
        self.dfco = False
        self.knock_count = 0
        self.knock_retard_deg = 0.0
        self.clt_c = 70.0
        self.soak_c = v.ambient_c + 12.0
        self.iat_c = v.ambient_c + 6.0
        self.load_avg = 0.0
        self.fan_on = False
        self.drum_kph = 0.0

    # -- nominal (noise-free, steady) relations the operator and the planner use --

    def map_steady_kpa(self, tps_pct: float, rpm: float, ve: float) -> float:
        """Steady MAP for a throttle position: orifice (throttle) in series with the pump."""
        v = self.vehicle
        area = v.idle_air_area + v.throttle_area_max * (1.0 - math.cos(tps_pct * math.pi / 200.0))
        pump = max(rpm, 300.0) / 1000.0 * ve
        return v.baro_kpa * area / (area + pump)

    def tps_for_map(self, map_kpa: float, rpm: float, ve: float) -> float:
        """The throttle that gives ``map_kpa`` in steady state (the operator's feel)."""
        v = self.vehicle
        ratio = min(max(map_kpa / v.baro_kpa, 0.0), 0.995)
        area = ratio / (1.0 - ratio) * max(rpm, 300.0) / 1000.0 * ve - v.idle_air_area
        if area <= 0.0:
            return 0.0
        c = 1.0 - area / v.throttle_area_max
        if c <= 0.0:
            return 100.0
        return math.acos(c) * 200.0 / math.pi

    def torque_nm(
        self,
        rpm: float,
        map_kpa: float,
        ve: float,
        lam: float,
        spark_over_mbt_deg: float,
        iat_c: float,
    ) -> float:
        """Brake torque from the MEP balance (IMEP - pumping - friction) * Vd / 4pi."""
        v = self.vehicle
        krpm = rpm / 1000.0
        imep = (
            v.imep_per_ve_kpa
            * ve
            * map_kpa
            / 100.0
            * mixture_efficiency(lam)
            * max(0.5, 1.0 - 0.0022 * spark_over_mbt_deg * spark_over_mbt_deg)
            * 303.15
            / (273.15 + iat_c)
        )
        pmep = max(0.0, v.baro_kpa - map_kpa) + 2.0
        fmep = v.fmep_kpa[0] + v.fmep_kpa[1] * krpm + v.fmep_kpa[2] * krpm * krpm
        return (imep - pmep - fmep) * v.displacement_l / (4.0 * math.pi)

    def nominal_torque_nm(self, rpm: float, map_kpa: float, iat_c: float = 35.0) -> float:
        """Steady torque at a point with the ECU on target and no knock retard."""
        g = self._grid
        cell = g.locate(rpm, map_kpa)
        over = g.interp(g.spark, cell) - g.interp(g.mbt, cell)
        ve, lam = g.interp(g.ve_true, cell), g.interp(g.lam_t, cell)
        return self.torque_nm(rpm, map_kpa, ve, lam, over, iat_c)

    def throttle_for(self, map_kpa: float, rpm: float) -> float:
        """Steady throttle (%) that gives ``map_kpa`` at ``rpm`` on this engine's true VE."""
        ve = self._grid.lookup(self._grid.ve_true, rpm, map_kpa)
        return self.tps_for_map(map_kpa, rpm, ve)

    def wot_map_kpa(self, rpm: float) -> float:
        """Steady MAP at wide-open throttle."""
        ve = self._grid.lookup(self._grid.ve_true, rpm, self.vehicle.baro_kpa)
        return self.map_steady_kpa(100.0, rpm, ve)

    def accel_s(
        self, rpm_from: float, rpm_to: float, map_kpa: float | None = None, iat_c: float = 35.0
    ) -> float:
        """Nominal time to accelerate on the drum at ``map_kpa`` (``None`` = WOT).

        Used for segment durations (a WOT sweep, rolling up to a hold) and by the planner.
        """
        v = self.vehicle
        t_s, rpm, d_rpm = 0.0, rpm_from, 10.0
        while rpm < rpm_to:
            m = self.wot_map_kpa(rpm) if map_kpa is None else map_kpa
            net = self.nominal_torque_nm(rpm, m, iat_c) - drum_drag_nm(rpm)
            if net <= 1.0:
                return t_s + 30.0  # cannot get there: the segment's own timeout ends it
            t_s += v.coupled_inertia_kgm2 * d_rpm * math.pi / 30.0 / net
            rpm += d_rpm
        return t_s

    # -- the stepping loop --

    def run(
        self, n: int, first_step: int, controller: Controller, knock_u: list[float]
    ) -> dict[str, list[float]]:
        """Step ``n`` times; return raw per-step outputs (see OUTPUTS).

        The controller sees time ``(first_step + k) / rate_hz`` for step ``k``: computed
        from whole step numbers, so splitting a run into blocks changes no bit.

        ``knock_u`` are ``n`` uniform(0, 1) draws deciding the Poisson knock events, so the
        caller owns the random stream and block sizes do not change the result.
        """
        v, tu, g = self.vehicle, self.tuning, self._grid
        rate_hz = self.rate_hz
        dt = 1.0 / rate_hz
        out: dict[str, list[float]] = {name: [0.0] * n for name in OUTPUTS}
        o_rpm, o_map, o_tps = out["rpm"], out["map_kpa"], out["tps_pct"]
        o_lam, o_lt, o_kc = out["lambda_sensor"], out["lambda_target"], out["knock_count"]
        o_kr, o_iat, o_clt = out["knock_retard_deg"], out["iat_c"], out["clt_c"]
        o_spk, o_trq, o_drum = out["spark_deg"], out["torque_nm"], out["drum_speed_kph"]
        o_ve, o_ae, o_dfco = out["ve_pct"], out["accel_enrich_pct"], out["dfco"]
        o_ft = out["fuel_trim_pct"]
        cl, ftrim, nan = self.closed_loop, self.fuel_trim_pct, math.nan

        rpm_prev = self.rpm_prev
        rpm, map_kpa, tps, trim, idle_i = (
            self.rpm,
            self.map_kpa,
            self.tps_pct,
            self.trim_pct,
            self.idle_i,
        )
        film, ae, dfco, lam_seen = self.film, self.ae_pct, self.dfco, self.lambda_sensor
        kcount, kret = self.knock_count, self.knock_retard_deg
        clt, soak, iat, load_avg, fan, drum = (
            self.clt_c,
            self.soak_c,
            self.iat_c,
            self.load_avg,
            self.fan_on,
            self.drum_kph,
        )
        baro, amb = v.baro_kpa, v.ambient_c
        tps_step = tu.throttle_rate_pct_s * dt
        ae_decay = math.exp(-dt / tu.ae_tau_s)
        wb_k = 1.0 - math.exp(-dt / tu.wideband_tau_s)
        x_film = tu.film_fraction
        dyno_k = 1.0 / tu.dyno_tau_s
        rad_s_per_rpm = math.pi / 30.0
        kph_per_rpm = 2.0 * math.pi * v.wheel_radius_m * 0.06 / v.overall_ratio
        drum_decay = math.exp(-dt / 8.0)
        vd_4pi = v.displacement_l / (4.0 * math.pi)
        fm0, fm1, fm2 = v.fmep_kpa
        rated_w = v.rated_power_kw * 1000.0
        torque_fn = self.torque_nm

        for k in range(n):
            t = (first_step + k) / rate_hz
            mode, tps_cmd, map_tgt, rpm_tgt, brake_nm, cell_fan = controller(t, rpm, map_kpa)
            cell = g.locate(rpm, map_kpa)
            ve_true = g.interp(g.ve_true, cell)
            ve_ecu = g.interp(g.ve_ecu, cell)
            lam_t = g.interp(g.lam_t, cell)
            spark_tbl = g.interp(g.spark, cell)
            mbt = g.interp(g.mbt, cell)
            klim = g.interp(g.klim, cell)

            # Operator hand and throttle body.
            closed = False
            if math.isnan(tps_cmd):  # NaN: not a direct throttle command
                if not math.isnan(map_tgt):
                    feel = self.tps_for_map(map_tgt, rpm, ve_true)
                    step = tu.operator_gain_pct_s_per_kpa * (map_tgt - map_kpa) * dt
                    # The hand stops at the stops: asked for a MAP the engine cannot make
                    # (under its closed-throttle MAP, over its WOT MAP) it does not keep
                    # pushing past them, so the next step starts from the stop. Wound up
                    # to -30 % under a 25-kPa target at 1000 rpm (the engine makes 31),
                    # the throttle stayed shut 4 s into the next hold's 40-kPa step.
                    at_stop = feel + trim <= 0.0 if step < 0.0 else feel + trim >= 100.0
                    if not at_stop:
                        trim = min(max(trim + step, -30.0), 30.0)
                    tps_cmd = feel + trim
                else:
                    tps_cmd, closed = 0.0, True
            tps_cmd = min(max(tps_cmd, 0.0), 100.0)
            tps_prev = tps
            tps += min(max(tps_cmd - tps, -tps_step), tps_step)

            # ECU idle air: PI on rpm in neutral; integrator frozen when coupled.
            idle_air = v.idle_air_area + idle_i
            if closed and mode == MODE_FREE:
                # The controller acts near idle only (its error is clipped to +-300 rpm).
                err = min(max(v.idle_rpm - rpm, -300.0), 300.0)
                idle_i = min(max(idle_i + 0.0004 * err * dt, -0.3), 1.0)
                # P + I, plus a dashpot term that opens the idle air while rpm is falling.
                falling_rpm_s = max(0.0, rpm_prev - rpm) / dt
                idle_air = max(
                    0.05, v.idle_air_area + idle_i + 0.0006 * err + 0.00025 * falling_rpm_s
                )

            # Manifold: orifice in series with the pump, ~1.5 cycles of filling lag.
            area = idle_air + v.throttle_area_max * (1.0 - math.cos(tps * math.pi / 200.0))
            pump = max(rpm, 300.0) / 1000.0 * ve_true
            map_ss = baro * area / (area + pump)
            map_prev = map_kpa
            map_kpa += (map_ss - map_kpa) * (1.0 - math.exp(-dt * max(rpm, 300.0) / 180.0))

            # ECU: accel enrichment from the MAP rate, decel fuel cut, injected fuel.
            rate = (map_kpa - map_prev) / dt
            ae *= ae_decay
            if rate > tu.ae_threshold_kpa_s and tps > tps_prev:
                ae = max(
                    ae,
                    min(tu.ae_max_pct, tu.ae_gain_pct_per_kpa_s * (rate - tu.ae_threshold_kpa_s)),
                )
            if dfco:
                dfco = tps < 1.5 and rpm > tu.dfco_off_rpm
            else:
                dfco = tps < 1.0 and rpm > tu.dfco_on_rpm and clt > 50.0
            fuel_on = not dfco and rpm < v.rev_limit_rpm
            air = ve_true * map_kpa
            inj = ve_ecu * map_kpa / lam_t * (1.0 + ae / 100.0) if fuel_on else 0.0
            if cl:
                if (
                    fuel_on
                    and map_kpa < CLOSED_LOOP_MAX_MAP_KPA
                    and ae < 0.5
                    and not math.isnan(lam_seen)
                ):
                    ftrim += CLOSED_LOOP_GAIN_PCT_S * (lam_seen / lam_t - 1.0) * dt
                    ftrim = min(max(ftrim, -CLOSED_LOOP_LIMIT_PCT), CLOSED_LOOP_LIMIT_PCT)
                    inj *= 1.0 + ftrim / 100.0
                    o_ft[k] = ftrim
                else:
                    o_ft[k] = nan  # open loop: the learned trim is held, not applied
            x_wall = x_film * min(map_kpa / 100.0, 1.0)
            if not self.film_primed:
                film, self.film_primed = x_wall * inj * tu.film_tau_s, True
            evap = film / tu.film_tau_s
            film += (x_wall * inj - evap) * dt
            cyl = (1.0 - x_wall) * inj + evap
            lam = min(air / cyl, LAMBDA_NO_FUEL) if cyl > 1e-9 else LAMBDA_NO_FUEL
            # The wideband's own response (linear, so it commutes with the transport delay
            # applied later); beyond lambda 2.5 it reads free air anyway.
            if math.isnan(lam_seen):
                lam_seen = min(lam, 2.5)
            lam_seen += (min(lam, 2.5) - lam_seen) * wb_k

            # Spark and knock.
            spark = spark_tbl - kret
            excess = spark - (klim - tu.knock_iat_deg_per_c * max(0.0, iat - 30.0))
            if excess > 0.0 and lam < 1.5:
                p = (
                    tu.knock_rate_per_deg_hz * excess + tu.knock_rate_per_deg2_hz * excess * excess
                ) * dt
                if knock_u[k] < p:
                    kcount += 1
                    kret = min(kret + tu.knock_step_deg, tu.knock_max_retard_deg)
            kret = max(0.0, kret - tu.knock_decay_deg_s * dt)

            # Torque and the dyno.
            if lam < 1.5:
                trq = torque_fn(rpm, map_kpa, ve_true, lam, spark - mbt, iat)
            else:
                krpm = rpm / 1000.0
                trq = -((baro - map_kpa) + 2.0 + fm0 + fm1 * krpm + fm2 * krpm * krpm) * vd_4pi
            w = rpm * rad_s_per_rpm
            if mode == MODE_FREE:
                w += (trq - tu.accessory_nm) / v.engine_inertia_kgm2 * dt
                drum *= drum_decay
            else:
                drag = drum_drag_nm(rpm) + tu.accessory_nm
                if mode == MODE_SPEED:
                    want = (rpm_tgt * rad_s_per_rpm - w) * dyno_k * v.coupled_inertia_kgm2
                    brake_nm = min(max(trq - drag - want, 0.0), tu.absorber_max_nm)
                w += (trq - drag - brake_nm) / v.coupled_inertia_kgm2 * dt
            rpm_prev = rpm
            rpm = max(w / rad_s_per_rpm, 300.0)
            coupled = mode != MODE_FREE
            if coupled:
                drum = rpm * kph_per_rpm

            # Heat: coolant toward a load-dependent level (fan caps it), intake heat soak.
            load = max(trq, 0.0) * w / rated_w
            load_avg += (load - load_avg) * dt / 30.0
            fan = clt > 98.0 or (fan and clt > 92.0)
            clt_eq = amb + 60.0 + 70.0 * load_avg - (12.0 if cell_fan else 0.0)
            if fan:
                clt_eq = min(clt_eq, amb + 55.0)
            clt += (clt_eq - clt) * dt / 90.0
            soak_eq = amb + 0.45 * (clt - amb) + 30.0 * load_avg - (8.0 if cell_fan else 0.0)
            soak += (soak_eq - soak) * dt / (240.0 if soak_eq > soak else 600.0)
            flow = min(1.0, map_kpa / baro * rpm / v.redline_rpm)
            iat += (amb + (soak - amb) * (0.6 - 0.35 * flow) - iat) * dt / 8.0

            o_rpm[k] = rpm
            o_map[k] = map_kpa
            o_tps[k] = tps
            o_lam[k] = lam_seen
            o_lt[k] = lam_t
            o_kc[k] = kcount
            o_kr[k] = kret
            o_iat[k] = iat
            o_clt[k] = clt
            o_spk[k] = spark
            o_trq[k] = trq if coupled else 0.0
            o_drum[k] = drum
            o_ve[k] = ve_ecu * 100.0
            o_ae[k] = ae
            o_dfco[k] = 1.0 if dfco else 0.0

        self.rpm, self.map_kpa, self.tps_pct, self.trim_pct, self.idle_i = (
            rpm,
            map_kpa,
            tps,
            trim,
            idle_i,
        )
        self.film, self.ae_pct, self.dfco, self.lambda_sensor = film, ae, dfco, lam_seen
        self.fuel_trim_pct = ftrim
        self.knock_count, self.knock_retard_deg = kcount, kret
        self.rpm_prev = rpm_prev
        self.clt_c, self.soak_c, self.iat_c, self.load_avg = clt, soak, iat, load_avg
        self.fan_on, self.drum_kph = fan, drum
        return out


def as_arrays(out: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Raw loop outputs as float64 arrays."""
    return {name: np.asarray(values, dtype=np.float64) for name, values in out.items()}
