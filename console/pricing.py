"""Prices a site's snapshots: the market now, the fleet's earnings, and what accrued today.

`SitePricing` is what `console.site.Site` holds to turn a store snapshot into a priced one
(`Snapshot.market`, `Snapshot.earnings`); presenters never call it, they read the snapshot.
It owns the three stateful parts of pricing: the optional live market feed, the incremental
snapshot → arrays builder, and the accrual ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from console.accrual import EarningsLedger
from console.config import SiteConfig
from console.economics import JobOffers, fleet_earnings
from console.fleet_inputs import FleetInputsBuilder, GpuEconomicsOf, no_gpu_economics
from console.market import MarketSnapshot, StaticMarket, market_at
from console.model import Snapshot
from console.profit_history import ProfitHistory

if TYPE_CHECKING:
    from console.market_feed import LiveMarketFeed

LEDGER_FILE = "earnings.sqlite"
ACCRUAL_INTERVAL_S = 1.0
"""Accrual steps per second: often enough to see every reading of a device polled every few
seconds, each step one small SQLite transaction."""


class SitePricing:
    def __init__(
        self,
        config: SiteConfig,
        device_ids: Sequence[str],
        max_gap_s: Sequence[float],
        *,
        gpu_economics: GpuEconomicsOf = no_gpu_economics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.zone = config.site.zone
        self.static = StaticMarket.from_config(config.market, config.power)
        live = config.market.live
        self.feed: LiveMarketFeed | None = None
        if live.enabled:
            # Imported here: the HTTP client costs ~0.1 s of start-up that a site without a
            # live feed (the demo) should not pay.
            from console.market_feed import LiveMarketFeed

            key = os.environ.get(live.coingecko_api_key_env) if live.coingecko_api_key_env else None
            self.feed = LiveMarketFeed(live, api_key=key, clock=clock)
        self.builder = FleetInputsBuilder(gpu_economics)
        self.job_offers: Callable[[], JobOffers] = JobOffers.none
        """Queued AI jobs GPUs could take; `console.workloads` sets this when it lands."""
        self.profit_history = ProfitHistory(device_ids)
        """A profit point per device and reading, recorded by `accrue` (the detail screen's
        profit sparkline)."""
        self.ledger = EarningsLedger(
            config.site.state_path / LEDGER_FILE,
            device_ids,
            max_gap_s,
            self.zone,
            timezone_name=config.site.timezone,
            clock=clock,
        )

    def market(self, now: float | None = None) -> MarketSnapshot:
        now = self._clock() if now is None else now
        live = self.feed.values(now) if self.feed is not None else None
        return market_at(self.static, now, zone=self.zone, live=live)

    def price(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with its market and earnings filled in (a new immutable snapshot)."""
        inputs = self.builder.build(snapshot)
        market = self.market(snapshot.taken_at)
        earnings = fleet_earnings(
            inputs, market, offers=self.job_offers(), accrued=self.ledger.view()
        )
        return msgspec.structs.replace(snapshot, market=market, earnings=earnings)

    async def accrue(self, snapshot: Snapshot) -> None:
        """One accrual step from a fresh store snapshot."""
        priced = self.price(snapshot)
        e = priced.earnings
        if e is None:
            return
        self.profit_history.record(e.inputs.reading_at, e.columns.profit_usd_per_day)
        await self.ledger.step(
            e.inputs.reading_at, e.columns.revenue_usd_per_day, e.columns.power_cost_usd_per_day
        )

    async def run_accrual(self, snapshot: Callable[[], Snapshot]) -> None:
        """Accrue until cancelled (the writer lock is taken first)."""
        await self.ledger.open_writer()
        while True:
            try:
                await self.accrue(snapshot())
            except Exception as exc:  # one bad step must not stop accrual; the UI shows it
                self.ledger.report_error(f"accrual step failed: {type(exc).__name__}: {exc}")
            await asyncio.sleep(ACCRUAL_INTERVAL_S)

    async def run_feed(self) -> None:
        if self.feed is not None:
            await self.feed.run()

    async def prepare_once(self) -> None:
        """For a one-shot snapshot: one live fetch (bounded by its timeout) and today's
        accrued figures, read-only (a running console keeps accruing undisturbed)."""
        jobs = [self.ledger.open_reader()]
        if self.feed is not None:
            jobs.append(self.feed.refresh())
        await asyncio.gather(*jobs)

    async def close(self) -> None:
        await self.ledger.close()
        if self.feed is not None:
            with contextlib.suppress(Exception):
                await self.feed.aclose()
