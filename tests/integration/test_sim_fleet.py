"""Fleets: one loopback IP per miner on a shared port, or one IP with a port per miner; the CLI
runner prints one line per miner and stops on request."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import pytest

from simulators.asic import AsicFleet, plan_fleet, run_simulator_cli


def free_port(host: str = "127.0.0.1", count: int = 1) -> int:
    """A port with `count` free consecutive ports after it (best effort). The probe binds with
    SO_REUSEADDR, as the simulator's servers do, so ports in TIME_WAIT after earlier tests
    count as free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((host, 0))
            base = s.getsockname()[1]
        if base + count >= 65535:
            continue
        ok = True
        for p in range(base, base + count):
            with socket.socket() as t:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    t.bind((host, p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    pytest.fail("no free range of consecutive loopback ports")


async def version(host: str, port: int) -> dict:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b'{"command":"summary"}')
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return json.loads(data.rstrip(b"\x00"))


async def test_one_ip_per_miner() -> None:
    port = free_port("127.0.9.1")
    specs = plan_fleet(12, base_ip="127.0.9.1", port=port, seed=2)
    async with AsicFleet(specs) as fleet:
        assert len({m.host for m in fleet.miners}) == 12
        replies = await asyncio.gather(*(version(m.host, port) for m in fleet.miners))
        assert all(
            r["STATUS"][0]["Code"] == 11 if isinstance(r["STATUS"], list) else False
            for r in replies
        )
        assert all(m.requests == 1 for m in fleet.miners)


async def test_port_per_miner() -> None:
    port = free_port("127.0.9.2", count=8)
    specs = plan_fleet(8, base_ip="127.0.9.2", port=port, port_per_miner=True, seed=5)
    fleet = AsicFleet(specs)
    await fleet.start()
    try:
        assert [m.port for m in fleet.miners] == list(range(port, port + 8))
        for m in fleet.miners:
            body = await version("127.0.9.2", m.port)
            assert body["SUMMARY"][0]["Elapsed"] > 0
            assert m.last_commands == ("summary",)
    finally:
        await fleet.stop()


async def test_run_simulator_cli() -> None:
    port = free_port("127.0.9.3", count=3)
    specs = plan_fleet(3, base_ip="127.0.9.3", port=port, port_per_miner=True, faults="refuse@1")
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulator_cli(specs, stop=stop, out=out))
    for _ in range(200):
        if out.getvalue().count("\n") >= 4:
            break
        await asyncio.sleep(0.01)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"127.0.9.3:{port}  {specs[0].persona}  {specs[0].model}  faults=-")
    assert lines[1].endswith("faults=refuse")
    body = await version("127.0.9.3", port)
    assert body
    stop.set()
    await asyncio.wait_for(task, 5)
    with pytest.raises(ConnectionRefusedError):
        await version("127.0.9.3", port)
