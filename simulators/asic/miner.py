"""One simulated miner: a listening socket, a firmware persona, physics, pools and faults.

`SimulatedMiner` owns the lifecycle (start, stop, reboot = the port really closes, flapping) and
answers requests: it caches rendered reply bytes per request per physics tick, so a poller asking
the same thing again within a tick costs a dictionary lookup. Writes and anything with a side
effect are never cached. It implements the `MinerContext` the personas use, and exposes `truth`,
the physical state a test compares a client's reading against.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from simulators.asic.faults import FaultSet, deliver
from simulators.asic.models import MODELS, ModelSpec
from simulators.asic.personas import PERSONA_CLASSES, Persona
from simulators.asic.physics import BoardSample, Physics, PhysicsSample, unit_noise
from simulators.asic.pools import PoolTable, PoolView, default_pools
from simulators.asic.quirks import GARBAGE, SOCKET_TEXT, encode_reply, frame
from simulators.asic.request import parse_request
from simulators.asic.server import MinerProtocol
from simulators.asic.spec import Fault, MinerSpec

CACHE_ENTRIES = 64
LOG_ENTRIES = 32


@dataclass(frozen=True, slots=True)
class MinerTruth:
    """The true state of a simulated miner at one tick (physical units, not as reported)."""

    name: str
    persona: str
    model: str
    state: str
    """"mining" | "sleeping" | "curtailed" | "rebooting" | "error"."""
    hashrate_hs: float
    """5 s window, the value an Antminer reports as GHS 5s."""
    hashrate_1m_hs: float
    hashrate_avg_hs: float
    """Average since boot (MHS av / GHS av)."""
    nominal_hashrate_hs: float
    power_w: float
    boards: tuple[BoardSample, ...]
    fans_rpm: tuple[int, ...]
    accepted: int
    rejected: int
    stale: int
    hardware_errors: int
    pool_difficulty: float
    uptime_s: int
    pools: tuple[PoolView, ...]
    active_pool: int
    ambient_c: float
    temp_chip_max_c: float
    listening: bool
    windows_hs: dict[str, float]


class SimulatedMiner:
    """A simulated miner (see the module docstring). ``port=0`` binds an ephemeral port."""

    def __init__(self, spec: MinerSpec) -> None:
        self.spec = spec
        self.model: ModelSpec = MODELS[spec.model]
        self.name = spec.name or f"{spec.persona}@{spec.host}:{spec.port}"
        self.host = spec.host
        self.port = spec.port
        self._clock = time.monotonic
        uptime = spec.uptime_s
        if uptime is None:
            uptime = 86400.0 * (1.0 + 9.5 * (1.0 + unit_noise(spec.seed, 11, 0)))
        self.physics = Physics(
            self.model,
            seed=spec.seed,
            ambient_c=spec.ambient_c,
            ramp_s=spec.ramp_s,
            noise=spec.noise,
            tick_s=spec.cache_s,
            uptime_s=uptime,
            pool_difficulty=spec.pool_difficulty,
            now=self._clock(),
            # A fixed, seeded offset in [0, cache_s): ticks of a fleet are spread out.
            phase_s=spec.cache_s * 0.5 * (1.0 + unit_noise(spec.seed, 12, 0)),
        )
        self.pools = PoolTable(list(spec.pools) or default_pools(spec.seed, self.name))
        self.faults = FaultSet(spec.faults)
        self._apply_physical_faults()
        self.persona: Persona = PERSONA_CLASSES[spec.persona](self)
        self.requests = 0
        self._log: deque[bytes] = deque(maxlen=LOG_ENTRIES)
        self._cache: dict[bytes, bytes] = {}
        self._cache_tick = -1
        self._server: asyncio.AbstractServer | None = None
        self._started = False
        self._rebooting = False
        self._flap_down = False
        self._conns: set[MinerProtocol] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reboot_timer: asyncio.TimerHandle | None = None
        self._flap_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<SimulatedMiner {self.name} {self.spec.persona} {self.spec.model} "
            f"{self.host}:{self.port}>"
        )

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        await self._listen()
        if not self._should_listen():
            self._unlisten()
        self._start_flapping()

    async def stop(self) -> None:
        self._started = False
        self._unlisten()
        if self._reboot_timer is not None:
            self._reboot_timer.cancel()
            self._reboot_timer = None
        self._rebooting = False
        tasks = list(self._tasks)
        if self._flap_task is not None:
            tasks.append(self._flap_task)
            self._flap_task = None
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, OSError):
                pass
        self._tasks.clear()
        for c in list(self._conns):
            if c.transport is not None:
                c.transport.abort()
        self._conns.clear()

    async def __aenter__(self) -> SimulatedMiner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _should_listen(self) -> bool:
        return (
            self._started
            and not self._rebooting
            and not self.faults.has("refuse")
            and not self._flap_down
        )

    async def _listen(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: MinerProtocol(self), self.host, self.port, reuse_address=True, backlog=256
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()  # stops accepting at once: new connections are refused
            self._server = None

    def _sync_listener(self) -> None:
        if self._should_listen():
            if self._server is None:
                self._spawn(self._listen())
        else:
            self._unlisten()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until pending listener changes (after faults change or a reboot) are applied."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- faults -----------------------------------------------------------------------------

    def set_faults(self, *faults: Fault) -> None:
        """Replace the active faults. Listener changes apply on the next loop turn (`settle`)."""
        self.faults = FaultSet(faults)
        self._apply_physical_faults()
        self._cache.clear()
        if self._started:
            self._start_flapping()
            self._sync_listener()

    def clear_faults(self) -> None:
        self.set_faults()

    def _apply_physical_faults(self) -> None:
        self.physics.set_faults(
            dead_boards=self.faults.dead_boards,
            missing_chips=self.faults.missing_chips,
            overheat=self.faults.has("overheat"),
        )

    def _start_flapping(self) -> None:
        if self._flap_task is not None:
            self._flap_task.cancel()
            self._flap_task = None
        self._flap_down = False
        if self.faults.has("flapping") and self._started:
            period = max(0.05, self.faults.arg("flapping", 10.0))
            self._flap_task = asyncio.get_running_loop().create_task(self._flap(period))

    async def _flap(self, period: float) -> None:
        # Only flapping miners own a task; everyone else costs nothing while idle.
        while True:
            await asyncio.sleep(period)
            self._flap_down = not self._flap_down
            if self._should_listen():
                await self._listen()
            else:
                self._unlisten()

    # ---- MinerContext -----------------------------------------------------------------------

    def sample(self) -> PhysicsSample:
        return self.physics.sample(self._clock())

    def when(self) -> int:
        return int(time.time())

    def quirk(self, q: str) -> bool:
        return q in self.faults.quirks

    def has_fault(self, kind: str) -> bool:
        return kind in self.faults.kinds

    def counters(self) -> tuple[int, int, int]:
        s = self.sample()
        return (s.accepted, s.rejected, s.stale)

    def invalidate(self) -> None:
        self._cache.clear()

    def command_state(self, target: float, state: str) -> None:
        self.physics.command(self._clock(), target=target, state=state)
        self._cache.clear()

    def reboot(self) -> None:
        """Go offline now (connections refused) and come back after `reboot_s`."""
        if self._rebooting:
            return
        self._rebooting = True
        self.physics.go_offline(self._clock())
        self._cache.clear()
        self._unlisten()
        loop = asyncio.get_running_loop()
        self._reboot_timer = loop.call_later(self.spec.reboot_s, self._reboot_done)

    def _reboot_done(self) -> None:
        self._reboot_timer = None
        self._rebooting = False
        self.physics.boot(self._clock())
        self.pools.reset_counters()
        self.persona.on_boot()
        self._cache.clear()
        self._sync_listener()

    # ---- serving ----------------------------------------------------------------------------

    def connection_made(self, proto: MinerProtocol) -> None:
        self._conns.add(proto)
        if self.faults.has("empty") and proto.transport is not None:
            # cgminer closes a client outside --api-allow without a byte (Q18).
            proto.transport.close()

    def connection_lost(self, proto: MinerProtocol) -> None:
        self._conns.discard(proto)

    def serve(self, proto: MinerProtocol, data: bytes) -> None:
        self.requests += 1
        self._log.append(bytes(data[:512]))
        transport = proto.transport
        if transport is None or transport.is_closing():
            return
        faults = self.faults
        if faults:
            if faults.has("hang"):
                return  # accept, read, never answer, never close
            if faults.has("socket_text"):
                transport.write(SOCKET_TEXT)
                transport.close()
                return
            if faults.has("malformed"):
                transport.write(GARBAGE)
                transport.close()
                return
        payload, after, silent = self.answer(data)
        if silent:
            transport.close()
            return
        if not faults:
            transport.write(payload)
            transport.close()
            if after is not None:
                after()
            return
        deliver(transport, payload, faults, after)

    def answer(self, data: bytes) -> tuple[bytes, Any, bool]:
        """(reply bytes, action to run after sending, send-nothing flag) for one request."""
        # The cache follows the physics ticks (same length, same phase), so a cached reply is
        # always the current sample's.
        tick = self.physics.tick_of(self._clock()) if self.spec.cache_s > 0 else -2
        if tick != self._cache_tick:
            self._cache.clear()
            self._cache_tick = tick
        cached = self._cache.get(data)
        if cached is not None:
            return cached, None, False
        req = parse_request(data)
        persona = self.persona
        reply = persona.handle(req)
        if reply.silent:
            return b"", None, True
        faults = self.faults
        body = encode_reply(
            reply,
            persona,
            persona.q,
            text_mode=req.text_mode,
            chip_temp=self.sample().temp_chip_max_c,
        )
        nul = persona.nul if reply.nul is None else reply.nul
        if persona.q("Q2"):
            nul = False
        if self.quirk("Q1"):
            nul = True
        payload = frame(
            body,
            nul=nul,
            trailing_space=faults.has("trailing_space"),
            truncate=faults.has("truncate"),
        )
        if reply.cacheable and reply.after is None and self.spec.cache_s > 0:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[data] = payload
        return payload, reply.after, False

    # ---- observation ------------------------------------------------------------------------

    @property
    def last_requests(self) -> tuple[bytes, ...]:
        """The raw bytes of the last requests received (most recent last)."""
        return tuple(self._log)

    @property
    def last_commands(self) -> tuple[str, ...]:
        """The command names of the last requests (`"?"` where unparseable, `"enc"` encrypted)."""
        out = []
        for raw in self._log:
            req = parse_request(raw)
            out.append(
                req.command if req.command is not None else "enc" if req.enc is not None else "?"
            )
        return tuple(out)

    @property
    def truth(self) -> MinerTruth:
        s = self.sample()
        return MinerTruth(
            name=self.name,
            persona=self.spec.persona,
            model=self.spec.model,
            state=s.state,
            hashrate_hs=s.hashrate_hs,
            hashrate_1m_hs=s.windows_hs["1m"],
            hashrate_avg_hs=s.hashrate_avg_hs,
            nominal_hashrate_hs=s.nominal_hashrate_hs,
            power_w=s.power_w,
            boards=s.boards,
            fans_rpm=s.fans_rpm,
            accepted=s.accepted,
            rejected=s.rejected,
            stale=s.stale,
            hardware_errors=s.hardware_errors,
            pool_difficulty=s.pool_difficulty,
            uptime_s=s.elapsed_s,
            pools=tuple(self.pools.views(s.accepted, s.rejected, s.stale)),
            active_pool=self.pools.active,
            ambient_c=s.ambient_c,
            temp_chip_max_c=s.temp_chip_max_c,
            listening=self.listening,
            windows_hs=dict(s.windows_hs),
        )
