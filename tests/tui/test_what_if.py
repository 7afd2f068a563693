"""The what-if panel, driven through Pilot against a real site on simulated miners."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Label

from console.config import MarketScenario
from console.economics import scaled_totals
from console.site import Site
from console.tui.app import HashpivotApp
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.what_if import WhatIfScreen
from console.tui.widgets.virtual_table import VirtualTable
from tests.tui.pilot_helpers import open_detail, wait_for_readings, wait_until
from tests.tui.site_fixtures import FixedSite


async def replace_input(pilot, selector: str, text: str) -> None:  # type: ignore[no-untyped-def]
    box = pilot.app.screen.query_one(selector, Input)
    box.focus()
    await pilot.pause()
    await pilot.press("ctrl+a", "ctrl+k", *text)
    await pilot.pause()


KEYS = {"%": "percent_sign", "-": "minus", "+": "plus", ".": "full_stop"}


def keys(text: str) -> list[str]:
    return [KEYS.get(ch, ch) for ch in text]


async def test_what_if_prices_the_fleet_under_typed_prices(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await pilot.pause(1.1)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, WhatIfScreen), "the what-if panel")
        screen = app.screen
        assert isinstance(screen, WhatIfScreen)
        await pilot.pause()
        snap = app.last_snapshot
        assert snap is not None and snap.market is not None and screen.result is not None
        # It opens on the market of the moment: nothing changes yet.
        assert screen.query_one("#btc", Input).value == f"{snap.market.btc_price_usd.value:.0f}"
        assert screen.result.then.profit_usd_per_day == pytest.approx(
            screen.result.now.profit_usd_per_day
        )

        # BTC 10 % down, difficulty 5 % up, power 25 % dearer.
        await replace_input(pilot, "#btc", "")
        await pilot.press(*keys("-10%"))
        await replace_input(pilot, "#difficulty", "")
        await pilot.press(*keys("+5%"))
        power = snap.market.power_price_usd_per_kwh.value * 1.25
        await replace_input(pilot, "#power", "")
        await pilot.press(*keys(f"{power:.6f}"))
        await pilot.pause()
        result = screen.result
        assert result is not None and screen.error is None
        assert result.scenario.btc_price_factor == pytest.approx(0.9)
        assert result.scenario.difficulty_factor == pytest.approx(1.05)
        assert result.scenario.power_price_factor == pytest.approx(1.25, rel=1e-4)
        # The same figures the economics give for that scenario on the live fleet's totals.
        expected = scaled_totals(
            result.now,
            MarketScenario(
                name="x",
                btc_price_factor=0.9,
                difficulty_factor=1.05,
                power_price_factor=result.scenario.power_price_factor,
            ),
        )
        assert result.then.profit_usd_per_day == pytest.approx(expected.profit_usd_per_day)
        assert result.then.profit_usd_per_day < result.now.profit_usd_per_day
        title = str(screen.query_one("#devices-title", Label).content)
        assert "BTC -10% · difficulty +5% · power +25%" in title

        # Every device is in the table, worst first; unknowns (the hung miner) last.
        table = screen.query_one("#devices", VirtualTable)
        assert len(table.source) == 7
        first = table.source.row_id(0)
        i = result.device_ids.index(first)
        assert float(result.profit_then[i]) == float(np.nanmin(result.profit_then))
        assert table.source.row_id(6) == "f-hung"

        # A bad value says why and keeps the last good result.
        await replace_input(pilot, "#btc", "")
        await pilot.press(*"abc")
        assert screen.error is not None and "not a number" in screen.error
        assert screen.result is not None
        assert screen.result.scenario.btc_price_factor == pytest.approx(0.9)

        # Ctrl+R: the market of the moment again.
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert screen.error is None and screen.result is not None
        assert screen.result.scenario.btc_price_factor == pytest.approx(1.0)

        # Keyboard to the table, sort by name with `s` (next column), Enter opens the device.
        table.focus()
        await pilot.press("s")
        await pilot.pause()
        assert screen.source.sort_column != "then"
        await pilot.press("home", "enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "the device detail"
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back to the what-if panel")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet")


async def test_what_if_opens_from_the_detail_screen_and_the_palette(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await open_detail(pilot, app, "b-s21")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, WhatIfScreen), "the what-if panel")
        # In the panel, `e` is a letter for the inputs, not a second panel.
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "detail")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet")

        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"what-if")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, WhatIfScreen), "the panel")


async def open_what_if(pilot) -> None:  # type: ignore[no-untyped-def]
    # Conditions, not sleeps: a loaded machine may take longer than any fixed pause.
    app = pilot.app
    await wait_until(pilot, lambda: app.last_snapshot is not None, "the first snapshot")
    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(app.screen, WhatIfScreen), "the what-if panel")
    await replace_input(pilot, "#btc", "")
    await pilot.press(*keys("-10%"))
    await replace_input(pilot, "#power", "")
    await pilot.press(*keys("0.06"))

    def priced() -> bool:
        result = app.screen.result
        return (
            result is not None
            and result.scenario.btc_price_factor == pytest.approx(0.9)
            and app.screen.query_one("#power", Input).value == "0.06"
        )

    await wait_until(pilot, priced, "the typed scenario priced")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_what_if_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = HashpivotApp(FixedSite(tmp_path), operator="night-shift")
    assert snap_compare(app, terminal_size=size, run_before=open_what_if)
