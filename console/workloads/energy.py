"""Energy per GPU per mode, and per AI job, from NVML's energy counter (reference §8).

Each NVML tick, `EnergyLedger.observe` takes the GPU's total-energy counter (J since the driver
loaded) and books the delta since the previous tick to what owned the GPU during it: its mode
bucket (mining, ai, idle, transition: a switch in progress, held: FAULTED / NEEDS_RESET / LOST)
and, in AI mode, the job. So each mining stint and each job gets its own kWh, and economics can
price them.

* A counter that goes backwards (driver reload) starts a new segment: nothing is booked for
  that interval, never a negative or a wrapped figure.
* Where the counter is not reported (some consumer boards), power × interval is booked
  instead, in separate `estimated` columns, so a presenter can mark the figure as estimated.
  An interval longer than `MAX_ESTIMATE_GAP_S` is not extrapolated.
* The cursor (last counter value per GPU) is persisted with the totals in one transaction, so
  a restarted console neither loses nor double-counts energy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

import msgspec

from console.workloads.db import WorkloadDb
from console.workloads.intent import HOLDING, STEADY, GpuState
from drivers.gpu_reading import GpuReading

MAX_ESTIMATE_GAP_S: Final = 300.0
"""Longest interval power × time is booked over when the GPU has no energy counter."""

BUCKET_OF_STATE: Final[Mapping[GpuState, str]] = {
    GpuState.MINING: "mining",
    GpuState.AI_RUNNING: "ai",
    GpuState.IDLE: "idle",
}


def bucket_of(state: GpuState) -> str:
    if state in STEADY:
        return BUCKET_OF_STATE[state]
    return "held" if state in HOLDING else "transition"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS gpu_energy (
    uuid TEXT NOT NULL,
    bucket TEXT NOT NULL,
    joules REAL NOT NULL DEFAULT 0,
    estimated_joules REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (uuid, bucket)
);
CREATE TABLE IF NOT EXISTS job_energy (
    job_id INTEGER PRIMARY KEY,
    joules REAL NOT NULL DEFAULT 0,
    estimated_joules REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS energy_cursor (
    uuid TEXT PRIMARY KEY,
    energy_j REAL,
    at REAL NOT NULL
);
"""


class EnergyTotals(msgspec.Struct, frozen=True, kw_only=True):
    joules: float  # from the counter
    estimated_joules: float  # from power × time, where the counter is missing

    @property
    def kwh(self) -> float:
        return (self.joules + self.estimated_joules) / 3.6e6


class Owner(msgspec.Struct, frozen=True, kw_only=True):
    """Who owned a GPU during the last interval."""

    state: GpuState
    job_id: int | None = None


class EnergyLedger:
    def __init__(self, db: WorkloadDb, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.add_schema(_SCHEMA)

    async def observe(self, readings: list[GpuReading], owners: Mapping[str, Owner]) -> None:
        """Book the energy of every GPU in `readings` since its previous observation."""
        ticks = [
            (
                r.static.uuid,
                r.sample.energy_j,
                r.sample.power_w,
                r.sample.taken_at,
                owners.get(r.static.uuid),
            )
            for r in readings
            if r.sample is not None
        ]

        def write() -> None:
            with self._db.transaction() as db:
                for uuid, energy_j, power_w, at, owner in ticks:
                    row = db.execute(
                        "SELECT energy_j, at FROM energy_cursor WHERE uuid = ?", (uuid,)
                    ).fetchone()
                    db.execute(
                        "INSERT INTO energy_cursor (uuid, energy_j, at) VALUES (?,?,?) "
                        "ON CONFLICT(uuid) DO UPDATE SET energy_j = excluded.energy_j, "
                        "at = excluded.at",
                        (uuid, energy_j, at),
                    )
                    if row is None or owner is None:
                        continue
                    last_j, last_at = row
                    measured = estimated = 0.0
                    if energy_j is not None and last_j is not None:
                        if energy_j >= last_j:  # backwards: a driver reload, a new segment
                            measured = energy_j - last_j
                    elif power_w is not None and 0 < at - last_at <= MAX_ESTIMATE_GAP_S:
                        estimated = power_w * (at - last_at)
                    if measured == 0.0 and estimated == 0.0:
                        continue
                    db.execute(
                        "INSERT INTO gpu_energy (uuid, bucket, joules, estimated_joules) "
                        "VALUES (?,?,?,?) ON CONFLICT(uuid, bucket) DO UPDATE SET "
                        "joules = joules + excluded.joules, "
                        "estimated_joules = estimated_joules + excluded.estimated_joules",
                        (uuid, bucket_of(owner.state), measured, estimated),
                    )
                    if owner.job_id is not None and owner.state is GpuState.AI_RUNNING:
                        db.execute(
                            "INSERT INTO job_energy (job_id, joules, estimated_joules) "
                            "VALUES (?,?,?) ON CONFLICT(job_id) DO UPDATE SET "
                            "joules = joules + excluded.joules, "
                            "estimated_joules = estimated_joules + excluded.estimated_joules",
                            (owner.job_id, measured, estimated),
                        )

        await self._db.run(write)

    async def by_gpu(self) -> dict[str, dict[str, EnergyTotals]]:
        """uuid → bucket → totals."""

        def read() -> dict[str, dict[str, EnergyTotals]]:
            out: dict[str, dict[str, EnergyTotals]] = {}
            rows = self._db.connection().execute(
                "SELECT uuid, bucket, joules, estimated_joules FROM gpu_energy"
            )
            for uuid, bucket, joules, estimated in rows:
                out.setdefault(uuid, {})[bucket] = EnergyTotals(
                    joules=joules, estimated_joules=estimated
                )
            return out

        return await self._db.run(read)

    async def for_job(self, job_id: int) -> EnergyTotals:
        def read() -> EnergyTotals:
            row = (
                self._db.connection()
                .execute(
                    "SELECT joules, estimated_joules FROM job_energy WHERE job_id = ?", (job_id,)
                )
                .fetchone()
            )
            if row is None:
                return EnergyTotals(joules=0.0, estimated_joules=0.0)
            return EnergyTotals(joules=row[0], estimated_joules=row[1])

        return await self._db.run(read)
