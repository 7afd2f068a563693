"""Earnings of every device, vectorised: arrays in (`FleetInputs`), arrays out (`EarningsColumns`).

Formulas (shared/reference/economics.md §1, §3.2, §4.7), per device and per day:

* ASIC revenue = H · 86400 · (subsidy + fees·pays_fees) / (D · 2^32) · btc_usd · (1 − pool_fee)
* power cost   = W · overhead · 24/1000 · usd_per_kwh  (measured W; overhead per device kind)
* profit       = revenue − power cost
* J/TH         = W / (H / 1e12)
* breakeven power price     = revenue / (W · overhead · 24/1000)            [USD/kWh]
* breakeven hashprice       = cost / (PH · payout_share · (1 − pool_fee))     [USD/PH/day]
* GPU mining   = hashrate · usd_per_hs_day(algorithm) · (1 − gpu_pool_fee)
* GPU AI now   = job rate · 24 · (1 − platform fee) while a job runs, else 0
* GPU AI estimate (other mode) = best queued job that fits the VRAM (rate · 24, billed all day)
  or the model's rate · 24 · expected utilisation; × (1 − platform fee); power = limit · load
  factor while billed, limit · idle fraction otherwise
* switch gain  = estimated profit in the other mode − profit now
* breakeven utilisation u*: the utilisation at which renting (at the model's rate) earns what
  mining earns (reference §4.7); > 1 means renting cannot catch up.

Unknown is NaN in the arrays (None in `DeviceEarnings`), never 0: a device without a usable
reading (never polled, lost) is not priced, and a device whose power is unknown has a revenue
but no cost or profit. No per-device Python loop runs here; the only per-device code is
`FleetEarnings.row`, which presenters call for the rows they show.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from console.config import MarketScenario
from console.market import (
    HASHES_PER_DIFFICULTY,
    PH,
    SECONDS_PER_DAY,
    MarketSnapshot,
)

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
I16 = npt.NDArray[np.int16]
Bool = npt.NDArray[np.bool_]

KIND_ASIC: Final = 0
KIND_GPU: Final = 1

MODE_NONE: Final = 0  # ASICs: no GPU workload mode
MODE_MINING: Final = 1
MODE_AI: Final = 2
MODE_IDLE: Final = 3
MODE_NAMES: Final = ("none", "mining", "ai", "idle")

KWH_PER_W_DAY: Final = 24 / 1000
NAN: Final = math.nan


def _frozen(array: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class FleetInputs:
    """What the earnings model needs about each device, one array element per device.

    Row i is `device_ids[i]`, in the snapshot's device order. Every array has length n.
    Built from a `Snapshot` by `console.fleet_inputs.FleetInputsBuilder`; benchmarks and tests
    build it directly. Arrays are made read-only on construction.
    """

    device_ids: tuple[str, ...]
    kind: I8  # KIND_ASIC / KIND_GPU
    priced: Bool  # has a usable reading and is not lost: only these rows are priced
    power_w: F64  # measured (or nameplate-estimated) draw; NaN unknown
    power_estimated: Bool  # power_w is a nameplate estimate, not a meter
    hashrate_hs: F64  # ASIC: SHA-256 H/s; GPU: current mining H/s on its algorithm; NaN unknown
    gpu_mode: I8  # MODE_*: what the GPU is doing now (MODE_NONE for ASICs)
    gpu_algorithm: I16  # index into gpu_algorithms; -1 unknown
    gpu_mining_hashrate_hs: F64  # configured or last measured mining H/s, for the estimate
    gpu_mining_power_w: F64  # configured or last measured power while mining
    gpu_job_rate_usd_per_hour: F64  # rate of the AI job running now; NaN when none
    gpu_vram_bytes: F64  # total VRAM (to match queued jobs' minimum)
    gpu_model: I16  # index into gpu_models; -1 unknown
    gpu_power_limit_w: F64  # default power limit (≈ TDP), for AI/idle power estimates
    reading_at: F64  # unix time of the reading each row comes from (NaN: none); for accrual
    gpu_algorithms: tuple[str, ...] = ()
    gpu_models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.device_ids)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                if value.shape != (n,):
                    raise ValueError(f"FleetInputs.{f.name} has shape {value.shape}, want ({n},)")
                _frozen(value)

    def __len__(self) -> int:
        return len(self.device_ids)

    @classmethod
    def empty(cls, device_ids: Sequence[str]) -> FleetInputs:
        """All rows unpriced and unknown; a starting point for builders and tests."""
        return cls(**blank_columns(len(device_ids)), device_ids=tuple(device_ids))

    @functools.cached_property
    def masks(self) -> _Masks:
        return _Masks.of(self)


def blank_columns(n: int) -> dict[str, Any]:
    """Fresh, writable arrays for every column of `FleetInputs`: unknown everywhere."""
    return {
        "kind": np.zeros(n, np.int8),
        "priced": np.zeros(n, np.bool_),
        "power_w": np.full(n, NAN),
        "power_estimated": np.zeros(n, np.bool_),
        "hashrate_hs": np.full(n, NAN),
        "gpu_mode": np.zeros(n, np.int8),
        "gpu_algorithm": np.full(n, -1, np.int16),
        "gpu_mining_hashrate_hs": np.full(n, NAN),
        "gpu_mining_power_w": np.full(n, NAN),
        "gpu_job_rate_usd_per_hour": np.full(n, NAN),
        "gpu_vram_bytes": np.full(n, NAN),
        "gpu_model": np.full(n, -1, np.int16),
        "gpu_power_limit_w": np.full(n, NAN),
        "reading_at": np.full(n, NAN),
    }


@dataclass(frozen=True, eq=False)
class _Masks:
    """Boolean masks that depend only on the inputs: computed once per inputs, reused by every
    market update and what-if."""

    asic: Bool
    gpu: Bool
    mining: Bool
    ai: Bool
    idle: Bool
    job_running: Bool
    unpriced: Bool

    @classmethod
    def of(cls, x: FleetInputs) -> _Masks:
        gpu = (x.kind == KIND_GPU) & x.priced
        return cls(
            asic=(x.kind == KIND_ASIC) & x.priced,
            gpu=gpu,
            mining=gpu & (x.gpu_mode == MODE_MINING),
            ai=gpu & (x.gpu_mode == MODE_AI),
            idle=gpu & (x.gpu_mode == MODE_IDLE),
            job_running=gpu & (x.gpu_mode == MODE_AI) & ~np.isnan(x.gpu_job_rate_usd_per_hour),
            unpriced=~x.priced,
        )


@dataclass(frozen=True, eq=False)
class JobOffers:
    """Queued AI jobs a GPU could take: rate per GPU-hour and the VRAM each needs."""

    rate_usd_per_gpu_hour: F64
    min_vram_bytes: F64

    @classmethod
    def none(cls) -> JobOffers:
        return cls(np.zeros(0), np.zeros(0))

    def best_rate_for(self, vram_bytes: F64) -> F64:
        """Per GPU, the highest rate among jobs whose minimum VRAM fits; NaN if none fits.

        Sorted by VRAM need, a running maximum of rates answers every GPU with one
        `searchsorted`: O((G + J) log J), not G × J."""
        if self.rate_usd_per_gpu_hour.size == 0:
            return np.full(vram_bytes.shape, NAN)
        order = np.argsort(self.min_vram_bytes, kind="stable")
        need = self.min_vram_bytes[order]
        best = np.maximum.accumulate(self.rate_usd_per_gpu_hour[order])
        fits = np.searchsorted(need, np.nan_to_num(vram_bytes, nan=-1.0), side="right") - 1
        out = np.where(fits >= 0, best[np.maximum(fits, 0)], NAN)
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class MarketParams:
    """The scalars of one `MarketSnapshot` that the formulas use (plain floats, no sources)."""

    btc_price_usd: float
    network_difficulty: float
    block_subsidy_btc: float
    fees_per_block_btc: float
    pays_fees: bool
    pool_fee: float
    power_usd_per_kwh: float
    overhead_asic: float
    overhead_gpu: float
    gpu_pool_fee: float
    ai_platform_fee: float
    ai_expected_utilization: float
    ai_load_factor: float
    ai_idle_power_fraction: float
    gpu_mining_usd_per_mhs_day: Mapping[str, float]
    ai_rate_usd_per_gpu_hour: Mapping[str, float]

    @classmethod
    def of(cls, m: MarketSnapshot) -> MarketParams:
        return cls(
            btc_price_usd=m.btc_price_usd.value,
            network_difficulty=m.network_difficulty.value,
            block_subsidy_btc=m.block_subsidy_btc.value,
            fees_per_block_btc=m.fees_per_block_btc.value,
            pays_fees=m.pays_fees,
            pool_fee=m.pool_fee.value,
            power_usd_per_kwh=m.power_price_usd_per_kwh.value,
            overhead_asic=m.overhead_asic.value,
            overhead_gpu=m.overhead_gpu.value,
            gpu_pool_fee=m.gpu_pool_fee.value,
            ai_platform_fee=m.ai_platform_fee.value,
            ai_expected_utilization=m.ai_expected_utilization.value,
            ai_load_factor=m.ai_load_factor.value,
            ai_idle_power_fraction=m.ai_idle_power_fraction.value,
            gpu_mining_usd_per_mhs_day={
                k: f.value for k, f in m.gpu_mining_usd_per_mhs_day.items()
            },
            ai_rate_usd_per_gpu_hour={k: f.value for k, f in m.ai_rate_usd_per_gpu_hour.items()},
        )

    def scaled(self, scenario: MarketScenario) -> MarketParams:
        return replace(
            self,
            btc_price_usd=self.btc_price_usd * scenario.btc_price_factor,
            network_difficulty=self.network_difficulty * scenario.difficulty_factor,
            power_usd_per_kwh=self.power_usd_per_kwh * scenario.power_price_factor,
        )

    @property
    def payout_share(self) -> float:
        """The part of the hashprice (subsidy + fees) the payout scheme pays."""
        full = self.block_subsidy_btc + self.fees_per_block_btc
        paid = self.block_subsidy_btc + (self.fees_per_block_btc if self.pays_fees else 0.0)
        return paid / full if full > 0 else 0.0

    @property
    def hashprice_usd_per_ph_day(self) -> float:
        """Gross hashprice (index definition: subsidy + fees, before pool fee)."""
        btc = (
            PH
            * SECONDS_PER_DAY
            * (self.block_subsidy_btc + self.fees_per_block_btc)
            / (self.network_difficulty * HASHES_PER_DIFFICULTY)
        )
        return btc * self.btc_price_usd

    @property
    def asic_usd_per_hs_day(self) -> float:
        """What one H/s earns per day after the payout scheme and the pool fee."""
        return self.hashprice_usd_per_ph_day / PH * self.payout_share * (1.0 - self.pool_fee)


@dataclass(frozen=True, eq=False)
class EarningsColumns:
    """Per-device results, same row order as the inputs. USD per day unless named otherwise."""

    revenue_usd_per_day: F64
    power_cost_usd_per_day: F64
    profit_usd_per_day: F64
    j_per_th: F64
    breakeven_usd_per_kwh: F64
    breakeven_hashprice_usd_per_ph_day: F64
    other_mode: I8  # MODE_* the estimate is for (MODE_NONE for ASICs)
    other_revenue_usd_per_day: F64
    other_power_cost_usd_per_day: F64
    other_profit_usd_per_day: F64
    switch_gain_usd_per_day: F64
    breakeven_utilization: F64

    def __post_init__(self) -> None:
        for f in fields(self):
            _frozen(getattr(self, f.name))


class EarningsTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Fleet sums over the priced devices (unknown values are left out and counted)."""

    devices_priced: int
    devices_unpriced: int  # no usable reading (pending, lost): earnings unknown
    devices_power_unknown: int  # priced, but no power figure: revenue counted, cost not
    revenue_usd_per_day: float
    power_cost_usd_per_day: float
    profit_usd_per_day: float  # revenue − power cost of the sums above
    asic_revenue_usd_per_day: float
    gpu_mining_revenue_usd_per_day: float
    ai_revenue_usd_per_day: float
    ai_share_of_revenue: float | None  # None when the fleet earns nothing
    power_w: float  # measured or estimated draw of the priced devices (before overhead)

    @property
    def revenue_usd_per_hour(self) -> float:
        return self.revenue_usd_per_day / 24

    @property
    def profit_usd_per_hour(self) -> float:
        return self.profit_usd_per_day / 24


