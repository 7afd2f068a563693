"""The process supervisor: runs one miner or one AI job per GPU, watches them, and re-attaches
them after a console restart so that nothing is lost.

Responsibilities:

* Launch a GPU's miner (argv from `[[gpus]]`, placeholders filled) or an AI job (argv from the
  queue) pinned to the GPU by UUID (`CUDA_VISIBLE_DEVICES`, `CUDA_DEVICE_ORDER=PCI_BUS_ID`),
  output appended to a log file, and record the process identity (PID + create time + command
  line) in SQLite before anything else happens, so a `kill -9` right after still finds it.
* Stop them: a miner with its `miner_stop` sequence; a job with its checkpoint signal, its
  grace, then SIGTERM and SIGKILL; the job is then requeued with the progress it reported.
* Watch (`watch_once`, every `[workloads].watch_interval_s`): a job that exits on its own is
  done (exit 0), failed (anything else) or, when its exit status is unknowable because it was
  re-attached, done if it reported progress 1.0 and requeued otherwise; progress and earnings
  are kept current; a miner that exits while its GPU should be mining is restarted after a
  back-off (through a full switch back to mining, so the GPU is verified free and the new
  miner confirmed), unless the GPU is cordoned (a switch is taking it over).
* Recover (`recover`, at start-up): re-attach every recorded miner and job whose identity
  still matches; requeue every job whose process is gone (progress from its progress file).

Mode changes are not decided here: the switch state machine (`console.workloads.switch`) calls
these methods under the GPU's lock, and the supervisor asks for attention (`on_attention`)
when a GPU needs a decision (a job ended, a cancel was requested, a job waits for an idle
AI GPU).

Job contract (what a job sees): env `HASHPIVOT_JOB_ID`, `HASHPIVOT_CHECKPOINT_DIR`,
`HASHPIVOT_PROGRESS_FILE`, plus the same as argv placeholders `{job_id}`, `{checkpoint_dir}`,
`{progress_file}`, `{gpu_uuid}`. The progress file holds JSON `{"progress": 0.42}` (or a bare
number), 0..1; the checkpoint signal means "checkpoint now and exit 0 within the grace".
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from console.config import GpuConfig, SiteConfig
from console.workloads.events import EventBus, Step, StepEvent, StepStatus
from console.workloads.intent import GpuMode, GpuState, IntentStore
from console.workloads.queue import ACTIVE, Job, JobQueue, JobState
from drivers.processes import (
    ExitStatus,
    LaunchSpec,
    ManagedProcess,
    ProcessRunner,
    StopOutcome,
    StopStep,
    env_for_gpu,
)

DONE_PROGRESS = 0.999
"""A re-attached job (exit status unknown) that reported at least this much finished."""

Attention = Callable[[str, str], Awaitable[None]]
"""(gpu uuid, why) → the owner decides what the GPU does next. Why: "job_ended",
"cancel_requested", "job_waiting", "miner_down" (its back-off has passed)."""


@dataclass
class GpuSlot:
    """The live processes of one GPU (what SQLite cannot hold: the handles)."""

    config: GpuConfig
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    switch_id: str | None = None  # set while a switch holds the lock
    miner: ManagedProcess | None = None
    job: ManagedProcess | None = None
    job_id: int | None = None
    miner_failures: int = 0
    miner_retry_at: float = 0.0
    memory_total_bytes: int | None = None  # learned from NVML by the switch

    @property
    def uuid(self) -> str:
        return self.config.uuid

    @property
    def name(self) -> str:
        return self.config.name


class JobStop(msgspec.Struct, frozen=True, kw_only=True):
    """How a job left its GPU."""

    job: Job  # the job after the stop was booked
    outcome: StopOutcome
    checkpointed: bool  # ended by its checkpoint signal with exit 0 (or unknown, re-attached)


def fill(argv: tuple[str, ...], values: dict[str, str]) -> tuple[str, ...]:
    """Replace `{name}` placeholders; anything else in braces (JSON arguments) is left alone."""
    out = []
    for item in argv:
        for key, value in values.items():
            item = item.replace("{" + key + "}", value)
        out.append(item)
    return tuple(out)


def read_progress_file(path: str) -> float | None:
    """The progress a job reported (0..1), or None when there is none yet or it is unreadable
    (a job mid-write must not fail the watch). Blocking: run on an executor."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("progress")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, float(value)))


