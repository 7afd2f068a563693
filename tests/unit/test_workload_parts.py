"""Small parts of the workloads: payload validators, the job contract helpers, the event bus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionRequest, Origin
from console.workloads.actions import (
    validate_gpu_switch,
    validate_job_reprioritise,
    validate_job_submit,
    validate_job_target,
)
from console.workloads.events import EventBus, Step, StepEvent, StepStatus
from console.workloads.intent import GpuState
from console.workloads.supervisor import fill, read_progress_file


def req(action: str, target: str | None = "g0", **params: Any) -> ActionRequest:
    return ActionRequest(action=action, target=target, params=params, actor="a", origin=Origin.CLI)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"mode": "ai"}, None),
        ({"mode": "mining", "force": True}, None),
        ({"mode": "ai", "job_id": 3}, None),
        ({"op": "retry"}, None),
        ({"op": "abort"}, None),
        ({}, "exactly one of params.mode"),
        ({"mode": "ai", "op": "retry"}, "exactly one of params.mode"),
        ({"mode": "sleep"}, "is not one of mining, ai, idle"),
        ({"op": "reset"}, "is not one of retry, abort, resume"),
        ({"mode": "mining", "job_id": 3}, 'job_id goes with mode "ai"'),
        ({"mode": "ai", "job_id": True}, "job_id must be a job id"),
        ({"mode": "ai", "job_id": "3"}, "job_id must be a job id"),
        ({"mode": "ai", "force": "yes"}, "force must be true or false"),
        ({"mode": "ai", "when": "now"}, "unknown params ['when']"),
    ],
)
def test_gpu_switch_payloads(params: dict[str, Any], problem: str | None) -> None:
    found = validate_gpu_switch(req("gpu.switch", **params))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_gpu_switch_needs_a_target() -> None:
    assert "needs a target" in (validate_gpu_switch(req("gpu.switch", None, mode="ai")) or "")


def test_job_payloads() -> None:
    assert validate_job_submit(req("job.submit", None, argv=["x"], name="n")) is None
    assert "argv" in (validate_job_submit(req("job.submit", None, name="n")) or "")
    assert validate_job_target(req("job.cancel", "12")) is None
    for bad in (None, "", "abc", "0", "-3"):
        assert "job id" in (validate_job_target(req("job.cancel", bad)) or "")
    assert validate_job_reprioritise(req("job.reprioritise", "1", priority=5)) is None
    for priority in (None, "5", 5000, True):
        problem = validate_job_reprioritise(req("job.reprioritise", "1", priority=priority))
        assert problem is not None and "-1000 to 1000" in problem


def test_fill_replaces_only_known_placeholders() -> None:
    argv = ("t-rex", "--api-bind-http", "127.0.0.1:{api_port}", '{"lr": 0.1}', "{other}")
    assert fill(argv, {"api_port": "4067"}) == (
        "t-rex",
        "--api-bind-http",
        "127.0.0.1:4067",
        '{"lr": 0.1}',
        "{other}",
    )


@pytest.mark.parametrize(
    ("content", "progress"),
    [
        ('{"progress": 0.25}', 0.25),
        ("0.5", 0.5),
        ('{"progress": 1.7}', 1.0),
        ("-2", 0.0),
        ('{"progress": "half"}', None),
        ("true", None),
        ('{"progress": NaN}', None),
        ('{"progr', None),
        ("", None),
    ],
)
def test_progress_file(tmp_path: Path, content: str, progress: float | None) -> None:
    path = tmp_path / "progress.json"
    path.write_text(content)
    assert read_progress_file(str(path)) == progress


def test_missing_progress_file_is_no_progress(tmp_path: Path) -> None:
    assert read_progress_file(str(tmp_path / "nope.json")) is None


def event(n: int) -> StepEvent:
    return StepEvent(
        at=float(n),
        gpu="g0",
        uuid="GPU-x",
        step=Step.PRECHECK,
        status=StepStatus.OK,
        state=GpuState.MINING,
        message=str(n),
    )


async def test_event_bus_fans_out_and_drops_oldest_for_slow_subscribers() -> None:
    bus = EventBus(queue_size=2)
    seen: list[str] = []
    got: list[str] = []

    async def consume() -> None:
        async for e in bus.subscribe():
            got.append(e.message)
            if len(got) == 2:
                break

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    with bus.listen(lambda e: seen.append(e.message)):
        for n in range(3):
            bus.publish(event(n))
    bus.publish(event(9))  # after the listener left
    await task
    assert seen == ["0", "1", "2"]
    # The subscriber never ran while four events came: it keeps the newest two.
    assert got == ["2", "9"] and bus.dropped == 2
