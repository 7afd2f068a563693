"""Earnings accrued today per device: integrated over reading times, persisted in SQLite.

Integration (left Riemann over the actual sample times): when a device's reading at t_k
arrives, the interval since its previous reading t_{k-1} is credited at the rate computed from
that previous reading, for at most `max_gap_s` (the device's stale threshold). So a device
that stopped answering, or a console that was down (the cursor survives restarts), is
credited for at most one gap, never for the hours nobody watched. An interval that crosses the
site's midnight is split between the two days.

Persistence: `earnings.sqlite` under the site's state dir, WAL, one small transaction per
accrual step holding today's totals of the changed devices and their cursors (last reading
time and rates), so a restart (or `kill -9` between steps) resumes exactly from the last
committed step. Only one process accrues for a state dir: it holds an exclusive lock on
`earnings.sqlite.lock`; another process (a second console, `hashpivot snapshot`) only reads.

SQLite calls are blocking: they run in this ledger's own single-thread executor, each with a
deadline, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import math
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from console.economics import AccruedToday

F64 = npt.NDArray[np.float64]
T = TypeVar("T")

SCHEMA_VERSION: Final = 2  # 2: accrued_day.cost_covered_s
DB_DEADLINE_S: Final = 5.0
MAX_GAP_CAP_S: Final = 86_400.0  # a credited interval never spans more than a day

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accrued_day (
    day TEXT NOT NULL,             -- ISO date in the site's timezone
    device_id TEXT NOT NULL,
    revenue_usd REAL NOT NULL,
    power_cost_usd REAL NOT NULL,
    covered_s REAL NOT NULL,       -- seconds of the day the integral covers
    cost_covered_s REAL,           -- of those, the seconds with a known power cost (NULL:
                                   -- a version 1 ledger, which counted every second)
    PRIMARY KEY (day, device_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accrual_cursor (
    device_id TEXT PRIMARY KEY,
    reading_at REAL NOT NULL,      -- unix time of the last integrated reading
    revenue_usd_per_day REAL,      -- rate from that reading (NULL: unknown)
    power_cost_usd_per_day REAL
) WITHOUT ROWID;
"""


def day_bounds(t: float, zone: dt.tzinfo | None) -> tuple[str, float, float]:
    """(ISO date, start, end) of the local day containing `t`; DST days are 23 or 25 h."""
    if zone is None:
        local = dt.datetime.fromtimestamp(t)
        start = dt.datetime(local.year, local.month, local.day)
        end = start + dt.timedelta(days=1)
        return start.date().isoformat(), start.timestamp(), end.timestamp()
    local = dt.datetime.fromtimestamp(t, zone)
    start = dt.datetime(local.year, local.month, local.day, tzinfo=zone)
    end_date = start.date() + dt.timedelta(days=1)
    end = dt.datetime(end_date.year, end_date.month, end_date.day, tzinfo=zone)
    return start.date().isoformat(), start.timestamp(), end.timestamp()


