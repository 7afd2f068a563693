"""`hashpivot jobs` as an operator runs it: a real process on a real state directory, every
command audited through the action path with origin CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.audit import AuditLog
from console.jobs_cli import parse_size
from console.workloads.db import WorkloadDb
from console.workloads.queue import JobQueue, JobState
from drivers.processes import ProcessIdentity

ROOT = Path(__file__).resolve().parents[2]


def hashpivot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "jobs", "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nname = "cli"\nstate_dir = "{tmp_path / "state"}"\n')
    return path


def test_submit_list_cancel_round_trip(config: Path, tmp_path: Path) -> None:
    submitted = hashpivot(
        config,
        "--actor",
        "maria",
        "--reason",
        "contract 42",
        "submit",
        "--name",
        "llama-ft",
        "--customer",
        "acme",
        "--rate",
        "1.85",
        "--min-vram",
        "24GiB",
        "--priority",
        "7",
        "--grace",
        "90",
        "--checkpoint-signal",
        "SIGUSR1",
        "--env",
        "DATA=/srv/d",
        "--",
        "python",
        "train.py",
        "--epochs",
        "3",
    )
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.strip() == "job 1 (llama-ft) queued at priority 7"
    hashpivot(config, "submit", "--name", "second", "--", "python", "eval.py")

    table = hashpivot(config, "list")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "STATE", "PRIO", "NAME"]
    assert lines[1].split()[:5] == ["1", "queued", "7", "llama-ft", "acme"]
    assert lines[2].split()[:5] == ["2", "queued", "0", "second", "—"]

    raw = json.loads(hashpivot(config, "list", "--json").stdout)
    first = raw[0]
    assert first["argv"] == ["python", "train.py", "--epochs", "3"]
    assert first["min_vram_bytes"] == 24 * 2**30 and first["grace_s"] == 90.0
    assert first["checkpoint_signal"] == "SIGUSR1" and first["env"] == {"DATA": "/srv/d"}
    assert first["rate_usd_per_gpu_hour"] == 1.85 and first["submitted_by"] == "maria"

    cancelled = hashpivot(config, "cancel", "1")
    assert cancelled.returncode == 0 and "job 1 cancelled" in cancelled.stdout
    again = hashpivot(config, "cancel", "1")
    assert again.returncode == 1 and "only a job that has not finished" in again.stderr
    missing = hashpivot(config, "cancel", "99")
    assert missing.returncode == 1 and "no job 99" in missing.stderr
    prio = hashpivot(config, "reprioritise", "2", "50")
    assert prio.returncode == 0 and "priority 0 → 50" in prio.stdout

    only = json.loads(hashpivot(config, "list", "--json", "--state", "cancelled").stdout)
    assert [j["id"] for j in only] == [1]

    async def entries() -> list[tuple[str, str, str, bool, str]]:
        audit = AuditLog.in_state_dir(tmp_path / "state")
        try:
            return [
                (e.action, e.origin, e.actor, e.ok, e.reason)
                for _, e in await audit.recent(limit=10)
            ]
        finally:
            audit.close()

    async def submitted_params() -> dict[str, object]:
        audit = AuditLog.in_state_dir(tmp_path / "state")
        try:
            return next(e.params for _, e in await audit.recent(limit=10))
        finally:
            audit.close()

    # The environment may hold credentials: the audit log keeps its names, not its values.
    params = asyncio.run(submitted_params())
    assert params["env"] == {"DATA": "<redacted>"} and params["name"] == "llama-ft"

    log = asyncio.run(entries())
    assert log[0] == ("job.submit", "cli", "maria", True, "contract 42")
    assert [a for a, *_ in log] == [
        "job.submit",
        "job.submit",
        "job.cancel",
        "job.cancel",
        "job.cancel",
        "job.reprioritise",
    ]
    assert [ok for *_, ok, _ in log] == [True, True, True, False, False, True]


def test_bad_input_is_a_clear_error_that_changes_nothing(config: Path) -> None:
    no_argv = hashpivot(config, "submit", "--name", "x")
    assert no_argv.returncode == 2 and "give the command after --" in no_argv.stderr
    bad_size = hashpivot(config, "submit", "--name", "x", "--min-vram", "lots", "--", "a")
    assert bad_size.returncode == 2 and "is not a size" in bad_size.stderr
    bad_signal = hashpivot(
        config, "submit", "--name", "x", "--checkpoint-signal", "SIGKILL", "--", "a"
    )
    assert bad_signal.returncode == 1 and "checkpoint_signal" in bad_signal.stderr
    bad_state = hashpivot(config, "list", "--state", "sleeping")
    assert bad_state.returncode == 2 and "known:" in bad_state.stderr
    assert hashpivot(config, "list").stdout == "no jobs\n"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("24GiB", 24 * 2**30),
        ("24G", 24 * 2**30),
        ("80GB", 80 * 10**9),
        ("1048576", 2**20),
        ("1.5 MiB", 1572864),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_retry_puts_a_failed_job_back_in_line(config: Path, tmp_path: Path) -> None:
    assert hashpivot(config, "submit", "--name", "flaky", "--", "python", "t.py").returncode == 0
    state = tmp_path / "state"

    async def fail_it() -> None:
        # It ran on a GPU and exited with code 3, as the supervisor books it.
        db = WorkloadDb.in_state_dir(state)
        try:
            queue = JobQueue(db, state / "jobs")
            assert await queue.claim_next("GPU-a", 80 * 2**30) is not None
            await queue.mark_launched(1, ProcessIdentity(pid=7, create_time=1.0, cmdline=("x",)))
            await queue.end_run(1, JobState.FAILED, progress=0.3, error="exit code 3")
        finally:
            db.close()

    asyncio.run(fail_it())
    retried = hashpivot(config, "--reason", "disk fixed", "retry", "1")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "job 1 (flaky) back in line at priority 0, resuming from 30%"
    [job] = json.loads(hashpivot(config, "list", "--json").stdout)
    assert job["state"] == "requeued" and job["attempts"] == 0 and job["progress"] == 0.3
    again = hashpivot(config, "retry", "1")
    assert again.returncode == 1
    assert "job 1 is requeued; only a failed job can be retried" in again.stderr
