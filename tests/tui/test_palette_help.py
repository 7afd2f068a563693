"""The command palette and the help screen, through Pilot on the live simulated site."""

from __future__ import annotations

import io

from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.widgets import Static

from console.site import Site
from console.tui.app import HashpivotApp
from console.tui.screens.confirm import ConfirmActionScreen
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.help import HelpScreen
from tests.tui.pilot_helpers import open_detail, select_row, wait_for_readings, wait_until


def hits(app: HashpivotApp) -> list[str]:
    if not isinstance(app.screen, CommandPalette):
        return []
    commands = app.screen.query_one(CommandList)
    return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]


async def palette(pilot, app: HashpivotApp, query: str, expect: str | None) -> list[str]:  # type: ignore[no-untyped-def]
    """Open the palette, type `query`, and wait for `expect` among the hits (or for any hits)."""
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    await pilot.press(*query)
    await wait_until(
        pilot,
        lambda: any(expect in h for h in hits(app)) if expect else bool(hits(app)),
        f"palette hit {expect!r}",
    )
    return hits(app)


async def test_palette_actions_jump_sort_and_toggle(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        table = app.fleet.table

        # Actions on the selected row, only those it is offered, behind the same modal.
        await select_row(pilot, app, "d-luxos")  # read only
        found = await palette(pilot, app, "reboot", None)
        assert not any("d-luxos" in h for h in found)
        await pilot.press("escape")
        await select_row(pilot, app, "g-priv")
        await palette(pilot, app, "reboot", "Reboot g-priv")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmActionScreen), "confirm")
        assert "g-priv" in str(app.screen.query_one("#body").render())
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "back to fleet")

        await palette(pilot, app, "toggle problems", "Toggle problems first")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not table.problems_first, "problems first off")

        await palette(pilot, app, "sort fleet by temp", "Sort fleet by Temp")
        await pilot.press("enter")
        await wait_until(pilot, lambda: table.sort_column == "temp", "sorted by temperature")

        await palette(pilot, app, "go to e-avalon", "Go to device e-avalon")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "detail")
        assert isinstance(app.screen, DeviceDetailScreen)
        assert app.screen.device_id == "e-avalon"

        # From a detail screen the palette acts on that device, and jumps replace the screen.
        await palette(pilot, app, "go to b-s21", "Go to device b-s21")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, DeviceDetailScreen) and app.screen.device_id == "b-s21",
            "the other detail",
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "fleet under it")


async def test_help_lists_every_binding_by_screen(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        console = Console(width=80, file=io.StringIO(), record=True)
        for section in app.screen.query(".keys").results(Static):
            console.print(section.content)
        text = console.export_text()
        for title in ("Everywhere", "Fleet", "Device detail", "Confirm an action", "Pick a pool"):
            assert title in text
        for description in (
            "Filter",
            "Problems first",
            "Curtail",
            "Wake",
            "Reboot",
            "Switch pool",
            "Command palette",
            "double-click",
            "Back",
        ):
            assert description in text, description
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "closed")

        # Also from the detail screen, and `?` closes it again.
        await open_detail(pilot, app, "g-priv")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "closed")
