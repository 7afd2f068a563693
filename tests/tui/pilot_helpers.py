"""Helpers for Pilot tests: wait for the live site to fill the table, move to a device, wait
for a condition. They wait on what the screen shows, never on the wall clock."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot

from console.model import Freshness
from console.tui.app import HashpivotApp
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.widgets.device_table import DeviceTable

Check = Callable[[], object]


async def wait_until(pilot: Pilot[None], check: Check, what: str, polls: int = 200) -> None:
    """Let the app run until `check()` is true (up to `polls` × 50 ms of app time)."""
    for _ in range(polls):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_for_readings(
    pilot: Pilot[None], app: HashpivotApp, rows: int, readings: int
) -> None:
    table = app.fleet.table

    def filled() -> bool:
        snap = app.last_snapshot
        # No device still pending: the hung miner has turned lost and moved to the top, so
        # rows stay where they are from here on.
        return (
            snap is not None
            and table.row_count == rows
            and sum(d.reading is not None for d in snap.devices) >= readings
            and all(d.freshness is not Freshness.PENDING for d in snap.devices)
        )

    await wait_until(pilot, filled, "the fleet table to fill with readings")


def row_of(table: DeviceTable, device_id: str) -> int:
    """Where a device is in the table's display order now."""
    position = table.rows.position_of(device_id)
    assert position is not None, f"{device_id} is not shown"
    return position


async def select_row(pilot: Pilot[None], app: HashpivotApp, device_id: str) -> None:
    """Move the fleet cursor to a device with the arrow keys, as an operator would."""
    table = app.fleet.table
    # Rows may move between the key presses (problems first: a device just went lost): the
    # cursor follows its device, so try again from the top if it landed on another.
    for _ in range(5):
        await pilot.press("ctrl+home")
        for _ in range(row_of(table, device_id)):
            await pilot.press("down")
        await pilot.pause()
        if table.selected_device_id() == device_id:
            return
    raise AssertionError(f"could not select {device_id}")


async def open_detail(pilot: Pilot[None], app: HashpivotApp, device_id: str) -> DeviceDetailScreen:
    await select_row(pilot, app, device_id)
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "the detail screen")
    await pilot.pause()  # let it mount and show the snapshot it opened with
    screen = app.screen
    assert isinstance(screen, DeviceDetailScreen) and screen.device_id == device_id
    return screen


def toasts(app: HashpivotApp) -> list[str]:
    """The text of the notifications on screen now."""
    return [str(toast.render()) for toast in app.screen.query("Toast")]
