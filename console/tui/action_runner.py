"""Runs one device action from the console: ask (modals), send through the action path, report.

`ActionRunner.start(name, device_id)` starts a worker that looks the action up in
`console.tui.device_actions.ACTIONS`, checks it is still offered for the device as it is now,
asks the operator (`prepare`; an action with its own `run`, the GPU switch, does the rest
itself and only hands back its result), sends an `ActionRequest` with origin TUI and the operator's
name through `Site.actions.perform`, and reports the `ActionResult`: a notification when it
worked, an `action_failed` event (with the refusal reason) when it did not. Every result is
published on `completed`, which screens subscribe to (the detail screen reloads its audit list).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.signal import Signal

from console.actions import ActionRequest, ActionResult, Origin
from console.events import EventKind, Severity, SiteEvent
from console.model import Snapshot
from console.tui.device_actions import ACTIONS, ActionContext
from console.tui.notifier import Notifier
from console.tui.source import ActionPerformer, ConsoleSite, find_device


class ActionRunner:
    def __init__(
        self,
        app: App[Any],
        performer: ActionPerformer,
        notifier: Notifier,
        operator: str,
        snapshot: Callable[[], Snapshot | None],
        site: ConsoleSite | None = None,
    ) -> None:
        self._app = app
        self._performer = performer
        self._notifier = notifier
        self.operator = operator
        self._snapshot = snapshot
        self._site = site
        self.completed: Signal[ActionResult] = Signal(app, "action-completed")

    def start(self, name: str, device_id: str) -> None:
        self._app.run_worker(self._run(name, device_id), group="device-action", exit_on_error=False)

    async def _run(self, name: str, device_id: str) -> None:
        spec = ACTIONS.get(name)
        snapshot = self._snapshot()
        device = find_device(snapshot, device_id)
        if spec is None or device is None or not spec.offered(device):
            # A key pressed just as the device changed (it went lost, lost privilege): say so.
            self._app.notify(
                f"{name} is not available for {device_id} now", severity="warning", timeout=5
            )
            return
        if spec.run is not None:
            context = ActionContext(
                self._app, spec, device, self.operator, self._performer, self._site, snapshot
            )
            ran = await spec.run(context)
            if ran is not None:
                self.completed.publish(ran)
            return
        prepared = await spec.prepare(self._app, spec, device, self.operator)
        if prepared is None:
            self._app.notify(f"{spec.label} {device.name}: cancelled, nothing sent", timeout=3)
            return
        request = ActionRequest(
            action=spec.name,
            target=device_id,
            params=prepared.params,
            actor=self.operator,
            origin=Origin.TUI,
            reason=prepared.reason,
        )
        self._app.notify(f"{spec.label} {device.name}: sending…", timeout=3)
        result = await self._performer.perform(request)
        self.completed.publish(result)
        if result.ok:
            self._app.notify(result.message, title=f"{spec.label} {device.name}: ok", timeout=8)
        else:
            self._notifier.publish(
                SiteEvent(
                    kind=EventKind.ACTION_FAILED,
                    subject=device_id,
                    message=f"{spec.label} {device.name} not done ({result.code.value}): "
                    f"{result.message}",
                    severity=Severity.ERROR,
                    at=time.time(),
                )
            )
