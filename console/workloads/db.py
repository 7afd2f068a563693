"""The workloads database: the `StateDb` holding the AI job queue, the per-GPU mode intent and
energy per mode, in `workloads.sqlite3` under the state directory."""

from __future__ import annotations

from pathlib import Path

from console.statedb import StateDb

DB_FILE = "workloads.sqlite3"


class WorkloadDb(StateDb):
    @classmethod
    def in_state_dir(cls, state_dir: Path) -> WorkloadDb:
        return cls(state_dir / DB_FILE)
