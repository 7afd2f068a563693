"""The optional live market feed: mempool.space (difficulty, fees, tip height, price) and
CoinGecko (price fallback), polled politely, cached, and never trusted blindly.

Responsibilities:

* Fetch each item no more often than its interval (price every `price_interval_s`, chain data
  every `chain_interval_s`); between fetches the cached value is served.
* Per host back-off: after a timeout, a connection failure, HTTP 429 or 503, no request goes
  to that host until `retry_at` (exponential from `price_interval_s`, capped at
  `backoff_max_s`); a `Retry-After` is honoured as given (rate limits are the servers' rules,
  economics.md rule 7). Requests run one after another so a back-off takes effect at once.
* Validate every reply (shape and plausible range). A bad reply or another HTTP status fails
  that item only (retried at its next interval), with the reason in `LiveValues.errors`.
* After a failure an item keeps its last good value, sourced "last good <host>" and aged from
  when it was fetched, until `last_good_max_age_s`; then it is dropped and `market_at` falls
  back to the static figure.

Units (economics.md rule 6): mempool reward stats are sats as strings; prices are USD per BTC
with a unix-seconds `time` (mempool) or `last_updated_at` (CoinGecko).

The HTTP client is httpx (HTTPS with the system's certificate handling, proxies from the
environment). Tests point the base URLs at a local server; nothing here has a fixed host.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Final, TypeVar

import httpx
import msgspec

from console.config import MarketLiveConfig
from console.market import Figure, HostStatus, LiveValues

MEMPOOL: Final = "mempool.space"
COINGECKO: Final = "coingecko"
FEE_BLOCKS: Final = 144  # fees averaged over the last day of blocks, like the hashprice index
RETRY_AFTER_MAX_S: Final = 86_400.0  # honour a server's Retry-After, but not beyond a day
MIN_SLEEP_S: Final = 1.0

T = TypeVar("T")


class FeedError(Exception):
    """One failed request, phrased for the operator ("HTTP 429, retry after 40 s").

    `host_fault`: the host did not answer properly (timeout, connection, HTTP error status),
    so the whole host backs off; False for a reply that arrived but did not validate, which
    only fails that item."""

    def __init__(
        self, message: str, retry_after_s: float | None = None, *, host_fault: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.host_fault = host_fault


# Reply shapes (only the fields we use; msgspec ignores the rest).


class _MempoolPrices(msgspec.Struct):
    USD: float
    time: int | None = None


class _MempoolHashrate(msgspec.Struct, rename="camel"):
    current_difficulty: float


class _MempoolRewardStats(msgspec.Struct, rename="camel"):
    total_fee: str | int
    start_block: int | None = None
    end_block: int | None = None


class _GeckoBitcoin(msgspec.Struct):
    usd: float
    last_updated_at: int | None = None


class _GeckoPrice(msgspec.Struct):
    bitcoin: _GeckoBitcoin


def parse_mempool_price(body: bytes, fetched_at: float) -> Figure:
    reply = _decode(body, _MempoolPrices)
    return Figure(
        value=_plausible(reply.USD, 0, 1e8, "USD price"),
        source=MEMPOOL,
        as_of=_stamp(reply.time, fetched_at),
    )


def parse_mempool_difficulty(body: bytes, fetched_at: float) -> Figure:
    reply = _decode(body, _MempoolHashrate)
    value = _plausible(reply.current_difficulty, 1, 1e30, "currentDifficulty")
    return Figure(value=value, source=MEMPOOL, as_of=fetched_at)


def parse_mempool_fees(body: bytes, fetched_at: float) -> Figure:
    """Average fees per block in BTC from `/v1/mining/reward-stats/144` (sats, as strings)."""
    reply = _decode(body, _MempoolRewardStats)
    try:
        total_fee_sats = int(reply.total_fee)
    except ValueError as exc:
        raise FeedError(f"bad reply: totalFee {reply.total_fee!r} is not a number") from exc
    blocks = FEE_BLOCKS
    if reply.start_block is not None and reply.end_block is not None:
        span = reply.end_block - reply.start_block + 1
        if 0 < span <= 10 * FEE_BLOCKS:
            blocks = span
    fees_btc = total_fee_sats / blocks / 1e8
    return Figure(
        value=_plausible(fees_btc, 0, 50, "fees per block"), source=MEMPOOL, as_of=fetched_at
    )


def parse_mempool_height(body: bytes, fetched_at: float) -> Figure:
    text = body.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise FeedError(f"bad reply: tip height {text[:40]!r} is not an integer")
    value = _plausible(float(int(text)), 0, 1e8, "tip height")
    return Figure(value=value, source=MEMPOOL, as_of=fetched_at)


def parse_coingecko_price(body: bytes, fetched_at: float) -> Figure:
    reply = _decode(body, _GeckoPrice)
    return Figure(
        value=_plausible(reply.bitcoin.usd, 0, 1e8, "USD price"),
        source=COINGECKO,
        as_of=_stamp(reply.bitcoin.last_updated_at, fetched_at),
    )


def _decode(body: bytes, typ: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=typ)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise FeedError(f"bad reply: {exc}") from exc


def _plausible(value: float, low: float, high: float, what: str) -> float:
    if not math.isfinite(value) or not low <= value <= high:
        raise FeedError(f"bad reply: implausible {what} {value!r}")
    return float(value)


def _stamp(api_time: int | None, fetched_at: float) -> float:
    """The API's own timestamp when it gives one (never in the future), else the fetch time."""
    if api_time is None or api_time <= 0:
        return fetched_at
    return min(float(api_time), fetched_at)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return min(max(0.0, when - now), RETRY_AFTER_MAX_S)


