"""The two-stage network scan behind `hashpivot scan`: probe every address, identify what answers.

Stage 1, *probe*: `probe_concurrency` workers pull addresses from the targets and try a TCP
connection to the API port (4028) — and to each of `other_ports` at the same time, so a probe of
a dead address costs one deadline, not two. Stage 2, *identify*: `identify_concurrency` workers
take each host found open off a queue and run the CGMiner driver's own detection
(`drivers.cgminer.dialects.detect.detect`: version, devdetails, stats and the dialect rules),
under one deadline per host. The stages overlap: identification of the first miner starts as
soon as its port is found open, not after the sweep.

Separate limits and deadlines, because the costs differ: a probe is one SYN and mostly waits on
dead addresses (short deadline, wide concurrency), an identification is several requests to a
slow single-threaded controller (longer deadline, narrower concurrency so a site's management
network and the miners themselves are not flooded).

`Scanner.stop()` (wired to Ctrl-C by the command) ends both stages at once; the report then
says `complete: false`, counts the addresses never probed, and lists hosts whose identification
was cut short as `interrupted` — everything found so far is kept.

Failures of *this* machine (out of file descriptors, a bug) are raised, never reported as
silent or unidentified hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from console.scan.result import (
    SCHEMA,
    IdentifiedHost,
    ScanCounts,
    ScanReport,
    ScanSettings,
    Silence,
    SilentHost,
    Unidentified,
    UnidentifiedHost,
    truncate,
)
from console.scan.targets import Targets
from drivers.cgminer.client import DEFAULT_PORT
from drivers.cgminer.dialects.detect import detect
from drivers.cgminer.errors import (
    CgminerError,
    CommandError,
    ConnectFailed,
    DetectionFailed,
    EmptyReply,
    NonJsonReply,
    ReplyInterrupted,
    RequestTimeout,
)
from drivers.tcp_probe import PortState, probe_port

WHATSMINER_V3_PORT = 4433
OTHER_PORTS: dict[int, str] = {
    # Whatsminer firmware from late 2024 on speaks API V3 (length-prefixed JSON) here, and some
    # builds no longer answer on 4028 (protocol reference §4.2, §6.2). Braiins OS's gRPC port
    # (50051) is not listed: it is gRPC's common default too, so an open 50051 proves nothing,
    # and BOS keeps the CGMiner API on 4028 anyway.
    WHATSMINER_V3_PORT: "the Whatsminer API V3 port",
}
"""Other miner API ports worth probing, with what an open one suggests (and only suggests)."""

_SILENCE = {
    PortState.REFUSED: Silence.REFUSED,
    PortState.TIMEOUT: Silence.TIMEOUT,
    PortState.UNREACHABLE: Silence.UNREACHABLE,
}


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Limits and deadlines of the two stages (defaults sized for a site's management LAN)."""

    port: int = DEFAULT_PORT
    other_ports: tuple[int, ...] = (WHATSMINER_V3_PORT,)
    probe_timeout_s: float = 1.0
    """Connect deadline per address; a LAN answers in milliseconds, dead addresses never."""
    probe_concurrency: int = 256
    identify_timeout_s: float = 5.0
    """Deadline for identifying one host, all its requests together (the driver's own ~5 s)."""
    identify_concurrency: int = 64

    def settings(self) -> ScanSettings:
        return ScanSettings(
            port=self.port,
            other_ports=self.other_ports,
            probe_timeout_s=self.probe_timeout_s,
            probe_concurrency=self.probe_concurrency,
            identify_timeout_s=self.identify_timeout_s,
            identify_concurrency=self.identify_concurrency,
        )

    def sockets_needed(self) -> int:
        """File descriptors the scan may hold at once (for sizing against `ulimit -n`)."""
        per_probe = 1 + len(self.other_ports)
        # Detection asks at most two dialect detail commands at once, plus one in flight.
        return self.probe_concurrency * per_probe + self.identify_concurrency * 3


class LiveCounts:
    """Counters the progress display reads while the scan runs (written only by the scanner)."""

    __slots__ = (
        "hosts",
        "identified",
        "identifying",
        "open",
        "probe_s",
        "probed",
        "silent",
        "unidentified",
    )

    def __init__(self, hosts: int) -> None:
        self.hosts = hosts
        self.probe_s: float | None = None  # seconds the probe stage took, once it has ended
        self.probed = 0
        self.open = 0
        self.identified = 0
        self.unidentified = 0
        self.identifying = 0
        self.silent = 0


@dataclass(frozen=True, slots=True)
class _Open:
    host: str
    open_ports: tuple[int, ...]


