"""Site events: lost/back derived from snapshots, and the hub's fan-out."""

from __future__ import annotations

import asyncio

from console.events import EventHub, EventKind, FreshnessWatch, Severity, SiteEvent
from console.model import DeviceKind, ErrorKind
from console.store import DeviceInfo, Store
from drivers.cgminer.reading import AsicReading, Firmware


def _store() -> Store:
    infos = [
        DeviceInfo(
            device_id=name,
            kind=DeviceKind.ASIC,
            name=name,
            host="192.0.2.1",
            port=4028,
            model=None,
            interval_s=10,
            stale_after_s=25,
            lost_after_s=100,
        )
        for name in ("a", "b")
    ]
    return Store("t", infos)


READING = AsicReading(firmware=Firmware.CGMINER, make="Antminer", hashrate_5s_hs=1e14)


def test_lost_is_reported_once_and_back_only_when_fresh() -> None:
    store, watch = _store(), FreshnessWatch()
    store.record_ok("a", READING, at=0)
    store.record_failure("b", ErrorKind.CONNECT, "connection refused", at=0)
    # First snapshot: a baseline, even though "b" has never answered (it is already lost).
    assert watch.update(store.snapshot(now=1)) == []
    assert watch.update(store.snapshot(now=50)) == []  # "a" stale: not lost yet
    (lost,) = watch.update(store.snapshot(now=101))
    assert lost.kind is EventKind.DEVICE_LOST and lost.subject == "a"
    assert lost.severity is Severity.ERROR and lost.at == 101
    assert watch.update(store.snapshot(now=150)) == []  # still lost: said once
    store.record_ok("a", READING, at=160)
    store.record_failure("a", ErrorKind.TIMEOUT, "timeout", at=161)
    assert watch.update(store.snapshot(now=190)) == []  # lost → stale is not "back"
    store.record_ok("a", READING, at=200)
    (back,) = watch.update(store.snapshot(now=201))
    assert back.kind is EventKind.DEVICE_BACK and back.subject == "a"


def test_a_device_that_never_answered_is_reported_when_it_turns_lost() -> None:
    store, watch = _store(), FreshnessWatch()
    store.record_ok("a", READING, at=0)
    assert watch.update(store.snapshot(now=1)) == []  # "b" pending
    store.record_failure("b", ErrorKind.TIMEOUT, "no reply within 3 s", at=2)
    (lost,) = watch.update(store.snapshot(now=3))
    assert lost.subject == "b" and "no reply within 3 s" in lost.message


async def test_hub_fans_out_and_drops_the_oldest_for_a_slow_reader() -> None:
    hub = EventHub(queue_size=2)
    first, second = hub.subscribe(), hub.subscribe()
    # Subscriptions start when first awaited; register both before publishing.
    reads = [asyncio.ensure_future(anext(first)), asyncio.ensure_future(anext(second))]
    await asyncio.sleep(0)

    def event(n: int) -> SiteEvent:
        return SiteEvent(
            kind=EventKind.JOB_FAILED, subject=f"job-{n}", message="", severity=Severity.ERROR, at=n
        )

    hub.publish(event(1))
    assert [(await r).subject for r in reads] == ["job-1", "job-1"]
    for n in (2, 3, 4):
        hub.publish(event(n))
    assert (await anext(first)).subject == "job-3"  # job-2 dropped: the queue holds two
    assert (await anext(first)).subject == "job-4"
    await first.aclose()
    await second.aclose()
    hub.publish(event(5))  # no subscribers left: nothing queued, nothing raised
