"""Accrued earnings survive restarts and kill -9: real SQLite files, real processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from console.accrual import EarningsLedger

ROOT = Path(__file__).resolve().parents[2]
NOON = dt.datetime(2026, 7, 6, 12, 0, tzinfo=dt.UTC).timestamp()
UTC = dt.UTC


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def ledger(path: Path, clock: Clock, max_gap_s: float = 75.0) -> EarningsLedger:
    return EarningsLedger(path, ["a", "b"], [max_gap_s, max_gap_s], UTC, clock=clock)


async def test_totals_and_cursors_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "earnings.sqlite"
    clock = Clock(NOON)
    first = ledger(path, clock)
    await first.open_writer()
    # 86.4 USD/day = 0.001 USD/s of revenue; 43.2 USD/day of power.
    for k in range(4):
        clock.t = NOON + 30 * k
        await first.step(arr(clock.t, clock.t), arr(86.4, 8.64), arr(43.2, 4.32))
    before = first.view()
    assert before is not None and before.persisted and before.note is None
    assert before.revenue_usd.tolist() == pytest.approx([0.09, 0.009])
    await first.close()

    # A new process, ten seconds later: same totals, and the cursor continues.
    clock.t = NOON + 100
    second = ledger(path, clock)
    await second.open_writer()
    restored = second.view()
    assert restored is not None
    assert restored.revenue_usd.tolist() == pytest.approx([0.09, 0.009])
    assert restored.power_cost_usd.tolist() == pytest.approx([0.045, 0.0045])
    assert restored.covered_s.tolist() == [90.0, 90.0]
    clock.t = NOON + 120
    await second.step(arr(clock.t, clock.t), arr(86.4, 8.64), arr(43.2, 4.32))
    after = second.view()
    assert after is not None
    # 30 s since the last reading before the restart, at that reading's rate
    assert after.revenue_usd.tolist() == pytest.approx([0.12, 0.012])
    # A console down for an hour: the gap is credited for at most 75 s.
    clock.t = NOON + 120 + 3600
    await second.step(arr(clock.t, clock.t), arr(86.4, 8.64), arr(43.2, 4.32))
    capped = second.view()
    assert capped is not None
    assert capped.revenue_usd.tolist() == pytest.approx([0.12 + 0.075, 0.012 + 0.0075])
    await second.close()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT device_id, covered_s FROM accrued_day ORDER BY 1").fetchall()
    assert rows == [("a", 195.0), ("b", 195.0)]


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE accrued_day (day TEXT NOT NULL, device_id TEXT NOT NULL, revenue_usd REAL NOT NULL,
    power_cost_usd REAL NOT NULL, covered_s REAL NOT NULL, PRIMARY KEY (day, device_id))
    WITHOUT ROWID;
CREATE TABLE accrual_cursor (device_id TEXT PRIMARY KEY, reading_at REAL NOT NULL,
    revenue_usd_per_day REAL, power_cost_usd_per_day REAL) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO accrued_day VALUES ('2026-07-06', 'a', 1.5, 0.5, 3000.0);
"""


async def test_a_version_1_ledger_is_read_then_migrated_losing_nothing(tmp_path: Path) -> None:
    path = tmp_path / "earnings.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    clock = Clock(NOON)
    # A reader cannot migrate: it reads the old rows as fully cost-covered.
    reader = ledger(path, clock)
    await reader.open_reader()
    old = reader.view()
    assert old is not None and old.revenue_usd.tolist() == [1.5, 0.0]
    assert old.cost_covered_s.tolist() == [3000.0, 0.0]
    await reader.close()
    # The writer adds the column and carries on from the same totals.
    writer = ledger(path, clock)
    await writer.open_writer()
    await writer.step(arr(NOON, NOON), arr(86.4, 86.4), arr(43.2, math.nan))
    clock.t = NOON + 30
    await writer.step(arr(clock.t, clock.t), arr(86.4, 86.4), arr(43.2, math.nan))
    view = writer.view()
    assert view is not None
    assert view.revenue_usd.tolist() == pytest.approx([1.53, 0.03])
    assert view.cost_covered_s.tolist() == [3030.0, 0.0]
    assert view.cost_complete.tolist() == [True, False]
    await writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)
        rows = db.execute(
            "SELECT device_id, covered_s, cost_covered_s FROM accrued_day ORDER BY 2"
        ).fetchall()
    assert rows == [("b", 30.0, 0.0), ("a", 3030.0, 3030.0)]


