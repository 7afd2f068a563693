"""The per-GPU mode state machine and its one entry point, `Switcher.switch`.

Moving a GPU between mining, AI and idle follows nvml-and-gpu-switching.md §7.3, every step
with a deadline and a step event:

    precheck ─▶ cordon ─▶ stop (DRAINING_MINER / PREEMPTING_AI) ─▶ VERIFYING_FREE
        ─▶ PREPARING_AI / PREPARING_MINER ─▶ launch ─▶ confirm ─▶ AI_RUNNING / MINING
                                                   (or IDLE when nothing is to run)

* precheck: NVML answers and the GPU is healthy (not lost, not stale; a critical XID or a
  temperature at the slowdown threshold needs `force`), a queued job fits (AI), a miner is
  configured (mining), the GPU has been in its mode for the minimum dwell time and the
  expected gain clears the margin (both skipped with `force`). A refusal changes nothing.
* cordon: the intent records the target mode and that no workload may be (re)started on the
  GPU by anyone but this switch.
* stop: the miner with its escalation; the AI job with its checkpoint signal and grace, then
  SIGTERM/SIGKILL, requeued with its progress.
* verify free: NVML polled every `verify_poll_s` until no process is on the GPU and memory is
  back at its baseline (+ tolerance). Processes left → FAULTED (listed); memory held with no
  process → NEEDS_RESET. Never launch on a GPU that is not verified free.
* launch + confirm: the new process (or one it spawned) must appear on this GPU and on no
  other; otherwise it is killed and the GPU FAULTED.
* steady: an AI job is `running`; a miner must report hashrate > 0 through its API.

A failure leaves the GPU in a holding state (FAULTED / NEEDS_RESET / LOST) with the reason and
the step, still cordoned; `retry` runs the switch again towards the intended mode, `abort`
towards the mode it came from (both only after verifying free again). The GPU lost at any
point → LOST. One switch per GPU at a time: a second one gets BUSY at once. Every state change
is persisted (`IntentStore`) before the step that follows it, so a console killed mid-switch
resumes from where it was.

Callers (TUI, MQTT, CLI) do not call this directly: they perform `gpu.switch` on the action
path (`console.workloads.actions`), which audits the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec
import psutil

from console.actions import ResultCode
from console.config import SiteConfig
from console.workloads.events import EventBus, Step, StepEvent, StepStatus
from console.workloads.intent import (
    STEADY,
    STEADY_STATE_OF,
    GpuIntent,
    GpuMode,
    GpuState,
    IntentStore,
)
from console.workloads.ports import GainEstimator, GpuProbe, GpuTuner, MinerProbe
from console.workloads.queue import Job, JobQueue, JobState
from console.workloads.supervisor import GpuSlot, Supervisor
from drivers.gpu_reading import GpuHealth, GpuReading, NvmlState
from drivers.processes import ManagedProcess, ProcessError, StopStep

PROBE_TIMEOUT_S = 10.0
"""Deadline of one NVML read of every GPU (the driver has its own per-tick deadline too)."""

TUNER_TIMEOUT_S = 30.0
MINER_API_TIMEOUT_S = 5.0
MiB = 1024 * 1024


class SwitchOp(StrEnum):
    SWITCH = "switch"  # to the given mode
    RETRY = "retry"  # again towards the intended mode, from a holding or half-done state
    ABORT = "abort"  # back towards the mode before the last switch
    RESUME = "resume"  # after a console restart: finish what was interrupted
    CANCEL_JOB = "cancel_job"  # stop the GPU's job as cancelled, then the next job or idle


class SwitchResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    code: ResultCode
    gpu: str
    uuid: str | None
    switch_id: str
    op: SwitchOp
    mode: GpuMode | None  # the target mode
    from_state: GpuState | None
    state: GpuState | None  # where the GPU ended up
    message: str
    job_id: int | None = None
    steps: tuple[StepEvent, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    elapsed_s: float = 0.0


class _Stop(Exception):
    """A step failed or a precheck refused: where the GPU is left and why."""

    def __init__(self, code: ResultCode, state: GpuState | None, step: Step, message: str):
        super().__init__(message)
        self.code = code
        self.state = state  # None: a refusal, the GPU is left exactly as it was
        self.step = step
        self.message = message


@dataclass
class _Run:
    slot: GpuSlot
    switch_id: str
    op: SwitchOp
    target: GpuMode
    reason: str
    actor: str
    force: bool
    job_id: int | None
    on_step: Callable[[StepEvent], None] | None
    state: GpuState
    started: float
    events: list[StepEvent] = field(default_factory=list)
    job: Job | None = None  # the job this switch placed (reserved, then launched)
    job_crashed: bool = False  # the launched job exited on its own before it showed up
    step: Step = Step.PRECHECK  # the step in progress (for an unexpected failure)
    launched: ManagedProcess | None = None


class Switcher:
    def __init__(
        self,
        config: SiteConfig,
        supervisor: Supervisor,
        probe: GpuProbe,
        *,
        miner_probe: MinerProbe | None = None,
        tuner: GpuTuner | None = None,
        gain: GainEstimator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        self.queue: JobQueue = supervisor.queue
        self.intents: IntentStore = supervisor.intents
        self.events: EventBus = supervisor.events
        self.probe = probe
        self.miner_probe = miner_probe
        self.tuner = tuner
        self.gain = gain
        self._clock = clock
        self._serial = itertools.count(1)

    # -- the entry point -----------------------------------------------------------------------

    async def switch(
        self,
        gpu: str,
        mode: GpuMode | str | None,
        reason: str,
        actor: str,
        *,
        job_id: int | None = None,
        force: bool = False,
        op: SwitchOp = SwitchOp.SWITCH,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> SwitchResult:
        """Move `gpu` (name or UUID) to `mode`; see the module docstring. Never raises for a
        switch that fails: the result says where the GPU is and why."""
        switch_id = f"{int(self._clock())}-{next(self._serial)}"
        slot = self.supervisor.slot(gpu)
        if slot is None:
            return self._plain(
                gpu, None, switch_id, op, None, ResultCode.NOT_FOUND, f"no GPU named {gpu!r}"
            )
        if slot.switch_id is not None:
            return self._plain(
                slot.name,
                slot.uuid,
                switch_id,
                op,
                None,
                ResultCode.BUSY,
                f"{slot.name}: switch {slot.switch_id} is running; wait for it to finish",
            )
        slot.switch_id = switch_id
        try:
            async with slot.lock:  # the watch holds it only for moments
                return await self._run(
                    slot, switch_id, op, mode, reason, actor, force, job_id, on_step
                )
        finally:
            slot.switch_id = None

    async def retry(self, gpu: str, reason: str, actor: str) -> SwitchResult:
        return await self.switch(gpu, None, reason, actor, op=SwitchOp.RETRY)

    async def abort(self, gpu: str, reason: str, actor: str) -> SwitchResult:
        return await self.switch(gpu, None, reason, actor, op=SwitchOp.ABORT)

    async def cancel_job(self, gpu: str, reason: str, actor: str) -> SwitchResult:
        return await self.switch(gpu, GpuMode.AI, reason, actor, op=SwitchOp.CANCEL_JOB)

    def busy(self, gpu: str) -> bool:
        slot = self.supervisor.slot(gpu)
        return slot is not None and slot.switch_id is not None

    # -- the run -------------------------------------------------------------------------------

    def _plain(
        self,
        gpu: str,
        uuid: str | None,
        switch_id: str,
        op: SwitchOp,
        mode: GpuMode | None,
        code: ResultCode,
        message: str,
    ) -> SwitchResult:
        return SwitchResult(
            ok=code is ResultCode.OK,
            code=code,
            gpu=gpu,
            uuid=uuid,
            switch_id=switch_id,
            op=op,
            mode=mode,
            from_state=None,
            state=None,
            message=message,
        )

    async def _run(
        self,
        slot: GpuSlot,
        switch_id: str,
        op: SwitchOp,
        mode: GpuMode | str | None,
        reason: str,
        actor: str,
        force: bool,
        job_id: int | None,
        on_step: Callable[[StepEvent], None] | None,
    ) -> SwitchResult:
        loop = asyncio.get_running_loop()
        intent = await self.intents.ensure(slot.uuid, GpuMode(slot.config.initial_mode))
        try:
            target = self._target(op, mode, intent)
        except ValueError as exc:
            return self._plain(
                slot.name, slot.uuid, switch_id, op, None, ResultCode.INVALID, f"{slot.name}: {exc}"
            )
        run = _Run(
            slot=slot,
            switch_id=switch_id,
            op=op,
            target=target,
            reason=reason,
            actor=actor,
            force=force,
            job_id=job_id,
            on_step=on_step,
            state=intent.state,
            started=loop.time(),
        )
        before = self._describe(slot, intent)
        try:
            message = await self._flow(run, intent)
        except _Stop as stop:
            await self._undo(run, stop)
            after_intent = await self.intents.get(slot.uuid)
            return self._result(run, intent, before, after_intent, stop.code, stop.message)
        except Exception as exc:
            # A bug or a broken state store: never leave the GPU unguarded without a reason.
            failure = _Stop(
                ResultCode.FAILED,
                GpuState.FAULTED,
                run.step,
                f"{run.step.value} failed unexpectedly: {type(exc).__name__}: {exc}",
            )
            with contextlib.suppress(Exception):
                await self._undo(run, failure)
            after_intent = None
            with contextlib.suppress(Exception):
                after_intent = await self.intents.get(slot.uuid)
            return self._result(run, intent, before, after_intent, failure.code, failure.message)
        after_intent = await self.intents.get(slot.uuid)
        return self._result(run, intent, before, after_intent, ResultCode.OK, message)

    def _target(self, op: SwitchOp, mode: GpuMode | str | None, intent: GpuIntent) -> GpuMode:
        if op is SwitchOp.RETRY or op is SwitchOp.RESUME:
            return intent.mode
        if op is SwitchOp.ABORT:
            return intent.previous_mode or GpuMode.IDLE
        if mode is None:
            raise ValueError("no mode given; use mining, ai or idle")
        try:
            return GpuMode(mode)
        except ValueError:
            raise ValueError(f"unknown mode {mode!r}; use mining, ai or idle") from None

    def _result(
        self,
        run: _Run,
        intent: GpuIntent,
        before: dict[str, Any],
        after: GpuIntent | None,
        code: ResultCode,
        message: str,
    ) -> SwitchResult:
        return SwitchResult(
            ok=code is ResultCode.OK,
            code=code,
            gpu=run.slot.name,
            uuid=run.slot.uuid,
            switch_id=run.switch_id,
            op=run.op,
            mode=run.target,
            from_state=intent.state,
            state=after.state if after else None,
            message=f"{run.slot.name}: {message}",
            job_id=run.job.id if run.job else run.slot.job_id,
            steps=tuple(run.events),
            before=before,
            after=self._describe(run.slot, after) if after else None,
            elapsed_s=asyncio.get_running_loop().time() - run.started,
        )

    def _describe(self, slot: GpuSlot, intent: GpuIntent) -> dict[str, Any]:
        return {
            "state": intent.state.value,
            "mode": intent.mode.value,
            "miner_pid": slot.miner.pid if slot.miner else None,
            "job_id": slot.job_id,
            "job_pid": slot.job.pid if slot.job else None,
            "error": intent.error,
        }

    def _emit(
        self,
        run: _Run,
        step: Step,
        status: StepStatus,
        message: str,
        **detail: Any,
    ) -> None:
        if status is StepStatus.STARTED:
            run.step = step
        event = StepEvent(
            at=self._clock(),
            gpu=run.slot.name,
            uuid=run.slot.uuid,
            step=step,
            status=status,
            state=run.state,
            message=f"{message}",
            switch_id=run.switch_id,
            detail=detail,
        )
        run.events.append(event)
        self.events.publish(event)
        if run.on_step is not None:
            run.on_step(event)

    async def _set_state(self, run: _Run, state: GpuState, note: str = "") -> None:
        if state is run.state:
            return
        previous = run.state
        await self.intents.update(run.slot.uuid, state=state, switch_id=run.switch_id, note=note)
        run.state = state
        self._emit(
            run,
            Step.STATE,
            StepStatus.INFO,
            f"{previous.value} → {state.value}" + (f" ({note})" if note else ""),
            from_state=previous.value,
            to_state=state.value,
        )

    async def _read(self) -> NvmlState:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            return await self.probe.sample()

    @staticmethod
    def _find(nvml: NvmlState, uuid: str) -> GpuReading | None:
        return next((g for g in nvml.gpus if g.static.uuid == uuid), None)

    def _lost(self, run: _Run, step: Step, reading: GpuReading | None) -> _Stop:
        why = reading.error if reading is not None and reading.error else "not seen by NVML"
        return _Stop(
            ResultCode.FAILED,
            GpuState.LOST,
            step,
            f"GPU lost during {step.value} ({why}); no more automation on it: "
            "reboot the host (or nvidia-smi -r if it is still on the bus), then retry",
        )

    # -- the steps -----------------------------------------------------------------------------

    async def _flow(self, run: _Run, intent: GpuIntent) -> str:
        reading = await self._precheck(run, intent)
        noop = self._already_there(run, intent)
        if noop is not None:
            self._emit(run, Step.PRECHECK, StepStatus.OK, noop)
            if intent.mode is not run.target:
                await self.intents.update(
                    run.slot.uuid, mode=run.target, reason=run.reason, actor=run.actor
                )
            return noop
        self._hysteresis(run, intent)
        await self._choose_job(run, intent)
        self._emit(
            run,
            Step.PRECHECK,
            StepStatus.OK,
            "pre-checks passed",
            memory_total_bytes=reading.static.memory_total_bytes,
        )

        # What abort goes back to: the mode it was steady in, else what was recorded before.
        previous = intent.mode if intent.state in STEADY else intent.previous_mode
        await self.intents.update(
            run.slot.uuid,
            mode=run.target,
            cordoned=True,
            previous_mode=previous,
            error=None,
            failed_step=None,
            reason=run.reason,
            actor=run.actor,
        )
        self._emit(
            run,
            Step.CORDON,
            StepStatus.OK,
            f"cordoned: nothing restarts on it; target {run.target.value}",
        )

        await self._stop_workloads(run)
        if self._keeps_job(run):
            # Retry/resume towards AI with its job still running: nothing to stop or verify.
            # A console that died between launch and confirm left it `starting`: confirm now.
            job = await self.queue.get(run.slot.job_id or 0)
            proc = run.slot.job
            if job is not None and proc is not None and job.state is JobState.STARTING:
                run.job, run.launched = job, proc
                await self._confirm(run, proc)
                await self.queue.mark_running(job.id)
            await self._set_state(run, GpuState.AI_RUNNING)
            await self._settle(run, intent)
            return f"job {run.slot.job_id} is still running; kept"
        free = await self._verify_free(run, intent)
        if run.target is GpuMode.IDLE or (run.target is GpuMode.AI and run.job is None):
            await self._set_state(run, GpuState.IDLE)
            await self._settle(run, intent)
            if run.target is GpuMode.AI:
                return "free and waiting for an AI job that fits"
            return "idle"

        preparing = GpuState.PREPARING_AI if run.target is GpuMode.AI else GpuState.PREPARING_MINER
        await self._set_state(run, preparing)
        await self._prepare(run, free)
        proc = await self._launch(run)
        await self._confirm(run, proc)
        if run.target is GpuMode.AI:
            assert run.job is not None
            job = await self.queue.mark_running(run.job.id)
            self._emit(
                run, Step.STEADY, StepStatus.OK, f"job {job.id} ({job.name}) running", job_id=job.id
            )
            await self._set_state(run, GpuState.AI_RUNNING)
            await self._settle(run, intent)
            return f"running job {job.id} ({job.name}), PID {proc.pid}"
        hashrate = await self._wait_hashing(run, proc)
        await self._set_state(run, GpuState.MINING)
        await self._settle(run, intent)
        shown = f" at {hashrate / 1e6:.2f} MH/s" if hashrate else ""
        return f"mining{shown}, PID {proc.pid}"

    async def _precheck(self, run: _Run, intent: GpuIntent) -> GpuReading:
        self._emit(run, Step.PRECHECK, StepStatus.STARTED, f"{run.op.value} to {run.target.value}")
        if (
            run.op in (SwitchOp.RETRY, SwitchOp.ABORT)
            and intent.state in STEADY
            and intent.error is None
        ):
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"nothing to {run.op.value}: it is {intent.state.value}",
            )
        try:
            nvml = await self._read()
        except TimeoutError:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"NVML did not answer within {PROBE_TIMEOUT_S:g} s; nothing was changed",
            ) from None
        if not nvml.available:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"NVML unavailable: {nvml.reason or 'unknown reason'}",
            )
        reading = self._find(nvml, run.slot.uuid)
        if reading is None or reading.health is GpuHealth.LOST:
            stop = self._lost(run, Step.PRECHECK, reading)
            stop.code = ResultCode.REFUSED
            raise stop
        if reading.health is GpuHealth.STALE:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"no fresh NVML data ({reading.error or 'a call hangs'})",
            )
        if reading.health in (GpuHealth.FAULTED, GpuHealth.NEEDS_RESET) and not run.force:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"GPU health is {reading.health.value} "
                f"({reading.error or 'see its XIDs'}); fix it, or force to acknowledge",
            )
        temp = reading.sample.temp_gpu_c if reading.sample else None
        limit = reading.static.temp_slowdown_c
        if temp is not None and limit is not None and temp >= limit and not run.force:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"{temp:.0f} °C is at its slowdown threshold "
                f"({limit:.0f} °C); cool it first, or force",
            )
        if intent.state is GpuState.LOST and run.op is SwitchOp.SWITCH and not run.force:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"it was LOST ({intent.error}); NVML sees it again: "
                "retry or abort to bring it back",
            )
        if run.target is GpuMode.MINING and not run.slot.config.miner_argv:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                "no miner configured (miner_argv in its [[gpus]] entry)",
            )
        run.slot.memory_total_bytes = reading.static.memory_total_bytes
        return reading

    def _already_there(self, run: _Run, intent: GpuIntent) -> str | None:
        if run.op is not SwitchOp.SWITCH or intent.error is not None:
            return None
        slot = run.slot
        miner, job = slot.miner, slot.job
        state = intent.state
        if run.target is GpuMode.MINING and state is GpuState.MINING and miner and miner.alive():
            return f"already mining (PID {miner.pid})"
        if (
            run.target is GpuMode.AI
            and state is GpuState.AI_RUNNING
            and job is not None
            and job.alive()
            and run.job_id in (None, slot.job_id)
        ):
            return f"already running job {slot.job_id}"
        if run.target is GpuMode.IDLE and state is GpuState.IDLE and job is None and miner is None:
            return "already idle"
        return None

    def _hysteresis(self, run: _Run, intent: GpuIntent) -> None:
        if run.force or run.op is not SwitchOp.SWITCH:
            return
        current = {v: k for k, v in STEADY_STATE_OF.items()}.get(intent.state)
        # Dwell protects a running workload; an idle GPU earns nothing, so it may move at once.
        if current is None or current is GpuMode.IDLE or current is run.target:
            return
        dwell_s = self.config.gpu_min_dwell_s(run.slot.config)
        in_mode_s = self._clock() - intent.mode_since
        if in_mode_s < dwell_s:
            raise _Stop(
                ResultCode.REFUSED,
                None,
                Step.PRECHECK,
                f"{current.value} for {in_mode_s / 60:.1f} min; the "
                f"minimum dwell is {dwell_s / 60:.1f} min (force to override)",
            )
        if self.gain is not None:
            gain = self.gain(run.slot.uuid, current, run.target)
            margin = self.config.workloads.min_gain_fraction
            if gain is not None and gain < margin:
                raise _Stop(
                    ResultCode.REFUSED,
                    None,
                    Step.PRECHECK,
                    f"expected gain {gain:+.0%} is below the "
                    f"{margin:.0%} margin (force to override)",
                )

    async def _choose_job(self, run: _Run, intent: GpuIntent) -> None:
        if run.target is not GpuMode.AI:
            return
        slot = run.slot
        keep_running = (
            run.op is not SwitchOp.CANCEL_JOB
            and slot.job is not None
            and slot.job.alive()
            and run.job_id in (None, slot.job_id)
        )
        if keep_running:  # a retry/resume with the job still running: keep it
            return
        job = await self.queue.claim_next(slot.uuid, slot.memory_total_bytes, run.job_id)
        if job is not None:
            run.job = job
            self._emit(
                run,
                Step.PRECHECK,
                StepStatus.INFO,
                f"job {job.id} ({job.name}) reserved",
                job_id=job.id,
            )
            return
        if run.job_id is not None:
            found = await self.queue.get(run.job_id)
            why = (
                "no such job"
                if found is None
                else (
                    f"it is {found.state.value}"
                    if found.state not in (JobState.QUEUED, JobState.REQUEUED)
                    else f"it needs {found.min_vram_bytes / 2**30:.0f} GiB"
                    if found.min_vram_bytes
                    else "it is cancel-requested"
                )
            )
            raise _Stop(
                ResultCode.REFUSED, None, Step.PRECHECK, f"job {run.job_id} cannot run here: {why}"
            )
        # No job: fine when the GPU is already waiting in AI mode, when resuming, or when its
        # job is being cancelled; an operator switching a miner to AI for nothing is refused.
        if run.op in (SwitchOp.RESUME, SwitchOp.CANCEL_JOB, SwitchOp.RETRY) or (
            intent.mode is GpuMode.AI and slot.miner is None
        ):
            return
        memory = slot.memory_total_bytes
        raise _Stop(
            ResultCode.REFUSED,
            None,
            Step.PRECHECK,
            "no queued job fits"
            + (f" in {memory / 2**30:.0f} GiB" if memory else "")
            + "; submit one first",
        )

    async def _stop_workloads(self, run: _Run) -> None:
        slot = run.slot
        if slot.miner is not None:
            await self._set_state(run, GpuState.DRAINING_MINER)
            self._emit(
                run,
                Step.STOP_MINER,
                StepStatus.STARTED,
                f"stopping miner PID {slot.miner.pid}: "
                + ", ".join(f"{s.signal} {s.wait_s:g} s" for s in slot.config.miner_stop),
            )
            outcome = await self.supervisor.stop_miner(slot)
            assert outcome is not None
            if not outcome.stopped:
                await self._raise_if_lost(run, Step.STOP_MINER)
                raise _Stop(
                    ResultCode.FAILED,
                    GpuState.NEEDS_RESET,
                    Step.STOP_MINER,
                    f"miner {outcome.describe()}: stuck in the kernel; "
                    "reset the GPU or reboot, then retry",
                )
            self._emit(
                run,
                Step.STOP_MINER,
                StepStatus.OK,
                outcome.describe(),
                ended_by=outcome.ended_by,
                pid=outcome.pid,
            )
        if slot.job is not None and not self._keeps_job(run):
            await self._set_state(run, GpuState.PREEMPTING_AI)
            job_id = slot.job_id
            self._emit(
                run,
                Step.PREEMPT_JOB,
                StepStatus.STARTED,
                f"job {job_id}: checkpoint signal, then escalation",
                job_id=job_id,
            )
            to = JobState.CANCELLED if run.op is SwitchOp.CANCEL_JOB else JobState.REQUEUED
            stopped = await self.supervisor.stop_job(slot, to)
            if stopped is not None and not stopped.outcome.stopped:
                await self._raise_if_lost(run, Step.PREEMPT_JOB)
                raise _Stop(
                    ResultCode.FAILED,
                    GpuState.NEEDS_RESET,
                    Step.PREEMPT_JOB,
                    f"job {job_id} {stopped.outcome.describe()}: stuck in "
                    "the kernel; reset the GPU or reboot, then retry",
                )
            if stopped is not None:
                job = stopped.job
                how = "checkpointed" if stopped.checkpointed else "did not checkpoint"
                self._emit(
                    run,
                    Step.PREEMPT_JOB,
                    StepStatus.OK,
                    f"job {job.id} {how}: {job.state.value} at {job.progress:.0%} "
                    f"({stopped.outcome.describe()})",
                    job_id=job.id,
                    checkpointed=stopped.checkpointed,
                    progress=job.progress,
                    job_state=job.state.value,
                )

    @staticmethod
    def _keeps_job(run: _Run) -> bool:
        """Towards AI with no new job reserved and the GPU's job alive: it stays."""
        slot = run.slot
        return (
            run.target is GpuMode.AI
            and run.op is not SwitchOp.CANCEL_JOB
            and run.job is None
            and slot.job is not None
            and slot.job.alive()
            and run.job_id in (None, slot.job_id)
        )

    async def _raise_if_lost(self, run: _Run, step: Step) -> None:
        try:
            nvml = await self._read()
        except TimeoutError:
            return
        reading = self._find(nvml, run.slot.uuid)
        if not nvml.available or reading is None or reading.health is GpuHealth.LOST:
            raise self._lost(run, step, reading)

    async def _verify_free(self, run: _Run, intent: GpuIntent) -> GpuReading:
        slot = run.slot
        await self._set_state(run, GpuState.VERIFYING_FREE)
        wl = self.config.workloads
        threshold = (intent.memory_baseline_bytes or 0) + wl.free_memory_tolerance_bytes
        self._emit(
            run,
            Step.VERIFY_FREE,
            StepStatus.STARTED,
            f"waiting for no process and ≤ {threshold / MiB:.0f} MiB used "
            f"(up to {wl.verify_free_timeout_s:g} s)",
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wl.verify_free_timeout_s
        last: GpuReading | None = None
        while True:
            try:
                nvml: NvmlState | None = await self._read()
            except TimeoutError:
                nvml = None
            if nvml is not None:
                reading = self._find(nvml, slot.uuid)
                if not nvml.available or reading is None or reading.health is GpuHealth.LOST:
                    raise self._lost(run, Step.VERIFY_FREE, reading)
                last = reading
                sample = reading.sample
                if sample is not None and not sample.processes:
                    used = sample.memory_used_bytes
                    if used is None or used <= threshold:
                        baseline = (
                            used
                            if intent.memory_baseline_bytes is None or used is None
                            else min(used, intent.memory_baseline_bytes)
                        )
                        await self.intents.update(slot.uuid, memory_baseline_bytes=baseline)
                        shown = "memory not reported" if used is None else f"{used / MiB:.0f} MiB"
                        self._emit(
                            run,
                            Step.VERIFY_FREE,
                            StepStatus.OK,
                            f"free: no process, {shown}",
                            memory_used_bytes=used,
                        )
                        return reading
            if loop.time() >= deadline:
                break
            await asyncio.sleep(wl.verify_poll_s)
        sample = last.sample if last is not None else None
        if sample is not None and sample.processes:
            names = [p.name or await self._process_name(p.pid) for p in sample.processes]
            listed = ", ".join(
                f"{p.pid} ({name})" for p, name in zip(sample.processes, names, strict=True)
            )
            raise _Stop(
                ResultCode.TIMEOUT,
                GpuState.FAULTED,
                Step.VERIFY_FREE,
                f"still on the GPU after {wl.verify_free_timeout_s:g} s: "
                f"PID {listed}; stop them, then retry",
            )
        if sample is not None and sample.memory_used_bytes is not None:
            raise _Stop(
                ResultCode.FAILED,
                GpuState.NEEDS_RESET,
                Step.VERIFY_FREE,
                f"{sample.memory_used_bytes / MiB:.0f} MiB still allocated "
                "with no process on the GPU; reset it (nvidia-smi -r) or reboot, "
                "then retry",
            )
        raise _Stop(
            ResultCode.TIMEOUT,
            GpuState.FAULTED,
            Step.VERIFY_FREE,
            f"NVML gave no usable reading within {wl.verify_free_timeout_s:g} s",
        )

    async def _process_name(self, pid: int) -> str:
        def name() -> str:
            try:
                return str(psutil.Process(pid).name())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return "?"

        result: str = await self.supervisor.runner.call(name)
        return result

    async def _prepare(self, run: _Run, free: GpuReading | None) -> None:
        slot = run.slot
        energy_j = free.sample.energy_j if free is not None and free.sample else None
        limit = (
            slot.config.ai_power_limit_w
            if run.target is GpuMode.AI
            else slot.config.mining_power_limit_w
        )
        if slot.config.privileged and self.tuner is not None:
            try:
                async with asyncio.timeout(TUNER_TIMEOUT_S):
                    done = await self.tuner.prepare(slot.uuid, run.target, limit)
            except Exception as exc:
                raise _Stop(
                    ResultCode.FAILED,
                    GpuState.FAULTED,
                    Step.PREPARE,
                    f"preparing for {run.target.value} failed: {type(exc).__name__}: {exc}",
                ) from exc
            self._emit(run, Step.PREPARE, StepStatus.OK, done, energy_baseline_j=energy_j)
        else:
            self._emit(
                run,
                Step.PREPARE,
                StepStatus.SKIPPED,
                "no hardware writes (privileged = false)",
                energy_baseline_j=energy_j,
            )

    async def _launch(self, run: _Run) -> ManagedProcess:
        slot = run.slot
        try:
            if run.target is GpuMode.AI:
                assert run.job is not None
                proc = await self.supervisor.launch_job(slot, run.job)
                what = f"job {run.job.id} ({run.job.name})"
            else:
                proc = await self.supervisor.start_miner(slot)
                what = "miner"
        except (ProcessError, TimeoutError, OSError) as exc:
            # The job's own command cannot start (no such program): that is the job's fault.
            run.job_crashed = isinstance(exc, ProcessError) and run.job is not None
            raise _Stop(
                ResultCode.FAILED, GpuState.FAULTED, Step.LAUNCH, f"launch failed: {exc}"
            ) from exc
        run.launched = proc
        self._emit(
            run,
            Step.LAUNCH,
            StepStatus.OK,
            f"{what} started, PID {proc.pid}",
            pid=proc.pid,
            log=str(proc.log_path),
        )
        return proc

    async def _confirm(self, run: _Run, proc: ManagedProcess) -> None:
        slot = run.slot
        wl = self.config.workloads
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wl.launch_confirm_timeout_s
        self._emit(
            run,
            Step.CONFIRM,
            StepStatus.STARTED,
            f"waiting for PID {proc.pid} on this GPU only "
            f"(up to {wl.launch_confirm_timeout_s:g} s)",
        )
        while True:
            status = proc.poll()
            if status is not None:
                run.job_crashed = True
                raise _Stop(
                    ResultCode.FAILED,
                    GpuState.FAULTED,
                    Step.CONFIRM,
                    f"PID {proc.pid} exited before it showed on the GPU "
                    f"({status.describe()}); see {proc.log_path}",
                )
            try:
                nvml: NvmlState | None = await self._read()
            except TimeoutError:
                nvml = None
            if nvml is not None:
                reading = self._find(nvml, slot.uuid)
                if not nvml.available or reading is None or reading.health is GpuHealth.LOST:
                    raise self._lost(run, Step.CONFIRM, reading)
                ours = await self.supervisor.runner.descendants(proc.pid)
                here = {p.pid for p in (reading.sample.processes if reading.sample else ())}
                elsewhere = sorted(
                    (g.static.uuid, p.pid)
                    for g in nvml.gpus
                    if g.static.uuid != slot.uuid and g.sample is not None
                    for p in g.sample.processes
                    if p.pid in ours
                )
                if elsewhere:
                    where = ", ".join(f"PID {pid} on {uuid}" for uuid, pid in elsewhere)
                    raise _Stop(
                        ResultCode.FAILED,
                        GpuState.FAULTED,
                        Step.CONFIRM,
                        f"the new process also opened another GPU ({where}); "
                        "killed it: CUDA_VISIBLE_DEVICES was not honoured",
                    )
                if here & ours:
                    self._emit(
                        run,
                        Step.CONFIRM,
                        StepStatus.OK,
                        f"PID {sorted(here & ours)[0]} on this GPU only",
                        pids=sorted(here & ours),
                    )
                    return
            if loop.time() >= deadline:
                raise _Stop(
                    ResultCode.TIMEOUT,
                    GpuState.FAULTED,
                    Step.CONFIRM,
                    f"PID {proc.pid} did not appear on the GPU within "
                    f"{wl.launch_confirm_timeout_s:g} s; killed it",
                )
            await asyncio.sleep(wl.verify_poll_s)

    async def _wait_hashing(self, run: _Run, proc: ManagedProcess) -> float | None:
        slot = run.slot
        port = slot.config.miner_api_port
        if port is None or self.miner_probe is None:
            self._emit(
                run,
                Step.STEADY,
                StepStatus.SKIPPED,
                "hashing not verified: no miner API port configured"
                if port is None
                else "hashing not verified: no miner API reader",
            )
            return None
        wl = self.config.workloads
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wl.miner_ready_timeout_s
        self._emit(
            run,
            Step.STEADY,
            StepStatus.STARTED,
            f"waiting for hashrate > 0 on 127.0.0.1:{port} (up to {wl.miner_ready_timeout_s:g} s)",
        )
        last = "no answer yet"
        while True:
            status = proc.poll()
            if status is not None:
                raise _Stop(
                    ResultCode.FAILED,
                    GpuState.FAULTED,
                    Step.STEADY,
                    f"miner exited before hashing ({status.describe()}); see {proc.log_path}",
                )
            try:
                async with asyncio.timeout(MINER_API_TIMEOUT_S):
                    hashrate = await self.miner_probe.hashrate_hs(
                        port, slot.config.miner_api_dialect
                    )
            except Exception as exc:  # any API trouble is "not ready yet" until the deadline
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if hashrate is not None and hashrate > 0:
                    self._emit(
                        run,
                        Step.STEADY,
                        StepStatus.OK,
                        f"hashing at {hashrate / 1e6:.2f} MH/s",
                        hashrate_hs=hashrate,
                    )
                    return hashrate
                last = f"hashrate {hashrate}"
            await self._raise_if_lost(run, Step.STEADY)
            if loop.time() >= deadline:
                raise _Stop(
                    ResultCode.TIMEOUT,
                    GpuState.FAULTED,
                    Step.STEADY,
                    f"miner PID {proc.pid} reported no hashrate within "
                    f"{wl.miner_ready_timeout_s:g} s (last: {last}); it is left "
                    "running: retry restarts it, abort stops it",
                )
            await asyncio.sleep(wl.verify_poll_s)

    async def _settle(self, run: _Run, intent: GpuIntent) -> None:
        # Dwell counts from the change of mode: a next job in AI mode does not reset it.
        same_mode = intent.mode is run.target and intent.state in STEADY
        await self.intents.update(
            run.slot.uuid,
            mode=run.target,
            mode_since=intent.mode_since if same_mode else self._clock(),
            cordoned=False,
            error=None,
            failed_step=None,
            switch_id=run.switch_id,
        )

    async def _undo(self, run: _Run, stop: _Stop) -> None:
        """Leave the GPU in the state `stop` names: kill a process that failed its confirm,
        put a reserved job back in line, persist the reason."""
        slot = run.slot
        proc = run.launched
        kill = [StopStep(signal="SIGKILL", wait_s=self.config.workloads.job_kill_wait_s)]
        confirmed_failure = stop.step is Step.CONFIRM or (
            stop.step is Step.STEADY and stop.state is GpuState.LOST
        )
        if proc is not None and confirmed_failure:
            await proc.stop(kill)
            if slot.miner is proc:
                slot.miner = None
                await self.intents.update(slot.uuid, miner=None)
        if run.job is not None:
            job = await self.queue.get(run.job.id)
            if job is not None and job.state is JobState.STARTING:
                if job.process is None and run.job_crashed:
                    await self.queue.end_run(job.id, JobState.FAILED, error=stop.message)
                elif job.process is None:
                    await self.queue.release(job.id, stop.message)
                elif proc is not None and not proc.alive():
                    # Its own crash fails it; a process we killed goes back in line.
                    to = JobState.FAILED if run.job_crashed else JobState.REQUEUED
                    await self.queue.end_run(job.id, to, error=stop.message)
                    slot.job, slot.job_id = None, None
                    await self.intents.update(slot.uuid, job_id=None)
        if stop.state is None:  # a refusal: nothing was changed
            self._emit(run, stop.step, StepStatus.FAILED, stop.message)
            return
        await self._set_state(run, stop.state, note=stop.message)
        await self.intents.update(
            slot.uuid,
            error=stop.message,
            failed_step=stop.step.value,
            reason=run.reason,
            actor=run.actor,
        )
        self._emit(run, stop.step, StepStatus.FAILED, stop.message)
