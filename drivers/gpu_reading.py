"""The normalised GPU reading: what the NVML driver hands the console, one shape for every GPU.

`drivers.nvml` produces these from NVML (real library or the simulator's `nvmlLib` stand-in);
the console (poller, workloads, economics, presenters) only reads them and never imports
`pynvml`. Units are normalised here, at the driver boundary: W, J, °C, bytes, MHz, percent.
A value the GPU does not report (NotSupported / NoPermission / FunctionNotFound) is `None`,
never 0, and the field name goes into `GpuSample.unsupported`.

Every GPU is keyed by its UUID ("GPU-…"): the NVML index is PCI bus order, not the CUDA
ordinal, so an index must never be used to address a GPU across processes.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class GpuHealth(StrEnum):
    """How the driver judges the GPU itself (not its workload, not the console's mode)."""

    OK = "ok"
    STALE = "stale"  # our per-tick deadline expired: an NVML call is hung, no fresh data
    LOST = "lost"  # GpuIsLost / Unknown: fell off the bus; no more automation on it
    NEEDS_RESET = "needs_reset"  # ResetRequired, or memory held with no process attached
    FAULTED = "faulted"  # a critical XID was seen; an operator must acknowledge


class GpuStatic(msgspec.Struct, frozen=True, kw_only=True):
    """What does not change while the driver is loaded; read once per GPU."""

    uuid: str
    index: int  # NVML index (PCI bus order)
    name: str  # "NVIDIA GeForce RTX 4090"
    pci_bus_id: str  # "00000000:01:00.0"
    memory_total_bytes: int
    power_limit_min_w: float | None = None
    power_limit_max_w: float | None = None
    power_limit_default_w: float | None = None
    temp_slowdown_c: float | None = None
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_driver_version: int | None = None
    identified: bool = True
    """False for a GPU that was lost before NVML could identify it: `uuid` is then a
    placeholder ("unidentified-nvml-index-N"), not a UUID, and the other fields are empty."""


class GpuProcess(msgspec.Struct, frozen=True, kw_only=True):
    """One process holding a context on the GPU (host PID, as NVML reports it)."""

    pid: int
    used_memory_bytes: int | None = None  # None where NVML cannot tell (WDDM, some MIG)
    kind: str = "C"  # "C" compute, "G" graphics
    name: str | None = None  # process name from the OS, when it can be read


class XidEvent(msgspec.Struct, frozen=True, kw_only=True):
    xid: int
    at: float  # unix seconds when the driver saw it


class GpuSample(msgspec.Struct, frozen=True, kw_only=True):
    """One tick of one GPU. `None` = not reported by this GPU (see `unsupported`)."""

    taken_at: float  # unix seconds
    power_w: float | None = None
    power_limit_w: float | None = None  # enforced limit, after every limiter
    energy_j: float | None = None  # total since the driver loaded (monotonic until a reload)
    temp_gpu_c: float | None = None
    temp_memory_c: float | None = None
    util_gpu_pct: float | None = None
    util_memory_pct: float | None = None
    memory_used_bytes: int | None = None  # by contexts (v2); v1 fallback includes the reserve
    memory_total_bytes: int | None = None
    memory_reserved_bytes: int | None = None  # driver/firmware reserve (v2); None on v1
    clock_sm_mhz: float | None = None
    clock_memory_mhz: float | None = None
    fan_pct: float | None = None
    pstate: int | None = None  # 0 (max performance) .. 15
    throttle_reasons: tuple[str, ...] = ()  # short labels: PWR, THERM-SW, THERM-HW, BRAKE, HW, ...
    pcie_generation: int | None = None
    pcie_width: int | None = None
    ecc_corrected: int | None = None
    ecc_uncorrected: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    xids: tuple[XidEvent, ...] = ()  # XID events seen since the previous sample
    unsupported: tuple[str, ...] = ()  # field names this GPU does not report
    field_errors: tuple[tuple[str, str], ...] = ()  # (field, NVML error) for transient failures


class GpuReading(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU as the driver last saw it: identity, health and the latest sample."""

    static: GpuStatic
    health: GpuHealth
    sample: GpuSample | None = None  # None when no sample could be taken (lost, hung)
    error: str | None = None  # why health is not OK, in words an operator can act on
    last_xid: XidEvent | None = None  # the most recent XID seen on this GPU, kept across ticks


class NvmlState(msgspec.Struct, frozen=True, kw_only=True):
    """The whole NVML side at one tick. `available=False` is a first-class state, not a crash:
    the console shows "no GPUs: <reason>" and retries."""

    available: bool
    reason: str | None = None  # why NVML is unavailable (library not found, driver not loaded)
    gpus: tuple[GpuReading, ...] = ()
    driver_version: str | None = None
    nvml_version: str | None = None
