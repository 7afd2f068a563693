"""A running site built from config: simulators (if any), drivers, the poller, the store, and
the action path (with its audit log) that every command goes through.

`Site` is an async context manager: entering starts the in-process simulators that the config
asks for; `run()` polls until cancelled; `poll_all_once()` polls every device once (the
snapshot command). Presenters only call `snapshot()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from console.actions import ActionPath
from console.alloc import freeze_startup_heap
from console.asic_actions import AsicActions
from console.audit import AuditLog
from console.config import AsicConfig, SiteConfig
from console.events import EventHub
from console.fleet_inputs import no_gpu_economics
from console.gpu_site import GpuSetupError, GpuSide, gpu_device_infos
from console.model import DeviceKind, ErrorKind, Snapshot
from console.poller import Poller
from console.pricing import SitePricing
from console.store import DeviceInfo, Store
from drivers.cgminer.errors import (
    AccessDenied,
    CgminerError,
    CommandError,
    ConnectFailed,
    DecodeError,
    RequestTimeout,
)
from drivers.cgminer.miner import CgminerMiner
from drivers.cgminer.reading import AsicReading
from drivers.host import HostSampler
from simulators.asic import AsicFleet, MinerSpec, parse_fault_spec

DEADLINE_REQUESTS = 2.0
"""A full reading may take a failed join plus the split retry: allow two request deadlines."""


def classify_error(exc: BaseException) -> ErrorKind:
    """Map driver errors onto the poll-failure kinds the presenters understand."""
    if isinstance(exc, AccessDenied):
        return ErrorKind.ACCESS_DENIED
    if isinstance(exc, RequestTimeout | TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, ConnectFailed | OSError):
        return ErrorKind.CONNECT
    if isinstance(exc, DecodeError):
        return ErrorKind.DECODE
    if isinstance(exc, CommandError | CgminerError):
        return ErrorKind.COMMAND
    return ErrorKind.INTERNAL


def read_password(asic: AsicConfig) -> str | None:
    """The admin password for privileged writes: from an env var or a file, never the TOML.

    A missing variable or unreadable file gives None: reads still work, and a write is
    refused by the device with its own error, which the operator sees on that action."""
    if asic.password_env:
        return os.environ.get(asic.password_env)
    if asic.password_file:
        try:
            return Path(asic.password_file).expanduser().read_text().strip()
        except OSError:
            return None
    return None


class SiteStartError(RuntimeError):
    """The site could not start (for example a simulated miner's address is already taken)."""


class AsicSource:
    """Adapts one `CgminerMiner` to the poller's `PollSource`."""

    def __init__(self, device_id: str, miner: CgminerMiner, interval_s: float, timeout_s: float):
        self.device_id = device_id
        self.miner = miner
        self.interval_s = interval_s
        self.deadline_s = timeout_s * DEADLINE_REQUESTS
        # The miner's own coroutine function, not a wrapper: one coroutine less per poll.
        self.read: Callable[[], Coroutine[Any, Any, AsicReading]] = miner.read


class Site:
    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        poller_cfg = config.poller
        self.sources: list[AsicSource] = []
        infos: list[DeviceInfo] = []
        for asic in config.asics:
            timing = config.asic_timing(asic)
            miner = CgminerMiner(
                asic.host,
                asic.port,
                timeout_s=timing.timeout_s,
                privileged=asic.privileged,
                password=read_password(asic) if asic.privileged else None,
                model_hint=asic.model,
            )
            self.sources.append(
                AsicSource(asic.name, miner, timing.poll_interval_s, timing.timeout_s)
            )
            infos.append(
                DeviceInfo(
                    device_id=asic.name,
                    kind=DeviceKind.ASIC,
                    name=asic.name,
                    host=asic.host,
                    port=asic.port,
                    model=asic.model,
                    interval_s=timing.poll_interval_s,
                    stale_after_s=timing.stale_after_s,
                    lost_after_s=timing.lost_after_s,
                    privileged=asic.privileged,
                    tags=tuple(asic.tags),
                )
            )
        infos.extend(gpu_device_infos(config))
        self.store = Store(config.site.name, infos)
        # Every command (TUI, MQTT, CLI) goes through this one path, audited under state_dir.
        self.audit = AuditLog.in_state_dir(config.site.state_path)
        self.actions = ActionPath(self.audit)
        # Faults that presenters announce (job failed, switch failed, ...) are published here.
        self.events = EventHub()
        # NVML, the AI job queue and the GPU mode switches (registers gpu.switch and job.*).
        self.gpus = GpuSide(config, self.actions, self.store, self.events) if config.gpus else None
        self.pricing = SitePricing(
            config,
            [info.device_id for info in infos],
            # Accrual credits at most one stale threshold across a gap in readings.
            [info.stale_after_s for info in infos],
            gpu_economics=self.gpus.economics if self.gpus else no_gpu_economics,
        )
        if self.gpus is not None:
            self.pricing.job_offers = self.gpus.job_offers
        self.poller = Poller(
            self.sources,
            self.store,
            max_concurrency=poller_cfg.max_concurrency,
            backoff_max_s=poller_cfg.backoff_max_s,
            classify=classify_error,
        )
        AsicActions({s.device_id: s.miner for s in self.sources}, self.store).register(self.actions)
        self._fleet = self._simulated_fleet()
        # psutil calls block (they read /proc); keep them off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashpivot-host")
        self._host = HostSampler() if config.host.enabled else None

    def _simulated_fleet(self) -> AsicFleet | None:
        """In-process simulated miners for the `[asics.simulate]` entries (the demo site)."""
        specs: list[MinerSpec] = []
        for asic in self.config.asics:
            if asic.simulate is None:
                continue
            faults = parse_fault_spec(asic.simulate.faults, 1).get(0, ())
            specs.append(
                MinerSpec(
                    persona=asic.simulate.persona,
                    model=asic.model or "",
                    host=asic.host,
                    port=asic.port,
                    seed=asic.simulate.seed,
                    faults=faults,
                    name=asic.name,
                )
            )
        return AsicFleet(specs) if specs else None

    async def __aenter__(self) -> Site:
        if self._fleet is not None:
            try:
                await self._fleet.start()
            except OSError as exc:
                await self._fleet.stop()
                raise SiteStartError(
                    f"cannot start the simulated miners of site {self.config.site.name!r}: "
                    f"{exc.strerror or exc}. Is another hashpivot demo or `hashpivot simulate` "
                    "using these addresses? Stop it, or give the simulated [[asics]] other "
                    "127.x.y.z hosts."
                ) from exc
        if self.gpus is not None:
            try:
                await self.gpus.open()
            except GpuSetupError as exc:
                if self._fleet is not None:
                    await self._fleet.stop()
                raise SiteStartError(str(exc)) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.gpus is not None:
            await self.gpus.close()
        if self._fleet is not None:
            await self._fleet.stop()
        await self.pricing.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.audit.close()

    async def sample_host(self) -> None:
        if self._host is None:
            return
        loop = asyncio.get_running_loop()
        self.store.record_host(await loop.run_in_executor(self._executor, self._host.sample))

    async def _host_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # host metrics are best-effort context
                await self.sample_host()
            await asyncio.sleep(self.config.host.interval_s)

    async def run(self) -> None:
        """Poll every device and the host, follow the market and accrue earnings, until
        cancelled."""
        freeze_startup_heap()  # what exists now lives as long as the process: spare the GC
        async with asyncio.TaskGroup() as group:
            group.create_task(self.poller.run())
            group.create_task(self._host_loop())
            group.create_task(self.pricing.run_feed())
            group.create_task(self.pricing.run_accrual(self.store.snapshot))
            if self.gpus is not None:
                group.create_task(self.gpus.run())

    async def poll_all_once(self) -> None:
        await asyncio.gather(
            self.poller.poll_all_once(),
            self.sample_host(),
            self.pricing.prepare_once(),
            self.gpus.tick() if self.gpus is not None else asyncio.sleep(0),
        )

    def profit_history(
        self, device_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(reading times, profit USD/day) of one device, oldest first (NaN: unknown)."""
        return self.pricing.profit_history.history(device_id)

    def snapshot(self) -> Snapshot:
        """The site now, priced: market figures and per-device earnings included."""
        return self.pricing.price(self.store.snapshot())
