"""The fleet screen driven through Textual's Pilot, against a real site on real simulated miners."""

from __future__ import annotations

import msgspec
from textual.widgets import Input

from console.site import Site
from console.tui.app import HashpivotApp
from console.tui.widgets.device_table import DeviceTable
from tests.tui.site_fixtures import NOW, FixedSite


async def wait_for_rows(pilot, table: DeviceTable, rows: int, with_readings: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(100):
        await pilot.pause(0.1)
        snap = pilot.app.site.snapshot()
        if (
            table.row_count == rows
            and sum(d.reading is not None for d in snap.devices) >= with_readings
        ):
            await pilot.pause(1.1)  # one more tick so the table shows those readings
            return
    raise AssertionError("the table never filled")


def cell(table: DeviceTable, row_key: str, column: str) -> str:
    return table.get_cell(row_key, column).plain


def order(table: DeviceTable) -> list[str]:
    return [str(table.coordinate_to_cell_key((y, 0)).row_key.value) for y in range(table.row_count)]


async def test_live_readings_problems_first_filter_and_sort(live_site: Site) -> None:
    app = HashpivotApp(live_site)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.fleet.table
        await wait_for_rows(pilot, table, rows=7, with_readings=6)

        assert cell(table, "b-s21", "state") == "hashing"
        assert cell(table, "b-s21", "hashrate").endswith("TH/s")
        assert cell(table, "c-m50", "fresh") == "fresh"
        # The hung miner has no reading: dashes, never zeros, and the reason in the note.
        assert cell(table, "f-hung", "hashrate") == "—"
        assert cell(table, "f-hung", "fresh") in ("lost", "pending")
        # Problems first is on by default: the hung miner leads the table.
        assert order(table)[0] == "f-hung"

        await pilot.press("p")  # problems first off: plain name order
        await pilot.pause()
        assert order(table) == sorted(order(table))

        await pilot.press("slash")
        filter_box = app.screen.query_one("#filter", Input)
        assert filter_box.has_focus
        await pilot.press(*"luxos")
        await pilot.pause()
        assert order(table) == ["d-luxos"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 7

        # Sort by hashrate by clicking its header (x = the widths and padding of the columns
        # before it), then reverse with `r`. The hung miner (no hashrate) stays last both ways.
        await pilot.click(DeviceTable, offset=(45, 0))
        await pilot.pause()
        assert table.sort_column == "hashrate"
        assert order(table)[0] == "e-avalon"  # the 1246 is the slowest model here
        assert order(table)[-1] == "f-hung"
        await pilot.press("r")
        await pilot.pause()
        assert order(table)[0] == "b-s21"  # the S21 is the fastest
        assert order(table)[-1] == "f-hung"
        await pilot.press("s")  # next column after hashrate: temperature
        await pilot.pause()
        assert table.sort_column == "temp"


async def test_cells_update_in_place_without_rebuilding(live_site: Site) -> None:
    app = HashpivotApp(live_site)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.fleet.table
        await wait_for_rows(pilot, table, rows=7, with_readings=6)
        row_keys_before = set(table.rows)
        adds = 0
        original_add_row = table.add_row

        def counting_add_row(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal adds
            adds += 1
            return original_add_row(*args, **kwargs)

        table.add_row = counting_add_row  # type: ignore[method-assign]
        await pilot.pause(2.2)  # two ticks of live readings
        assert adds == 0
        assert set(table.rows) == row_keys_before


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


async def test_a_tick_renders_only_the_cells_that_changed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    site = FixedSite(tmp_path)
    app = HashpivotApp(site, tick_s=None)
    async with app.run_test(size=(160, 40)) as pilot:
        app.tick()
        await pilot.pause()
        table = app.fleet.table
        painted = table.cells_rendered
        assert painted > 0

        app.tick()  # the same snapshot again
        table.refresh()
        await pilot.pause()
        assert table.cells_rendered == painted

        # One miner reports a new hashrate: its hashrate and J/TH cells render, nothing else.
        status = next(d for d in site.snapshot().devices if d.device_id == "r1-s21-02")
        assert status.reading is not None
        faster = msgspec.structs.replace(status.reading, hashrate_5s_hs=205.0e12)
        faster = msgspec.structs.replace(faster, efficiency_j_per_th=17.1)
        site.store.record_ok("r1-s21-02", faster, at=NOW - 2)
        site._snapshot = site.store.snapshot(now=NOW)
        app.tick()
        await pilot.pause()
        assert cell(table, "r1-s21-02", "hashrate") == "205.0 TH/s"
        assert table.cells_rendered - painted == 2
