"""The command palette (Ctrl+P): jump to a device, act on the selected device, sort and
toggle problems-first on the fleet table, open the what-if panel or the AI jobs.

Actions come from `console.tui.device_actions.ACTIONS`, offered for the device selected on
the screen the palette was opened from (the highlighted fleet row, or the device on its detail
screen); they open the same confirmation modal as their keys. The device list is read from
the fleet screen's latest snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.model import DeviceStatus
from console.tui.device_actions import offered_actions
from console.tui.messages import OpenDevice, RunAction
from console.tui.rows import COLUMNS
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.fleet import FleetScreen

Command = tuple[str, str, Callable[[], object]]
"""(title, help, callback)"""


class ConsoleCommands(Provider):
    def _fleet(self) -> FleetScreen | None:
        return next((s for s in self.app.screen_stack if isinstance(s, FleetScreen)), None)

    def _selected(self) -> DeviceStatus | None:
        screen = self.screen
        if isinstance(screen, FleetScreen | DeviceDetailScreen):
            return screen.selected_device()
        return None

    def _general(self) -> Iterator[Command]:
        device = self._selected()
        if device is not None:
            for spec in offered_actions(device):
                yield (
                    f"{spec.label} {device.name}",
                    f"{spec.name}; asks for confirmation before anything is sent",
                    partial(self.app.post_message, RunAction(spec.name, device.device_id)),
                )
        fleet = self._fleet()
        if fleet is not None:
            state = "on" if fleet.table.problems_first else "off"
            yield (
                "Toggle problems first",
                f"fleet table: devices that need attention on top (now {state})",
                fleet.action_toggle_problems,
            )
            for column in COLUMNS:  # hidden columns too: the palette is how to reach them
                yield (
                    f"Sort fleet by {column.label}",
                    "fleet table; again to reverse",
                    partial(fleet.sort_by, column.key),
                )
        yield (
            "What-if: BTC price, difficulty, power price",
            "the fleet's profit and each device's change under another market (key e)",
            partial(self.app.run_action, "what_if"),
        )
        yield (
            "Jobs: the AI queue",
            "submit, cancel and reprioritise AI jobs; what each runs on and earns (key j)",
            partial(self.app.run_action, "jobs"),
        )
        yield ("Help: keys by screen", "every key binding", partial(self.app.run_action, "help"))

    def _devices(self) -> Iterator[Command]:
        fleet = self._fleet()
        snapshot = fleet.snapshot if fleet is not None else None
        for d in snapshot.devices if snapshot is not None else ():
            yield (
                f"Go to device {d.name}",
                f"{d.model or 'model unknown'} · {d.observed.value} · {d.freshness.value}",
                partial(self.app.post_message, OpenDevice(d.device_id)),
            )

    async def discover(self) -> Hits:
        for title, help_text, callback in self._general():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for commands in (self._general(), self._devices()):
            for title, help_text, callback in commands:
                score = matcher.match(title)
                if score > 0:
                    yield Hit(score, matcher.highlight(title), callback, help=help_text)
