"""The per-connection protocol of a simulated miner's API port.

Like cgminer's API thread: one request per connection, taken from the first data received (no
waiting for EOF or half-close, which pyasic never sends), one reply, then close. The heavy lifting
(answering, caching, faults) belongs to the miner; this class only tracks the connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from simulators.asic.miner import SimulatedMiner


class MinerProtocol(asyncio.Protocol):
    """One accepted API connection."""

    __slots__ = ("answered", "miner", "transport")

    def __init__(self, miner: SimulatedMiner) -> None:
        self.miner = miner
        self.transport: asyncio.Transport | None = None
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        self.miner.connection_made(self)

    def data_received(self, data: bytes) -> None:
        # cgminer reads once; anything after the first segment is ignored.
        if self.answered:
            return
        self.answered = True
        self.miner.serve(self, data)

    def eof_received(self) -> bool | None:
        # Keep our side open after a client half-close so a delayed reply can still go out;
        # a client that half-closes without sending anything just gets closed.
        return True if self.answered else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.miner.connection_lost(self)
