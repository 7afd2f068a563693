"""`kill` and a dropped SSH session stop the console in order, like `q`: the real `hashpivot`
in a real pseudo-terminal, over simulated GPUs with a miner and an AI job running.

After SIGTERM the console stops the simulated site (the job checkpoints and is requeued without
using up an attempt, the miner stops) and exits 0 with the terminal restored. After SIGHUP the
terminal is gone: the site is stopped the same way and the process leaves with 129, instead of
dying mid-write (the default) or hanging in a terminal that no longer exists.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest

from console.workloads.db import WorkloadDb
from console.workloads.queue import JobQueue, JobState
from simulators.gpu_state import STATE_ENV
from tests.gpu_site import gpu_site_toml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def simulation_processes(sim_dir: Path) -> list[psutil.Process]:
    """Live processes of this test's GPU simulation (the console sets the variable for them)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(STATE_ENV) == str(sim_dir) and proc.status() not in (
                psutil.STATUS_ZOMBIE,
                psutil.STATUS_DEAD,
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for p in found if p.pid != os.getpid()]


def drain(fd: int) -> None:
    """Read the terminal's output so the console never blocks writing to it."""
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


async def wait_for(check: object, what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 0), (signal.SIGHUP, 128 + signal.SIGHUP)]
)
async def test_a_stop_signal_stops_the_site_in_order(
    tmp_path: Path, signum: signal.Signals, exit_code: int
) -> None:
    # The second GPU starts in AI mode, so the queued job runs on it.
    config = gpu_site_toml(tmp_path, modes=("mining", "ai"))
    state = tmp_path / "state"
    sim_dir = state / "gpu-sim"

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    console = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "console.cli",
        "--config",
        str(config),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env={**os.environ, "TERM": "xterm-256color", "USER": "tester"},
        start_new_session=True,
    )
    os.close(slave)
    reader = threading.Thread(target=drain, args=(master,), daemon=True)
    reader.start()
    try:

        def running() -> bool:
            return len(simulation_processes(sim_dir)) == 2  # the miner and the job

        await wait_for(running, "the miner and the AI job to run")
        db = WorkloadDb.in_state_dir(state)  # the console has created it by now
        queue = JobQueue(db, state / "jobs")

        async def job_state() -> JobState:
            jobs = await queue.list_jobs()
            assert len(jobs) == 1
            return jobs[0].state

        deadline = time.monotonic() + 60
        while await job_state() is not JobState.RUNNING:
            assert time.monotonic() < deadline, "the job never reached running"
            await asyncio.sleep(0.2)

        if signum is signal.SIGHUP:
            os.close(master)  # the terminal goes away with the session
            master = -1
        console.send_signal(signum)
        code = await asyncio.wait_for(console.wait(), 120)
        assert code == exit_code

        assert simulation_processes(sim_dir) == []
        (job,) = await queue.list_jobs()
        # Stopped by the console and checkpointed: back in line, no attempt used up.
        assert job.state is JobState.REQUEUED and job.attempts == 0 and job.runtime_s > 0
        assert job.process is None
        db.close()
    finally:
        if console.returncode is None:
            console.kill()
            await console.wait()
        for proc in simulation_processes(sim_dir):
            proc.kill()
        if master >= 0:
            os.close(master)
