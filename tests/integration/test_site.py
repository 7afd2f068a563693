"""The running site against real simulated miners over real sockets: isolation and freshness."""

from __future__ import annotations

import asyncio
from pathlib import Path

from console.config import load_config
from console.model import ErrorKind, Freshness, Observed
from console.site import Site
from simulators.asic import AsicFleet, Fault, MinerSpec

MODELS = {
    "antminer_stock": "Antminer S19j Pro",
    "whatsminer": "Whatsminer M50",
    "luxos": "Antminer S21",
    "braiins": "Antminer S19j Pro",
    "avalon": "AvalonMiner 1246",
}


def write_site(tmp_path: Path, endpoints: list[tuple[str, int]], interval_s: float) -> Path:
    lines = [
        '[site]\nname = "test"\n',
        f"[poller]\nasic_poll_interval_s = {interval_s}\nasic_timeout_s = 0.3\n"
        "backoff_max_s = 1.0\n",
        "[host]\nenabled = false\n",
    ]
    for i, (host, port) in enumerate(endpoints):
        lines.append(f'[[asics]]\nname = "m{i:02d}"\nhost = "{host}"\nport = {port}\n')
    path = tmp_path / "site.toml"
    path.write_text("\n".join(lines))
    return path


async def test_ten_percent_hung_miners_do_not_delay_the_rest(tmp_path: Path) -> None:
    personas = list(MODELS)
    specs = [
        MinerSpec(
            persona=personas[i % len(personas)],
            model=MODELS[personas[i % len(personas)]],
            port=0,
            seed=i,
            faults=(Fault("hang"),) if i % 10 == 3 else (),
        )
        for i in range(30)
    ]
    async with AsicFleet(specs) as fleet:
        endpoints = [(m.host, m.port) for m in fleet.miners]
        config = load_config(write_site(tmp_path, endpoints, interval_s=0.5))
        async with Site(config) as site:
            runner = asyncio.create_task(site.run())
            await asyncio.sleep(4.0)
            snapshot = site.snapshot()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    hung = {f"m{i:02d}" for i in range(30) if i % 10 == 3}
    by_name = {d.name: d for d in snapshot.devices}
    for name, d in by_name.items():
        if name in hung:
            assert d.reading is None
            assert d.error_kind is ErrorKind.TIMEOUT
            assert d.freshness is Freshness.LOST
        else:
            # 4 s at a 0.5 s interval is 8 polls; the hung miners, each holding a slot until
            # its deadline on every attempt, must not starve anyone of more than a few.
            assert d.polls_ok >= 5, (name, d.polls_ok, d.last_error)
            assert d.freshness is Freshness.FRESH
            assert d.observed is Observed.HASHING
            assert d.last_error is None


async def test_a_miner_that_stops_answering_goes_stale_then_comes_back(tmp_path: Path) -> None:
    spec = MinerSpec(persona="antminer_stock", model="Antminer S21", port=0)
    async with AsicFleet([spec]) as fleet:
        miner = fleet.miners[0]
        config = load_config(write_site(tmp_path, [(miner.host, miner.port)], interval_s=0.2))
        async with Site(config) as site:
            await site.poll_all_once()
            assert site.snapshot().devices[0].freshness is Freshness.FRESH
            miner.set_faults(Fault("refuse"))
            await miner.settle()
            runner = asyncio.create_task(site.run())
            # stale after 2.5 × 0.2 s without a good reading
            for _ in range(50):
                await asyncio.sleep(0.1)
                d = site.snapshot().devices[0]
                if d.freshness is Freshness.STALE:
                    break
            assert d.freshness is Freshness.STALE
            assert d.error_kind is ErrorKind.CONNECT
            assert d.reading is not None  # the last known values stay visible
            miner.clear_faults()
            await miner.settle()
            for _ in range(50):
                await asyncio.sleep(0.1)
                d = site.snapshot().devices[0]
                if d.freshness is Freshness.FRESH:
                    break
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    assert d.freshness is Freshness.FRESH
    assert d.last_error is None
