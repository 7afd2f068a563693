"""GPU mode switching end to end on the simulated rig: the real NVML driver and binding over the
simulated NVML library, real miner and job processes, the real queue, intent and audit log.
Every switch goes through the action path, as the TUI, MQTT and CLI do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from console.actions import ResultCode
from console.workloads.events import Step, StepEvent, StepStatus
from console.workloads.intent import GpuMode, GpuState
from console.workloads.queue import JobState
from drivers.gpu_reading import NvmlState
from simulators.gpu_state import clear_faults, reset_gpu, set_faults
from tests.integration.gpu_rig import open_rig, sim_env

pytestmark = pytest.mark.slow


def text_of(path: str | Path) -> str:
    return Path(path).read_text()


def steps_of(detail: dict[str, object]) -> list[tuple[str, str]]:
    steps = detail["steps"]
    assert isinstance(steps, list)
    return [(s["step"], s["status"]) for s in steps]


def step_message(detail: dict[str, object], step: str, status: str = "ok") -> str:
    steps = detail["steps"]
    assert isinstance(steps, list)
    return next(s["message"] for s in steps if s["step"] == step and s["status"] == status)


def energy_j(state: NvmlState, uuid: str) -> float:
    reading = next(g for g in state.gpus if g.static.uuid == uuid)
    assert reading.sample is not None and reading.sample.energy_j is not None
    return reading.sample.energy_j


async def test_mining_to_ai_and_back_requeues_the_job_with_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        wl = rig.workloads
        # First start: g0's intent is mining, so the console started its miner and saw it hash.
        (g0, g1) = await wl.gpus()
        assert g0.state is GpuState.MINING and g0.miner_pid is not None
        assert g1.state is GpuState.IDLE and g1.miner_pid is None
        assert await rig.pids_on(0) == {g0.miner_pid}

        job = await rig.submit("llama-ft", customer="acme", rate_usd_per_gpu_hour=1.8)
        result = await rig.switch("g0", "ai")
        assert result.ok, result.message
        assert result.detail["state"] == "AI_RUNNING"
        assert "ended after SIGINT" in step_message(result.detail, "stop_miner")
        order = [s for s, status in steps_of(result.detail) if status == "ok"]
        assert order.index("stop_miner") < order.index("verify_free") < order.index("launch")
        assert order.index("launch") < order.index("confirm") < order.index("steady")

        running = await wl.queue.get(job.id)
        assert running is not None and running.state is JobState.RUNNING
        assert running.gpu_uuid == rig.uuid(0) and running.process is not None
        # NVML shows the job's PID on that GPU and on no other.
        assert await rig.pids_on(0) == {running.process.pid}
        assert running.process.pid not in await rig.pids_on(1)
        assert (await wl.gpus())[0].miner_pid is None

        async def made_progress() -> bool:
            current = await wl.queue.get(job.id)
            return current is not None and current.progress > 0

        watch = asyncio.create_task(wl.run())
        try:
            first = await rig.nvml()
            await wl.record_energy(first)
            await rig.wait_for(made_progress, "the job to report progress")
            # The NVML tick books energy to the job: take the next sample once the GPU's
            # energy counter has moved (two samples a few ms apart can read the same value).
            later: list[NvmlState] = []

            async def counter_moved() -> bool:
                later[:] = [await rig.nvml()]
                return energy_j(later[0], rig.uuid(0)) > energy_j(first, rig.uuid(0))

            await rig.wait_for(counter_moved, "the energy counter to advance")
            await wl.record_energy(later[0])
            back = await rig.switch("g0", "mining")
        finally:
            watch.cancel()
        assert back.ok, back.message
        assert back.detail["state"] == "MINING"
        assert "hashing at" in step_message(back.detail, "steady")
        preempt = step_message(back.detail, "preempt_job")
        assert "checkpointed" in preempt and "requeued" in preempt

        assert (await wl.energy.for_job(job.id)).joules > 0
        assert (await wl.energy.by_gpu())[rig.uuid(0)]["ai"].joules > 0
        requeued = await wl.queue.get(job.id)
        assert requeued is not None and requeued.state is JobState.REQUEUED
        assert requeued.progress > 0 and requeued.gpu_uuid is None and requeued.process is None
        assert requeued.earned_usd > 0 and requeued.last_error is None
        checkpoint = json.loads((Path(requeued.checkpoint_dir) / "checkpoint.json").read_text())
        assert checkpoint["step"] > 0
        g0_after = (await wl.gpus())[0]
        assert g0_after.mode is GpuMode.MINING and g0_after.miner_pid is not None
        assert await rig.pids_on(0) == {g0_after.miner_pid}

        # The requeued job resumes from its checkpoint on the other GPU.
        resumed = await rig.switch("g1", "ai")
        assert resumed.ok, resumed.message
        assert resumed.detail["job_id"] == job.id
        log = text_of(requeued.log_path)
        assert f"resuming from checkpoint at step {checkpoint['step']}/" in log

        audit = [e for _, e in await rig.audit.recent() if e.action == "gpu.switch"]
        assert [(e.target, e.params.get("mode"), e.ok) for e in audit][-3:] == [
            ("g0", "ai", True),
            ("g0", "mining", True),
            ("g1", "ai", True),
        ]
        assert audit[-3].before is not None and audit[-3].before["state"] == "MINING"
        assert audit[-3].after is not None and audit[-3].after["state"] == "AI_RUNNING"
        history = await wl.intents.transitions(rig.uuid(0))
        assert [t.to_state for t in history][-4:] == [
            GpuState.PREEMPTING_AI,
            GpuState.VERIFYING_FREE,
            GpuState.PREPARING_MINER,
            GpuState.MINING,
        ]


async def test_a_miner_that_ignores_sigint_is_escalated_to_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, miner_extra=[("--ignore-sigint",)]) as rig:
        result = await rig.switch("g0", "idle")
        assert result.ok, result.message
        assert result.detail["state"] == "IDLE"
        stop = step_message(result.detail, "stop_miner")
        assert "ended after SIGTERM" in stop
        assert await rig.pids_on(0) == set()


async def test_memory_left_allocated_after_exit_needs_a_reset_then_retry_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        set_faults(rig.sim_dir, rig.uuid(0), leak=True)
        result = await rig.switch("g0", "idle")
        assert not result.ok
        assert result.code is ResultCode.FAILED
        assert result.detail["state"] == "NEEDS_RESET"
        assert "still allocated with no process" in result.message
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.NEEDS_RESET and g0.failed_step == "verify_free"
        assert g0.cordoned and g0.error is not None

        # A plain switch is refused while held; the operator resets the GPU, then retries.
        refused = await rig.switch("g0", "mining")
        assert not refused.ok and refused.code is ResultCode.REFUSED
        clear_faults(rig.sim_dir, rig.uuid(0))
        assert reset_gpu(rig.sim_dir, rig.uuid(0)) > 0
        retried = await rig.act("gpu.switch", "g0", op="retry")
        assert retried.ok, retried.message
        assert retried.detail["state"] == "IDLE"


async def test_gpu_lost_mid_switch_ends_lost_and_stays_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        await rig.submit("job")

        def fall_off_the_bus(event: StepEvent) -> None:
            if event.step is Step.STOP_MINER and event.status is StepStatus.STARTED:
                set_faults(rig.sim_dir, rig.uuid(0), lost=True)

        with rig.workloads.events.listen(fall_off_the_bus):
            result = await rig.switch("g0", "ai")
        assert not result.ok and result.code is ResultCode.FAILED
        assert result.detail["state"] == "LOST"
        assert "GPU lost" in result.message
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.LOST
        # The job it had reserved is back in line, untouched.
        (job,) = await rig.workloads.jobs()
        assert job.state is JobState.QUEUED and job.attempts == 0
        again = await rig.switch("g0", "mining")
        assert not again.ok and again.code is ResultCode.REFUSED
        assert "lost" in again.message.lower()


async def test_a_second_switch_on_a_busy_gpu_gets_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, miner_extra=[("--ignore-sigint",)]) as rig:
        draining = asyncio.Event()

        def on_event(event: StepEvent) -> None:
            if event.step is Step.STOP_MINER and event.status is StepStatus.STARTED:
                draining.set()

        with rig.workloads.events.listen(on_event):
            first = asyncio.create_task(rig.switch("g0", "idle"))
            await draining.wait()
            second = await rig.switch("g0", "ai")
            other_gpu = await rig.switch("g1", "idle")  # another GPU is not blocked
            result = await first
        assert second.code is ResultCode.BUSY and not second.ok
        assert "is running" in second.message
        assert other_gpu.ok
        assert result.ok, result.message
        busy = [e for _, e in await rig.audit.recent() if e.code == "busy"]
        assert len(busy) == 1


async def test_minimum_dwell_refuses_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, min_dwell_s=3600) as rig:
        refused = await rig.switch("g0", "idle")
        assert refused.code is ResultCode.REFUSED
        assert "minimum dwell is 60.0 min" in refused.message
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.MINING and g0.miner_pid is not None  # nothing touched
        forced = await rig.switch("g0", "idle", force=True)
        assert forced.ok, forced.message
        # An idle GPU earns nothing: leaving it is never held back by the dwell time.
        await rig.submit("job")
        assert (await rig.switch("g0", "ai")).ok


async def test_refusals_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path) as rig:
        no_job = await rig.switch("g0", "ai")
        assert no_job.code is ResultCode.REFUSED and "no queued job fits" in no_job.message
        too_big = await rig.submit("big", min_vram_bytes=200 * 2**30)
        specific = await rig.switch("g0", "ai", job_id=too_big.id)
        assert specific.code is ResultCode.REFUSED and "needs 200 GiB" in specific.message
        unknown = await rig.switch("gpu9", "idle")
        assert unknown.code is ResultCode.NOT_FOUND
        bad = await rig.act("gpu.switch", "g0", mode="sleep")
        assert bad.code is ResultCode.INVALID
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.MINING and g0.error is None and not g0.cordoned


async def test_console_restart_reattaches_a_running_job_and_requeues_a_dead_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("ai", "ai")) as rig:
        first = await rig.submit("survivor", priority=5)
        second = await rig.submit("victim", priority=1)
        for gpu in ("g0", "g1"):
            assert (await rig.switch(gpu, "ai")).ok
        wl = rig.workloads
        survivor = await wl.queue.get(first.id)
        victim = await wl.queue.get(second.id)
        assert survivor is not None and survivor.process is not None
        assert victim is not None and victim.process is not None

        async def victim_checkpointed() -> bool:
            return (Path(second.checkpoint_dir) / "checkpoint.json").exists()

        watch = asyncio.create_task(wl.run())
        await rig.wait_for(victim_checkpointed, "a periodic checkpoint")
        watch.cancel()

        # The console goes away (its handles forgotten, the processes keep running) and the
        # victim's process dies while it is gone.
        await rig.restart(start=False)
        os.kill(victim.process.pid, signal.SIGKILL)
        results = await rig.workloads.start()
        assert all(r.ok for r in results), [r.message for r in results]

        wl2 = rig.workloads
        kept = await wl2.queue.get(first.id)
        assert kept is not None and kept.state is JobState.RUNNING
        assert kept.process == survivor.process  # the same process, re-attached
        assert (await wl2.gpus())[0].job is not None
        relaunched = await wl2.queue.get(second.id)
        # Requeued with its progress, then resumed by the restart on its GPU (mode ai).
        assert relaunched is not None and relaunched.state is JobState.RUNNING
        assert relaunched.attempts == 2 and relaunched.progress > 0
        assert relaunched.process is not None and relaunched.process.pid != victim.process.pid
        runs = text_of(relaunched.log_path).split("=== hashpivot")[1:]
        assert len(runs) == 2 and "starting fresh" in runs[0]
        resumed_at = int(runs[1].split("resuming from checkpoint at step ")[1].split("/")[0])
        assert resumed_at > 0  # from its last periodic checkpoint, not from scratch
        assert await rig.pids_on(0) == {survivor.process.pid}
        assert await rig.pids_on(1) == {relaunched.process.pid}
        policy = [e for _, e in await rig.audit.recent() if e.origin == "policy"]
        assert any(e.params.get("op") == "resume" and e.target == "g1" for e in policy)


async def test_a_privileged_gpu_gets_each_modes_power_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    extra = "privileged = true\nai_power_limit_w = 380\nmining_power_limit_w = 300\n"
    async with open_rig(tmp_path, gpu_extra=extra, tuner=True) as rig:

        async def limit_w() -> float | None:
            state = await rig.nvml()
            reading = next(g for g in state.gpus if g.static.uuid == rig.uuid(0))
            return reading.sample.power_limit_w if reading.sample else None

        assert await limit_w() == 300  # set when the first start brought the miner up
        await rig.submit("job")
        to_ai = await rig.switch("g0", "ai")
        assert to_ai.ok, to_ai.message
        assert "power limit 380 W for ai" in step_message(to_ai.detail, "prepare")
        assert await limit_w() == 380
        # Only that GPU: the idle RTX 3090 beside it keeps its board default.
        (g1_reading,) = [g for g in (await rig.nvml()).gpus if g.static.uuid == rig.uuid(1)]
        assert g1_reading.sample is not None and g1_reading.sample.power_limit_w == 350


async def test_a_console_gone_between_launch_and_confirm_confirms_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_env(monkeypatch, tmp_path)
    async with open_rig(tmp_path, modes=("idle", "idle")) as rig:
        job = await rig.submit("job")
        launched = asyncio.Event()

        def on_event(event: StepEvent) -> None:
            if event.step is Step.LAUNCH and event.status is StepStatus.OK:
                launched.set()

        with rig.workloads.events.listen(on_event):
            switching = asyncio.create_task(rig.switch("g0", "ai"))
            await launched.wait()
            switching.cancel()  # the console dies right here: nothing after runs
            with pytest.raises(asyncio.CancelledError):
                await switching
        half = await rig.workloads.queue.get(job.id)
        assert half is not None and half.state is JobState.STARTING and half.process is not None
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.PREPARING_AI

        results = await rig.restart()
        assert [r.ok for r in results] == [True], [r.message for r in results]
        confirmed = await rig.workloads.queue.get(job.id)
        assert confirmed is not None and confirmed.state is JobState.RUNNING
        assert confirmed.process == half.process and confirmed.attempts == 1
        (g0, _) = await rig.workloads.gpus()
        assert g0.state is GpuState.AI_RUNNING
        assert await rig.pids_on(0) == {half.process.pid}
