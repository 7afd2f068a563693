"""The physical state of one simulated GPU: power, temperature, fan, clocks, energy.

Nothing runs on a timer. The state is integrated forward lazily, when someone reads it, from an
injected clock (so tests are deterministic). Integration uses a fixed grid of `STEP_S` steps
anchored at the creation time, so the value at a given instant does not depend on how often it
was read; the load (what processes drive) is piecewise constant, changing at the moments the
simulator observes the state directory.

Model, per GPU:

* demanded power = idle + (full-load − idle) · utilisation · intensity (a process present but
  idle adds a little: the context keeps clocks up, P2/P0 instead of P8);
* the power target is the demand capped by the enforced limit (`SwPowerCap`), by the software
  thermal limiter near the slowdown temperature (`SwThermalSlowdown`), and by the hardware
  slowdown faults (`HwThermalSlowdown`, `HwPowerBrakeSlowdown`, both with `HwSlowdown`); the
  reported power follows the target with a short lag (the 1 s average NVML reports on Ampere+);
* the die temperature relaxes towards ambient + θ · power, θ falling as the fan speeds up; the
  fan (boards that have one) follows temperature along a fan curve; HBM runs a little hotter;
* the SM clock falls with the power cap as clock ∝ power^(1/3) of the dynamic part;
* the energy counter (mJ) is the exact integral of the reported power over the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.gpu_models import GpuModel

STEP_S = 0.1
"""Integration grid, seconds."""
POWER_TAU_S = 0.5
"""Lag of the reported power behind the target (NVML's 1 s average on Ampere and newer)."""
THERMAL_TAU_S = 25.0
"""Thermal time constant of die and cooler."""
FAN_TAU_S = 4.0
MAX_STEPS = 6000
"""Steps integrated after a long unobserved gap (10 minutes: many thermal time constants);
beyond that the state is at equilibrium and the rest of the gap is filled at steady state."""
CONTEXT_POWER_W = 12.0
"""Extra draw of a GPU holding a CUDA context but running no kernel (clocks stay up)."""
SW_THERMAL_BAND_C = 3.0
"""The software thermal limiter starts pulling power this far below the slowdown temperature."""

# Clock event reason bits (nvmlClocksEventReason*).
REASON_GPU_IDLE = 0x1
REASON_SW_POWER_CAP = 0x4
REASON_HW_SLOWDOWN = 0x8
REASON_SW_THERMAL = 0x20
REASON_HW_THERMAL = 0x40
REASON_HW_POWER_BRAKE = 0x80
SUPPORTED_REASONS = 0x1FF


@dataclass(frozen=True, slots=True)
class Load:
    """What the processes on the GPU drive, summed."""

    util_gpu_pct: float = 0.0
    util_memory_pct: float = 0.0
    intensity: float = 1.0  # utilisation-weighted power intensity of the processes
    has_context: bool = False  # at least one process holds a context


@dataclass(frozen=True, slots=True)
class Conditions:
    """What limits the GPU besides its load."""

    power_limit_w: float
    ambient_c: float
    thermal_throttle: bool = False  # hardware thermal slowdown fault
    power_brake: bool = False  # external power brake fault


@dataclass(frozen=True, slots=True)
class Reading:
    """The GPU at one instant, in NVML's units."""

    power_mw: int
    enforced_limit_mw: int
    energy_mj: int
    temp_c: int
    memory_temp_c: int
    fan_pct: int | None
    sm_clock_mhz: int
    mem_clock_mhz: int
    pstate: int
    reasons: int
    util_gpu_pct: int
    util_memory_pct: int
    pcie_generation_idle: bool  # link downshifted (GeForce at idle)


class GpuPhysics:
    """Lazy integrator of one GPU's physical state."""

    def __init__(self, gpu: GpuModel, now_s: float, cond: Conditions, energy_mj: float = 0.0):
        self.model = gpu
        self._t = now_s  # on the grid: the instant the committed state describes
        self._load = Load()
        self._cond = cond
        idle_target = cond.ambient_c + self._theta(0.0) * gpu.idle_power_w
        self._power_w = gpu.idle_power_w
        self._temp_c = idle_target
        self._fan = self._fan_target(idle_target) if gpu.has_fan else 0.0
        self._energy_mj = energy_mj

    # -- model ---------------------------------------------------------------------------

    def _theta(self, fan_pct: float) -> float:
        m = self.model
        if not m.has_fan:
            return m.thermal_resistance_c_per_w
        # θ at the reference 60 % fan; a slower fan cools worse, a faster one better.
        return m.thermal_resistance_c_per_w * (1.3 - 0.5 * fan_pct / 100.0)

    def _fan_target(self, temp_c: float) -> float:
        # A typical curve: 30 % up to 50 °C, rising to 100 % at 5 °C under the slowdown point.
        lo, hi = 50.0, self.model.temp_slowdown_c - 5.0
        return 30.0 + 70.0 * min(1.0, max(0.0, (temp_c - lo) / (hi - lo)))

    def _demand_w(self, load: Load) -> float:
        m = self.model
        if not load.has_context and load.util_gpu_pct <= 0:
            return m.idle_power_w
        frac = min(1.0, load.util_gpu_pct / 100.0 * load.intensity)
        return m.idle_power_w + CONTEXT_POWER_W + (m.full_load_power_w - m.idle_power_w) * frac

    def _enforced_limit_w(self, cond: Conditions) -> float:
        limit = cond.power_limit_w
        if cond.power_brake:
            # The brake clamps the board hard (clocks to minimum): a third of its default.
            limit = min(limit, self.model.power_default_w / 3.0)
        return limit

    def _target(self, load: Load, cond: Conditions, temp_c: float) -> tuple[float, int]:
        """Power target and the clock event reasons that shaped it."""
        m = self.model
        demand = self._demand_w(load)
        reasons = 0
        target = demand
        if load.util_gpu_pct <= 0:
            reasons |= REASON_GPU_IDLE
        if demand > cond.power_limit_w:
            target = cond.power_limit_w
            reasons |= REASON_SW_POWER_CAP
        if cond.power_brake and target > self._enforced_limit_w(cond):
            target = self._enforced_limit_w(cond)
            reasons |= REASON_HW_SLOWDOWN | REASON_HW_POWER_BRAKE
        if cond.thermal_throttle and load.util_gpu_pct > 0:
            target = min(target, m.idle_power_w + 0.6 * (target - m.idle_power_w))
            reasons |= REASON_HW_SLOWDOWN | REASON_HW_THERMAL
        start = m.temp_slowdown_c - SW_THERMAL_BAND_C
        if temp_c > start and target > m.idle_power_w:
            # Pull the dynamic power down as the die approaches slowdown: the equilibrium then
            # sits inside the band instead of overshooting it.
            keep = max(0.2, 1.0 - (temp_c - start) / SW_THERMAL_BAND_C * 0.8)
            target = m.idle_power_w + (target - m.idle_power_w) * keep
            reasons |= REASON_SW_THERMAL
        return target, reasons

    # -- integration ---------------------------------------------------------------------

    def _step(self, dt: float) -> None:
        target, _ = self._target(self._load, self._cond, self._temp_c)
        a = math.exp(-dt / POWER_TAU_S)
        p0 = self._power_w
        p1 = target + (p0 - target) * a
        # Exact integral of the exponential approach over the step.
        self._energy_mj += (target * dt + (p0 - target) * POWER_TAU_S * (1.0 - a)) * 1000.0
        self._power_w = p1
        t_target = self._cond.ambient_c + self._theta(self._fan) * p1
        self._temp_c += (t_target - self._temp_c) * (1.0 - math.exp(-dt / THERMAL_TAU_S))
        if self.model.has_fan:
            f_target = self._fan_target(self._temp_c)
            self._fan += (f_target - self._fan) * (1.0 - math.exp(-dt / FAN_TAU_S))

    def _advance(self, now_s: float) -> None:
        """Commit whole grid steps up to `now_s` under the current load and conditions."""
        steps = int((now_s - self._t) / STEP_S + 1e-9)
        if steps <= 0:
            return
        for _ in range(min(steps, MAX_STEPS)):
            self._step(STEP_S)
        if steps > MAX_STEPS:
            # At equilibrium by now: the rest of the gap draws the settled power.
            self._energy_mj += self._power_w * (steps - MAX_STEPS) * STEP_S * 1000.0
        self._t += steps * STEP_S

    def observe(self, now_s: float, load: Load, cond: Conditions) -> None:
        """Integrate up to `now_s` with what held until now, then apply the new load."""
        self._advance(now_s)
        self._load = load
        self._cond = cond

    def read(self, now_s: float) -> Reading:
        self._advance(now_s)
        # The partial step since the last grid point is computed, not committed, so reading
        # at odd instants never changes the trajectory.
        saved = (self._power_w, self._temp_c, self._fan, self._energy_mj)
        partial = now_s - self._t
        if partial > 1e-9:
            self._step(partial)
        power, temp, fan, energy = self._power_w, self._temp_c, self._fan, self._energy_mj
        self._power_w, self._temp_c, self._fan, self._energy_mj = saved
        return self._reading(power, temp, fan, energy)

    def _reading(self, power: float, temp: float, fan: float, energy: float) -> Reading:
        m = self.model
        load, cond = self._load, self._cond
        demand = self._demand_w(load)
        target, reasons = self._target(load, cond, temp)
        busy = load.util_gpu_pct > 0
        if busy:
            dyn_demand = max(demand - m.idle_power_w, 1e-6)
            dyn_target = max(target - m.idle_power_w, 0.0)
            sm = m.sm_clock_boost_mhz * min(1.0, dyn_target / dyn_demand) ** (1.0 / 3.0)
            if cond.power_brake:
                sm = min(sm, m.sm_clock_idle_mhz * 2)
            sm = max(sm, m.sm_clock_idle_mhz)
            mem = m.mem_clock_max_mhz
        elif load.has_context:
            sm, mem = m.sm_clock_boost_mhz * 0.6, m.mem_clock_max_mhz
        else:
            sm, mem = m.sm_clock_idle_mhz, m.mem_clock_idle_mhz
        pstate = (2 if load.has_context else 8) if m.geforce else 0
        hbm_rise = 4.0 + 0.06 * load.util_memory_pct
        return Reading(
            power_mw=round(power * 1000.0),
            enforced_limit_mw=round(self._enforced_limit_w(cond) * 1000.0),
            energy_mj=int(energy),
            temp_c=round(temp),
            memory_temp_c=round(temp + hbm_rise),
            fan_pct=round(fan) if m.has_fan else None,
            sm_clock_mhz=round(sm),
            mem_clock_mhz=round(mem),
            pstate=pstate,
            reasons=reasons,
            util_gpu_pct=round(load.util_gpu_pct),
            util_memory_pct=round(load.util_memory_pct),
            pcie_generation_idle=m.geforce and not load.has_context,
        )