class Supervisor:
    def __init__(
        self,
        config: SiteConfig,
        queue: JobQueue,
        intents: IntentStore,
        runner: ProcessRunner,
        events: EventBus,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.queue = queue
        self.intents = intents
        self.runner = runner
        self.events = events
        self._clock = clock
        self.slots: dict[str, GpuSlot] = {gpu.uuid: GpuSlot(gpu) for gpu in config.gpus}
        self._by_name = {slot.name: slot for slot in self.slots.values()}
        self.on_attention: Attention | None = None
        self.logs_dir = config.site.state_path / "logs"
        self.watch_error: str | None = None

    def slot(self, gpu: str) -> GpuSlot | None:
        """A GPU by configured name or by UUID."""
        return self._by_name.get(gpu) or self.slots.get(gpu)

    def _event(
        self, slot: GpuSlot, step: Step, status: StepStatus, state: GpuState, message: str
    ) -> None:
        self.events.publish(
            StepEvent(
                at=self._clock(),
                gpu=slot.name,
                uuid=slot.uuid,
                step=step,
                status=status,
                state=state,
                message=f"{slot.name}: {message}",
            )
        )

    # -- miners --------------------------------------------------------------------------------

    def miner_spec(self, slot: GpuSlot) -> LaunchSpec:
        gpu = slot.config
        # {python}: the interpreter running hashpivot, so a config can start Python miners
        # (the simulated one) without naming a virtual environment's path.
        values = {"gpu_uuid": gpu.uuid, "gpu_name": gpu.name, "python": sys.executable}
        if gpu.miner_api_port is not None:
            values["api_port"] = str(gpu.miner_api_port)
        return LaunchSpec(
            argv=fill(gpu.miner_argv, values),
            env=env_for_gpu(gpu.uuid),
            log_path=str(self.logs_dir / f"miner-{gpu.name}.log"),
        )

    async def start_miner(self, slot: GpuSlot) -> ManagedProcess:
        """Launch the GPU's miner and persist its identity (raises `ProcessError`)."""
        proc = await self.runner.launch(self.miner_spec(slot))
        slot.miner = proc
        await self.intents.update(slot.uuid, miner=proc.identity)
        return proc

    async def stop_miner(self, slot: GpuSlot) -> StopOutcome | None:
        """Stop the miner with the GPU's escalation; None when none was running."""
        proc = slot.miner
        if proc is None:
            return None
        steps = [StopStep(signal=s.signal, wait_s=s.wait_s) for s in slot.config.miner_stop]
        outcome = await proc.stop(steps)
        if outcome.stopped:
            slot.miner = None
            await self.intents.update(slot.uuid, miner=None)
        return outcome

    # -- jobs ----------------------------------------------------------------------------------

    def job_spec(self, slot: GpuSlot, job: Job) -> LaunchSpec:
        values = {
            "job_id": str(job.id),
            "checkpoint_dir": job.checkpoint_dir,
            "progress_file": job.progress_path,
            "gpu_uuid": slot.uuid,
        }
        env = env_for_gpu(
            slot.uuid,
            {
                "HASHPIVOT_JOB_ID": str(job.id),
                "HASHPIVOT_CHECKPOINT_DIR": job.checkpoint_dir,
                "HASHPIVOT_PROGRESS_FILE": job.progress_path,
            },
        )
        # The submitter's env must not unpin the GPU.
        env = {**job.env, **env}
        return LaunchSpec(argv=fill(job.argv, values), env=env, log_path=job.log_path)

    async def launch_job(self, slot: GpuSlot, job: Job) -> ManagedProcess:
        """Launch a `starting` job on the GPU and persist its identity (raises
        `ProcessError`)."""
        await self.runner.call(_make_dirs, job.checkpoint_dir, str(Path(job.progress_path).parent))
        proc = await self.runner.launch(self.job_spec(slot, job))
        slot.job, slot.job_id = proc, job.id
        await self.queue.mark_launched(job.id, proc.identity)
        await self.intents.update(slot.uuid, job_id=job.id)
        return proc

    def job_stop_steps(self, job: Job) -> list[StopStep]:
        wait_s = self.config.workloads.job_kill_wait_s
        steps = [StopStep(signal=job.checkpoint_signal, wait_s=job.grace_s)]
        if job.checkpoint_signal != "SIGTERM":
            steps.append(StopStep(signal="SIGTERM", wait_s=wait_s))
        steps.append(StopStep(signal="SIGKILL", wait_s=wait_s))
        return steps

    async def read_progress(self, job: Job) -> float | None:
        result: float | None = await self.runner.call(read_progress_file, job.progress_path)
        return result

    async def stop_job(self, slot: GpuSlot, to: JobState = JobState.REQUEUED) -> JobStop | None:
        """Preempt the GPU's job (checkpoint signal, grace, SIGTERM, SIGKILL) and book it as
        `to` (requeued, or cancelled) with the progress it reported. A job that reports
        progress 1.0 finished during the grace and is booked done. None when no job runs, or
        when the process outlived SIGKILL (then it stays `preempting` and on the GPU)."""
        proc, job_id = slot.job, slot.job_id
        if proc is None or job_id is None:
            return None
        job = await self.queue.get(job_id)
        if job is None:
            return None
        if job.state is not JobState.PREEMPTING:
            job = await self.queue.mark_preempting(job_id)
        outcome = await proc.stop(self.job_stop_steps(job))
        if not outcome.stopped:
            return JobStop(job=job, outcome=outcome, checkpointed=False)
        exit_status = outcome.exit
        checkpointed = outcome.ended_by == job.checkpoint_signal and (
            exit_status is None or not exit_status.known or exit_status.code == 0
        )
        progress = await self.read_progress(job)
        error = None
        target = to
        if progress is not None and progress >= DONE_PROGRESS:
            target = JobState.DONE
        elif not checkpointed:
            error = (
                f"did not checkpoint within {job.grace_s:g} s of {job.checkpoint_signal} "
                f"({outcome.describe()}); work since its last checkpoint is lost"
            )
        booked = await self.queue.end_run(
            job_id, target, progress=progress, error=error, checkpointed=checkpointed
        )
        slot.job, slot.job_id = None, None
        await self.intents.update(slot.uuid, job_id=None)
        return JobStop(job=booked, outcome=outcome, checkpointed=checkpointed)

    async def book_exit(self, slot: GpuSlot, job: Job, status: ExitStatus) -> Job:
        """A job's process ended on its own: done, failed, or (status unknown) requeued; the GPU is
        left IDLE, free for the next job."""
        progress = await self.read_progress(job)
        error: str | None = None
        if job.cancel_requested:
            target = JobState.CANCELLED
            if job.state is not JobState.PREEMPTING:
                job = await self.queue.mark_preempting(job.id)
        elif status.known and status.code == 0:
            target, progress = JobState.DONE, 1.0
        elif status.known:
            target = JobState.FAILED
            error = f"{status.describe()}; see {job.log_path}"
        elif progress is not None and progress >= DONE_PROGRESS:
            target = JobState.DONE
        else:
            target = JobState.REQUEUED
            error = (
                "its process ended while re-attached (exit status unknown); "
                "it resumes from its checkpoint"
            )
        booked = await self.queue.end_run(job.id, target, progress=progress, error=error)
        slot.job, slot.job_id = None, None
        # One write for both: a reader never sees the GPU running AI with no job on it.
        await self.intents.update(slot.uuid, job_id=None, state=GpuState.IDLE, note="job ended")
        return booked

    # -- watching ------------------------------------------------------------------------------

    async def watch_once(self) -> None:
        """One pass over every GPU (skipping those a switch holds)."""
        active = {j.id: j for j in await self.queue.list_jobs(ACTIVE)}
        waiting = bool(await self.queue.list_jobs([JobState.QUEUED, JobState.REQUEUED]))
        for slot in self.slots.values():
            if slot.lock.locked():
                continue
            attention: str | None = None
            async with slot.lock:
                # Read under the lock: a switch that ran meanwhile changed it.
                intent = await self.intents.get(slot.uuid)
                if intent is None:
                    continue
                attention = await self._watch_miner(
                    slot, intent.mode, intent.state, intent.cordoned
                )
                attention = await self._watch_job(slot, active, intent.state) or attention
            if (
                attention is None
                and waiting
                and intent.mode is GpuMode.AI
                and intent.state is GpuState.IDLE
                and not intent.cordoned
            ):
                attention = "job_waiting"
            if attention is not None and self.on_attention is not None:
                await self.on_attention(slot.uuid, attention)

    async def _watch_miner(
        self, slot: GpuSlot, mode: GpuMode, state: GpuState, cordoned: bool
    ) -> str | None:
        """Notice a miner that exited; ask for a restart (a full switch back to mining, so the
        GPU is verified free and the new miner confirmed) once its back-off has passed."""
        proc = slot.miner
        if proc is not None:
            status = proc.poll()
            if status is None:
                if self._clock() >= slot.miner_retry_at + 60:  # ran a minute: healthy again
                    slot.miner_failures = 0
                return None
            slot.miner = None
            await self.intents.update(slot.uuid, miner=None)
            slot.miner_failures += 1
            backoff_s = min(
                2.0 ** (slot.miner_failures - 1), self.config.workloads.miner_restart_backoff_max_s
            )
            slot.miner_retry_at = self._clock() + backoff_s
            self._event(
                slot,
                Step.MINER_EXITED,
                StepStatus.FAILED,
                state,
                f"miner PID {proc.pid} exited ({status.describe()}); restart in {backoff_s:g} s",
            )
            return None
        if mode is not GpuMode.MINING or state is not GpuState.MINING or cordoned:
            return None
        if self._clock() < slot.miner_retry_at:
            return None
        return "miner_down"

    async def _watch_job(
        self, slot: GpuSlot, active: dict[int, Job], state: GpuState
    ) -> str | None:
        proc, job_id = slot.job, slot.job_id
        if proc is None or job_id is None:
            return None
        job = active.get(job_id)
        if job is None:  # booked elsewhere (should not happen while we hold the handle)
            slot.job, slot.job_id = None, None
            return None
        status = proc.poll()
        if status is not None:
            booked = await self.book_exit(slot, job, status)
            self._event(
                slot,
                Step.JOB_ENDED,
                StepStatus.OK if booked.state is JobState.DONE else StepStatus.FAILED,
                GpuState.IDLE,
                f"job {job.id} ({job.name}) ended: {booked.state.value} ({status.describe()})",
            )
            return "job_ended"
        progress = await self.read_progress(job)
        if progress is not None and abs(progress - job.progress) > 1e-6:
            await self.queue.update_progress(job.id, progress)
        if job.cancel_requested and job.state is not JobState.PREEMPTING:
            return "cancel_requested"
        return None

    async def run(self) -> None:
        """Watch until cancelled."""
        while True:
            try:
                await self.watch_once()
                self.watch_error = None
            except (OSError, TimeoutError, sqlite3.Error) as exc:
                # SQLite busy or /proc trouble: shown by presenters, tried again next tick.
                self.watch_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.config.workloads.watch_interval_s)

    # -- recovery ------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Re-attach recorded miners and jobs (identity-checked) or requeue jobs whose process
        is gone. Run once, before any switch or watch."""
        for slot in self.slots.values():
            intent = await self.intents.ensure(slot.uuid, GpuMode(slot.config.initial_mode))
            if intent.miner is not None:
                proc = await self.runner.attach(intent.miner)
                if proc is not None:
                    slot.miner = proc
                    self._event(
                        slot,
                        Step.REATTACHED,
                        StepStatus.OK,
                        intent.state,
                        f"miner PID {proc.pid} re-attached",
                    )
                else:
                    await self.intents.update(slot.uuid, miner=None)
                    self._event(
                        slot,
                        Step.REATTACHED,
                        StepStatus.FAILED,
                        intent.state,
                        f"miner PID {intent.miner.pid} is gone",
                    )
        for job in await self.queue.list_jobs(ACTIVE):
            await self._recover_job(job)

    async def _recover_job(self, job: Job) -> None:
        slot = self.slots.get(job.gpu_uuid or "")
        state = GpuState.IDLE
        if job.process is None:
            # Reserved for a switch that never launched it.
            await self.queue.release(job.id, "the console restarted before it was launched")
            return
        proc = await self.runner.attach(job.process)
        if proc is not None and slot is not None and slot.job is None:
            slot.job, slot.job_id = proc, job.id
            intent = await self.intents.update(slot.uuid, job_id=job.id)
            self._event(
                slot,
                Step.REATTACHED,
                StepStatus.OK,
                intent.state,
                f"job {job.id} ({job.name}) PID {proc.pid} re-attached",
            )
            return
        if proc is not None:
            # Running on a GPU that is no longer configured (or a second job on one GPU): the
            # console cannot supervise it, so it is stopped and requeued rather than left
            # unguarded.
            await proc.stop(self.job_stop_steps(job))
        progress = await self.runner.call(read_progress_file, job.progress_path)
        target = JobState.REQUEUED
        if progress is not None and progress >= DONE_PROGRESS:
            target = JobState.DONE
        booked = await self.queue.end_run(
            job.id,
            target,
            progress=progress,
            error=None
            if target is JobState.DONE
            else "its process was gone after a console restart; it resumes from its checkpoint",
        )
        if slot is not None:
            intent = await self.intents.update(slot.uuid, job_id=None)
            state = intent.state
            self._event(
                slot,
                Step.RECOVERED,
                StepStatus.INFO,
                state,
                f"job {job.id} ({job.name}) {booked.state.value}, progress {booked.progress:.0%}",
            )

    def release_all(self) -> None:
        """Forget every process without stopping it (console shutdown: they keep running and
        are re-attached by the next start)."""
        for slot in self.slots.values():
            for proc in (slot.miner, slot.job):
                if proc is not None:
                    proc.release()


def _make_dirs(*paths: str) -> None:
    for path in paths:
        Path(path).mkdir(parents=True, exist_ok=True)
