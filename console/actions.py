"""The single action path: every command an operator or automation gives goes through here.

The TUI, the MQTT command handler and the CLI all build an `ActionRequest` and call
`ActionPath.perform`. The path checks the action is one it knows, runs that action's
validator, writes who / when / why / what to the audit log, runs the handler, writes the
result (with the before / after state the handler reports), and returns an `ActionResult`
that the caller must look at: `perform` never raises for an action that failed, it says so.

Handlers are registered by the parts of the console that own the hardware or the queue
(`console.site` for ASIC controls, `console.workloads` for GPU switching and jobs), so this
module knows nothing about drivers and stays importable by every presenter.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import msgspec


class ActionName(StrEnum):
    """The allow-list. Anything else is refused before it reaches a handler."""

    GPU_SWITCH = "gpu.switch"  # params: mode ("mining" | "ai" | "idle"), job_id?, force?
    ASIC_CURTAIL = "asic.curtail"
    ASIC_WAKE = "asic.wake"
    ASIC_REBOOT = "asic.reboot"
    ASIC_SWITCH_POOL = "asic.switch_pool"  # params: pool (int, the firmware's pool index)
    JOB_SUBMIT = "job.submit"  # params: the job definition (see console.workloads)
    JOB_CANCEL = "job.cancel"  # target: job id
    JOB_REPRIORITISE = "job.reprioritise"  # target: job id; params: priority (int)
    JOB_RETRY = "job.retry"  # target: job id (a failed job back in line, attempts reset)


class Origin(StrEnum):
    TUI = "tui"
    MQTT = "mqtt"
    CLI = "cli"
    POLICY = "policy"  # automation inside the console itself (recovery after a restart)


class ResultCode(StrEnum):
    OK = "ok"
    INVALID = "invalid"  # the request is malformed: unknown action, bad or missing params
    NOT_FOUND = "not_found"  # no such device or job
    NOT_PERMITTED = "not_permitted"  # the device is not privileged, or the firmware refused
    UNSUPPORTED = "unsupported"  # the device cannot do this
    BUSY = "busy"  # another action holds this device's lock
    REFUSED = "refused"  # a pre-check failed (health, dwell time, no job fits, ...)
    FAILED = "failed"  # the action ran and did not reach its goal
    TIMEOUT = "timeout"  # a step did not finish within its deadline


class ActionRequest(msgspec.Struct, frozen=True, kw_only=True):
    action: str  # checked against ActionName by the path, so bad input gets a reply, not a crash
    target: str | None = None  # device id or job id
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    actor: str  # who: an operator name, an MQTT user, "policy"
    origin: Origin
    reason: str = ""
    request_id: str | None = None  # the caller's id, echoed in the result (MQTT correlation)


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    action: str
    target: str | None
    code: ResultCode
    message: str  # one line an operator can act on
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    request_id: str | None = None
    audit_id: int | None = None


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the append-only audit log."""

    at: float  # unix seconds
    actor: str
    origin: str
    action: str
    target: str | None
    reason: str
    params: dict[str, Any]
    ok: bool
    code: str
    message: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    request_id: str | None = None


class AuditSink(Protocol):
    """Where audit entries go (`console.audit.AuditLog` is the SQLite one)."""

    async def record(self, entry: AuditEntry) -> int: ...


class HandlerOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler returns; the path turns it into the `ActionResult` and the audit entry."""

    ok: bool
    code: ResultCode
    message: str
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


Validator = Callable[[ActionRequest], str | None]
"""Returns None when the request is well formed, else the reason it is not."""

Handler = Callable[[ActionRequest], Awaitable[HandlerOutcome]]


REDACTED = "<redacted>"
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key")


def audit_params(params: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters as the audit log keeps them: a job's environment by name only,
    and any parameter named like a credential masked. The audit log is read widely (the
    console's detail screen, MQTT, exports); the values stay where they are needed (the job
    queue launches with them)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name == "env" and isinstance(value, dict):
            out[name] = dict.fromkeys(value, REDACTED)
        elif any(word in name.lower() for word in _SECRET_WORDS):
            out[name] = REDACTED
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class _Registered:
    handler: Handler
    validate: Validator


class ActionPath:
    def __init__(self, audit: AuditSink, clock: Callable[[], float] = time.time) -> None:
        self._audit = audit
        self._clock = clock
        self._handlers: dict[ActionName, _Registered] = {}

    def register(
        self, name: ActionName, handler: Handler, validate: Validator | None = None
    ) -> None:
        if name in self._handlers:
            raise ValueError(f"action {name} already has a handler")
        self._handlers[name] = _Registered(handler, validate or (lambda _req: None))

    def supports(self, name: str) -> bool:
        return any(n.value == name for n in self._handlers)

    async def perform(self, request: ActionRequest) -> ActionResult:
        try:
            name = ActionName(request.action)
        except ValueError:
            known = ", ".join(n.value for n in ActionName)
            return await self._finish(
                request,
                HandlerOutcome(
                    ok=False,
                    code=ResultCode.INVALID,
                    message=f"unknown action {request.action!r}; known actions: {known}",
                ),
            )
        registered = self._handlers.get(name)
        if registered is None:
            outcome = HandlerOutcome(
                ok=False,
                code=ResultCode.UNSUPPORTED,
                message=f"action {name} is not available on this site",
            )
            return await self._finish(request, outcome)
        problem = registered.validate(request)
        if problem is not None:
            outcome = HandlerOutcome(ok=False, code=ResultCode.INVALID, message=problem)
            return await self._finish(request, outcome)
        try:
            outcome = await registered.handler(request)
        except Exception as exc:  # a handler bug must still give the caller a result
            outcome = HandlerOutcome(
                ok=False,
                code=ResultCode.FAILED,
                message=f"{name} failed: {type(exc).__name__}: {exc}",
            )
        return await self._finish(request, outcome)

    async def _finish(self, request: ActionRequest, outcome: HandlerOutcome) -> ActionResult:
        entry = AuditEntry(
            at=self._clock(),
            actor=request.actor,
            origin=request.origin.value,
            action=request.action,
            target=request.target,
            reason=request.reason,
            params=audit_params(request.params),
            ok=outcome.ok,
            code=outcome.code.value,
            message=outcome.message,
            before=outcome.before,
            after=outcome.after,
            request_id=request.request_id,
        )
        audit_id = await self._audit.record(entry)
        return ActionResult(
            ok=outcome.ok,
            action=request.action,
            target=request.target,
            code=outcome.code,
            message=outcome.message,
            detail=outcome.detail,
            request_id=request.request_id,
            audit_id=audit_id,
        )
