"""The persisted intent of every GPU: the mode it should be in, where its switch state machine
stands, and the miner process it runs, so a console restarted after a crash resumes instead of
guessing.

`GpuState` is the state machine of nvml-and-gpu-switching.md §7.3 (the machine itself is in
`console.workloads.switch`). `GpuIntent.mode` is what the operator (or policy) last asked for;
`state` is how far the GPU got. They differ during a switch and after a failure, and that
difference is what a restart resumes from. Every state change is also appended to
`gpu_transitions`, an append-only history for the post-mortem of a 3 a.m. incident.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from enum import Enum, StrEnum
from typing import Any, Final

import msgspec

from console.workloads.db import WorkloadDb
from drivers.processes import ProcessIdentity


class GpuMode(StrEnum):
    MINING = "mining"
    AI = "ai"
    IDLE = "idle"


class GpuState(StrEnum):
    MINING = "MINING"
    DRAINING_MINER = "DRAINING_MINER"
    VERIFYING_FREE = "VERIFYING_FREE"
    PREPARING_AI = "PREPARING_AI"
    AI_RUNNING = "AI_RUNNING"
    PREEMPTING_AI = "PREEMPTING_AI"
    PREPARING_MINER = "PREPARING_MINER"
    IDLE = "IDLE"
    # Holding states: no automation moves a GPU out of these; an operator retries or aborts.
    FAULTED = "FAULTED"
    LOST = "LOST"
    NEEDS_RESET = "NEEDS_RESET"


HOLDING: Final = frozenset({GpuState.FAULTED, GpuState.LOST, GpuState.NEEDS_RESET})
STEADY: Final = frozenset({GpuState.MINING, GpuState.AI_RUNNING, GpuState.IDLE})
TRANSITIONAL: Final = frozenset(GpuState) - HOLDING - STEADY

STEADY_STATE_OF: Final = {
    GpuMode.MINING: GpuState.MINING,
    GpuMode.AI: GpuState.AI_RUNNING,
    GpuMode.IDLE: GpuState.IDLE,
}


class GpuIntent(msgspec.Struct, frozen=True, kw_only=True):
    uuid: str
    mode: GpuMode  # what it should be doing
    state: GpuState  # where the state machine is
    previous_mode: GpuMode | None  # the mode before the last switch (abort goes back to it)
    mode_since: float  # unix seconds when the GPU last reached a steady state (dwell time)
    cordoned: bool  # no automatic (re)start of any workload while set
    job_id: int | None  # the AI job placed on it
    miner: ProcessIdentity | None  # the miner process it runs
    error: str | None  # why it is in a holding state, or why the last switch failed
    failed_step: str | None
    memory_baseline_bytes: int | None  # memory used when last verified free
    updated_at: float
    reason: str
    actor: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS gpu_intent (
    uuid TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    previous_mode TEXT,
    mode_since REAL NOT NULL,
    cordoned INTEGER NOT NULL DEFAULT 0,
    job_id INTEGER,
    miner_pid INTEGER,
    miner_create_time REAL,
    miner_cmdline TEXT,
    error TEXT,
    failed_step TEXT,
    memory_baseline_bytes INTEGER,
    updated_at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS gpu_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    at REAL NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    mode TEXT NOT NULL,
    switch_id TEXT,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS gpu_transitions_uuid ON gpu_transitions (uuid, id);
"""

_COLUMNS = (
    "uuid, mode, state, previous_mode, mode_since, cordoned, job_id, miner_pid, "
    "miner_create_time, miner_cmdline, error, failed_step, memory_baseline_bytes, updated_at, "
    "reason, actor"
)


class _Unset(Enum):
    """Marks an `update` argument that was left out (None is a value: "clear it")."""

    UNSET = 0


_UNSET: Final = _Unset.UNSET


def _row(row: tuple[Any, ...]) -> GpuIntent:
    (
        uuid,
        mode,
        state,
        previous_mode,
        mode_since,
        cordoned,
        job_id,
        miner_pid,
        miner_create_time,
        miner_cmdline,
        error,
        failed_step,
        baseline,
        updated_at,
        reason,
        actor,
    ) = row
    miner = None
    if miner_pid is not None:
        miner = ProcessIdentity(
            pid=miner_pid,
            create_time=miner_create_time or 0.0,
            cmdline=tuple(json.loads(miner_cmdline or "[]")),
        )
    return GpuIntent(
        uuid=uuid,
        mode=GpuMode(mode),
        state=GpuState(state),
        previous_mode=GpuMode(previous_mode) if previous_mode else None,
        mode_since=mode_since,
        cordoned=bool(cordoned),
        job_id=job_id,
        miner=miner,
        error=error,
        failed_step=failed_step,
        memory_baseline_bytes=baseline,
        updated_at=updated_at,
        reason=reason,
        actor=actor,
    )


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    uuid: str
    at: float
    from_state: GpuState
    to_state: GpuState
    mode: GpuMode
    switch_id: str | None
    note: str


