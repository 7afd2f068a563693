"""Market data: every figure the earnings model needs, each with its source and its age.

Responsibilities:

* The reference defaults (shared/reference/economics.md, snapshot of 2026-01-12) and the
  protocol arithmetic that must never be hard-coded elsewhere: the block subsidy from a height
  and the hashprice from difficulty, subsidy, fees and price.
* `StaticMarket`: the `[market]` and `[power]` tables resolved once against the defaults. A
  figure the config gives is sourced "config" (aged from `[market].as_of` when given); one it
  leaves out is sourced "default 2026-01-12" and aged from that date, so the UI can mark it
  stale instead of passing it off as current.
* `market_at`: one immutable `MarketSnapshot` for an instant, merging the static figures with
  whatever the live feed (`console.market_feed`) currently holds, and the time-of-use power
  price in force in the site's timezone.

Every `Figure` carries `source` ("config", "default 2026-01-12", "mempool.space",
"coingecko", "last good mempool.space", "computed", "config tou <window>") and `as_of` (unix
seconds the value describes); presenters show `age_s(now)`. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

import msgspec

from console.config import WEEKDAYS, MarketConfig, MarketScenario, PowerConfig, TouWindow

REFERENCE_DATE: Final = dt.date(2026, 1, 12)
"""Date of the reference snapshot the defaults come from."""
DEFAULT_SOURCE: Final = f"default {REFERENCE_DATE.isoformat()}"
REFERENCE_AS_OF: Final = dt.datetime(2026, 1, 12, tzinfo=dt.UTC).timestamp()

# Reference defaults (economics.md §0). Dated figures; overridden by [market] / [power] or live.
DEFAULT_BTC_PRICE_USD: Final = 91_580.0
DEFAULT_NETWORK_DIFFICULTY: Final = 146.47e12
DEFAULT_BLOCK_SUBSIDY_BTC: Final = 3.125
DEFAULT_FEES_PER_BLOCK_BTC: Final = 0.017
DEFAULT_POOL_FEE: Final = 0.025
DEFAULT_POOL_SCHEME: Final = "FPPS"
DEFAULT_POWER_USD_PER_KWH: Final = 0.045
DEFAULT_OVERHEAD_ASIC: Final = 1.05  # assumption: air-cooled halls
DEFAULT_OVERHEAD_GPU: Final = 1.25  # assumption: host CPU/RAM/NIC and cooling
DEFAULT_GPU_MINING_USD_PER_MHS_DAY: Final[Mapping[str, float]] = {
    # Jan-2026 hand estimates (low confidence; economics.md §4.6): RVN, ETC, ERG, FIRO.
    "kawpow": 0.012,
    "etchash": 0.018,
    "autolykos2": 0.008,
    "firopow": 0.025,
}
DEFAULT_AI_RATE_USD_PER_GPU_HOUR: Final[Mapping[str, float]] = {
    "H100": 2.00,
    "H200": 2.60,
    "A100 80GB": 1.00,
    "L40S": 0.75,
    "RTX4090": 0.35,
    "RTX3090": 0.20,
}
DEFAULT_AI_PLATFORM_FEE: Final = 0.20  # assumption: marketplaces do not publish their cut
DEFAULT_AI_EXPECTED_UTILIZATION: Final = 0.60  # assumption: marketplace billing hours
DEFAULT_AI_LOAD_FACTOR: Final = 0.8  # assumption: inference draws ~80 % of the power limit
DEFAULT_AI_IDLE_POWER_FRACTION: Final = 0.15  # assumption: idle GPU ~15 % of its limit
DEFAULT_SCENARIOS: Final = (
    MarketScenario(name="btc-10pct", btc_price_factor=0.9),
    MarketScenario(name="difficulty+5pct", difficulty_factor=1.05),
    MarketScenario(name="power+25pct", power_price_factor=1.25),
)

# Protocol constants (Bitcoin Core: GetBlockSubsidy, chainparams).
HALVING_INTERVAL: Final = 210_000
INITIAL_SUBSIDY_SATS: Final = 50 * 100_000_000
SATS_PER_BTC: Final = 100_000_000
SECONDS_PER_DAY: Final = 86_400
HASHES_PER_DIFFICULTY: Final = 2**32  # expected hashes per unit of difficulty (≈ 2^48/0xFFFF)
PH: Final = 1e15


def block_subsidy_btc(height: int) -> float:
    """The block subsidy at `height`: 50 BTC halved every 210,000 blocks, 0 after 64 halvings."""
    if height < 0:
        raise ValueError(f"block height must be >= 0, got {height}")
    halvings = height // HALVING_INTERVAL
    if halvings >= 64:
        return 0.0
    return (INITIAL_SUBSIDY_SATS >> halvings) / SATS_PER_BTC


def hashprice_btc_per_ph_day(
    difficulty: float, subsidy_btc: float, fees_per_block_btc: float
) -> float:
    """Expected BTC per PH/s per day before pool fee: `1e15·86400·(subsidy+fees)/(D·2^32)`."""
    return (
        PH
        * SECONDS_PER_DAY
        * (subsidy_btc + fees_per_block_btc)
        / (difficulty * HASHES_PER_DIFFICULTY)
    )


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    """One market value, where it came from, and when it was true."""

    value: float
    source: str
    as_of: float | None = None  # unix seconds the value describes; None = unknown

    def age_s(self, now: float) -> float | None:
        """Seconds since `as_of`, or None when the age is unknown."""
        return None if self.as_of is None else max(0.0, now - self.as_of)


class HostStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Health of one live-feed host, for the UI ("mempool.space: 429, retry in 40 s")."""

    name: str  # "mempool.space", "coingecko"
    ok: bool  # the last request to this host succeeded
    last_ok_at: float | None = None
    last_error: str | None = None
    retry_at: float | None = None  # no request before this time (back-off or Retry-After)


