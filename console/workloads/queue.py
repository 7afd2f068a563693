"""The AI job queue: persistent (SQLite WAL), with an explicit table of legal state changes.

A job is what a customer pays for: a command (argv, never a shell string) run on one GPU at
`rate_usd_per_gpu_hour`. Its life:

    queued ──▶ starting ──▶ running ──▶ done
      │  ▲        │  │         │ │
      │  └────────┘  │         │ └──▶ failed ──▶ requeued (operator retry)
      │  (released   ▼         ▼
      │  unlaunched) failed  preempting ──▶ requeued ──▶ starting ...
      ▼                        │    └─────▶ done / failed / cancelled
    cancelled ◀── requeued     ▼
                            (process gone at restart: running ──▶ requeued)

`TRANSITIONS` is the whole truth; anything else raises `IllegalTransition`, so a bug cannot
quietly move a finished job back into the queue. A job that is preempted (the GPU goes back to
mining) is requeued with its progress and its earnings so far; it keeps its submission time,
so it is first in line among jobs of its priority when a GPU frees up.

Earnings: runtime × rate. `runtime_s` and `earned_usd` hold completed runs; the current run is
added from `started_at` (see `Job.earned_usd_at`). Every method commits before it returns.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from console.workloads.db import WorkloadDb
from drivers.processes import ProcessIdentity


class JobState(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"  # placed on a GPU: reserved while the GPU is freed, then launched
    RUNNING = "running"
    PREEMPTING = "preempting"  # told to checkpoint and exit
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"  # back in line after a preemption or a lost process, progress kept


S = JobState
TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = {
    S.QUEUED: frozenset({S.STARTING, S.CANCELLED}),
    S.REQUEUED: frozenset({S.STARTING, S.CANCELLED}),
    # STARTING → QUEUED/REQUEUED: the reservation is released before a launch (the switch
    # failed); → REQUEUED also when launched but it never showed up on its GPU.
    S.STARTING: frozenset({S.RUNNING, S.QUEUED, S.REQUEUED, S.FAILED, S.PREEMPTING}),
    S.RUNNING: frozenset({S.PREEMPTING, S.DONE, S.FAILED, S.REQUEUED}),
    S.PREEMPTING: frozenset({S.REQUEUED, S.DONE, S.FAILED, S.CANCELLED}),
    S.DONE: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset({S.REQUEUED}),
}
WAITING: Final = frozenset({S.QUEUED, S.REQUEUED})
ACTIVE: Final = frozenset({S.STARTING, S.RUNNING, S.PREEMPTING})
FINISHED: Final = frozenset({S.DONE, S.FAILED, S.CANCELLED})

CHECKPOINT_SIGNALS: Final = ("SIGTERM", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGHUP")

PLACEHOLDERS: Final = ("{job_id}", "{checkpoint_dir}", "{progress_file}", "{gpu_uuid}")
"""Replaced in a job's argv at launch; the same values are in its environment (see
`console.workloads.supervisor`)."""


class IllegalTransition(ValueError):
    """A state change the table does not allow, e.g. done → running."""


class JobNotFound(KeyError):
    pass


class JobSpecError(ValueError):
    """A job definition that cannot be queued; the message names the field and the fix."""


Name = Annotated[str, Meta(min_length=1, max_length=128)]
ArgvItem = Annotated[str, Meta(min_length=1)]
Usd = Annotated[float, Meta(ge=0, le=1_000_000)]
Priority = Annotated[int, Meta(ge=-1000, le=1000)]
Grace = Annotated[float, Meta(gt=0, le=3600)]


class JobSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a submitter says about a job (the `job.submit` payload)."""

    argv: Annotated[tuple[ArgvItem, ...], Meta(min_length=1)]
    name: Name
    customer: Annotated[str, Meta(max_length=128)] = ""
    rate_usd_per_gpu_hour: Usd = 0.0
    min_vram_bytes: Annotated[int, Meta(ge=0)] = 0
    priority: Priority = 0
    checkpoint_signal: str = "SIGTERM"
    grace_s: Grace | None = None  # None: the site default ([workloads].job_grace_s)
    checkpoint_dir: str | None = None  # None: <jobs_dir>/<id>/checkpoint
    env: dict[str, str] = msgspec.field(default_factory=dict)


