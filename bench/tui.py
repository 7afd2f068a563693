"""TUI benchmark: per-tick UI update cost of the fleet screen, and key press → updated screen.

The real console app (`HashpivotApp`, headless through `run_test`, its 1 s timer off) shows
the real `FleetScreen` / `DeviceTable`; the benchmark calls the app's own `tick()`. Snapshots
come from a real `Store` of N synthetic miners, priced as the site prices them (the real
`FleetInputsBuilder` and `fleet_earnings` under a static market): each tick, a share of the
miners (`--changed`, default 3.3 %: a 30 s poll interval seen by a 1 s tick) get a new
reading with new hashrate, temperature and power, so their cells (earnings included) change.
Building and pricing the snapshot is the core's cost and is timed apart from the UI.

Per tick it reports:
- `tick()`: the app's tick: snapshot, fault events, `FleetScreen.apply` (the diff and the
  `update_cell` calls), Python only;
- `tick + repaint`: that plus the repaint that follows (`pilot.pause()` waits until the app is
  idle after the refresh): what the operator waits for;
- `tick + repaint, market moved`: a tick in which the BTC price moved as well, so every
  device's revenue and profit cells change (the live feed does this once a minute).

Key presses (time from the key event to the app idle again, repaint included):
`down` (move the cursor), `p` (problems first off/on), `s` (sort by the next column), `r`
(reverse), `/` + a letter (filter), `escape` (clear the filter), `enter` (open the detail
screen over the full fleet) and `escape` back, `e` (open the what-if panel over the whole
fleet) and `escape` back.

    ./dev bench tui --devices 1000 10000
    ./dev bench tui --devices 10000 --ticks 30 --profile   # cProfile of the ticks
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from textual.pilot import Pilot  # noqa: E402

from console.actions import ActionPath  # noqa: E402
from console.audit import AuditLog  # noqa: E402
from console.config import MarketConfig, PowerConfig  # noqa: E402
from console.economics import fleet_earnings  # noqa: E402
from console.events import EventHub  # noqa: E402
from console.fleet_inputs import FleetInputsBuilder  # noqa: E402
from console.market import Figure, LiveValues, StaticMarket, market_at  # noqa: E402
from console.model import DeviceKind, ErrorKind, Snapshot  # noqa: E402
from console.profit_history import ProfitHistory  # noqa: E402
from console.store import DeviceInfo, Store  # noqa: E402
from console.tui.app import HashpivotApp  # noqa: E402
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState  # noqa: E402

MODELS = (
    ("Antminer S19j Pro", Firmware.ANTMINER_STOCK, 104.0, 3068.0),
    ("Antminer S21", Firmware.LUXOS, 200.0, 3500.0),
    ("Whatsminer M50", Firmware.WHATSMINER, 118.0, 3400.0),
    ("AvalonMiner 1246", Firmware.AVALON, 90.0, 3420.0),
    ("Antminer S19 XP", Firmware.BRAIINS, 140.0, 3010.0),
)


class Fleet:
    """N synthetic miners in a real store; `step()` gives a share of them new readings."""

    def __init__(self, devices: int, changed: float, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.now = 1_790_000_000.0
        self.changed = changed
        self.ids = [f"r{i // 40:03d}-m{i % 40:02d}" for i in range(devices)]
        self.models = {d: MODELS[i % len(MODELS)] for i, d in enumerate(self.ids)}
        # Health is sticky, as on a real site (a board that failed stays failed): 2 % of the
        # miners run degraded; the rest wobble by a few percent from poll to poll.
        degraded = set(self.rng.sample(self.ids, devices // 50))
        self.health = {d: 0.6 if d in degraded else 0.97 for d in self.ids}
        infos = [
            DeviceInfo(
                device_id=d,
                kind=DeviceKind.ASIC,
                name=d,
                host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                port=4028,
                model=self.models[d][0],
                interval_s=30,
                stale_after_s=75,
                lost_after_s=300,
            )
            for i, d in enumerate(self.ids)
        ]
        self.store = Store("bench", infos, history_slots=16, clock=lambda: self.now)
        self.static = StaticMarket.from_config(MarketConfig(), PowerConfig())
        self.btc_price_usd = 91_580.0
        self.builder = FleetInputsBuilder()
        self.profit = ProfitHistory(self.ids, slots=16)
        for d in self.ids:
            self._read(d)
        # A few problems, as on a real site: some lost, some degraded.
        for d in self.rng.sample(self.ids, max(1, devices // 200)):
            self.store.record_failure(d, ErrorKind.TIMEOUT, "no reply within 3 s", self.now)

    def _read(self, device_id: str) -> None:
        model, firmware, ths, watts = self.models[device_id]
        factor = self.health[device_id] * self.rng.uniform(0.98, 1.04)
        temp = self.rng.uniform(55, 80)
        reading = AsicReading(
            firmware=firmware,
            make=model.split()[0],
            model=model,
            hashrate_5s_hs=ths * factor * 1e12,
            hashrate_avg_hs=ths * factor * 1e12,
            nominal_hashrate_hs=ths * 1e12,
            power_w=watts * self.rng.uniform(0.97, 1.03),
            efficiency_j_per_th=watts / (ths * factor),
            state=MinerState.MINING,
            boards=(BoardReading(index=0, temp_chip_c=temp, chips_found=126, chips_expected=126),),
        )
        self.store.record_ok(device_id, reading, at=self.now)

    def step(self, market_moves: bool = False) -> Snapshot:
        self.now += 1.0
        for d in self.rng.sample(self.ids, int(len(self.ids) * self.changed)):
            self._read(d)
        if market_moves:
            self.btc_price_usd *= self.rng.uniform(0.99, 1.01)
        return self.price(self.store.snapshot())

    def price(self, snapshot: Snapshot) -> Snapshot:
        """As `SitePricing.price` does, with a live BTC price and a profit point per reading."""
        price = Figure(value=self.btc_price_usd, source="bench", as_of=self.now)
        market = market_at(self.static, self.now, live=LiveValues(btc_price_usd=price))
        earnings = fleet_earnings(self.builder.build(snapshot), market)
        self.profit.record(earnings.inputs.reading_at, earnings.columns.profit_usd_per_day)
        return msgspec.structs.replace(snapshot, market=market, earnings=earnings)


class BenchSite:
    """Serves the fleet's latest snapshot; a real action path and audit log in a temp dir."""

    def __init__(self, fleet: Fleet, state_dir: Path) -> None:
        self.fleet = fleet
        self.current = fleet.price(fleet.store.snapshot())
        self.store = fleet.store
        self.audit = AuditLog.in_state_dir(state_dir)
        self.actions = ActionPath(self.audit)
        self.events = EventHub()
        self.gpus = None  # an ASIC fleet: no GPU side, no AI queue

    async def __aenter__(self) -> BenchSite:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.audit.close()

    async def run(self) -> None:
        await asyncio.Event().wait()

    def snapshot(self) -> Snapshot:
        return self.current

    def profit_history(
        self, device_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        return self.fleet.profit.history(device_id)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def fmt(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    median, p90 = statistics.median(ms), pct(ms, 0.9)
    return f"median {median:7.1f} ms   p90 {p90:7.1f} ms   max {max(ms):7.1f} ms"


async def timed(pilot: Pilot[None], action: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await action()
    await pilot.pause()
    return time.perf_counter() - start


async def run(devices: int, ticks: int, changed: float, profile: bool) -> None:
    fleet = Fleet(devices, changed)
    site = BenchSite(fleet, Path(tempfile.mkdtemp(prefix="hashpivot-bench-")))
    app = HashpivotApp(site, operator="bench", tick_s=None)
    async with app.run_test(size=(160, 48)) as pilot:
        start = time.perf_counter()
        app.tick()
        await pilot.pause()
        first_paint = time.perf_counter() - start

        build: list[float] = []
        apply: list[float] = []
        tick: list[float] = []
        profiler = cProfile.Profile() if profile else None
        for _ in range(ticks):
            t0 = time.perf_counter()
            site.current = fleet.step()
            t1 = time.perf_counter()
            if profiler:
                profiler.enable()
            app.tick()
            t2 = time.perf_counter()
            await pilot.pause()
            t3 = time.perf_counter()
            if profiler:
                profiler.disable()
            build.append(t1 - t0)
            apply.append(t2 - t1)
            tick.append(t3 - t1)

        # Ticks in which the BTC price moved too: every device's money cells change.
        market: list[float] = []
        for _ in range(5):
            site.current = fleet.step(market_moves=True)
            t0 = time.perf_counter()
            app.tick()
            await pilot.pause()
            market.append(time.perf_counter() - t0)

        # What `pilot.pause()` costs with nothing to do: the floor under every timing below.
        floor: list[float] = []
        for _ in range(10):
            t0 = time.perf_counter()
            await pilot.pause()
            floor.append(time.perf_counter() - t0)

        # A tick in which nothing changed: the floor cost of diffing every row.
        idle: list[float] = []
        for _ in range(5):
            t0 = time.perf_counter()
            app.tick()
            await pilot.pause()
            idle.append(time.perf_counter() - t0)

        print(f"\n{devices:,} devices, {ticks} ticks, {changed:.1%} of devices new each tick")
        print(f"  first fill + paint        {first_paint * 1000:8.1f} ms")
        print(f"  pilot.pause() alone       {fmt(floor)}")
        print(f"  snapshot build + pricing  {fmt(build)}")
        print(f"  tick() (diff + cells)     {fmt(apply)}")
        print(f"  tick + repaint            {fmt(tick)}")
        print(f"  tick, nothing changed     {fmt(idle)}")
        print(f"  tick, market moved        {fmt(market)}")

        keys: list[tuple[str, list[str]]] = [
            ("down (cursor)", ["down"]),
            ("p (problems first off)", ["p"]),
            ("p (problems first on)", ["p"]),
            ("s (sort: next column)", ["s"]),
            ("r (reverse)", ["r"]),
            ("/ then a letter (filter)", ["slash", "x"]),
            ("escape (clear filter)", ["escape"]),
            ("enter (open detail)", ["enter"]),
            ("escape (back to fleet)", ["escape"]),
            ("e (what-if panel)", ["e"]),
            ("escape (back to fleet)", ["escape"]),
        ]
        print("  key press → screen updated")
        for label, presses in keys:
            # Only the last press of a sequence is timed (the `/` only opens the filter box).
            for key in presses[:-1]:
                await pilot.press(key)
            await pilot.pause()
            elapsed = await timed(pilot, lambda k=presses[-1]: pilot.press(k))  # type: ignore[misc]
            print(f"    {label:<26} {elapsed * 1000:8.1f} ms")
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--changed", type=float, default=1 / 30, help="share of devices per tick")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for devices in args.devices:
        asyncio.run(run(devices, args.ticks, args.changed, args.profile))


if __name__ == "__main__":
    main()
