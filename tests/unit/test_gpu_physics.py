"""The simulated GPU's physics, on an injected clock: power follows load and is capped by the
limit, temperature and fan follow power, the energy counter integrates power, throttling shows
in the clock event reasons."""

from __future__ import annotations

import dataclasses

import pytest

from simulators.gpu_models import MODELS, model
from simulators.gpu_physics import (
    REASON_GPU_IDLE,
    REASON_HW_POWER_BRAKE,
    REASON_HW_SLOWDOWN,
    REASON_HW_THERMAL,
    REASON_SW_POWER_CAP,
    REASON_SW_THERMAL,
    Conditions,
    GpuPhysics,
    Load,
)

FULL = Load(util_gpu_pct=100.0, util_memory_pct=90.0, intensity=1.0, has_context=True)
T0 = 500.0


def physics(key: str = "rtx4090", limit_w: float | None = None, **cond: object) -> GpuPhysics:
    m = model(key)
    c = Conditions(power_limit_w=limit_w or m.power_default_w, ambient_c=25.0, **cond)  # type: ignore[arg-type]
    return GpuPhysics(m, T0, c)


def run(p: GpuPhysics, load: Load, seconds: float, **cond: object) -> None:
    m = p.model
    c = Conditions(
        power_limit_w=float(cond.pop("limit_w", m.power_default_w)),  # type: ignore[arg-type]
        ambient_c=float(cond.pop("ambient_c", 25.0)),  # type: ignore[arg-type]
        **cond,  # type: ignore[arg-type]
    )
    p.observe(T0, load, c)
    p.read(T0 + seconds)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_idle_board_draws_idle_power_and_reports_idle(key: str) -> None:
    p = physics(key)
    r = p.read(T0 + 60)
    m = model(key)
    assert r.power_mw == round(m.idle_power_w * 1000)
    assert r.reasons & REASON_GPU_IDLE
    assert r.util_gpu_pct == 0
    assert r.sm_clock_mhz == round(m.sm_clock_idle_mhz)
    assert r.pstate == (8 if m.geforce else 0)
    assert r.pcie_generation_idle is m.geforce
    assert (r.fan_pct is None) is (not m.has_fan)


def test_full_load_sits_at_the_power_cap_with_swpowercap() -> None:
    p = physics("rtx4090")
    run(p, FULL, 30)
    r = p.read(T0 + 30)
    # 4090: 480 W demanded at full load, 450 W default limit.
    assert r.power_mw == 450_000
    assert r.enforced_limit_mw == 450_000
    assert r.reasons & REASON_SW_POWER_CAP
    assert not r.reasons & REASON_GPU_IDLE
    assert r.pstate == 2
    assert r.util_gpu_pct == 100


def test_a_lower_power_limit_caps_power_and_lowers_the_clock() -> None:
    full, capped = physics("rtx3090"), physics("rtx3090")
    run(full, FULL, 30)
    run(capped, FULL, 30, limit_w=250.0)
    a, b = full.read(T0 + 30), capped.read(T0 + 30)
    assert b.power_mw == 250_000
    assert b.enforced_limit_mw == 250_000
    assert b.sm_clock_mhz < a.sm_clock_mhz
    assert b.reasons & REASON_SW_POWER_CAP


def test_power_follows_load_with_a_lag_not_a_jump() -> None:
    p = physics("rtx3090")
    run(p, Load(util_gpu_pct=50.0, has_context=True), 0.2)
    early = p.read(T0 + 0.2).power_mw
    late = p.read(T0 + 10).power_mw
    m = model("rtx3090")
    target = (m.idle_power_w + 12.0 + (m.full_load_power_w - m.idle_power_w) * 0.5) * 1000
    assert m.idle_power_w * 1000 < early < late
    assert late == pytest.approx(target, rel=1e-3)


def test_energy_counter_integrates_power() -> None:
    p = physics("a100-80gb")
    run(p, FULL, 60)  # settled: 300 W at the cap
    e1 = p.read(T0 + 60).energy_mj
    e2 = p.read(T0 + 160).energy_mj
    assert e2 - e1 == pytest.approx(300.0 * 100 * 1000, rel=1e-4)  # 300 W for 100 s, in mJ


def test_reading_often_or_rarely_gives_the_same_trajectory() -> None:
    often, rarely = physics("h100"), physics("h100")
    run(often, FULL, 0)
    run(rarely, FULL, 0)
    t = T0
    while t + 0.37 < T0 + 90:
        t += 0.37
        often.read(t)
    a, b = often.read(T0 + 90.05), rarely.read(T0 + 90.05)
    assert abs(a.energy_mj - b.energy_mj) <= 1  # float summation order, nothing more
    assert dataclasses.replace(a, energy_mj=0) == dataclasses.replace(b, energy_mj=0)


def test_temperature_and_fan_rise_with_load_then_settle() -> None:
    p = physics("rtx3090")
    idle = p.read(T0)
    run(p, FULL, 0)
    temps = [p.read(T0 + s).temp_c for s in (10, 30, 60, 120, 300)]
    assert temps == sorted(temps)
    assert temps[0] > idle.temp_c
    fans = [p.read(T0 + s).fan_pct for s in (300, 600)]
    assert fans[0] is not None and idle.fan_pct is not None and fans[0] > idle.fan_pct
    assert p.read(T0 + 600).temp_c == p.read(T0 + 900).temp_c  # settled


def test_passive_board_has_no_fan_and_hbm_runs_hotter() -> None:
    p = physics("h100")
    run(p, FULL, 300)
    r = p.read(T0 + 300)
    assert r.fan_pct is None
    assert r.memory_temp_c > r.temp_c


def test_hot_aisle_triggers_the_software_thermal_limiter() -> None:
    m = model("rtx4090")
    p = physics("rtx4090")
    run(p, FULL, 1200, ambient_c=55.0)  # a failed container chiller
    r = p.read(T0 + 1200)
    assert r.reasons & REASON_SW_THERMAL
    assert r.temp_c <= m.temp_slowdown_c
    assert r.power_mw < 450_000


def test_hardware_thermal_slowdown_fault() -> None:
    p = physics("rtx3090")
    run(p, FULL, 30, thermal_throttle=True)
    r = p.read(T0 + 30)
    assert r.reasons & REASON_HW_THERMAL and r.reasons & REASON_HW_SLOWDOWN
    assert r.power_mw < 350_000


def test_power_brake_clamps_the_enforced_limit_and_the_clock() -> None:
    p = physics("l40s")
    run(p, FULL, 30, power_brake=True)
    r = p.read(T0 + 30)
    m = model("l40s")
    assert r.reasons & REASON_HW_POWER_BRAKE and r.reasons & REASON_HW_SLOWDOWN
    assert r.enforced_limit_mw == round(m.power_default_w / 3 * 1000)
    assert r.power_mw == r.enforced_limit_mw
    assert r.sm_clock_mhz <= 2 * m.sm_clock_idle_mhz


def test_a_long_unobserved_gap_is_filled_at_steady_state() -> None:
    p = physics("rtx3090")
    run(p, FULL, 0)
    e_hour = p.read(T0 + 3600).energy_mj
    e_two = p.read(T0 + 7200).energy_mj
    assert e_two - e_hour == pytest.approx(350.0 * 3600 * 1000, rel=1e-3)
