"""A SQLite file (WAL) under the state directory, used from asyncio: `StateDb`.

The workloads database (AI job queue, per-GPU mode intent, energy) and the audit log are
each one of these. Every call runs on one dedicated thread (SQLite blocks; one thread also
serialises our own writers) under a deadline. Connections are in autocommit mode with
`synchronous=FULL`: a write that returned has been committed and fsynced, so a `kill -9` (or a
power cut) loses nothing that was acknowledged. Multi-statement changes run inside
`BEGIN IMMEDIATE` so they are atomic and so a CLI process and the console never interleave a
read-modify-write.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
"""How long a writer waits for another process's write (CLI vs console) before failing."""


class StateDb:
    """The SQLite connection and its executor. Tables are created by their owners' schemas."""

    def __init__(self, path: Path, *, call_timeout_s: float = 10.0) -> None:
        self.path = path
        self.call_timeout_s = call_timeout_s
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"hashpivot-db-{path.stem}"
        )
        self._db: sqlite3.Connection | None = None
        self._schemas: list[str] = []

    def add_schema(self, sql: str) -> None:
        """DDL run once when the connection opens (CREATE ... IF NOT EXISTS)."""
        self._schemas.append(sql)
        if self._db is not None:
            self._db.executescript(sql)

    def connection(self) -> sqlite3.Connection:
        """The connection; only for functions running on this database's executor."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                check_same_thread=False,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            for sql in self._schemas:
                db.executescript(sql)
            self._db = db
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on an exception)."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` (which uses `connection()` / `transaction()`) on the database thread."""
        loop = asyncio.get_running_loop()
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a cancellation
        # that arrives as the call completes, and a loop cancelled at shutdown runs on forever.
        async with asyncio.timeout(self.call_timeout_s):
            return await loop.run_in_executor(self._executor, fn)

    def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
