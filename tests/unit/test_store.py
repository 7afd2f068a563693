"""Store: freshness judged at snapshot time, observed state, totals and history rings."""

from __future__ import annotations

import math

import numpy as np

from console.model import DeviceKind, ErrorKind, Freshness, Observed
from console.store import DeviceInfo, Metric, Store
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState


def info(device_id: str = "m1") -> DeviceInfo:
    return DeviceInfo(
        device_id=device_id,
        kind=DeviceKind.ASIC,
        name=device_id,
        host="127.0.0.1",
        port=4028,
        model="Antminer S19j Pro",
        interval_s=30,
        stale_after_s=75,
        lost_after_s=300,
    )


def reading(hashrate_hs: float = 104e12, **kw: object) -> AsicReading:
    return AsicReading(
        firmware=Firmware.ANTMINER_STOCK,
        make="Antminer",
        model="Antminer S19j Pro",
        hashrate_5s_hs=hashrate_hs,
        hashrate_avg_hs=hashrate_hs,
        nominal_hashrate_hs=104e12,
        power_w=3068.0,
        state=MinerState.MINING,
        **kw,  # type: ignore[arg-type]
    )


def test_freshness_moves_with_time_without_new_events() -> None:
    store = Store("s", [info()])
    assert store.status("m1", now=0).freshness is Freshness.PENDING
    store.record_ok("m1", reading(), at=1000.0)
    assert store.status("m1", now=1010).freshness is Freshness.FRESH
    assert store.status("m1", now=1100).freshness is Freshness.STALE
    lost = store.status("m1", now=1400)
    assert lost.freshness is Freshness.LOST
    # A lost device's last reading is kept for the operator, but nobody claims it is hashing.
    assert lost.observed is Observed.UNKNOWN
    assert lost.reading is not None


def test_never_answered_device_is_lost_with_its_error() -> None:
    store = Store("s", [info()])
    store.record_failure("m1", ErrorKind.CONNECT, "connection refused", at=5.0)
    status = store.status("m1", now=6.0)
    assert status.freshness is Freshness.LOST
    assert status.last_error == "connection refused"
    assert status.problem


def test_observed_state_from_reading() -> None:
    store = Store("s", [info()])
    store.record_ok("m1", reading(), at=0.0)
    assert store.status("m1", now=1).observed is Observed.HASHING
    store.record_ok("m1", reading(60e12), at=1.0)
    assert store.status("m1", now=2).observed is Observed.DEGRADED
    dead_board = reading(boards=(BoardReading(index=0, chips_found=0, chips_expected=126),))
    store.record_ok("m1", dead_board, at=2.0)
    assert store.status("m1", now=3).observed is Observed.DEGRADED
    asleep = AsicReading(
        firmware=Firmware.LUXOS, make="Antminer", hashrate_5s_hs=0.0, state=MinerState.CURTAILED
    )
    store.record_ok("m1", asleep, at=3.0)
    assert store.status("m1", now=4).observed is Observed.IDLE


def test_totals_exclude_lost_devices_and_count_estimates() -> None:
    store = Store("s", [info("a"), info("b")])
    store.record_ok("a", reading(), at=1000.0)
    store.record_ok("b", reading(power_estimated=True), at=500.0)
    snap = store.snapshot(now=1010.0)
    assert snap.totals.lost == 1 and snap.totals.fresh == 1
    assert math.isclose(snap.totals.hashrate_hs, 104e12)
    assert snap.totals.power_estimated_w == 0.0


def test_history_ring_wraps_and_keeps_order() -> None:
    store = Store("s", [info()], history_slots=4)
    for i in range(6):
        store.record_ok("m1", reading(float(i) * 1e12), at=float(i))
    t, values = store.history("m1", Metric.HASHRATE_HS)
    assert list(t) == [2.0, 3.0, 4.0, 5.0]
    assert np.allclose(values, [2e12, 3e12, 4e12, 5e12])
    _, temps = store.history("m1", Metric.TEMP_MAX_C)
    assert np.isnan(temps).all()  # never reported → NaN, not 0


def test_status_objects_are_reused_until_something_changes() -> None:
    store = Store("s", [info()])
    store.record_ok("m1", reading(), at=0.0)
    assert store.status("m1", now=1) is store.status("m1", now=2)