class LiveValues(msgspec.Struct, frozen=True, kw_only=True):
    """What the live feed holds now: a figure per item, or None to fall back to static."""

    btc_price_usd: Figure | None = None
    network_difficulty: Figure | None = None
    fees_per_block_btc: Figure | None = None
    block_height: Figure | None = None
    hosts: tuple[HostStatus, ...] = ()
    errors: dict[str, str] = {}  # item → why its last fetch failed ("mempool.space: HTTP 500")


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool
    hosts: tuple[HostStatus, ...] = ()
    errors: dict[str, str] = {}  # item (btc_price_usd, ...) → its last fetch error


class MarketSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Every market figure at one instant. Immutable: presenters only read it."""

    taken_at: float
    btc_price_usd: Figure
    network_difficulty: Figure
    block_subsidy_btc: Figure
    fees_per_block_btc: Figure
    hashprice_btc_per_ph_day: Figure  # before pool fee, subsidy + fees (the index definition)
    hashprice_usd_per_ph_day: Figure
    pool_fee: Figure
    pool_scheme: str
    pool_scheme_source: str
    power_price_usd_per_kwh: Figure
    overhead_asic: Figure
    overhead_gpu: Figure
    gpu_pool_fee: Figure
    ai_platform_fee: Figure
    ai_expected_utilization: Figure
    ai_load_factor: Figure
    ai_idle_power_fraction: Figure
    gpu_mining_usd_per_mhs_day: dict[str, Figure] = {}
    ai_rate_usd_per_gpu_hour: dict[str, Figure] = {}
    block_height: Figure | None = None  # known only from the live feed
    power_period: str | None = None  # the [[power.tou]] window in force; None = base price
    scenarios: tuple[MarketScenario, ...] = ()
    feed: FeedStatus = FeedStatus(enabled=False)

    @property
    def pays_fees(self) -> bool:
        """Whether the payout scheme pays transaction fees (PPS pays the subsidy only)."""
        return self.pool_scheme != "PPS"


class StaticMarket(msgspec.Struct, frozen=True, kw_only=True):
    """`[market]` and `[power]` resolved against the defaults, once at start-up."""

    btc_price_usd: Figure
    network_difficulty: Figure
    block_subsidy_btc: Figure
    fees_per_block_btc: Figure
    pool_fee: Figure
    pool_scheme: str
    pool_scheme_source: str
    power_price_usd_per_kwh: Figure
    overhead_asic: Figure
    overhead_gpu: Figure
    gpu_pool_fee: Figure
    ai_platform_fee: Figure
    ai_expected_utilization: Figure
    ai_load_factor: Figure
    ai_idle_power_fraction: Figure
    gpu_mining_usd_per_mhs_day: dict[str, Figure]
    ai_rate_usd_per_gpu_hour: dict[str, Figure]
    tou: tuple[TouWindow, ...]
    scenarios: tuple[MarketScenario, ...]

    @classmethod
    def from_config(cls, market: MarketConfig, power: PowerConfig) -> StaticMarket:
        config_as_of = (
            None
            if market.as_of is None
            else dt.datetime.combine(market.as_of, dt.time(), tzinfo=dt.UTC).timestamp()
        )

        def pick(value: float | None, default: float, *, dated: bool = True) -> Figure:
            if value is None:
                return Figure(value=default, source=DEFAULT_SOURCE, as_of=REFERENCE_AS_OF)
            as_of = config_as_of if dated else None
            return Figure(value=float(value), source="config", as_of=as_of)

        def merged(given: Mapping[str, float], defaults: Mapping[str, float]) -> dict[str, Figure]:
            out = {name: pick(None, value) for name, value in defaults.items()}
            out.update({name: pick(value, 0.0) for name, value in given.items()})
            return out

        pool_fee = pick(market.pool_fee, DEFAULT_POOL_FEE)
        return cls(
            btc_price_usd=pick(market.btc_price_usd, DEFAULT_BTC_PRICE_USD),
            network_difficulty=pick(market.network_difficulty, DEFAULT_NETWORK_DIFFICULTY),
            block_subsidy_btc=pick(market.block_subsidy_btc, DEFAULT_BLOCK_SUBSIDY_BTC),
            fees_per_block_btc=pick(market.fees_per_block_btc, DEFAULT_FEES_PER_BLOCK_BTC),
            pool_fee=pool_fee,
            pool_scheme=market.pool_scheme or DEFAULT_POOL_SCHEME,
            pool_scheme_source="config" if market.pool_scheme else DEFAULT_SOURCE,
            # The power contract and the site's own overheads are not market data that ages:
            # a configured figure has no as_of, a default keeps the reference date.
            power_price_usd_per_kwh=pick(
                power.price_usd_per_kwh, DEFAULT_POWER_USD_PER_KWH, dated=False
            ),
            overhead_asic=pick(power.overhead_asic, DEFAULT_OVERHEAD_ASIC, dated=False),
            overhead_gpu=pick(power.overhead_gpu, DEFAULT_OVERHEAD_GPU, dated=False),
            gpu_pool_fee=pool_fee if market.gpu_pool_fee is None else pick(market.gpu_pool_fee, 0),
            ai_platform_fee=pick(market.ai_platform_fee, DEFAULT_AI_PLATFORM_FEE),
            ai_expected_utilization=pick(
                market.ai_expected_utilization, DEFAULT_AI_EXPECTED_UTILIZATION, dated=False
            ),
            ai_load_factor=pick(market.ai_load_factor, DEFAULT_AI_LOAD_FACTOR, dated=False),
            ai_idle_power_fraction=pick(
                market.ai_idle_power_fraction, DEFAULT_AI_IDLE_POWER_FRACTION, dated=False
            ),
            gpu_mining_usd_per_mhs_day=merged(
                market.gpu_mining_usd_per_mhs_day, DEFAULT_GPU_MINING_USD_PER_MHS_DAY
            ),
            ai_rate_usd_per_gpu_hour=merged(
                market.ai_rate_usd_per_gpu_hour, DEFAULT_AI_RATE_USD_PER_GPU_HOUR
            ),
            tou=power.tou,
            scenarios=market.scenarios or DEFAULT_SCENARIOS,
        )


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def tou_window_at(
    windows: tuple[TouWindow, ...], now: float, zone: dt.tzinfo | None
) -> TouWindow | None:
    """The first window (file order) containing `now` in the site's local time, else None.

    A window that wraps past midnight belongs to the day (and month) it started on, so
    "fri 22:00-06:00" covers Saturday 03:00."""
    local = dt.datetime.fromtimestamp(now, zone) if zone else dt.datetime.fromtimestamp(now)
    minute = local.hour * 60 + local.minute
    yesterday = local - dt.timedelta(days=1)
    for window in windows:
        start, end = _minutes(window.start), _minutes(window.end)
        if start < end:
            day = local if start <= minute < end else None
        elif minute >= start:
            day = local
        elif minute < end:
            day = yesterday
        else:
            day = None
        if day is None:
            continue
        if WEEKDAYS[day.weekday()] in window.days and day.month in window.months:
            return window
    return None


def market_at(
    static: StaticMarket,
    now: float,
    *,
    zone: dt.tzinfo | None = None,
    live: LiveValues | None = None,
) -> MarketSnapshot:
    """The market at `now`: live figures where the feed has them, static ones elsewhere."""
    price = (live and live.btc_price_usd) or static.btc_price_usd
    difficulty = (live and live.network_difficulty) or static.network_difficulty
    fees = (live and live.fees_per_block_btc) or static.fees_per_block_btc
    height = live.block_height if live else None
    subsidy = static.block_subsidy_btc
    if height is not None:
        subsidy = Figure(
            value=block_subsidy_btc(int(height.value)),
            source=height.source,
            as_of=height.as_of,
        )
    inputs = (difficulty, subsidy, fees)
    hp_btc = Figure(
        value=hashprice_btc_per_ph_day(difficulty.value, subsidy.value, fees.value),
        source="computed",
        as_of=_oldest(*inputs),
    )
    hp_usd = Figure(
        value=hp_btc.value * price.value, source="computed", as_of=_oldest(*inputs, price)
    )
    power = static.power_price_usd_per_kwh
    window = tou_window_at(static.tou, now, zone) if static.tou else None
    if window is not None:
        power = Figure(value=window.price_usd_per_kwh, source=f"config tou {window.name}")
    return MarketSnapshot(
        taken_at=now,
        btc_price_usd=price,
        network_difficulty=difficulty,
        block_subsidy_btc=subsidy,
        fees_per_block_btc=fees,
        hashprice_btc_per_ph_day=hp_btc,
        hashprice_usd_per_ph_day=hp_usd,
        pool_fee=static.pool_fee,
        pool_scheme=static.pool_scheme,
        pool_scheme_source=static.pool_scheme_source,
        power_price_usd_per_kwh=power,
        overhead_asic=static.overhead_asic,
        overhead_gpu=static.overhead_gpu,
        gpu_pool_fee=static.gpu_pool_fee,
        ai_platform_fee=static.ai_platform_fee,
        ai_expected_utilization=static.ai_expected_utilization,
        ai_load_factor=static.ai_load_factor,
        ai_idle_power_fraction=static.ai_idle_power_fraction,
        gpu_mining_usd_per_mhs_day=static.gpu_mining_usd_per_mhs_day,
        ai_rate_usd_per_gpu_hour=static.ai_rate_usd_per_gpu_hour,
        block_height=height,
        power_period=None if window is None else window.name,
        scenarios=static.scenarios,
        feed=FeedStatus(
            enabled=live is not None,
            hosts=live.hosts if live else (),
            errors=live.errors if live else {},
        ),
    )


def _oldest(*figures: Figure) -> float | None:
    """The `as_of` of a figure computed from `figures`: its oldest input; unknown if any is."""
    stamps = [f.as_of for f in figures]
    if any(s is None for s in stamps):
        return None
    return min(s for s in stamps if s is not None)
