"""The live market feed against a local HTTP server speaking mempool.space and CoinGecko:
real sockets, the real JSON shapes, and the failures real APIs have (errors, timeouts, 429).

The feed's scheduling clock is a fake that the tests move; request deadlines are real.
"""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator

import pytest

from console.config import MarketConfig, MarketLiveConfig, PowerConfig
from console.market import DEFAULT_SOURCE, StaticMarket, hashprice_btc_per_ph_day, market_at
from console.market_feed import LiveMarketFeed, parse_retry_after
from tests.market_api import PRICE_TIME, MarketApi, Reply

START = 1_800_000_000.0
PRICES = "/api/v1/prices"
GECKO = "/api/v3/simple/price"
HASHRATE = "/api/v1/mining/hashrate/3d"
FEES = "/api/v1/mining/reward-stats/144"
HEIGHT = "/api/blocks/tip/height"


class Clock:
    def __init__(self) -> None:
        self.t = START

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def api() -> AsyncIterator[MarketApi]:
    server = MarketApi()
    await server.start()
    yield server
    await server.stop()


def make_feed(api: MarketApi, clock: Clock, **kw: object) -> LiveMarketFeed:
    config = MarketLiveConfig(
        enabled=True,
        mempool_url=api.mempool_url,
        coingecko_url=api.coingecko_url,
        timeout_s=0.5,
        **kw,  # type: ignore[arg-type]
    )
    return LiveMarketFeed(config, api_key="demo-key-123", clock=clock)


STATIC = StaticMarket.from_config(MarketConfig(btc_price_usd=50_000.0), PowerConfig())


async def test_live_values_from_the_real_shapes(api: MarketApi) -> None:
    clock = Clock()
    feed = make_feed(api, clock)
    try:
        await feed.refresh()
    finally:
        await feed.aclose()
    v = feed.values()
    assert v.btc_price_usd is not None and v.btc_price_usd.value == 91580
    assert v.btc_price_usd.source == "mempool.space"
    assert v.btc_price_usd.as_of == PRICE_TIME  # the API's own time, not the fetch time
    assert v.network_difficulty is not None and v.network_difficulty.value == 146.47e12
    assert v.network_difficulty.as_of == START
    assert v.fees_per_block_btc is not None
    assert v.fees_per_block_btc.value == pytest.approx(0.0172)  # "247680000" sats / 144 blocks
    assert v.block_height is not None and v.block_height.value == 931_000
    assert api.count(GECKO) == 0  # CoinGecko only when mempool's price fails
    m = market_at(STATIC, START + 5, live=v)
    assert m.block_subsidy_btc.value == 3.125 and m.block_subsidy_btc.source == "mempool.space"
    assert m.hashprice_btc_per_ph_day.value == pytest.approx(
        hashprice_btc_per_ph_day(146.47e12, 3.125, 0.0172)
    )
    assert m.hashprice_btc_per_ph_day.value == pytest.approx(0.00043143, rel=1e-3)
    assert m.hashprice_usd_per_ph_day.as_of == PRICE_TIME  # the oldest input: the price
    assert m.feed.enabled and all(h.ok or h.name == "coingecko" for h in m.feed.hosts)


async def test_items_are_cached_for_their_interval(api: MarketApi) -> None:
    clock = Clock()
    feed = make_feed(api, clock, price_interval_s=60, chain_interval_s=600)
    try:
        await feed.refresh()
        clock.t += 30
        await feed.refresh()
        assert api.count(PRICES) == 1 and api.count(HASHRATE) == 1
        clock.t += 31
        await feed.refresh()
        assert api.count(PRICES) == 2 and api.count(HASHRATE) == 1
        clock.t += 600
        await feed.refresh()
        assert api.count(HASHRATE) == 2 and api.count(FEES) == 2 and api.count(HEIGHT) == 2
    finally:
        await feed.aclose()


async def test_price_falls_back_to_coingecko_with_the_api_key(api: MarketApi) -> None:
    api.fail(PRICES, Reply(status=500, body=b"oops"))
    clock = Clock()
    feed = make_feed(api, clock)
    try:
        await feed.refresh()
    finally:
        await feed.aclose()
    v = feed.values()
    assert v.btc_price_usd is not None and v.btc_price_usd.source == "coingecko"
    assert v.btc_price_usd.value == 91132.0 and v.btc_price_usd.as_of == PRICE_TIME + 60
    gecko = next(r for r in api.requests if r.path == GECKO)
    assert gecko.query == {
        "ids": "bitcoin",
        "vs_currencies": "usd",
        "include_last_updated_at": "true",
    }
    assert gecko.headers["x-cg-demo-api-key"] == "demo-key-123"
    # A 500 is about that endpoint: mempool's other endpoints were still asked and answered.
    mempool = next(h for h in v.hosts if h.name == "mempool.space")
    assert mempool.ok and mempool.retry_at is None
    assert v.network_difficulty is not None and v.network_difficulty.source == "mempool.space"
    assert v.errors == {}  # the price item got its value from CoinGecko


