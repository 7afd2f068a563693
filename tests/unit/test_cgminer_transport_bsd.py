"""The connect phase as BSD and macOS report it: `send()` on a socket whose connect is still
under way fails with ENOTCONN (Linux says EAGAIN). Nothing here runs those kernels, so a
stand-in socket replays their answers to the transport's real step code."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest

from drivers.cgminer.errors import ConnectFailed
from drivers.cgminer.transport import Outcome, _Exchange


class BsdConnectingSocket:
    """send(): ENOTCONN while connecting, then the kernel's pending error (or success)."""

    def __init__(self, connecting_sends: int, pending_error: int) -> None:
        self.connecting_sends = connecting_sends
        self.pending_error = pending_error
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> int:
        if self.connecting_sends > 0 or self.pending_error:
            self.connecting_sends -= 1
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        self.sent.append(data)
        return len(data)

    def close(self) -> None:
        self.closed = True

    def fileno(self) -> int:
        return -1 if self.closed else 99

    def getsockopt(self, level: int, option: int) -> int:
        assert (level, option) == (socket.SOL_SOCKET, socket.SO_ERROR)
        return self.pending_error if self.connecting_sends < 0 else 0


def exchange(sock: BsdConnectingSocket) -> _Exchange:
    waiter: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    return _Exchange(sock, b"{}", waiter, "127.0.9.99", 4028, 5.0, 1e12, 1 << 20)  # type: ignore[arg-type]


async def test_a_connect_in_progress_is_waited_for_then_the_request_is_sent() -> None:
    sock = BsdConnectingSocket(connecting_sends=3, pending_error=0)
    ex = exchange(sock)
    for _ in range(3):
        assert ex.step() is False and not ex.waiter.done() and not ex.sent
    assert ex.step() is False and ex.sent and sock.sent == [b"{}"]


async def test_a_refused_connect_is_a_connect_failure_with_the_kernels_reason() -> None:
    sock = BsdConnectingSocket(connecting_sends=1, pending_error=errno.ECONNREFUSED)
    ex = exchange(sock)
    assert ex.step() is False  # still connecting: no pending error yet
    assert ex.step() is True  # now the kernel reports the refusal
    with pytest.raises(ConnectFailed, match=os.strerror(errno.ECONNREFUSED)):
        ex.waiter.result()
    assert sock.closed
