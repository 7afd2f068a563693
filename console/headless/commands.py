"""Commands over MQTT: the allow-list, strict payload validation, and the route to the one
action path.

A command is a non-retained QoS 1 JSON message on `<prefix>/v1/<site>/cmd/<action>` (or
`.../cmd/<action>/<user>`, see below). Every command gets exactly one reply on
`reply/<request id>` (and on the MQTT v5 response topic when the sender gave one), whether it
ran, failed, or never got past validation:

1. The request id is the MQTT v5 correlation data when present, else the payload's
   `request_id`, else one made up here (and then the reply topic tells the sender which).
2. Commands must be enabled (`[mqtt] commands = true`), the action must be on the allow-list,
   and the payload must decode into that action's Struct: unknown keys, missing keys and
   wrong types are refused with msgspec's message, which names the field.
3. A valid command becomes an `ActionRequest` (origin MQTT) and goes through
   `ActionPath.perform`, which validates it against the site, audits it and runs it; a
   not-yet-registered action comes back as `unsupported` from the path itself.

Who is the actor? The broker does not tell a subscriber who published a message. When the
topic ends in a user level (`cmd/<action>/<user>`) and the broker's ACL only lets each user
write under their own name (docs/mqtt.md), that name is verified and recorded as the actor.
Otherwise the payload's `actor` is recorded with the suffix " (unverified)": the ACL on
`cmd/#` is what authenticates, the name is only a label.

Duplicates (QoS 1 may deliver a message twice) are answered from a short memory of recent
replies instead of being performed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from console.actions import ActionPath, ActionRequest, ActionResult, Origin
from console.headless.payloads import Reply
from console.headless.topics import valid_request_id
from console.workloads.queue import JobSpec

ALLOWED_ACTIONS: Final = (
    "gpu.switch",
    "asic.curtail",
    "asic.wake",
    "asic.reboot",
    "job.submit",
    "job.cancel",
    "job.reprioritise",
    "job.retry",
)

log = logging.getLogger("hashpivot.mqtt.commands")

DEDUPE_REPLIES: Final = 1024
"""Recent replies remembered to answer a redelivered command without running it twice."""

DISABLED: Final = "disabled"
FAILED: Final = "failed"
NOT_ALLOWED: Final = "not_allowed"
INVALID: Final = "invalid"

DeviceId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]
JobId = Annotated[int, Meta(ge=1)]
RequestId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
Actor = Annotated[str, Meta(min_length=1, max_length=64)]
Reason = Annotated[str, Meta(max_length=500)]


class _Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    request_id: RequestId | None = None
    """Echoed in the reply and its topic; optional under MQTT v5 with correlation data."""
    actor: Actor | None = None
    """Who asks; recorded as unverified unless the topic carries an ACL-checked user."""
    reason: Reason = ""
    """Why, for the audit log."""

    def target(self) -> str | None:
        return None

    def params(self) -> dict[str, Any]:
        return {}

    def check(self) -> str | None:
        """What is wrong with the payload beyond its types (None: nothing)."""
        return None


class AsicCommand(_Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """asic.curtail, asic.wake, asic.reboot: `{"device": "<name>"}`."""

    device: DeviceId

    def target(self) -> str | None:
        return self.device


class GpuSwitchCommand(_Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """gpu.switch: `{"device": "<name>", "mode": "mining" | "ai" | "idle"}`, or an operation
    on a held or interrupted switch: `{"device": "<name>", "op": "retry" | "abort" |
    "resume"}` (docs/gpu-switching.md)."""

    device: DeviceId
    """The GPU's configured name or its UUID."""
    mode: Literal["mining", "ai", "idle"] | None = None
    op: Literal["retry", "abort", "resume"] | None = None
    job_id: JobId | None = None
    """The queued job to run when switching to ai (default: the queue's choice)."""
    force: bool = False
    """Skip the pre-checks the workloads layer allows to be skipped (never the safety ones)."""

    def target(self) -> str | None:
        return self.device

    def check(self) -> str | None:
        if (self.mode is None) == (self.op is None):
            return "give exactly one of `mode` (mining, ai, idle) or `op` (retry, abort, resume)"
        if self.job_id is not None and self.mode != "ai":
            return '`job_id` goes with `mode` "ai"'
        return None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.mode is not None:
            params["mode"] = self.mode
        if self.op is not None:
            params["op"] = self.op
        if self.job_id is not None:
            params["job_id"] = self.job_id
        if self.force:
            params["force"] = True
        return params


