"""The audit log: an append-only SQLite (WAL) table of every action: who, why, and the outcome.

`AuditLog` is the `AuditSink` the action path writes to. Each entry is committed before
`record` returns, so an action that was acknowledged to its caller is on disk even if the
console is killed right after. SQLite calls block, so they run on a dedicated single-thread
executor: one thread also serialises writers without extra locking.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from console.actions import AuditEntry

AUDIT_FILE = "audit.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    origin TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    reason TEXT NOT NULL,
    params TEXT NOT NULL,
    ok INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    before TEXT,
    after TEXT,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, id);
"""

_COLUMNS = (
    "at, actor, origin, action, target, reason, params, ok, code, message, before, after, "
    "request_id"
)


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _load(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


class AuditLog:
    """The SQLite audit log under the site's state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashpivot-audit")
        self._db: sqlite3.Connection | None = None

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> AuditLog:
        return cls(state_dir / AUDIT_FILE)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged action survives power loss, not only a process kill.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def _insert(self, entry: AuditEntry) -> int:
        db = self._connect()
        cursor = db.execute(
            f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.at,
                entry.actor,
                entry.origin,
                entry.action,
                entry.target,
                entry.reason,
                json.dumps(entry.params, default=str, sort_keys=True),
                int(entry.ok),
                entry.code,
                entry.message,
                _dump(entry.before),
                _dump(entry.after),
                entry.request_id,
            ),
        )
        row_id = cursor.lastrowid
        assert row_id is not None
        return row_id

    def _select(self, target: str | None, limit: int) -> list[tuple[int, AuditEntry]]:
        db = self._connect()
        if target is None:
            rows = db.execute(
                f"SELECT id, {_COLUMNS} FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = db.execute(
                f"SELECT id, {_COLUMNS} FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?",
                (target, limit),
            ).fetchall()
        entries = []
        for row in reversed(rows):
            entries.append(
                (
                    row[0],
                    AuditEntry(
                        at=row[1],
                        actor=row[2],
                        origin=row[3],
                        action=row[4],
                        target=row[5],
                        reason=row[6],
                        params=_load(row[7]) or {},
                        ok=bool(row[8]),
                        code=row[9],
                        message=row[10],
                        before=_load(row[11]),
                        after=_load(row[12]),
                        request_id=row[13],
                    ),
                )
            )
        return entries

    async def record(self, entry: AuditEntry) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._insert, entry)

    async def recent(
        self, target: str | None = None, limit: int = 50
    ) -> list[tuple[int, AuditEntry]]:
        """The latest `limit` entries (for one device or job when `target` is given), oldest
        first, with their ids."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._select, target, limit)

    def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
