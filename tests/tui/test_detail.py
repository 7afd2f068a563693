"""The device detail screen, driven through Pilot against a real site on simulated miners."""

from __future__ import annotations

from console.model import fmt_usd
from console.site import Site
from console.tui.app import HashpivotApp
from console.tui.screens.confirm import ConfirmActionScreen
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.widgets.device_sections import EarningsSection, FieldsSection
from console.tui.widgets.device_table import DeviceTable
from console.tui.widgets.history_panel import HistoryPanel
from console.tui.widgets.live_table import LiveTable
from tests.tui.pilot_helpers import (
    open_detail,
    row_of,
    select_row,
    wait_for_readings,
    wait_until,
)


async def test_enter_opens_a_live_detail_of_every_field_board_and_pool(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        screen = await open_detail(pilot, app, "g-priv")
        reading = screen.device.reading
        assert reading is not None

        boards = screen.query_one("#boards", LiveTable)
        assert boards.row_count == len(reading.boards) > 0
        first = reading.boards[0]
        assert boards.cell_text("0", "chips") == f"{first.chips_found}/{first.chips_expected}"
        pools = screen.query_one("#pools", LiveTable)
        assert pools.row_count == len(reading.pools) > 1
        active = next(p for p in reading.pools if p.active)
        assert pools.cell_text(str(active.index), "active") == "▶ active"
        assert pools.cell_text(str(active.index), "url") == active.url

        fields = screen.query_one(FieldsSection)
        assert fields.value("firmware") == "luxos"
        assert fields.value("address") == f"{live_site.config.asics[6].host}:" + str(
            live_site.config.asics[6].port
        )
        assert fields.value("privileged") == "yes: writes allowed"
        assert "curtail" in fields.value("controls")

        # Live: the history grows tick by tick, in the same widgets (nothing is rebuilt).
        history = screen.query_one(HistoryPanel)
        hashrate = history.line("hashrate")
        before = len(hashrate.values)
        adds = 0
        original_add_row = boards.add_row

        def counting_add_row(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal adds
            adds += 1
            return original_add_row(*args, **kwargs)

        boards.add_row = counting_add_row  # type: ignore[method-assign]
        await wait_until(pilot, lambda: len(hashrate.values) >= before + 2, "new history points")
        assert history.line("temp").values and history.line("power").values
        assert screen.query_one("#boards", LiveTable) is boards and adds == 0

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_click_selects_and_double_click_opens(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        table = app.fleet.table
        await pilot.press("p")  # plain name order: rows stay put when the hung miner goes lost
        await select_row(pilot, app, "a-s19jpro")
        y = row_of(table, "b-s21") + 1  # the header is row 0 of the widget

        await pilot.click(DeviceTable, offset=(3, y))
        await pilot.pause()
        assert table.selected_device_id() == "b-s21"
        assert isinstance(app.screen, FleetScreen)
        # A second single click on the highlighted row still only selects.
        await pilot.click(DeviceTable, offset=(3, y))
        await pilot.pause(0.2)
        assert isinstance(app.screen, FleetScreen)

        await pilot.double_click(DeviceTable, offset=(3, row_of(table, "e-avalon") + 1))
        await wait_until(pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "detail")
        assert isinstance(app.screen, DeviceDetailScreen)
        assert app.screen.device_id == "e-avalon"


async def test_a_read_only_device_offers_no_action(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        screen = await open_detail(pilot, app, "d-luxos")  # LuxOS can, but not privileged
        assert screen.device.controls == ()
        header = str(screen.query_one("#header").render())
        assert "read only" in header
        for key, action in (("c", "asic.curtail"), ("w", "asic.wake"), ("b", "asic.reboot")):
            assert screen.check_action("device_action", (action,)) is False
            await pilot.press(key)
            await pilot.pause(0.1)
            assert not isinstance(app.screen, ConfirmActionScreen)
        footer_keys = {b.binding.key for b in app.screen.active_bindings.values() if b.enabled}
        assert "escape" in footer_keys
        assert await live_site.audit.recent(target="d-luxos") == []

        # The same key on the privileged LuxOS miner opens the confirmation.
        await pilot.press("escape")
        await open_detail(pilot, app, "g-priv")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmActionScreen), "confirm")


async def test_detail_shows_earnings_and_a_live_profit_history(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        screen = await open_detail(pilot, app, "b-s21")
        section = screen.query_one(EarningsSection)
        await wait_until(pilot, lambda: bool(section.fields), "the earnings section")

        def matches_snapshot() -> bool:
            snap = app.last_snapshot
            row = snap.earnings.by_id("b-s21") if snap and snap.earnings else None
            return (
                row is not None
                and section.value("profit") == f"{fmt_usd(row.profit_usd_per_day)}/day"
                and section.value("revenue").startswith(f"{fmt_usd(row.revenue_usd_per_day)}/day")
            )

        await wait_until(pilot, matches_snapshot, "earnings equal to the snapshot's")
        assert section.value("breakeven_power").endswith("/kWh")
        assert section.value("breakeven_hashprice").endswith("/PH/day")
        assert "at $0.0450/kWh × 1.05 overhead" in section.value("power_cost")

        # The site's pricing records a profit point per new reading; the sparkline follows.
        profit = screen.query_one(HistoryPanel).line("profit")
        await wait_until(pilot, lambda: len(profit.values) >= 3, "profit history points")
        times, _ = live_site.profit_history("b-s21")
        assert len(times) >= 3 and (times[1:] > times[:-1]).all()
        assert all(v > -100 for v in profit.values)
        # ...and today's accrual comes from the ledger the site writes.
        await wait_until(
            pilot, lambda: "profit (" in section.value("accrued"), "an accrued figure for today"
        )
