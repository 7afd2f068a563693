"""A connect-only TCP probe: is anything listening on `host:port`, and if not, how did it fail?

Discovery (`hashpivot scan`) sweeps whole subnets before it speaks any miner protocol, so this is
the cheapest question one can ask a host: open a TCP connection, close it, send nothing. The
answer keeps the three silences apart because they mean different things on a site network:

* `REFUSED`     something answered with a reset: the host is up but nothing listens on the port
                (a miner with its API switched off looks like this);
* `TIMEOUT`     nothing came back within the deadline: no host there, or a firewall drops SYNs;
* `UNREACHABLE` the local stack or a router said there is no route to it.

A local failure (out of file descriptors or ephemeral ports) is *ours*, not the host's: it is
raised as `OSError`, never reported as a silent host.

A bare non-blocking socket and `loop.sock_connect` cost a fraction of `create_connection` (no
transport, no protocol object), which matters when a sweep opens a thousand of them.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from enum import StrEnum
from typing import NamedTuple


class PortState(StrEnum):
    """How a TCP connect attempt ended."""

    OPEN = "open"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"


class Probe(NamedTuple):
    """One probe's outcome: the state, and the OS's words for a failure (empty when open)."""

    state: PortState
    detail: str = ""


# Errors that describe the path to the host, not this machine. Anything else (EMFILE, ENOBUFS,
# EADDRNOTAVAIL: we ran out of something) is raised, so a sweep never blames hosts for it.
_UNREACHABLE_ERRNOS = frozenset(
    code
    for code in (
        getattr(errno, name, None)
        for name in ("EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EACCES", "EPERM")
    )
    if code is not None
)


async def probe_port(host: str, port: int, *, timeout_s: float) -> Probe:
    """Try one TCP connection to `host:port` (a numeric address) within `timeout_s` seconds.

    The connection is closed at once without sending anything; a CGMiner API thread reads
    zero bytes and closes its side, as it does for any client that goes away.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                await loop.sock_connect(sock, (host, port))
        except TimeoutError:
            return Probe(PortState.TIMEOUT, f"no answer within {timeout_s:g} s")
        except ConnectionRefusedError:
            return Probe(PortState.REFUSED, "connection refused")
        except ConnectionResetError:
            return Probe(PortState.REFUSED, "connection reset")
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                return Probe(PortState.TIMEOUT, exc.strerror or str(exc))
            if exc.errno in _UNREACHABLE_ERRNOS:
                return Probe(PortState.UNREACHABLE, exc.strerror or str(exc))
            raise
        return Probe(PortState.OPEN)
    finally:
        sock.close()


__all__ = ["PortState", "Probe", "probe_port"]
