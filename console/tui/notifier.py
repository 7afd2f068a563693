"""Turns site events into notifications: the one place the console raises its voice.

The notifier consumes `SiteEvent`s from any producer (the freshness watch on each tick, the
action runner, and the site's `EventHub`, where the GPU path and the job queue publish
`switch_failed` and `job_failed`); it never polls a source itself. A new event kind needs no
change here: it is shown with its own message and severity, titled by `TITLES` when listed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from textual.app import App
from textual.notifications import SeverityLevel

from console.events import EventKind, Severity, SiteEvent

TITLES: dict[str, str] = {
    EventKind.DEVICE_LOST: "Device lost",
    EventKind.DEVICE_BACK: "Device back",
    EventKind.ACTION_FAILED: "Action failed",
    EventKind.SWITCH_FAILED: "GPU switch failed",
    EventKind.JOB_FAILED: "Job failed",
}

_SEVERITY: dict[Severity, SeverityLevel] = {
    Severity.INFO: "information",
    Severity.WARNING: "warning",
    Severity.ERROR: "error",
}

# Faults stay up long enough to be seen by someone who looked away; good news goes quickly.
_TIMEOUT_S: dict[Severity, float] = {
    Severity.INFO: 5.0,
    Severity.WARNING: 15.0,
    Severity.ERROR: 30.0,
}


class Notifier:
    def __init__(self, app: App[Any], keep: int = 200) -> None:
        self._app = app
        self.recent: deque[SiteEvent] = deque(maxlen=keep)
        """The latest events shown, oldest first (what a future event log screen lists)."""

    def publish(self, event: SiteEvent) -> None:
        self.recent.append(event)
        self._app.notify(
            event.message,
            title=TITLES.get(event.kind, event.kind.replace("_", " ").capitalize()),
            severity=_SEVERITY[event.severity],
            timeout=_TIMEOUT_S[event.severity],
            markup=False,
        )

    async def consume(self, events: AsyncIterator[SiteEvent]) -> None:
        """Show every event of a stream until it ends (run it as a worker)."""
        async for event in events:
            self.publish(event)
