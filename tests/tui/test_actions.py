"""ASIC actions from the console, against real simulated miners over real sockets: each is
confirmed in a modal first, sent through the site's action path as the operator, and its
result is shown as a notification and in the device's audit list."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from console.events import EventKind
from console.model import CommandedMode
from console.site import Site
from console.tui.app import HashpivotApp
from console.tui.screens.confirm import ConfirmActionScreen
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.pool_picker import PoolPickerScreen
from console.tui.widgets.audit_list import AuditList
from simulators.asic import AsicFleet
from tests.tui.pilot_helpers import open_detail, toasts, wait_for_readings, wait_until

PRIV = 6  # g-priv, the privileged LuxOS miner, in live_fleet.miners
NOPASS = 2  # c-m50, privileged Whatsminer without its admin password


def audit_lines(screen: DeviceDetailScreen) -> list[str]:
    return [
        f"{e.action} {'ok' if e.ok else e.code}" for _, e in screen.query_one(AuditList).entries
    ]


def body_text(app: HashpivotApp) -> str:
    return str(app.screen.query_one("#body").render())


async def confirm_modal(pilot, app: HashpivotApp) -> ConfirmActionScreen:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmActionScreen), "the modal")
    await pilot.pause()
    assert isinstance(app.screen, ConfirmActionScreen)
    return app.screen


async def test_curtail_then_wake_with_confirmation_and_audit(
    live_site: Site, live_fleet: AsicFleet
) -> None:
    app = HashpivotApp(live_site, operator="night-shift")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        detail = await open_detail(pilot, app, "g-priv")

        await pilot.press("c")
        modal = await confirm_modal(pilot, app)
        body = body_text(app)
        assert "g-priv" in body and "stops hashing" in body and "mining → curtailed" in body
        assert "by night-shift (tui)" in body
        assert modal.query_one("#cancel").has_focus  # a stray Enter would cancel
        # Type a reason (the box is just above Cancel), then Enter in it confirms.
        await pilot.press("shift+tab")
        assert modal.query_one("#reason", Input).has_focus
        await pilot.press(*"grid peak", "enter")

        await wait_until(pilot, lambda: "asic.curtail ok" in audit_lines(detail), "audit entry")
        assert isinstance(app.screen, DeviceDetailScreen)
        assert live_fleet.miners[PRIV].truth.state == "curtailed"
        assert live_site.snapshot().devices[PRIV].commanded is CommandedMode.CURTAILED
        await wait_until(pilot, lambda: any("curtail accepted" in t for t in toasts(app)), "toast")
        (_, entry), *_ = await live_site.audit.recent(target="g-priv")
        assert entry.actor == "night-shift" and entry.origin == "tui"
        assert entry.reason == "grid peak"

        await pilot.press("w")
        await confirm_modal(pilot, app)
        assert "→ mining" in body_text(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: "asic.wake ok" in audit_lines(detail), "wake audited")
        assert live_fleet.miners[PRIV].truth.state == "mining"
        assert live_site.snapshot().devices[PRIV].commanded is CommandedMode.MINING


async def test_cancel_sends_nothing(live_site: Site, live_fleet: AsicFleet) -> None:
    app = HashpivotApp(live_site, operator="night-shift")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        await open_detail(pilot, app, "g-priv")
        for key in ("n", "escape", "enter"):  # Enter lands on the focused Cancel button
            await pilot.press("b")
            await confirm_modal(pilot, app)
            assert "restarts" in body_text(app)
            await pilot.press(key)
            await wait_until(pilot, lambda: isinstance(app.screen, DeviceDetailScreen), "back")
        await wait_until(pilot, lambda: any("cancelled" in t for t in toasts(app)), "toast")
        assert await live_site.audit.recent() == []
        assert live_fleet.miners[PRIV].truth.state == "mining"


async def test_switch_pool_offers_the_readings_pools(
    live_site: Site, live_fleet: AsicFleet
) -> None:
    app = HashpivotApp(live_site, operator="night-shift")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        detail = await open_detail(pilot, app, "g-priv")
        reading = detail.device.reading
        assert reading is not None
        active = next(p for p in reading.pools if p.active)
        target = next(p for p in reading.pools if not p.active)

        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PoolPickerScreen), "the picker")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        assert options.option_count == len(reading.pools)
        for i, pool in enumerate(reading.pools):
            option = options.get_option_at_index(i)
            assert pool.url in str(option.prompt)
            assert option.disabled is pool.active  # switching to the active pool is no change
        assert options.highlighted is not None
        assert options.get_option_at_index(options.highlighted).id == str(target.index)
        await pilot.press("enter")

        await confirm_modal(pilot, app)
        body = body_text(app)
        assert f"pool {target.index} ({target.url}" in body
        assert f"leaving pool {active.index} ({active.url}" in body
        await pilot.press("y")
        await wait_until(pilot, lambda: "asic.switch_pool ok" in audit_lines(detail), "audited")

        def switched() -> bool:
            r = detail.device.reading
            return r is not None and any(p.active and p.index == target.index for p in r.pools)

        await wait_until(pilot, switched, "the next reading to show the new active pool")
        (_, entry), *_ = await live_site.audit.recent(target="g-priv")
        assert entry.params == {"pool": target.index}


async def test_a_refusal_is_notified_with_its_reason_and_audited(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="night-shift")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        detail = await open_detail(pilot, app, "c-m50")
        assert "curtail" in detail.device.controls  # offered: privileged, firmware supports it
        await pilot.press("c")
        await confirm_modal(pilot, app)
        await pilot.press("y")

        await wait_until(
            pilot, lambda: "asic.curtail not_permitted" in audit_lines(detail), "audit"
        )
        failed = [e for e in app.notifier.recent if e.kind is EventKind.ACTION_FAILED]
        assert len(failed) == 1 and failed[0].subject == "c-m50"
        assert "admin password" in failed[0].message
        await wait_until(pilot, lambda: any("admin password" in t for t in toasts(app)), "toast")
        assert "✗ not_permitted" in str(detail.query_one(AuditList).render())


async def test_reboot_is_sent_and_audited(live_site: Site) -> None:
    app = HashpivotApp(live_site, operator="night-shift")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        detail = await open_detail(pilot, app, "g-priv")
        await pilot.press("b")
        await confirm_modal(pilot, app)
        await pilot.click("#confirm")
        await wait_until(
            pilot, lambda: any("asic.reboot" in line for line in audit_lines(detail)), "audited"
        )
        entries = await live_site.audit.recent(target="g-priv")
        assert [(e.action, e.code) for _, e in entries] == [("asic.reboot", "ok")], entries