@dataclass
class StepWrites:
    """What one accrual step changed, as SQL parameters (one transaction)."""

    # (day, device, revenue USD, power cost USD, covered s, cost-covered s)
    today: list[tuple[str, str, float, float, float, float]] = field(default_factory=list)
    earlier: list[tuple[str, str, float, float, float, float]] = field(
        default_factory=list
    )  # added
    cursors: list[tuple[str, float, float | None, float | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.today or self.earlier or self.cursors)


class Integrator:
    """The in-memory, vectorised integral. No I/O: `step` returns what to persist."""

    def __init__(
        self,
        device_ids: Sequence[str],
        max_gap_s: Sequence[float] | F64,
        zone: dt.tzinfo | None,
        now: float,
    ) -> None:
        n = len(device_ids)
        self.device_ids = tuple(device_ids)
        self.zone = zone
        self.max_gap_s = np.minimum(np.asarray(max_gap_s, dtype=np.float64), MAX_GAP_CAP_S)
        if self.max_gap_s.shape != (n,):
            raise ValueError("max_gap_s needs one value per device")
        self.last_t = np.full(n, math.nan)
        self.rev_rate = np.full(n, math.nan)  # USD per day, from the last reading
        self.cost_rate = np.full(n, math.nan)
        self.revenue_usd = np.zeros(n)
        self.power_cost_usd = np.zeros(n)
        self.covered_s = np.zeros(n)
        # Seconds whose power cost was known: a reading without a power figure credits its
        # revenue but no cost, and a profit over such a span would be revenue passed off as
        # profit. `AccruedToday.cost_complete` compares the two.
        self.cost_covered_s = np.zeros(n)
        self.day, self.day_start, self.day_end = day_bounds(now, zone)

    def restore(
        self,
        today: dict[str, tuple[float, float, float, float]],
        cursors: dict[str, tuple[float, float | None, float | None]],
    ) -> None:
        for i, device_id in enumerate(self.device_ids):
            if device_id in today:
                (
                    self.revenue_usd[i],
                    self.power_cost_usd[i],
                    self.covered_s[i],
                    self.cost_covered_s[i],
                ) = today[device_id]
            if device_id in cursors:
                t, rev, cost = cursors[device_id]
                self.last_t[i] = t
                self.rev_rate[i] = math.nan if rev is None else rev
                self.cost_rate[i] = math.nan if cost is None else cost

    def step(
        self, reading_at: F64, revenue_usd_per_day: F64, cost_usd_per_day: F64, now: float
    ) -> StepWrites:
        """Credit every device whose reading is newer than its cursor; move the cursors."""
        writes = StepWrites()
        if now >= self.day_end:
            self.day, self.day_start, self.day_end = day_bounds(now, self.zone)
            self.revenue_usd[:] = 0.0
            self.power_cost_usd[:] = 0.0
            self.covered_s[:] = 0.0
            self.cost_covered_s[:] = 0.0
        with np.errstate(invalid="ignore"):
            newer = reading_at > self.last_t
            first = np.isnan(self.last_t) & ~np.isnan(reading_at)
            # A clock stepped backwards: restart the cursor without crediting anything.
            rewound = reading_at < self.last_t - 1.0
        moved = newer | first | rewound
        if not moved.any():
            return writes
        credit = newer & ~first
        idx = np.flatnonzero(credit)
        if idx.size:
            start = self.last_t[idx]
            span = np.minimum(reading_at[idx] - start, self.max_gap_s[idx])
            before = np.clip(self.day_start - start, 0.0, span)  # part in an earlier day
            after = span - before
            rev = self.rev_rate[idx] / 86_400.0
            cost = self.cost_rate[idx] / 86_400.0
            known = ~np.isnan(rev)
            cost_known = known & ~np.isnan(cost)
            rev0, cost0 = np.nan_to_num(rev), np.nan_to_num(cost)
            self.revenue_usd[idx] += rev0 * after
            self.power_cost_usd[idx] += cost0 * after
            self.covered_s[idx] += np.where(known, after, 0.0)
            self.cost_covered_s[idx] += np.where(cost_known, after, 0.0)
            crossed = np.flatnonzero((before > 0) & known)
            if crossed.size:
                earlier_day = day_bounds(self.day_start - 1.0, self.zone)[0]
                for j in crossed.tolist():
                    writes.earlier.append(
                        (
                            earlier_day,
                            self.device_ids[idx[j]],
                            float(rev0[j] * before[j]),
                            float(cost0[j] * before[j]),
                            float(before[j]),
                            float(before[j]) if cost_known[j] else 0.0,
                        )
                    )
        rows = np.flatnonzero(moved)
        self.last_t[rows] = reading_at[rows]
        self.rev_rate[rows] = revenue_usd_per_day[rows]
        self.cost_rate[rows] = cost_usd_per_day[rows]
        ids = self.device_ids
        day = self.day
        rev_l = self.revenue_usd[rows].tolist()
        cost_l = self.power_cost_usd[rows].tolist()
        cov_l = self.covered_s[rows].tolist()
        cost_cov_l = self.cost_covered_s[rows].tolist()
        t_l = self.last_t[rows].tolist()
        rr_l = self.rev_rate[rows].tolist()
        cr_l = self.cost_rate[rows].tolist()
        for k, i in enumerate(rows.tolist()):
            writes.today.append((day, ids[i], rev_l[k], cost_l[k], cov_l[k], cost_cov_l[k]))
            writes.cursors.append((ids[i], t_l[k], _sql(rr_l[k]), _sql(cr_l[k])))
        return writes

    def view(self, timezone: str, persisted: bool, note: str | None) -> AccruedToday:
        return AccruedToday(
            day=self.day,
            timezone=timezone,
            revenue_usd=_ro(self.revenue_usd.copy()),
            power_cost_usd=_ro(self.power_cost_usd.copy()),
            covered_s=_ro(self.covered_s.copy()),
            cost_covered_s=_ro(self.cost_covered_s.copy()),
            persisted=persisted,
            note=note,
        )


def _sql(value: float) -> float | None:
    return None if math.isnan(value) else value


def _ro(array: F64) -> F64:
    array.flags.writeable = False
    return array


class LedgerDb:
    """The SQLite side. Every method is blocking: call it from the ledger's executor."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        if read_only:
            uri = path.resolve().as_uri() + "?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=2.0)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, check_same_thread=False, timeout=2.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed step survives a crash or kill -9 of this
            # process; only a power cut may lose the last few steps.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                if not self._has_cost_coverage():
                    # A version 1 ledger: its rows read as fully cost-covered (NULL below).
                    self.conn.execute("ALTER TABLE accrued_day ADD COLUMN cost_covered_s REAL")
                self.conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )

    def _has_cost_coverage(self) -> bool:
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(accrued_day)")}
        return "cost_covered_s" in columns

    def close(self) -> None:
        self.conn.close()

    def load(
        self, day: str
    ) -> tuple[
        dict[str, tuple[float, float, float, float]],
        dict[str, tuple[float, float | None, float | None]],
    ]:
        # A reader may open a version 1 file that only its writer would migrate.
        cost_covered = "cost_covered_s" if self._has_cost_coverage() else "NULL"
        today = {
            row[0]: (row[1], row[2], row[3], row[3] if row[4] is None else row[4])
            for row in self.conn.execute(
                "SELECT device_id, revenue_usd, power_cost_usd, covered_s, "
                f"{cost_covered} FROM accrued_day WHERE day = ?",
                (day,),
            )
        }
        cursors = {
            row[0]: (row[1], row[2], row[3])
            for row in self.conn.execute(
                "SELECT device_id, reading_at, revenue_usd_per_day, power_cost_usd_per_day "
                "FROM accrual_cursor"
            )
        }
        return today, cursors

    def write(self, w: StepWrites) -> None:
        with self.conn:  # one transaction: totals and cursors move together
            self.conn.executemany(
                "INSERT INTO accrued_day(day, device_id, revenue_usd, power_cost_usd, covered_s, "
                "cost_covered_s) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(day, device_id) DO UPDATE "
                "SET revenue_usd = excluded.revenue_usd, power_cost_usd = excluded.power_cost_usd, "
                "covered_s = excluded.covered_s, cost_covered_s = excluded.cost_covered_s",
                w.today,
            )
            self.conn.executemany(
                "INSERT INTO accrued_day(day, device_id, revenue_usd, power_cost_usd, covered_s, "
                "cost_covered_s) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(day, device_id) DO UPDATE "
                "SET revenue_usd = revenue_usd + excluded.revenue_usd, "
                "power_cost_usd = power_cost_usd + excluded.power_cost_usd, "
                "covered_s = covered_s + excluded.covered_s, "
                "cost_covered_s = COALESCE(cost_covered_s, covered_s) + excluded.cost_covered_s",
                w.earlier,
            )
            self.conn.executemany(
                "INSERT INTO accrual_cursor(device_id, reading_at, revenue_usd_per_day, "
                "power_cost_usd_per_day) VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE "
                "SET reading_at = excluded.reading_at, "
                "revenue_usd_per_day = excluded.revenue_usd_per_day, "
                "power_cost_usd_per_day = excluded.power_cost_usd_per_day",
                w.cursors,
            )


class EarningsLedger:
    """Accrued earnings of one site: the integrator, its SQLite file and the writer lock.

    `open_writer()` takes the lock and restores today's totals and the cursors; if another
    process holds the lock the ledger becomes a reader that shows that process's figures.
    `open_reader()` only reads (the `snapshot` command). Without either, `view()` is None."""

    def __init__(
        self,
        path: Path,
        device_ids: Sequence[str],
        max_gap_s: Sequence[float] | F64,
        zone: dt.tzinfo | None,
        *,
        timezone_name: str | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.device_ids = tuple(device_ids)
        self.max_gap_s = max_gap_s
        self.zone = zone
        self.timezone_name = timezone_name or "local"
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashpivot-ledger")
        self._db: LedgerDb | None = None
        self._lock_fd: int | None = None
        self._integrator: Integrator | None = None
        self._writer = False
        self._note: str | None = None
        self._persisted = False

    @property
    def writer(self) -> bool:
        return self._writer

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(DB_DEADLINE_S):
            return await loop.run_in_executor(self._executor, fn)

    async def open_writer(self) -> None:
        """Take the lock and restore; fall back to reading if another process accrues."""
        try:
            locked = await self._run(self._lock)
        except OSError as exc:
            self._note = f"accrued earnings not saved: cannot use {self.path.parent}: {exc}"
            self._integrator = Integrator(self.device_ids, self.max_gap_s, self.zone, self._clock())
            self._writer = True  # integrate in memory so the operator still sees today
            return
        if not locked:
            self._note = "another hashpivot process is accruing; showing its figures"
            await self.open_reader()
            return
        self._writer = True
        try:
            self._db = await self._run(lambda: LedgerDb(self.path, read_only=False))
            integrator = Integrator(self.device_ids, self.max_gap_s, self.zone, self._clock())
            db = self._db
            today, cursors = await self._run(lambda: db.load(integrator.day))
            integrator.restore(today, cursors)
            self._integrator = integrator
            self._persisted = True
        except (sqlite3.Error, OSError, TimeoutError) as exc:
            self._note = f"accrued earnings not saved: {exc}"
            self._integrator = Integrator(self.device_ids, self.max_gap_s, self.zone, self._clock())

    async def open_reader(self) -> None:
        """Read today's figures (again, if already open); never creates the file."""
        if self._writer or (self._db is None and not self.path.exists()):
            return
        try:
            if self._db is None:
                self._db = await self._run(lambda: LedgerDb(self.path, read_only=True))
            await self.refresh()
        except (sqlite3.Error, OSError, TimeoutError) as exc:
            self._note = f"cannot read accrued earnings: {exc}"

    async def refresh(self) -> None:
        """Reader only: reload today's figures from the file."""
        db = self._db
        if self._writer or db is None:
            return
        integrator = Integrator(self.device_ids, self.max_gap_s, self.zone, self._clock())
        today, cursors = await self._run(lambda: db.load(integrator.day))
        integrator.restore(today, cursors)
        self._integrator = integrator
        self._persisted = True

    def _lock(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    async def step(self, reading_at: F64, revenue_usd_per_day: F64, cost_usd_per_day: F64) -> None:
        """Integrate one step (writer) and persist it; a reader reloads instead."""
        if not self._writer:
            with contextlib.suppress(sqlite3.Error, OSError, TimeoutError):
                await self.refresh()
            return
        integrator = self._integrator
        if integrator is None:
            return
        writes = integrator.step(reading_at, revenue_usd_per_day, cost_usd_per_day, self._clock())
        db = self._db
        if not writes or db is None:
            return
        try:
            # Shielded: a step already integrated (and shown) is written even when the site
            # is being cancelled, so a restart never reads back less than the console showed.
            await asyncio.shield(self._run(lambda: db.write(writes)))
        except (sqlite3.Error, OSError, TimeoutError) as exc:
            # Keep integrating in memory; the next successful write carries the totals (they
            # are written as absolute values), only an earlier-day split may be lost.
            self._persisted = False
            self._note = f"accrued earnings not saved: {exc}"
        else:
            if not self._persisted:
                self._persisted, self._note = True, None

    def report_error(self, message: str) -> None:
        self._note = message

    def view(self) -> AccruedToday | None:
        if self._integrator is None:
            return None
        return self._integrator.view(self.timezone_name, self._persisted, self._note)

    async def close(self) -> None:
        db, fd = self._db, self._lock_fd
        self._db, self._lock_fd = None, None

        def shut() -> None:
            if db is not None:
                db.close()
            if fd is not None:
                os.close(fd)  # releases the flock

        with contextlib.suppress(Exception):
            await self._run(shut)
        self._executor.shutdown(wait=False)
