"""Readers for GPU miner APIs: T-Rex ``/summary`` and lolMiner ``/summary``, normalised.

Each per-GPU miner process serves a read-only HTTP API on loopback (reference §6.1). This module
fetches it with a small asyncio HTTP/1.1 GET client (one connection per request, a hard
deadline over connect + read, a cap on the reply size) and turns either shape into one frozen
`GpuMinerReading`: hashrate in H/s (total and per GPU), shares accepted/rejected, uptime,
algorithm, pool, version.

Shapes (both from the miners' documentation and captures):

* T-Rex: ``hashrate`` (H/s), ``gpus[]{gpu_id, hashrate, uuid (32 hex), pci_bus, name,
  shares{accepted_count, rejected_count}}``, ``accepted_count``, ``rejected_count``, ``uptime``,
  ``algorithm``, ``version``, ``active_pool.url``, ``paused``;
* lolMiner 1.x: ``Software``, ``Session{Uptime}``, ``Workers[]{Index, Name, PCIE_Address}``,
  ``Algorithms[]{Algorithm, Pool, Performance_Unit ("Mh/s"), Total_Performance,
  Total_Accepted, Total_Rejected, Worker_Performance[]}``; the older shape
  (``Session{Performance_Summary, Performance_Unit, Accepted, Submitted}``, ``GPUs[]``) too.
  lolMiner serves it on ``/summary`` in older versions and on ``/`` in some newer ones; the
  reader tries ``/summary`` and falls back to ``/`` on a 404.

Failures are typed (`MinerApiError` and subclasses), so a poller can tell "miner not running"
(`MinerConnectFailed`) from "miner answers nonsense" (`MinerBadReply`). A field a miner does
not report is `None`, never 0.

Process start/stop is not here: see `drivers.processes`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_REPLY_BYTES",
    "GpuMinerReading",
    "MinerApiError",
    "MinerBadReply",
    "MinerConnectFailed",
    "MinerDialect",
    "MinerGpu",
    "MinerHttpError",
    "MinerReplyTooLarge",
    "MinerTimeout",
    "http_get",
    "parse_lolminer",
    "parse_trex",
    "read_lolminer",
    "read_miner",
    "read_trex",
]

DEFAULT_TIMEOUT_S: Final = 3.0
MAX_REPLY_BYTES: Final = 1 << 20  # a T-Rex summary for 12 GPUs is ~15 KiB

MinerDialect = Literal["trex", "lolminer"]


class MinerApiError(Exception):
    """Base of every error this module raises on purpose."""


class MinerConnectFailed(MinerApiError):
    """No TCP connection (nothing listening: the miner is not running or still starting)."""


class MinerTimeout(MinerApiError):
    """The deadline expired before a complete reply arrived."""


class MinerReplyTooLarge(MinerApiError):
    """The reply exceeded the size cap."""


class MinerHttpError(MinerApiError):
    """An HTTP reply, but not 200 (or not HTTP at all)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


class MinerBadReply(MinerApiError):
    """A 200 reply whose body is not the JSON shape this dialect should serve."""


