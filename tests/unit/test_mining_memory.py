"""A GPU's last mining figures survive a console restart (a real SQLite file), written at most
once a minute per GPU."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from console.mining_memory import SAVE_EVERY_S, MiningMemory
from console.model import GpuView
from console.workloads.db import WorkloadDb


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def mining(uuid: str, hashrate_hs: float, state: str = "MINING") -> GpuView:
    return GpuView(
        uuid=uuid,
        nvml=None,
        mode="mining",
        state=state,
        switching=False,
        miner_hashrate_hs=hashrate_hs,
        miner_algorithm="kawpow",
    )


def rows(path: Path) -> list[tuple[str, float, float]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT uuid, hashrate_hs, seen_at FROM gpu_mining_memory"))


async def test_remembered_figures_survive_a_restart_and_are_written_sparingly(
    tmp_path: Path,
) -> None:
    clock = Clock(1000.0)
    db = WorkloadDb.in_state_dir(tmp_path)
    memory = MiningMemory(db, clock)
    memory.remember(mining("GPU-a", 60e6))
    memory.remember(mining("GPU-b", 0.0))  # no hashrate yet (DAG): nothing to remember
    memory.remember(mining("GPU-c", 50e6, state="AI_RUNNING"))  # not mining: not its rate
    await memory.save()
    assert rows(db.path) == [("GPU-a", 60e6, 1000.0)]

    clock.t = 1010.0
    memory.remember(mining("GPU-a", 61e6))
    await memory.save()  # ten seconds later: kept in memory, not written again yet
    assert memory.hashrate_hs["GPU-a"] == 61e6
    assert rows(db.path) == [("GPU-a", 60e6, 1000.0)]
    clock.t = 1000.0 + SAVE_EVERY_S
    await memory.save()
    assert rows(db.path) == [("GPU-a", 61e6, 1010.0)]
    db.close()

    # A new console: the GPU does AI now, and its mining estimate is still there.
    db = WorkloadDb.in_state_dir(tmp_path)
    again = MiningMemory(db, clock)
    await again.load()
    assert again.hashrate_hs == {"GPU-a": 61e6} and again.algorithm == {"GPU-a": "kawpow"}
    assert again.power_w == {}  # no NVML power was seen: none is invented
    db.close()