class ScenarioResult(msgspec.Struct, frozen=True, kw_only=True):
    scenario: MarketScenario
    totals: EarningsTotals


class DeviceEarnings(msgspec.Struct, frozen=True, kw_only=True):
    """One device's row, for presenters. None = unknown (shown as "—")."""

    revenue_usd_per_day: float | None
    revenue_usd_per_hour: float | None
    power_cost_usd_per_day: float | None
    profit_usd_per_day: float | None
    power_estimated: bool
    j_per_th: float | None
    breakeven_usd_per_kwh: float | None
    breakeven_hashprice_usd_per_ph_day: float | None
    mode: str | None  # GPUs: mining / ai / idle; None for ASICs
    other_mode: str | None
    other_revenue_usd_per_day: float | None
    other_power_cost_usd_per_day: float | None
    other_profit_usd_per_day: float | None
    switch_gain_usd_per_day: float | None
    breakeven_utilization: float | None
    accrued_today: AccruedRow | None = None


class AccruedRow(msgspec.Struct, frozen=True, kw_only=True):
    """Earnings accrued today (site timezone) for one device, integrated over its readings."""

    revenue_usd: float
    power_cost_usd: float
    profit_usd: float
    covered_s: float  # seconds of today the integral covers (gaps are not filled in)


@dataclass(frozen=True, eq=False)
class AccruedToday:
    """Today's accrued earnings for every device (rows in snapshot order)."""

    day: str  # ISO date in the site's timezone
    timezone: str  # IANA name, or "local"
    revenue_usd: F64
    power_cost_usd: F64
    covered_s: F64
    persisted: bool  # the values are in SQLite (False: in memory only, see `note`)
    note: str | None = None  # why not persisted / read-only, in operator words

    @property
    def revenue_total_usd(self) -> float:
        return float(np.sum(self.revenue_usd))

    @property
    def power_cost_total_usd(self) -> float:
        return float(np.sum(self.power_cost_usd))


