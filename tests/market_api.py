"""A local stand-in for mempool.space and CoinGecko: real HTTP over a real socket on
127.0.0.1 (ephemeral port), serving the real APIs' JSON shapes, with scriptable faults.

Shapes follow shared/reference/economics.md §5 (checked against the mempool backend source):
reward stats are sats as strings, `/v1/prices` has a unix-seconds `time`, CoinGecko nests the
price under the coin id with `last_updated_at`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Figures of the 2026-01-12 reference snapshot, as the APIs would serve them.
PRICE_TIME = 1_768_176_000
HEIGHT = 931_000
MEMPOOL_ROUTES: dict[str, Any] = {
    "/api/v1/prices": {
        "time": PRICE_TIME,
        "USD": 91580,
        "EUR": 78500,
        "GBP": 68100,
        "CAD": 126400,
        "CHF": 73100,
        "AUD": 137900,
        "JPY": 14350000,
    },
    "/api/v1/mining/hashrate/3d": {
        "hashrates": [{"timestamp": 1768089600, "avgHashrate": 1.024e21}],
        "difficulty": [
            {"time": 1767830400, "height": 929_376, "difficulty": 146.47e12, "adjustment": 0.988}
        ],
        "currentHashrate": 1.031e21,
        "currentDifficulty": 146.47e12,
    },
    "/api/v1/mining/reward-stats/144": {
        "startBlock": HEIGHT - 143,
        "endBlock": HEIGHT,
        "totalReward": str(144 * 312_500_000 + 247_680_000),
        "totalFee": "247680000",  # 0.0172 BTC per block over 144 blocks
        "totalTx": "612345",
    },
    "/api/blocks/tip/height": HEIGHT,
}
GECKO_ROUTES: dict[str, Any] = {
    "/api/v3/simple/price": {"bitcoin": {"usd": 91132.0, "last_updated_at": PRICE_TIME + 60}},
}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # accept, read the request, never answer


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class MarketApi:
    """Both APIs on one server: mempool under /api/, CoinGecko under /api/v3/."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {**MEMPOOL_ROUTES, **GECKO_ROUTES}
        self.faults: dict[str, Reply] = {}  # path → reply instead of the route's JSON
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def mempool_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def coingecko_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    def count(self, path: str) -> int:
        return Counter(r.path for r in self.requests)[path]

    def fail(self, path: str, reply: Reply) -> None:
        self.faults[path] = reply

    def heal(self, path: str | None = None) -> None:
        if path is None:
            self.faults.clear()
        else:
            self.faults.pop(path, None)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        _method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        url = urllib.parse.urlsplit(target)
        self.requests.append(Request(url.path, dict(urllib.parse.parse_qsl(url.query)), headers))
        reply = self.faults.get(url.path)
        if reply is None:
            if url.path in self.routes:
                reply = Reply(body=json.dumps(self.routes[url.path]).encode())
            else:
                reply = Reply(status=404, body=b"Not Found")
        if reply.hang:
            with contextlib.suppress(Exception):
                await reader.read()  # until the client gives up and closes
            writer.close()
            return
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(reply.status, "X")
        out = [f"HTTP/1.1 {reply.status} {reason}", f"Content-Length: {len(reply.body)}"]
        out += ["Content-Type: application/json", "Connection: close"]
        out += [f"{k}: {v}" for k, v in reply.headers.items()]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + reply.body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


class MarketApiThread:
    """The same server on its own event loop in a thread, for tests that run subprocesses."""

    def __init__(self) -> None:
        self.api = MarketApi()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> MarketApi:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self._loop).result(5)
        return self.api

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
