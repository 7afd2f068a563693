"""The NVML driver: NVIDIA GPUs through NVIDIA's own binding (nvidia-ml-py, ``import pynvml``).

This is the only module of hashpivot that imports `pynvml`. It turns NVML into the immutable
readings of `drivers.gpu_reading`, with units normalised here (mW → W, mJ → J, bytes, MHz, °C)
and every GPU keyed by its UUID.

How it runs (reference nvml-and-gpu-switching.md §3):

* NVML calls are blocking C calls. All of a tick's NVML work runs in **one hop** on a dedicated
  single-thread worker (a daemon thread: a wedged driver call must never keep the console from
  exiting), awaited under a per-tick deadline.
* A call that does not return by the deadline cannot be cancelled. The driver marks the GPU it
  was sampling STALE (naming the call), abandons that worker to finish whenever it can, and
  polls the other GPUs on a fresh worker from the next tick on; GPUs not sampled in the tick
  that hung are STALE for that tick. The hung GPU is not polled again until its call returns.
  At most `MAX_HUNG_WORKERS` workers may be stuck at once; beyond that nothing is polled (every
  GPU STALE, saying why) rather than piling threads up behind a wedged driver.
* Errors map per field: NotSupported / NoPermission / FunctionNotFound → that field `None`,
  recorded in `GpuSample.unsupported` and never asked again; GpuIsLost / Unknown → that GPU
  LOST (the others keep updating; a lost GPU is probed again every `lost_retry_s`);
  ResetRequired → NEEDS_RESET; any other error → `None` with the error in `field_errors`.
* Memory held with no process attached (a leaked context) is NEEDS_RESET too, judged on the
  v2 memory figure (which excludes the driver's reserve) against a tolerance.
* A critical XID makes the GPU FAULTED until an operator calls `acknowledge_fault`. XIDs come
  from an NVML event set, waited on by a second daemon thread in slices of `xid_wait_ms`.
* No library or no driver gives ``NvmlState(available=False, reason=...)``, never an
  exception; `sample()` tries again every `retry_unavailable_s`.

`library`, when given, is installed as ``pynvml.nvmlLib`` (the binding then never loads
``libnvidia-ml.so.1``): that is how a simulated site is polled through the real binding
(``NvmlDriver(library=simulators.nvml.NvmlSim(state_dir))``). NVML is one library per
process, so only one driver with a `library` may be open at a time.

Public API: `NvmlDriver` (`start`, `sample`, `sample_one`, `acknowledge_fault`,
`set_power_limit`, `reset_power_limit`, `close`, `state`), `decode_throttle_reasons`,
`NvmlCommandError`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import psutil
import pynvml  # type: ignore[import-untyped]  # nvidia-ml-py ships no type information

from drivers.blocking import DaemonWorker
from drivers.gpu_reading import (
    GpuHealth,
    GpuProcess,
    GpuReading,
    GpuSample,
    GpuStatic,
    NvmlState,
    XidEvent,
)

__all__ = [
    "CRITICAL_XIDS",
    "NvmlCommandError",
    "NvmlDriver",
    "decode_throttle_reasons",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MAX_HUNG_WORKERS: Final = 3
"""Abandoned worker threads (each stuck in one NVML call) tolerated before polling stops."""

CRITICAL_XIDS: Final = frozenset({48, 63, 64, 74, 79, 94, 95, 119, 120})
"""XIDs that make a GPU FAULTED: 79 fell off the bus; 48/63/64/94/95 uncorrectable memory
errors and row remapping; 74 NVLink; 119/120 GSP firmware. Application-caused XIDs (13, 31,
43, 45) are reported but leave the GPU healthy (reference §7.1)."""

_UNSUPPORTED_CODES: Final = frozenset(
    {
        pynvml.NVML_ERROR_NOT_SUPPORTED,
        pynvml.NVML_ERROR_NO_PERMISSION,
        pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
    }
)
_LOST_CODES: Final = frozenset({pynvml.NVML_ERROR_GPU_IS_LOST, pynvml.NVML_ERROR_UNKNOWN})

# Clock event reason bits → short labels (reference §3). GpuIdle is shown only when the GPU is
# busy: an idle GPU saying "idle" is noise.
_REASON_LABELS: Final = (
    (0x1, "IDLE"),
    (0x2, "APP"),
    (0x4, "PWR"),
    (0x8, "HW"),
    (0x10, "SYNC"),
    (0x20, "THERM-SW"),
    (0x40, "THERM-HW"),
    (0x80, "BRAKE"),
    (0x100, "DISPLAY"),
    (0x200, "BOARD"),
    (0x400, "RELIABILITY"),
)

_INIT_REASONS: Final = {
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: (
        "NVML library not found (libnvidia-ml.so.1): is the NVIDIA driver installed?"
    ),
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: (
        "NVIDIA driver not loaded: the kernel module is missing or failed to load"
    ),
    pynvml.NVML_ERROR_NO_PERMISSION: "no permission to open the NVIDIA device files (/dev/nvidia*)",
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
        "NVML library and kernel driver versions differ (driver upgraded without a reboot?)"
    ),
}


_SAMPLE_FIELDS: Final = frozenset(GpuSample.__struct_fields__)
_LOST_TEXT: Final = "GPU is lost (fell off the bus?); reboot the host to recover it"


def decode_throttle_reasons(mask: int, util_gpu_pct: float | None = None) -> tuple[str, ...]:
    """Short labels for a clock event reason bitmask, most significant cause last."""
    labels = []
    for bit, label in _REASON_LABELS:
        if mask & bit:
            if bit == 0x1 and not util_gpu_pct:
                continue
            labels.append(label)
    return tuple(labels)


class NvmlCommandError(Exception):
    """A write through NVML (power limit) was refused, by us or by the driver."""


class _GpuDown(Exception):
    """Raised inside a sample when NVML says the GPU itself is gone or needs a reset."""

    def __init__(self, health: GpuHealth, error: str) -> None:
        super().__init__(error)
        self.health = health
        self.error = error


# ---------------------------------------------------------------------------------------------
# One hop of work


@dataclass(slots=True)
class _Job:
    """One hop of NVML work, shared between the worker (writes) and the event loop (reads)."""

    cancelled: bool = False
    current: tuple[str, str] | None = None  # (uuid, NVML function) in flight
    call_started: float = 0.0
    results: dict[str, _Result] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Result:
    health: GpuHealth
    sample: GpuSample | None
    error: str | None


@dataclass(slots=True)
class _Hang:
    uuid: str
    call: str
    since: float  # monotonic
    future: concurrent.futures.Future[Any]


@dataclass(slots=True)
class _Gpu:
    """The driver's own record of one GPU. Mutable fields are touched only by the worker."""

    index: int
    static: GpuStatic
    handle: Any = None
    unsupported: set[str] = field(default_factory=set)
    memory_v1: bool = False  # v2 memory info unavailable: `used` includes the reserve
    temp_legacy: bool = False  # nvmlDeviceGetTemperatureV unavailable
    reasons_legacy: bool = False  # nvmlDeviceGetCurrentClocksEventReasons unavailable
    processes_v2: bool = False  # the _v3 process queries unavailable
    lost_at: float | None = None  # monotonic time the GPU was last found lost
    down: tuple[GpuHealth, str] | None = None  # why it could not be identified, if so

    @property
    def uuid(self) -> str:
        return self.static.uuid


