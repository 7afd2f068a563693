"""Earnings formulas against hand-worked examples, and the vectorised path against itself.

Hand-worked figures use the reference defaults (economics.md §0): D = 146.47 T, subsidy
3.125 BTC, fees 0.017 BTC/block, BTC 91,580 USD, FPPS 2.5 %, 0.045 USD/kWh, overhead 1.05
(ASIC) / 1.25 (GPU), AI take 20 %, utilisation 0.6, load 0.8, idle 0.15.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from console.config import MarketConfig, MarketScenario, PowerConfig
from console.economics import (
    KIND_ASIC,
    KIND_GPU,
    MODE_AI,
    MODE_IDLE,
    MODE_MINING,
    MODE_NAMES,
    AccruedRow,
    AccruedToday,
    DeviceEarnings,
    FleetEarnings,
    FleetInputs,
    JobOffers,
    MarketParams,
    blank_columns,
    compute,
    fleet_earnings,
    match_rate_key,
    totals_of,
    what_if,
)
from console.market import REFERENCE_AS_OF, StaticMarket, market_at

GB = 1e9


def market(**market_kw: Any) -> Any:
    power_keys = {"power_price_usd_per_kwh", "overhead_asic", "overhead_gpu"}
    power_kw = {k: market_kw.pop(k) for k in list(market_kw) if k in power_keys}
    power = PowerConfig(**{k.removeprefix("power_"): v for k, v in power_kw.items()})
    return market_at(StaticMarket.from_config(MarketConfig(**market_kw), power), REFERENCE_AS_OF)


def fleet(*rows: dict[str, Any], algorithms: tuple[str, ...] = (), models: tuple[str, ...] = ()):
    cols = blank_columns(len(rows))
    for i, row in enumerate(rows):
        cols["priced"][i] = row.pop("priced", True)
        for key, value in row.items():
            cols[key][i] = value
    return FleetInputs(
        device_ids=tuple(f"d{i}" for i in range(len(rows))),
        gpu_algorithms=algorithms,
        gpu_models=models,
        **cols,
    )


def s19jpro(**kw: Any) -> dict[str, Any]:
    return {"kind": KIND_ASIC, "hashrate_hs": 104e12, "power_w": 3068.0, **kw}


# ---- ASICs -----------------------------------------------------------------------------------


def test_asic_revenue_cost_profit_by_hand() -> None:
    # BTC/day = (H / H_net) · 144 · (subsidy + fees), H_net = D · 2^32 / 600
    #         = 104e12 / 1.04847e21 · 144 · 3.142 = 4.48792e-5 BTC
    # USD/day = 4.48792e-5 · 91580 · 0.975 = 4.00728
    # power   = 3068 W · 1.05 · 24 h / 1000 · 0.045 = 3.479112
    e = fleet_earnings(fleet(s19jpro()), market())
    row = e.row(0)
    assert row is not None
    assert row.revenue_usd_per_day == pytest.approx(4.007282636, rel=1e-9)
    assert row.revenue_usd_per_hour == pytest.approx(4.007282636 / 24, rel=1e-9)
    assert row.power_cost_usd_per_day == pytest.approx(3.479112, rel=1e-12)
    assert row.profit_usd_per_day == pytest.approx(0.528170636, rel=1e-8)
    assert row.j_per_th == pytest.approx(29.5)
    # breakeven: revenue / (3068 · 1.05 · 0.024 kWh/day) = 0.0518315 USD/kWh
    assert row.breakeven_usd_per_kwh == pytest.approx(0.0518315359, rel=1e-8)
    # breakeven hashprice: cost / (0.104 PH · 0.975) = 34.3108 USD/PH/day
    assert row.breakeven_hashprice_usd_per_ph_day == pytest.approx(34.3107692, rel=1e-8)
    assert row.mode is None and row.other_mode is None and row.switch_gain_usd_per_day is None


def test_breakevens_are_where_profit_is_zero() -> None:
    x = fleet(s19jpro(), s19jpro(hashrate_hs=200e12, power_w=3500.0))
    m = market()
    c = compute(x, MarketParams.of(m))
    for i in range(2):
        at_price = market(power_price_usd_per_kwh=float(c.breakeven_usd_per_kwh[i]))
        assert compute(x, MarketParams.of(at_price)).profit_usd_per_day[i] == pytest.approx(
            0, abs=1e-9
        )
        # hashprice scales with the BTC price at fixed difficulty
        factor = c.breakeven_hashprice_usd_per_ph_day[i] / m.hashprice_usd_per_ph_day.value
        at_hp = market(btc_price_usd=91_580 * float(factor))
        assert compute(x, MarketParams.of(at_hp)).profit_usd_per_day[i] == pytest.approx(
            0, abs=1e-9
        )


def test_pps_pays_the_subsidy_only() -> None:
    # 4.48792e-5 BTC/day · 3.125 / 3.142 · 91580 · 0.975 = 3.98560
    row = fleet_earnings(fleet(s19jpro()), market(pool_scheme="PPS")).row(0)
    assert row is not None and row.revenue_usd_per_day == pytest.approx(3.985600967, rel=1e-9)


def test_unknown_is_none_never_zero() -> None:
    x = fleet(
        s19jpro(priced=False),  # lost / never polled
        s19jpro(power_w=math.nan),  # power not reported
        s19jpro(hashrate_hs=0.0, power_w=12.0),  # asleep: earns nothing, still draws a little
    )
    e = fleet_earnings(x, market())
    assert e.row(0) is None
    no_power = e.row(1)
    assert no_power is not None and no_power.revenue_usd_per_day == pytest.approx(4.0072826)
    assert no_power.power_cost_usd_per_day is None and no_power.profit_usd_per_day is None
    assert no_power.breakeven_usd_per_kwh is None
    asleep = e.row(2)
    assert asleep is not None and asleep.revenue_usd_per_day == 0.0
    assert asleep.profit_usd_per_day == pytest.approx(-12 * 1.05 * 0.024 * 0.045)
    assert asleep.j_per_th is None and asleep.breakeven_hashprice_usd_per_ph_day is None
    t = e.totals
    assert (t.devices_priced, t.devices_unpriced, t.devices_power_unknown) == (2, 1, 1)
    assert t.revenue_usd_per_day == pytest.approx(4.0072826)
    assert t.power_cost_usd_per_day == pytest.approx(12 * 1.05 * 0.024 * 0.045)


# ---- GPUs ------------------------------------------------------------------------------------


def rtx4090_mining() -> dict[str, Any]:
    return {
        "kind": KIND_GPU,
        "gpu_mode": MODE_MINING,
        "hashrate_hs": 78e6,
        "power_w": 300.0,
        "gpu_algorithm": 0,
        "gpu_model": 0,
        "gpu_vram_bytes": 24 * GB,
        "gpu_power_limit_w": 450.0,
    }


def test_gpu_mining_now_and_ai_estimate_by_hand() -> None:
    x = fleet(rtx4090_mining(), algorithms=("kawpow",), models=("NVIDIA GeForce RTX 4090",))
    row = fleet_earnings(x, market()).row(0)
    assert row is not None
    # mining: 78 MH/s · 0.012 USD/MH/day · (1 − 0.025) = 0.9126; power 300 · 1.25 · 0.024 · 0.045
    assert row.mode == "mining"
    assert row.revenue_usd_per_day == pytest.approx(0.9126)
    assert row.power_cost_usd_per_day == pytest.approx(0.405)
    assert row.profit_usd_per_day == pytest.approx(0.5076)
    # AI (no queued job): 0.35 USD/h · 24 · 0.6 · 0.8 = 4.032
    # power: 450 W · 0.8 · 0.6 + 450 W · 0.15 · 0.4 = 243 W → 243 · 1.25 · 0.024 · 0.045 = 0.32805
    assert row.other_mode == "ai"
    assert row.other_revenue_usd_per_day == pytest.approx(4.032)
    assert row.other_power_cost_usd_per_day == pytest.approx(0.32805)
    assert row.other_profit_usd_per_day == pytest.approx(3.70395)
    assert row.switch_gain_usd_per_day == pytest.approx(3.70395 - 0.5076)
    # u*: a = 0.35 · 24 · 0.8 − (360 − 67.5) W · 0.00135 = 6.325125; b = −67.5 · 0.00135
    #     u* = (0.5076 + 0.091125) / 6.325125 = 0.094658
    assert row.breakeven_utilization == pytest.approx(0.5987250 / 6.325125)
    assert row.j_per_th is None


def test_gpu_running_an_ai_job_and_its_mining_estimate() -> None:
    h100 = {
        "kind": KIND_GPU,
        "gpu_mode": MODE_AI,
        "power_w": 560.0,
        "gpu_job_rate_usd_per_hour": 2.0,
        "gpu_model": 0,
        "gpu_vram_bytes": 80 * GB,
        "gpu_power_limit_w": 700.0,
    }
    rtx = {
        **rtx4090_mining(),
        "gpu_mode": MODE_AI,
        "hashrate_hs": math.nan,
        "power_w": 380.0,
        "gpu_model": 1,
        "gpu_job_rate_usd_per_hour": 0.4,
        "gpu_mining_hashrate_hs": 78e6,
        "gpu_mining_power_w": 300.0,
    }
    waiting = {**rtx, "gpu_job_rate_usd_per_hour": math.nan}  # AI mode, no job yet
    x = fleet(
        h100, rtx, waiting, algorithms=("kawpow",), models=("NVIDIA H100 80GB HBM3", "RTX 4090")
    )
    e = fleet_earnings(x, market())
    h = e.row(0)
    assert h is not None and h.mode == "ai"
    # 2.00 · 24 · 0.8 = 38.4; power 560 · 1.25 · 0.024 · 0.045 = 0.756
    assert h.revenue_usd_per_day == pytest.approx(38.4)
    assert h.profit_usd_per_day == pytest.approx(38.4 - 0.756)
    # An H100 has no mining figures: no estimate, no invented gain.
    assert h.other_mode == "mining" and h.other_profit_usd_per_day is None
    assert h.switch_gain_usd_per_day is None
    r = e.row(1)
    assert r is not None
    # 0.4 · 24 · 0.8 = 7.68 now; mining estimate from the configured figures: 0.9126 − 0.405
    assert r.revenue_usd_per_day == pytest.approx(7.68)
    assert r.other_profit_usd_per_day == pytest.approx(0.5076)
    assert r.switch_gain_usd_per_day == pytest.approx(0.5076 - (7.68 - 380 * 0.00135))
    w = e.row(2)
    assert w is not None and w.revenue_usd_per_day == 0.0
    assert e.totals.ai_revenue_usd_per_day == pytest.approx(38.4 + 7.68)
    assert e.totals.ai_share_of_revenue == pytest.approx(1.0)


def test_idle_gpu_estimates_the_better_mode_and_takes_the_best_job_that_fits() -> None:
    def idle(model: int, vram_gb: float) -> dict[str, Any]:
        return {
            "kind": KIND_GPU,
            "gpu_mode": MODE_IDLE,
            "power_w": 60.0,
            "gpu_model": model,
            "gpu_vram_bytes": vram_gb * GB,
            "gpu_power_limit_w": 450.0,
            "gpu_algorithm": 0,
            "gpu_mining_hashrate_hs": 78e6,
            "gpu_mining_power_w": 300.0,
        }

    x = fleet(
        idle(0, 24),
        idle(0, 16),
        idle(1, 80),
        idle(1, 141),
        algorithms=("kawpow",),
        models=("RTX 4090", "H200"),
    )
    offers = JobOffers(
        rate_usd_per_gpu_hour=np.array([1.5, 0.5, 3.0, 0.2]),
        min_vram_bytes=np.array([80, 20, 141, 8]) * GB,
    )
    assert offers.best_rate_for(np.array([24, 16, 80, 141, 4]) * GB).tolist()[:4] == [
        0.5,
        0.2,
        1.5,
        3.0,
    ]
    assert math.isnan(offers.best_rate_for(np.array([4 * GB]))[0])
    e = fleet_earnings(x, market(), offers=offers)
    rows = [e.row(i) for i in range(4)]
    assert all(r is not None and r.mode == "idle" for r in rows)
    # 24 GB → the 0.5 USD/h job, billed all day: 0.5 · 24 · 0.8 = 9.6; power 450 · 0.8 W all day
    r0 = rows[0]
    assert r0 is not None and r0.other_mode == "ai"
    assert r0.other_revenue_usd_per_day == pytest.approx(9.6)
    assert r0.other_power_cost_usd_per_day == pytest.approx(360 * 1.25 * 0.024 * 0.045)
    # idle now costs 60 W: gain = other profit − (−60 W cost)
    assert r0.switch_gain_usd_per_day == pytest.approx(9.6 - 360 * 0.00135 + 60 * 0.00135)
    assert rows[1] is not None and rows[1].other_revenue_usd_per_day == pytest.approx(
        0.2 * 24 * 0.8
    )
    assert rows[2] is not None and rows[2].other_revenue_usd_per_day == pytest.approx(
        1.5 * 24 * 0.8
    )
    assert rows[3] is not None and rows[3].other_revenue_usd_per_day == pytest.approx(
        3.0 * 24 * 0.8
    )
    # Without offers, a 4090 that rents badly is better off mining.
    cheap = market(ai_rate_usd_per_gpu_hour={"RTX4090": 0.01})
    r = fleet_earnings(x, cheap).row(0)
    assert r is not None and r.other_mode == "mining"
    assert r.other_profit_usd_per_day == pytest.approx(0.5076)


def test_gpus_without_economics_are_not_priced() -> None:
    e = fleet_earnings(fleet({"kind": KIND_GPU, "priced": False}, s19jpro()), market())
    assert e.row(0) is None
    assert e.totals.devices_unpriced == 1


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA GeForce RTX 4090", "RTX4090"),
        ("NVIDIA GeForce RTX 3090 Ti", "RTX3090"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
        ("NVIDIA A100-PCIE-40GB", None),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L40", "L40"),
        ("Tesla T4", None),
    ],
)
def test_gpu_model_matches_the_longest_rate_key(name: str, key: str | None) -> None:
    keys = ["H100", "H100 NVL", "H200", "A100 80GB", "L40S", "L40", "RTX4090", "RTX3090"]
    assert match_rate_key(name, keys) == key


# ---- fleet totals and what-ifs ---------------------------------------------------------------


def test_what_ifs_move_only_what_they_should() -> None:
    x = fleet(
        s19jpro(),
        {**rtx4090_mining(), "gpu_mode": MODE_AI, "gpu_job_rate_usd_per_hour": 0.4},
        algorithms=("kawpow",),
        models=("RTX 4090",),
    )
    p = MarketParams.of(market())
    base = totals_of(x, compute(x, p))
    btc = what_if(x, p, MarketScenario(name="b", btc_price_factor=0.9)).totals
    diff = what_if(x, p, MarketScenario(name="d", difficulty_factor=1.05)).totals
    power = what_if(x, p, MarketScenario(name="p", power_price_factor=1.25)).totals
    assert btc.asic_revenue_usd_per_day == pytest.approx(base.asic_revenue_usd_per_day * 0.9)
    assert btc.ai_revenue_usd_per_day == base.ai_revenue_usd_per_day  # AI is paid in USD
    assert diff.asic_revenue_usd_per_day == pytest.approx(base.asic_revenue_usd_per_day / 1.05)
    assert power.revenue_usd_per_day == base.revenue_usd_per_day
    assert power.power_cost_usd_per_day == pytest.approx(base.power_cost_usd_per_day * 1.25)
    assert base.ai_share_of_revenue == pytest.approx(7.68 / (7.68 + 4.007282636))
    e = fleet_earnings(x, market())
    assert [r.scenario.name for r in e.scenarios] == ["btc-10pct", "difficulty+5pct", "power+25pct"]
    assert_totals_equal(e.scenarios[0].totals, btc)


def assert_totals_equal(a: Any, b: Any) -> None:
    for name in a.__struct_fields__:
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-12), name


@pytest.mark.parametrize(
    "scenario",
    [
        MarketScenario(name="btc-10pct", btc_price_factor=0.9),
        MarketScenario(name="difficulty+5pct", difficulty_factor=1.05),
        MarketScenario(name="power+25pct", power_price_factor=1.25),
        MarketScenario(
            name="all", btc_price_factor=1.7, difficulty_factor=0.8, power_price_factor=0.5
        ),
    ],
)
def test_snapshot_what_ifs_equal_a_full_recompute_of_every_device(
    scenario: MarketScenario,
) -> None:
    x = random_fleet(2_000, seed=11)
    offers = JobOffers(np.array([0.8, 2.2]), np.array([24, 80]) * GB)
    m = market(scenarios=(scenario,))
    fast = fleet_earnings(x, m, offers=offers).scenarios[0]
    full = what_if(x, MarketParams.of(m), scenario, offers)
    assert fast.scenario == scenario
    assert_totals_equal(fast.totals, full.totals)


def random_fleet(n: int, seed: int) -> FleetInputs:
    rng = np.random.default_rng(seed)
    cols = blank_columns(n)
    kind = (rng.random(n) < 0.3).astype(np.int8)
    gpu = kind == KIND_GPU
    cols["kind"][:] = kind
    cols["priced"][:] = rng.random(n) < 0.95
    cols["power_w"][:] = np.where(rng.random(n) < 0.05, np.nan, rng.uniform(50, 3600, n))
    cols["hashrate_hs"][:] = np.where(gpu, rng.uniform(1e6, 1e8, n), rng.uniform(0, 3e14, n))
    cols["gpu_mode"][:] = np.where(gpu, rng.integers(1, 4, n), 0)
    cols["gpu_algorithm"][:] = np.where(gpu, rng.integers(-1, 3, n), -1)
    cols["gpu_mining_hashrate_hs"][:] = np.where(gpu, rng.uniform(1e6, 1e8, n), np.nan)
    cols["gpu_mining_power_w"][:] = np.where(gpu, rng.uniform(100, 400, n), np.nan)
    cols["gpu_job_rate_usd_per_hour"][:] = np.where(
        gpu & (rng.random(n) < 0.7), rng.uniform(0.1, 3, n), np.nan
    )
    cols["gpu_vram_bytes"][:] = np.where(gpu, rng.choice([16, 24, 48, 80, 141], n) * GB, np.nan)
    cols["gpu_model"][:] = np.where(gpu, rng.integers(-1, 4, n), -1)
    cols["gpu_power_limit_w"][:] = np.where(gpu, rng.uniform(300, 700, n), np.nan)
    return FleetInputs(
        device_ids=tuple(f"d{i}" for i in range(n)),
        gpu_algorithms=("kawpow", "etchash", "unknown-algo"),
        gpu_models=("RTX 4090", "H100", "A100 80GB", "Tesla T4"),
        **cols,
    )


def test_each_row_is_computed_as_if_it_were_alone() -> None:
    """The vectorised path has no cross-row leaks: row i of the fleet equals a fleet of one."""
    x = random_fleet(300, seed=7)
    offers = JobOffers(np.array([0.8, 2.2]), np.array([24, 80]) * GB)
    p = MarketParams.of(market())
    whole = compute(x, p, offers)
    names = [f.name for f in whole.__dataclass_fields__.values()]
    for i in range(len(x)):
        one = FleetInputs(
            device_ids=(x.device_ids[i],),
            gpu_algorithms=x.gpu_algorithms,
            gpu_models=x.gpu_models,
            **{k: getattr(x, k)[i : i + 1].copy() for k in blank_columns(0)},
        )
        alone = compute(one, p, offers)
        for name in names:
            np.testing.assert_array_equal(getattr(alone, name), getattr(whole, name)[i : i + 1])


def expected_row(e: FleetEarnings, i: int) -> DeviceEarnings | None:
    """Row i read field by field from the columns: the oracle for the batch conversion."""
    x, c = e.inputs, e.columns
    if not x.priced[i]:
        return None

    def opt(value: float) -> float | None:
        v = float(value)
        return v if math.isfinite(v) else None

    gpu = bool(x.kind[i] == KIND_GPU)
    accrued = None
    if e.accrued is not None:
        a = e.accrued
        rev, cost = float(a.revenue_usd[i]), float(a.power_cost_usd[i])
        complete = bool(a.cost_complete[i])
        accrued = AccruedRow(
            revenue_usd=rev,
            power_cost_usd=cost if complete else None,
            profit_usd=rev - cost if complete else None,
            covered_s=float(a.covered_s[i]),
            cost_covered_s=float(a.cost_covered_s[i]),
        )
    revenue = opt(c.revenue_usd_per_day[i])
    return DeviceEarnings(
        revenue_usd_per_day=revenue,
        revenue_usd_per_hour=None if revenue is None else revenue / 24,
        power_cost_usd_per_day=opt(c.power_cost_usd_per_day[i]),
        profit_usd_per_day=opt(c.profit_usd_per_day[i]),
        power_estimated=bool(x.power_estimated[i]),
        j_per_th=opt(c.j_per_th[i]),
        breakeven_usd_per_kwh=opt(c.breakeven_usd_per_kwh[i]),
        breakeven_hashprice_usd_per_ph_day=opt(c.breakeven_hashprice_usd_per_ph_day[i]),
        mode=MODE_NAMES[int(x.gpu_mode[i])] if gpu else None,
        other_mode=MODE_NAMES[int(c.other_mode[i])] if gpu else None,
        other_revenue_usd_per_day=opt(c.other_revenue_usd_per_day[i]),
        other_power_cost_usd_per_day=opt(c.other_power_cost_usd_per_day[i]),
        other_profit_usd_per_day=opt(c.other_profit_usd_per_day[i]),
        switch_gain_usd_per_day=opt(c.switch_gain_usd_per_day[i]),
        breakeven_utilization=opt(c.breakeven_utilization[i]),
        accrued_today=accrued,
    )


def test_batch_rows_are_the_columns_field_by_field() -> None:
    """`rows` (the MQTT bridge's batch path; `row` is one of it) gives every column of the
    row: ASICs and GPUs in every mode, unpriced rows (None), unknown figures (None), accrued
    figures with and without a known cost."""
    n = 300
    x = random_fleet(n, seed=11)
    rng = np.random.default_rng(3)
    covered = rng.uniform(0, 86400, n)
    # A third of the devices had no power figure for part of the day.
    cost_covered = np.where(rng.uniform(size=n) < 0.33, covered * 0.5, covered)
    accrued = AccruedToday(
        day="2026-11-26",
        timezone="UTC",
        revenue_usd=rng.uniform(0, 20, n),
        power_cost_usd=rng.uniform(0, 15, n),
        covered_s=covered,
        cost_covered_s=cost_covered,
        persisted=True,
    )
    offers = JobOffers(np.array([0.8, 2.2]), np.array([24, 80]) * GB)
    for fleet_ in (
        fleet_earnings(x, market(), offers=offers, accrued=accrued),
        fleet_earnings(x, market()),
    ):
        indices = [*rng.permutation(n).tolist(), 0, 0, n - 1]
        batch = fleet_.rows(indices)
        assert batch == [expected_row(fleet_, i) for i in indices]
        assert any(r is None for r in batch) and any(r is not None and r.mode for r in batch)
        assert [fleet_.row(i) for i in indices[:20]] == batch[:20]
        assert fleet_.rows([]) == []
    with_cost = [
        r.accrued_today
        for r in fleet_earnings(x, market(), accrued=accrued).rows(range(n))
        if r is not None and r.accrued_today is not None
    ]
    assert any(a.profit_usd is None for a in with_cost)
    assert any(a.profit_usd is not None for a in with_cost)


def test_inputs_and_results_are_read_only() -> None:
    x = fleet(s19jpro())
    with pytest.raises(ValueError):
        x.power_w[0] = 1.0
    c = compute(x, MarketParams.of(market()))
    with pytest.raises(ValueError):
        c.revenue_usd_per_day[0] = 1.0


def test_inputs_reject_mismatched_lengths() -> None:
    cols = blank_columns(2)
    cols["power_w"] = np.zeros(3)
    with pytest.raises(ValueError, match="power_w"):
        FleetInputs(device_ids=("a", "b"), **cols)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshot_totals_equal_the_column_sums(seed: int) -> None:
    x = random_fleet(3_000, seed=seed)
    offers = JobOffers(np.array([0.8, 2.2]), np.array([24, 80]) * GB)
    m = market(power_price_usd_per_kwh=0.07, overhead_gpu=1.4)
    e = fleet_earnings(x, m, offers=offers)
    assert_totals_equal(e.totals, totals_of(x, e.columns))
    assert e.totals.devices_priced + e.totals.devices_unpriced == 3_000
