"""`kill -9` while writing: every job whose submit was acknowledged is in the queue afterwards."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from pathlib import Path

from console.workloads.db import WorkloadDb
from console.workloads.queue import JobQueue, JobState

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from console.workloads.db import WorkloadDb
    from console.workloads.queue import JobQueue, parse_job_spec

    async def main():
        state = Path(sys.argv[1])
        queue = JobQueue(WorkloadDb.in_state_dir(state), state / "jobs")
        n = 0
        while True:
            job = await queue.submit(parse_job_spec({"argv": ["train"], "name": f"j{n}"}))
            if n % 3 == 0:  # state changes too, not only inserts
                await queue.claim_next(f"GPU-{n}", None, job_id=job.id)
            print(job.id, flush=True)  # acknowledged: committed before submit returned
            n += 1

    asyncio.run(main())
    """
)


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    state = tmp_path / "state"
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(state), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert writer.stdout is not None
    acknowledged: list[int] = []
    while len(acknowledged) < 60:
        line = await writer.stdout.readline()
        assert line, "writer exited early"
        acknowledged.append(int(line))
    writer.send_signal(signal.SIGKILL)  # mid-stream: it is writing the next job right now
    rest = await writer.stdout.read()
    acknowledged += [int(x) for x in rest.split()]
    await writer.wait()

    db = WorkloadDb.in_state_dir(state)
    try:
        queue = JobQueue(db, state / "jobs")
        jobs = {j.id: j for j in await queue.list_jobs()}
        assert set(acknowledged) <= set(jobs)
        for job_id in acknowledged:
            n = int(jobs[job_id].name[1:])
            expected = JobState.STARTING if n % 3 == 0 else JobState.QUEUED
            # The claim of job n is acknowledged together with it (printed after both).
            assert jobs[job_id].state is expected
    finally:
        db.close()