class _Fields:
    """Collects one GPU's sample: values, unsupported fields, transient errors."""

    __slots__ = ("errors", "gpu", "job", "values")

    def __init__(self, gpu: _Gpu, job: _Job) -> None:
        self.gpu = gpu
        self.job = job
        self.values: dict[str, Any] = {}
        self.errors: list[tuple[str, str]] = []

    def call(
        self, names: tuple[str, ...], fn: Callable[..., _T], *args: Any, missing_ok: bool = False
    ) -> _T | None:
        """One NVML call feeding the sample fields `names`; None when it gives nothing.
        With `missing_ok`, a function the library lacks raises `_Missing` (so the caller can
        fall back to an older symbol) instead of marking the fields unsupported."""
        if self.job.cancelled:
            raise _Cancelled
        if names[0] in self.gpu.unsupported:
            return None
        return _guarded(
            self.gpu, self.job, names, fn, *args, errors=self.errors, missing_ok=missing_ok
        )


class _Cancelled(Exception):
    """The async side gave up on this job (deadline): stop touching NVML."""


class _Missing(Exception):
    """The library lacks a (versioned) function: fall back to the older one."""


_MISSING_CODES: Final = frozenset(
    {pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH}
)


def _guarded(
    gpu: _Gpu,
    job: _Job,
    names: tuple[str, ...],
    fn: Callable[..., _T],
    *args: Any,
    errors: list[tuple[str, str]] | None = None,
    missing_ok: bool = False,
) -> _T | None:
    job.current = (gpu.uuid, getattr(fn, "__name__", "nvml"))
    job.call_started = time.monotonic()
    try:
        return fn(*args)
    except pynvml.NVMLError as exc:
        code = exc.value
        if missing_ok and code in _MISSING_CODES:
            raise _Missing from None
        if code in _UNSUPPORTED_CODES:
            gpu.unsupported.update(names)
            return None
        if code in _LOST_CODES:
            raise _GpuDown(GpuHealth.LOST, f"{_LOST_TEXT} (NVML: {exc})") from None
        if code == pynvml.NVML_ERROR_RESET_REQUIRED:
            raise _GpuDown(GpuHealth.NEEDS_RESET, f"NVML: {exc}; reset the GPU") from None
        if errors is not None:
            errors.extend((n, str(exc)) for n in names)
        return None
    except pynvml.NVMLLibraryMismatchError:
        if missing_ok:
            raise _Missing from None
        gpu.unsupported.update(names)
        return None
    finally:
        job.current = None


def _handle_address(handle: Any) -> int | None:
    return ctypes.cast(handle, ctypes.c_void_p).value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------
# The XID event thread


