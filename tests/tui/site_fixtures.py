"""Deterministic console input for screenshot tests: a fixed site with history and an audit log.

`fixed_store()` builds a real `Store` with half an hour of readings per device at a fixed
clock; `fixed_market()` a market with live, config and default figures of known ages;
`price()` prices a store snapshot with the real earnings model (and a fixed accrual for
today); `fixed_profit_history()` prices every point of the store's history into a real
`ProfitHistory`. `FixedSite` serves its one priced snapshot forever, with a real `ActionPath`
over a real SQLite `AuditLog` (in the test's tmp dir) so the detail screen's audit list is
real too.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from types import TracebackType
from typing import Self

import msgspec
import numpy as np
import numpy.typing as npt

from console.actions import ActionPath, AuditEntry
from console.audit import AuditLog
from console.config import MarketConfig, PowerConfig
from console.economics import (
    KIND_ASIC,
    AccruedToday,
    FleetInputs,
    MarketParams,
    blank_columns,
    compute,
    fleet_earnings,
)
from console.events import EventHub
from console.fleet_inputs import FleetInputsBuilder
from console.market import Figure, LiveValues, MarketSnapshot, StaticMarket, market_at
from console.model import CommandedMode, DeviceKind, ErrorKind, Snapshot
from console.profit_history import ProfitHistory
from console.store import DeviceInfo, Metric, Store
from drivers.cgminer.reading import (
    AsicReading,
    BoardReading,
    Firmware,
    MinerState,
    PoolReading,
)

NOW = 1_790_000_000.0
HISTORY_POINTS = 60
HISTORY_STEP_S = 30.0
DETAIL_DEVICE = "r1-s21-02"
"""The privileged LuxOS miner the detail and modal screenshots show."""


def _boards(ths: float, temp_c: float, count: int = 3, short_board: int | None = None) -> tuple:
    per = ths / count * 1e12
    boards = []
    for i in range(count):
        chips = 126 - (2 if i == short_board else 0)
        boards.append(
            BoardReading(
                index=i,
                hashrate_hs=per,
                nominal_hashrate_hs=per,
                temp_board_c=temp_c - 12 + i,
                temp_chip_c=temp_c - 2 + i if i < count - 1 else temp_c,
                chips_found=chips,
                chips_expected=126,
                hardware_errors=17 * (i + 1),
                frequency_mhz=490.0,
                serial=f"SN{2401000 + i:07d}",
            )
        )
    return tuple(boards)


def _pools(name: str) -> tuple[PoolReading, ...]:
    return (
        PoolReading(
            index=0,
            url="stratum+tcp://pool.example.net:3333",
            user=f"site.{name}",
            status="Alive",
            active=True,
            priority=0,
            accepted=48_211,
            rejected=12,
            stale=3,
        ),
        PoolReading(
            index=1,
            url="stratum+tcp://backup.example.org:443",
            user=f"site.{name}",
            status="Alive",
            priority=1,
            accepted=0,
            rejected=0,
            stale=0,
        ),
        PoolReading(
            index=2,
            url="stratum+tcp://old.example.com:3333",
            user="",
            status="Dead",
            priority=2,
        ),
    )


def _reading(
    model: str,
    firmware: Firmware,
    hashrate_ths: float,
    power_w: float,
    *,
    name: str = "",
    nominal_ths: float | None = None,
    temp_c: float = 65.0,
    power_estimated: bool = False,
    state: MinerState = MinerState.MINING,
    short_board: int | None = None,
) -> AsicReading:
    return AsicReading(
        firmware=firmware,
        make=model.split()[0],
        model=model,
        firmware_version="2024.6.3" if firmware is Firmware.LUXOS else None,
        hashrate_5s_hs=hashrate_ths * 1e12,
        hashrate_avg_hs=hashrate_ths * 1e12,
        nominal_hashrate_hs=(nominal_ths if nominal_ths is not None else hashrate_ths) * 1e12,
        power_w=power_w,
        power_estimated=power_estimated,
        efficiency_j_per_th=power_w / hashrate_ths if hashrate_ths else None,
        state=state,
        boards=_boards(hashrate_ths, temp_c, short_board=short_board),
        fans_rpm=(4320, 4380, 4290, 4410),
        accepted=48_211,
        rejected=12,
        stale=3,
        hardware_errors=102,
        uptime_s=5 * 86400 + 3 * 3600 + 17 * 60,
        pools=_pools(name),
    )


# name, model, firmware, TH/s, W, power estimated
_DEVICES = [
    ("r1-s19jpro-01", "Antminer S19j Pro", Firmware.ANTMINER_STOCK, 104.2, 3068.0, True),
    (DETAIL_DEVICE, "Antminer S21", Firmware.LUXOS, 201.3, 3511.0, False),
    ("r2-m50-03", "Whatsminer M50VH50", Firmware.WHATSMINER, 118.1, 3422.0, False),
    ("r2-s19xp-04", "Antminer S19 XP", Firmware.ANTMINER_STOCK, 93.4, 2010.0, True),
    ("r3-a1246-05", "AvalonMiner 1246", Firmware.AVALON, 83.0, 3236.0, False),
    ("r3-s19jpro-06", "Antminer S19j Pro", Firmware.BRAIINS, 0.0, 60.0, False),
]


def fixed_store() -> Store:
    """Every state the table can show, and half an hour of history for each miner."""
    infos = [
        DeviceInfo(
            device_id=name,
            kind=DeviceKind.ASIC,
            name=name,
            host=f"192.0.2.{i + 1}",
            port=4028,
            model=model,
            interval_s=30,
            stale_after_s=75,
            lost_after_s=300,
            commanded=CommandedMode.MINING,
            privileged=name == DETAIL_DEVICE,
            tags=("row-1", "immersion") if name == DETAIL_DEVICE else (),
        )
        for i, (name, model, *_rest) in enumerate(_DEVICES)
    ]
    lost = DeviceInfo(
        device_id="r3-s21-07",
        kind=DeviceKind.ASIC,
        name="r3-s21-07",
        host="192.0.2.7",
        port=4028,
        model="Antminer S21",
        interval_s=30,
        stale_after_s=75,
        lost_after_s=300,
    )
    store = Store("lab", [*infos, lost])
    for name, model, firmware, ths, watts, estimated in _DEVICES:
        nominal = {"Antminer S19 XP": 140.0}.get(model, ths or 104.0)
        state = {"r3-s19jpro-06": MinerState.SLEEPING}.get(name, MinerState.MINING)
        for step in range(HISTORY_POINTS):
            # A slow deterministic wobble, so the sparklines have a shape to compare.
            wobble = math.sin(step / 6.0 + len(name))
            last = step == HISTORY_POINTS - 1
            reading = _reading(
                model,
                firmware,
                ths if last else max(0.0, ths * (1 + 0.03 * wobble)),
                watts if last else watts * (1 + 0.01 * wobble),
                name=name,
                nominal_ths=nominal,
                temp_c=65.0 if last else 65.0 + 3 * wobble,
                power_estimated=estimated,
                state=state,
                short_board=1 if name == DETAIL_DEVICE else None,
            )
            # r2-m50-03 stopped answering 100 s ago: stale, with its history ending there.
            end = NOW - (100 if name == "r2-m50-03" else 3)
            at = end - (HISTORY_POINTS - 1 - step) * HISTORY_STEP_S
            store.record_ok(name, reading, at=at)
    store.record_failure(
        "r3-s21-07", ErrorKind.TIMEOUT, "no complete reply within 10 s", at=NOW - 1
    )
    return store


ACCRUED_S = 3 * 3600.0
"""Today's accrual in the fixed snapshot: three hours of each priced device's current rate."""


def fixed_market(btc_price_usd: float = 91_580.0) -> MarketSnapshot:
    """A live BTC price 12 s old and chain data 6 min old (mempool.space), the power price
    from config (no date), the rest reference defaults."""
    static = StaticMarket.from_config(MarketConfig(), PowerConfig(price_usd_per_kwh=0.05))
    live = LiveValues(
        btc_price_usd=Figure(value=btc_price_usd, source="mempool.space", as_of=NOW - 12),
        network_difficulty=Figure(value=146.47e12, source="mempool.space", as_of=NOW - 360),
        fees_per_block_btc=Figure(value=0.0172, source="mempool.space", as_of=NOW - 360),
        block_height=Figure(value=915_000, source="mempool.space", as_of=NOW - 360),
    )
    return market_at(static, NOW, live=live)


def price(snapshot: Snapshot, market: MarketSnapshot | None = None) -> Snapshot:
    """`snapshot` priced like the site prices it, with three hours accrued today."""
    market = market or fixed_market()
    inputs = FleetInputsBuilder().build(snapshot)
    bare = fleet_earnings(inputs, market)
    c = bare.columns
    share = ACCRUED_S / 86_400
    accrued = AccruedToday(
        day="2026-09-21",
        timezone="UTC",
        revenue_usd=np.nan_to_num(c.revenue_usd_per_day) * share,
        power_cost_usd=np.nan_to_num(c.power_cost_usd_per_day) * share,
        covered_s=np.where(inputs.priced, ACCRUED_S, 0.0),
        persisted=True,
    )
    earnings = fleet_earnings(inputs, market, accrued=accrued)
    return msgspec.structs.replace(snapshot, market=market, earnings=earnings)


def fixed_profit_history(store: Store, market: MarketSnapshot) -> ProfitHistory:
    """Every point of the store's history priced under `market`, as `SitePricing` records it
    (one point per device and reading), through the real earnings formulas."""
    ids = store.device_ids()
    history = ProfitHistory(ids)
    series = [
        (store.history(d, Metric.HASHRATE_HS), store.history(d, Metric.POWER_W)[1]) for d in ids
    ]
    params = MarketParams.of(market)
    for step in range(HISTORY_POINTS):
        columns = blank_columns(len(ids))
        for row, ((times, hashrate), power) in enumerate(series):
            if step < len(times):
                columns["kind"][row] = KIND_ASIC
                columns["priced"][row] = True
                columns["hashrate_hs"][row] = float(hashrate[step])
                columns["power_w"][row] = float(power[step])
                columns["reading_at"][row] = float(times[step])
        x = FleetInputs(device_ids=tuple(ids), **columns)
        history.record(x.reading_at, compute(x, params).profit_usd_per_day)
    return history


def fixed_snapshot() -> Snapshot:
    return price(fixed_store().snapshot(now=NOW))


AUDIT_SEED = (
    AuditEntry(
        at=NOW - 3600,
        actor="night-shift",
        origin="tui",
        action="asic.curtail",
        target=DETAIL_DEVICE,
        reason="grid peak",
        params={},
        ok=True,
        code="ok",
        message=f"{DETAIL_DEVICE}: curtail accepted",
    ),
    AuditEntry(
        at=NOW - 1800,
        actor="night-shift",
        origin="tui",
        action="asic.wake",
        target=DETAIL_DEVICE,
        reason="",
        params={},
        ok=True,
        code="ok",
        message=f"{DETAIL_DEVICE}: wake accepted",
    ),
    AuditEntry(
        at=NOW - 600,
        actor="ha-automation",
        origin="mqtt",
        action="asic.switch_pool",
        target=DETAIL_DEVICE,
        reason="failover test",
        params={"pool": 2},
        ok=False,
        code="failed",
        message=f"{DETAIL_DEVICE}: switch_pool refused by the firmware: pool 2 is dead",
    ),
)


class FixedSite:
    """A site that never changes: for screenshots, where live noise would make every run differ."""

    def __init__(self, state_dir: Path) -> None:
        self.store = fixed_store()
        self.market = fixed_market()
        self._snapshot = price(self.store.snapshot(now=NOW), self.market)
        self._profit = fixed_profit_history(self.store, self.market)
        self.audit = AuditLog.in_state_dir(state_dir)
        self.actions = ActionPath(self.audit, clock=lambda: NOW)
        self.events = EventHub()

    async def seed_audit(self) -> None:
        for entry in AUDIT_SEED:
            await self.audit.record(entry)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.audit.close()

    async def run(self) -> None:
        await asyncio.Event().wait()

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def reprice(self) -> None:
        """Take the store's snapshot again (after a test recorded a new reading)."""
        self._snapshot = price(self.store.snapshot(now=NOW), self.market)

    def profit_history(
        self, device_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        return self._profit.history(device_id)
