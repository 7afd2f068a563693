"""Site events: the faults an operator must hear about, as values, and the hub that carries them.

A presenter (the TUI's notifier, later the MQTT bridge) consumes `SiteEvent`s; it never polls
the parts of the console that produce them. Producers so far:

- `FreshnessWatch`: turns a series of snapshots into `device_lost` / `device_back` events;
- the TUI's action runner: `action_failed` for a command the operator gave there.

Reserved for the GPU path and the job queue (`console.workloads` publishes them on the site's
`EventHub` when it lands): `switch_failed` and `job_failed`. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator
from enum import StrEnum
from operator import is_not

import msgspec

from console.model import DeviceStatus, Freshness, Snapshot


class EventKind(StrEnum):
    DEVICE_LOST = "device_lost"
    DEVICE_BACK = "device_back"
    ACTION_FAILED = "action_failed"
    SWITCH_FAILED = "switch_failed"  # a GPU mode switch stopped short of its target
    JOB_FAILED = "job_failed"  # an AI job ended in error


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class SiteEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something happened that an operator should be told about, once."""

    kind: EventKind
    subject: str  # a device id or job id
    message: str  # one line an operator can act on
    severity: Severity
    at: float  # unix seconds


class EventHub:
    """Fan-out of site events to any number of subscribers.

    Each subscriber has its own bounded queue: a presenter that stops reading loses its oldest
    events rather than growing memory or blocking the producer.
    """

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._queues: list[asyncio.Queue[SiteEvent]] = []

    def publish(self, event: SiteEvent) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncGenerator[SiteEvent, None]:
        """Every event published from now on, until the consumer stops iterating."""
        queue: asyncio.Queue[SiteEvent] = asyncio.Queue(self._queue_size)
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)


class FreshnessWatch:
    """Derives `device_lost` / `device_back` from consecutive snapshots.

    A device is reported lost once, on the tick its freshness first reads `lost` (including a
    device that never answered at all), and back once when it is fresh again. The first
    snapshot seen only sets the baseline for devices that were already polled, so opening the
    console on a site with three dead miners does not raise three alarms that say nothing new;
    they are in the table, problems first.
    """

    def __init__(self) -> None:
        self._lost: dict[str, bool] = {}
        self._seen: list[DeviceStatus | None] = []

    def update(self, snapshot: Snapshot) -> list[SiteEvent]:
        events: list[SiteEvent] = []
        first = not self._lost
        devices = snapshot.devices
        if len(devices) != len(self._seen):
            self._seen = [None] * len(devices)
        # The store hands out the same status object while a device's freshness and reading
        # stay the same: only the others can have turned lost or back (a C-speed scan, so a
        # tick over 10,000 devices costs the devices that changed).
        seen = self._seen
        for i in itertools.compress(range(len(devices)), map(is_not, devices, seen)):
            d = devices[i]
            seen[i] = d
            lost = d.freshness is Freshness.LOST
            was_lost = self._lost.get(d.device_id)
            self._lost[d.device_id] = lost
            if first or was_lost is None or lost == was_lost:
                continue
            if lost:
                reason = f": {d.last_error}" if d.last_error else ""
                events.append(
                    SiteEvent(
                        kind=EventKind.DEVICE_LOST,
                        subject=d.device_id,
                        message=f"{d.name} is lost (no reading within its lost limit){reason}",
                        severity=Severity.ERROR,
                        at=snapshot.taken_at,
                    )
                )
            elif d.freshness is Freshness.FRESH:
                events.append(
                    SiteEvent(
                        kind=EventKind.DEVICE_BACK,
                        subject=d.device_id,
                        message=f"{d.name} is answering again",
                        severity=Severity.INFO,
                        at=snapshot.taken_at,
                    )
                )
            else:
                # Lost → stale is not "back"; keep treating it as lost until it is fresh.
                self._lost[d.device_id] = True
        return events