class _XidWatcher:
    """Waits on one NVML event set for critical XIDs of every GPU, on its own thread."""

    def __init__(self, gpus: list[_Gpu], wait_ms: int, wall: Callable[[], float]) -> None:
        self.events: collections.deque[tuple[str, XidEvent]] = collections.deque()
        self.unsupported: set[str] = set()  # GPUs whose XIDs cannot be watched
        self._by_address = {_handle_address(g.handle): g.uuid for g in gpus if g.handle is not None}
        self._gpus = [g for g in gpus if g.handle is not None]
        self._wait_ms = wait_ms
        self._wall = wall
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nvml-xid", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            event_set = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError as exc:
            log.warning("NVML event sets unavailable, XIDs will not be reported: %s", exc)
            self.unsupported.update(g.uuid for g in self._gpus)
            return
        xid_type = pynvml.nvmlEventTypeXidCriticalError
        for gpu in self._gpus:
            try:
                if pynvml.nvmlDeviceGetSupportedEventTypes(gpu.handle) & xid_type:
                    pynvml.nvmlDeviceRegisterEvents(gpu.handle, xid_type, event_set)
                else:
                    self.unsupported.add(gpu.uuid)
            except pynvml.NVMLError as exc:
                log.info("XID events not available for %s: %s", gpu.uuid, exc)
                self.unsupported.add(gpu.uuid)
        try:
            while not self._stop.is_set():
                try:
                    data = pynvml.nvmlEventSetWait_v2(event_set, self._wait_ms)
                except pynvml.NVMLError_Timeout:
                    continue
                except pynvml.NVMLError as exc:
                    if not self._stop.is_set():
                        log.warning("NVML event wait failed, XID watch stopped: %s", exc)
                    return
                if data.eventType & xid_type:
                    uuid = self._by_address.get(_handle_address(data.device))
                    if uuid is not None:
                        self.events.append(
                            (uuid, XidEvent(xid=int(data.eventData), at=self._wall()))
                        )
        finally:
            try:
                pynvml.nvmlEventSetFree(event_set)
            except pynvml.NVMLError:
                pass


# ---------------------------------------------------------------------------------------------
# The driver


