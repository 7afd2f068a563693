"""Energy booked per GPU mode and per job from counter deltas, with resets and estimates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.workloads.db import WorkloadDb
from console.workloads.energy import EnergyLedger, Owner
from console.workloads.intent import GpuState
from drivers.gpu_reading import GpuHealth, GpuReading, GpuSample, GpuStatic

STATIC = GpuStatic(uuid="GPU-a", index=0, name="RTX 4090", pci_bus_id="0:1", memory_total_bytes=1)


def reading(at: float, energy_j: float | None, power_w: float | None = None) -> GpuReading:
    return GpuReading(
        static=STATIC,
        health=GpuHealth.OK,
        sample=GpuSample(taken_at=at, energy_j=energy_j, power_w=power_w),
    )


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[EnergyLedger]:
    db = WorkloadDb.in_state_dir(tmp_path)
    yield EnergyLedger(db)
    db.close()


async def test_deltas_go_to_the_mode_and_job_that_owned_the_interval(
    ledger: EnergyLedger,
) -> None:
    mining = {"GPU-a": Owner(state=GpuState.MINING)}
    ai = {"GPU-a": Owner(state=GpuState.AI_RUNNING, job_id=7)}
    await ledger.observe([reading(0, 1000.0)], mining)  # first sight: a cursor only
    await ledger.observe([reading(1, 1300.0)], mining)
    await ledger.observe([reading(2, 1350.0)], {"GPU-a": Owner(state=GpuState.VERIFYING_FREE)})
    await ledger.observe([reading(3, 1750.0)], ai)
    await ledger.observe([reading(4, 2150.0)], ai)
    totals = (await ledger.by_gpu())["GPU-a"]
    assert totals["mining"].joules == 300 and totals["transition"].joules == 50
    assert totals["ai"].joules == 800
    job = await ledger.for_job(7)
    assert job.joules == 800 and job.estimated_joules == 0
    assert job.kwh == pytest.approx(800 / 3.6e6)


async def test_a_counter_reset_starts_a_new_segment(ledger: EnergyLedger) -> None:
    owner = {"GPU-a": Owner(state=GpuState.MINING)}
    await ledger.observe([reading(0, 5000.0)], owner)
    await ledger.observe([reading(1, 40.0)], owner)  # driver reloaded
    await ledger.observe([reading(2, 140.0)], owner)
    assert (await ledger.by_gpu())["GPU-a"]["mining"].joules == 100


async def test_without_a_counter_power_times_time_is_booked_as_estimated(
    ledger: EnergyLedger,
) -> None:
    owner = {"GPU-a": Owner(state=GpuState.IDLE)}
    await ledger.observe([reading(0, None, 30.0)], owner)
    await ledger.observe([reading(10, None, 30.0)], owner)
    await ledger.observe([reading(10_000, None, 30.0)], owner)  # a gap: not extrapolated
    idle = (await ledger.by_gpu())["GPU-a"]["idle"]
    assert idle.joules == 0 and idle.estimated_joules == 300


async def test_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    owner = {"GPU-a": Owner(state=GpuState.MINING)}
    db = WorkloadDb.in_state_dir(tmp_path)
    await EnergyLedger(db).observe([reading(0, 100.0)], owner)
    db.close()
    db = WorkloadDb.in_state_dir(tmp_path)
    try:
        ledger = EnergyLedger(db)
        await ledger.observe([reading(5, 600.0)], owner)
        assert (await ledger.by_gpu())["GPU-a"]["mining"].joules == 500
    finally:
        db.close()