@dataclass(frozen=True, eq=False)
class FleetEarnings:
    """Earnings of the whole fleet at one instant, in the snapshot's device order."""

    device_ids: tuple[str, ...]
    inputs: FleetInputs
    columns: EarningsColumns
    totals: EarningsTotals
    scenarios: tuple[ScenarioResult, ...] = ()
    accrued: AccruedToday | None = None

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {device_id: i for i, device_id in enumerate(self.device_ids)}

    def index_of(self, device_id: str) -> int | None:
        return self._index.get(device_id)

    def row(self, i: int) -> DeviceEarnings | None:
        """Row i as a struct, or None when the device is not priced (no usable reading)."""
        x, c = self.inputs, self.columns
        if not x.priced[i]:
            return None
        gpu = bool(x.kind[i] == KIND_GPU)
        revenue = _opt(c.revenue_usd_per_day[i])
        accrued = None
        if self.accrued is not None:
            rev, cost = float(self.accrued.revenue_usd[i]), float(self.accrued.power_cost_usd[i])
            accrued = AccruedRow(
                revenue_usd=rev,
                power_cost_usd=cost,
                profit_usd=rev - cost,
                covered_s=float(self.accrued.covered_s[i]),
            )
        return DeviceEarnings(
            revenue_usd_per_day=revenue,
            revenue_usd_per_hour=None if revenue is None else revenue / 24,
            power_cost_usd_per_day=_opt(c.power_cost_usd_per_day[i]),
            profit_usd_per_day=_opt(c.profit_usd_per_day[i]),
            power_estimated=bool(x.power_estimated[i]),
            j_per_th=_opt(c.j_per_th[i]),
            breakeven_usd_per_kwh=_opt(c.breakeven_usd_per_kwh[i]),
            breakeven_hashprice_usd_per_ph_day=_opt(c.breakeven_hashprice_usd_per_ph_day[i]),
            mode=MODE_NAMES[int(x.gpu_mode[i])] if gpu else None,
            other_mode=MODE_NAMES[int(c.other_mode[i])] if gpu else None,
            other_revenue_usd_per_day=_opt(c.other_revenue_usd_per_day[i]),
            other_power_cost_usd_per_day=_opt(c.other_power_cost_usd_per_day[i]),
            other_profit_usd_per_day=_opt(c.other_profit_usd_per_day[i]),
            switch_gain_usd_per_day=_opt(c.switch_gain_usd_per_day[i]),
            breakeven_utilization=_opt(c.breakeven_utilization[i]),
            accrued_today=accrued,
        )

    def by_id(self, device_id: str) -> DeviceEarnings | None:
        i = self.index_of(device_id)
        return None if i is None else self.row(i)