class IntentStore:
    """Reads and writes `gpu_intent`; every write commits before it returns."""

    def __init__(self, db: WorkloadDb, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.add_schema(_SCHEMA)

    def _get(self, db: sqlite3.Connection, uuid: str) -> GpuIntent | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM gpu_intent WHERE uuid = ?", (uuid,)).fetchone()
        return _row(row) if row else None

    async def get(self, uuid: str) -> GpuIntent | None:
        return await self._db.run(lambda: self._get(self._db.connection(), uuid))

    async def all(self) -> dict[str, GpuIntent]:
        def read() -> dict[str, GpuIntent]:
            rows = self._db.connection().execute(f"SELECT {_COLUMNS} FROM gpu_intent").fetchall()
            return {r[0]: _row(r) for r in rows}

        return await self._db.run(read)

    async def ensure(self, uuid: str, initial_mode: GpuMode) -> GpuIntent:
        """The GPU's intent; created on its very first start with `initial_mode` and state
        IDLE (nothing runs yet; resuming then brings it to its mode)."""

        def write() -> GpuIntent:
            now = self._clock()
            with self._db.transaction() as db:
                found = self._get(db, uuid)
                if found is not None:
                    return found
                db.execute(
                    "INSERT INTO gpu_intent (uuid, mode, state, mode_since, updated_at, reason, "
                    "actor) VALUES (?,?,?,?,?,?,?)",
                    (
                        uuid,
                        initial_mode.value,
                        GpuState.IDLE.value,
                        now,
                        now,
                        "first start",
                        "config",
                    ),
                )
                created = self._get(db, uuid)
                assert created is not None
                return created

        return await self._db.run(write)

    async def update(
        self,
        uuid: str,
        *,
        state: GpuState | None = None,
        mode: GpuMode | None = None,
        previous_mode: GpuMode | _Unset | None = _UNSET,
        mode_since: float | None = None,
        cordoned: bool | None = None,
        job_id: int | _Unset | None = _UNSET,
        miner: ProcessIdentity | _Unset | None = _UNSET,
        error: str | _Unset | None = _UNSET,
        failed_step: str | _Unset | None = _UNSET,
        memory_baseline_bytes: int | _Unset | None = _UNSET,
        reason: str | None = None,
        actor: str | None = None,
        switch_id: str | None = None,
        note: str = "",
    ) -> GpuIntent:
        """Change some fields (those left out keep their value). A state change is appended to
        `gpu_transitions` in the same transaction."""
        columns: dict[str, Any] = {}
        if state is not None:
            columns["state"] = state.value
        if mode is not None:
            columns["mode"] = mode.value
        if previous_mode is not _UNSET:
            columns["previous_mode"] = previous_mode.value if previous_mode else None
        if mode_since is not None:
            columns["mode_since"] = mode_since
        if cordoned is not None:
            columns["cordoned"] = int(cordoned)
        if job_id is not _UNSET:
            columns["job_id"] = job_id
        if miner is not _UNSET:
            identity = miner
            columns["miner_pid"] = identity.pid if identity else None
            columns["miner_create_time"] = identity.create_time if identity else None
            columns["miner_cmdline"] = json.dumps(list(identity.cmdline)) if identity else None
        if error is not _UNSET:
            columns["error"] = error
        if failed_step is not _UNSET:
            columns["failed_step"] = failed_step
        if memory_baseline_bytes is not _UNSET:
            columns["memory_baseline_bytes"] = memory_baseline_bytes
        if reason is not None:
            columns["reason"] = reason
        if actor is not None:
            columns["actor"] = actor

        def write() -> GpuIntent:
            now = self._clock()
            with self._db.transaction() as db:
                before = self._get(db, uuid)
                if before is None:
                    raise KeyError(f"no intent for GPU {uuid}; call ensure() first")
                columns["updated_at"] = now
                assignments = ", ".join(f"{name} = ?" for name in columns)
                db.execute(
                    f"UPDATE gpu_intent SET {assignments} WHERE uuid = ?",
                    (*columns.values(), uuid),
                )
                after = self._get(db, uuid)
                assert after is not None
                if after.state is not before.state:
                    db.execute(
                        "INSERT INTO gpu_transitions (uuid, at, from_state, to_state, mode, "
                        "switch_id, note) VALUES (?,?,?,?,?,?,?)",
                        (
                            uuid,
                            now,
                            before.state.value,
                            after.state.value,
                            after.mode.value,
                            switch_id,
                            note,
                        ),
                    )
                return after

        return await self._db.run(write)

    async def transitions(self, uuid: str, limit: int = 100) -> list[Transition]:
        """The latest state changes of a GPU, oldest first."""

        def read() -> list[Transition]:
            rows = (
                self._db.connection()
                .execute(
                    "SELECT uuid, at, from_state, to_state, mode, switch_id, note "
                    "FROM gpu_transitions WHERE uuid = ? ORDER BY id DESC LIMIT ?",
                    (uuid, limit),
                )
                .fetchall()
            )
            return [
                Transition(
                    uuid=r[0],
                    at=r[1],
                    from_state=GpuState(r[2]),
                    to_state=GpuState(r[3]),
                    mode=GpuMode(r[4]),
                    switch_id=r[5],
                    note=r[6],
                )
                for r in reversed(rows)
            ]

        return await self._db.run(read)