@dataclass
class _Host:
    name: str
    base_url: str
    failures: int = 0
    retry_at: float | None = None
    last_ok_at: float | None = None
    last_error: str | None = None
    ok: bool = False

    def status(self) -> HostStatus:
        return HostStatus(
            name=self.name,
            ok=self.ok,
            last_ok_at=self.last_ok_at,
            last_error=self.last_error,
            retry_at=self.retry_at,
        )


@dataclass
class _Item:
    """One cached value: the last good figure, when it was fetched, whether the last try failed."""

    name: str
    interval_s: float
    value: Figure | None = None
    fetched_at: float | None = None
    failed: bool = False
    last_error: str | None = None
    next_due: float = 0.0


@dataclass
class _Plan:
    host: _Host
    path: str
    parse: Callable[[bytes, float], Figure]
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class LiveMarketFeed:
    """Polls the live sources; `values(now)` is what `market.market_at` merges in."""

    def __init__(
        self,
        config: MarketLiveConfig,
        *,
        api_key: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._mempool = _Host(MEMPOOL, config.mempool_url.rstrip("/"))
        self._gecko = _Host(COINGECKO, config.coingecko_url.rstrip("/"))
        self._gecko_headers = {"x-cg-demo-api-key": api_key} if api_key else {}
        self.price = _Item("btc_price_usd", config.price_interval_s)
        self.difficulty = _Item("network_difficulty", config.chain_interval_s)
        self.fees = _Item("fees_per_block_btc", config.chain_interval_s)
        self.height = _Item("block_height", config.chain_interval_s)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout_s),
            headers={"User-Agent": "hashpivot/0.1 (+market feed)", "Accept": "application/json"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- reading -------------------------------------------------------------------------------

    def values(self, now: float | None = None) -> LiveValues:
        now = self._clock() if now is None else now
        return LiveValues(
            btc_price_usd=self._current(self.price, now),
            network_difficulty=self._current(self.difficulty, now),
            fees_per_block_btc=self._current(self.fees, now),
            block_height=self._current(self.height, now),
            hosts=(self._mempool.status(), self._gecko.status()),
            errors={
                item.name: item.last_error
                for item in (self.price, self.difficulty, self.fees, self.height)
                if item.last_error is not None
            },
        )

    def _current(self, item: _Item, now: float) -> Figure | None:
        if item.value is None or item.fetched_at is None:
            return None
        if now - item.fetched_at > self.config.last_good_max_age_s:
            return None  # too old to beat the static figure's honesty: fall back
        if item.failed:
            return Figure(
                value=item.value.value,
                source=f"last good {item.value.source}",
                as_of=item.value.as_of,
            )
        return item.value

    # -- fetching ------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetch every item that is due; never raises for a failed source.

        Requests go one after another, not concurrently: a host that answers 429 or times out
        is then left alone for the rest of this refresh, and a concurrent success can never
        clear a back-off that another request just set. (At most five requests per
        interval: there is nothing to gain from parallelism.)"""
        now = self._clock()
        if self.price.next_due <= now:
            gecko = _Plan(
                self._gecko,
                "/simple/price",
                parse_coingecko_price,
                params={
                    "ids": "bitcoin",
                    "vs_currencies": "usd",
                    "include_last_updated_at": "true",
                },
                headers=self._gecko_headers,
            )
            mempool = _Plan(self._mempool, "/v1/prices", parse_mempool_price)
            await self._fetch(self.price, [mempool, gecko])
        chain = (
            (self.difficulty, "/v1/mining/hashrate/3d", parse_mempool_difficulty),
            (self.fees, f"/v1/mining/reward-stats/{FEE_BLOCKS}", parse_mempool_fees),
            (self.height, "/blocks/tip/height", parse_mempool_height),
        )
        for item, path, parse in chain:
            if item.next_due <= now:
                await self._fetch(item, [_Plan(self._mempool, path, parse)])

    async def run(self) -> None:
        """Refresh until cancelled, sleeping until the next item or host is due."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._sleep_s())

    def _sleep_s(self) -> float:
        now = self._clock()
        due = min(i.next_due for i in (self.price, self.difficulty, self.fees, self.height))
        return max(MIN_SLEEP_S, due - now)

    async def _fetch(self, item: _Item, plans: list[_Plan]) -> None:
        """Try each source in order (skipping hosts in back-off) until one gives a value."""
        now = self._clock()
        retry_at: list[float] = []
        errors: list[str] = []
        for plan in plans:
            host = plan.host
            if host.retry_at is not None and host.retry_at > now:
                retry_at.append(host.retry_at)
                errors.append(f"{host.name}: backing off, retry in {host.retry_at - now:.0f} s")
                continue
            try:
                body = await self._get(plan)
                fetched_at = self._clock()
                host.ok, host.failures, host.retry_at = True, 0, None
                host.last_ok_at, host.last_error = fetched_at, None
                figure = plan.parse(body, fetched_at)
            except FeedError as exc:
                errors.append(f"{host.name}: {exc}")
                if exc.host_fault:
                    self._back_off(host, str(exc), exc.retry_after_s)
                    if host.retry_at is not None:
                        retry_at.append(host.retry_at)
                continue
            item.value, item.fetched_at, item.failed = figure, fetched_at, False
            item.last_error = None
            item.next_due = fetched_at + item.interval_s
            return
        # Every source failed or is backing off: keep the last good value, marked as such,
        # and try again when the first host allows it (a bad reply: at the next interval).
        item.failed = True
        item.last_error = "; ".join(errors)
        item.next_due = max(now + MIN_SLEEP_S, min(retry_at) if retry_at else now + item.interval_s)

    def _back_off(self, host: _Host, message: str, retry_after_s: float | None) -> None:
        now = self._clock()
        host.ok = False
        host.failures += 1
        host.last_error = message
        backoff_s = min(
            self.config.backoff_max_s,
            self.config.price_interval_s * 2 ** (host.failures - 1),
        )
        if retry_after_s is not None:
            backoff_s = max(retry_after_s, MIN_SLEEP_S)
        host.retry_at = now + backoff_s

    async def _get(self, plan: _Plan) -> bytes:
        url = plan.host.base_url + plan.path
        try:
            # httpx's timeout is per phase (connect, each read); this one bounds the whole
            # exchange, so a server that trickles bytes cannot hold the feed.
            async with asyncio.timeout(self.config.timeout_s):
                response = await self._client.get(url, params=plan.params, headers=plan.headers)
                body = response.content
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise FeedError(f"timeout after {self.config.timeout_s:g} s", host_fault=True) from exc
        except httpx.HTTPError as exc:
            message = f"request failed: {type(exc).__name__}: {exc}"
            raise FeedError(message, host_fault=True) from exc
        if response.status_code == 429:
            wait_s = parse_retry_after(response.headers.get("retry-after"), self._clock())
            note = f", retry after {wait_s:g} s" if wait_s is not None else ""
            raise FeedError(f"HTTP 429 rate limited{note}", wait_s, host_fault=True)
        if response.status_code == 503:
            # Unavailable: the whole host, for as long as it says (or the normal back-off).
            wait_s = parse_retry_after(response.headers.get("retry-after"), self._clock())
            raise FeedError("HTTP 503 unavailable", wait_s, host_fault=True)
        if response.status_code != 200:
            # Any other status is about this endpoint; the host's other endpoints may be fine.
            raise FeedError(f"HTTP {response.status_code}")
        return body
