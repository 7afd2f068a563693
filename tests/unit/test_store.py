"""Store: freshness judged at snapshot time, observed state, totals and history rings."""

from __future__ import annotations

import math
import random

import msgspec
import numpy as np

from console.model import (
    CommandedMode,
    DeviceKind,
    ErrorKind,
    Freshness,
    GpuView,
    Observed,
    site_totals,
)
from console.store import DeviceInfo, Metric, Store
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState
from drivers.gpu_reading import GpuHealth, GpuReading, GpuSample, GpuStatic


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


def gpu_view(power_w: float | None) -> GpuView:
    sample = None if power_w is None else GpuSample(taken_at=0.0, power_w=power_w)
    nvml = GpuReading(
        static=GpuStatic(
            uuid="GPU-1",
            index=0,
            name="NVIDIA GeForce RTX 4090",
            pci_bus_id="00000000:01:00.0",
            memory_total_bytes=24 << 30,
        ),
        health=GpuHealth.OK,
        sample=sample,
    )
    return GpuView(uuid="GPU-1", nvml=nvml, mode="mining", state="MINING", switching=False)


def test_snapshot_equals_every_status_and_the_site_totals_as_time_and_records_move() -> None:
    """The snapshot's fast path (freshness judged for all devices at once, only changed
    devices rebuilt, totals from per-device parts) gives exactly what `status()` of every device
    and `site_totals` give: the same status objects, the same totals to the last bit."""
    rng = random.Random(5)
    asics = [info(f"m{i}") for i in range(60)]
    gpus = [
        DeviceInfo(
            device_id=f"g{i}",
            kind=DeviceKind.GPU,
            name=f"g{i}",
            host="localhost",
            port=0,
            model=None,
            interval_s=1.0,
            stale_after_s=3.0,
            lost_after_s=10.0,
        )
        for i in range(20)
    ]
    devices = [*asics, *gpus]
    rng.shuffle(devices)
    store = Store("s", devices)
    now = 1000.0
    seen: set[Freshness] = set()
    for step in range(60):
        now += rng.choice((0.25, 0.5, 3.0, 7.0, 75.0, 0.0))
        for d in rng.sample(devices, rng.randint(0, 30)):
            at = now - rng.choice((0.0, 1.0, 2.9, 80.0))
            if d.kind is DeviceKind.GPU:
                power = rng.choice((None, rng.uniform(80, 450)))
                failure = (ErrorKind.TIMEOUT, "nvml timeout") if rng.random() < 0.2 else None
                store.record_gpu(d.device_id, gpu_view(power), at, failure)
            elif rng.random() < 0.2:
                store.record_failure(d.device_id, ErrorKind.CONNECT, "refused", at)
            elif rng.random() < 0.1:
                store.set_commanded(d.device_id, CommandedMode.IDLE)
            else:
                store.record_ok(
                    d.device_id,
                    msgspec.structs.replace(
                        reading(rng.choice((0.0, rng.uniform(50e12, 110e12)))),
                        power_w=rng.choice((None, rng.uniform(2000, 3600))),
                        power_estimated=rng.random() < 0.5,
                    ),
                    at,
                )
        if step % 7 == 3:  # a presenter asking for one device at another time in between
            store.status(rng.choice(devices).device_id, now=now + rng.uniform(-5, 400))
        snapshot = store.snapshot(now)
        expected = tuple(store.status(d.device_id, now) for d in devices)
        assert all(a is b for a, b in zip(snapshot.devices, expected, strict=True))
        assert snapshot.totals == site_totals(expected)
        seen.update(d.freshness for d in snapshot.devices)
    assert seen == set(Freshness)
