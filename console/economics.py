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
`FleetEarnings.row`, which presenters call for the rows they show (`FleetEarnings.rows` for
many rows at once).
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
COST_COVERAGE_SLACK_S: Final = 1.0  # accrued cost "covers" the revenue's time within this
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
    def prepared(self) -> _Prepared:
        """Input-only arrays for the formulas, built once per inputs (see `_Prepared`)."""
        return _Prepared.of(self)


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


def _nan_where(condition: Bool) -> F64:
    """NaN where `condition`, 0.0 elsewhere, without a branch: 0/0 is NaN, 0/1 is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.divide(0.0, ~condition)


@dataclass(frozen=True, eq=False)
class _GpuRows:
    """The priced GPUs, compressed: every GPU formula runs on these rows only (a site of
    ASICs pays nothing for the GPU path), and results are scattered back by `idx`. Arrays are
    input-only and NaN-aware so that pricing is mostly arithmetic, not branches."""

    idx: npt.NDArray[np.intp]
    mining: Bool
    ai: Bool
    idle: Bool
    job_w: F64  # 1.0 where an AI job runs now
    mining_hs_now: F64  # hashrate on mining rows, 0 elsewhere
    job_usd_per_hour_now: F64  # the running job's rate, 0 elsewhere
    rev_nan: F64  # NaN where revenue now is unknown from the inputs (mining, hashrate unknown)
    algorithm_now: npt.NDArray[np.intp]  # mining rows: algorithm (-1 → NaN); others: the 0 slot
    algorithm: npt.NDArray[np.intp]  # every row: configured/current algorithm (-1 → NaN)
    model: npt.NDArray[np.intp]  # -1 → NaN
    vram_bytes: F64
    mine_hs: F64  # mining estimate: measured while mining, else configured / last measured
    mine_w: F64
    ai_w_measured: F64  # measured power while a job runs, else 0
    ai_limit_w: F64  # power limit where no job runs with a measured power, else 0
    idle_w_measured: F64  # measured power while idle, else 0
    idle_limit_w: F64  # power limit where not idle with a measured power, else 0

    @classmethod
    def of(cls, x: FleetInputs) -> _GpuRows | None:
        idx = np.flatnonzero((x.kind == KIND_GPU) & x.priced)
        g = idx.size
        if g == 0:
            return None
        # One block for the float rows and one for the index rows: a fresh array per row
        # would cost an mmap and its page faults each (see `compute`).
        floats = np.empty((12, g))
        (
            power,
            hashrate,
            job,
            limit,
            vram,
            mining_hs_now,
            job_now,
            rev_nan,
            mine_hs,
            mine_w,
            ai_measured_w,
            idle_measured_w,
        ) = floats
        limits = np.empty((2, g))
        ints = np.empty((3, g), np.intp)
        algorithm_now, algorithm, model = ints
        np.take(x.power_w, idx, out=power)
        np.take(x.hashrate_hs, idx, out=hashrate)
        np.take(x.gpu_job_rate_usd_per_hour, idx, out=job)
        np.take(x.gpu_power_limit_w, idx, out=limit)
        np.take(x.gpu_vram_bytes, idx, out=vram)
        mode = x.gpu_mode.take(idx)
        mining, ai, idle = mode == MODE_MINING, mode == MODE_AI, mode == MODE_IDLE
        job_running = ai & ~np.isnan(job)
        has_power = ~np.isnan(power)
        ai_measured = job_running & has_power
        idle_measured = idle & has_power

        np.fmax(hashrate, 0.0, out=mining_hs_now)
        mining_hs_now *= mining
        np.fmax(job, 0.0, out=job_now)
        job_now *= job_running
        with np.errstate(invalid="ignore"):  # 0/0 = NaN is the point (see `_nan_where`)
            np.divide(0.0, ~(mining & np.isnan(hashrate)), out=rev_nan)
        np.copyto(algorithm, x.gpu_algorithm.take(idx), casting="unsafe")
        # len(x.gpu_algorithms) is the lookup table's 0 slot (see _algorithm_table).
        algorithm_now.fill(len(x.gpu_algorithms))
        np.copyto(algorithm_now, algorithm, where=mining)
        np.copyto(model, x.gpu_model.take(idx), casting="unsafe")
        np.take(x.gpu_mining_hashrate_hs, idx, out=mine_hs)
        np.copyto(mine_hs, hashrate, where=mining)
        np.take(x.gpu_mining_power_w, idx, out=mine_w)
        np.copyto(mine_w, power, where=mining & has_power)
        ai_limit, idle_limit = limits
        for measured_w, limit_w, measured in (
            (ai_measured_w, ai_limit, ai_measured),
            (idle_measured_w, idle_limit, idle_measured),
        ):
            measured_w.fill(0.0)
            np.copyto(measured_w, power, where=measured)
            np.copyto(limit_w, limit)
            np.copyto(limit_w, 0.0, where=measured)
        return cls(
            idx=idx,
            mining=mining,
            ai=ai,
            idle=idle,
            job_w=job_running.astype(np.float64),
            mining_hs_now=mining_hs_now,
            job_usd_per_hour_now=job_now,
            rev_nan=rev_nan,
            algorithm_now=algorithm_now,
            algorithm=algorithm,
            model=model,
            vram_bytes=vram,
            mine_hs=mine_hs,
            mine_w=mine_w,
            ai_w_measured=ai_measured_w,
            ai_limit_w=ai_limit,
            idle_w_measured=idle_measured_w,
            idle_limit_w=idle_limit,
        )


@dataclass(frozen=True, eq=False)
class _Prepared:
    """Everything the formulas need that depends on the inputs only, so that pricing (and
    re-pricing for a new market or a what-if) is branch-free arithmetic over whole arrays.
    Boolean indexing and `np.where` cost ~10× a multiply on 100k rows; here they are replaced
    by 0/1 weights and NaN masks built once per inputs."""

    n: int
    asic_w: F64  # 1.0 on priced ASIC rows
    asic_hs: F64  # priced ASIC hashrate, unknown → 0 (its NaN is in rev_nan)
    gpu_kind_w: F64  # 1.0 on GPU rows: selects the GPU overhead
    power_nan: F64  # power_w; NaN where unknown or unpriced
    power_pos_nan: F64  # 0 where power_nan > 0, else NaN (a breakeven needs a positive draw)
    rev_nan: F64  # NaN where revenue is unknown from the inputs alone, else 0
    ths: F64  # priced ASIC TH/s where > 0, else NaN
    asic_hs_sum: float  # Σ asic_hs: fleet ASIC revenue = this × USD per H/s per day
    asic_power_w_sum: float  # Σ power of priced ASICs that report it
    gpu_power_w_sum: float  # Σ power of priced GPUs that report it
    devices_priced: int
    devices_power_unknown: int
    gpu: _GpuRows | None

    @classmethod
    def of(cls, x: FleetInputs) -> _Prepared:
        asic = (x.kind == KIND_ASIC) & x.priced
        unknown_hashrate = np.isnan(x.hashrate_hs)
        block = np.empty((7, len(x)))  # one allocation for every row (see `compute`)
        asic_w, asic_hs, gpu_kind_w, power_nan, power_pos_nan, rev_nan, ths = block
        with np.errstate(invalid="ignore", divide="ignore"):
            np.copyto(asic_w, asic)
            np.fmax(x.hashrate_hs, 0.0, out=asic_hs)  # unknown → 0; hashrates are >= 0
            asic_hs *= asic_w
            np.copyto(gpu_kind_w, x.kind == KIND_GPU)
            np.divide(0.0, x.priced, out=power_nan)  # 0/0 = NaN where not priced
            power_nan += x.power_w
            np.divide(0.0, power_nan > 0, out=power_pos_nan)
            np.divide(0.0, x.priced & ~(asic & unknown_hashrate), out=rev_nan)
            np.divide(0.0, asic_hs > 0, out=ths)
            ths += asic_hs
            ths /= 1e12
        return cls(
            n=len(x),
            asic_w=asic_w,
            asic_hs=asic_hs,
            gpu_kind_w=gpu_kind_w,
            power_nan=power_nan,
            power_pos_nan=power_pos_nan,
            rev_nan=rev_nan,
            ths=ths,
            asic_hs_sum=float(asic_hs.sum()),
            asic_power_w_sum=float(np.fmax(power_nan, 0.0).sum(where=asic)),
            gpu_power_w_sum=float(np.fmax(power_nan, 0.0).sum(where=gpu_kind_w > 0)),
            devices_priced=int(np.count_nonzero(x.priced)),
            devices_power_unknown=int(np.count_nonzero(x.priced & np.isnan(x.power_w))),
            gpu=_GpuRows.of(x),
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
        # best[k] = the best rate among the k jobs needing the least VRAM; best[0] = none fits.
        best = np.concatenate(([NAN], np.maximum.accumulate(self.rate_usd_per_gpu_hour[order])))
        # fmax: an unknown VRAM (NaN) counts as -1 bytes, which no job fits.
        fits = np.searchsorted(need, np.fmax(vram_bytes, -1.0), side="right")
        return best.take(fits)


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
    power_cost_usd: float | None  # None: part of the revenue's time had no power figure
    profit_usd: float | None  # revenue − power cost; None with the cost
    covered_s: float  # seconds of today the integral covers (gaps are not filled in)
    cost_covered_s: float  # of those, the seconds with a known power cost


@dataclass(frozen=True, eq=False)
class AccruedToday:
    """Today's accrued earnings for every device (rows in snapshot order)."""

    day: str  # ISO date in the site's timezone
    timezone: str  # IANA name, or "local"
    revenue_usd: F64
    power_cost_usd: F64  # over the seconds with a known power figure only
    covered_s: F64
    cost_covered_s: F64
    persisted: bool  # the values are in SQLite (False: in memory only, see `note`)
    note: str | None = None  # why not persisted / read-only, in operator words

    @property
    def revenue_total_usd(self) -> float:
        return float(np.sum(self.revenue_usd))

    @property
    def power_cost_total_usd(self) -> float:
        """The fleet's cost over the known spans (`devices_cost_unknown` says what is missing)."""
        return float(np.sum(self.power_cost_usd))

    @property
    def cost_complete(self) -> Bool:
        """Per device: the power cost covers every second the revenue covers (1 s of slack
        for float sums), so revenue − cost is a profit."""
        complete: Bool = self.covered_s - self.cost_covered_s <= COST_COVERAGE_SLACK_S
        return complete

    @property
    def devices_cost_unknown(self) -> int:
        """Devices that earned today over time without a power figure."""
        return int(np.count_nonzero((self.covered_s > 0) & ~self.cost_complete))


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
        return self.rows((i,))[0]

    def by_id(self, device_id: str) -> DeviceEarnings | None:
        i = self.index_of(device_id)
        return None if i is None else self.row(i)

    def rows(self, indices: Sequence[int]) -> list[DeviceEarnings | None]:
        """Rows `indices` as structs (None where not priced), built from one `take` and one
        `tolist()` per column instead of a NumPy scalar per field: a publisher that sends
        thousands of rows a second (the MQTT bridge) pays ~2 µs a row instead of ~5."""
        if not len(indices):
            return []
        idx = np.asarray(indices, dtype=np.intp)
        x, c = self.inputs, self.columns
        priced: list[bool] = x.priced.take(idx).tolist()
        gpu: list[bool] = (x.kind.take(idx) == KIND_GPU).tolist()
        mode: list[int] = x.gpu_mode.take(idx).tolist()
        estimated: list[bool] = x.power_estimated.take(idx).tolist()
        other_mode: list[int] = c.other_mode.take(idx).tolist()
        # The float columns of these rows as Python lists, unknown (non-finite) as None:
        # NumPy does the conversion and the masking for all of them in a few calls.
        values = np.stack([getattr(c, name).take(idx) for name in _FLOAT_COLUMNS])
        known = values.astype(object)
        known[~np.isfinite(values)] = None
        rev, cost, profit, jth, be_kwh, be_hp, o_rev, o_cost, o_profit, gain, u_star = (
            known.tolist()
        )
        accrued: list[AccruedRow | None] = [None] * len(idx)
        if self.accrued is not None:
            a = self.accrued
            accrued = [
                _accrued_row(r, p, s, cs)
                for r, p, s, cs in zip(
                    a.revenue_usd.take(idx).tolist(),
                    a.power_cost_usd.take(idx).tolist(),
                    a.covered_s.take(idx).tolist(),
                    a.cost_covered_s.take(idx).tolist(),
                    strict=True,
                )
            ]
        out: list[DeviceEarnings | None] = []
        for k in range(len(idx)):
            if not priced[k]:
                out.append(None)
                continue
            revenue = rev[k]
            is_gpu = gpu[k]
            out.append(
                DeviceEarnings(
                    revenue_usd_per_day=revenue,
                    revenue_usd_per_hour=None if revenue is None else revenue / 24,
                    power_cost_usd_per_day=cost[k],
                    profit_usd_per_day=profit[k],
                    power_estimated=estimated[k],
                    j_per_th=jth[k],
                    breakeven_usd_per_kwh=be_kwh[k],
                    breakeven_hashprice_usd_per_ph_day=be_hp[k],
                    mode=MODE_NAMES[mode[k]] if is_gpu else None,
                    other_mode=MODE_NAMES[other_mode[k]] if is_gpu else None,
                    other_revenue_usd_per_day=o_rev[k],
                    other_power_cost_usd_per_day=o_cost[k],
                    other_profit_usd_per_day=o_profit[k],
                    switch_gain_usd_per_day=gain[k],
                    breakeven_utilization=u_star[k],
                    accrued_today=accrued[k],
                )
            )
        return out


