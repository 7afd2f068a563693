"""Step events: what the workloads are doing, one event per step, for presenters to follow live.

A switch publishes an event when each step starts and when it ends (ok / failed / skipped),
and one per state change; the supervisor publishes when a miner or job exits on its own, is
restarted, or is re-attached after a restart. The TUI shows them as they come, MQTT publishes
them, tests assert on them. `EventBus.subscribe()` is an async iterator; a slow subscriber
loses its oldest events (counted in `dropped`) instead of slowing a switch down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from enum import StrEnum
from typing import Any

import msgspec

from console.workloads.intent import GpuState


class Step(StrEnum):
    PRECHECK = "precheck"
    CORDON = "cordon"
    STOP_MINER = "stop_miner"
    PREEMPT_JOB = "preempt_job"
    VERIFY_FREE = "verify_free"
    PREPARE = "prepare"
    LAUNCH = "launch"
    CONFIRM = "confirm"
    STEADY = "steady"
    STATE = "state"  # the GPU's state machine moved (detail: from, to)
    # Supervisor, outside any switch:
    MINER_EXITED = "miner_exited"
    JOB_ENDED = "job_ended"
    REATTACHED = "reattached"
    RECOVERED = "recovered"


class StepStatus(StrEnum):
    STARTED = "started"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    INFO = "info"


class StepEvent(msgspec.Struct, frozen=True, kw_only=True):
    at: float  # unix seconds
    gpu: str  # the GPU's configured name
    uuid: str
    step: Step
    status: StepStatus
    state: GpuState  # the GPU's state when the event was made
    message: str  # one line for an operator
    switch_id: str | None = None  # groups the events of one switch
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class EventBus:
    """Fan-out of step events to any number of subscribers and callbacks."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._queues: list[asyncio.Queue[StepEvent]] = []
        self._callbacks: list[Callable[[StepEvent], None]] = []
        self.dropped = 0

    def publish(self, event: StepEvent) -> None:
        for callback in list(self._callbacks):
            callback(event)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    @contextlib.contextmanager
    def listen(self, callback: Callable[[StepEvent], None]) -> Iterator[None]:
        """Call `callback` (synchronously, from the publisher) for each event in the block."""
        self._callbacks.append(callback)
        try:
            yield
        finally:
            self._callbacks.remove(callback)

    async def subscribe(self) -> AsyncIterator[StepEvent]:
        """Every event from now on; stop iterating (break / cancel) to unsubscribe."""
        queue: asyncio.Queue[StepEvent] = asyncio.Queue(self._queue_size)
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)
