"""The active fault set of one miner, and how faults reach the wire.

`FaultSet` folds a tuple of `Fault` into quick lookups: which quirks are forced, which delivery
behaviours apply, which physical failures exist. Several catalogue quirks are the same thing as a
named fault (Q10 truncate, Q17 invalid_utf8, Q18 empty, Q19 socket_text, Q20 reset, Q21 no_close,
Q22 joins_unsupported, Q29 wrong_units); either spelling switches both on.

`deliver` writes one reply to a connection the way the faults say: after a delay, a few bytes at a
time, cut by a reset (SO_LINGER 0 then close = RST), or without ever closing.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Iterable

from simulators.asic.spec import Fault

QUIRK_ALIASES: dict[str, str] = {
    "Q10": "truncate",
    "Q17": "invalid_utf8",
    "Q18": "empty",
    "Q19": "socket_text",
    "Q20": "reset",
    "Q21": "no_close",
    "Q22": "joins_unsupported",
    "Q29": "wrong_units",
}
DRIP_CHUNK = 16
"""Bytes per chunk for `slow_drip`."""
RESET_AFTER_S = 0.05
"""Pause between the partial write and the RST, so the client sees the bytes before the reset."""


class FaultSet:
    """Quick lookups over a miner's current faults."""

    __slots__ = ("args", "dead_boards", "faults", "kinds", "missing_chips", "quirks")

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self.faults = tuple(faults)
        self.kinds: set[str] = set()
        self.args: dict[str, float | str | None] = {}
        self.quirks: set[str] = set()
        dead: set[int] = set()
        missing = 0
        for f in self.faults:
            if f.kind == "quirk":
                self.quirks.add(str(f.arg))
                continue
            self.kinds.add(f.kind)
            self.args[f.kind] = f.arg
            if f.kind == "board_fail" and f.arg is not None:
                dead.add(int(float(f.arg)))
            elif f.kind == "chip_fail" and f.arg is not None:
                missing += int(float(f.arg))
        for q, kind in QUIRK_ALIASES.items():
            if q in self.quirks:
                self.kinds.add(kind)
            if kind in self.kinds:
                self.quirks.add(q)
        self.dead_boards = frozenset(dead)
        self.missing_chips = missing

    def has(self, kind: str) -> bool:
        return kind in self.kinds

    def arg(self, kind: str, default: float = 0.0) -> float:
        v = self.args.get(kind)
        return float(v) if isinstance(v, (int, float)) else default

    def __bool__(self) -> bool:
        return bool(self.faults)

    def describe(self) -> str:
        return ",".join(str(f) for f in self.faults) or "-"


def send_reset(transport: asyncio.WriteTransport) -> None:
    """Close with RST instead of FIN (SO_LINGER on, timeout 0)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def deliver(
    transport: asyncio.WriteTransport,
    payload: bytes,
    faults: FaultSet,
    after: Callable[[], None] | None,
) -> None:
    """Write `payload` to `transport` as the faults dictate, then run `after` (if any)."""
    loop = asyncio.get_running_loop()
    delay = faults.arg("delay") if faults.has("delay") else 0.0
    if delay > 0:
        loop.call_later(delay, _send, transport, payload, faults, after)
    else:
        _send(transport, payload, faults, after)


def _send(
    transport: asyncio.WriteTransport,
    payload: bytes,
    faults: FaultSet,
    after: Callable[[], None] | None,
) -> None:
    if transport.is_closing():
        return
    loop = asyncio.get_running_loop()
    if faults.has("slow_drip"):
        _drip(transport, payload, faults.arg("slow_drip", 0.5), not faults.has("no_close"))
    elif faults.has("reset"):
        transport.write(payload[: max(1, len(payload) // 2)])
        loop.call_later(RESET_AFTER_S, send_reset, transport)
    else:
        transport.write(payload)
        if not faults.has("no_close"):
            transport.close()
    if after is not None:
        after()


def _drip(transport: asyncio.WriteTransport, rest: bytes, interval: float, close: bool) -> None:
    if transport.is_closing():
        return
    transport.write(rest[:DRIP_CHUNK])
    rest = rest[DRIP_CHUNK:]
    if rest:
        asyncio.get_running_loop().call_later(interval, _drip, transport, rest, interval, close)
    elif close:
        transport.close()
