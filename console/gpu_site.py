"""The GPU side of a running site: NVML, the workloads, and one `GpuView` per GPU per tick.

`GpuSide` owns the NVML driver (over the real library, or over `simulators.nvml` when the
config has a `[gpu_simulation]`), the `Workloads` (job queue, supervisor, switch state
machine; they register `gpu.switch` and the job actions on the site's action path), and the
tick that joins three sources into the store: NVML's reading of each GPU, the state machine's
view of it, and the GPU miner's own API (the only proof that a miner hashes). It also turns
workload happenings into site events (a switch that failed, a job that failed) and hands the
earnings model what it needs per GPU.

Two ways to run: `run()` manages the workloads (starts them as their intents say, watches
them) — the console and headless mode; `tick()` alone only observes — `hashpivot snapshot`,
which must not launch or stop anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Literal, NamedTuple

import numpy as np

from console.actions import ActionName, ActionPath, ActionRequest, Origin
from console.config import GpuConfig, SiteConfig
from console.economics import JobOffers
from console.events import EventHub, EventKind, Severity, SiteEvent
from console.fleet_inputs import GpuEconomics
from console.mining_memory import MiningMemory
from console.model import DeviceKind, DeviceStatus, ErrorKind, GpuJobView, GpuView
from console.store import DeviceInfo, Store
from console.workloads.events import Step, StepEvent, StepStatus
from console.workloads.queue import Job, JobState
from console.workloads.service import GpuWorkload, Workloads
from drivers.gpu_miner import GpuMinerReading, MinerApiError, read_miner
from drivers.gpu_reading import GpuHealth, GpuReading, NvmlState
from drivers.nvml import NvmlDriver
from simulators import gpu_state
from simulators.nvml import NvmlSim

MINER_API_HOST = "127.0.0.1"
MINER_API_TIMEOUT_S = 0.5
SEEDED_MARKER = "demo-jobs-seeded"
SIM_JOB_STEP_S = 0.1
SWITCH_STEPS = frozenset(
    {
        Step.PRECHECK,
        Step.CORDON,
        Step.STOP_MINER,
        Step.PREEMPT_JOB,
        Step.VERIFY_FREE,
        Step.PREPARE,
        Step.LAUNCH,
        Step.CONFIRM,
        Step.STEADY,
    }
)


class JobsSeen(NamedTuple):
    """The AI job queue as a GPU tick last read it, and when (unix seconds; None: not yet)."""

    at: float | None
    jobs: tuple[Job, ...]


class GpuSetupError(RuntimeError):
    """The GPU side cannot start as configured (e.g. a `[[gpus]]` UUID the simulation lacks)."""


def gpu_device_infos(config: SiteConfig) -> list[DeviceInfo]:
    """Store entries for the `[[gpus]]`, with freshness judged on the GPU poll interval."""
    interval_s = config.poller.gpu_poll_interval_s
    timing = config.poller.timing(poll_interval_s=interval_s, timeout_s=interval_s)
    return [
        DeviceInfo(
            device_id=gpu.name,
            kind=DeviceKind.GPU,
            name=gpu.name,
            host="localhost",
            port=gpu.miner_api_port or 0,
            model=gpu.model,
            interval_s=interval_s,
            stale_after_s=timing.stale_after_s,
            lost_after_s=timing.lost_after_s,
            privileged=gpu.privileged,
            tags=tuple(gpu.tags),
        )
        for gpu in config.gpus
    ]


def _simulated_library(config: SiteConfig) -> NvmlSim | None:
    """The simulated NVML for a `[gpu_simulation]` site, creating its GPUs the first time.

    Child processes (the simulated miners and jobs) find the simulated GPUs through the
    state-directory variable, so it is set for this process and everything it launches."""
    sim = config.gpu_simulation
    sim_dir = config.gpu_sim_path
    if sim is None or sim_dir is None:
        return None
    if not (sim_dir / "site.json").exists():
        gpu_state.create_site(sim_dir, list(sim.models), seed=sim.seed)
    os.environ[gpu_state.STATE_ENV] = str(sim_dir)
    return NvmlSim(sim_dir)


def _job_view(job: Job | None, now: float) -> GpuJobView | None:
    if job is None:
        return None
    current_s = (
        max(0.0, now - job.started_at)
        if job.started_at is not None and job.state in (JobState.RUNNING, JobState.PREEMPTING)
        else 0.0
    )
    return GpuJobView(
        id=job.id,
        name=job.name,
        customer=job.customer,
        state=job.state.value,
        rate_usd_per_gpu_hour=job.rate_usd_per_gpu_hour,
        progress=job.progress,
        runtime_s=job.runtime_s + current_s,
        earned_usd=job.earned_usd + current_s / 3600.0 * job.rate_usd_per_gpu_hour,
    )


def _nvml_failure(
    state: NvmlState, reading: GpuReading | None, uuid: str
) -> tuple[ErrorKind, str] | None:
    """Why this tick has no fresh NVML sample of the GPU, or None when it has one."""
    if not state.available:
        return ErrorKind.CONNECT, f"no GPUs: {state.reason or 'NVML unavailable'}"
    if reading is None:
        return ErrorKind.CONNECT, f"NVML does not list GPU {uuid}: check the [[gpus]] uuid"
    if reading.health is GpuHealth.STALE or reading.sample is None:
        return ErrorKind.TIMEOUT, reading.error or "NVML gave no sample within the tick deadline"
    if reading.health is GpuHealth.LOST:
        return ErrorKind.CONNECT, reading.error or "GPU lost (fell off the bus)"
    return None


class GpuSide:
    def __init__(
        self, config: SiteConfig, actions: ActionPath, store: Store, events: EventHub
    ) -> None:
        self.config = config
        self._actions = actions
        self._store = store
        self._events = events
        self._sim = _simulated_library(config)
        self.driver = NvmlDriver(library=self._sim)
        self.workloads = Workloads(config, actions, self.driver)
        self._by_uuid: dict[str, GpuConfig] = {gpu.uuid: gpu for gpu in config.gpus}
        self._mining = MiningMemory(self.workloads.db)
        self._job_states: dict[int, JobState] = {}
        self._offers: tuple[tuple[float, int], ...] = ()  # queued jobs: (rate, min VRAM)
        self._jobs_seen = JobsSeen(None, ())
        self._managed = False
        self._exits = contextlib.ExitStack()

    # --- life cycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Start NVML (never raises for a missing library: the state says why)."""
        self._check_simulation()
        await self.driver.start()
        await self._mining.load()
        self._exits.enter_context(self.workloads.events.listen(self._on_step))

    def _check_simulation(self) -> None:
        if self._sim is None:
            return
        simulated = {g.uuid for g in self._sim.site.gpus}
        missing = [g.name for g in self.config.gpus if g.uuid not in simulated]
        if missing:
            raise GpuSetupError(
                f"[[gpus]] {', '.join(missing)}: UUID not among the simulated GPUs in "
                f"{self.config.gpu_sim_path}; `python -m simulators.gpu_tool show "
                f"{self.config.gpu_sim_path}` lists them"
            )

    async def close(self) -> None:
        self._exits.close()
        if self._managed and self._sim is not None:
            # A simulated site's miners and jobs are part of the simulation: stop them (jobs
            # checkpoint and are requeued; intents stay, so the next start resumes them). On
            # a real site they keep running and the next start re-attaches them.
            await self.workloads.stop_all()
        await self.workloads.close()
        await self.driver.close()
        if self._sim is not None:
            self._sim.close()

    async def run(self) -> None:
        """Manage the workloads and sample every GPU each interval, until cancelled."""
        self._managed = True
        async with asyncio.TaskGroup() as group:
            # Sampling starts at once: the operator sees every GPU (and its intent) within a
            # tick, while re-attaching and resuming workloads can take a while (miner DAGs).
            group.create_task(self._tick_loop())
            await self._seed_demo_jobs()
            await self.workloads.start()
            group.create_task(self.workloads.run())

    async def _tick_loop(self) -> None:
        interval_s = self.config.poller.gpu_poll_interval_s
        while True:
            started = time.monotonic()
            await self.tick()
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))

    # --- one tick ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Sample NVML, the workloads and the miners' APIs once; record every GPU."""
        state = await self.driver.sample()
        if self._managed:
            await self.workloads.record_energy(state)
        workloads = {w.uuid: w for w in await self.workloads.gpus()}
        readings = {g.static.uuid: g for g in state.gpus}
        miners = await asyncio.gather(
            *(self._read_miner(gpu, workloads.get(gpu.uuid)) for gpu in self.config.gpus)
        )
        now = time.time()
        for gpu, miner in zip(self.config.gpus, miners, strict=True):
            work = workloads.get(gpu.uuid)
            reading = readings.get(gpu.uuid)
            view = self._view(gpu, state, reading, work, miner, now)
            self._mining.remember(view)
            self._store.record_gpu(gpu.name, view, now, _nvml_failure(state, reading, gpu.uuid))
        if self._managed:
            await self._mining.save()
        await self._follow_jobs(now)

    async def _read_miner(
        self, gpu: GpuConfig, work: GpuWorkload | None
    ) -> GpuMinerReading | MinerApiError | None:
        if gpu.miner_api_port is None or work is None or work.miner_pid is None:
            return None
        try:
            return await read_miner(
                gpu.miner_api_dialect,
                MINER_API_HOST,
                gpu.miner_api_port,
                timeout_s=MINER_API_TIMEOUT_S,
            )
        except MinerApiError as exc:
            return exc

    def _view(
        self,
        gpu: GpuConfig,
        state: NvmlState,
        reading: GpuReading | None,
        work: GpuWorkload | None,
        miner: GpuMinerReading | MinerApiError | None,
        now: float,
    ) -> GpuView:
        hashrate = algorithm = miner_error = None
        if isinstance(miner, GpuMinerReading):
            # A per-GPU figure when the miner gives one for this UUID, else its total (one
            # miner per GPU is the rule, so the total is this GPU's).
            per_gpu = [g.hashrate_hs for g in miner.gpus if g.uuid == gpu.uuid]
            hashrate = per_gpu[0] if per_gpu and per_gpu[0] is not None else miner.hashrate_hs
            algorithm = miner.algorithm
        elif miner is not None:
            miner_error = str(miner)
        return GpuView(
            uuid=gpu.uuid,
            nvml=reading,
            mode=work.mode.value if work else gpu.initial_mode,
            state=work.state.value if work else "IDLE",
            switching=bool(work and work.switching),
            error=work.error if work else None,
            failed_step=work.failed_step if work else None,
            mode_since=work.mode_since if work else None,
            miner_pid=work.miner_pid if work else None,
            miner_hashrate_hs=hashrate,
            miner_algorithm=algorithm,
            miner_error=miner_error,
            job=_job_view(work.job if work else None, now),
            nvml_unavailable=None if state.available else state.reason,
        )

    async def _follow_jobs(self, now: float) -> None:
        """Announce jobs that failed since the last tick; keep the queued jobs for pricing."""
        jobs = await self.workloads.jobs()
        self._jobs_seen = JobsSeen(now, tuple(jobs))
        offers = []
        for job in jobs:
            before = self._job_states.get(job.id)
            if job.state is JobState.FAILED and before not in (None, JobState.FAILED):
                self._events.publish(
                    SiteEvent(
                        kind=EventKind.JOB_FAILED,
                        subject=f"job {job.id}",
                        message=f"job {job.id} {job.name!r} failed: {job.last_error or '?'}",
                        severity=Severity.ERROR,
                        at=now,
                    )
                )
            self._job_states[job.id] = job.state
            if job.state in (JobState.QUEUED, JobState.REQUEUED):
                offers.append((job.rate_usd_per_gpu_hour, job.min_vram_bytes))
        self._offers = tuple(offers)

    def _on_step(self, event: StepEvent) -> None:
        if event.status is StepStatus.FAILED and event.step in SWITCH_STEPS:
            self._events.publish(
                SiteEvent(
                    kind=EventKind.SWITCH_FAILED,
                    subject=event.gpu,
                    message=f"{event.gpu}: switch failed at {event.step.value}: {event.message}",
                    severity=Severity.ERROR,
                    at=event.at,
                )
            )

    @property
    def jobs_seen(self) -> JobsSeen:
        """The whole queue as of the last tick: for presenters that must not await (the MQTT
        bridge's publish tick); `workloads.jobs()` reads it afresh."""
        return self._jobs_seen

    # --- for the earnings model --------------------------------------------------------------

    def job_offers(self) -> JobOffers:
        """The queued jobs a GPU could take (rate per GPU-hour, VRAM each needs)."""
        return JobOffers(
            np.array([r for r, _ in self._offers], dtype=np.float64),
            np.array([v for _, v in self._offers], dtype=np.float64),
        )

    def economics(self, status: DeviceStatus) -> GpuEconomics | None:
        """What the earnings model needs from one GPU's status (None for other kinds)."""
        view = status.gpu
        if view is None:
            return None
        # Priced on what it does now: a GPU between modes earns nothing.
        doing: Literal["mining", "ai", "idle"] = "idle"
        if view.state == "MINING":
            doing = "mining"
        elif view.state == "AI_RUNNING":
            doing = "ai"
        static = view.nvml.static if view.nvml else None
        return GpuEconomics(
            mode=doing,
            power_w=view.power_w,
            model=static.name if static else None,
            vram_bytes=static.memory_total_bytes if static else None,
            power_limit_w=static.power_limit_default_w if static else None,
            algorithm=view.miner_algorithm or self._mining.algorithm.get(view.uuid),
            hashrate_hs=view.miner_hashrate_hs if doing == "mining" else None,
            mining_hashrate_hs=self._mining.hashrate_hs.get(view.uuid),
            mining_power_w=self._mining.power_w.get(view.uuid),
            job_rate_usd_per_hour=(
                view.job.rate_usd_per_gpu_hour if doing == "ai" and view.job else None
            ),
        )

    # --- the demo's pre-filled queue ---------------------------------------------------------

    async def _seed_demo_jobs(self) -> None:
        """Queue the `[[gpu_simulation.jobs]]` once per simulated site (a marker file says
        it was done, so a restart does not queue them again)."""
        sim = self.config.gpu_simulation
        sim_dir = self.config.gpu_sim_path
        if sim is None or sim_dir is None or not sim.jobs:
            return
        marker = sim_dir / SEEDED_MARKER
        if marker.exists():
            return
        for job in sim.jobs:
            memory = int(job.min_vram_gb * 1e9) or 4 * 1024**3
            result = await self._actions.perform(
                ActionRequest(
                    action=ActionName.JOB_SUBMIT.value,
                    params={
                        "argv": simulated_job_argv(job.total_steps, memory),
                        "name": job.name,
                        "customer": job.customer,
                        "rate_usd_per_gpu_hour": job.rate_usd_per_gpu_hour,
                        "min_vram_bytes": int(job.min_vram_gb * 1e9),
                        "priority": job.priority,
                    },
                    actor="demo",
                    origin=Origin.POLICY,
                    reason="the simulated site's pre-filled queue",
                )
            )
            if not result.ok:
                raise GpuSetupError(f"cannot queue demo job {job.name!r}: {result.message}")
        marker.write_text("the [[gpu_simulation.jobs]] were queued once\n")


def simulated_job_argv(total_steps: int, memory_bytes: int) -> list[str]:
    """The command line of a simulated AI job (`simulators.ai_job`) for the queue."""
    return [
        sys.executable,
        "-m",
        "simulators.ai_job",
        "--checkpoint-dir",
        "{checkpoint_dir}",
        "--progress-file",
        "{progress_file}",
        "--total-steps",
        str(total_steps),
        "--step-seconds",
        str(SIM_JOB_STEP_S),
        "--checkpoint-every",
        "300",
        "--memory-bytes",
        str(memory_bytes),
    ]
