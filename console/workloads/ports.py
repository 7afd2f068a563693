"""What the workloads need from the hardware side, as small Protocols the site plugs drivers into.

The switch state machine and the supervisor never import a driver: the site passes objects
that satisfy these (the NVML driver over the real library or the simulator's `nvmlLib`, the GPU
miner API readers), and tests pass real stand-ins. Keeping them this small is deliberate:
one NVML read of every GPU, one miner hashrate read, one optional hardware preparation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from console.workloads.intent import GpuMode
from drivers.gpu_miner import read_lolminer, read_trex
from drivers.gpu_reading import NvmlState


class GpuProbe(Protocol):
    """A fresh NVML reading of every GPU, in one hop on the NVML executor.

    `NvmlState.available` False means NVML cannot be used at all (no library, no driver). A
    GPU missing from `gpus`, or with `health` LOST, is lost. The switch needs the processes
    (`GpuSample.processes`, host PIDs) and `memory_used_bytes`, so a probe must include them
    on every call (not only on the slow tier of the poller)."""

    async def sample(self) -> NvmlState: ...


class MinerProbe(Protocol):
    """The total hashrate a GPU miner's API reports, in H/s.

    `dialect` is `GpuConfig.miner_api_dialect` ("trex" for T-Rex's `/summary`, "lolminer").
    Returns None when the API answers but reports no hashrate; raises (OSError, TimeoutError,
    ValueError ...) when it does not answer or answers garbage. Never blocks the loop."""

    async def hashrate_hs(self, port: int, dialect: str) -> float | None: ...


class GpuTuner(Protocol):
    """Privileged preparation of a GPU for a mode (reset locked clocks, set the power limit
    clamped to the GPU's constraints). Only called for `[[gpus]]` entries with
    `privileged = true`. Returns a short description of what it did; raises on failure."""

    async def prepare(self, uuid: str, mode: GpuMode, power_limit_w: float | None) -> str: ...


GainEstimator = Callable[[str, GpuMode, GpuMode], float | None]
"""(uuid, from mode, to mode) → the expected fractional gain of switching (0.2 = +20 %), or None
when unknown. Supplied by economics; a switch below `[workloads].min_gain_fraction` is refused
unless forced."""


class MinerApiProbe:
    """The `MinerProbe` over `drivers.gpu_miner`: the miner's HTTP API on 127.0.0.1 (miners
    are always configured to serve their API on loopback only)."""

    def __init__(self, host: str = "127.0.0.1", timeout_s: float = 3.0) -> None:
        self.host = host
        self.timeout_s = timeout_s

    async def hashrate_hs(self, port: int, dialect: str) -> float | None:
        if dialect == "trex":
            reading = await read_trex(self.host, port, timeout_s=self.timeout_s)
        elif dialect == "lolminer":
            reading = await read_lolminer(self.host, port, timeout_s=self.timeout_s)
        else:
            raise ValueError(f"unknown miner API dialect {dialect!r}; use trex or lolminer")
        return reading.hashrate_hs


class PowerLimiter(Protocol):
    """The NVML driver's power-limit writes (`drivers.nvml.NvmlDriver` has both; they raise
    with the reason when refused: out of range, no permission)."""

    async def set_power_limit(self, uuid: str, watts: float) -> float: ...

    async def reset_power_limit(self, uuid: str) -> float: ...


class PowerLimitTuner:
    """A `GpuTuner` that sets the mode's power limit from config (`ai_power_limit_w`,
    `mining_power_limit_w`), or puts the board's default back when the mode has none, so a
    mining limit never lingers into an AI job (reference §6.3). Locked clocks are not reset:
    the driver has no call for it yet."""

    def __init__(self, nvml: PowerLimiter) -> None:
        self._nvml = nvml

    async def prepare(self, uuid: str, mode: GpuMode, power_limit_w: float | None) -> str:
        if power_limit_w is None:
            watts = await self._nvml.reset_power_limit(uuid)
            return f"power limit back to the board default, {watts:.0f} W enforced"
        watts = await self._nvml.set_power_limit(uuid, power_limit_w)
        return f"power limit {power_limit_w:.0f} W for {mode.value}, {watts:.0f} W enforced"
