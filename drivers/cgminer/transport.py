"""The socket layer of the CGMiner client: one request per TCP connection, driven by a tick.

A request opens a non-blocking socket, connects, writes the request bytes and reads until the
first NUL byte or EOF (protocol reference §1; see `client.py` for the framing rules). What is
unusual is how it waits: the socket is never registered with the event loop. Instead one timer
per event loop, the `_Ticker`, wakes on a 10 ms grid while requests are in flight, asks the
kernel which of their sockets are ready (one `epoll` of its own, polled without blocking; plain
`poll` where there is no epoll), and steps those: write the request once the connect is done,
read what arrived, complete the request's future when the reply is whole. Once the earliest
deadline has passed, it fails every request past its own.

Why: a poll that waits for readiness events through the event loop pays, on top of its own
work, for one event-loop wake-up per event (connect done, data, EOF) and the transport and
protocol objects around it. At 10,000 miners on 30 s the polls are spread out, so nearly every
one of those wake-ups serves a single socket. The tick serves every reply that arrived during
the last 10 ms in one wake-up, and asking the kernel which sockets are ready costs one
registration per request and one call per tick, where trying each waiting socket in turn costs
a failed `recv` (a system call and an exception) per socket and try: two per poll on the
simulated fleet, many more behind a real miner that takes hundreds of milliseconds to answer
`stats` (bench/poll.py `--fleet-check` measures the whole path).

The price is latency: a reply is noticed up to one tick after it arrives, and a deadline fires
on the first tick at or after it (at most 10 ms late). While no more than `FEW_IN_FLIGHT`
requests are in flight there is no crowd to share a wake-up with, so the grid is 1 ms instead:
a lone request (an action, a scan identifying the first miner it found, a small site) is not
held up by 10 ms a step, and its cost does not matter at that rate.

Results and errors are the same as a readiness-driven client's: `Outcome` (the body, an
interruption after part of it), `ConnectFailed` (refused,
unreachable, reset before any byte), `RequestTimeout` (phase `connect` or `read`, bytes received
so far), `ReplyTooLarge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import select
import socket
from typing import Any, NamedTuple, Protocol

import msgspec

from drivers.cgminer.errors import ConnectFailed, ReplyTooLarge, RequestTimeout

TICK_S = 0.01
# With only a few requests in flight there is little to share a wake-up with, and the wait is
# what a lone request (an action, a scan's identification, a small site) would notice.
FINE_TICK_S = 0.001
FEW_IN_FLIGHT = 8
# Readiness masks; the values are the same for poll() and epoll().
_READABLE = select.POLLIN
_WRITABLE = select.POLLOUT
_RECV_BYTES = 65536
# Non-blocking from birth where the OS allows it (Linux): one syscall less than setblocking().
_SOCK_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_SOCK_TYPE = socket.SOCK_STREAM | _SOCK_NONBLOCK


class _JsonObject(msgspec.Struct):
    """Any JSON object, every field skipped: decoding into it checks that a reply is whole JSON."""


# Checks without building anything, so that every reply is decoded in one place: by the
# request that reads it, through the tolerant decoder (bench/poll.py `--step-times`: the check
# costs ~13 us; the poll's decoding, check included, cost the same as when the tick decoded).
_check_json_object = msgspec.json.Decoder(_JsonObject).decode


class Outcome(NamedTuple):
    """How one exchange ended (when it did not raise)."""

    body: bytes  # the reply up to the NUL (or EOF), without the NUL
    interrupted: BaseException | None  # the connection died after `body` arrived


class _Exchange:
    """One request on its own socket, stepped by the ticker until its future is done."""

    __slots__ = (
        "_chunks",
        "_host",
        "_limit",
        "_payload",
        "_port",
        "_sock",
        "_timeout_s",
        "deadline",
        "fd",
        "received",
        "sent",
        "waiter",
    )

    def __init__(
        self,
        sock: socket.socket,
        payload: bytes,
        waiter: asyncio.Future[Outcome],
        host: str,
        port: int,
        timeout_s: float,
        deadline: float,
        limit: int,
    ) -> None:
        self._sock = sock
        self.fd = sock.fileno()  # kept: a closed socket says -1
        self._payload = payload
        self.waiter = waiter
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        self.deadline = deadline
        self._limit = limit
        self._chunks: list[bytes] = []
        self.received = 0
        self.sent = False

    # --- steps ---------------------------------------------------------------------------

    def step(self) -> bool:
        """Make the progress the socket allows; True when the exchange is finished (its future
        is done). Called once the socket is ready: writable to send, readable to read."""
        if not self.sent:
            try:
                sent = self._sock.send(self._payload)
            except BlockingIOError:
                return False  # still connecting (Linux)
            except OSError as exc:
                if exc.errno == errno.ENOTCONN:
                    # BSD and macOS say "not connected" while the connect is in progress; the
                    # socket's pending error tells a connect still under way from one that
                    # failed.
                    pending = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if pending == 0:
                        return False
                    exc = OSError(pending, os.strerror(pending))
                self._finish_error(ConnectFailed(self._host, self._port, _reason(exc)))
                return True
            if sent < len(self._payload):  # connected, but the socket buffer took only part
                self._payload = self._payload[sent:]
                return False
            self.sent = True
            return False  # the miner needs a moment to answer: read once it is readable
        while True:
            try:
                data = self._sock.recv(_RECV_BYTES)
            except BlockingIOError:
                return False  # reported ready, yet nothing (rare): wait for the next report
            except OSError as exc:
                self._lost(exc)
                return True
            if not data:  # EOF: the reply is what arrived
                self._finish(b"".join(self._chunks), None)
                return True
            if self._data(data):
                return True
            if len(data) < _RECV_BYTES:
                # All there was: what comes next is reported on a later tick. Reading on until
                # the socket says "nothing" would cost a failed recv on every readable socket.
                return False

    def _data(self, data: bytes) -> bool:
        """Take one chunk; True when that finished the exchange."""
        end = data.find(0)
        if end >= 0:
            data = data[:end]
        self.received += len(data)
        if self.received > self._limit:
            self._finish_error(ReplyTooLarge(self._host, self._port, self._limit))
            return True
        chunks = self._chunks
        chunks.append(data)
        if end >= 0:  # the NUL ends the frame: do not wait for the server to close (Q21)
            self._finish(data if len(chunks) == 1 else b"".join(chunks), None)
            return True
        if data.rstrip()[-1:] == b"}":
            return self._complete_without_nul()
        return False

    def _complete_without_nul(self) -> bool:
        """Finish early when a NUL-less reply (Whatsminer, Avalon, Q2) is already whole JSON.

        Without this, a NUL-less server that also never closes (Q21) could only time out.
        Broken JSON simply waits for EOF and goes through the repairing decoder.
        """
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            _check_json_object(body)
        except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError: not an object
            return False
        self._finish(body, None)
        return True

    def _lost(self, exc: OSError) -> None:
        """The connection died (reset) while reading."""
        if self.received == 0:
            reason = f"reset before any reply byte ({exc})"
            self._finish_error(ConnectFailed(self._host, self._port, reason))
        else:
            # Hand over what arrived; the caller accepts it only if it decodes completely.
            self._finish(b"".join(self._chunks), exc)

    def expire(self) -> None:
        """The deadline passed."""
        self._finish_error(
            RequestTimeout(
                self._host,
                self._port,
                phase="read" if self.sent else "connect",
                timeout_s=self._timeout_s,
                bytes_received=self.received,
            )
        )

    # --- endings -------------------------------------------------------------------------

    def _finish(self, body: bytes, interrupted: BaseException | None) -> None:
        self._sock.close()
        if not self.waiter.done():
            self.waiter.set_result(Outcome(body, interrupted))

    def _finish_error(self, error: Exception) -> None:
        self._sock.close()
        if not self.waiter.done():
            self.waiter.set_exception(error)

    def abandon(self) -> None:
        """The caller went away (cancelled): close the socket (the ticker has dropped it)."""
        self._sock.close()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class _Readiness(Protocol):
    """What the ticker uses of `select.epoll` and `select.poll` (the same calls)."""

    def register(self, fd: int, eventmask: int = ..., /) -> None: ...

    def modify(self, fd: int, eventmask: int, /) -> None: ...

    def unregister(self, fd: int, /) -> None: ...

    def poll(self, timeout: float | None = ..., /) -> list[tuple[int, int]]: ...


def _new_readiness() -> _Readiness:
    # epoll: closing a socket takes it out of the set, and a poll costs what is ready, not what
    # is registered. poll() (BSD, macOS) keeps a closed fd until told (see `_Ticker._tick`).
    epoll = getattr(select, "epoll", None)
    readiness: _Readiness = epoll() if epoll is not None else select.poll()
    return readiness


class _Ticker:
    """Steps the exchanges of one event loop on a shared `TICK_S` grid (see the module doc)."""

    __slots__ = ("_by_fd", "_check_deadlines_at", "_readiness", "_timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._readiness = _new_readiness()
        self._by_fd: dict[int, _Exchange] = {}  # the exchanges in flight, by socket
        # No deadline passes before this: the earliest of them, or earlier (an exchange that
        # set it may have finished), never later.
        self._check_deadlines_at = math.inf
        self._timer: asyncio.TimerHandle | None = None

    def add(self, exchange: _Exchange, now: float) -> None:
        fd = exchange.fd
        self._readiness.register(fd, _READABLE if exchange.sent else _WRITABLE)
        self._by_fd[fd] = exchange
        if exchange.deadline < self._check_deadlines_at:
            self._check_deadlines_at = exchange.deadline
        if self._timer is None:
            self._arm(now)

    def drop(self, exchange: _Exchange) -> None:
        """Forget an exchange its caller gave up on (its socket is closed next)."""
        if self._by_fd.get(exchange.fd) is exchange:
            del self._by_fd[exchange.fd]

    def _arm(self, now: float) -> None:
        tick_s = FINE_TICK_S if len(self._by_fd) <= FEW_IN_FLIGHT else TICK_S
        self._timer = self.loop.call_at(_grid_after(now, tick_s), self._tick)

    def _tick(self) -> None:
        self._timer = None
        by_fd = self._by_fd
        for fd, _events in self._readiness.poll(0):
            exchange = by_fd.get(fd)
            if exchange is None:
                # poll() only: a socket closed while registered (its caller went away).
                with contextlib.suppress(KeyError, OSError):
                    self._readiness.unregister(fd)
                continue
            if exchange.waiter.done():  # finished elsewhere (cancelled)
                del by_fd[fd]
                continue
            was_sent = exchange.sent
            if exchange.step():
                del by_fd[fd]
            elif exchange.sent and not was_sent:
                self._readiness.modify(fd, _READABLE)  # connected and sent: now the reply
        now = self.loop.time()
        if now >= self._check_deadlines_at:
            self._expire(now)
        if by_fd:
            self._arm(now)

    def _expire(self, now: float) -> None:
        """Fail the exchanges past their deadline; note when the next deadline falls."""
        by_fd = self._by_fd
        earliest = math.inf
        for fd, exchange in list(by_fd.items()):
            if exchange.waiter.done():
                del by_fd[fd]
            elif now >= exchange.deadline:
                exchange.expire()
                del by_fd[fd]
            elif exchange.deadline < earliest:
                earliest = exchange.deadline
        self._check_deadlines_at = earliest


def _grid_after(when: float, tick_s: float) -> float:
    """The first point of the `tick_s` grid strictly after `when`."""
    return (math.floor(when / tick_s) + 1) * tick_s


# The ticker of the loop that ran the last exchange. A process normally has one event loop; a
# second one (a test, another thread) gets its own ticker, and a replaced ticker finishes its
# exchanges through its pending timer.
_ticker: _Ticker | None = None

_FAMILIES: dict[str, int] = {}
_FAMILIES_MAX = 65536


def _family(host: str) -> int | None:
    """AF_INET / AF_INET6 for an address literal, None for a name that needs resolving."""
    family = _FAMILIES.get(host)
    if family is not None:
        return family
    for candidate in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(candidate, host)
        except OSError:
            continue
        if len(_FAMILIES) < _FAMILIES_MAX:
            _FAMILIES[host] = candidate
        return candidate
    return None


async def exchange(
    host: str, port: int, payload: bytes, *, timeout_s: float, max_reply_bytes: int
) -> Outcome:
    """Send `payload` on a fresh connection to `host:port` and read the reply (see module doc).

    Raises `ConnectFailed`, `RequestTimeout` or `ReplyTooLarge`; a reset after part of the reply
    is returned as `Outcome.interrupted`, for the caller to judge the part.
    """
    loop = asyncio.get_running_loop()
    now = loop.time()
    deadline = now + timeout_s
    if timeout_s <= 0:
        raise _connect_timeout(host, port, timeout_s)  # no time left before anything started
    family = _family(host)
    address: Any = (host, port)
    if family is None:
        family, address = await _resolve(loop, host, port, deadline, timeout_s)
    try:
        sock = socket.socket(family, _SOCK_TYPE)
    except OSError as exc:
        raise ConnectFailed(host, port, _reason(exc)) from exc
    try:
        if not _SOCK_NONBLOCK:
            sock.setblocking(False)
        code = sock.connect_ex(address)
    except OSError as exc:
        sock.close()
        raise ConnectFailed(host, port, _reason(exc)) from exc
    if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
        sock.close()
        raise ConnectFailed(host, port, os.strerror(code))
    waiter: asyncio.Future[Outcome] = loop.create_future()
    ongoing = _Exchange(sock, payload, waiter, host, port, timeout_s, deadline, max_reply_bytes)
    # Loopback and fast LANs are often connected already: write now and save a tick.
    if ongoing.step():
        return await waiter
    ticker = _ticker
    if ticker is None or ticker.loop is not loop:
        ticker = _new_ticker(loop)
    ticker.add(ongoing, now)
    try:
        return await waiter
    finally:
        if not waiter.done():
            waiter.cancel()
            ticker.drop(ongoing)
            ongoing.abandon()


async def _resolve(
    loop: asyncio.AbstractEventLoop, host: str, port: int, deadline: float, timeout_s: float
) -> tuple[int, Any]:
    """A host name's first address, within what is left of the request's deadline."""
    try:
        async with asyncio.timeout_at(deadline):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise _connect_timeout(host, port, timeout_s) from None
    except OSError as exc:
        raise ConnectFailed(host, port, _reason(exc)) from exc
    if not infos:
        raise ConnectFailed(host, port, "the name has no address")
    # IPv4 first where the name has both: miners' APIs listen on IPv4 (and one address is
    # tried, not each in turn).
    family, _type, _proto, _name, address = min(infos, key=lambda info: info[0] != socket.AF_INET)
    return family, address


def _connect_timeout(host: str, port: int, timeout_s: float) -> RequestTimeout:
    return RequestTimeout(host, port, phase="connect", timeout_s=timeout_s, bytes_received=0)


def _new_ticker(loop: asyncio.AbstractEventLoop) -> _Ticker:
    global _ticker
    _ticker = _Ticker(loop)
    return _ticker
