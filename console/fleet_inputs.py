"""Snapshot → `FleetInputs`: the one place that reads device status for the earnings model.

ASIC columns come from `DeviceStatus.reading` (an `AsicReading`). GPU columns come from a
`GpuEconomics` per GPU, produced by a function the site passes in (`gpu_economics`): the GPU
status (NVML reading, workload mode, miner hashrate, running job) lands in the snapshot from
the GPU path and `console.workloads`, and that function is the only thing to write when it
does. Until then GPUs are not priced: no GPU figure is invented here.

The builder is incremental: the store hands out the same `DeviceStatus` object while a device
has no new reading, so only rows whose status object changed are refilled (an identity check
per device, not a rebuild). Each `build` returns fresh read-only arrays, so an earlier
snapshot's inputs never change under a presenter.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from operator import is_not
from typing import Any, Literal

import msgspec
import numpy as np

from console.economics import (
    KIND_ASIC,
    KIND_GPU,
    MODE_AI,
    MODE_IDLE,
    MODE_MINING,
    FleetInputs,
    blank_columns,
)
from console.model import DeviceKind, DeviceStatus, Freshness, Snapshot

_MODES = {"mining": MODE_MINING, "ai": MODE_AI, "idle": MODE_IDLE}


class GpuEconomics(msgspec.Struct, frozen=True, kw_only=True):
    """What the earnings model needs from one GPU's status. None = not known.

    Sources when the GPU path lands: `mode` from the workload state machine (what the GPU is
    doing now, not what it was told); `power_w`, `vram_bytes`, `power_limit_w`, `model` from
    the NVML reading (`GpuSample.power_w`, `GpuStatic.memory_total_bytes`,
    `GpuStatic.power_limit_default_w`, `GpuStatic.name`); `hashrate_hs` and `algorithm` from
    the GPU miner's API while mining; `mining_hashrate_hs` / `mining_power_w` from the GPU's
    config or its last mining session (for the estimate while it does something else);
    `job_rate_usd_per_hour` from the AI job running on it."""

    mode: Literal["mining", "ai", "idle"]
    power_w: float | None = None
    power_estimated: bool = False
    model: str | None = None  # NVML name, e.g. "NVIDIA GeForce RTX 4090"
    vram_bytes: int | None = None
    power_limit_w: float | None = None
    algorithm: str | None = None  # e.g. "kawpow"; keys of [market].gpu_mining_usd_per_mhs_day
    hashrate_hs: float | None = None  # measured now, while mining
    mining_hashrate_hs: float | None = None  # configured or last measured
    mining_power_w: float | None = None  # configured or last measured
    job_rate_usd_per_hour: float | None = None  # the running AI job's rate per GPU-hour


GpuEconomicsOf = Callable[[DeviceStatus], GpuEconomics | None]


def no_gpu_economics(status: DeviceStatus) -> GpuEconomics | None:
    """The default until the GPU status lands in the snapshot: GPUs are left unpriced."""
    return None


def _f(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


class FleetInputsBuilder:
    """Keeps the input arrays of one site and refills only the rows whose status changed."""

    def __init__(self, gpu_economics: GpuEconomicsOf = no_gpu_economics) -> None:
        self._gpu_economics = gpu_economics
        self._statuses: list[DeviceStatus | None] = []
        self._ids: tuple[str, ...] = ()
        self._cols = blank_columns(0)
        self._algorithms: dict[str, int] = {}
        self._models: dict[str, int] = {}

    def build(self, snapshot: Snapshot) -> FleetInputs:
        """The inputs for `snapshot`, rows in its device order."""
        devices = snapshot.devices
        if len(devices) != len(self._statuses):
            self._reset(devices)
        statuses = self._statuses
        # The identity scan runs in C (map + compress); Python only sees the changed rows.
        for i in itertools.compress(range(len(devices)), map(is_not, devices, statuses)):
            status = devices[i]
            if status.device_id != self._ids[i]:
                self._reset(devices)
                return self.build(snapshot)
            self._fill(i, status)
            statuses[i] = status
        return FleetInputs(
            device_ids=self._ids,
            gpu_algorithms=tuple(self._algorithms),
            gpu_models=tuple(self._models),
            **self._copy_columns(),
        )

    def _copy_columns(self) -> dict[str, Any]:
        """A snapshot of the columns, one block per dtype (one allocation each, not one per
        column), so later fills never change inputs a presenter already holds."""
        by_dtype: dict[np.dtype[Any], list[str]] = {}
        for name, array in self._cols.items():
            by_dtype.setdefault(array.dtype, []).append(name)
        out: dict[str, Any] = {}
        for dtype, names in by_dtype.items():
            block = np.empty((len(names), len(self._ids)), dtype)
            for row, name in zip(block, names, strict=True):
                np.copyto(row, self._cols[name])
                out[name] = row
        return out

    def _reset(self, devices: tuple[DeviceStatus, ...]) -> None:
        self._statuses = [None] * len(devices)
        self._ids = tuple(d.device_id for d in devices)
        self._cols = blank_columns(len(devices))

    def _fill(self, i: int, status: DeviceStatus) -> None:
        c = self._cols
        usable = status.freshness in (Freshness.FRESH, Freshness.STALE)
        c["reading_at"][i] = _f(status.last_ok_at)
        if status.kind is DeviceKind.ASIC:
            c["kind"][i] = KIND_ASIC
            r = status.reading
            c["priced"][i] = usable and r is not None
            if r is None:
                return
            # The same hashrate the site totals use: the 5 s figure, else the average.
            hashrate = r.hashrate_5s_hs if r.hashrate_5s_hs is not None else r.hashrate_avg_hs
            c["hashrate_hs"][i] = _f(hashrate)
            c["power_w"][i] = _f(r.power_w)
            c["power_estimated"][i] = r.power_estimated
            return
        c["kind"][i] = KIND_GPU
        gpu = self._gpu_economics(status)
        c["priced"][i] = usable and gpu is not None
        if gpu is None:
            return
        c["power_w"][i] = _f(gpu.power_w)
        c["power_estimated"][i] = gpu.power_estimated
        c["hashrate_hs"][i] = _f(gpu.hashrate_hs) if gpu.mode == "mining" else math.nan
        c["gpu_mode"][i] = _MODES[gpu.mode]
        c["gpu_algorithm"][i] = self._index(self._algorithms, gpu.algorithm)
        c["gpu_mining_hashrate_hs"][i] = _f(gpu.mining_hashrate_hs)
        c["gpu_mining_power_w"][i] = _f(gpu.mining_power_w)
        c["gpu_job_rate_usd_per_hour"][i] = (
            _f(gpu.job_rate_usd_per_hour) if gpu.mode == "ai" else math.nan
        )
        c["gpu_vram_bytes"][i] = _f(gpu.vram_bytes)
        c["gpu_model"][i] = self._index(self._models, gpu.model)
        c["gpu_power_limit_w"][i] = _f(gpu.power_limit_w)

    @staticmethod
    def _index(table: dict[str, int], name: str | None) -> int:
        if not name:
            return -1
        return table.setdefault(name, len(table))
