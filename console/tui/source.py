"""What the console needs from a site, as protocols: the running `Site` is one, the fixed site
of the screenshot tests is another.

Each protocol names only the calls the TUI makes, so a test or a future remote site (the TUI
as a client of the headless service) implements exactly these and nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt

from console.actions import ActionRequest, ActionResult, AuditEntry
from console.events import SiteEvent
from console.model import DeviceStatus, Snapshot
from console.store import Metric
from console.workloads.events import StepEvent
from console.workloads.queue import Job


class HistoryReader(Protocol):
    def history(
        self, device_id: str, metric: Metric
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]: ...


class ActionPerformer(Protocol):
    async def perform(self, request: ActionRequest) -> ActionResult: ...


class AuditReader(Protocol):
    async def recent(
        self, target: str | None = None, limit: int = 50
    ) -> list[tuple[int, AuditEntry]]: ...


class EventSource(Protocol):
    def subscribe(self) -> AsyncIterator[SiteEvent]: ...


class StepSource(Protocol):
    """The workloads' step events (`console.workloads.events.EventBus`)."""

    def subscribe(self) -> AsyncIterator[StepEvent]: ...


class WorkloadsView(Protocol):
    """What the console reads from the GPU workloads: the AI queue and the step events."""

    @property
    def events(self) -> StepSource: ...

    async def jobs(self) -> list[Job]: ...


class GpuSideView(Protocol):
    @property
    def workloads(self) -> WorkloadsView: ...


class ConsoleSite(Protocol):
    """A site the console can run, watch and act on (`console.site.Site` is one)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def run(self) -> None: ...

    def snapshot(self) -> Snapshot: ...

    @property
    def store(self) -> HistoryReader: ...

    def profit_history(
        self, device_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]: ...

    @property
    def actions(self) -> ActionPerformer: ...

    @property
    def audit(self) -> AuditReader: ...

    @property
    def events(self) -> EventSource: ...

    @property
    def gpus(self) -> GpuSideView | None:
        """The GPU side (NVML, workloads), or None on a site without `[[gpus]]`."""
        ...


class _Index:
    """The device index of the last snapshot looked up (one snapshot per tick, many lookups)."""

    snapshot: Snapshot | None = None
    by_id: dict[str, DeviceStatus] = {}


def find_device(snapshot: Snapshot | None, device_id: str) -> DeviceStatus | None:
    if snapshot is None:
        return None
    if _Index.snapshot is not snapshot:
        _Index.by_id = {d.device_id: d for d in snapshot.devices}
        _Index.snapshot = snapshot
    return _Index.by_id.get(device_id)
