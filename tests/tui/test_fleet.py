"""The fleet screen driven through Textual's Pilot, against a real site on real simulated miners."""

from __future__ import annotations

import msgspec
from textual.widgets import Input

from console.model import ErrorKind, fmt_usd
from console.site import Site
from console.tui.app import HashpivotApp, settled
from console.tui.widgets.device_table import DeviceTable
from console.tui.widgets.site_summary import SiteSummary
from console.tui.widgets.virtual_table import GAP
from tests.tui.pilot_helpers import wait_for_readings, wait_until
from tests.tui.site_fixtures import NOW, FixedSite, fixed_market


def cell(table: DeviceTable, row_key: str, column: str) -> str:
    return table.cell_text(row_key, column)


def order(table: DeviceTable) -> list[str]:
    return table.display_ids()


def header_x(table: DeviceTable, column_key: str) -> int:
    """The x of a column's header label on screen (the table starts at x = 0)."""
    x = GAP
    for column in table.columns:
        if column.key == column_key:
            return x + 1
        x += column.width + GAP
    raise AssertionError(f"{column_key} is not on screen")


async def test_live_readings_problems_first_filter_and_sort(live_site: Site) -> None:
    app = HashpivotApp(live_site)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.fleet.table
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await pilot.pause(1.1)  # one more tick so the table shows those readings

        assert cell(table, "b-s21", "state") == "hashing"
        assert cell(table, "b-s21", "hashrate").endswith("TH/s")
        assert cell(table, "c-m50", "fresh") == "fresh"
        # The hung miner has no reading: dashes, never zeros, and the reason in the note.
        assert cell(table, "f-hung", "hashrate") == "—"
        assert cell(table, "f-hung", "profit") == "—"
        assert cell(table, "f-hung", "fresh") in ("lost", "pending")
        # Problems first is on by default: the hung miner leads the table.
        assert order(table)[0] == "f-hung"

        await pilot.press("p")  # problems first off: plain name order
        await pilot.pause()
        assert order(table) == sorted(order(table))

        await pilot.press("slash")
        filter_box = app.screen.query_one("#filter", Input)
        assert filter_box.has_focus
        await pilot.press(*"luxos")  # the firmware: two of the miners run LuxOS
        await pilot.pause()
        assert sorted(order(table)) == ["d-luxos", "g-priv"]
        await pilot.press("ctrl+a", "ctrl+k", *"127.0.0.1")  # a host: the simulators' one
        await pilot.pause()
        assert table.row_count == 7
        await pilot.press(*"9")
        await pilot.pause()
        assert table.row_count == 0
        await pilot.press("ctrl+a", "ctrl+k", *"d-lux")
        await pilot.pause()
        assert order(table) == ["d-luxos"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 7

        # Sort by hashrate by clicking its header, then reverse with `r`. The hung miner (no
        # hashrate) stays last both ways.
        await pilot.click(DeviceTable, offset=(header_x(table, "hashrate"), 0))
        await pilot.pause()
        assert table.sort_column == "hashrate"
        assert order(table)[0] == "e-avalon"  # the 1246 is the slowest model here
        assert order(table)[-1] == "f-hung"
        await pilot.press("r")
        await pilot.pause()
        assert order(table)[0] == "b-s21"  # the S21 is the fastest
        assert order(table)[-1] == "f-hung"
        await pilot.press("s")  # the next column on screen after hashrate: temperature
        await pilot.pause()
        assert table.sort_column == "temp"


async def test_earnings_columns_and_header_totals_follow_the_priced_snapshot(
    live_site: Site,
) -> None:
    app = HashpivotApp(live_site)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.fleet.table
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await pilot.pause(1.1)
        snap = app.last_snapshot
        assert snap is not None and snap.earnings is not None and snap.market is not None
        for device_id in ("a-s19jpro", "b-s21", "e-avalon"):
            money = snap.earnings.by_id(device_id)
            assert money is not None
            assert cell(table, device_id, "revenue") == fmt_usd(money.revenue_usd_per_day)
            assert cell(table, device_id, "cost") == fmt_usd(money.power_cost_usd_per_day)
            assert cell(table, device_id, "profit") == fmt_usd(money.profit_usd_per_day)
            assert cell(table, device_id, "gain") == ""  # ASICs have no other mode

        header = app.fleet.query_one(SiteSummary).text.plain
        totals = snap.earnings.totals
        assert f"revenue {fmt_usd(totals.revenue_usd_per_day)}/day" in header
        assert f"profit {fmt_usd(totals.profit_usd_per_day)}/day" in header
        assert "mining 100% · AI 0%" in header
        # This site configures no market: reference defaults, dated and called stale.
        assert "BTC $91,580 (default 2026-01-12" in header and "stale)" in header
        assert "hashprice $" in header and "power $0.0450/kWh" in header

        # Sort by profit with the palette's command, most profitable first after `r`.
        await pilot.press("p")
        app.fleet.sort_by("profit")
        await pilot.press("r")
        await pilot.pause()
        profits = [
            snap_row.profit_usd_per_day
            for d in order(table)
            if (snap_row := app.last_snapshot.earnings.by_id(d)) is not None  # type: ignore[union-attr]
        ]
        known = [p for p in profits if p is not None]
        assert known == sorted(known, reverse=True) and len(known) >= 5
        assert order(table)[-1] == "f-hung"


async def test_80_columns_show_the_columns_that_fit_and_sort_cycles_through_them(
    live_site: Site,
) -> None:
    app = HashpivotApp(live_site)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.fleet.table
        await wait_for_readings(pilot, app, rows=7, readings=6)
        shown = table.visible_column_keys()
        assert shown[0] == "name" and {"state", "fresh", "hashrate", "power", "profit"} <= set(
            shown
        )
        assert "model" not in shown and "note" not in shown
        seen = []
        for _ in shown:
            await pilot.press("s")
            await pilot.pause()
            seen.append(table.sort_column)
        assert sorted(seen) == sorted(shown), (seen, shown, table.visible_column_keys())
        await pilot.resize_terminal(160, 40)
        await wait_until(pilot, lambda: "model" in table.visible_column_keys(), "wider columns")


async def test_cells_update_in_place_without_rebuilding(live_site: Site) -> None:
    app = HashpivotApp(live_site)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.fleet.table
        await wait_for_readings(pilot, app, rows=7, readings=6)
        resets = 0
        original_reset = table.rows._reset

        def counting_reset(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal resets
            resets += 1
            return original_reset(*args, **kwargs)

        table.rows._reset = counting_reset  # type: ignore[method-assign]
        before = {d: cell(table, d, "hashrate") for d in order(table)}

        def moved() -> bool:
            return any(cell(table, d, "hashrate") != text for d, text in before.items())

        # The simulated miners' hashrate wobbles from poll to poll: cells change, in place.
        await wait_until(pilot, moved, "a hashrate cell to change")
        await pilot.pause(1.1)
        assert resets == 0
        assert set(order(table)) == set(before)
        snap = app.last_snapshot
        assert snap is not None
        for d in snap.devices:
            table_rows = table.rows
            assert table_rows.statuses[table_rows.row_of(d.device_id) or 0] is d


def test_fleet_screen_80x24(snap_compare, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        HashpivotApp(FixedSite(tmp_path)), terminal_size=(80, 24), run_before=_settle
    )


def test_fleet_screen_160x48(snap_compare, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        HashpivotApp(FixedSite(tmp_path)), terminal_size=(160, 48), run_before=_settle
    )


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.5)


async def test_a_tick_renders_only_the_rows_that_changed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    site = FixedSite(tmp_path)
    app = HashpivotApp(site, tick_s=None)
    async with app.run_test(size=(160, 40)) as pilot:
        app.tick()
        await pilot.pause()
        table = app.fleet.table
        painted = table.rows_rendered
        assert painted == 9  # every row (seven miners, two GPUs) is on screen once

        app.tick()  # the same snapshot again
        table.refresh()
        await pilot.pause()
        assert table.rows_rendered == painted

        # One miner reports a new hashrate: its row renders again, no other.
        status = next(d for d in site.snapshot().devices if d.device_id == "r1-s21-02")
        assert status.reading is not None
        faster = msgspec.structs.replace(status.reading, hashrate_5s_hs=205.0e12)
        faster = msgspec.structs.replace(faster, efficiency_j_per_th=17.1)
        site.store.record_ok("r1-s21-02", faster, at=NOW - 2)
        site.reprice()
        app.tick()
        await pilot.pause()
        assert cell(table, "r1-s21-02", "hashrate") == "205.0 TH/s"
        assert table.rows_rendered - painted == 1

        # The BTC price moves: every miner that earns is repriced (five rows: the lost miner
        # is not priced, the sleeping one earns nothing either way, and the GPUs' revenue is
        # another coin's or a job's rate).
        painted = table.rows_rendered
        site.market = fixed_market(btc_price_usd=80_000.0)
        site.reprice()
        app.tick()
        await pilot.pause()
        assert table.rows_rendered - painted == 5


async def test_the_cursor_stays_on_top_until_moved_then_follows_its_device(tmp_path) -> None:  # type: ignore[no-untyped-def]
    site = FixedSite(tmp_path)
    app = HashpivotApp(site, tick_s=None)
    async with app.run_test(size=(160, 40)) as pilot:
        app.tick()
        await pilot.pause()
        table = app.fleet.table
        assert table.cursor == 0 and table.selected_device_id() == order(table)[0]

        # A miner starts failing: it moves up (problems first); the untouched cursor stays on
        # the top row, which is now that miner.
        site.store.record_failure("r1-s21-02", ErrorKind.TIMEOUT, "no reply", at=NOW - 1)
        site.reprice()
        app.tick()
        await pilot.pause()
        assert order(table)[0] == "r1-s21-02" and table.selected_device_id() == "r1-s21-02"

        # Once the operator picks a row, the cursor follows that device when rows move.
        await pilot.press("down", "down")
        picked = table.selected_device_id()
        assert picked is not None and picked != order(table)[0]
        site.store.record_failure("r1-s19jpro-01", ErrorKind.TIMEOUT, "no reply", at=NOW - 1)
        site.reprice()
        app.tick()
        await pilot.pause()
        assert table.selected_device_id() == picked


async def test_start_up_repaints_until_every_device_has_answered_then_settles(
    live_site: Site,
) -> None:
    # The steady tick is a minute away: only the start-up repaints can fill the table, and they
    # stop once every device has answered (or failed) once and every reading is priced.
    app = HashpivotApp(live_site, operator="tester", tick_s=60.0)
    ticks = 0
    tick = app.tick

    def counted() -> None:
        nonlocal ticks
        ticks += 1
        tick()

    app.tick = counted  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await wait_until(pilot, lambda: settled(app.last_snapshot), "a settled snapshot")
        await pilot.pause(0.3)  # a last start-up tick may already be queued
        ticks_then = ticks
        await pilot.pause(1.0)
        assert ticks == ticks_then  # no more repaints until the steady tick
        assert app.fleet.table.row_count == 7
