"""GPU and job actions on the action path: `gpu.switch`, `job.submit`, `job.cancel`,
`job.reprioritise`, `job.retry`.

`WorkloadActions.register` gives the `ActionPath` a validator and a handler for each. The
validators check the payload's shape before anything runs (so a bad MQTT message gets a clear
INVALID reply and an audit line, and changes nothing); the handlers call the queue or the
switch state machine and turn their outcome into a `HandlerOutcome` with before/after state
for the audit log. Without a `Switcher` (the `hashpivot jobs` CLI, which runs no GPUs) only
the job actions are registered, and cancelling a running job records the request for the
console that runs it.

Payloads:

* `gpu.switch`, target = GPU name or UUID; params: `mode` ("mining" | "ai" | "idle"), or `op`
  ("retry" | "abort" | "resume"); optional `job_id` (int, with mode "ai"), `force` (bool).
* `job.submit`, no target; params: the job (`console.workloads.queue.JobSpec`: argv, name,
  customer, rate_usd_per_gpu_hour, min_vram_bytes, priority, checkpoint_signal, grace_s,
  checkpoint_dir, env).
* `job.cancel`, target = job id.
* `job.reprioritise`, target = job id; params: `priority` (int, -1000..1000).
* `job.retry`, target = job id: a failed job back in line (requeued with its progress and
  checkpoint, its attempts reset); the operator's decision after fixing what failed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from console.actions import ActionName, ActionPath, ActionRequest, HandlerOutcome, ResultCode
from console.workloads.intent import GpuMode
from console.workloads.queue import (
    ACTIVE,
    WAITING,
    IllegalTransition,
    Job,
    JobNotFound,
    JobQueue,
    JobSpecError,
    JobState,
    parse_job_spec,
)
from console.workloads.switch import Switcher, SwitchOp, SwitchResult

_MODES = tuple(m.value for m in GpuMode)
_OPS = (SwitchOp.RETRY.value, SwitchOp.ABORT.value, SwitchOp.RESUME.value)


def validate_gpu_switch(request: ActionRequest) -> str | None:
    if not request.target:
        return "gpu.switch needs a target: the GPU's name or UUID"
    params = request.params
    unknown = set(params) - {"mode", "op", "job_id", "force"}
    if unknown:
        return f"gpu.switch: unknown params {sorted(unknown)}; known: mode, op, job_id, force"
    mode, op = params.get("mode"), params.get("op")
    if (mode is None) == (op is None):
        return (
            f"gpu.switch needs exactly one of params.mode ({', '.join(_MODES)}) or params.op "
            f"({', '.join(_OPS)})"
        )
    if mode is not None and mode not in _MODES:
        return f"gpu.switch: mode {mode!r} is not one of {', '.join(_MODES)}"
    if op is not None and op not in _OPS:
        return f"gpu.switch: op {op!r} is not one of {', '.join(_OPS)}"
    job_id = params.get("job_id")
    if job_id is not None:
        if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 1:
            return "gpu.switch: job_id must be a job id (an integer >= 1)"
        if mode != GpuMode.AI.value:
            return 'gpu.switch: job_id goes with mode "ai"'
    force = params.get("force", False)
    if not isinstance(force, bool):
        return "gpu.switch: force must be true or false"
    return None


def validate_job_submit(request: ActionRequest) -> str | None:
    try:
        parse_job_spec(request.params)
    except JobSpecError as exc:
        return str(exc)
    return None


def _job_id(request: ActionRequest) -> int | None:
    target = request.target
    if target is None or not target.isdigit() or int(target) < 1:
        return None
    return int(target)


def _no_job(job_id: int) -> HandlerOutcome:
    return HandlerOutcome(ok=False, code=ResultCode.NOT_FOUND, message=f"no job {job_id}")


def _refused(message: str, before: Job) -> HandlerOutcome:
    return HandlerOutcome(
        ok=False, code=ResultCode.REFUSED, message=message, before=before.summary()
    )


def validate_job_target(request: ActionRequest) -> str | None:
    if _job_id(request) is None:
        return f"{request.action} needs a target: the job id (a positive integer)"
    return None


def validate_job_reprioritise(request: ActionRequest) -> str | None:
    problem = validate_job_target(request)
    if problem is not None:
        return problem
    priority = request.params.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
        return "job.reprioritise needs params.priority: an integer from -1000 to 1000"
    return None


def switch_outcome(result: SwitchResult) -> HandlerOutcome:
    """A switch result as the action path records it."""
    return HandlerOutcome(
        ok=result.ok,
        code=result.code,
        message=result.message,
        detail={
            "switch_id": result.switch_id,
            "op": result.op.value,
            "mode": result.mode.value if result.mode else None,
            "state": result.state.value if result.state else None,
            "job_id": result.job_id,
            "elapsed_s": round(result.elapsed_s, 3),
            "steps": [
                {
                    "step": e.step.value,
                    "status": e.status.value,
                    "state": e.state.value,
                    "message": e.message,
                }
                for e in result.steps
            ],
        },
        before=result.before,
        after=result.after,
    )


class WorkloadActions:
    """The handlers, bound to the queue and (in the console) the switch state machine."""

    def __init__(self, queue: JobQueue, switcher: Switcher | None = None) -> None:
        self._queue = queue
        self._switcher = switcher

    def register(self, path: ActionPath) -> None:
        handlers: list[
            tuple[ActionName, Callable[[ActionRequest], Awaitable[HandlerOutcome]], Any]
        ] = [
            (ActionName.JOB_SUBMIT, self._submit, validate_job_submit),
            (ActionName.JOB_CANCEL, self._cancel, validate_job_target),
            (ActionName.JOB_REPRIORITISE, self._reprioritise, validate_job_reprioritise),
            (ActionName.JOB_RETRY, self._retry, validate_job_target),
        ]
        if self._switcher is not None:
            handlers.append((ActionName.GPU_SWITCH, self._switch, validate_gpu_switch))
        for name, handler, validate in handlers:
            path.register(name, handler, validate)

    async def _switch(self, request: ActionRequest) -> HandlerOutcome:
        assert self._switcher is not None
        params = request.params
        op = SwitchOp(params["op"]) if params.get("op") else SwitchOp.SWITCH
        result = await self._switcher.switch(
            request.target or "",
            params.get("mode"),
            request.reason,
            request.actor,
            job_id=params.get("job_id"),
            force=bool(params.get("force", False)),
            op=op,
        )
        return switch_outcome(result)

    async def _submit(self, request: ActionRequest) -> HandlerOutcome:
        spec = parse_job_spec(request.params)
        job = await self._queue.submit(spec, submitted_by=request.actor)
        return HandlerOutcome(
            ok=True,
            code=ResultCode.OK,
            message=f"job {job.id} ({job.name}) queued at priority {job.priority}",
            detail={"job_id": job.id, "job": job.summary()},
            after=job.summary(),
        )

    async def _job_now(self, request: ActionRequest) -> tuple[int, Job | None]:
        """The request's job id (checked by `validate_job_target` before dispatch) and that
        job as the queue has it now (None if there is no such job)."""
        job_id = _job_id(request)
        assert job_id is not None
        return job_id, await self._queue.get(job_id)

    async def _cancel(self, request: ActionRequest) -> HandlerOutcome:
        job_id, before = await self._job_now(request)
        if before is None:
            return _no_job(job_id)
        try:
            job = await self._queue.cancel(job_id)
        except IllegalTransition as exc:
            return _refused(str(exc), before)
        if job.state is JobState.CANCELLED:
            return HandlerOutcome(
                ok=True,
                code=ResultCode.OK,
                message=f"job {job_id} cancelled",
                before=before.summary(),
                after=job.summary(),
            )
        # Placed on a GPU: stop it through the state machine when this process runs it.
        switcher = self._switcher
        if (
            switcher is not None
            and job.gpu_uuid is not None
            and job.state in ACTIVE - {JobState.STARTING}
        ):
            slot = switcher.supervisor.slot(job.gpu_uuid)
            if slot is not None and slot.job_id == job_id:
                result = await switcher.cancel_job(job.gpu_uuid, request.reason, request.actor)
                after = await self._queue.get(job_id)
                outcome = switch_outcome(result)
                cancelled = after is not None and after.state is JobState.CANCELLED
                return HandlerOutcome(
                    ok=cancelled,
                    code=ResultCode.OK if cancelled else outcome.code,
                    message=(
                        f"job {job_id} cancelled; {result.message}"
                        if cancelled
                        else f"job {job_id} cancel requested; {result.message}"
                    ),
                    detail=outcome.detail,
                    before=before.summary(),
                    after=after.summary() if after else None,
                )
        return HandlerOutcome(
            ok=True,
            code=ResultCode.OK,
            message=(
                f"job {job_id} is {job.state.value} on {job.gpu_uuid}: cancel requested; the "
                "console running it checkpoints and stops it"
            ),
            before=before.summary(),
            after=job.summary(),
        )

    async def _retry(self, request: ActionRequest) -> HandlerOutcome:
        job_id, before = await self._job_now(request)
        if before is None:
            return _no_job(job_id)
        if before.state is not JobState.FAILED:
            return _refused(
                f"job {job_id} is {before.state.value}; only a failed job can be retried", before
            )
        try:
            job = await self._queue.retry(job_id)
        except IllegalTransition as exc:  # it changed state in between
            return _refused(str(exc), before)
        return HandlerOutcome(
            ok=True,
            code=ResultCode.OK,
            message=(
                f"job {job_id} ({job.name}) back in line at priority {job.priority}, "
                f"resuming from {job.progress:.0%}"
            ),
            before=before.summary(),
            after=job.summary(),
        )

    async def _reprioritise(self, request: ActionRequest) -> HandlerOutcome:
        job_id, before = await self._job_now(request)
        if before is None:
            return _no_job(job_id)
        try:
            job = await self._queue.reprioritise(job_id, int(request.params["priority"]))
        except (IllegalTransition, JobSpecError, JobNotFound) as exc:
            return _refused(str(exc), before)
        note = "" if job.state in WAITING else " (applies the next time it waits in the queue)"
        return HandlerOutcome(
            ok=True,
            code=ResultCode.OK,
            message=f"job {job_id} priority {before.priority} → {job.priority}{note}",
            before=before.summary(),
            after=job.summary(),
        )
