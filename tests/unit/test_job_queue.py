"""The AI job queue: transitions, the chooser, earnings, and persistence across reopening."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.workloads.db import WorkloadDb
from console.workloads.intent import GpuMode, GpuState, IntentStore
from console.workloads.queue import (
    TRANSITIONS,
    IllegalTransition,
    Job,
    JobQueue,
    JobSpec,
    JobSpecError,
    JobState,
    check_transition,
    choose,
    parse_job_spec,
)
from drivers.processes import ProcessIdentity

GiB = 1024**3


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def queue(tmp_path: Path, clock: Clock) -> AsyncIterator[JobQueue]:
    db = WorkloadDb.in_state_dir(tmp_path / "state")
    yield JobQueue(db, tmp_path / "state" / "jobs", clock=clock, max_attempts=3)
    db.close()


async def start_run(queue: JobQueue, job_id: int) -> None:
    """Claim the (only waiting) job on GPU-a, launch it and see it running."""
    claimed = await queue.claim_next("GPU-a", None)
    assert claimed is not None and claimed.id == job_id
    await queue.mark_launched(job_id, IDENT)
    await queue.mark_running(job_id)


def spec(name: str = "train", **kw: object) -> JobSpec:
    base: dict[str, object] = {"argv": ["python", "train.py"], "name": name}
    base.update(kw)
    return parse_job_spec(base)


IDENT = ProcessIdentity(pid=4242, create_time=123.5, cmdline=("python", "train.py"))


async def test_submit_assigns_paths_and_defaults(queue: JobQueue, tmp_path: Path) -> None:
    job = await queue.submit(spec(rate_usd_per_gpu_hour=2.5), submitted_by="ops")
    assert job.state is JobState.QUEUED and job.progress == 0.0 and job.attempts == 0
    home = tmp_path / "state" / "jobs" / str(job.id)
    assert job.log_path == str(home / "job.log")
    assert job.checkpoint_dir == str(home / "checkpoint")
    assert job.progress_path == str(home / "progress.json")
    assert job.grace_s == 60.0 and job.checkpoint_signal == "SIGTERM"
    assert job.submitted_by == "ops" and job.argv == ("python", "train.py")


async def test_full_life_books_runtime_and_earnings(queue: JobQueue, clock: Clock) -> None:
    job = await queue.submit(spec(rate_usd_per_gpu_hour=3.6))
    claimed = await queue.claim_next("GPU-a", 24 * GiB)
    assert claimed is not None and claimed.id == job.id and claimed.state is JobState.STARTING
    assert claimed.gpu_uuid == "GPU-a"
    launched = await queue.mark_launched(job.id, IDENT)
    assert launched.process == IDENT and launched.attempts == 1
    running = await queue.mark_running(job.id)
    clock.now += 1000
    assert running.earned_usd_at(clock.now) == pytest.approx(1.0)
    await queue.update_progress(job.id, 0.4)
    preempting = await queue.mark_preempting(job.id)
    assert preempting.state is JobState.PREEMPTING
    requeued = await queue.end_run(job.id, JobState.REQUEUED, progress=0.5)
    assert requeued.state is JobState.REQUEUED and requeued.progress == 0.5
    assert requeued.gpu_uuid is None and requeued.process is None
    assert requeued.runtime_s == pytest.approx(1000) and requeued.earned_usd == pytest.approx(1.0)
    # Second run on another GPU: earnings accumulate, the requeued job keeps its place.
    again = await queue.claim_next("GPU-b", 24 * GiB)
    assert again is not None and again.id == job.id
    await queue.mark_launched(job.id, IDENT)
    await queue.mark_running(job.id)
    clock.now += 2000
    done = await queue.end_run(job.id, JobState.DONE, progress=1.0)
    assert done.state is JobState.DONE and done.finished_at == clock.now
    assert done.earned_usd == pytest.approx(3.0) and done.attempts == 2


async def test_illegal_transitions_raise_and_change_nothing(queue: JobQueue) -> None:
    job = await queue.submit(spec())
    with pytest.raises(IllegalTransition, match="queued → running is not allowed"):
        await queue.mark_running(job.id)
    await queue.cancel(job.id)
    with pytest.raises(IllegalTransition):
        await queue.mark_running(job.id)
    with pytest.raises(IllegalTransition, match="only a job that has not finished"):
        await queue.cancel(job.id)
    after = await queue.get(job.id)
    assert after is not None and after.state is JobState.CANCELLED


def test_transition_table_is_explicit_and_final_states_are_final() -> None:
    assert set(TRANSITIONS) == set(JobState)
    for final in (JobState.DONE, JobState.CANCELLED):
        assert not TRANSITIONS[final]
        with pytest.raises(IllegalTransition):
            check_transition(final, JobState.QUEUED, 1)
    check_transition(JobState.RUNNING, JobState.PREEMPTING, 1)
    with pytest.raises(IllegalTransition):
        check_transition(JobState.QUEUED, JobState.DONE, 1)


async def test_chooser_priority_then_age_fitting_vram(queue: JobQueue, clock: Clock) -> None:
    old_low = await queue.submit(spec("old-low", priority=0))
    clock.now += 1
    big = await queue.submit(spec("big", priority=9, min_vram_bytes=80 * GiB))
    clock.now += 1
    high_new = await queue.submit(spec("high-new", priority=5))
    clock.now += 1
    high_newer = await queue.submit(spec("high-newer", priority=5))
    waiting = await queue.list_jobs([JobState.QUEUED])
    assert [j.name for j in waiting] == ["big", "high-new", "high-newer", "old-low"]
    # A 24 GiB card cannot take the 80 GiB job: the best that fits is the older priority-5.
    pick = choose(waiting, 24 * GiB)
    assert pick is not None and pick.id == high_new.id
    pick = choose(waiting, 80 * GiB)
    assert pick is not None and pick.id == big.id
    # Unknown memory: only jobs without a minimum fit.
    pick = choose(waiting, None)
    assert pick is not None and pick.id == high_new.id
    assert choose([j for j in waiting if j.id == big.id], 24 * GiB) is None
    assert old_low.id < high_newer.id


async def test_claim_is_exclusive_and_release_puts_it_back(queue: JobQueue) -> None:
    job = await queue.submit(spec())
    first = await queue.claim_next("GPU-a", None)
    second = await queue.claim_next("GPU-b", None)
    assert first is not None and second is None
    released = await queue.release(job.id, "switch refused")
    assert released.state is JobState.QUEUED and released.last_error == "switch refused"
    # Once launched, a released job counts as requeued (it has run).
    await queue.claim_next("GPU-a", None)
    await queue.mark_launched(job.id, IDENT)
    back = await queue.release(job.id)
    assert back.state is JobState.REQUEUED


async def test_cancel_waiting_now_active_by_request(queue: JobQueue) -> None:
    waiting = await queue.submit(spec("w"))
    active = await queue.submit(spec("a"))
    assert (await queue.cancel(waiting.id)).state is JobState.CANCELLED
    await queue.claim_next("GPU-a", None, job_id=active.id)
    requested = await queue.cancel(active.id)
    assert requested.state is JobState.STARTING and requested.cancel_requested
    # A cancel-requested job is never chosen again.
    assert await queue.claim_next("GPU-b", None) is None


async def test_reprioritise_and_retry(queue: JobQueue) -> None:
    job = await queue.submit(spec())
    assert (await queue.reprioritise(job.id, 50)).priority == 50
    with pytest.raises(JobSpecError):
        await queue.reprioritise(job.id, 5000)
    await start_run(queue, job.id)
    failed = await queue.end_run(job.id, JobState.FAILED, error="exit code 1")
    assert failed.state is JobState.FAILED and failed.last_error == "exit code 1"
    with pytest.raises(IllegalTransition):
        await queue.reprioritise(job.id, 1)
    retried = await queue.retry(job.id)
    assert retried.state is JobState.REQUEUED and retried.attempts == 0


async def test_requeue_after_max_attempts_fails_the_job(queue: JobQueue) -> None:
    job = await queue.submit(spec())
    final: Job | None = None
    for _ in range(3):
        await start_run(queue, job.id)
        final = await queue.end_run(job.id, JobState.REQUEUED, error="process gone")
    assert final is not None and final.state is JobState.FAILED
    assert final.last_error is not None and "max_attempts" in final.last_error


async def test_preemptions_that_checkpoint_do_not_use_up_attempts(queue: JobQueue) -> None:
    # A job preempted every night (switches, console restarts) and checkpointing each time is
    # healthy: it must never be failed for it. Crashes still count.
    job = await queue.submit(spec())
    booked: Job | None = None
    for _ in range(10):  # more than max_attempts (3)
        await start_run(queue, job.id)
        booked = await queue.end_run(job.id, JobState.REQUEUED, progress=0.1, checkpointed=True)
    assert booked is not None and booked.state is JobState.REQUEUED and booked.attempts == 0
    for _ in range(3):
        await start_run(queue, job.id)
        booked = await queue.end_run(job.id, JobState.REQUEUED, error="process gone")
    assert booked is not None and booked.state is JobState.FAILED


async def test_everything_survives_reopening(tmp_path: Path, clock: Clock) -> None:
    state = tmp_path / "state"
    db = WorkloadDb.in_state_dir(state)
    queue = JobQueue(db, state / "jobs", clock=clock)
    intents = IntentStore(db, clock=clock)
    job = await queue.submit(spec(rate_usd_per_gpu_hour=1.0, env={"DATA": "/d"}))
    await start_run(queue, job.id)
    await intents.ensure("GPU-a", GpuMode.MINING)
    await intents.update(
        "GPU-a",
        state=GpuState.AI_RUNNING,
        mode=GpuMode.AI,
        job_id=job.id,
        miner=IDENT,
        switch_id="s1",
        note="launched",
    )
    db.close()

    db2 = WorkloadDb.in_state_dir(state)
    queue2 = JobQueue(db2, state / "jobs", clock=clock)
    intents2 = IntentStore(db2, clock=clock)
    try:
        again = await queue2.get(job.id)
        assert again is not None and again.state is JobState.RUNNING
        assert again.process == IDENT and again.env == {"DATA": "/d"}
        intent = await intents2.get("GPU-a")
        assert intent is not None and intent.state is GpuState.AI_RUNNING
        assert intent.mode is GpuMode.AI and intent.job_id == job.id and intent.miner == IDENT
        history = await intents2.transitions("GPU-a")
        assert [(t.from_state, t.to_state) for t in history] == [
            (GpuState.IDLE, GpuState.AI_RUNNING)
        ]
        cleared = await intents2.update("GPU-a", miner=None, error=None)
        assert cleared.miner is None and cleared.job_id == job.id
    finally:
        db2.close()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"name": "x"}, "argv"),
        ({"name": "x", "argv": []}, "argv"),
        ({"name": "", "argv": ["a"]}, "name"),
        ({"name": "x", "argv": ["a"], "rate_usd_per_gpu_hour": -1}, "rate_usd_per_gpu_hour"),
        ({"name": "x", "argv": ["a"], "checkpoint_signal": "SIGKILL"}, "checkpoint_signal"),
        ({"name": "x", "argv": ["a"], "grace_s": 0}, "grace_s"),
        ({"name": "x", "argv": ["a"], "argv2": 1}, "argv2"),
        ({"name": "x", "argv": "python train.py"}, "argv"),
    ],
)
def test_bad_job_definitions_name_the_field(payload: dict[str, object], message: str) -> None:
    with pytest.raises(JobSpecError, match=message):
        parse_job_spec(payload)
