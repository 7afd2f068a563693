"""`Workloads`: the GPU side of a running site in one object the site builds and runs.

It owns the workloads database (job queue + GPU intent), the process runner, the supervisor
and the switch state machine, registers `gpu.switch` and the job actions on the site's action
path, and turns the supervisor's requests for attention into actions of origin POLICY (so the
next job starting on a GPU, or a cancel arriving from the CLI, is audited like an operator's
command):

    workloads = Workloads(config, site.actions, probe=nvml_driver)  # NvmlDriver satisfies it
    await workloads.start()        # re-attach or requeue, then resume interrupted switches
    task = asyncio.create_task(workloads.run())   # watch jobs and miners until cancelled
    ...
    await workloads.close()        # workloads keep running; the next start re-attaches them

Presenters read `gpus()` and `jobs()` and follow `events.subscribe()`; the NVML poll tick
calls `record_energy(state)` so energy is booked per mode and per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import msgspec

from console.actions import ActionName, ActionPath, ActionRequest, ActionResult, Origin
from console.config import SiteConfig
from console.workloads.actions import WorkloadActions
from console.workloads.db import WorkloadDb
from console.workloads.energy import EnergyLedger, Owner
from console.workloads.events import EventBus
from console.workloads.intent import (
    HOLDING,
    STEADY_STATE_OF,
    GpuIntent,
    GpuMode,
    GpuState,
    IntentStore,
)
from console.workloads.ports import GainEstimator, GpuProbe, GpuTuner, MinerApiProbe, MinerProbe
from console.workloads.queue import WAITING, Job, JobQueue, choose
from console.workloads.supervisor import Supervisor
from console.workloads.switch import Switcher
from drivers.gpu_reading import NvmlState
from drivers.processes import ProcessRunner

POLICY_ACTOR = "policy"


class GpuWorkload(msgspec.Struct, frozen=True, kw_only=True):
    """What one GPU is told to do and how far it got, for presenters."""

    name: str
    uuid: str
    mode: GpuMode  # commanded
    state: GpuState  # the state machine
    cordoned: bool
    switching: str | None  # the running switch's id
    error: str | None  # why it is held (FAULTED / NEEDS_RESET / LOST) or the last failure
    failed_step: str | None
    mode_since: float
    miner_pid: int | None
    job: Job | None


class Workloads:
    def __init__(
        self,
        config: SiteConfig,
        actions: ActionPath,
        probe: GpuProbe,
        *,
        miner_probe: MinerProbe | None = None,
        tuner: GpuTuner | None = None,
        gain: GainEstimator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.actions = actions
        self.probe = probe
        self.db = WorkloadDb.in_state_dir(config.site.state_path)
        self.queue = JobQueue(
            self.db,
            config.jobs_path,
            default_grace_s=config.workloads.job_grace_s,
            max_attempts=config.workloads.max_attempts,
            clock=clock,
        )
        self.intents = IntentStore(self.db, clock=clock)
        self.energy = EnergyLedger(self.db, clock=clock)
        self.events = EventBus()
        self.runner = ProcessRunner()
        self.supervisor = Supervisor(
            config, self.queue, self.intents, self.runner, self.events, clock=clock
        )
        self.switcher = Switcher(
            config,
            self.supervisor,
            probe,
            miner_probe=miner_probe if miner_probe is not None else MinerApiProbe(),
            tuner=tuner,
            gain=gain,
            clock=clock,
        )
        WorkloadActions(self.queue, self.switcher).register(actions)
        self.supervisor.on_attention = self._attention
        self._tasks: dict[str, asyncio.Task[ActionResult]] = {}
        self._closed = False

    async def start(self) -> list[ActionResult]:
        """Recover processes, learn each GPU's memory, then resume every GPU that is not where
        its intent says (first start, interrupted switch, workload gone). Returns the resume
        actions' results (already audited)."""
        await self.supervisor.recover()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                nvml = await self.probe.sample()
            for reading in nvml.gpus:
                slot = self.supervisor.slots.get(reading.static.uuid)
                if slot is not None:
                    slot.memory_total_bytes = reading.static.memory_total_bytes
        intents = await self.intents.all()
        waiting = await self.queue.list_jobs(WAITING)
        pending = [
            self._perform_resume(slot.uuid, intents[slot.uuid])
            for slot in self.supervisor.slots.values()
            if self._needs_resume(intents[slot.uuid], waiting)
        ]
        return list(await asyncio.gather(*pending))

    def _needs_resume(self, intent: GpuIntent, waiting: list[Job]) -> bool:
        slot = self.supervisor.slots[intent.uuid]
        if intent.state in HOLDING:
            return False  # an operator decides (retry / abort)
        if intent.mode is GpuMode.AI and intent.state is GpuState.IDLE:
            # Waiting for work: start one if a queued job fits.
            return choose(waiting, slot.memory_total_bytes) is not None
        if intent.state is not STEADY_STATE_OF[intent.mode]:
            return True  # mid-switch when the console died
        if intent.mode is GpuMode.MINING:
            return slot.miner is None
        if intent.mode is GpuMode.AI:
            return slot.job is None
        return slot.miner is not None or slot.job is not None

    async def _perform_resume(self, uuid: str, intent: GpuIntent) -> ActionResult:
        return await self.actions.perform(
            ActionRequest(
                action=ActionName.GPU_SWITCH.value,
                target=self.supervisor.slots[uuid].name,
                params={"op": "resume"},
                actor=POLICY_ACTOR,
                origin=Origin.POLICY,
                reason=f"console start: intent {intent.mode.value}, found {intent.state.value}",
            )
        )

    async def run(self) -> None:
        """Watch jobs and miners until cancelled."""
        await self.supervisor.run()

    async def _attention(self, uuid: str, why: str) -> None:
        slot = self.supervisor.slots[uuid]
        running = self._tasks.get(uuid)
        if running is not None and not running.done():
            return
        if why == "cancel_requested":
            job_id = slot.job_id
            if job_id is None:
                return
            request = ActionRequest(
                action=ActionName.JOB_CANCEL.value,
                target=str(job_id),
                actor=POLICY_ACTOR,
                origin=Origin.POLICY,
                reason="cancel requested while it ran (e.g. from the CLI)",
            )
        elif why == "miner_down":
            request = ActionRequest(
                action=ActionName.GPU_SWITCH.value,
                target=slot.name,
                params={"op": "resume"},
                actor=POLICY_ACTOR,
                origin=Origin.POLICY,
                reason="its miner exited; restarting it",
            )
        else:
            waiting = await self.queue.list_jobs(WAITING)
            if choose(waiting, slot.memory_total_bytes) is None:
                return
            request = ActionRequest(
                action=ActionName.GPU_SWITCH.value,
                target=slot.name,
                params={"mode": GpuMode.AI.value},
                actor=POLICY_ACTOR,
                origin=Origin.POLICY,
                reason="a job ended" if why == "job_ended" else "a queued job fits this AI GPU",
            )
        # A task: a switch takes seconds to minutes and must not stall the watch of other GPUs.
        self._tasks[uuid] = asyncio.create_task(self.actions.perform(request))

    async def record_energy(self, nvml: NvmlState) -> None:
        """Book each GPU's energy since the last tick to its mode and job (call once per NVML
        poll tick with the driver's state)."""
        intents = await self.intents.all()
        owners = {
            uuid: Owner(state=intent.state, job_id=self.supervisor.slots[uuid].job_id)
            for uuid, intent in intents.items()
            if uuid in self.supervisor.slots
        }
        await self.energy.observe(list(nvml.gpus), owners)

    async def gpus(self) -> list[GpuWorkload]:
        intents = await self.intents.all()
        jobs = {j.id: j for j in await self.queue.list_jobs()}
        out = []
        for slot in self.supervisor.slots.values():
            intent = intents.get(slot.uuid)
            if intent is None:
                continue
            out.append(
                GpuWorkload(
                    name=slot.name,
                    uuid=slot.uuid,
                    mode=intent.mode,
                    state=intent.state,
                    cordoned=intent.cordoned,
                    switching=slot.switch_id,
                    error=intent.error,
                    failed_step=intent.failed_step,
                    mode_since=intent.mode_since,
                    miner_pid=slot.miner.pid if slot.miner else None,
                    job=jobs.get(slot.job_id) if slot.job_id is not None else None,
                )
            )
        return out

    async def jobs(self) -> list[Job]:
        return await self.queue.list_jobs()

    async def close(self) -> None:
        """Stop watching; leave every miner and job running (a restart re-attaches them).
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.supervisor.release_all()
        self.runner.close()
        self.db.close()

    async def stop_all(self) -> None:
        """Stop every workload (tests and `hashpivot` demo teardown): miners and jobs are
        stopped with their escalation, jobs requeued with progress. Not used on a normal
        console exit, where workloads keep running."""
        if self._closed:
            return
        for slot in self.supervisor.slots.values():
            async with slot.lock:
                await self.supervisor.stop_job(slot)
                await self.supervisor.stop_miner(slot)
