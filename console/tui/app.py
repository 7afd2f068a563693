"""The Textual application: owns the running site and hands each screen a snapshot once a second.

The site (poller, simulators) runs as one app-level async worker; screens never poll devices.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from textual.app import App
from textual.binding import Binding

from console.config import SiteConfig
from console.model import Snapshot
from console.site import Site, SiteStartError
from console.tui.screens.fleet import FleetScreen

TICK_S = 1.0


class SnapshotSource(Protocol):
    """What the console needs from a site: run it, and read snapshots of it (`Site` is one)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def run(self) -> None: ...

    def snapshot(self) -> Snapshot: ...


class HashpivotApp(App[None]):
    TITLE = "hashpivot"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+c", "quit", "Quit", show=False)]

    def __init__(self, site: SnapshotSource) -> None:
        super().__init__()
        self.site = site
        self.fleet = FleetScreen()

    def on_mount(self) -> None:
        self.push_screen(self.fleet)
        self.run_worker(self._run_site(), name="site", exit_on_error=False)
        # A first repaint soon after start so the operator sees readings within a second or
        # two, then the steady 1 Hz tick.
        self.set_timer(0.3, self.tick)
        self.set_interval(TICK_S, self.tick)

    async def _run_site(self) -> None:
        try:
            async with self.site:
                await self.site.run()
        except SiteStartError as exc:
            self.exit(return_code=2, message=f"hashpivot: {exc}")

    def tick(self) -> None:
        self.fleet.apply(self.site.snapshot())


def run_tui(config: SiteConfig) -> int:
    app = HashpivotApp(Site(config))
    app.run()
    return app.return_code or 0