async def test_http_429_retry_after_is_honoured_and_last_good_kept_then_static(
    api: MarketApi,
) -> None:
    clock = Clock()
    feed = make_feed(api, clock, price_interval_s=60, last_good_max_age_s=3600)
    try:
        await feed.refresh()  # all good at START
        api.fail(PRICES, Reply(status=429, headers={"Retry-After": "120"}))
        api.fail(GECKO, Reply(status=429, body=b'{"status":{"error_code":429}}'))
        clock.t = START + 61
        await feed.refresh()
        v = feed.values()
        assert v.btc_price_usd is not None
        assert v.btc_price_usd.source == "last good mempool.space"
        assert v.btc_price_usd.value == 91580 and v.btc_price_usd.as_of == PRICE_TIME
        mempool = next(h for h in v.hosts if h.name == "mempool.space")
        assert mempool.ok is False and mempool.retry_at == START + 61 + 120
        assert mempool.last_error == "HTTP 429 rate limited, retry after 120 s"
        gecko = next(h for h in v.hosts if h.name == "coingecko")
        assert gecko.retry_at == START + 61 + 60  # no Retry-After: back-off from the interval
        assert v.errors["btc_price_usd"] == (
            "mempool.space: HTTP 429 rate limited, retry after 120 s; "
            "coingecko: HTTP 429 rate limited"
        )
        # Inside both back-offs nothing is sent, however often the feed is asked.
        sent = len(api.requests)
        for t in (START + 62, START + 100, START + 120):
            clock.t = t
            await feed.refresh()
        assert len(api.requests) == sent
        # CoinGecko's back-off ends first: asked again (still 429, back-off doubles).
        clock.t = START + 122
        await feed.refresh()
        assert api.count(GECKO) == 2 and api.count(PRICES) == 2
        gecko = next(h for h in feed.values().hosts if h.name == "coingecko")
        assert gecko.retry_at == START + 122 + 120
        # After Retry-After, mempool is asked again and has recovered.
        api.heal()
        clock.t = START + 182
        await feed.refresh()
        assert api.count(PRICES) == 3
        v = feed.values()
        assert v.btc_price_usd is not None and v.btc_price_usd.source == "mempool.space"
        # A long outage: past last_good_max_age_s the static figure takes over.
        api.fail(PRICES, Reply(status=503))
        api.fail(GECKO, Reply(status=503))
        clock.t = START + 182 + 3601
        await feed.refresh()
        v = feed.values()
        assert v.btc_price_usd is None
        m = market_at(STATIC, clock.t, live=v)
        assert m.btc_price_usd.value == 50_000.0 and m.btc_price_usd.source == "config"
        # Difficulty was last fetched at START: beyond the same limit, the default is used.
        assert m.network_difficulty.source == DEFAULT_SOURCE
        assert v.errors["btc_price_usd"] == (
            "mempool.space: HTTP 503 unavailable; coingecko: HTTP 503 unavailable"
        )
    finally:
        await feed.aclose()


async def test_a_hung_server_times_out_and_the_last_good_value_stays(api: MarketApi) -> None:
    clock = Clock()
    feed = make_feed(api, clock)
    try:
        await feed.refresh()
        api.fail(HASHRATE, Reply(hang=True))
        clock.t += 601
        await feed.refresh()
    finally:
        await feed.aclose()
    v = feed.values()
    assert v.network_difficulty is not None
    assert v.network_difficulty.source == "last good mempool.space"
    assert v.network_difficulty.value == 146.47e12
    assert v.network_difficulty.as_of == START
    mempool = next(h for h in v.hosts if h.name == "mempool.space")
    assert mempool.retry_at is not None and mempool.last_error == "timeout after 0.5 s"
    assert v.errors["network_difficulty"] == "mempool.space: timeout after 0.5 s"
    # The host is backing off, so the other chain items were not asked: last good too.
    assert v.fees_per_block_btc is not None
    assert v.fees_per_block_btc.source == "last good mempool.space"


@pytest.mark.parametrize(
    ("path", "reply", "item", "error"),
    [
        (HASHRATE, Reply(body=b'{"currentDifficulty": 0}'), "network_difficulty", "implausible"),
        (HASHRATE, Reply(body=b"<html>maintenance</html>"), "network_difficulty", "bad reply"),
        (HASHRATE, Reply(body=b'{"hashrates": []}'), "network_difficulty", "bad reply"),
        (FEES, Reply(body=b'{"totalFee": "lots"}'), "fees_per_block_btc", "not a number"),
        (FEES, Reply(body=b'{"totalFee": "-5"}'), "fees_per_block_btc", "implausible"),
        (HEIGHT, Reply(body=b"abc"), "block_height", "not an integer"),
        (PRICES, Reply(body=b'{"USD": -1, "time": 1}'), "btc_price_usd", "implausible USD"),
        (HASHRATE, Reply(status=404, body=b"no"), "network_difficulty", "HTTP 404"),
    ],
)
async def test_bad_replies_are_failures_not_values(
    api: MarketApi, path: str, reply: Reply, item: str, error: str
) -> None:
    api.fail(path, reply)
    if path == PRICES:
        api.fail(GECKO, Reply(status=500))
    clock = Clock()
    feed = make_feed(api, clock)
    try:
        await feed.refresh()
    finally:
        await feed.aclose()
    v = feed.values()
    assert getattr(v, item) is None  # never fetched good: the static figure will be used
    m = market_at(STATIC, clock.t, live=v)
    assert getattr(m, item if item != "block_height" else "block_subsidy_btc").source in (
        DEFAULT_SOURCE,
        "config",
    )
    assert error in v.errors[item], v.errors
    # A bad reply is not a rate limit: the host is not backed off.
    assert all(h.retry_at is None for h in v.hosts if h.name == "mempool.space")


async def test_retry_after_as_an_http_date(api: MarketApi) -> None:
    clock = Clock()
    when = email.utils.formatdate(START + 300, usegmt=True)
    api.fail(HASHRATE, Reply(status=429, headers={"Retry-After": when}))
    feed = make_feed(api, clock)
    try:
        await feed.refresh()
    finally:
        await feed.aclose()
    mempool = next(h for h in feed.values().hosts if h.name == "mempool.space")
    assert mempool.retry_at == pytest.approx(START + 300)


def test_parse_retry_after() -> None:
    assert parse_retry_after("40", 0) == 40
    assert parse_retry_after("999999", 0) == 86_400  # capped at a day
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(email.utils.formatdate(1000, usegmt=True), 900) == 100
