"""The outgoing queue (coalescing, bounds, restore) and the command layer in front of the real
action path and SQLite audit log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from console.actions import ActionName, ActionPath, ActionRequest, HandlerOutcome, ResultCode
from console.audit import AuditLog
from console.headless.commands import CommandHandler, Inbound
from console.headless.outbox import Outbox, Outgoing
from console.headless.topics import Topics
from console.workloads.actions import WorkloadActions, validate_gpu_switch
from console.workloads.db import WorkloadDb
from console.workloads.queue import JobQueue, JobState


def state(topic: str, payload: bytes = b"x") -> Outgoing:
    return Outgoing(topic, payload, 0, True)


def event(n: int) -> Outgoing:
    return Outgoing("events", str(n).encode(), 1, False)


def test_outbox_keeps_only_the_latest_state_per_topic() -> None:
    box = Outbox(100)
    for i in range(5):
        box.put_state(state("a", str(i).encode()))
        box.put_state(state("b", str(i).encode()))
    box.put_event(event(1))
    assert len(box) == 3 and box.coalesced == 8
    taken = box.take_all()
    assert taken[0] == event(1)  # events first
    assert [(m.topic, m.payload) for m in taken[1:]] == [("a", b"4"), ("b", b"4")]
    assert len(box) == 0


def test_outbox_bound_drops_and_counts() -> None:
    box = Outbox(3)
    box.put_state(state("a"))
    box.put_event(event(1))
    box.put_event(event(2))
    box.put_state(state("b"))  # full: a new state topic is dropped
    box.put_event(event(3))  # full: the oldest event goes
    box.put_state(state("a", b"new"))  # an existing topic still coalesces
    assert box.dropped == 2 and box.coalesced == 1
    assert box.take_all() == [event(2), event(3), state("a", b"new")]


def test_outbox_restore_puts_unsent_back_unless_superseded() -> None:
    box = Outbox(10)
    box.put_state(state("a", b"1"))
    box.put_state(state("b", b"1"))
    box.put_event(event(1))
    unsent = box.take_all()
    box.put_state(state("a", b"2"))  # newer than what failed to go out
    box.put_event(event(2))
    box.restore(unsent)
    taken = box.take_all()
    assert taken == [event(1), event(2), state("b", b"1"), state("a", b"2")]
    assert box.coalesced == 1


async def test_outbox_wait_wakes_on_put() -> None:
    box = Outbox(10)
    waiter = asyncio.create_task(box.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    box.put_state(state("a"))
    await asyncio.wait_for(waiter, 1)


# ---- commands -------------------------------------------------------------------------------

TOPICS = Topics("hp", "north")


class Handlers:
    """Records what reached the action path's handler (hardware is the integration tests')."""

    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []
        self.release = asyncio.Event()
        self.release.set()

    async def curtail(self, request: ActionRequest) -> HandlerOutcome:
        self.requests.append(request)
        await self.release.wait()
        return HandlerOutcome(ok=True, code=ResultCode.OK, message=f"{request.target}: curtailed")


@pytest.fixture
async def path(tmp_path: Path) -> AsyncIterator[tuple[ActionPath, AuditLog, Handlers]]:
    audit = AuditLog.in_state_dir(tmp_path)
    actions = ActionPath(audit)
    handlers = Handlers()
    actions.register(ActionName.ASIC_CURTAIL, handlers.curtail)
    yield actions, audit, handlers
    audit.close()


def handler(actions: ActionPath, enabled: bool = True) -> CommandHandler:
    ids = iter(f"auto-{n}" for n in range(100))
    return CommandHandler(
        actions, enabled=enabled, parse_topic=TOPICS.parse_command, make_id=lambda: next(ids)
    )


def cmd(action: str, payload: object, user: str | None = None, **kw: object) -> Inbound:
    topic = TOPICS.command(action) + (f"/{user}" if user else "")
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Inbound(topic=topic, payload=body, **kw)  # type: ignore[arg-type]


async def test_valid_command_goes_through_the_path_and_is_audited(
    path: tuple[ActionPath, AuditLog, Handlers],
) -> None:
    actions, audit, handlers = path
    commands = handler(actions)
    answer = await commands.handle(
        cmd("asic.curtail", {"device": "m1", "request_id": "r1", "actor": "bob", "reason": "peak"})
    )
    assert answer.reply.ok and answer.reply.code == "ok" and answer.reply.request_id == "r1"
    assert answer.reply.audit_id is not None and answer.actor == "bob (unverified)"
    [(_, entry)] = await audit.recent()
    assert (entry.action, entry.target, entry.origin) == ("asic.curtail", "m1", "mqtt")
    assert (entry.actor, entry.reason, entry.request_id) == ("bob (unverified)", "peak", "r1")

    verified = await commands.handle(cmd("asic.curtail", {"device": "m1"}, user="alice"))
    assert verified.actor == "alice" and verified.reply.request_id == "auto-0"
    assert handlers.requests[-1].actor == "alice"


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        ({"device": "m1", "bogus": 1}, "invalid", "unknown field `bogus`"),
        ({"request_id": "r9"}, "invalid", "missing required field `device`"),
        ({"device": 42}, "invalid", "Expected `str`, got `int` - at `$.device`"),
        ({"device": "m/1"}, "invalid", "$.device"),
        (b"{not json", "invalid", "not a JSON object"),
        (b"[1, 2]", "invalid", "Expected `object`"),
    ],
)
async def test_bad_payloads_get_an_error_reply_and_never_reach_the_path(
    path: tuple[ActionPath, AuditLog, Handlers], payload: object, code: str, words: str
) -> None:
    actions, audit, handlers = path
    commands = handler(actions)
    answer = await commands.handle(cmd("asic.curtail", payload))
    assert not answer.reply.ok and answer.reply.code == code
    assert words in answer.reply.message, answer.reply.message
    assert answer.reply.audit_id is None and handlers.requests == []
    assert await audit.recent() == [] and commands.refused == 1


async def test_refusals_before_the_path(path: tuple[ActionPath, AuditLog, Handlers]) -> None:
    actions, audit, handlers = path
    off = await handler(actions, enabled=False).handle(cmd("asic.curtail", {"device": "m1"}))
    assert off.reply.code == "disabled" and "commands = true" in off.reply.message
    commands = handler(actions)
    pool = await commands.handle(cmd("asic.switch_pool", {"device": "m1", "pool": 1}))
    assert pool.reply.code == "not_allowed" and "asic.curtail" in pool.reply.message
    retained = await commands.handle(cmd("asic.curtail", {"device": "m1"}, retain=True))
    assert retained.reply.code == "invalid" and "retain" in retained.reply.message
    deep = await commands.handle(Inbound(topic=TOPICS.base + "/cmd/a/b/c", payload=b"{}"))
    assert deep.reply.code == "invalid" and "not a command topic" in deep.reply.message
    assert handlers.requests == [] and await audit.recent() == []


async def test_unregistered_action_is_unsupported_by_the_path(
    path: tuple[ActionPath, AuditLog, Handlers],
) -> None:
    actions, audit, _ = path
    answer = await handler(actions).handle(
        cmd("gpu.switch", {"device": "gpu0", "mode": "ai", "request_id": "g1"})
    )
    assert answer.reply.code == "unsupported" and answer.reply.audit_id is not None
    [(_, entry)] = await audit.recent()
    assert entry.action == "gpu.switch" and entry.params == {"mode": "ai"}


async def test_correlation_data_is_the_request_id(
    path: tuple[ActionPath, AuditLog, Handlers],
) -> None:
    actions, _, _ = path
    commands = handler(actions)
    answer = await commands.handle(
        cmd(
            "asic.curtail",
            {"device": "m1", "request_id": "ignored"},
            response_topic="me/replies",
            correlation_data=b"corr-7",
        )
    )
    assert answer.reply.request_id == "corr-7" and answer.response_topic == "me/replies"
    binary = await commands.handle(
        cmd("asic.curtail", {"device": "m1"}, correlation_data=b"\x00\xff")
    )
    assert binary.reply.request_id == "00ff"


async def test_redelivered_command_runs_once(path: tuple[ActionPath, AuditLog, Handlers]) -> None:
    actions, audit, handlers = path
    commands = handler(actions)
    handlers.release.clear()
    message = cmd("asic.curtail", {"device": "m1", "request_id": "dup"})
    first = asyncio.create_task(commands.handle(message))
    second = asyncio.create_task(commands.handle(message))  # arrives while the first runs
    await asyncio.sleep(0.05)
    handlers.release.set()
    answers = await asyncio.gather(first, second)
    third = await commands.handle(message)  # and once more, later
    assert len(handlers.requests) == 1 and len(await audit.recent()) == 1
    assert {a.reply.audit_id for a in [*answers, third]} == {answers[0].reply.audit_id}


async def test_a_failing_audit_log_still_gets_a_reply(tmp_path: Path) -> None:
    broken = tmp_path / "audit-is-a-directory"
    broken.mkdir()
    audit = AuditLog(broken)  # SQLite cannot open a directory: every record fails
    actions = ActionPath(audit)
    handlers = Handlers()
    actions.register(ActionName.ASIC_CURTAIL, handlers.curtail)
    try:
        answer = await handler(actions).handle(
            cmd("asic.curtail", {"device": "m1", "request_id": "r-disk"})
        )
    finally:
        audit.close()
    assert not answer.reply.ok and answer.reply.code == "failed"
    assert answer.reply.request_id == "r-disk" and "internal error" in answer.reply.message
    assert "may or may not have run" in answer.reply.message


# ---- GPU and job commands against the workloads' own validators and queue ------------------


async def test_gpu_switch_commands_carry_what_the_workloads_validator_accepts(
    path: tuple[ActionPath, AuditLog, Handlers],
) -> None:
    actions, audit, _ = path
    reached: list[ActionRequest] = []

    async def switch(request: ActionRequest) -> HandlerOutcome:
        reached.append(request)
        return HandlerOutcome(ok=True, code=ResultCode.OK, message="switched")

    actions.register(ActionName.GPU_SWITCH, switch, validate_gpu_switch)
    commands = handler(actions)
    for payload, params in [
        ({"device": "g0", "mode": "ai", "job_id": 3}, {"mode": "ai", "job_id": 3}),
        ({"device": "g0", "mode": "mining", "force": True}, {"mode": "mining", "force": True}),
        ({"device": "g0", "op": "retry"}, {"op": "retry"}),
    ]:
        answer = await commands.handle(cmd("gpu.switch", payload))
        assert answer.reply.ok, answer.reply.message
        assert reached[-1].target == "g0" and reached[-1].params == params
    for payload, words in [
        ({"device": "g0"}, "exactly one of `mode`"),
        ({"device": "g0", "mode": "ai", "op": "abort"}, "exactly one of `mode`"),
        ({"device": "g0", "mode": "mining", "job_id": 3}, '`job_id` goes with `mode` "ai"'),
        ({"device": "g0", "mode": "ai", "job_id": "3"}, "Expected `int | null`"),
        ({"device": "g0", "mode": "ai", "job_id": 0}, "Expected `int` >= 1"),
        ({"device": "g0", "op": "reset"}, "$.op"),
    ]:
        answer = await commands.handle(cmd("gpu.switch", payload))
        assert answer.reply.code == "invalid" and words in answer.reply.message, (
            payload,
            answer.reply.message,
        )
    assert len(reached) == 3 and len(await audit.recent()) == 3


async def test_job_commands_reach_the_real_queue(
    tmp_path: Path, path: tuple[ActionPath, AuditLog, Handlers]
) -> None:
    actions, audit, _ = path
    db = WorkloadDb.in_state_dir(tmp_path / "state")
    queue = JobQueue(db, tmp_path / "state" / "jobs")
    WorkloadActions(queue).register(actions)  # as the jobs CLI does: no GPUs to switch
    commands = handler(actions)
    try:
        job = {
            "argv": ["python", "train.py", "--token", "tok-in-argv"],
            "name": "train",
            "customer": "acme",
            "rate_usd_per_gpu_hour": 1.5,
            "min_vram_bytes": 16_000_000_000,
            "priority": 5,
            "env": {"HF_TOKEN": "tok-in-env"},
        }
        submitted = await commands.handle(cmd("job.submit", {"job": job, "request_id": "s1"}))
        assert submitted.reply.ok, submitted.reply.message
        job_id = submitted.reply.detail["job_id"]
        [queued] = await queue.list_jobs()
        assert (queued.id, queued.name, queued.priority) == (job_id, "train", 5)
        assert queued.env == {"HF_TOKEN": "tok-in-env"} and queued.argv[-1] == "tok-in-argv"
        reply = msgspec.json.encode(submitted.reply)
        assert b"tok-in-env" not in reply and b"tok-in-argv" not in reply

        missing = await commands.handle(cmd("job.submit", {"job": {"name": "x"}}))
        assert missing.reply.code == "invalid"
        assert "missing required field `argv` - at `$.job`" in missing.reply.message
        signal = await commands.handle(
            cmd("job.submit", {"job": {"argv": ["x"], "name": "x", "checkpoint_signal": "KILL"}})
        )
        assert signal.reply.code == "invalid" and "checkpoint_signal" in signal.reply.message

        raised = await commands.handle(cmd("job.reprioritise", {"job_id": job_id, "priority": 50}))
        assert raised.reply.ok, raised.reply.message
        [queued] = await queue.list_jobs()
        assert queued.priority == 50
        too_high = await commands.handle(
            cmd("job.reprioritise", {"job_id": job_id, "priority": 5000})
        )
        assert too_high.reply.code == "invalid" and "$.priority" in too_high.reply.message

        as_text = await commands.handle(cmd("job.cancel", {"job_id": str(job_id)}))
        assert as_text.reply.code == "invalid" and "$.job_id" in as_text.reply.message
        cancelled = await commands.handle(cmd("job.cancel", {"job_id": job_id}))
        assert cancelled.reply.ok and cancelled.reply.target == str(job_id)
        [after] = await queue.list_jobs()
        assert after.state is JobState.CANCELLED
        unknown = await commands.handle(cmd("job.cancel", {"job_id": 999}))
        assert unknown.reply.code == "not_found"
        # Only a failed job goes back in line; a cancelled one is refused with the reason.
        refused = await commands.handle(cmd("job.retry", {"job_id": job_id}))
        assert refused.reply.code == "refused" and "only a failed job" in refused.reply.message
        entries = [e for _, e in await audit.recent()]
        assert {e.origin for e in entries} == {"mqtt"}
        # The job's environment may hold credentials: audited by name only.
        [submit_entry] = [e for e in entries if e.action == "job.submit" and e.ok]
        assert submit_entry.params["env"] == {"HF_TOKEN": "<redacted>"}
    finally:
        db.close()
