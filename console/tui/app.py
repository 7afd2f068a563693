"""The Textual application: owns the running site and hands each screen a snapshot once a second.

The site (poller, simulators) runs as one app-level async worker; screens never poll devices.
On each tick the app takes one snapshot, turns freshness changes into events for the
notifier, and gives the snapshot to every screen on the stack that shows live data. Screens
ask for a device's detail or an action with messages (`console.tui.messages`); actions run in
`ActionRunner`, through the site's action path, as the operator named at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import time

import numpy as np
from textual import on
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer
from textual.worker import WorkerCancelled, WorkerFailed

from console.config import SiteConfig
from console.events import FreshnessWatch
from console.model import Freshness, Snapshot
from console.site import Site, SiteStartError
from console.tui.action_runner import ActionRunner
from console.tui.commands import ConsoleCommands
from console.tui.keymap import help_sections
from console.tui.messages import OpenDevice, RunAction
from console.tui.notifier import Notifier
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.gpu_switch import GpuSwitchScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.jobs import JobsScreen
from console.tui.screens.what_if import WhatIfScreen
from console.tui.source import ConsoleSite, find_device

TICK_S = 1.0
STARTUP_TICK_S = 0.1
STARTUP_TICKS_FOR_S = 6.0  # at most: covers a first poll's deadline (5 s by default)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
LIVE_SCREENS = (FleetScreen, DeviceDetailScreen, WhatIfScreen, GpuSwitchScreen, JobsScreen)
"""Screens that follow the site: each gets every tick's snapshot (`apply`)."""


def default_operator() -> str:
    """Who the audit log records for actions from this console: the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def settled(snapshot: Snapshot | None) -> bool:
    """Every device has answered or failed once, and every device with a reading is priced:
    what the operator sees no longer changes faster than the steady tick shows."""
    if snapshot is None or any(d.freshness is Freshness.PENDING for d in snapshot.devices):
        return False
    earnings = snapshot.earnings
    if earnings is None:
        return True  # no pricing on this site: readings are all there is
    priced = earnings.inputs.priced
    return not bool(np.isnan(earnings.columns.profit_usd_per_day[priced]).any())


class HashpivotApp(App[None]):
    TITLE = "hashpivot"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("e", "what_if", "What-if"),
        Binding("j", "jobs", "Jobs"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]

    def __init__(
        self, site: ConsoleSite, *, operator: str | None = None, tick_s: float | None = TICK_S
    ) -> None:
        """`tick_s=None` leaves ticking to the caller (`tick()`), for benchmarks."""
        super().__init__()
        self.site = site
        self._tick_s = tick_s
        self.fleet = FleetScreen()
        self.notifier = Notifier(self)
        self.runner = ActionRunner(
            self,
            site.actions,
            self.notifier,
            operator or default_operator(),
            lambda: self.last_snapshot,
            site,
        )
        self.last_snapshot: Snapshot | None = None
        self._freshness = FreshnessWatch()
        self._started_at = time.monotonic()
        self._startup_ticker: Timer | None = None

    def on_mount(self) -> None:
        self._started_at = time.monotonic()
        # `kill`, `systemctl stop` or a dropped SSH session: the same orderly stop as `q`, so
        # switches in flight finish their bookkeeping and a simulated site stops its processes
        # (the default action would end the process mid-write and leave the terminal raw).
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop_on_signal, False)
        loop.add_signal_handler(signal.SIGHUP, self._stop_on_signal, True)
        self.push_screen(self.fleet)
        self.run_worker(self._run_site(), name="site", exit_on_error=False)
        self.run_worker(
            self.notifier.consume(self.site.events.subscribe()), name="events", exit_on_error=False
        )
        if self._tick_s is not None:
            self.set_interval(self._tick_s, self.tick)
            # Until every device has answered (or failed) once, repaint several times a second:
            # the operator sees each device the moment its first reading is in, not up to a
            # whole tick later.
            self._startup_ticker = self.set_interval(STARTUP_TICK_S, self._startup_tick)

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)

    def _stop_on_signal(self, hung_up: bool) -> None:
        self.run_worker(self._stop(hung_up), name="quit", exclusive=True)

    async def _stop(self, hung_up: bool) -> None:
        if not hung_up:
            await self.action_quit()
            return
        # The terminal is gone: Textual cannot restore it and its shutdown blocks on it. Stop
        # the site (the part that matters), then leave at once.
        await self._stop_site()
        os._exit(128 + signal.SIGHUP)

    async def _run_site(self) -> None:
        try:
            async with self.site:
                await self.site.run()
        except SiteStartError as exc:
            self.exit(return_code=2, message=f"hashpivot: {exc}")

    def _startup_tick(self) -> None:
        self.tick()
        late = time.monotonic() - self._started_at > STARTUP_TICKS_FOR_S
        if (late or settled(self.last_snapshot)) and self._startup_ticker is not None:
            self._startup_ticker.stop()

    def tick(self) -> None:
        if not self.is_running:
            # Shutting down: Textual is removing the screens' widgets while they are still on
            # the stack, and a tick landing now would query widgets that are already gone.
            return
        snapshot = self.site.snapshot()
        self.last_snapshot = snapshot
        for event in self._freshness.update(snapshot):
            self.notifier.publish(event)
        # Every live screen on the stack, not only the top one: the screen under a modal is
        # still visible, and the fleet is current the moment the operator goes back to it.
        for screen in self.screen_stack:
            if isinstance(screen, LIVE_SCREENS):
                screen.apply(snapshot)

    @on(OpenDevice)
    def _open_device(self, message: OpenDevice) -> None:
        device = find_device(self.last_snapshot, message.device_id)
        if device is None or self.last_snapshot is None:
            self.notify(f"no device {message.device_id!r} in the latest snapshot", timeout=5)
            return
        screen = DeviceDetailScreen(device, self.last_snapshot, self.site, self.runner.completed)
        if isinstance(self.screen, DeviceDetailScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    @on(RunAction)
    def _run_action(self, message: RunAction) -> None:
        self.runner.start(message.name, message.device_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("what_if", "jobs"):
            # From the live screens only: not over a modal, not from the panel itself.
            return isinstance(self.screen, FleetScreen | DeviceDetailScreen)
        return True

    def action_jobs(self) -> None:
        if isinstance(self.screen, FleetScreen | DeviceDetailScreen):
            screen = JobsScreen(self.site, self.site.actions, self.runner.operator)
            if self.last_snapshot is not None:
                screen.apply(self.last_snapshot)
            self.push_screen(screen)

    def action_what_if(self) -> None:
        if self.last_snapshot is None:
            self.notify("no snapshot yet: the what-if panel opens after the first tick", timeout=4)
            return
        if isinstance(self.screen, FleetScreen | DeviceDetailScreen):
            self.push_screen(WhatIfScreen(self.last_snapshot))

    async def action_quit(self) -> None:
        """Stop the site before leaving, so its shutdown runs to the end (a simulated site
        stops its miners and jobs; a real one closes its databases) rather than being cut
        short when the app's loop ends."""
        self.notify("stopping the site…", timeout=10)
        await self._stop_site()
        self.exit()

    async def _stop_site(self) -> None:
        for worker in self.workers:
            if worker.name == "site":
                worker.cancel()
                with contextlib.suppress(WorkerCancelled, WorkerFailed):
                    await worker.wait()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections(self.BINDINGS)))


def run_tui(config: SiteConfig, operator: str | None = None) -> int:
    app = HashpivotApp(Site(config), operator=operator)
    app.run()
    return app.return_code or 0
