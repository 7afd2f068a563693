"""`kill -9` of a console while jobs and miners run, then a restart: every job and every GPU's
mode is recovered, and the very same processes are supervised again."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from console.workloads.intent import GpuMode, GpuState
from console.workloads.queue import JobState
from simulators.gpu_state import STATE_ENV
from tests.integration.gpu_rig import open_rig, sim_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

CONSOLE = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from tests.integration.gpu_rig import open_rig

    async def main():
        root = Path(sys.argv[1])
        async with open_rig(root, models=("rtx4090", "a100-80gb", "rtx3090"),
                            modes=("ai", "ai", "mining"), start=False) as rig:
            for name in ("first", "second", "third"):
                await rig.submit(name, rate_usd_per_gpu_hour=2.0)
            results = await rig.workloads.start()
            assert all(r.ok for r in results), [r.message for r in results]
            gpus = await rig.workloads.gpus()
            print(json.dumps({
                g.name: {"miner": g.miner_pid, "job": g.job.id if g.job else None,
                         "pid": g.job.process.pid if g.job and g.job.process else None}
                for g in gpus
            }), flush=True)
            await rig.workloads.run()

    asyncio.run(main())
    """
)


async def test_kill_9_of_the_console_loses_no_job_and_no_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    console = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CONSOLE,
        str(tmp_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**dict(__import__("os").environ), STATE_ENV: str(tmp_path / "sim")},
    )
    assert console.stdout is not None
    line = await asyncio.wait_for(console.stdout.readline(), 120)
    assert line, "the console exited before it was ready"
    before = json.loads(line)
    console.send_signal(signal.SIGKILL)
    await console.wait()

    async with open_rig(tmp_path) as rig:
        wl = rig.workloads
        gpus = {g.name: g for g in await wl.gpus()}
        assert gpus["g0"].state is GpuState.AI_RUNNING and gpus["g0"].mode is GpuMode.AI
        assert gpus["g1"].state is GpuState.AI_RUNNING and gpus["g1"].mode is GpuMode.AI
        assert gpus["g2"].state is GpuState.MINING and gpus["g2"].mode is GpuMode.MINING
        # The same processes, re-attached, not new ones.
        assert gpus["g2"].miner_pid == before["g2"]["miner"]
        for name in ("g0", "g1"):
            job = gpus[name].job
            assert job is not None and job.id == before[name]["job"]
            assert job.process is not None and job.process.pid == before[name]["pid"]
            assert job.state is JobState.RUNNING and job.attempts == 1
        jobs = {j.name: j for j in await wl.jobs()}
        assert jobs["third"].state is JobState.QUEUED
        assert await rig.pids_on(2) == {before["g2"]["miner"]}
        # Supervised again: a preemption reaches the re-attached process.
        back = await rig.switch("g0", "mining", force=True)
        assert back.ok, back.message
        first = await wl.queue.get(before["g0"]["job"])
        assert first is not None and first.state is JobState.REQUEUED
        assert first.earned_usd > 0
