"""What each GPU last did while mining: hashrate, algorithm and power, for the "what would it
earn mining" estimate of a GPU that does something else now.

Kept in the workloads database (table `gpu_mining_memory`), so a GPU that runs AI jobs still
has a mining estimate after the console restarts, not only once it has mined again in this
process. Remembering happens every GPU tick in memory; what changed is written at most once a
minute per GPU (one small transaction per tick at most, on the database's own thread).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Final

from console.model import GpuView
from console.statedb import StateDb

SAVE_EVERY_S: Final = 60.0

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS gpu_mining_memory (
    uuid TEXT PRIMARY KEY,
    algorithm TEXT,
    hashrate_hs REAL NOT NULL,
    power_w REAL,
    seen_at REAL NOT NULL          -- unix time of the mining sample remembered
) WITHOUT ROWID;
"""


class MiningMemory:
    """Per GPU UUID: the last mining hashrate (H/s), algorithm and power (W) seen."""

    def __init__(self, db: StateDb | None = None, clock: Callable[[], float] = time.time) -> None:
        self.hashrate_hs: dict[str, float] = {}
        self.algorithm: dict[str, str] = {}
        self.power_w: dict[str, float] = {}
        self._db = db
        self._clock = clock
        self._seen_at: dict[str, float] = {}
        self._saved_at: dict[str, float] = {}
        if db is not None:
            db.add_schema(_SCHEMA)

    def remember(self, view: GpuView) -> None:
        if view.state != "MINING" or not view.miner_hashrate_hs:
            return
        self.hashrate_hs[view.uuid] = view.miner_hashrate_hs
        if view.miner_algorithm:
            self.algorithm[view.uuid] = view.miner_algorithm
        if view.power_w is not None:
            self.power_w[view.uuid] = view.power_w
        self._seen_at[view.uuid] = self._clock()

    async def load(self) -> None:
        """What earlier runs remembered (the values of this run, if any, win)."""
        db = self._db
        if db is None:
            return

        def read() -> list[tuple[str, str | None, float, float | None, float]]:
            rows = db.connection().execute(
                "SELECT uuid, algorithm, hashrate_hs, power_w, seen_at FROM gpu_mining_memory"
            )
            return list(rows)

        for uuid, algorithm, hashrate_hs, power_w, seen_at in await db.run(read):
            if uuid in self._seen_at:
                continue
            self.hashrate_hs[uuid] = hashrate_hs
            if algorithm:
                self.algorithm[uuid] = algorithm
            if power_w is not None:
                self.power_w[uuid] = power_w
            self._saved_at[uuid] = seen_at

    async def save(self) -> None:
        """Write the GPUs seen mining since their last write, if that is a minute old."""
        db = self._db
        if db is None:
            return
        now = self._clock()
        due = [
            uuid
            for uuid, seen_at in self._seen_at.items()
            if seen_at > self._saved_at.get(uuid, 0.0)
            and now - self._saved_at.get(uuid, 0.0) >= SAVE_EVERY_S
        ]
        if not due:
            return
        rows = [
            (
                uuid,
                self.algorithm.get(uuid),
                self.hashrate_hs[uuid],
                self.power_w.get(uuid),
                self._seen_at[uuid],
            )
            for uuid in due
        ]

        def write() -> None:
            with db.transaction() as conn:
                conn.executemany(
                    "INSERT INTO gpu_mining_memory(uuid, algorithm, hashrate_hs, power_w, "
                    "seen_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(uuid) DO UPDATE SET "
                    "algorithm = excluded.algorithm, hashrate_hs = excluded.hashrate_hs, "
                    "power_w = excluded.power_w, seen_at = excluded.seen_at",
                    rows,
                )

        try:
            await db.run(write)
        except (sqlite3.Error, OSError, TimeoutError):
            return  # kept in memory; the next tick tries again (an estimate, not a ledger)
        for uuid in due:
            self._saved_at[uuid] = now