class Scanner:
    """One scan of `targets`; `run()` once, `stop()` from anywhere on the loop to end it early."""

    def __init__(self, targets: Targets, options: ScanOptions | None = None) -> None:
        self.targets = targets
        self.options = options or ScanOptions()
        self.live = LiveCounts(targets.host_count)
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self._identified: list[IdentifiedHost] = []
        self._unidentified: list[UnidentifiedHost] = []
        self._silent: list[SilentHost] = []
        self._in_flight: dict[str, _Open] = {}
        self._probe_s: float | None = None
        self._failure: BaseException | None = None

    def stop(self) -> None:
        """End the scan now; `run()` returns the partial report."""
        self._stop.set()

    async def run(self) -> ScanReport:
        started_at = datetime.now(UTC)
        self.started = time.monotonic()
        queue: asyncio.Queue[_Open] = asyncio.Queue()
        hosts = self.targets.hosts()
        count = self.targets.host_count
        probers = [
            asyncio.create_task(self._probe_worker(hosts, queue))
            for _ in range(min(self.options.probe_concurrency, count))
        ]
        identifiers = [
            asyncio.create_task(self._identify_worker(queue))
            for _ in range(min(self.options.identify_concurrency, count))
        ]
        for worker in (*probers, *identifiers):
            worker.add_done_callback(self._worker_done)
        finished = asyncio.create_task(self._finish(probers, queue))
        stopped = asyncio.create_task(self._stop.wait())
        tasks: tuple[asyncio.Task[object], ...] = (*probers, *identifiers, finished, stopped)
        try:
            await asyncio.wait((finished, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._failure is not None:
            raise self._failure
        complete = finished.done() and not finished.cancelled()
        if not complete:
            self._interrupt(queue)
        return self._report(started_at, complete)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._failure is None:
            self._failure = exc
            self._stop.set()

    async def _finish(self, probers: list[asyncio.Task[None]], queue: asyncio.Queue[_Open]) -> None:
        await asyncio.gather(*probers)
        self._probe_s = self.live.probe_s = time.monotonic() - self.started
        await queue.join()

    # --- stage 1: probe ---------------------------------------------------------------------

    async def _probe_worker(self, hosts: Iterator[str], queue: asyncio.Queue[_Open]) -> None:
        # All workers share one iterator: `next` runs without yielding to the loop, so each
        # address is taken by exactly one worker, and a /12 is never materialised as a list.
        options = self.options
        ports = (options.port, *options.other_ports)
        timeout_s = options.probe_timeout_s
        live = self.live
        for host in hosts:
            if len(ports) == 1:
                probes = [await probe_port(host, ports[0], timeout_s=timeout_s)]
            else:
                probes = await asyncio.gather(
                    *(probe_port(host, port, timeout_s=timeout_s) for port in ports)
                )
            live.probed += 1
            open_ports = tuple(
                port
                for port, probe in zip(ports, probes, strict=True)
                if probe.state is PortState.OPEN
            )
            api = probes[0]
            if api.state is PortState.OPEN:
                live.open += 1
                queue.put_nowait(_Open(host, open_ports))
            elif open_ports:
                live.open += 1
                live.unidentified += 1
                other = open_ports[0]
                self._unidentified.append(
                    UnidentifiedHost(
                        host=host,
                        port=other,
                        reason=Unidentified.OTHER_PORT,
                        answered=truncate(
                            f"port {options.port}: {api.detail}; port {other} open "
                            f"({OTHER_PORTS.get(other, 'another API port')}); hashpivot reads "
                            f"the CGMiner API on port {options.port} only"
                        ),
                        open_ports=open_ports,
                        identify_s=None,
                    )
                )
            else:
                live.silent += 1
                self._silent.append(SilentHost(host=host, reason=_SILENCE[api.state]))

    # --- stage 2: identify ------------------------------------------------------------------

    async def _identify_worker(self, queue: asyncio.Queue[_Open]) -> None:
        live = self.live
        while True:
            item = await queue.get()
            self._in_flight[item.host] = item
            live.identifying += 1
            try:
                entry = await self._identify(item)
            except asyncio.CancelledError:
                # Left in `_in_flight`: the report lists it as interrupted.
                live.identifying -= 1
                raise
            live.identifying -= 1
            del self._in_flight[item.host]
            if isinstance(entry, IdentifiedHost):
                live.identified += 1
                self._identified.append(entry)
            else:
                live.unidentified += 1
                self._unidentified.append(entry)
            queue.task_done()

    async def _identify(self, item: _Open) -> IdentifiedHost | UnidentifiedHost:
        port = self.options.port
        timeout_s = self.options.identify_timeout_s
        began = time.monotonic()
        try:
            # The driver's per-request deadline bounds each request; this one bounds the host
            # (a Whatsminer takes three requests), so a slow drip cannot stretch it further.
            async with asyncio.timeout(timeout_s):
                _dialect, identity = await detect(item.host, port, timeout_s=timeout_s)
        except TimeoutError:
            reason, answered = Unidentified.NO_REPLY, f"no complete answer within {timeout_s:g} s"
        except CgminerError as exc:
            reason, answered = _classify_failure(exc)
        else:
            return IdentifiedHost(
                host=item.host,
                port=port,
                make=identity.make,
                model=identity.model,
                firmware=identity.firmware.value,
                firmware_version=identity.firmware_version,
                warnings=identity.warnings,
                open_ports=item.open_ports,
                identify_s=round(time.monotonic() - began, 4),
            )
        return UnidentifiedHost(
            host=item.host,
            port=port,
            reason=reason,
            answered=truncate(answered),
            open_ports=item.open_ports,
            identify_s=round(time.monotonic() - began, 4),
        )

    # --- the report -------------------------------------------------------------------------

    def _interrupt(self, queue: asyncio.Queue[_Open]) -> None:
        """Hosts found open whose identification never finished: keep them, say why."""
        waiting = list(self._in_flight.values())
        self._in_flight.clear()
        while not queue.empty():
            waiting.append(queue.get_nowait())
        for item in waiting:
            self.live.unidentified += 1
            self._unidentified.append(
                UnidentifiedHost(
                    host=item.host,
                    port=self.options.port,
                    reason=Unidentified.INTERRUPTED,
                    answered="open; the scan was stopped before identification finished",
                    open_ports=item.open_ports,
                    identify_s=None,
                )
            )

    def _report(self, started_at: datetime, complete: bool) -> ScanReport:
        identified = tuple(sorted(self._identified, key=lambda h: _address_key(h.host)))
        unidentified = tuple(sorted(self._unidentified, key=lambda h: _address_key(h.host)))
        silent = tuple(sorted(self._silent, key=lambda h: _address_key(h.host)))
        probed = self.live.probed
        counts = ScanCounts(
            hosts=self.targets.host_count,
            probed=probed,
            open=len(identified) + len(unidentified),
            identified=len(identified),
            unidentified=len(unidentified),
            silent=len(silent),
            not_probed=self.targets.host_count - probed,
        )
        return ScanReport(
            schema=SCHEMA,
            targets=tuple(str(network) for network in self.targets.networks),
            started_at=started_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            duration_s=round(time.monotonic() - self.started, 3),
            probe_s=None if self._probe_s is None else round(self._probe_s, 3),
            complete=complete,
            settings=self.options.settings(),
            counts=counts,
            identified=identified,
            unidentified=unidentified,
            silent=silent,
        )


def _classify_failure(exc: CgminerError) -> tuple[Unidentified, str]:
    """The reason class of a failed identification, and what the host answered."""
    if isinstance(exc, RequestTimeout):
        return Unidentified.NO_REPLY, str(exc)
    if isinstance(exc, ReplyInterrupted) and exc.head:
        # Something spoke, then hung up: its first bytes say more than "connection lost".
        said = f"{exc.head.decode('utf-8', errors='replace')!r}, then the connection was reset"
        if exc.head.lstrip()[:1] in (b"{", b"["):
            return Unidentified.BAD_REPLY, said
        return Unidentified.NOT_CGMINER, said
    if isinstance(exc, ConnectFailed | ReplyInterrupted):
        return Unidentified.CONNECTION_LOST, str(exc)
    if isinstance(exc, EmptyReply):
        return Unidentified.EMPTY, str(exc)
    if isinstance(exc, NonJsonReply):
        # Quote the bytes themselves: "SSH-2.0-OpenSSH_9.6" tells the operator what is there.
        return Unidentified.NOT_CGMINER, repr(exc.text)
    if isinstance(exc, CommandError):
        return Unidentified.API_ERROR, str(exc)
    if isinstance(exc, DetectionFailed):
        return Unidentified.UNRECOGNISED, str(exc)
    return Unidentified.BAD_REPLY, str(exc)


def _address_key(host: str) -> tuple[int, int]:
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        return address.version, int(address)
    return 99, 0


__all__ = ["OTHER_PORTS", "WHATSMINER_V3_PORT", "LiveCounts", "ScanOptions", "Scanner"]
