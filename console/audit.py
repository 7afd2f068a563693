"""The audit log: an append-only SQLite (WAL) table of every action: who, why, and the outcome.

`AuditLog` is the `AuditSink` the action path writes to. Each entry is committed before
`record` returns, so an action that was acknowledged to its caller is on disk even if the
console is killed right after. The file is a `StateDb` (its own thread, WAL, fsynced commits,
a busy timeout so the console and a CLI command can both write it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from console.actions import AuditEntry
from console.statedb import StateDb

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
        self._db = StateDb(path)
        self._db.add_schema(_SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> AuditLog:
        return cls(state_dir / AUDIT_FILE)

    def _insert(self, entry: AuditEntry) -> int:
        db = self._db.connection()
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
        db = self._db.connection()
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
        return await self._db.run(lambda: self._insert(entry))

    async def recent(
        self, target: str | None = None, limit: int = 50
    ) -> list[tuple[int, AuditEntry]]:
        """The latest `limit` entries (for one device or job when `target` is given), oldest
        first, with their ids."""
        return await self._db.run(lambda: self._select(target, limit))

    def close(self) -> None:
        self._db.close()