class MinerGpu(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU as the miner reports it."""

    index: int  # the miner's device index (CUDA order inside the miner's process)
    hashrate_hs: float | None
    uuid: str | None = None  # "GPU-…" when the miner reports a UUID
    pci_bus: int | None = None  # PCI bus number, to match NVML's bus id
    name: str | None = None
    accepted: int | None = None
    rejected: int | None = None


class GpuMinerReading(msgspec.Struct, frozen=True, kw_only=True):
    """One normalised reading of a GPU miner's API."""

    dialect: str
    taken_at: float  # unix seconds
    hashrate_hs: float | None
    gpus: tuple[MinerGpu, ...] = ()
    accepted: int | None = None
    rejected: int | None = None
    uptime_s: float | None = None
    algorithm: str | None = None
    pool_url: str | None = None
    version: str | None = None
    paused: bool | None = None


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 GET


async def http_get(
    host: str,
    port: int,
    path: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = MAX_REPLY_BYTES,
) -> tuple[int, bytes]:
    """GET `path`; returns (status, body). One connection, ``Connection: close``; the body is
    delimited by Content-Length, chunked encoding, or the server closing. The deadline covers
    connect and read."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _get(host, port, path, max_bytes)
    except TimeoutError:
        raise MinerTimeout(
            f"{host}:{port}{path}: no complete reply within {timeout_s:g} s"
        ) from None


async def _get(host: str, port: int, path: str, max_bytes: int) -> tuple[int, bytes]:
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=max_bytes + 1)
    except OSError as exc:
        raise MinerConnectFailed(f"{host}:{port}: {exc.strerror or exc}") from None
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
            "Connection: close\r\nUser-Agent: hashpivot\r\n\r\n".encode()
        )
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise MinerReplyTooLarge(
                f"{host}:{port}{path}: headers over {max_bytes} bytes"
            ) from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise MinerHttpError(None, f"{host}:{port}{path}: closed without a reply") from None
            raise MinerHttpError(None, f"{host}:{port}{path}: reply is not HTTP") from None
        status, headers = _parse_head(head, f"{host}:{port}{path}")
        body = await _read_body(reader, headers, max_bytes - len(head), f"{host}:{port}{path}")
        return status, body
    except ConnectionError as exc:
        raise MinerConnectFailed(f"{host}:{port}: connection reset ({exc})") from None
    finally:
        writer.close()


def _parse_head(head: bytes, where: str) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if m is None:
        raise MinerHttpError(None, f"{where}: reply is not HTTP: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers


async def _read_body(
    reader: asyncio.StreamReader, headers: Mapping[str, str], cap: int, where: str
) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await reader.readline()
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise MinerHttpError(None, f"{where}: bad chunk header {line[:20]!r}") from None
            if n == 0:
                return b"".join(chunks)
            size += n
            if size > cap:
                raise MinerReplyTooLarge(f"{where}: reply over {cap} bytes")
            chunks.append(await reader.readexactly(n))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise MinerHttpError(None, f"{where}: bad Content-Length {length!r}") from None
        if n > cap:
            raise MinerReplyTooLarge(f"{where}: Content-Length {n} over the {cap}-byte cap")
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise MinerBadReply(
                f"{where}: reply cut short ({len(exc.partial)} of {n} bytes)"
            ) from None
    body = await reader.read(cap + 1)
    while len(body) <= cap:
        more = await reader.read(cap + 1 - len(body))
        if not more:
            return body
        body += more
    raise MinerReplyTooLarge(f"{where}: reply over {cap} bytes")


# ---------------------------------------------------------------------------------------------
# Parsing


_UNITS: Final = {"h/s": 1.0, "kh/s": 1e3, "mh/s": 1e6, "gh/s": 1e9, "th/s": 1e12}


def _num(obj: Mapping[str, Any], key: str) -> float | None:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _int(obj: Mapping[str, Any], key: str) -> int | None:
    v = _num(obj, key)
    return int(v) if v is not None else None


def _index(obj: Mapping[str, Any], key: str, default: int) -> int:
    v = _int(obj, key)
    return v if v is not None else default


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    v = obj.get(key)
    return v if isinstance(v, str) and v else None


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    v = obj.get(key)
    return v if isinstance(v, list) else []


def _dict(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = obj.get(key)
    return v if isinstance(v, dict) else {}


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MinerBadReply(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _uuid_from_hex(raw: str | None) -> str | None:
    """T-Rex reports the GPU UUID as 32 hex digits; NVML as GPU-8-4-4-4-12."""
    if raw is None:
        return None
    h = raw.lower().removeprefix("gpu-").replace("-", "")
    if not re.fullmatch(r"[0-9a-f]{32}", h):
        return None
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_trex(doc: Any, *, taken_at: float) -> GpuMinerReading:
    """A T-Rex `/summary` document → reading. Raises `MinerBadReply` on the wrong shape."""
    d = _obj(doc, "T-Rex summary")
    if "hashrate" not in d or "gpus" not in d:
        raise MinerBadReply("T-Rex summary: no 'hashrate'/'gpus' (is this really T-Rex?)")
    gpus_raw = d.get("gpus")
    if not isinstance(gpus_raw, list):
        raise MinerBadReply("T-Rex summary: 'gpus' is not a list")
    gpus = []
    for i, g in enumerate(gpus_raw):
        g = _obj(g, f"T-Rex summary gpus[{i}]")
        shares = _dict(g, "shares")
        gpus.append(
            MinerGpu(
                index=_index(g, "gpu_id", i),
                hashrate_hs=_num(g, "hashrate"),
                uuid=_uuid_from_hex(_str(g, "uuid")),
                pci_bus=_int(g, "pci_bus"),
                name=_str(g, "name"),
                accepted=_int(shares, "accepted_count"),
                rejected=_int(shares, "rejected_count"),
            )
        )
    pool = d.get("active_pool")
    paused = d.get("paused")
    return GpuMinerReading(
        dialect="trex",
        taken_at=taken_at,
        hashrate_hs=_num(d, "hashrate"),
        gpus=tuple(gpus),
        accepted=_int(d, "accepted_count"),
        rejected=_int(d, "rejected_count"),
        uptime_s=_num(d, "uptime"),
        algorithm=_str(d, "algorithm"),
        pool_url=_str(pool, "url") if isinstance(pool, dict) else None,
        version=_str(d, "version"),
        paused=paused if isinstance(paused, bool) else None,
    )


def _unit_factor(unit: str | None, where: str) -> float:
    if unit is None:
        raise MinerBadReply(f"{where}: no Performance_Unit, hashrate cannot be scaled")
    factor = _UNITS.get(unit.strip().lower())
    if factor is None:
        raise MinerBadReply(f"{where}: unsupported Performance_Unit {unit!r} (not a hash rate)")
    return factor


def _pcie_bus(addr: str | None) -> int | None:
    # lolMiner writes "2:0" (bus:device, decimal) or "0000:02:00.0".
    if addr is None:
        return None
    parts = addr.split(":")
    try:
        return int(parts[-2], 16) if len(parts) >= 3 else int(parts[0])
    except ValueError:
        return None


def parse_lolminer(doc: Any, *, taken_at: float) -> GpuMinerReading:
    """A lolMiner summary (1.x `Algorithms`/`Workers` shape, or the older `GPUs` one)."""
    d = _obj(doc, "lolMiner summary")
    session = _dict(d, "Session")
    if isinstance(d.get("Algorithms"), list):
        algos = d["Algorithms"]
        if not algos:
            raise MinerBadReply("lolMiner summary: 'Algorithms' is empty")
        a = _obj(algos[0], "lolMiner summary Algorithms[0]")
        factor = _unit_factor(_str(a, "Performance_Unit"), "lolMiner summary Algorithms[0]")
        workers = _list(d, "Workers")
        perf = _list(a, "Worker_Performance")
        acc = _list(a, "Worker_Accepted")
        rej = _list(a, "Worker_Rejected")
        gpus = []
        for i, w in enumerate(workers):
            w = w if isinstance(w, dict) else {}
            p = perf[i] if i < len(perf) and isinstance(perf[i], (int, float)) else None
            gpus.append(
                MinerGpu(
                    index=_index(w, "Index", i),
                    hashrate_hs=float(p) * factor if p is not None else None,
                    pci_bus=_pcie_bus(_str(w, "PCIE_Address")),
                    name=_str(w, "Name"),
                    accepted=int(acc[i]) if i < len(acc) and isinstance(acc[i], int) else None,
                    rejected=int(rej[i]) if i < len(rej) and isinstance(rej[i], int) else None,
                )
            )
        total = _num(a, "Total_Performance")
        return GpuMinerReading(
            dialect="lolminer",
            taken_at=taken_at,
            hashrate_hs=total * factor if total is not None else None,
            gpus=tuple(gpus),
            accepted=_int(a, "Total_Accepted"),
            rejected=_int(a, "Total_Rejected"),
            uptime_s=_num(session, "Uptime"),
            algorithm=_str(a, "Algorithm"),
            pool_url=_str(a, "Pool"),
            version=_str(d, "Software"),
        )
    if isinstance(d.get("GPUs"), list) and session:
        factor = _unit_factor(_str(session, "Performance_Unit"), "lolMiner summary Session")
        gpus = []
        for i, g in enumerate(d["GPUs"]):
            g = g if isinstance(g, dict) else {}
            p = _num(g, "Performance")
            gpus.append(
                MinerGpu(
                    index=_index(g, "Index", i),
                    hashrate_hs=p * factor if p is not None else None,
                    pci_bus=_pcie_bus(_str(g, "PCIE_Address")),
                    name=_str(g, "Name"),
                    accepted=_int(g, "Session_Accepted"),
                )
            )
        total = _num(session, "Performance_Summary")
        accepted, submitted = _int(session, "Accepted"), _int(session, "Submitted")
        mining = _dict(d, "Mining")
        stratum = _dict(d, "Stratum")
        return GpuMinerReading(
            dialect="lolminer",
            taken_at=taken_at,
            hashrate_hs=total * factor if total is not None else None,
            gpus=tuple(gpus),
            accepted=accepted,
            rejected=submitted - accepted
            if submitted is not None and accepted is not None
            else None,
            uptime_s=_num(session, "Uptime"),
            algorithm=_str(mining, "Algorithm"),
            pool_url=_str(stratum, "Current_Pool"),
            version=_str(d, "Software"),
        )
    raise MinerBadReply("lolMiner summary: neither 'Algorithms' nor 'GPUs' (is this lolMiner?)")


def _decode(body: bytes, where: str) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MinerBadReply(f"{where}: not JSON ({exc}): {body[:60]!r}") from None


# ---------------------------------------------------------------------------------------------
# Readers


async def _read(
    host: str,
    port: int,
    paths: tuple[str, ...],
    parse: Callable[..., GpuMinerReading],
    timeout_s: float,
    wall: Callable[[], float],
) -> GpuMinerReading:
    deadline = time.monotonic() + timeout_s
    status, body, where = 0, b"", ""
    for path in paths:
        where = f"{host}:{port}{path}"
        left = max(0.001, deadline - time.monotonic())
        status, body = await http_get(host, port, path, timeout_s=left)
        if status != 404:
            break
    if status != 200:
        raise MinerHttpError(status, f"{where}: HTTP {status}")
    return parse(_decode(body, where), taken_at=wall())


async def read_trex(
    host: str,
    port: int,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    wall: Callable[[], float] = time.time,
) -> GpuMinerReading:
    """Read a T-Rex miner's `/summary`."""
    return await _read(host, port, ("/summary",), parse_trex, timeout_s, wall)


async def read_lolminer(
    host: str,
    port: int,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    wall: Callable[[], float] = time.time,
) -> GpuMinerReading:
    """Read a lolMiner's summary (`/summary`, or `/` where `/summary` is 404)."""
    return await _read(host, port, ("/summary", "/"), parse_lolminer, timeout_s, wall)


async def read_miner(
    dialect: MinerDialect,
    host: str,
    port: int,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    wall: Callable[[], float] = time.time,
) -> GpuMinerReading:
    """Read a miner of the given dialect."""
    if dialect == "trex":
        return await read_trex(host, port, timeout_s=timeout_s, wall=wall)
    if dialect == "lolminer":
        return await read_lolminer(host, port, timeout_s=timeout_s, wall=wall)
    raise ValueError(f"unknown miner dialect {dialect!r}; use 'trex' or 'lolminer'")