class JobSubmitCommand(_Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """job.submit: `{"job": {...}}`, the job definition (`JobSpec`: argv, name, customer,
    rate_usd_per_gpu_hour, min_vram_bytes, priority, checkpoint_signal, grace_s,
    checkpoint_dir, env)."""

    job: JobSpec

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = msgspec.to_builtins(self.job)
        return params


class JobIdCommand(_Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """job.cancel, job.retry: `{"job_id": <id>}` (the integer id `jobs/state` lists)."""

    job_id: JobId

    def target(self) -> str | None:
        return str(self.job_id)


class JobReprioritiseCommand(_Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """job.reprioritise: `{"job_id": <id>, "priority": <-1000..1000>}` (higher runs first)."""

    job_id: JobId
    priority: Annotated[int, Meta(ge=-1000, le=1000)]

    def target(self) -> str | None:
        return str(self.job_id)

    def params(self) -> dict[str, Any]:
        return {"priority": self.priority}


SCHEMAS: Final[dict[str, type[_Command]]] = {
    "gpu.switch": GpuSwitchCommand,
    "asic.curtail": AsicCommand,
    "asic.wake": AsicCommand,
    "asic.reboot": AsicCommand,
    "job.submit": JobSubmitCommand,
    "job.cancel": JobIdCommand,
    "job.reprioritise": JobReprioritiseCommand,
    "job.retry": JobIdCommand,
}
assert tuple(SCHEMAS) == ALLOWED_ACTIONS

_DECODERS: Final = {action: msgspec.json.Decoder(schema) for action, schema in SCHEMAS.items()}


class _Peek(msgspec.Struct):
    request_id: str | None = None


_peek = msgspec.json.Decoder(_Peek)


@dataclass(frozen=True)
class Inbound:
    """One command message as the transport received it."""

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None
    retain: bool = False


@dataclass(frozen=True)
class Answer:
    """The reply to send, and the action result when the command reached the action path."""

    reply: Reply
    result: ActionResult | None
    actor: str | None
    response_topic: str | None
    correlation_data: bytes | None


def request_id_of(message: Inbound, make_id: Callable[[], str]) -> str:
    """The command's request id: v5 correlation data, else the payload's, else a new one."""
    if message.correlation_data:
        try:
            text = message.correlation_data.decode()
        except UnicodeDecodeError:
            text = ""
        return text if valid_request_id(text) else message.correlation_data[:64].hex()
    try:
        peeked = _peek.decode(message.payload).request_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        peeked = None
    if isinstance(peeked, str) and valid_request_id(peeked):
        return peeked
    return make_id()


def _new_id() -> str:
    return f"auto-{uuid.uuid4().hex[:16]}"


class CommandHandler:
    """Turns inbound command messages into action-path calls and replies."""

    def __init__(
        self,
        actions: ActionPath,
        *,
        enabled: bool,
        parse_topic: Callable[[str], tuple[str, str | None] | None],
        clock: Callable[[], float] = time.time,
        make_id: Callable[[], str] = _new_id,
    ) -> None:
        self._actions = actions
        self.enabled = enabled
        self._parse_topic = parse_topic
        self._clock = clock
        self._make_id = make_id
        self._recent: OrderedDict[str, Reply] = OrderedDict()
        self._running: dict[str, asyncio.Future[Reply]] = {}
        self.received = 0
        self.refused = 0

    def _refuse(
        self, message: Inbound, request_id: str, code: str, text: str, action: str | None = None
    ) -> Answer:
        self.refused += 1
        reply = Reply(
            ts=self._clock(),
            request_id=request_id,
            ok=False,
            code=code,
            message=text,
            action=action,
        )
        return Answer(reply, None, None, message.response_topic, message.correlation_data)

    async def handle(self, message: Inbound) -> Answer:
        self.received += 1
        request_id = request_id_of(message, self._make_id)
        if message.retain:
            # A retained command would replay to every future subscriber: never run one.
            return self._refuse(
                message,
                request_id,
                INVALID,
                "retained command refused: publish commands with retain off",
            )
        parsed = self._parse_topic(message.topic)
        if parsed is None:
            return self._refuse(
                message,
                request_id,
                INVALID,
                f"not a command topic: {message.topic!r}; use .../cmd/<action>",
            )
        action, user = parsed
        if not self.enabled:
            return self._refuse(
                message,
                request_id,
                DISABLED,
                "commands are disabled on this bridge; set commands = true in [mqtt] "
                "(and restrict cmd/# with the broker ACL) to enable them",
                action,
            )
        if action not in SCHEMAS:
            return self._refuse(
                message,
                request_id,
                NOT_ALLOWED,
                f"action {action!r} is not accepted over MQTT; allowed: "
                + ", ".join(ALLOWED_ACTIONS),
                action,
            )
        try:
            command = _DECODERS[action].decode(message.payload)
        except msgspec.ValidationError as exc:
            return self._refuse(
                message, request_id, INVALID, f"invalid {action} payload: {exc}", action
            )
        except msgspec.DecodeError as exc:
            return self._refuse(
                message,
                request_id,
                INVALID,
                f"{action} payload is not a JSON object: {exc}",
                action,
            )
        problem = command.check()
        if problem is not None:
            return self._refuse(
                message, request_id, INVALID, f"invalid {action} payload: {problem}", action
            )
        key = f"{action} {request_id}"
        earlier = self._recent.get(key)
        running = self._running.get(key)
        if earlier is None and running is not None:
            earlier = await asyncio.shield(running)
        if earlier is not None:
            return Answer(earlier, None, None, message.response_topic, message.correlation_data)
        actor = user if user is not None else f"{command.actor or 'anonymous'} (unverified)"
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            try:
                result = await self._actions.perform(
                    ActionRequest(
                        action=action,
                        target=command.target(),
                        params=command.params(),
                        actor=actor,
                        origin=Origin.MQTT,
                        reason=command.reason,
                        request_id=request_id,
                    )
                )
            except Exception as exc:  # the path itself failed (e.g. the audit log's disk)
                log.exception("action path failed for command %s", request_id)
                reply = Reply(
                    ts=self._clock(),
                    request_id=request_id,
                    ok=False,
                    code=FAILED,
                    message=f"internal error: {type(exc).__name__}: {exc}; the action may "
                    "or may not have run: check the device before retrying",
                    action=action,
                    target=command.target(),
                )
                future.set_result(reply)
                return Answer(reply, None, None, message.response_topic, message.correlation_data)
            reply = Reply(
                ts=self._clock(),
                request_id=request_id,
                ok=result.ok,
                code=result.code.value,
                message=result.message,
                action=result.action,
                target=result.target,
                detail=result.detail,
                audit_id=result.audit_id,
            )
            self._remember(key, reply)
            future.set_result(reply)
        finally:
            del self._running[key]
            if not future.done():
                future.cancel()
        return Answer(reply, result, actor, message.response_topic, message.correlation_data)

    def _remember(self, key: str, reply: Reply) -> None:
        self._recent[key] = reply
        self._recent.move_to_end(key)
        while len(self._recent) > DEDUPE_REPLIES:
            self._recent.popitem(last=False)
