"""The fake GPU workloads as real OS processes on a simulated GPU site, observed through the NVML
driver (real binding, simulated library) and the miner API readers: a miner appears on its GPU
and only there, hashes, frees its memory on SIGINT (or leaks it under the leak fault); an AI
job checkpoints on its signal and resumes from the checkpoint."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.gpu_miner import read_lolminer, read_trex
from drivers.gpu_reading import GpuHealth, GpuReading
from drivers.nvml import NvmlDriver
from simulators import gpu_state
from simulators.nvml import NvmlSim
from tests.gpu_helpers import eventually, read_until, sim_env, start_module, stop_process

pytest_plugins = ("tests.nvml_fixtures",)

MIB = 1 << 20
DAG = 512 * MIB


@pytest.fixture
async def live(site_dir: tuple[Path, gpu_state.SiteInfo]) -> AsyncIterator[Any]:
    """The driver on a real-clock simulator (the processes live in real time)."""
    d, site = site_dir
    sim = NvmlSim(d)
    driver = NvmlDriver(library=sim, xid_wait_ms=100)
    await driver.start()
    procs: list[asyncio.subprocess.Process] = []

    class Live:
        def __init__(self) -> None:
            self.dir, self.site, self.sim, self.driver = d, site, sim, driver

        async def miner(self, gpu: int, *args: str) -> tuple[asyncio.subprocess.Process, int]:
            p = await start_module(
                "simulators.gpu_miner",
                sim_env(d, site.gpus[gpu].uuid),
                "--api-port",
                "0",
                "--dag-seconds",
                "0.5",
                "--dag-bytes",
                str(DAG),
                "--ramp-seconds",
                "0.5",
                *args,
            )
            procs.append(p)
            line = await read_until(p, "HTTP server started on")
            return p, int(line.rsplit(":", 1)[1])

        async def job(self, gpu: int, ckpt: Path, *args: str) -> asyncio.subprocess.Process:
            p = await start_module(
                "simulators.ai_job",
                sim_env(d, site.gpus[gpu].uuid),
                "--checkpoint-dir",
                str(ckpt),
                "--load-seconds",
                "0.2",
                "--checkpoint-seconds",
                "0.05",
                "--memory-bytes",
                str(2048 * MIB),
                *args,
            )
            procs.append(p)
            return p

        async def reading(self, gpu: int) -> GpuReading:
            return await driver.sample_one(site.gpus[gpu].uuid)

    yield Live()
    for p in procs:
        await stop_process(p)
    sim.close()
    await driver.close()


async def test_miner_runs_on_its_gpu_only_hashes_and_frees_memory_on_sigint(live: Any) -> None:
    proc, port = await live.miner(1)

    async def hashing() -> Any:
        r = await read_trex("127.0.0.1", port)
        return r if r.hashrate_hs and r.hashrate_hs > 0 else None

    reading = await eventually(hashing)
    assert reading.algorithm == "kawpow" and reading.version
    (gpu,) = reading.gpus
    assert gpu.uuid == live.site.gpus[1].uuid  # T-Rex's 32-hex UUID normalised to NVML's
    assert gpu.pci_bus == 2
    # NVML shows the miner's PID on GPU 1 and on no other GPU.
    state = await live.driver.sample()
    on = {g.static.uuid: [p.pid for p in g.sample.processes] for g in state.gpus}
    assert on[live.site.gpus[1].uuid] == [proc.pid]
    assert all(pids == [] for u, pids in on.items() if u != live.site.gpus[1].uuid)
    r = await live.reading(1)
    assert r.sample.memory_used_bytes >= DAG
    assert r.sample.util_gpu_pct == 100.0

    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 20) == 0

    async def freed() -> bool:
        s = (await live.reading(1)).sample
        return s.processes == () and s.memory_used_bytes == 0

    await eventually(freed)
    assert (await live.reading(1)).health is GpuHealth.OK


async def test_lolminer_dialect(live: Any) -> None:
    proc, port = await live.miner(0, "--dialect", "lolminer", "--algo", "etchash")

    async def hashing() -> Any:
        r = await read_lolminer("127.0.0.1", port)
        return r if r.hashrate_hs else None

    r = await eventually(hashing)
    assert r.dialect == "lolminer" and r.algorithm == "Etchash"
    assert r.version is not None and r.version.startswith("lolMiner")
    assert r.gpus[0].pci_bus == 1 and r.gpus[0].hashrate_hs == r.hashrate_hs
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_a_miner_ignoring_sigint_needs_sigterm(live: Any) -> None:
    proc, _ = await live.miner(2, "--ignore-sigint")
    proc.send_signal(signal.SIGINT)
    await read_until(proc, "SIGINT received and ignored")
    assert proc.returncode is None
    assert [p.pid for p in (await live.reading(2)).sample.processes] == [proc.pid]
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_leak_fault_keeps_memory_with_no_pid_needs_reset(live: Any) -> None:
    uuid = live.site.gpus[3].uuid
    proc, _ = await live.miner(3)

    async def dag_built() -> bool:
        s = (await live.reading(3)).sample
        return bool(s.processes) and s.memory_used_bytes >= DAG

    await eventually(dag_built)
    gpu_state.set_faults(live.dir, uuid, leak=True)
    proc.kill()
    await proc.wait()

    async def leaked() -> GpuReading | None:
        r = await live.reading(3)
        return r if r.health is GpuHealth.NEEDS_RESET else None

    r = await eventually(leaked)
    assert r.sample.processes == ()
    assert r.sample.memory_used_bytes >= DAG
    assert "no process attached" in r.error
    assert gpu_state.reset_gpu(live.dir, uuid) >= DAG
    r = await live.reading(3)
    assert r.health is GpuHealth.OK and r.sample.memory_used_bytes == 0


async def test_ai_job_checkpoints_on_sigterm_and_resumes(live: Any, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    args = ("--total-steps", "400", "--step-seconds", "0.01", "--checkpoint-every", "1000")
    job = await live.job(4, ckpt, *args)
    await read_until(job, "training on")

    async def progressed() -> int:
        try:
            doc = json.loads((ckpt / "progress.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return 0
        return int(doc["step"]) if doc["step"] >= 20 else 0

    await eventually(progressed)
    r = await live.reading(4)
    assert [p.pid for p in r.sample.processes] == [job.pid]
    assert r.sample.memory_used_bytes == 2048 * MIB
    job.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(job.wait(), 20) == 0
    saved = json.loads((ckpt / "checkpoint.json").read_text())
    progress = json.loads((ckpt / "progress.json").read_text())
    assert saved["step"] >= 20 and progress["state"] == "preempted"
    assert progress["last_checkpoint_step"] == saved["step"]

    again = await live.job(4, ckpt, *args)
    line = await read_until(again, "resuming from checkpoint")
    assert f"step {saved['step']}/400" in line
    await read_until(again, "training complete")
    assert await asyncio.wait_for(again.wait(), 30) == 0
    final = json.loads((ckpt / "progress.json").read_text())
    assert final["state"] == "done" and final["step"] == 400
    assert json.loads((ckpt / "checkpoint.json").read_text())["step"] == 400


async def test_ai_job_with_usr1_checkpoint_signal_and_one_that_ignores_it(
    live: Any, tmp_path: Path
) -> None:
    usr1 = await live.job(
        0, tmp_path / "a", "--checkpoint-signal", "USR1", "--step-seconds", "0.05"
    )
    await read_until(usr1, "training on")
    usr1.send_signal(signal.SIGUSR1)
    await read_until(usr1, "SIGUSR1 received: checkpointing")
    assert await asyncio.wait_for(usr1.wait(), 20) == 0

    stubborn = await live.job(2, tmp_path / "b", "--ignore-signal", "--step-seconds", "0.05")
    await read_until(stubborn, "training on")
    stubborn.send_signal(signal.SIGTERM)
    await read_until(stubborn, "SIGTERM received and ignored")
    assert stubborn.returncode is None
    stubborn.kill()
    assert await stubborn.wait() == -signal.SIGKILL


async def test_a_job_that_does_not_fit_fails_with_out_of_memory(live: Any, tmp_path: Path) -> None:
    job = await live.job(0, tmp_path / "c", "--memory-bytes", str(30 << 30))  # RTX 3090: 24 GiB
    await read_until(job, "out of memory")
    assert await asyncio.wait_for(job.wait(), 20) == 1


async def test_no_visible_gpu_is_a_cuda_error(live: Any) -> None:
    env = sim_env(live.dir, "GPU-ffffffff")
    miner = await start_module("simulators.gpu_miner", env, "--api-port", "0")
    await read_until(miner, "CUDA error")
    assert await asyncio.wait_for(miner.wait(), 20) == 1
