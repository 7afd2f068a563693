"""Snapshot → FleetInputs: what is priced, from which fields, and incremental rebuilds."""

from __future__ import annotations

import math

import numpy as np

from console.economics import KIND_ASIC, KIND_GPU, MODE_AI, MODE_MINING
from console.fleet_inputs import FleetInputsBuilder, GpuEconomics
from console.model import (
    CommandedMode,
    DeviceKind,
    DeviceStatus,
    ErrorKind,
    Freshness,
    Observed,
    Snapshot,
    site_totals,
)
from console.store import DeviceInfo, Store
from drivers.cgminer.reading import AsicReading, Firmware, MinerState


def info(device_id: str, kind: DeviceKind = DeviceKind.ASIC) -> DeviceInfo:
    return DeviceInfo(
        device_id=device_id,
        kind=kind,
        name=device_id,
        host="127.0.0.1",
        port=4028,
        model=None,
        interval_s=30,
        stale_after_s=75,
        lost_after_s=300,
    )


def reading(hashrate_5s: float | None, avg: float | None, power: float | None) -> AsicReading:
    return AsicReading(
        firmware=Firmware.ANTMINER_STOCK,
        make="Antminer",
        hashrate_5s_hs=hashrate_5s,
        hashrate_avg_hs=avg,
        power_w=power,
        power_estimated=power is not None and power > 3000,
        state=MinerState.MINING,
    )


def test_asic_columns_and_what_is_priced() -> None:
    store = Store("s", [info("fresh"), info("stale"), info("lost"), info("pending"), info("avg")])
    store.record_ok("fresh", reading(104e12, 100e12, 3068.0), at=1000.0)
    store.record_ok("stale", reading(90e12, None, None), at=920.0)
    store.record_ok("lost", reading(104e12, None, 3000.0), at=100.0)
    store.record_ok("avg", reading(None, 95e12, 2900.0), at=1000.0)
    x = FleetInputsBuilder().build(store.snapshot(now=1010.0))
    assert x.device_ids == ("fresh", "stale", "lost", "pending", "avg")
    assert x.kind.tolist() == [KIND_ASIC] * 5
    assert x.priced.tolist() == [True, True, False, False, True]
    assert x.hashrate_hs[[0, 1, 4]].tolist() == [104e12, 90e12, 95e12]  # 5 s first, like totals
    assert x.power_w[0] == 3068.0 and math.isnan(x.power_w[1])
    assert x.power_estimated.tolist() == [True, False, False, False, False]
    assert x.reading_at[[0, 1, 2]].tolist() == [1000.0, 920.0, 100.0]
    assert math.isnan(x.reading_at[3])


def test_only_changed_rows_are_refilled_and_old_inputs_never_change() -> None:
    store = Store("s", [info("a"), info("b")])
    store.record_ok("a", reading(100e12, None, 3000.0), at=1000.0)
    store.record_ok("b", reading(200e12, None, 3500.0), at=1000.0)
    builder = FleetInputsBuilder()
    first = builder.build(store.snapshot(now=1001.0))
    store.record_ok("a", reading(110e12, None, 3100.0), at=1002.0)
    second = builder.build(store.snapshot(now=1003.0))
    assert second.hashrate_hs.tolist() == [110e12, 200e12]
    assert first.hashrate_hs.tolist() == [100e12, 200e12]  # the earlier snapshot's inputs
    store.record_failure("b", ErrorKind.TIMEOUT, "timeout", at=1004.0)
    third = builder.build(store.snapshot(now=1400.0))  # both lost by now
    assert third.priced.tolist() == [False, False]


def gpu_status(device_id: str, observed: Observed) -> DeviceStatus:
    return DeviceStatus(
        device_id=device_id,
        kind=DeviceKind.GPU,
        name=device_id,
        host="localhost",
        port=0,
        model="NVIDIA GeForce RTX 4090",
        commanded=CommandedMode.MINING,
        observed=observed,
        freshness=Freshness.FRESH,
        last_ok_at=1000.0,
    )


def test_gpu_columns_come_from_the_sites_gpu_economics_function() -> None:
    def economics(status: DeviceStatus) -> GpuEconomics | None:
        if status.device_id == "gpu-mining":
            return GpuEconomics(
                mode="mining",
                power_w=300.0,
                model=status.model,
                vram_bytes=24 * 10**9,
                power_limit_w=450.0,
                algorithm="kawpow",
                hashrate_hs=78e6,
                mining_hashrate_hs=78e6,
                mining_power_w=300.0,
                job_rate_usd_per_hour=0.4,  # ignored while mining
            )
        if status.device_id == "gpu-ai":
            return GpuEconomics(
                mode="ai",
                power_w=380.0,
                model=status.model,
                hashrate_hs=1.0,  # ignored while not mining
                job_rate_usd_per_hour=0.4,
            )
        return None

    devices = (
        gpu_status("gpu-mining", Observed.HASHING),
        gpu_status("gpu-ai", Observed.RUNNING_JOB),
        gpu_status("gpu-unknown", Observed.UNKNOWN),
    )
    snap = Snapshot(site="s", taken_at=1001.0, devices=devices, totals=site_totals(devices))
    x = FleetInputsBuilder(economics).build(snap)
    assert x.kind.tolist() == [KIND_GPU] * 3
    assert x.priced.tolist() == [True, True, False]  # no economics for it: not priced
    assert x.gpu_mode.tolist()[:2] == [MODE_MINING, MODE_AI]
    assert x.gpu_algorithms == ("kawpow",) and x.gpu_algorithm.tolist() == [0, -1, -1]
    assert x.gpu_models == ("NVIDIA GeForce RTX 4090",)
    assert x.hashrate_hs[0] == 78e6 and math.isnan(x.hashrate_hs[1])
    assert math.isnan(x.gpu_job_rate_usd_per_hour[0]) and x.gpu_job_rate_usd_per_hour[1] == 0.4
    assert x.gpu_vram_bytes[0] == 24e9 and np.isnan(x.gpu_vram_bytes[1])
