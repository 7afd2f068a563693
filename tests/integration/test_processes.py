"""drivers.processes against real OS processes: launch, escalation, re-attach, PID reuse."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from drivers.processes import (
    LaunchSpec,
    ManagedProcess,
    ProcessError,
    ProcessIdentity,
    ProcessRunner,
    StopStep,
    env_for_gpu,
)

ROOT = Path(__file__).resolve().parents[2]

# A stand-in workload: installs its signal handlers, says it is ready, then sleeps. What it
# ignores is chosen by argv, so one script covers the polite, the stubborn and the deaf.
WORKLOAD = textwrap.dedent(
    """
    import os, signal, sys, time
    ready, *ignore = sys.argv[1:]
    def polite(signum, frame):
        print(f"got {signal.Signals(signum).name}, exiting", flush=True)
        sys.exit(0)
    for name in ("SIGINT", "SIGTERM"):
        sig = signal.Signals[name]
        signal.signal(sig, signal.SIG_IGN if name in ignore else polite)
    print("gpu", os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"),
          flush=True)
    open(ready, "w").close()
    while True:
        time.sleep(0.05)
    """
)

_serial = itertools.count()

STEPS = (
    StopStep(signal="SIGINT", wait_s=1.0),
    StopStep(signal="SIGTERM", wait_s=1.0),
    StopStep(signal="SIGKILL", wait_s=5.0),
)


@pytest.fixture
async def runner() -> AsyncIterator[ProcessRunner]:
    r = ProcessRunner()
    yield r
    r.close()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "workload.py"
    path.write_text(WORKLOAD)
    return path


async def start(
    runner: ProcessRunner, script: Path, tmp_path: Path, *ignore: str
) -> ManagedProcess:
    ready = tmp_path / f"ready-{next(_serial)}"
    proc = await runner.launch(
        LaunchSpec(
            argv=(sys.executable, str(script), str(ready), *ignore),
            env=env_for_gpu("GPU-test-0001"),
            log_path=str(tmp_path / "logs" / "w.log"),
        )
    )
    for _ in range(400):
        if ready.exists() or not proc.alive():
            break
        await proc.wait(0.025)
    assert ready.exists(), "workload did not get ready"
    return proc


async def test_launch_pins_gpu_logs_output_and_runs_in_its_own_session(
    runner: ProcessRunner, script: Path, tmp_path: Path
) -> None:
    proc = await start(runner, script, tmp_path)
    assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    assert os.getpgid(proc.pid) == proc.pid
    assert proc.identity.cmdline[1] == str(script)
    outcome = await proc.stop(STEPS)
    assert outcome.stopped and outcome.ended_by == "SIGINT" and outcome.step_index == 0
    assert outcome.exit is not None and outcome.exit.known and outcome.exit.code == 0
    log = (tmp_path / "logs" / "w.log").read_text()
    assert "gpu GPU-test-0001 PCI_BUS_ID" in log
    assert "got SIGINT, exiting" in log
    assert "=== hashpivot" in log


async def test_ignoring_sigint_escalates_to_sigterm(
    runner: ProcessRunner, script: Path, tmp_path: Path
) -> None:
    proc = await start(runner, script, tmp_path, "SIGINT")
    outcome = await proc.stop(STEPS)
    assert outcome.stopped and outcome.ended_by == "SIGTERM" and outcome.step_index == 1
    assert outcome.signals_sent == ("SIGINT", "SIGTERM")
    assert outcome.exit is not None and outcome.exit.code == 0


async def test_ignoring_sigint_and_sigterm_escalates_to_sigkill(
    runner: ProcessRunner, script: Path, tmp_path: Path
) -> None:
    proc = await start(runner, script, tmp_path, "SIGINT", "SIGTERM")
    outcome = await proc.stop(STEPS)
    assert outcome.stopped and outcome.ended_by == "SIGKILL" and outcome.step_index == 2
    assert outcome.exit is not None and outcome.exit.signal == "SIGKILL"
    assert "ended after SIGKILL" in outcome.describe()


async def test_a_process_that_outlives_every_step_is_reported_not_stopped(
    runner: ProcessRunner, script: Path, tmp_path: Path
) -> None:
    proc = await start(runner, script, tmp_path, "SIGINT", "SIGTERM")
    outcome = await proc.stop([StopStep(signal="SIGINT", wait_s=0.3)])
    assert not outcome.stopped and outcome.exit is None and proc.alive()
    assert "still running after SIGINT" in outcome.describe()
    final = await proc.stop([StopStep(signal="SIGKILL", wait_s=5.0)])
    assert final.stopped


async def test_exited_children_are_reaped_not_left_as_zombies(
    runner: ProcessRunner, tmp_path: Path
) -> None:
    proc = await runner.launch(
        LaunchSpec(
            argv=(sys.executable, "-c", "raise SystemExit(3)"),
            log_path=str(tmp_path / "x.log"),
        )
    )
    status = await proc.wait(30)
    assert status is not None and status.code == 3
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(proc.pid).status()
    already = await proc.stop(STEPS)
    assert already.stopped and already.step_index == -1


async def test_launch_errors_say_what_to_fix(runner: ProcessRunner, tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="no such program"):
        await runner.launch(
            LaunchSpec(argv=(str(tmp_path / "t-rex"),), log_path=str(tmp_path / "l.log"))
        )
    with pytest.raises(ProcessError, match="empty command"):
        await runner.launch(LaunchSpec(argv=(), log_path=str(tmp_path / "l.log")))


async def test_reattach_by_identity_then_stop_through_the_pidfd(
    runner: ProcessRunner, script: Path, tmp_path: Path
) -> None:
    launched = await start(runner, script, tmp_path, "SIGINT")
    other = ProcessRunner()
    try:
        attached = await other.attach(launched.identity)
        assert attached is not None and attached.reattached and attached.alive()
        outcome = await attached.stop(STEPS)
        assert outcome.stopped and outcome.ended_by == "SIGTERM"
        assert outcome.exit is not None and not outcome.exit.known  # init got the status
        assert "unknown" in outcome.exit.describe()
    finally:
        other.close()
    assert await launched.wait(10) is not None


async def test_a_recycled_pid_is_never_taken_for_our_process(
    runner: ProcessRunner, script: Path, tmp_path: Path
) -> None:
    proc = await start(runner, script, tmp_path)
    live = proc.identity
    # Same PID, another start time: what a recycled PID looks like.
    recycled = ProcessIdentity(
        pid=live.pid, create_time=live.create_time - 60, cmdline=live.cmdline
    )
    assert await runner.attach(recycled) is None
    # Same PID and start time but another program.
    renamed = ProcessIdentity(pid=live.pid, create_time=live.create_time, cmdline=("t-rex",))
    assert await runner.attach(renamed) is None
    assert proc.alive()  # refusing to attach never touched the live process
    await proc.stop(STEPS)
    # A PID that is gone.
    assert await runner.attach(live) is None


CONSOLE = textwrap.dedent(
    """
    import asyncio, json, sys
    from drivers.processes import LaunchSpec, ProcessRunner
    async def main():
        runner = ProcessRunner()
        proc = await runner.launch(LaunchSpec(
            argv=(sys.executable, "-c", "import time\\nwhile True: time.sleep(0.1)"),
            log_path=sys.argv[1]))
        print(json.dumps({"pid": proc.pid, "create_time": proc.identity.create_time,
                          "cmdline": list(proc.identity.cmdline)}), flush=True)
        await asyncio.sleep(3600)
    asyncio.run(main())
    """
)


async def test_workload_survives_kill_9_of_the_console_and_is_reattached(
    runner: ProcessRunner, tmp_path: Path
) -> None:
    console = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CONSOLE,
        str(tmp_path / "job.log"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert console.stdout is not None
    line = await console.stdout.readline()
    console.send_signal(signal.SIGKILL)
    await console.wait()
    raw = json.loads(line)
    identity = ProcessIdentity(
        pid=raw["pid"], create_time=raw["create_time"], cmdline=tuple(raw["cmdline"])
    )
    attached = await runner.attach(identity)
    assert attached is not None and attached.alive()
    outcome = await attached.stop(STEPS)
    assert outcome.stopped and outcome.ended_by == "SIGINT"