def _opt(value: np.floating | float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------------------------------------
# GPU lookups: names to rates (once per distinct name list, not per device)

_WORD = re.compile(r"[A-Za-z0-9]+")


def _compact(text: str) -> str:
    return "".join(_WORD.findall(text)).upper()


def match_rate_key(gpu_name: str, keys: Sequence[str]) -> str | None:
    """The rate key for a GPU name: every word of the key appears in the name (ignoring case,
    spaces and punctuation); the longest such key wins, so "H100 NVL" beats "H100" and "L40S"
    beats "L40"."""
    name = _compact(gpu_name)
    best: tuple[int, str] | None = None
    for key in keys:
        words = [w.upper() for w in _WORD.findall(key)]
        if not words or not all(w in name for w in words):
            continue
        score = sum(len(w) for w in words)
        if best is None or score > best[0]:
            best = (score, key)
    return None if best is None else best[1]


def _lookup(names: tuple[str, ...], table: Mapping[str, float], *, exact: bool) -> F64:
    """Rates for `names` (one per index, NaN when no key matches) plus a trailing NaN, so an
    index of -1 reads NaN."""
    out = np.full(len(names) + 1, NAN)
    keys = list(table)
    for i, name in enumerate(names):
        key = (name if name in table else None) if exact else match_rate_key(name, keys)
        if key is not None:
            out[i] = table[key]
    return out


# ---------------------------------------------------------------------------------------------
# The computation


def compute(x: FleetInputs, p: MarketParams, offers: JobOffers | None = None) -> EarningsColumns:
    """Every per-device figure, for the whole fleet at once."""
    m = x.masks
    price = p.power_usd_per_kwh
    overhead = np.where(x.kind == KIND_GPU, p.overhead_gpu, p.overhead_asic)
    kwh_per_day = x.power_w * overhead * KWH_PER_W_DAY

    # Revenue now.
    algo_usd_per_hs_day = (
        _lookup(x.gpu_algorithms, p.gpu_mining_usd_per_mhs_day, exact=True)
        / 1e6
        * (1.0 - p.gpu_pool_fee)
    )[x.gpu_algorithm]
    ai_take = 1.0 - p.ai_platform_fee
    revenue = np.full(len(x), NAN)
    revenue[m.asic] = x.hashrate_hs[m.asic] * p.asic_usd_per_hs_day
    revenue[m.mining] = x.hashrate_hs[m.mining] * algo_usd_per_hs_day[m.mining]
    revenue[m.ai] = 0.0
    revenue[m.job_running] = x.gpu_job_rate_usd_per_hour[m.job_running] * 24 * ai_take
    revenue[m.idle] = 0.0
    cost = np.where(m.unpriced, NAN, kwh_per_day * price)
    profit = revenue - cost

    with np.errstate(divide="ignore", invalid="ignore"):
        ths = np.where(m.asic & (x.hashrate_hs > 0), x.hashrate_hs / 1e12, NAN)
        j_per_th = x.power_w / ths
        breakeven_kwh = np.where(kwh_per_day > 0, revenue / kwh_per_day, NAN)
        breakeven_hp = cost / (ths / 1e3 * p.payout_share * (1.0 - p.pool_fee))

    other_mode, other_rev, other_cost, gain, u_star = _gpu_other_mode(
        x, p, offers, algo_usd_per_hs_day, profit
    )
    return EarningsColumns(
        revenue_usd_per_day=revenue,
        power_cost_usd_per_day=cost,
        profit_usd_per_day=profit,
        j_per_th=j_per_th,
        breakeven_usd_per_kwh=breakeven_kwh,
        breakeven_hashprice_usd_per_ph_day=breakeven_hp,
        other_mode=other_mode,
        other_revenue_usd_per_day=other_rev,
        other_power_cost_usd_per_day=other_cost,
        other_profit_usd_per_day=other_rev - other_cost,
        switch_gain_usd_per_day=gain,
        breakeven_utilization=u_star,
    )


def _gpu_other_mode(
    x: FleetInputs,
    p: MarketParams,
    offers: JobOffers | None,
    algo_usd_per_hs_day: F64,
    profit_now: F64,
) -> tuple[I8, F64, F64, F64, F64]:
    """Estimates for the mode each GPU is not in: (mode, revenue, cost, switch gain, u*)."""
    n = len(x)
    m = x.masks
    other_mode = np.zeros(n, np.int8)
    nan = np.full(n, NAN)
    if not m.gpu.any():
        return other_mode, nan, nan.copy(), nan.copy(), nan.copy()
    price_per_w_day = p.power_usd_per_kwh * p.overhead_gpu * KWH_PER_W_DAY
    take = 1.0 - p.ai_platform_fee
    has_power = ~np.isnan(x.power_w)

    # AI: the best queued job that fits (billed all day), else the model's rate × utilisation.
    model_rate = _lookup(x.gpu_models, p.ai_rate_usd_per_gpu_hour, exact=False)[x.gpu_model]
    job_rate = (offers or JobOffers.none()).best_rate_for(x.gpu_vram_bytes)
    use_job = ~np.isnan(job_rate)
    ai_rate = np.where(use_job, job_rate, model_rate)
    util = np.where(use_job, 1.0, p.ai_expected_utilization)
    p_ai = np.where(m.job_running & has_power, x.power_w, x.gpu_power_limit_w * p.ai_load_factor)
    p_idle = np.where(m.idle & has_power, x.power_w, x.gpu_power_limit_w * p.ai_idle_power_fraction)
    idle_w = np.where(util < 1.0, p_idle * (1.0 - util), 0.0)
    ai_rev = ai_rate * 24 * util * take
    ai_cost = (p_ai * util + idle_w) * price_per_w_day

    # Mining: measured while mining, else the configured / last measured figures.
    mine_hs = np.where(m.mining, x.hashrate_hs, x.gpu_mining_hashrate_hs)
    mine_w = np.where(m.mining & has_power, x.power_w, x.gpu_mining_power_w)
    mine_rev = mine_hs * algo_usd_per_hs_day
    mine_cost = mine_w * price_per_w_day

    ai_profit = ai_rev - ai_cost
    mine_profit = mine_rev - mine_cost
    idle_prefers_mining = (mine_profit > ai_profit) | (np.isnan(ai_profit) & ~np.isnan(mine_profit))
    other_mode[m.mining] = MODE_AI
    other_mode[m.ai] = MODE_MINING
    other_mode[m.idle] = np.where(idle_prefers_mining[m.idle], MODE_MINING, MODE_AI)
    to_ai = other_mode == MODE_AI
    to_mining = other_mode == MODE_MINING
    other_rev = np.where(to_ai, ai_rev, np.where(to_mining, mine_rev, NAN))
    other_cost = np.where(to_ai, ai_cost, np.where(to_mining, mine_cost, NAN))
    gain = (other_rev - other_cost) - profit_now

    # u*: ai_net(u) = a·u + b at the model's rate, equal to the mining profit.
    a = model_rate * 24 * take - (p_ai - p_idle) * price_per_w_day
    b = -p_idle * price_per_w_day
    with np.errstate(divide="ignore", invalid="ignore"):
        u_star = np.where(m.gpu & (a > 0), np.maximum((mine_profit - b) / a, 0.0), NAN)
    return other_mode, other_rev, other_cost, gain, u_star


def totals_of(x: FleetInputs, c: EarningsColumns) -> EarningsTotals:
    m = x.masks
    revenue = np.where(np.isnan(c.revenue_usd_per_day), 0.0, c.revenue_usd_per_day)
    cost = np.where(np.isnan(c.power_cost_usd_per_day), 0.0, c.power_cost_usd_per_day)
    return _totals(x, m, revenue, cost)


def _totals(x: FleetInputs, m: _Masks, revenue: F64, cost: F64) -> EarningsTotals:
    priced = int(np.count_nonzero(x.priced))
    total = float(revenue.sum())
    ai = float(revenue[m.ai].sum())
    return EarningsTotals(
        devices_priced=priced,
        devices_unpriced=len(x) - priced,
        devices_power_unknown=int(np.count_nonzero(x.priced & np.isnan(x.power_w))),
        revenue_usd_per_day=total,
        power_cost_usd_per_day=float(cost.sum()),
        profit_usd_per_day=total - float(cost.sum()),
        asic_revenue_usd_per_day=float(revenue[m.asic].sum()),
        gpu_mining_revenue_usd_per_day=float(revenue[m.mining].sum()),
        ai_revenue_usd_per_day=ai,
        ai_share_of_revenue=ai / total if total > 0 else None,
        power_w=float(np.nansum(np.where(x.priced, x.power_w, NAN))),
    )


def what_if(
    x: FleetInputs, p: MarketParams, scenario: MarketScenario, offers: JobOffers | None = None
) -> ScenarioResult:
    """Fleet totals with the BTC price, difficulty and power price scaled as `scenario` says,
    computed on the same arrays by the same formulas."""
    columns = compute(x, p.scaled(scenario), offers)
    return ScenarioResult(scenario=scenario, totals=totals_of(x, columns))


def fleet_earnings(
    x: FleetInputs,
    market: MarketSnapshot,
    *,
    offers: JobOffers | None = None,
    accrued: AccruedToday | None = None,
) -> FleetEarnings:
    """Everything presenters need: per-device columns, totals, the market's what-ifs."""
    params = MarketParams.of(market)
    columns = compute(x, params, offers)
    return FleetEarnings(
        device_ids=x.device_ids,
        inputs=x,
        columns=columns,
        totals=totals_of(x, columns),
        scenarios=tuple(what_if(x, params, s, offers) for s in market.scenarios),
        accrued=accrued,
    )
