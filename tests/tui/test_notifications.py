"""Fault notifications: the notifier consumes events from every producer (the freshness watch
on each tick, the site's event hub) and shows each as a toast."""

from __future__ import annotations

import time

from console.events import EventKind, Severity, SiteEvent
from console.site import Site
from console.tui.app import HashpivotApp
from simulators.asic import AsicFleet
from tests.tui.pilot_helpers import toasts, wait_for_readings, wait_until


def events_of(app: HashpivotApp, kind: EventKind, subject: str) -> list[SiteEvent]:
    return [e for e in app.notifier.recent if e.kind is kind and e.subject == subject]


async def test_a_device_going_lost_is_notified_once_and_again_when_back(
    quick_lost_site: Site, live_fleet: AsicFleet
) -> None:
    app = HashpivotApp(quick_lost_site, operator="tester")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_readings(pilot, app, rows=7, readings=6)
        miner = live_fleet.miners[1]  # b-s21
        await miner.stop()

        await wait_until(
            pilot, lambda: events_of(app, EventKind.DEVICE_LOST, "b-s21"), "a lost event", 400
        )
        await wait_until(pilot, lambda: any("b-s21 is lost" in t for t in toasts(app)), "toast")
        (lost,) = events_of(app, EventKind.DEVICE_LOST, "b-s21")
        assert lost.severity is Severity.ERROR
        await pilot.pause(1.2)  # more ticks while it stays lost: no repeat
        assert len(events_of(app, EventKind.DEVICE_LOST, "b-s21")) == 1

        await miner.start()
        await wait_until(
            pilot, lambda: events_of(app, EventKind.DEVICE_BACK, "b-s21"), "a back event", 400
        )


async def test_events_published_on_the_site_hub_are_notified(live_site: Site) -> None:
    """The GPU path and the job queue publish `switch_failed` / `job_failed` on `Site.events`;
    the console shows them without knowing where they came from."""
    app = HashpivotApp(live_site, operator="tester")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause(0.2)
        for kind, text in (
            (EventKind.JOB_FAILED, "job llm-finetune-7 exited with code 137 on gpu-3"),
            (EventKind.SWITCH_FAILED, "gpu-3 did not reach ai: miner would not stop"),
        ):
            live_site.events.publish(
                SiteEvent(
                    kind=kind,
                    subject="gpu-3",
                    message=text,
                    severity=Severity.ERROR,
                    at=time.time(),
                )
            )
            await wait_until(pilot, lambda t=text: any(t in s for s in toasts(app)), kind.value)  # type: ignore[misc]
        titles = {e.kind for e in app.notifier.recent}
        assert {EventKind.JOB_FAILED, EventKind.SWITCH_FAILED} <= titles