async def test_a_second_process_reads_but_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "earnings.sqlite"
    clock = Clock(NOON)
    writer = ledger(path, clock)
    await writer.open_writer()
    other = ledger(path, clock)
    await other.open_writer()  # the lock is taken: it becomes a reader
    assert writer.writer and not other.writer
    for k in range(3):
        clock.t = NOON + 10 * k
        await writer.step(arr(clock.t, clock.t), arr(86.4, 86.4), arr(0, 0))
        await other.step(arr(clock.t + 5, clock.t + 5), arr(1e6, 1e6), arr(0, 0))  # ignored
    view = other.view()
    assert view is not None
    assert view.revenue_usd.tolist() == pytest.approx([0.02, 0.02])
    assert view.note == "another hashpivot process is accruing; showing its figures"
    await other.close()
    await writer.close()


async def test_reader_without_a_file_has_nothing_to_show(tmp_path: Path) -> None:
    reader = ledger(tmp_path / "none" / "earnings.sqlite", Clock(NOON))
    await reader.open_reader()
    assert reader.view() is None
    assert not (tmp_path / "none").exists()  # reading never creates state
    await reader.close()


CHILD = textwrap.dedent(
    """
    import asyncio, datetime as dt, sys
    import numpy as np
    from pathlib import Path
    from console.accrual import EarningsLedger

    NOON = {noon!r}

    class Clock:
        t = NOON
        def __call__(self):
            return self.t

    async def main():
        clock = Clock()
        ledger = EarningsLedger(
            Path(sys.argv[1]), ["a", "b"], [1.0, 1.0], dt.UTC, clock=clock
        )
        await ledger.open_writer()
        k = 0
        while True:
            clock.t = NOON + k
            t = np.array([clock.t, clock.t])
            await ledger.step(t, np.array([86.4, 8.64]), np.array([43.2, 4.32]))
            view = ledger.view()
            # printed only after the step's transaction committed
            print(f"{{k}} {{view.covered_s[0]:.1f}} {{view.revenue_usd[0]:.6f}}", flush=True)
            k += 1
            await asyncio.sleep(0.005)

    asyncio.run(main())
    """
).format(noon=NOON)


def accrue_in_a_child_then_kill_9(path: Path) -> tuple[int, float]:
    """Run an accruing process, SIGKILL it mid-loop; (last step, covered_s) it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while len(seen) < 40:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "child died"
        seen.append(line)
    os.kill(proc.pid, signal.SIGKILL)  # mid-loop, between or during writes
    rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    lines = [line.split() for line in [*seen, *rest.splitlines()] if line.strip()]
    return int(lines[-1][0]), float(lines[-1][1])


async def test_kill_9_loses_nothing_that_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "earnings.sqlite"
    last_k, last_covered = await asyncio.to_thread(accrue_in_a_child_then_kill_9, path)
    assert last_k >= 39

    # The kernel released the lock with the process: a new writer takes over.
    clock = Clock(NOON + last_k + 1)
    restored = ledger(path, clock, max_gap_s=1.0)
    await restored.open_writer()
    assert restored.writer
    view = restored.view()
    assert view is not None
    covered = float(view.covered_s[0])
    # Everything acknowledged (printed) is there; at most the one step that committed
    # before the kill landed without its line being printed.
    assert last_covered <= covered <= last_covered + 1.0
    # Totals and cursors moved in the same transactions: revenue matches covered time.
    assert float(view.revenue_usd[0]) == pytest.approx(covered * 0.001)
    assert float(view.power_cost_usd[0]) == pytest.approx(covered * 0.0005)
    assert float(view.revenue_usd[1]) == pytest.approx(covered * 0.0001)
    # The child's last committed cursor resumes: a reading much later credits at most 1 s.
    clock.t = NOON + last_k + 600
    await restored.step(arr(clock.t, clock.t), arr(86.4, 8.64), arr(43.2, 4.32))
    after = restored.view()
    assert after is not None
    assert float(after.covered_s[0]) == covered + 1.0
    await restored.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_reader_reopened_follows_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "earnings.sqlite"
    clock = Clock(NOON)
    writer = ledger(path, clock)
    await writer.open_writer()
    await writer.step(arr(NOON, NOON), arr(86.4, 86.4), arr(0, 0))
    reader = ledger(path, clock)
    await reader.open_reader()
    first_db = reader._db
    clock.t = NOON + 10
    await writer.step(arr(clock.t, clock.t), arr(86.4, 86.4), arr(0, 0))
    await reader.open_reader()  # a second one-shot snapshot in the same process
    assert reader._db is first_db  # the same connection, not a new one per call
    view = reader.view()
    assert view is not None and view.revenue_usd.tolist() == pytest.approx([0.01, 0.01])
    await reader.close()
    await writer.close()
