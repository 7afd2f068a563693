"""pyasic, the widely used third-party client, recognises the simulated miners and reads back the
hashrate the simulator served.

pyasic hard-codes port 4028 for detection, so each miner gets its own loopback IP (127.0.7.x; all
of 127/8 is local on Linux), skipping addresses already in use. Nothing listens on 80/443/50051
there, so pyasic's web and gRPC probes fail fast and the RPC path decides. Noise is frozen so the
value pyasic reads equals `truth` at any moment.
"""

from __future__ import annotations

import errno
import warnings
from collections.abc import AsyncIterator

import pytest

from simulators.asic import MinerSpec, SimulatedMiner

pyasic = pytest.importorskip("pyasic")

CASES = [
    # persona, model, expected pyasic class, get_data options pyasic can read over RPC alone
    ("antminer_stock", "Antminer S19j Pro", "BMMinerS19jPro", None),
    ("antminer_stock", "Antminer S21", "BMMinerS21", None),
    ("whatsminer", "Whatsminer M50", "BTMinerM50VH50", None),
    ("luxos", "Antminer S19j Pro", "LUXMinerS19jPro", None),
    # BOSer keeps most data behind gRPC (port 50051); pyasic reads hashrate and uptime over RPC.
    ("braiins", "Antminer S19j Pro", "BOSMinerS19jPro", ["hashrate", "uptime"]),
    ("avalon", "AvalonMiner 1246", "CGMinerAvalon1246", None),
]


async def start_on_free_ip(persona: str, model: str, seed: int, start: int) -> SimulatedMiner:
    for last in range(start, 255):
        miner = SimulatedMiner(
            MinerSpec(persona, model, host=f"127.0.7.{last}", port=4028, seed=seed, noise=False)
        )
        try:
            await miner.start()
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                continue
            raise
        return miner
    pytest.fail("no free 127.0.7.x:4028 address for the pyasic oracle test")


@pytest.fixture
async def sims() -> AsyncIterator[list[SimulatedMiner]]:
    miners: list[SimulatedMiner] = []
    next_ip = 20
    for i, (persona, model, _, _) in enumerate(CASES):
        m = await start_on_free_ip(persona, model, seed=100 + i, start=next_ip)
        next_ip = int(m.host.rsplit(".", 1)[1]) + 1
        miners.append(m)
    yield miners
    for m in miners:
        await m.stop()


@pytest.mark.filterwarnings("ignore")
async def test_pyasic_identifies_and_reads_hashrate(sims: list[SimulatedMiner]) -> None:
    for sim, (persona, _model, cls, include) in zip(sims, CASES, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            miner = await pyasic.get_miner(sim.host)
        assert miner is not None, persona
        assert type(miner).__name__ == cls, persona
        data = await miner.get_data(include=include)
        assert data.hashrate is not None, persona
        read_hs = float(data.hashrate.into(data.hashrate.unit.H))
        served_hs = sim.truth.hashrate_1m_hs  # noise frozen: every window equals the steady rate
        assert read_hs == pytest.approx(served_hs, rel=0.01), persona
        assert data.uptime == pytest.approx(sim.truth.uptime_s, abs=2), persona
        if persona in ("whatsminer", "luxos", "avalon"):
            boards = [b for b in data.hashboards if b.hashrate is not None]
            assert len(boards) == 3, persona
            assert [b.chips for b in boards] == [bd.chips_found for bd in sim.truth.boards]
        if persona in ("whatsminer", "luxos", "avalon"):
            assert data.wattage == pytest.approx(sim.truth.power_w, abs=2), persona
        if persona.startswith("antminer"):
            assert data.expected_hashrate is not None
            assert float(
                data.expected_hashrate.into(data.expected_hashrate.unit.H)
            ) == pytest.approx(sim.truth.nominal_hashrate_hs, rel=1e-6)
            assert len(data.pools) == 3


@pytest.mark.filterwarnings("ignore")
async def test_plain_cgminer_is_not_recognised_by_pyasic() -> None:
    sim = await start_on_free_ip("cgminer", "Antminer S19j Pro", seed=1, start=120)
    try:
        assert await pyasic.get_miner(sim.host) is None
    finally:
        await sim.stop()
