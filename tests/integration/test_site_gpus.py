"""A GPU site end to end, through the same `Site` and action path the TUI and MQTT use.

Real pieces only: the NVML driver over the real pynvml binding over the simulated NVML
library, the simulated miner and AI job as real OS processes, the miner's HTTP API, SQLite
state. Mining → AI → mining on one GPU, watched in the snapshots the presenters read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from console.actions import ActionRequest, ActionResult, Origin
from console.config import load_config
from console.model import DeviceStatus, Observed
from console.site import Site
from console.workloads.queue import JobState
from tests.gpu_site import gpu_site_toml


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Site]:
    site = Site(load_config(gpu_site_toml(tmp_path)))
    async with site:
        task = asyncio.create_task(site.run())
        try:
            yield site
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def device(site: Site, name: str) -> DeviceStatus:
    return next(d for d in site.snapshot().devices if d.device_id == name)


async def until(check: Callable[[], bool], what: str, timeout_s: float = 40.0) -> None:
    """Poll a condition (a deadline against a hang, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.1)


async def switch(site: Site, gpu: str, mode: str) -> ActionResult:
    return await site.actions.perform(
        ActionRequest(
            action="gpu.switch",
            target=gpu,
            params={"mode": mode},
            actor="night-shift",
            origin=Origin.TUI,
            reason="e2e",
        )
    )


def pids_on(status: DeviceStatus) -> set[int]:
    gpu = status.gpu
    assert gpu is not None
    sample = gpu.nvml.sample if gpu.nvml else None
    return {p.pid for p in sample.processes} if sample else set()


async def test_mining_to_ai_and_back_on_a_simulated_site(running: Site) -> None:
    site = running
    await until(lambda: device(site, "g0").observed is Observed.HASHING, "g0 hashing")
    g0 = device(site, "g0")
    assert g0.gpu is not None and g0.gpu.miner_hashrate_hs
    assert g0.gpu.miner_pid in pids_on(g0)
    earnings = site.snapshot().earnings
    assert earnings is not None
    row = earnings.by_id("g0")
    assert row is not None and row.revenue_usd_per_day and row.revenue_usd_per_day > 0

    to_ai = await switch(site, "g0", "ai")
    assert to_ai.ok, to_ai.message
    await until(lambda: device(site, "g0").observed is Observed.RUNNING_JOB, "the job running")
    g0 = device(site, "g0")
    assert g0.gpu is not None and g0.gpu.job is not None and g0.gpu.job.name == "finetune"
    assert site.gpus is not None
    job = await site.gpus.workloads.queue.get(g0.gpu.job.id)
    assert job is not None and job.process is not None
    await until(lambda: job.process.pid in pids_on(device(site, "g0")), "the job's PID in NVML")
    assert pids_on(device(site, "g0")) == {job.process.pid}  # the miner is gone
    assert job.process.pid not in pids_on(device(site, "g1"))  # and only on that GPU
    await until(
        lambda: (device(site, "g0").gpu.job.progress or 0) > 0,  # type: ignore[union-attr]
        "job progress",
    )

    back = await switch(site, "g0", "mining")
    assert back.ok, back.message
    requeued = await site.gpus.workloads.queue.get(job.id)
    assert requeued is not None and requeued.state is JobState.REQUEUED
    assert requeued.progress > 0  # the checkpoint kept it
    await until(lambda: device(site, "g0").observed is Observed.HASHING, "hashing again")
    entries = [e for _, e in await site.audit.recent(target="g0")]
    assert [e.action for e in entries][-2:] == ["gpu.switch", "gpu.switch"]
    assert all(e.ok for e in entries[-2:])
