"""The supervisor's watch on the simulated rig: jobs that finish, fail or are cancelled while
they run, a miner that crashes, and launches that must be refused (a job that opens a second
GPU, a job that crashes at start, a job that ignores its checkpoint signal)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from console.actions import ResultCode
from console.workloads.db import WorkloadDb
from console.workloads.events import Step, StepEvent, StepStatus
from console.workloads.intent import GpuMode, GpuState
from console.workloads.queue import JobQueue, JobState
from console.workloads.service import Workloads
from tests.integration.gpu_rig import ROGUE_JOB, Rig, open_rig, sim_env

pytestmark = pytest.mark.slow


@asynccontextmanager
async def watching(workloads: Workloads) -> AsyncIterator[None]:
    task = asyncio.create_task(workloads.run())
    try:
        yield
    finally:
        task.cancel()


async def job_state(rig: Rig, job_id: int, *states: JobState) -> bool:
    job = await rig.workloads.queue.get(job_id)
    return job is not None and job.state in states


async def test_a_finished_job_is_done_and_the_next_one_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("ai", "idle")) as rig:
        short = await rig.submit(
            "short", "--total-steps", "20", priority=9, rate_usd_per_gpu_hour=3.6
        )
        after = await rig.submit("after")
        assert (await rig.switch("g0", "ai")).ok
        async with watching(rig.workloads):
            await rig.wait_for(lambda: job_state(rig, short.id, JobState.DONE), "job done")
            await rig.wait_for(lambda: job_state(rig, after.id, JobState.RUNNING), "next job")
        done = await rig.workloads.queue.get(short.id)
        assert done is not None and done.progress == 1.0 and done.finished_at is not None
        assert done.earned_usd > 0 and done.process is None
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.AI_RUNNING and g0.job is not None and g0.job.id == after.id
        policy = [e for _, e in await rig.audit.recent() if e.origin == "policy"]
        assert policy[-1].action == "gpu.switch" and policy[-1].reason == "a job ended"


async def test_a_failing_job_is_failed_with_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("ai", "idle")) as rig:
        job = await rig.submit("doomed")
        assert (await rig.switch("g0", "ai")).ok
        running = await rig.workloads.queue.get(job.id)
        assert running is not None and running.process is not None
        async with watching(rig.workloads):
            os.kill(running.process.pid, signal.SIGKILL)  # an OOM killer, say

            async def failed_and_freed() -> bool:
                # The job is booked first, then the GPU is marked IDLE: wait for both, or the
                # watcher could be stopped between the two.
                g0 = (await rig.workloads.gpus())[0]
                return (
                    await job_state(rig, job.id, JobState.FAILED)
                    and g0.state is GpuState.IDLE
                    and g0.switching is None
                )

            await rig.wait_for(failed_and_freed, "job failed and GPU freed")
        failed = await rig.workloads.queue.get(job.id)
        assert failed is not None and failed.last_error is not None
        assert "killed by SIGKILL" in failed.last_error and failed.log_path in failed.last_error
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.IDLE and g0.mode is GpuMode.AI  # free, waiting for work


async def test_a_crashed_miner_is_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        (g0, _) = await rig.workloads.gpus()
        first_pid = g0.miner_pid
        assert first_pid is not None
        events: list[StepEvent] = []

        async def restarted() -> bool:
            g0 = (await rig.workloads.gpus())[0]
            return g0.miner_pid not in (None, first_pid) and g0.switching is None

        with rig.workloads.events.listen(events.append):
            async with watching(rig.workloads):
                os.kill(first_pid, signal.SIGKILL)
                await rig.wait_for(restarted, "the miner to be restarted")
        kinds = [(e.step, e.status) for e in events]
        assert (Step.MINER_EXITED, StepStatus.FAILED) in kinds
        assert (Step.STEADY, StepStatus.OK) in kinds  # the new miner hashes
        exited = next(e for e in events if e.step is Step.MINER_EXITED)
        assert "killed by SIGKILL" in exited.message
        g0 = (await rig.workloads.gpus())[0]
        assert g0.state is GpuState.MINING and g0.miner_pid is not None
        assert await rig.pids_on(0) == {g0.miner_pid}
        policy = [e for _, e in await rig.audit.recent() if e.origin == "policy"]
        assert policy[-1].params == {"op": "resume"} and policy[-1].ok
        assert policy[-1].reason == "its miner exited; restarting it"


async def test_cancel_from_another_process_is_carried_out_by_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("ai", "idle")) as rig:
        job = await rig.submit("unwanted")
        assert (await rig.switch("g0", "ai")).ok

        async def training() -> bool:
            current = await rig.workloads.queue.get(job.id)
            return current is not None and current.progress > 0

        async def settled_idle() -> bool:
            (g0, _) = await rig.workloads.gpus()
            return g0.state is GpuState.IDLE and g0.switching is None

        async with watching(rig.workloads):
            await rig.wait_for(training, "the job to make progress")
            # What `hashpivot jobs cancel` does: its own connection to the same database.
            other = WorkloadDb.in_state_dir(rig.config.site.state_path)
            try:
                requested = await JobQueue(other, rig.config.jobs_path).cancel(job.id)
            finally:
                other.close()
            assert requested.cancel_requested and requested.state is JobState.RUNNING
            await rig.wait_for(lambda: job_state(rig, job.id, JobState.CANCELLED), "cancelled")
            await rig.wait_for(settled_idle, "the GPU to be free again")
        cancelled = await rig.workloads.queue.get(job.id)
        assert cancelled is not None and cancelled.progress > 0  # it checkpointed first
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.IDLE and await rig.pids_on(0) == set()
        entries = [e for _, e in await rig.audit.recent() if e.action == "job.cancel"]
        assert entries[-1].origin == "policy" and entries[-1].ok


async def test_cancel_of_a_running_job_through_the_console_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("ai", "idle")) as rig:
        job = await rig.submit("unwanted")
        nxt = await rig.submit("next")
        assert (await rig.switch("g0", "ai", job_id=job.id)).ok
        result = await rig.act("job.cancel", str(job.id))
        assert result.ok, result.message
        cancelled = await rig.workloads.queue.get(job.id)
        assert cancelled is not None and cancelled.state is JobState.CANCELLED
        following = await rig.workloads.queue.get(nxt.id)
        assert following is not None and following.state is JobState.RUNNING
        assert following.gpu_uuid == rig.uuid(0)


async def test_a_job_that_also_opens_another_gpu_is_killed_and_the_gpu_faulted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("idle", "idle")) as rig:
        job = await rig.submit("sloppy", argv=[sys.executable, str(ROGUE_JOB), rig.uuid(1)])
        result = await rig.switch("g0", "ai")
        assert not result.ok and result.detail["state"] == "FAULTED"
        assert "also opened another GPU" in result.message
        assert rig.uuid(1) in result.message
        requeued = await rig.workloads.queue.get(job.id)
        assert requeued is not None and requeued.state is JobState.REQUEUED
        assert requeued.process is None and requeued.last_error is not None

        async def both_free() -> bool:
            return not await rig.pids_on(0) and not await rig.pids_on(1)

        await rig.wait_for(both_free, "the killed job to leave both GPUs")
        # Abort: back to where it came from (idle), after verifying free again.
        aborted = await rig.act("gpu.switch", "g0", op="abort")
        assert aborted.ok, aborted.message
        assert aborted.detail["state"] == "IDLE"


async def test_a_job_that_crashes_at_launch_fails_and_faults_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        job = await rig.submit(
            "broken",
            argv=[
                sys.executable,
                "-c",
                "print('CUDA error: illegal address'); raise SystemExit(3)",
            ],
        )
        result = await rig.switch("g0", "ai")
        assert not result.ok and result.detail["state"] == "FAULTED"
        assert "exit code 3" in result.message
        failed = await rig.workloads.queue.get(job.id)
        assert failed is not None and failed.state is JobState.FAILED
        # Abort returns to mining: the previous mode.
        aborted = await rig.act("gpu.switch", "g0", op="abort")
        assert aborted.ok, aborted.message
        assert aborted.detail["state"] == "MINING"


async def test_a_job_that_ignores_its_checkpoint_signal_is_killed_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("idle", "idle")) as rig:
        job = await rig.submit(
            "deaf",
            "--checkpoint-signal",
            "USR1",
            "--ignore-signal",
            checkpoint_signal="SIGUSR1",
            grace_s=0.5,
        )
        assert (await rig.switch("g0", "ai")).ok
        result = await rig.switch("g0", "idle")
        assert result.ok, result.message
        requeued = await rig.workloads.queue.get(job.id)
        assert requeued is not None and requeued.state is JobState.REQUEUED
        assert requeued.last_error is not None and "did not checkpoint" in requeued.last_error
        stop = next(
            s for s in result.detail["steps"] if s["step"] == "preempt_job" and s["status"] == "ok"
        )
        assert "did not checkpoint" in stop["message"] and "SIGTERM" in stop["message"]


async def test_switch_result_codes_for_bad_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, start=False) as rig:
        retry = await rig.act("gpu.switch", "g1", op="retry")
        assert retry.code is ResultCode.REFUSED and "nothing to retry" in retry.message


class FlakyProbe:
    """The real driver, until `broken` is set: then NVML reads raise (a bug, not an NVML
    condition: the driver itself never raises for NVML trouble)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.broken = False

    async def sample(self) -> Any:
        if self.broken:
            raise RuntimeError("boom")
        return await self.inner.sample()


async def test_an_unexpected_error_mid_switch_faults_the_gpu_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        probe = FlakyProbe(rig.driver)
        rig.workloads.switcher.probe = probe

        def break_it(event: StepEvent) -> None:
            if event.step is Step.STOP_MINER and event.status is StepStatus.OK:
                probe.broken = True

        with rig.workloads.events.listen(break_it):
            result = await rig.switch("g0", "idle")
        assert not result.ok and result.code is ResultCode.FAILED
        assert result.detail["state"] == "FAULTED"
        assert "verify_free failed unexpectedly: RuntimeError: boom" in result.message
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.FAULTED and g0.failed_step == "verify_free" and g0.cordoned
        probe.broken = False
        retried = await rig.act("gpu.switch", "g0", op="retry")
        assert retried.ok and retried.detail["state"] == "IDLE"