def _accrued_row(
    revenue_usd: float, power_cost_usd: float, covered_s: float, cost_covered_s: float
) -> AccruedRow:
    """A device's accrual today; cost and profit only when the cost covers the revenue's time
    (revenue without a known cost is never shown as profit)."""
    complete = covered_s - cost_covered_s <= COST_COVERAGE_SLACK_S
    cost = power_cost_usd if complete else None
    return AccruedRow(
        revenue_usd=revenue_usd,
        power_cost_usd=cost,
        profit_usd=None if cost is None else revenue_usd - cost,
        covered_s=covered_s,
        cost_covered_s=cost_covered_s,
    )


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
    index of -1 reads NaN. Cached: names and rates change rarely, devices never enter it."""
    return _lookup_cached(names, tuple(table.items()), exact)


@functools.lru_cache(maxsize=64)
def _lookup_cached(
    names: tuple[str, ...], items: tuple[tuple[str, float], ...], exact: bool
) -> F64:
    table = dict(items)
    out = np.full(len(names) + 1, NAN)
    keys = list(table)
    for i, name in enumerate(names):
        key = (name if name in table else None) if exact else match_rate_key(name, keys)
        if key is not None:
            out[i] = table[key]
    out.flags.writeable = False
    return out


# ---------------------------------------------------------------------------------------------
# The computation


_FLOAT_COLUMNS: Final = (
    "revenue_usd_per_day",
    "power_cost_usd_per_day",
    "profit_usd_per_day",
    "j_per_th",
    "breakeven_usd_per_kwh",
    "breakeven_hashprice_usd_per_ph_day",
    "other_revenue_usd_per_day",
    "other_power_cost_usd_per_day",
    "other_profit_usd_per_day",
    "switch_gain_usd_per_day",
    "breakeven_utilization",
)


def compute(x: FleetInputs, p: MarketParams, offers: JobOffers | None = None) -> EarningsColumns:
    """Every per-device figure, for the whole fleet at once."""
    return _compute(x, p, offers)[0]


def _compute(
    x: FleetInputs, p: MarketParams, offers: JobOffers | None
) -> tuple[EarningsColumns, F64 | None]:
    """(columns, GPU revenue now on the priced GPU rows, for the totals).

    All float columns are rows of one (11, n) block, written in place (`out=`): allocating
    eleven separate arrays of 100k costs more in mmap and page faults than the arithmetic."""
    prep = x.prepared
    n = prep.n
    block = np.empty((len(_FLOAT_COLUMNS), n))
    rev, cost, profit, j_per_th, be_kwh, be_hp, o_rev, o_cost, o_profit, gain, u_star = block
    # kWh per day (in be_kwh until the breakeven overwrites it) = W · overhead · 24/1000
    np.multiply(prep.gpu_kind_w, p.overhead_gpu - p.overhead_asic, out=be_kwh)
    be_kwh += p.overhead_asic
    be_kwh *= prep.power_nan
    be_kwh *= KWH_PER_W_DAY
    np.multiply(be_kwh, p.power_usd_per_kwh, out=cost)
    np.multiply(prep.asic_hs, p.asic_usd_per_hs_day, out=rev)
    rev += prep.rev_nan
    other_mode = np.zeros(n, np.int8)
    gpu_rev: F64 | None = None
    o_rev.fill(NAN)
    o_cost.fill(NAN)
    gain.fill(NAN)
    u_star.fill(NAN)
    if prep.gpu is not None:
        g = prep.gpu
        gpu_rev, g_mode, g_rev, g_cost, g_u = _gpu_rows(x, g, p, offers)
        rev[g.idx] = gpu_rev
        other_mode[g.idx] = g_mode
        o_rev[g.idx] = g_rev
        o_cost[g.idx] = g_cost
        u_star[g.idx] = g_u
    np.subtract(rev, cost, out=profit)
    np.subtract(o_rev, o_cost, out=o_profit)
    np.subtract(o_profit, profit, out=gain)  # NaN for ASICs: their other-mode profit is NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(prep.power_nan, prep.ths, out=j_per_th)
        be_kwh += prep.power_pos_nan
        np.divide(rev, be_kwh, out=be_kwh)
        np.multiply(prep.ths, p.payout_share * (1.0 - p.pool_fee) / 1e3, out=be_hp)
        np.divide(cost, be_hp, out=be_hp)
    columns = EarningsColumns(
        **dict(zip(_FLOAT_COLUMNS, block, strict=True)), other_mode=other_mode
    )
    return columns, gpu_rev


def _algorithm_table(x: FleetInputs, p: MarketParams) -> F64:
    """USD per H/s per day after the GPU pool fee, per algorithm index, then a 0 slot (rows
    that are not mining now) and a trailing NaN (index -1: unknown algorithm)."""
    rates = _lookup(x.gpu_algorithms, p.gpu_mining_usd_per_mhs_day, exact=True)[:-1]
    scaled = rates / 1e6 * (1.0 - p.gpu_pool_fee)
    return np.concatenate((scaled, [0.0, NAN]))


def _gpu_rows(
    x: FleetInputs, g: _GpuRows, p: MarketParams, offers: JobOffers | None
) -> tuple[F64, I8, F64, F64, F64]:
    """On the priced GPU rows: (revenue now, other mode, its revenue, its cost, u*)."""
    price_per_w_day = p.power_usd_per_kwh * p.overhead_gpu * KWH_PER_W_DAY
    take = 1.0 - p.ai_platform_fee
    algorithms = _algorithm_table(x, p)
    algo_rate = algorithms.take(g.algorithm)
    model_rate = _lookup(x.gpu_models, p.ai_rate_usd_per_gpu_hour, exact=False).take(g.model)

    # Now: mining earns its hashrate's worth, AI its running job (0 while waiting), idle 0.
    revenue = g.mining_hs_now * algorithms.take(g.algorithm_now)
    revenue += g.job_usd_per_hour_now * (24 * take)
    revenue += g.rev_nan

    # AI estimate: the best queued job that fits (billed all day), else the model's rate ×
    # expected utilisation; power = limit × load while billed, × idle fraction otherwise
    # (measured power where the GPU is in that state now).
    u = p.ai_expected_utilization
    p_ai = g.ai_limit_w * p.ai_load_factor + g.ai_w_measured
    p_idle = g.idle_limit_w * p.ai_idle_power_fraction + g.idle_w_measured
    ai_rev = model_rate * (24 * u * take)
    ai_w = p_ai * u + p_idle * (1.0 - u)
    if offers is not None and offers.rate_usd_per_gpu_hour.size:
        job_rate = offers.best_rate_for(g.vram_bytes)
        use_job = ~np.isnan(job_rate)
        ai_rev = np.where(use_job, job_rate * (24 * take), ai_rev)
        ai_w = np.where(use_job, p_ai, ai_w)
    ai_cost = ai_w * price_per_w_day

    # Mining estimate: measured while mining, else the configured / last measured figures.
    mine_rev = g.mine_hs * algo_rate
    mine_cost = g.mine_w * price_per_w_day

    ai_profit = ai_rev - ai_cost
    mine_profit = mine_rev - mine_cost
    prefers_mining = (mine_profit > ai_profit) | (np.isnan(ai_profit) & ~np.isnan(mine_profit))
    to_mining = g.ai | (g.idle & prefers_mining)
    other_mode = np.where(to_mining, MODE_MINING, MODE_AI).astype(np.int8)
    other_rev = np.where(to_mining, mine_rev, ai_rev)
    other_cost = np.where(to_mining, mine_cost, ai_cost)

    # u*: ai_net(u) = a·u + b at the model's rate, equal to the mining profit.
    a = model_rate * (24 * take) - (p_ai - p_idle) * price_per_w_day
    b = p_idle * -price_per_w_day
    with np.errstate(divide="ignore", invalid="ignore"):
        u_star = np.maximum((mine_profit - b) / (a + _nan_where(~(a > 0))), 0.0)
    return revenue, other_mode, other_rev, other_cost, u_star


def _totals_fast(x: FleetInputs, p: MarketParams, gpu_rev: F64 | None) -> EarningsTotals:
    """The same sums as `totals_of`, from sums prepared with the inputs: ASIC revenue and
    every device's cost are linear in figures that do not change per market, so only the GPU
    rows are summed here (tests hold this equal to `totals_of`)."""
    prep = x.prepared
    asic = prep.asic_hs_sum * p.asic_usd_per_hs_day
    kwh = (
        prep.asic_power_w_sum * p.overhead_asic + prep.gpu_power_w_sum * p.overhead_gpu
    ) * KWH_PER_W_DAY
    cost = kwh * p.power_usd_per_kwh
    mining = ai = 0.0
    if prep.gpu is not None and gpu_rev is not None:
        known = np.fmax(gpu_rev, 0.0)
        mining = float(known.sum(where=prep.gpu.mining))
        ai = float(known.sum(where=prep.gpu.ai))
    total = asic + mining + ai
    return EarningsTotals(
        devices_priced=prep.devices_priced,
        devices_unpriced=prep.n - prep.devices_priced,
        devices_power_unknown=prep.devices_power_unknown,
        revenue_usd_per_day=total,
        power_cost_usd_per_day=cost,
        profit_usd_per_day=total - cost,
        asic_revenue_usd_per_day=asic,
        gpu_mining_revenue_usd_per_day=mining,
        ai_revenue_usd_per_day=ai,
        ai_share_of_revenue=ai / total if total > 0 else None,
        power_w=prep.asic_power_w_sum + prep.gpu_power_w_sum,
    )


def totals_of(x: FleetInputs, c: EarningsColumns) -> EarningsTotals:
    """Fleet sums of `c` over the priced devices; unknown values are left out (and counted)."""
    prep = x.prepared
    # Revenue and cost are never negative, so fmax(v, 0) is "NaN → 0".
    revenue = np.fmax(c.revenue_usd_per_day, 0.0)
    total = float(revenue.sum())
    asic = float(np.einsum("i,i->", revenue, prep.asic_w))
    np.fmax(c.power_cost_usd_per_day, 0.0, out=revenue)
    cost = float(revenue.sum())
    mining = ai = 0.0
    if prep.gpu is not None:
        gpu_rev = np.fmax(c.revenue_usd_per_day.take(prep.gpu.idx), 0.0)
        mining = float(gpu_rev.sum(where=prep.gpu.mining))
        ai = float(gpu_rev.sum(where=prep.gpu.ai))
    np.fmax(prep.power_nan, 0.0, out=revenue)
    return EarningsTotals(
        devices_priced=prep.devices_priced,
        devices_unpriced=prep.n - prep.devices_priced,
        devices_power_unknown=prep.devices_power_unknown,
        revenue_usd_per_day=total,
        power_cost_usd_per_day=cost,
        profit_usd_per_day=total - cost,
        asic_revenue_usd_per_day=asic,
        gpu_mining_revenue_usd_per_day=mining,
        ai_revenue_usd_per_day=ai,
        ai_share_of_revenue=ai / total if total > 0 else None,
        power_w=float(revenue.sum()),
    )


def what_if(
    x: FleetInputs, p: MarketParams, scenario: MarketScenario, offers: JobOffers | None = None
) -> ScenarioResult:
    """Fleet totals with the BTC price, difficulty and power price scaled as `scenario` says:
    a full recompute of every device on the same arrays (the general path; see
    `scaled_totals` for the one the snapshot uses)."""
    columns = compute(x, p.scaled(scenario), offers)
    return ScenarioResult(scenario=scenario, totals=totals_of(x, columns))


def scaled_totals(t: EarningsTotals, scenario: MarketScenario) -> EarningsTotals:
    """The fleet totals under `scenario`, from the current totals: exact, because ASIC revenue
    is proportional to price / difficulty (fees are in BTC per block), power cost to the power
    price, and GPU mining and AI revenue depend on neither (`what_if` gives the same figures
    by recomputing every device; the tests hold them equal)."""
    asic = t.asic_revenue_usd_per_day * scenario.btc_price_factor / scenario.difficulty_factor
    total = asic + t.gpu_mining_revenue_usd_per_day + t.ai_revenue_usd_per_day
    cost = t.power_cost_usd_per_day * scenario.power_price_factor
    return msgspec.structs.replace(
        t,
        revenue_usd_per_day=total,
        power_cost_usd_per_day=cost,
        profit_usd_per_day=total - cost,
        asic_revenue_usd_per_day=asic,
        ai_share_of_revenue=t.ai_revenue_usd_per_day / total if total > 0 else None,
    )


def fleet_earnings(
    x: FleetInputs,
    market: MarketSnapshot,
    *,
    offers: JobOffers | None = None,
    accrued: AccruedToday | None = None,
) -> FleetEarnings:
    """Everything presenters need: per-device columns, totals, the market's what-ifs."""
    params = MarketParams.of(market)
    columns, gpu_rev = _compute(x, params, offers)
    totals = _totals_fast(x, params, gpu_rev)
    return FleetEarnings(
        device_ids=x.device_ids,
        inputs=x,
        columns=columns,
        totals=totals,
        scenarios=tuple(
            ScenarioResult(scenario=s, totals=scaled_totals(totals, s)) for s in market.scenarios
        ),
        accrued=accrued,
    )