def parse_job_spec(payload: Mapping[str, Any]) -> JobSpec:
    """A `JobSpec` from untrusted input (MQTT, CLI), or `JobSpecError` saying what is wrong."""
    try:
        spec = msgspec.convert(dict(payload), JobSpec)
    except msgspec.ValidationError as exc:
        raise JobSpecError(f"invalid job: {exc}") from None
    if spec.checkpoint_signal not in CHECKPOINT_SIGNALS:
        raise JobSpecError(
            f"invalid job: checkpoint_signal {spec.checkpoint_signal!r} is not one of "
            + ", ".join(CHECKPOINT_SIGNALS)
        )
    if not math.isfinite(spec.rate_usd_per_gpu_hour):
        raise JobSpecError("invalid job: rate_usd_per_gpu_hour must be a finite number")
    return spec


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the queue, as it was when read."""

    id: int
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    customer: str
    rate_usd_per_gpu_hour: float
    min_vram_bytes: int
    priority: int
    checkpoint_signal: str
    grace_s: float
    checkpoint_dir: str
    log_path: str
    progress_path: str
    state: JobState
    progress: float  # 0..1, from the job's progress file
    gpu_uuid: str | None
    process: ProcessIdentity | None  # while a process runs (starting/running/preempting)
    submitted_at: float
    updated_at: float
    started_at: float | None  # start of the current run
    finished_at: float | None
    runtime_s: float  # completed runs only
    earned_usd: float  # completed runs only
    attempts: int  # launches, less those that ended in an orderly checkpoint (see end_run)
    last_error: str | None
    cancel_requested: bool
    submitted_by: str | None

    def runtime_s_at(self, now: float) -> float:
        current = now - self.started_at if self.started_at is not None else 0.0
        return self.runtime_s + max(0.0, current)

    def earned_usd_at(self, now: float) -> float:
        """Earnings so far, including the run in progress."""
        return self.runtime_s_at(now) * self.rate_usd_per_gpu_hour / 3600.0

    def summary(self) -> dict[str, Any]:
        """The fields an audit entry or an MQTT message needs."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "gpu_uuid": self.gpu_uuid,
            "progress": round(self.progress, 4),
            "priority": self.priority,
            "attempts": self.attempts,
            "pid": self.process.pid if self.process else None,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    argv TEXT NOT NULL,
    env TEXT NOT NULL,
    customer TEXT NOT NULL,
    rate_usd_per_gpu_hour REAL NOT NULL,
    min_vram_bytes INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    checkpoint_signal TEXT NOT NULL,
    grace_s REAL NOT NULL,
    checkpoint_dir TEXT NOT NULL,
    log_path TEXT NOT NULL,
    progress_path TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    gpu_uuid TEXT,
    pid INTEGER,
    proc_create_time REAL,
    proc_cmdline TEXT,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    runtime_s REAL NOT NULL DEFAULT 0,
    earned_usd REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    submitted_by TEXT
);
CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs (state, priority, submitted_at);
"""

_COLUMNS = (
    "id, name, argv, env, customer, rate_usd_per_gpu_hour, min_vram_bytes, priority, "
    "checkpoint_signal, grace_s, checkpoint_dir, log_path, progress_path, state, progress, "
    "gpu_uuid, pid, proc_create_time, proc_cmdline, submitted_at, updated_at, started_at, "
    "finished_at, runtime_s, earned_usd, attempts, last_error, cancel_requested, submitted_by"
)


def _row_to_job(row: tuple[Any, ...]) -> Job:
    (
        job_id,
        name,
        argv,
        env,
        customer,
        rate,
        min_vram,
        priority,
        checkpoint_signal,
        grace_s,
        checkpoint_dir,
        log_path,
        progress_path,
        state,
        progress,
        gpu_uuid,
        pid,
        proc_create_time,
        proc_cmdline,
        submitted_at,
        updated_at,
        started_at,
        finished_at,
        runtime_s,
        earned_usd,
        attempts,
        last_error,
        cancel_requested,
        submitted_by,
    ) = row
    process = None
    if pid is not None:
        process = ProcessIdentity(
            pid=pid,
            create_time=proc_create_time or 0.0,
            cmdline=tuple(json.loads(proc_cmdline or "[]")),
        )
    return Job(
        id=job_id,
        name=name,
        argv=tuple(json.loads(argv)),
        env=json.loads(env),
        customer=customer,
        rate_usd_per_gpu_hour=rate,
        min_vram_bytes=min_vram,
        priority=priority,
        checkpoint_signal=checkpoint_signal,
        grace_s=grace_s,
        checkpoint_dir=checkpoint_dir,
        log_path=log_path,
        progress_path=progress_path,
        state=JobState(state),
        progress=progress,
        gpu_uuid=gpu_uuid,
        process=process,
        submitted_at=submitted_at,
        updated_at=updated_at,
        started_at=started_at,
        finished_at=finished_at,
        runtime_s=runtime_s,
        earned_usd=earned_usd,
        attempts=attempts,
        last_error=last_error,
        cancel_requested=bool(cancel_requested),
        submitted_by=submitted_by,
    )


def check_transition(current: JobState, to: JobState, job_id: int) -> None:
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing (final)"
        raise IllegalTransition(
            f"job {job_id}: {current.value} → {to.value} is not allowed; from {current.value}: "
            f"{allowed}"
        )


class JobQueue:
    """The queue over a `WorkloadDb`. All methods are async and commit before returning."""

    def __init__(
        self,
        db: WorkloadDb,
        jobs_dir: Path,
        *,
        default_grace_s: float = 60.0,
        max_attempts: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.jobs_dir = jobs_dir
        self.default_grace_s = default_grace_s
        self.max_attempts = max_attempts
        self._clock = clock
        db.add_schema(_SCHEMA)

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, db: sqlite3.Connection, job_id: int) -> Job:
        row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _row_to_job(row)

    async def get(self, job_id: int) -> Job | None:
        def read() -> Job | None:
            try:
                return self._get(self._db.connection(), job_id)
            except JobNotFound:
                return None

        return await self._db.run(read)

    async def list_jobs(self, states: Iterable[JobState] | None = None) -> list[Job]:
        """Jobs in queue order: active first, then waiting by priority and age, then finished."""
        wanted = None if states is None else [s.value for s in states]

        def read() -> list[Job]:
            rows = self._db.connection().execute(f"SELECT {_COLUMNS} FROM jobs").fetchall()
            jobs = [_row_to_job(r) for r in rows]
            if wanted is not None:
                jobs = [j for j in jobs if j.state.value in wanted]
            return sorted(jobs, key=_queue_order)

        return await self._db.run(read)

    async def on_gpu(self, gpu_uuid: str) -> list[Job]:
        """Jobs placed on a GPU (starting, running or preempting)."""
        return [j for j in await self.list_jobs(ACTIVE) if j.gpu_uuid == gpu_uuid]

    # -- writes --------------------------------------------------------------------------------

    async def submit(self, spec: JobSpec, *, submitted_by: str | None = None) -> Job:
        def write() -> Job:
            now = self._clock()
            with self._db.transaction() as db:
                cursor = db.execute(
                    "INSERT INTO jobs (name, argv, env, customer, rate_usd_per_gpu_hour, "
                    "min_vram_bytes, priority, checkpoint_signal, grace_s, checkpoint_dir, "
                    "log_path, progress_path, state, submitted_at, updated_at, submitted_by) "
                    "VALUES (?,?,?,?,?,?,?,?,?,'','','',?,?,?,?)",
                    (
                        spec.name,
                        json.dumps(list(spec.argv)),
                        json.dumps(spec.env, sort_keys=True),
                        spec.customer,
                        spec.rate_usd_per_gpu_hour,
                        spec.min_vram_bytes,
                        spec.priority,
                        spec.checkpoint_signal,
                        spec.grace_s if spec.grace_s is not None else self.default_grace_s,
                        JobState.QUEUED.value,
                        now,
                        now,
                        submitted_by,
                    ),
                )
                job_id = cursor.lastrowid
                assert job_id is not None
                home = self.jobs_dir / str(job_id)
                db.execute(
                    "UPDATE jobs SET checkpoint_dir = ?, log_path = ?, progress_path = ? "
                    "WHERE id = ?",
                    (
                        spec.checkpoint_dir or str(home / "checkpoint"),
                        str(home / "job.log"),
                        str(home / "progress.json"),
                        job_id,
                    ),
                )
                return self._get(db, job_id)

        return await self._db.run(write)

    async def _change(
        self,
        job_id: int,
        to: JobState | None,
        update: Callable[[Job, float], dict[str, Any]],
        *,
        expect: Iterable[JobState] | None = None,
    ) -> Job:
        """Read the job, check the transition (and `expect`), apply `update`'s columns."""
        expected = None if expect is None else frozenset(expect)

        def write() -> Job:
            now = self._clock()
            with self._db.transaction() as db:
                job = self._get(db, job_id)
                if expected is not None and job.state not in expected:
                    raise IllegalTransition(
                        f"job {job_id} is {job.state.value}; expected "
                        + " or ".join(sorted(s.value for s in expected))
                    )
                if to is not None and to is not job.state:
                    check_transition(job.state, to, job_id)
                columns = update(job, now)
                if to is not None:
                    columns["state"] = to.value
                columns["updated_at"] = now
                assignments = ", ".join(f"{name} = ?" for name in columns)
                db.execute(
                    f"UPDATE jobs SET {assignments} WHERE id = ?", (*columns.values(), job_id)
                )
                return self._get(db, job_id)

        return await self._db.run(write)

    async def claim_next(
        self, gpu_uuid: str, memory_total_bytes: int | None, job_id: int | None = None
    ) -> Job | None:
        """Reserve a job for `gpu_uuid` (→ starting) in one transaction, so two GPUs never get
        the same job: `job_id` if given and waiting, else the best waiting job that fits
        (`choose`). None when nothing fits."""

        def write() -> Job | None:
            now = self._clock()
            with self._db.transaction() as db:
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE state IN (?, ?) AND cancel_requested = 0",
                    (JobState.QUEUED.value, JobState.REQUEUED.value),
                ).fetchall()
                waiting = [_row_to_job(r) for r in rows]
                if job_id is not None:
                    waiting = [j for j in waiting if j.id == job_id]
                job = choose(waiting, memory_total_bytes)
                if job is None:
                    return None
                db.execute(
                    "UPDATE jobs SET state = ?, gpu_uuid = ?, updated_at = ? WHERE id = ?",
                    (JobState.STARTING.value, gpu_uuid, now, job.id),
                )
                return self._get(db, job.id)

        return await self._db.run(write)

    async def release(self, job_id: int, error: str | None = None) -> Job:
        """A reserved job goes back in line unlaunched (the switch stopped before launch)."""

        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        # A job that has run before keeps the "requeued" mark (and its progress).
        to = JobState.REQUEUED if job.attempts else JobState.QUEUED
        return await self._change(
            job_id,
            to,
            lambda _j, _n: {"gpu_uuid": None, "last_error": error},
            expect={JobState.STARTING},
        )

    async def mark_launched(self, job_id: int, identity: ProcessIdentity) -> Job:
        """The process started (still `starting` until it shows on its GPU)."""

        def update(job: Job, _now: float) -> dict[str, Any]:
            return {
                "pid": identity.pid,
                "proc_create_time": identity.create_time,
                "proc_cmdline": json.dumps(list(identity.cmdline)),
                "attempts": job.attempts + 1,
                "last_error": None,
            }

        return await self._change(job_id, None, update, expect={JobState.STARTING})

    async def mark_running(self, job_id: int) -> Job:
        """Confirmed on its GPU: the run (and its earnings) starts now."""
        return await self._change(job_id, JobState.RUNNING, lambda _j, now: {"started_at": now})

    async def mark_preempting(self, job_id: int) -> Job:
        return await self._change(job_id, JobState.PREEMPTING, lambda _j, _n: {})

    async def update_progress(self, job_id: int, progress: float) -> Job:
        value = min(1.0, max(0.0, progress))
        return await self._change(job_id, None, lambda _j, _n: {"progress": value})

    async def end_run(
        self,
        job_id: int,
        to: JobState,
        *,
        progress: float | None = None,
        error: str | None = None,
        checkpointed: bool = False,
    ) -> Job:
        """The process is gone: book the run's time and money, clear the process, and move to
        `to` (requeued, done, failed or cancelled). A job that reached `max_attempts` launches
        without finishing is failed instead of requeued.

        `checkpointed`: the console asked the job to stop (a switch, a console shutdown) and
        it checkpointed. Such a run is not an attempt that failed, so it gives its launch back:
        `max_attempts` guards against jobs that crash or hang, and a job that is preempted
        every night must not be failed for it."""
        target = to
        if to is JobState.REQUEUED and not checkpointed:
            job = await self.get(job_id)
            if job is not None and job.attempts >= self.max_attempts:
                target = JobState.FAILED
                error = (error + "; " if error else "") + (
                    f"started {job.attempts} times without finishing (max_attempts)"
                )

        def update(job: Job, now: float) -> dict[str, Any]:
            run_s = max(0.0, now - job.started_at) if job.started_at is not None else 0.0
            columns: dict[str, Any] = {
                "runtime_s": job.runtime_s + run_s,
                "earned_usd": job.earned_usd + run_s * job.rate_usd_per_gpu_hour / 3600.0,
                "started_at": None,
                "pid": None,
                "proc_create_time": None,
                "proc_cmdline": None,
                "last_error": error,
            }
            if progress is not None:
                columns["progress"] = min(1.0, max(0.0, progress))
            if checkpointed and target is JobState.REQUEUED:
                columns["attempts"] = max(0, job.attempts - 1)
            if target in FINISHED:
                columns["finished_at"] = now
            if target in WAITING:
                columns["gpu_uuid"] = None
            return columns

        return await self._change(job_id, target, update, expect=ACTIVE)

    async def cancel(self, job_id: int) -> Job:
        """Waiting → cancelled now. Placed on a GPU → `cancel_requested`: the console that runs
        it stops it (checkpoint signal, grace) and then marks it cancelled."""
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.state in WAITING:
            return await self._change(
                job_id,
                JobState.CANCELLED,
                lambda _j, now: {"finished_at": now, "gpu_uuid": None},
                expect=WAITING,
            )
        if job.state in ACTIVE:
            return await self._change(
                job_id, None, lambda _j, _n: {"cancel_requested": 1}, expect=ACTIVE
            )
        raise IllegalTransition(
            f"job {job_id} is {job.state.value}; only a job that has not finished can be cancelled"
        )

    async def reprioritise(self, job_id: int, priority: int) -> Job:
        if not -1000 <= priority <= 1000:
            raise JobSpecError("priority must be an integer from -1000 to 1000")
        return await self._change(
            job_id,
            None,
            lambda _j, _n: {"priority": priority},
            expect=WAITING | ACTIVE,
        )

    async def retry(self, job_id: int) -> Job:
        """A failed job back in line (operator decision), its attempts reset."""
        return await self._change(
            job_id,
            JobState.REQUEUED,
            lambda _j, _n: {"attempts": 0, "finished_at": None, "gpu_uuid": None},
            expect={JobState.FAILED},
        )


def _queue_order(job: Job) -> tuple[int, int, float, int]:
    group = 0 if job.state in ACTIVE else 1 if job.state in WAITING else 2
    return (group, -job.priority, job.submitted_at, job.id)


def choose(waiting: Iterable[Job], memory_total_bytes: int | None) -> Job | None:
    """The next job for a GPU with `memory_total_bytes` of memory (None: unknown, so only jobs
    that need no minimum fit): highest priority, then oldest submission, then lowest id."""
    fitting = [
        j
        for j in waiting
        if j.state in WAITING
        and not j.cancel_requested
        and (
            j.min_vram_bytes == 0
            or (memory_total_bytes is not None and j.min_vram_bytes <= memory_total_bytes)
        )
    ]
    if not fitting:
        return None
    return min(fitting, key=lambda j: (-j.priority, j.submitted_at, j.id))