class NvmlDriver:
    """Polls every NVIDIA GPU of the host through NVML. See the module docstring.

    Typical use: ``state = await driver.start()``, then ``await driver.sample()`` once per tick,
    ``await driver.sample_one(uuid)`` for a quick look at one GPU (the switcher's "is it free"
    check), ``await driver.close()`` at the end. No method raises because of NVML trouble
    except the explicit writes (`set_power_limit`), which raise `NvmlCommandError`.
    """

    def __init__(
        self,
        *,
        library: object | None = None,
        tick_deadline_s: float = 2.0,
        init_deadline_s: float = 10.0,
        retry_unavailable_s: float = 30.0,
        lost_retry_s: float = 30.0,
        xid_events: bool = True,
        xid_wait_ms: int = 500,
        orphan_memory_tolerance_bytes: int = 256 * 1024 * 1024,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._library = library
        self._tick_deadline_s = tick_deadline_s
        self._init_deadline_s = init_deadline_s
        self._retry_unavailable_s = retry_unavailable_s
        self._lost_retry_s = lost_retry_s
        self._xid_enabled = xid_events
        self._xid_wait_ms = xid_wait_ms
        self._orphan_tolerance = orphan_memory_tolerance_bytes
        self._wall = wall_clock
        self._worker = DaemonWorker("nvml")
        self._hangs: dict[str, _Hang] = {}  # uuid -> the call it is stuck in
        self._wedged: list[_Hang] = []  # hung calls not tied to a GPU (init, shutdown)
        self._gpus: list[_Gpu] = []
        self._readings: dict[str, GpuReading] = {}
        self._pending_xids: dict[str, list[XidEvent]] = {}
        self._last_xid: dict[str, XidEvent] = {}
        self._faulted: dict[str, XidEvent] = {}
        self._xid: _XidWatcher | None = None
        self._initialised = False
        self._next_init_at = 0.0
        self._versions: tuple[str | None, str | None, int | None] = (None, None, None)
        self._state = NvmlState(available=False, reason="NVML not started yet")
        self._names: dict[int, str | None] = {}

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> NvmlState:
        """The last state built by `start`, `sample` or `sample_one`."""
        return self._state

    async def start(self) -> NvmlState:
        """Initialise NVML and read every GPU's static information once."""
        await self._try_init()
        if self._initialised:
            return await self.sample()
        return self._state

    async def sample(self) -> NvmlState:
        """One tick: a fresh sample of every GPU that can be polled, under the deadline."""
        if not self._initialised:
            if time.monotonic() >= self._next_init_at:
                await self._try_init()
            if not self._initialised:
                return self._state
        self._reap_hangs()
        targets = [g for g in self._gpus if g.uuid not in self._hangs]
        job = await self._run_job(targets, self._tick_deadline_s)
        self._absorb(job, targets)
        self._state = self._build_state()
        return self._state

    async def sample_one(self, uuid: str) -> GpuReading:
        """A fresh reading of one GPU (memory, processes, health and the rest), for callers
        that poll one GPU fast, such as the switcher's "verify free" loop. Raises `KeyError`
        for a UUID NVML does not know."""
        gpu = next((g for g in self._gpus if g.uuid == uuid), None)
        if gpu is None:
            raise KeyError(f"no GPU {uuid!r} in NVML (known: {[g.uuid for g in self._gpus]})")
        self._reap_hangs()
        if uuid not in self._hangs:
            job = await self._run_job([gpu], self._tick_deadline_s)
            self._absorb(job, [gpu])
            self._state = self._build_state()
        return self._readings[uuid]

    def acknowledge_fault(self, uuid: str) -> bool:
        """An operator has dealt with the critical XID: the GPU leaves FAULTED. Returns
        whether it was faulted."""
        was = self._faulted.pop(uuid, None) is not None
        if was and uuid in self._readings:
            r = self._readings[uuid]
            if r.health is GpuHealth.FAULTED:
                self._readings[uuid] = GpuReading(
                    static=r.static, health=GpuHealth.OK, sample=r.sample, last_xid=r.last_xid
                )
                self._state = self._build_state()
        return was

    async def set_power_limit(self, uuid: str, watts: float) -> float:
        """Set the software power limit (root on real hardware). Out-of-range values are
        refused here with the allowed range. Returns the enforced limit afterwards, W."""
        gpu = self._writable(uuid)

        def write() -> float:
            job = _Job()
            lo_hi = _guarded(
                gpu,
                job,
                ("power_limit",),
                pynvml.nvmlDeviceGetPowerManagementLimitConstraints,
                gpu.handle,
            )
            if lo_hi is not None:
                lo, hi = lo_hi[0] / 1000.0, lo_hi[1] / 1000.0
                if not lo <= watts <= hi:
                    raise NvmlCommandError(
                        f"{watts:.0f} W is outside {uuid}'s range {lo:.0f}–{hi:.0f} W"
                    )
            try:
                pynvml.nvmlDeviceSetPowerManagementLimit(gpu.handle, round(watts * 1000))
                enforced = pynvml.nvmlDeviceGetEnforcedPowerLimit(gpu.handle)
            except pynvml.NVMLError as exc:
                hint = " (needs root)" if exc.value == pynvml.NVML_ERROR_NO_PERMISSION else ""
                raise NvmlCommandError(
                    f"setting {uuid}'s power limit failed: {exc}{hint}"
                ) from None
            except pynvml.NVMLLibraryMismatchError as exc:
                raise NvmlCommandError(f"setting the power limit is not available: {exc}") from None
            return float(enforced) / 1000.0

        return await self._command(gpu, write)

    async def reset_power_limit(self, uuid: str) -> float:
        """Back to the board's default limit (after mining, before an AI job)."""
        gpu = self._writable(uuid)
        default = gpu.static.power_limit_default_w
        if default is None:
            raise NvmlCommandError(f"{uuid} does not report a default power limit")
        return await self.set_power_limit(uuid, default)

    async def close(self) -> None:
        """Stop the XID thread, shut NVML down (unless a call is hung) and uninstall the
        library this driver installed."""
        if self._xid is not None:
            self._xid.stop()
            await asyncio.to_thread(self._xid.thread.join, self._xid_wait_ms / 1000.0 + 1.0)
            self._xid = None
        if self._initialised and not self._hangs and not self._wedged:
            try:
                async with asyncio.timeout(self._tick_deadline_s):
                    await asyncio.wrap_future(self._worker.submit(pynvml.nvmlShutdown))
            except (TimeoutError, pynvml.NVMLError) as exc:
                log.warning("nvmlShutdown did not complete: %r", exc)
        self._initialised = False
        self._worker.stop()
        if self._library is not None and pynvml.nvmlLib is self._library:
            with pynvml.libLoadLock:
                pynvml.nvmlLib = None
                pynvml._nvmlGetFunctionPointer_cache.clear()
        self._state = NvmlState(available=False, reason="NVML driver closed")

    # ------------------------------------------------------------------ init

    async def _try_init(self) -> None:
        self._next_init_at = time.monotonic() + self._retry_unavailable_s
        if len(self._wedged) >= MAX_HUNG_WORKERS:
            self._reap_hangs()
            if len(self._wedged) >= MAX_HUNG_WORKERS:
                return
        job = _Job()
        fut = self._worker.submit(lambda: self._init_blocking(job))
        try:
            async with asyncio.timeout(self._init_deadline_s):
                result = await asyncio.wrap_future(fut)
        except Exception as exc:
            if not isinstance(exc, TimeoutError):
                log.exception("NVML initialisation failed")
                self._state = NvmlState(
                    available=False, reason=f"NVML initialisation failed: {exc!r}"
                )
                return

            job.cancelled = True
            self._wedged.append(_Hang("", "nvmlInit", time.monotonic(), fut))
            self._replace_worker()
            self._state = NvmlState(
                available=False,
                reason=f"nvmlInit did not return within {self._init_deadline_s:.0f} s "
                "(driver wedged?); retrying later",
            )
            return
        if isinstance(result, str):
            self._state = NvmlState(available=False, reason=result)
            return
        gpus, versions = result
        self._gpus, self._versions = gpus, versions
        self._initialised = True
        for g in gpus:
            self._readings[g.uuid] = self._lost_reading(g, "not sampled yet", GpuHealth.STALE)
        if self._xid_enabled:
            self._xid = _XidWatcher(gpus, self._xid_wait_ms, self._wall)
        self._state = self._build_state()

    def _init_blocking(
        self, job: _Job
    ) -> str | tuple[list[_Gpu], tuple[str | None, str | None, int | None]]:
        """nvmlInit, versions, and each GPU's static info. A string result is the reason NVML
        is unavailable."""
        if self._library is not None and pynvml.nvmlLib is not self._library:
            with pynvml.libLoadLock:
                pynvml.nvmlLib = self._library
                pynvml._nvmlGetFunctionPointer_cache.clear()
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            return _INIT_REASONS.get(exc.value, f"nvmlInit failed: {exc}")
        except OSError as exc:  # defensive: the loader itself failing in an unexpected way
            return f"NVML library could not be loaded: {exc}"
        versions = (
            _system(pynvml.nvmlSystemGetDriverVersion, _text),
            _system(pynvml.nvmlSystemGetNVMLVersion, _text),
            _system(pynvml.nvmlSystemGetCudaDriverVersion_v2, int)
            or _system(pynvml.nvmlSystemGetCudaDriverVersion, int),
        )
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            return f"nvmlDeviceGetCount failed: {exc}"
        gpus = [self._identify(i, job, versions) for i in range(count)]
        return gpus, versions

    def _identify(
        self, index: int, job: _Job, versions: tuple[str | None, str | None, int | None]
    ) -> _Gpu:
        """Handle and static information of GPU `index`; a placeholder if it is lost."""
        placeholder = GpuStatic(
            uuid=f"unidentified-nvml-index-{index}",
            index=index,
            name="unknown (GPU lost before it could be identified)",
            pci_bus_id="",
            memory_total_bytes=0,
            identified=False,
        )
        gpu = _Gpu(index=index, static=placeholder)
        try:
            gpu.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(pynvml.nvmlDeviceGetUUID(gpu.handle))
            name = _text(pynvml.nvmlDeviceGetName(gpu.handle))
            pci = _text(pynvml.nvmlDeviceGetPciInfo(gpu.handle).busId)
            mem_total = int(pynvml.nvmlDeviceGetMemoryInfo(gpu.handle).total)
        except pynvml.NVMLError as exc:
            gpu.handle = None
            gpu.lost_at = time.monotonic()
            if exc.value == pynvml.NVML_ERROR_RESET_REQUIRED:
                gpu.down = (GpuHealth.NEEDS_RESET, f"NVML: {exc}; reset the GPU")
            else:
                gpu.down = (GpuHealth.LOST, f"{_LOST_TEXT} (NVML: {exc})")
            log.warning("NVML GPU %d could not be identified: %s", index, exc)
            return gpu
        h = gpu.handle
        try:
            limits = _guarded(
                gpu,
                job,
                ("power_limit_min_w",),
                pynvml.nvmlDeviceGetPowerManagementLimitConstraints,
                h,
            )
            default = _guarded(
                gpu,
                job,
                ("power_limit_default_w",),
                pynvml.nvmlDeviceGetPowerManagementDefaultLimit,
                h,
            )
            slowdown = _guarded(
                gpu,
                job,
                ("temp_slowdown_c",),
                pynvml.nvmlDeviceGetTemperatureThreshold,
                h,
                pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
            )
        except _GpuDown as down:
            gpu.handle = None
            gpu.lost_at = time.monotonic()
            gpu.down = (down.health, down.error)
            log.warning("NVML GPU %d lost while being identified: %s", index, down.error)
            return gpu
        gpu.unsupported.clear()  # static capabilities are not sample fields
        gpu.static = GpuStatic(
            uuid=uuid,
            index=index,
            name=name,
            pci_bus_id=pci,
            memory_total_bytes=mem_total,
            power_limit_min_w=limits[0] / 1000.0 if limits else None,
            power_limit_max_w=limits[1] / 1000.0 if limits else None,
            power_limit_default_w=default / 1000.0 if default is not None else None,
            temp_slowdown_c=float(slowdown) if slowdown is not None else None,
            driver_version=versions[0],
            nvml_version=versions[1],
            cuda_driver_version=versions[2],
        )
        gpu.lost_at = None
        return gpu

    # ------------------------------------------------------------------ running a job

    async def _run_job(self, targets: list[_Gpu], deadline_s: float) -> _Job:
        job = _Job()
        if not targets:
            return job
        if len(self._hangs) + len(self._wedged) >= MAX_HUNG_WORKERS:
            return job  # nothing is polled; `_absorb` says why
        fut = self._worker.submit(lambda: self._poll_blocking(job, targets))
        try:
            async with asyncio.timeout(deadline_s):
                await asyncio.wrap_future(fut)
        except TimeoutError:
            job.cancelled = True
            current = job.current
            if current is None:
                # Between calls when the deadline hit (a slow tick, not a hung call): the
                # worker stops at its next call; results so far are used.
                return job
            uuid, call = current
            self._hangs[uuid] = _Hang(uuid, call, job.call_started, fut)
            log.warning("NVML call %s on %s hung; polling it no more until it returns", call, uuid)
            self._replace_worker()
        return job

    def _replace_worker(self) -> None:
        """Leave the stuck worker to finish its call (it exits afterwards) and start anew."""
        self._worker.stop()
        self._worker = DaemonWorker("nvml")

    def _reap_hangs(self) -> None:
        """Hung calls that have returned: their GPUs are polled again."""
        for uuid, hang in list(self._hangs.items()):
            if hang.future.done():
                del self._hangs[uuid]
                log.info("NVML call %s on %s returned; polling it again", hang.call, uuid)
        self._wedged = [h for h in self._wedged if not h.future.done()]

    def _poll_blocking(self, job: _Job, targets: list[_Gpu]) -> None:
        for gpu in targets:
            if job.cancelled:
                return
            try:
                job.results[gpu.uuid] = self._sample_gpu(gpu, job)
            except _Cancelled:
                return
        if len(targets) == len(self._gpus):
            # Forget names of PIDs no GPU lists any more, so a reused PID is looked up again.
            seen = {
                p.pid
                for r in job.results.values()
                if r.sample is not None
                for p in r.sample.processes
            }
            self._names = {pid: n for pid, n in self._names.items() if pid in seen}

    # ------------------------------------------------------------------ one GPU (worker)

    def _sample_gpu(self, gpu: _Gpu, job: _Job) -> _Result:
        if (gpu.handle is None or gpu.lost_at is not None) and not self._reprobe(gpu, job):
            health, error = gpu.down or (GpuHealth.LOST, _LOST_TEXT)
            return _Result(health, None, error)
        try:
            return self._sample_fields(gpu, job)
        except _GpuDown as down:
            if down.health is GpuHealth.LOST:
                gpu.lost_at = time.monotonic()
                gpu.down = (down.health, down.error)
            return _Result(down.health, None, down.error)

    def _reprobe(self, gpu: _Gpu, job: _Job) -> bool:
        """Is a lost GPU back? Tried at most every `lost_retry_s`."""
        if gpu.lost_at is not None and time.monotonic() - gpu.lost_at < self._lost_retry_s:
            return False
        job.current = (gpu.uuid, "nvmlDeviceGetHandleByIndex")
        found = self._identify(gpu.index, job, self._versions)
        job.current = None
        if found.handle is None:
            gpu.lost_at, gpu.down = time.monotonic(), found.down
            return False
        if gpu.static.identified and found.static.uuid != gpu.static.uuid:
            # Another board answers at this index now: keep ours lost, never mix them up.
            gpu.lost_at = time.monotonic()
            return False
        gpu.handle, gpu.static, gpu.lost_at, gpu.down = found.handle, found.static, None, None
        return True

    def _sample_fields(self, gpu: _Gpu, job: _Job) -> _Result:
        h = gpu.handle
        f = _Fields(gpu, job)
        taken_at = self._wall()
        v = f.values

        mw = f.call(("power_w",), pynvml.nvmlDeviceGetPowerUsage, h)
        v["power_w"] = mw / 1000.0 if mw is not None else None
        mw = f.call(("power_limit_w",), pynvml.nvmlDeviceGetEnforcedPowerLimit, h)
        v["power_limit_w"] = mw / 1000.0 if mw is not None else None
        mj = f.call(("energy_j",), pynvml.nvmlDeviceGetTotalEnergyConsumption, h)
        v["energy_j"] = mj / 1000.0 if mj is not None else None
        v["temp_gpu_c"] = self._temperature(f, h)
        v["temp_memory_c"] = self._memory_temperature(f, h)

        util = f.call(("util_gpu_pct", "util_memory_pct"), pynvml.nvmlDeviceGetUtilizationRates, h)
        v["util_gpu_pct"] = float(util.gpu) if util is not None else None
        v["util_memory_pct"] = float(util.memory) if util is not None else None

        self._memory(f, h)
        sm = f.call(("clock_sm_mhz",), pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM)
        v["clock_sm_mhz"] = float(sm) if sm is not None else None
        mem = f.call(("clock_memory_mhz",), pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM)
        v["clock_memory_mhz"] = float(mem) if mem is not None else None
        fan = f.call(("fan_pct",), pynvml.nvmlDeviceGetFanSpeed, h)
        v["fan_pct"] = float(fan) if fan is not None else None
        v["pstate"] = f.call(("pstate",), pynvml.nvmlDeviceGetPerformanceState, h)
        mask = self._reasons(f, h)
        v["throttle_reasons"] = (
            decode_throttle_reasons(mask, v["util_gpu_pct"]) if mask is not None else ()
        )
        v["pcie_generation"] = f.call(
            ("pcie_generation",), pynvml.nvmlDeviceGetCurrPcieLinkGeneration, h
        )
        v["pcie_width"] = f.call(("pcie_width",), pynvml.nvmlDeviceGetCurrPcieLinkWidth, h)
        v["ecc_corrected"] = f.call(
            ("ecc_corrected",),
            pynvml.nvmlDeviceGetTotalEccErrors,
            h,
            pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
            pynvml.NVML_VOLATILE_ECC,
        )
        v["ecc_uncorrected"] = f.call(
            ("ecc_uncorrected",),
            pynvml.nvmlDeviceGetTotalEccErrors,
            h,
            pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            pynvml.NVML_VOLATILE_ECC,
        )
        procs = self._processes(f, h)
        v["processes"] = procs if procs is not None else ()

        # Only sample field names: internal capability keys (graphics processes) stay inside.
        unsupported = gpu.unsupported & _SAMPLE_FIELDS
        if self._xid is not None and gpu.uuid in self._xid.unsupported:
            unsupported.add("xids")
        sample = GpuSample(
            taken_at=taken_at,
            unsupported=tuple(sorted(unsupported)),
            field_errors=tuple(f.errors),
            **v,
        )
        health, error = GpuHealth.OK, None
        orphan = self._orphan_memory(gpu, sample, procs)
        if orphan is not None:
            health, error = GpuHealth.NEEDS_RESET, orphan
        return _Result(health, sample, error)

    def _temperature(self, f: _Fields, h: Any) -> float | None:
        gpu = f.gpu
        fn = getattr(pynvml, "nvmlDeviceGetTemperatureV", None)
        if fn is not None and not gpu.temp_legacy:
            try:
                t = f.call(("temp_gpu_c",), fn, h, pynvml.NVML_TEMPERATURE_GPU, missing_ok=True)
                return float(t) if t is not None else None
            except _Missing:
                gpu.temp_legacy = True
        t = f.call(("temp_gpu_c",), pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
        return float(t) if t is not None else None

    def _memory_temperature(self, f: _Fields, h: Any) -> float | None:
        values = f.call(
            ("temp_memory_c",), pynvml.nvmlDeviceGetFieldValues, h, [pynvml.NVML_FI_DEV_MEMORY_TEMP]
        )
        if values is None:
            return None
        fv = values[0]
        if fv.nvmlReturn != pynvml.NVML_SUCCESS:
            if fv.nvmlReturn in _UNSUPPORTED_CODES:
                f.gpu.unsupported.add("temp_memory_c")
            elif fv.nvmlReturn in _LOST_CODES:
                raise _GpuDown(GpuHealth.LOST, _LOST_TEXT)
            else:
                f.errors.append(("temp_memory_c", str(pynvml.NVMLError(fv.nvmlReturn))))
            return None
        return float(_field_value(fv))

    def _memory(self, f: _Fields, h: Any) -> None:
        gpu, v = f.gpu, f.values
        names = ("memory_used_bytes", "memory_total_bytes")
        if not gpu.memory_v1:
            try:
                m2 = f.call(
                    names, pynvml.nvmlDeviceGetMemoryInfo, h, pynvml.nvmlMemory_v2, missing_ok=True
                )
            except _Missing:
                gpu.memory_v1 = True  # no v2 struct (driver < 510): v1 from now on
            else:
                v["memory_used_bytes"] = int(m2.used) if m2 is not None else None
                v["memory_total_bytes"] = int(m2.total) if m2 is not None else None
                v["memory_reserved_bytes"] = int(m2.reserved) if m2 is not None else None
                return
        m1 = f.call(names, pynvml.nvmlDeviceGetMemoryInfo, h)
        v["memory_used_bytes"] = int(m1.used) if m1 is not None else None
        v["memory_total_bytes"] = int(m1.total) if m1 is not None else None
        v["memory_reserved_bytes"] = None

    def _reasons(self, f: _Fields, h: Any) -> int | None:
        gpu = f.gpu
        fn = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if fn is not None and not gpu.reasons_legacy:
            try:
                mask = f.call(("throttle_reasons",), fn, h, missing_ok=True)
                return int(mask) if mask is not None else None
            except _Missing:
                gpu.reasons_legacy = True  # a driver older than the binding: deprecated name
        mask = f.call(("throttle_reasons",), pynvml.nvmlDeviceGetCurrentClocksThrottleReasons, h)
        return int(mask) if mask is not None else None

    def _processes(self, f: _Fields, h: Any) -> tuple[GpuProcess, ...] | None:
        gpu = f.gpu
        compute_fn, graphics_fn = (
            (
                pynvml.nvmlDeviceGetComputeRunningProcesses_v2,
                pynvml.nvmlDeviceGetGraphicsRunningProcesses_v2,
            )
            if gpu.processes_v2
            else (
                pynvml.nvmlDeviceGetComputeRunningProcesses,
                pynvml.nvmlDeviceGetGraphicsRunningProcesses,
            )
        )
        try:
            compute = f.call(("processes",), compute_fn, h, missing_ok=not gpu.processes_v2)
        except _Missing:
            gpu.processes_v2 = True  # a driver before the v3 struct (< 510)
            return self._processes(f, h)
        if compute is None:
            return None
        graphics: list[Any] = []
        if "graphics_processes" not in gpu.unsupported:
            got = _guarded(gpu, f.job, ("graphics_processes",), graphics_fn, h, errors=None)
            graphics = list(got or [])
        merged: dict[int, tuple[int | None, str]] = {}
        for kind, procs in (("C", compute), ("G", graphics)):
            for p in procs:
                pid = int(p.pid)
                used = None if p.usedGpuMemory is None else int(p.usedGpuMemory)
                if pid in merged:
                    old_used, old_kind = merged[pid]
                    used = max(old_used or 0, used or 0) if (old_used or used) else None
                    kind_now = old_kind if kind in old_kind else f"{old_kind}+{kind}"
                    merged[pid] = (used, kind_now)
                else:
                    merged[pid] = (used, kind)
        return tuple(
            GpuProcess(pid=pid, used_memory_bytes=used, kind=kind, name=self._process_name(pid))
            for pid, (used, kind) in sorted(merged.items())
        )

    def _process_name(self, pid: int) -> str | None:
        if pid not in self._names:
            try:
                self._names[pid] = psutil.Process(pid).name()
            except (psutil.Error, OSError):
                self._names[pid] = None
        return self._names[pid]

    def _orphan_memory(
        self, gpu: _Gpu, sample: GpuSample, procs: tuple[GpuProcess, ...] | None
    ) -> str | None:
        """Memory held with no process attached (a leaked context): NEEDS_RESET. Judged only
        on the v2 figure, which leaves out the driver's reserve."""
        used = sample.memory_used_bytes
        if procs is None or procs or gpu.memory_v1 or used is None:
            return None
        if used <= self._orphan_tolerance:
            return None
        return (
            f"{used / 2**20:.0f} MiB held with no process attached (a leaked context); "
            "reset the GPU (nvidia-smi -r) or reboot before giving it new work"
        )

    # ------------------------------------------------------------------ building state

    def _absorb(self, job: _Job, targets: Iterable[_Gpu]) -> None:
        """Turn a job's results (complete or cut short) into readings."""
        self._drain_xids()
        stuck = len(self._hangs) + len(self._wedged) >= MAX_HUNG_WORKERS
        now = time.monotonic()
        for gpu in targets:
            result = job.results.get(gpu.uuid)
            if result is None:
                hang = self._hangs.get(gpu.uuid)
                if hang is not None:
                    error = self._hang_text(hang, now)
                elif stuck:
                    error = (
                        f"{MAX_HUNG_WORKERS} NVML calls are hung; not polling any GPU "
                        "until one returns (the driver is wedged: reboot the host)"
                    )
                elif self._hangs:
                    error = "not sampled this tick: NVML was stuck in a hung call"
                else:
                    error = "not sampled within the tick deadline (NVML slow)"
                self._readings[gpu.uuid] = self._lost_reading(gpu, error, GpuHealth.STALE)
                continue
            self._readings[gpu.uuid] = self._reading(gpu, result)
        for uuid, hang in self._hangs.items():
            gpu = next(g for g in self._gpus if g.uuid == uuid)
            self._readings[uuid] = self._lost_reading(
                gpu, self._hang_text(hang, now), GpuHealth.STALE
            )

    @staticmethod
    def _hang_text(hang: _Hang, now: float) -> str:
        return (
            f"NVML call {hang.call} has not returned for {now - hang.since:.0f} s; "
            "not polling this GPU until it does"
        )

    def _reading(self, gpu: _Gpu, result: _Result) -> GpuReading:
        health, error, sample = result.health, result.error, result.sample
        if sample is not None:
            xids = tuple(self._pending_xids.pop(gpu.uuid, ()))
            if xids:
                sample = GpuSample(**{**_struct_dict(sample), "xids": xids})
        faulted = self._faulted.get(gpu.uuid)
        if faulted is not None and health is GpuHealth.OK:
            health = GpuHealth.FAULTED
            at = time.strftime("%H:%M:%S", time.localtime(faulted.at))
            error = f"critical XID {faulted.xid} at {at}; check the GPU, then acknowledge the fault"
        return GpuReading(
            static=gpu.static,
            health=health,
            sample=sample,
            error=error,
            last_xid=self._last_xid.get(gpu.uuid),
        )

    def _lost_reading(self, gpu: _Gpu, error: str, health: GpuHealth) -> GpuReading:
        return GpuReading(
            static=gpu.static, health=health, error=error, last_xid=self._last_xid.get(gpu.uuid)
        )

    def _drain_xids(self) -> None:
        if self._xid is None:
            return
        events = self._xid.events
        while events:
            uuid, ev = events.popleft()
            self._pending_xids.setdefault(uuid, []).append(ev)
            self._last_xid[uuid] = ev
            if ev.xid in CRITICAL_XIDS:
                self._faulted[uuid] = ev

    def _build_state(self) -> NvmlState:
        gpus = tuple(self._readings[g.uuid] for g in self._gpus if g.uuid in self._readings)
        return NvmlState(
            available=True,
            reason=None if self._gpus else "NVML reports no GPUs on this host",
            gpus=gpus,
            driver_version=self._versions[0],
            nvml_version=self._versions[1],
        )

    # ------------------------------------------------------------------ writes

    def _writable(self, uuid: str) -> _Gpu:
        gpu = next((g for g in self._gpus if g.uuid == uuid), None)
        if gpu is None or gpu.handle is None:
            raise NvmlCommandError(f"no usable GPU {uuid!r} in NVML")
        if uuid in self._hangs:
            raise NvmlCommandError(f"{uuid} has a hung NVML call; not sending it more work")
        return gpu

    async def _command(self, gpu: _Gpu, fn: Callable[[], _T]) -> _T:
        fut = self._worker.submit(fn)
        try:
            async with asyncio.timeout(self._tick_deadline_s):
                return await asyncio.wrap_future(fut)
        except TimeoutError:
            self._hangs[gpu.uuid] = _Hang(gpu.uuid, "power limit write", time.monotonic(), fut)
            self._replace_worker()
            raise NvmlCommandError(
                f"NVML did not answer within {self._tick_deadline_s:.0f} s on {gpu.uuid}"
            ) from None
        except _GpuDown as down:
            raise NvmlCommandError(down.error) from None


def _system(fn: Callable[[], Any], conv: Callable[[Any], _T]) -> _T | None:
    try:
        return conv(fn())
    except (pynvml.NVMLError, AttributeError):
        return None


def _field_value(fv: Any) -> float:
    kind = fv.valueType
    if kind == pynvml.NVML_VALUE_TYPE_DOUBLE:
        return float(fv.value.dVal)
    if kind == pynvml.NVML_VALUE_TYPE_UNSIGNED_INT:
        return float(fv.value.uiVal)
    if kind == pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG:
        return float(fv.value.ulVal)
    if kind == pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
        return float(fv.value.ullVal)
    if kind == pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return float(fv.value.sllVal)
    if kind == pynvml.NVML_VALUE_TYPE_SIGNED_INT:
        return float(fv.value.siVal)
    return float(fv.value.usVal)


def _struct_dict(s: GpuSample) -> dict[str, Any]:
    return {name: getattr(s, name) for name in s.__struct_fields__}
