"""GPU miner API readers: both shapes normalised to H/s, typed errors for every way a reply can
go wrong, and the small HTTP client against real loopback servers."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from drivers.gpu_miner import (
    MinerBadReply,
    MinerConnectFailed,
    MinerHttpError,
    MinerReplyTooLarge,
    MinerTimeout,
    http_get,
    parse_lolminer,
    parse_trex,
    read_lolminer,
    read_miner,
    read_trex,
)

TREX = {
    "accepted_count": 85,
    "active_pool": {
        "difficulty": "4.00 G",
        "ping": 49,
        "retries": 0,
        "url": "stratum+tcp://rvn.2miners.com:6060",
        "user": "R0",
    },
    "algorithm": "kawpow",
    "gpus": [
        {
            "device_id": 0,
            "gpu_id": 0,
            "hashrate": 27_321_106,
            "name": "RTX 3090",
            "pci_bus": 1,
            "uuid": "c342a09b60a8eeef9c47110bbfa5b4f4",
            "shares": {"accepted_count": 50, "rejected_count": 1},
        },
        {
            "device_id": 1,
            "gpu_id": 1,
            "hashrate": 55_000_000,
            "name": "RTX 4090",
            "pci_bus": 2,
            "shares": {"accepted_count": 35, "rejected_count": 0},
        },
    ],
    "hashrate": 82_321_106,
    "paused": False,
    "rejected_count": 1,
    "uptime": 5036,
    "version": "0.26.8",
}

LOLMINER = {
    "Software": "lolMiner 1.88",
    "Session": {"Startup": 1700000000, "Uptime": 600, "Last_Update": 1700000600},
    "Num_Workers": 2,
    "Workers": [
        {"Index": 0, "Name": "NVIDIA GeForce RTX 3090", "PCIE_Address": "1:0"},
        {"Index": 1, "Name": "NVIDIA GeForce RTX 4090", "PCIE_Address": "0000:02:00.0"},
    ],
    "Num_Algorithms": 1,
    "Algorithms": [
        {
            "Algorithm": "Etchash",
            "Pool": "etc.2miners.com:1010",
            "Performance_Unit": "Mh/s",
            "Performance_Factor": 1000000,
            "Total_Performance": 251.5,
            "Total_Accepted": 40,
            "Total_Rejected": 2,
            "Worker_Performance": [121.25, 130.25],
            "Worker_Accepted": [20, 20],
            "Worker_Rejected": [1, 1],
        },
    ],
}

LOLMINER_OLD = {
    "Software": "lolMiner 0.6",
    "Mining": {"Coin": "AION", "Algorithm": "Equihash 210/9"},
    "Stratum": {"Current_Pool": "na.aionmine.org:3333"},
    "Session": {
        "Uptime": 140,
        "Performance_Summary": 65.1,
        "Performance_Unit": "h/s",
        "Accepted": 4,
        "Submitted": 5,
    },
    "GPUs": [
        {
            "Index": 0,
            "Name": "GeForce GTX 1050 Ti",
            "Performance": 65.1,
            "Session_Accepted": 4,
            "PCIE_Address": "1:0",
        }
    ],
}


def test_trex_shape() -> None:
    r = parse_trex(TREX, taken_at=1.0)
    assert (r.hashrate_hs, r.accepted, r.rejected, r.uptime_s) == (82_321_106.0, 85, 1, 5036.0)
    assert (r.algorithm, r.version, r.paused) == ("kawpow", "0.26.8", False)
    assert r.pool_url == "stratum+tcp://rvn.2miners.com:6060"
    a, b = r.gpus
    assert a.uuid == "GPU-c342a09b-60a8-eeef-9c47-110bbfa5b4f4"
    assert (a.index, a.hashrate_hs, a.pci_bus, a.accepted, a.rejected) == (
        0,
        27_321_106.0,
        1,
        50,
        1,
    )
    assert b.uuid is None  # not reported: None, never made up


def test_lolminer_new_shape_scales_the_unit() -> None:
    r = parse_lolminer(LOLMINER, taken_at=1.0)
    assert r.hashrate_hs == pytest.approx(251.5e6)
    assert [g.hashrate_hs for g in r.gpus] == [pytest.approx(121.25e6), pytest.approx(130.25e6)]
    assert [g.pci_bus for g in r.gpus] == [1, 2]
    assert (r.accepted, r.rejected, r.uptime_s) == (40, 2, 600.0)
    assert (r.algorithm, r.pool_url, r.version) == (
        "Etchash",
        "etc.2miners.com:1010",
        "lolMiner 1.88",
    )
    assert r.paused is None


def test_lolminer_old_shape() -> None:
    r = parse_lolminer(LOLMINER_OLD, taken_at=1.0)
    assert r.hashrate_hs == pytest.approx(65.1)
    assert (r.accepted, r.rejected, r.algorithm) == (4, 1, "Equihash 210/9")
    assert r.pool_url == "na.aionmine.org:3333"


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([], "expected a JSON object"),
        ({"uptime": 3}, "no 'hashrate'"),
        ({"hashrate": 1, "gpus": {}}, "'gpus' is not a list"),
        ({"hashrate": 1, "gpus": [3]}, "gpus[0]"),
    ],
)
def test_trex_wrong_shapes(doc: Any, words: str) -> None:
    with pytest.raises(MinerBadReply, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_trex(doc, taken_at=0.0)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"Algorithms": []}, "empty"),
        (
            {"Algorithms": [{"Performance_Unit": "g/s", "Total_Performance": 1.0}]},
            "not a hash rate",
        ),
        ({"Algorithms": [{"Total_Performance": 1.0}]}, "no Performance_Unit"),
        ({"Algorithms": None}, "neither"),
    ],
)
def test_lolminer_wrong_shapes(change: dict[str, Any], words: str) -> None:
    with pytest.raises(MinerBadReply, match=words):
        parse_lolminer({**LOLMINER, **change}, taken_at=0.0)


def test_missing_numbers_are_none_not_zero() -> None:
    r = parse_trex({"hashrate": None, "gpus": [{"gpu_id": 0}]}, taken_at=0.0)
    assert r.hashrate_hs is None and r.accepted is None and r.gpus[0].hashrate_hs is None


# ---------------------------------------------------------------------------------------------
# The HTTP client against real sockets

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def wrapped(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                head = await r.readuntil(b"\r\n\r\n")
                await handler(head, r, w)
            finally:
                w.close()

        server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for s in servers:
        s.close()


def reply(body: bytes, head: str = "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n") -> Handler:
    async def handler(_h: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(head.format(n=len(body)).encode() + body)
        await w.drain()

    return handler


async def test_content_length_chunked_and_close_delimited(serve: Any) -> None:
    body = json.dumps(TREX).encode()
    port = await serve(reply(body))
    assert (await read_trex("127.0.0.1", port)).hashrate_hs == 82_321_106.0

    async def chunked(_h: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 100):
            part = body[i : i + 100]
            w.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        w.write(b"0\r\n\r\n")
        await w.drain()

    port = await serve(chunked)
    assert (await read_miner("trex", "127.0.0.1", port)).accepted == 85
    port = await serve(reply(body, head="HTTP/1.0 200 OK\r\n\r\n"))  # ends when the server closes
    assert (await read_trex("127.0.0.1", port)).version == "0.26.8"


async def test_lolminer_falls_back_to_the_root_path(serve: Any) -> None:
    paths: list[bytes] = []
    not_found = reply(b"{}", head="HTTP/1.1 404 Not Found\r\nContent-Length: {n}\r\n\r\n")
    summary = reply(json.dumps(LOLMINER).encode())

    async def root_only(head: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        path = head.split(b" ")[1]
        paths.append(path)
        await (summary if path == b"/" else not_found)(head, r, w)

    port = await serve(root_only)
    assert (await read_lolminer("127.0.0.1", port)).hashrate_hs == pytest.approx(251.5e6)
    assert paths == [b"/summary", b"/"]


async def test_http_errors_are_typed(serve: Any) -> None:
    port = await serve(reply(b"oops", head="HTTP/1.1 500 Internal\r\nContent-Length: {n}\r\n\r\n"))
    with pytest.raises(MinerHttpError) as err:
        await read_trex("127.0.0.1", port)
    assert err.value.status == 500
    port = await serve(reply(b"", head="SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    with pytest.raises(MinerHttpError, match="not HTTP"):
        await read_trex("127.0.0.1", port)
    port = await serve(reply(b'{"hashrate": 1, '))
    with pytest.raises(MinerBadReply, match="not JSON"):
        await read_trex("127.0.0.1", port)

    async def cut(_h: bytes, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"hash')
        await w.drain()

    port = await serve(cut)
    with pytest.raises(MinerBadReply, match="cut short"):
        await read_trex("127.0.0.1", port)


async def test_size_cap_and_deadline(serve: Any) -> None:
    port = await serve(reply(b"x" * 5000))
    with pytest.raises(MinerReplyTooLarge):
        await http_get("127.0.0.1", port, "/summary", max_bytes=1000)
    port = await serve(reply(b"x" * 5000, head="HTTP/1.0 200 OK\r\n\r\n"))
    with pytest.raises(MinerReplyTooLarge):
        await http_get("127.0.0.1", port, "/summary", max_bytes=1000)

    async def silent(_h: bytes, r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await r.read()  # never answers

    port = await serve(silent)
    with pytest.raises(MinerTimeout):
        await read_trex("127.0.0.1", port, timeout_s=0.2)


async def test_nothing_listening_is_connect_failed() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # a port nobody listens on
    with pytest.raises(MinerConnectFailed):
        await read_trex("127.0.0.1", port)
    with pytest.raises(ValueError, match="unknown miner dialect"):
        await read_miner("gminer", "127.0.0.1", port)  # type: ignore[arg-type]
