"""Market figures: protocol arithmetic, the hashprice check, sources and ages, time-of-use."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from console.config import MarketConfig, PowerConfig, TouWindow
from console.market import (
    DEFAULT_SOURCE,
    REFERENCE_AS_OF,
    Figure,
    LiveValues,
    StaticMarket,
    block_subsidy_btc,
    hashprice_btc_per_ph_day,
    market_at,
    tou_window_at,
)

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def at(zone: dt.tzinfo, *args: int) -> float:
    return dt.datetime(*args, tzinfo=zone).timestamp()  # type: ignore[misc]


# ---- the hashprice check (issue "Live earnings": done-when) ---------------------------------


def test_hashprice_matches_hashrate_index_2026_01_12_within_0_1_percent() -> None:
    # Hashrate Index roundup of 2026-01-12: 0.00043143 BTC/PH/day, 39.53 USD/PH/day.
    btc = hashprice_btc_per_ph_day(146.47e12, 3.125, 0.0172)
    assert btc == pytest.approx(0.00043143, rel=1e-3)
    assert btc * 91_580 == pytest.approx(39.53, rel=1e-3)


def test_hashprice_agrees_with_the_network_share_form() -> None:
    # btc/day = (H / H_net) · 144 · (subsidy + fees) with H_net = D · 2^32 / 600 (reference §1.1)
    d, subsidy, fees = 146.47e12, 3.125, 0.0172
    network_hs = d * 2**32 / 600
    per_ph = 1e15 / network_hs * 144 * (subsidy + fees)
    assert hashprice_btc_per_ph_day(d, subsidy, fees) == pytest.approx(per_ph, rel=1e-12)
    # and the reference's per-TH figure from the subsidy alone: 4.2920e-7 BTC/TH/day
    assert hashprice_btc_per_ph_day(d, subsidy, 0) / 1000 == pytest.approx(4.2920e-7, rel=1e-4)


@pytest.mark.parametrize(
    ("height", "btc"),
    [
        (0, 50.0),
        (209_999, 50.0),
        (210_000, 25.0),
        (630_000, 6.25),
        (840_000, 3.125),
        (931_000, 3.125),
        (1_049_999, 3.125),
        (1_050_000, 1.5625),
        (210_000 * 33, 0.0),  # 50e8 sats >> 33 is 0 sats: the subsidy ran out
        (210_000 * 64, 0.0),
    ],
)
def test_block_subsidy_from_height(height: int, btc: float) -> None:
    assert block_subsidy_btc(height) == btc


def test_block_subsidy_rejects_negative_height() -> None:
    with pytest.raises(ValueError):
        block_subsidy_btc(-1)


# ---- sources and ages ------------------------------------------------------------------------


def test_defaults_are_sourced_and_dated() -> None:
    m = market_at(StaticMarket.from_config(MarketConfig(), PowerConfig()), REFERENCE_AS_OF + 3600)
    assert m.btc_price_usd == Figure(value=91_580.0, source=DEFAULT_SOURCE, as_of=REFERENCE_AS_OF)
    assert DEFAULT_SOURCE == "default 2026-01-12"
    assert m.btc_price_usd.age_s(m.taken_at) == 3600
    assert m.network_difficulty.value == 146.47e12
    assert m.block_subsidy_btc.value == 3.125
    assert m.fees_per_block_btc.value == 0.017
    assert m.pool_fee.value == 0.025
    assert m.pool_scheme == "FPPS" and m.pool_scheme_source == DEFAULT_SOURCE
    assert m.power_price_usd_per_kwh.value == 0.045
    assert m.overhead_asic.value == 1.05 and m.overhead_gpu.value == 1.25
    assert m.gpu_pool_fee == m.pool_fee
    assert m.ai_rate_usd_per_gpu_hour["H100"].value == 2.0
    assert m.gpu_mining_usd_per_mhs_day["kawpow"].value == 0.012
    assert m.hashprice_usd_per_ph_day.source == "computed"
    assert m.hashprice_usd_per_ph_day.as_of == REFERENCE_AS_OF
    assert m.feed.enabled is False


def test_config_figures_are_sourced_config_and_aged_from_as_of() -> None:
    market = MarketConfig(
        as_of=dt.date(2026, 3, 1),
        btc_price_usd=80_000.0,
        pool_fee=0.02,
        pool_scheme="PPS",
        gpu_pool_fee=0.01,
        ai_rate_usd_per_gpu_hour={"H100": 2.35, "RTX 5090": 0.6},
    )
    power = PowerConfig(price_usd_per_kwh=0.06, overhead_asic=1.1)
    m = market_at(StaticMarket.from_config(market, power), REFERENCE_AS_OF + 100 * 86400)
    march = dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()
    assert m.btc_price_usd == Figure(value=80_000.0, source="config", as_of=march)
    assert m.network_difficulty.source == DEFAULT_SOURCE  # not given: still the default
    assert m.pool_scheme == "PPS" and not m.pays_fees
    assert m.gpu_pool_fee.value == 0.01
    # Site figures (contract power price, overheads) do not age like market data.
    assert m.power_price_usd_per_kwh == Figure(value=0.06, source="config", as_of=None)
    assert m.power_price_usd_per_kwh.age_s(m.taken_at) is None
    assert m.overhead_asic.value == 1.1 and m.overhead_gpu.source == DEFAULT_SOURCE
    # Rates merge over the defaults, each with its own source.
    assert m.ai_rate_usd_per_gpu_hour["H100"].source == "config"
    assert m.ai_rate_usd_per_gpu_hour["RTX 5090"].value == 0.6
    assert m.ai_rate_usd_per_gpu_hour["L40S"].source == DEFAULT_SOURCE
    # A computed figure is as old as its oldest input (the default difficulty).
    assert m.hashprice_usd_per_ph_day.as_of == REFERENCE_AS_OF


def test_config_without_as_of_has_unknown_age() -> None:
    m = market_at(StaticMarket.from_config(MarketConfig(btc_price_usd=1.0), PowerConfig()), 2e9)
    assert m.btc_price_usd.as_of is None and m.btc_price_usd.age_s(2e9) is None
    assert m.hashprice_usd_per_ph_day.as_of is None


def test_live_values_replace_static_ones_and_the_height_sets_the_subsidy() -> None:
    static = StaticMarket.from_config(MarketConfig(), PowerConfig())
    now = 1_800_000_000.0
    live = LiveValues(
        btc_price_usd=Figure(value=100_000.0, source="coingecko", as_of=now - 30),
        network_difficulty=Figure(value=150e12, source="mempool.space", as_of=now - 300),
        fees_per_block_btc=None,  # not fetched yet: static
        block_height=Figure(value=1_050_001, source="mempool.space", as_of=now - 200),
    )
    m = market_at(static, now, live=live)
    assert m.btc_price_usd.source == "coingecko"
    assert m.block_subsidy_btc == Figure(value=1.5625, source="mempool.space", as_of=now - 200)
    assert m.fees_per_block_btc.source == DEFAULT_SOURCE
    expected = hashprice_btc_per_ph_day(150e12, 1.5625, 0.017)
    assert m.hashprice_btc_per_ph_day.value == pytest.approx(expected)
    assert m.hashprice_usd_per_ph_day.value == pytest.approx(expected * 100_000)
    assert m.hashprice_usd_per_ph_day.as_of == REFERENCE_AS_OF  # the default fees are oldest
    assert m.feed.enabled is True
    assert m.block_height is not None and m.block_height.value == 1_050_001


# ---- time of use -----------------------------------------------------------------------------


def window(name: str, start: str, end: str, price: float, **kw: object) -> TouWindow:
    return TouWindow(name=name, start=start, end=end, price_usd_per_kwh=price, **kw)  # type: ignore[arg-type]


def test_tou_window_in_the_site_timezone() -> None:
    peak = window("peak", "14:00", "19:00", 0.12, days=("mon", "tue", "wed", "thu", "fri"))
    windows = (peak,)
    # Monday 2026-07-06 in Chicago (CDT, UTC-5)
    assert tou_window_at(windows, at(CHICAGO, 2026, 7, 6, 14, 0), CHICAGO) is peak
    assert tou_window_at(windows, at(CHICAGO, 2026, 7, 6, 18, 59), CHICAGO) is peak
    assert tou_window_at(windows, at(CHICAGO, 2026, 7, 6, 19, 0), CHICAGO) is None  # end exclusive
    assert tou_window_at(windows, at(CHICAGO, 2026, 7, 6, 13, 59), CHICAGO) is None
    assert tou_window_at(windows, at(CHICAGO, 2026, 7, 4, 15, 0), CHICAGO) is None  # Saturday
    # 15:00 in Chicago is 20:00 UTC: read in UTC it is outside the window.
    assert tou_window_at(windows, at(CHICAGO, 2026, 7, 6, 15, 0), dt.UTC) is None


def test_tou_window_wrapping_midnight_belongs_to_its_start_day() -> None:
    night = window("fri-night", "22:00", "06:00", 0.03, days=("fri",))
    utc = dt.UTC
    assert tou_window_at((night,), at(utc, 2026, 7, 3, 23, 0), utc) is night  # Friday 23:00
    assert tou_window_at((night,), at(utc, 2026, 7, 4, 3, 0), utc) is night  # Saturday 03:00
    assert tou_window_at((night,), at(utc, 2026, 7, 4, 6, 0), utc) is None
    assert tou_window_at((night,), at(utc, 2026, 7, 4, 23, 0), utc) is None  # Saturday night
    assert tou_window_at((night,), at(utc, 2026, 7, 3, 3, 0), utc) is None  # Thursday's night


def test_tou_months_first_window_wins_and_24_00() -> None:
    summer = window("summer", "00:00", "24:00", 0.09, months=(6, 7, 8, 9))
    evening = window("evening", "17:00", "21:00", 0.2)
    utc = dt.UTC
    assert tou_window_at((summer, evening), at(utc, 2026, 7, 1, 18, 0), utc) is summer
    assert tou_window_at((evening, summer), at(utc, 2026, 7, 1, 18, 0), utc) is evening
    assert tou_window_at((summer, evening), at(utc, 2026, 12, 1, 18, 0), utc) is evening
    assert tou_window_at((summer,), at(utc, 2026, 7, 1, 23, 59), utc) is summer


def test_market_uses_the_tou_price_in_force() -> None:
    power = PowerConfig(price_usd_per_kwh=0.05, tou=(window("peak", "14:00", "19:00", 0.12),))
    static = StaticMarket.from_config(MarketConfig(), power)
    inside = market_at(static, at(CHICAGO, 2026, 7, 6, 15, 0), zone=CHICAGO)
    assert inside.power_price_usd_per_kwh == Figure(value=0.12, source="config tou peak")
    assert inside.power_period == "peak"
    outside = market_at(static, at(CHICAGO, 2026, 7, 6, 20, 0), zone=CHICAGO)
    assert outside.power_price_usd_per_kwh.value == 0.05 and outside.power_period is None
