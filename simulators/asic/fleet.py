"""A fleet of simulated miners in one process, and the `hashpivot simulate` runner.

Thousands of miners share one event loop: each is one listening socket and nothing else while
idle (physics is lazy), so the limit is file descriptors, which `AsicFleet.start` raises to the
hard limit for large fleets.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable
from typing import TextIO

from simulators.asic.miner import SimulatedMiner
from simulators.asic.spec import MinerSpec

LARGE_FLEET = 200
START_BATCH = 256


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new (soft, hard)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class AsicFleet:
    """Start and stop many `SimulatedMiner`s together (also an async context manager)."""

    def __init__(self, specs: Iterable[MinerSpec]) -> None:
        self.miners: list[SimulatedMiner] = [SimulatedMiner(s) for s in specs]

    async def start(self) -> None:
        if len(self.miners) >= LARGE_FLEET:
            raise_nofile_limit()
        started: list[SimulatedMiner] = []
        try:
            for i in range(0, len(self.miners), START_BATCH):
                batch = self.miners[i : i + START_BATCH]
                await asyncio.gather(*(m.start() for m in batch))
                started.extend(batch)
        except BaseException:
            await asyncio.gather(*(m.stop() for m in self.miners), return_exceptions=True)
            raise

    async def stop(self) -> None:
        await asyncio.gather(*(m.stop() for m in self.miners), return_exceptions=True)

    async def __aenter__(self) -> AsicFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __len__(self) -> int:
        return len(self.miners)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.miners)


def describe(miner: SimulatedMiner) -> str:
    """One line per miner: ``127.0.1.1:4028  antminer_stock  Antminer S19j Pro  faults=-``."""
    return (
        f"{miner.host}:{miner.port}  {miner.spec.persona}  {miner.spec.model}  "
        f"faults={miner.faults.describe()}"
    )


async def run_simulator_cli(
    specs: Iterable[MinerSpec],
    *,
    stop: asyncio.Event | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Start the fleet, print one line per miner, run until cancelled or `stop` is set."""
    fleet = AsicFleet(specs)
    await fleet.start()
    try:
        for m in fleet.miners:
            out.write(describe(m) + "\n")
        out.write(f"{len(fleet)} simulated miner(s) running; Ctrl-C to stop\n")
        out.flush()
        if stop is None:
            stop = asyncio.Event()
        await stop.wait()
    finally:
        await fleet.stop()
