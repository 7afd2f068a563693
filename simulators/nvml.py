"""A pure-Python stand-in for the NVML shared library, so the real nvidia-ml-py binding code
runs against simulated GPUs (reference nvml-and-gpu-switching.md §4.2, the `nvmlLib` shim).

`NvmlSim` has one method per C symbol the binding looks up (``nvmlInitWithFlags``,
``nvmlDeviceGetCount_v2``, ``nvmlDeviceGetComputeRunningProcesses_v3``, ...). The binding calls
it with the very ctypes arguments it would pass to ``libnvidia-ml.so.1``; the simulator writes
its outputs through them (``byref(x)._obj.value = ...``, struct fields, elements of a struct
array, string buffers) and returns an ``nvmlReturn_t`` integer. Point the binding at it with
``pynvml.nvmlLib = NvmlSim(state_dir)`` before ``nvmlInit()`` (and clear
``pynvml._nvmlGetFunctionPointer_cache``): everything above that line — struct decoding, error
→ exception mapping, the two-phase process query, ``bytes``/``str`` handling — is NVIDIA's code.
This module never imports ``pynvml``: it knows the ABI (symbol names, struct layouts, error
codes, versioned-struct tags) from the NVML headers, as a real library would.

What a GPU reports comes from the shared state directory (`simulators.gpu_state`: the site's
GPUs, their faults, and the OS processes registered on them) and from a lazily integrated
physics model (`simulators.gpu_physics`) driven by the utilisation those processes declare.
Faults behave as on real hardware: a lost GPU answers ``NVML_ERROR_GPU_IS_LOST`` to every call,
including ``nvmlDeviceGetHandleByIndex``; NotSupported fields are the ones the board lacks
(fan on passive boards, ECC and memory temperature on GeForce) plus any injected ones; a hung
call blocks inside the library until its fault is cleared or `NvmlSim.close()` releases it (so a
test that hangs a call can still end). XIDs are delivered through real event sets
(``nvmlEventSetCreate`` / ``nvmlDeviceRegisterEvents`` / ``nvmlEventSetWait_v2``).

The state directory is re-read at most every `view_ttl_s` seconds per GPU (processes starting
or exiting elsewhere are seen within that time, like NVML's own sampling), and immediately after
any write made through `simulators.gpu_state` in this process. Physics uses the injected
`clock`; with the default clock, the energy counter starts where an idle board would have
brought it since the site was created (so it keeps rising across console restarts, like the
real counter does across processes until the driver reloads).

Thread-safe: the binding may call from several threads at once (the driver's poll thread and
its XID event thread), as NVML allows.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from simulators import gpu_state
from simulators.gpu_models import GpuModel, model
from simulators.gpu_physics import SUPPORTED_REASONS, Conditions, GpuPhysics, Load, Reading
from simulators.gpu_state import GpuView, Settings, SiteGpu, StateReader

__all__ = ["ERROR_CODES", "NvmlSim"]

# nvmlReturn_t
SUCCESS: Final = 0
ERROR_CODES: Final[dict[str, int]] = {
    "UNINITIALIZED": 1,
    "INVALID_ARGUMENT": 2,
    "NOT_SUPPORTED": 3,
    "NO_PERMISSION": 4,
    "ALREADY_INITIALIZED": 5,
    "NOT_FOUND": 6,
    "INSUFFICIENT_SIZE": 7,
    "INSUFFICIENT_POWER": 8,
    "DRIVER_NOT_LOADED": 9,
    "TIMEOUT": 10,
    "IRQ_ISSUE": 11,
    "LIBRARY_NOT_FOUND": 12,
    "FUNCTION_NOT_FOUND": 13,
    "CORRUPTED_INFOROM": 14,
    "GPU_IS_LOST": 15,
    "RESET_REQUIRED": 16,
    "OPERATING_SYSTEM": 17,
    "LIB_RM_VERSION_MISMATCH": 18,
    "MEMORY": 20,
    "NO_DATA": 21,
    "ARGUMENT_VERSION_MISMATCH": 25,
    "UNKNOWN": 999,
}
_E = ERROR_CODES

# Versioned-struct tags: sizeof(struct) | version << 24, as the NVML headers define them.
MEMORY_V2: Final = 0x02000028
TEMPERATURE_V1: Final = 0x0100000C

# Field value ids and value types used by nvmlDeviceGetFieldValues.
FI_DEV_MEMORY_TEMP: Final = 82
FI_DEV_TOTAL_ENERGY_CONSUMPTION: Final = 83
FI_DEV_POWER_AVERAGE: Final = 185
FI_DEV_POWER_INSTANT: Final = 186
VALUE_TYPE_UNSIGNED_INT: Final = 1
VALUE_TYPE_UNSIGNED_LONG_LONG: Final = 3

EVENT_TYPE_XID_CRITICAL_ERROR: Final = 0x8
NO_INSTANCE: Final = 0xFFFFFFFF  # gpuInstanceId / computeInstanceId outside MIG

# XIDs that count as uncorrectable memory errors in the volatile ECC counter.
_ECC_XIDS: Final = frozenset({48, 63, 64, 94, 95})
_HANG_POLL_S: Final = 0.05
_EVENT_POLL_S: Final = 0.05
_VERSION_SUFFIX = re.compile(r"_v\d+$")

_F = TypeVar("_F", bound=Callable[..., int])


class _Fail(Exception):
    """Raised inside a symbol to return an error code."""

    def __init__(self, code: int) -> None:
        self.code = code


def _entry(fn: _F) -> _F:
    """Turn `_Fail` into the nvmlReturn_t it carries; every symbol returns an int."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> int:
        try:
            return fn(*args)
        except _Fail as exc:
            return exc.code

    return wrapper  # type: ignore[return-value]


def _int(arg: Any) -> int:
    """A C integer argument: the binding passes ctypes scalars (c_uint(...)) or plain ints."""
    return int(arg.value) if hasattr(arg, "value") else int(arg)


def _out(arg: Any) -> Any:
    """The object behind a `byref(...)` output argument."""
    return arg._obj


def _address(ptr: Any) -> int | None:
    try:
        return ctypes.cast(ptr, ctypes.c_void_p).value
    except (ctypes.ArgumentError, TypeError):
        return None


def _set_pointer(ptr_obj: Any, address: int) -> None:
    """Store `address` in a ctypes pointer object (an opaque NVML handle the caller owns)."""
    ctypes.cast(ctypes.pointer(ptr_obj), ctypes.POINTER(ctypes.c_void_p))[0] = address


def _write_str(buf: Any, length: Any, text: str) -> None:
    data = text.encode()
    if len(data) + 1 > _int(length):
        raise _Fail(_E["INSUFFICIENT_SIZE"])
    buf.value = data


class _ErrorString:
    """`nvmlErrorString` needs an object the binding can set ``restype`` on."""

    restype: Any = None
    _NAMES: Final = {v: k.replace("_", " ").title() for k, v in ERROR_CODES.items()}

    def __call__(self, code: Any) -> bytes:
        return self._NAMES.get(_int(code), "Unknown Error").encode()


@dataclass(slots=True)
class _Device:
    gpu: SiteGpu
    model: GpuModel
    handle_buf: ctypes.Array[ctypes.c_char]
    physics: GpuPhysics
    view: GpuView
    viewed_at: float  # time.monotonic() of the last directory read
    generation: int  # gpu_state.local_generation() at that read

    @property
    def address(self) -> int:
        return ctypes.addressof(self.handle_buf)


@dataclass(slots=True)
class _EventSet:
    buf: ctypes.Array[ctypes.c_char]
    cursor: int  # last XID sequence number examined
    masks: dict[str, int] = field(default_factory=dict)  # uuid -> registered event types


class NvmlSim:
    """The simulated NVML library of one site (see the module docstring).

    Sim-side API (not NVML): `close()` releases hung calls and event waits for good;
    `reading(uuid)` gives the physics state of one GPU (for the simulated miner's API);
    `calls` counts the device calls made per (symbol, GPU UUID), so a test can prove a field
    is no longer polled.
    """

    def __init__(
        self,
        state_dir: str | Path,
        *,
        clock: Callable[[], float] | None = None,
        view_ttl_s: float = 0.1,
    ) -> None:
        self.state_dir = Path(state_dir)
        self._reader = StateReader(self.state_dir)
        self.site = self._reader.site
        self._clock = clock or time.monotonic
        self._view_ttl_s = view_ttl_s
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._refcount = 0
        self.nvmlErrorString = _ErrorString()
        # Volatile ECC counters count from this "driver load".
        self._xid_base_seq = self._reader.last_xid_seq()
        now = self._clock()
        since_created_s = max(0.0, time.time() - self.site.created_at) if clock is None else 0.0
        self._devices: list[_Device] = []
        for g in self.site.gpus:
            m = model(g.model)
            view = self._reader.view(g.uuid)
            physics = GpuPhysics(
                m,
                now,
                self._conditions(m, view),
                energy_mj=m.idle_power_w * since_created_s * 1000.0,
            )
            dev = _Device(
                g,
                m,
                (ctypes.c_char * 8)(),
                physics,
                view,
                time.monotonic(),
                gpu_state.local_generation(),
            )
            physics.observe(now, self._load(view), self._conditions(m, view))
            self._devices.append(dev)
        self._by_address = {d.address: d for d in self._devices}
        self._by_uuid = {d.gpu.uuid: d for d in self._devices}
        self._event_sets: dict[int, _EventSet] = {}
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    # ------------------------------------------------------------------ sim-side API

    def close(self) -> None:
        """Release every hung call and event wait (they return NVML_ERROR_UNINITIALIZED)."""
        self._closed.set()

    def reading(self, uuid: str) -> Reading:
        """The physics of one GPU now, in NVML units (not an NVML call: no faults apply)."""
        with self._lock:
            dev = self._by_uuid[uuid]
            self._refresh(dev)
            return dev.physics.read(self._clock())

    # ------------------------------------------------------------------ internals

    def _conditions(self, m: GpuModel, view: GpuView) -> Conditions:
        limit_mw = view.settings.power_limit_mw
        return Conditions(
            power_limit_w=limit_mw / 1000.0 if limit_mw is not None else m.power_default_w,
            ambient_c=view.faults.ambient_c
            if view.faults.ambient_c is not None
            else self.site.ambient_c,
            thermal_throttle=view.faults.thermal_throttle,
            power_brake=view.faults.power_brake,
        )

    @staticmethod
    def _load(view: GpuView) -> Load:
        procs = view.processes
        util = sum(p.util_gpu_pct for p in procs)
        intensity = (
            sum(p.util_gpu_pct * p.power_intensity for p in procs) / util if util > 0 else 1.0
        )
        return Load(
            util_gpu_pct=min(100.0, util),
            util_memory_pct=min(100.0, sum(p.util_memory_pct for p in procs)),
            intensity=intensity,
            # A leaked context keeps the GPU out of its idle state, as on real boards.
            has_context=bool(procs) or bool(view.leaked),
        )

    def _refresh(self, dev: _Device, force: bool = False) -> GpuView:
        """The GPU's state directory, re-read when stale; physics advanced to the change."""
        now_real = time.monotonic()
        gen = gpu_state.local_generation()
        if force or gen != dev.generation or now_real - dev.viewed_at >= self._view_ttl_s:
            view = self._reader.view(dev.gpu.uuid)
            dev.view, dev.viewed_at, dev.generation = view, now_real, gen
            dev.physics.observe(self._clock(), self._load(view), self._conditions(dev.model, view))
        return dev.view

    def _require_init(self) -> None:
        if self._refcount <= 0:
            raise _Fail(_E["UNINITIALIZED"])

    def _device(self, handle: Any, symbol: str) -> _Device:
        """Resolve a handle and apply the GPU's faults to a call of `symbol`."""
        self._require_init()
        dev = self._by_address.get(_address(handle) or 0)
        if dev is None:
            raise _Fail(_E["INVALID_ARGUMENT"])
        self._apply_faults(dev, symbol)
        return dev

    def _apply_faults(self, dev: _Device, symbol: str) -> None:
        names = {symbol, _VERSION_SUFFIX.sub("", symbol), "*"}
        with self._lock:
            self.calls[symbol, dev.gpu.uuid] += 1
            faults = self._refresh(dev).faults
        if faults.hang and names.intersection(faults.hang):
            self._hang(dev, names)
            with self._lock:
                faults = self._refresh(dev, force=True).faults
        if faults.lost:
            raise _Fail(_E["GPU_IS_LOST"])
        if faults.reset_required:
            raise _Fail(_E["RESET_REQUIRED"])
        for name in (symbol, _VERSION_SUFFIX.sub("", symbol), "*"):
            code = faults.call_errors.get(name)
            if code is not None:
                raise _Fail(_E.get(code, _E["UNKNOWN"]))

    def _hang(self, dev: _Device, names: set[str]) -> None:
        """Block like a wedged driver call: until the fault is cleared or the sim is closed."""
        while not self._closed.wait(_HANG_POLL_S):
            with self._lock:
                hang = self._refresh(dev, force=True).faults.hang
            if not names.intersection(hang):
                return
        raise _Fail(_E["UNINITIALIZED"])

    def _read(self, dev: _Device) -> Reading:
        with self._lock:
            self._refresh(dev)
            return dev.physics.read(self._clock())

    # ------------------------------------------------------------------ init and system

    @_entry
    def nvmlInitWithFlags(self, flags: Any) -> int:
        with self._lock:
            if self._reader.site_faults().driver_not_loaded:
                return _E["DRIVER_NOT_LOADED"]
            self._refcount += 1
        return SUCCESS

    @_entry
    def nvmlInit_v2(self) -> int:
        return self.nvmlInitWithFlags(0)

    @_entry
    def nvmlShutdown(self) -> int:
        with self._lock:
            self._require_init()
            self._refcount -= 1
        return SUCCESS

    @_entry
    def nvmlSystemGetDriverVersion(self, buf: Any, length: Any) -> int:
        self._require_init()
        _write_str(buf, length, self.site.driver_version)
        return SUCCESS

    @_entry
    def nvmlSystemGetNVMLVersion(self, buf: Any, length: Any) -> int:
        self._require_init()
        _write_str(buf, length, self.site.nvml_version)
        return SUCCESS

    @_entry
    def nvmlSystemGetCudaDriverVersion(self, out: Any) -> int:
        self._require_init()
        _out(out).value = self.site.cuda_driver_version
        return SUCCESS

    @_entry
    def nvmlSystemGetCudaDriverVersion_v2(self, out: Any) -> int:
        return self.nvmlSystemGetCudaDriverVersion(out)

    @_entry
    def nvmlSystemGetProcessName(self, pid: Any, buf: Any, length: Any) -> int:
        self._require_init()
        want = _int(pid)
        with self._lock:
            for dev in self._devices:
                for p in self._refresh(dev).processes:
                    if p.pid == want:
                        _write_str(buf, length, p.name)
                        return SUCCESS
        return _E["NOT_FOUND"]

    # ------------------------------------------------------------------ handles and identity

    @_entry
    def nvmlDeviceGetCount_v2(self, out: Any) -> int:
        self._require_init()
        _out(out).value = len(self._devices)
        return SUCCESS

    def _hand_out(self, dev: _Device, symbol: str, out: Any) -> int:
        self._apply_faults(dev, symbol)
        _set_pointer(_out(out), dev.address)
        return SUCCESS

    @_entry
    def nvmlDeviceGetHandleByIndex_v2(self, index: Any, out: Any) -> int:
        self._require_init()
        i = _int(index)
        if not 0 <= i < len(self._devices):
            return _E["INVALID_ARGUMENT"]
        return self._hand_out(self._devices[i], "nvmlDeviceGetHandleByIndex_v2", out)

    @_entry
    def nvmlDeviceGetHandleByUUID(self, uuid: Any, out: Any) -> int:
        self._require_init()
        raw = uuid.value if hasattr(uuid, "value") else uuid
        dev = self._by_uuid.get(raw.decode() if isinstance(raw, bytes) else str(raw))
        if dev is None:
            return _E["NOT_FOUND"]
        return self._hand_out(dev, "nvmlDeviceGetHandleByUUID", out)

    @_entry
    def nvmlDeviceGetHandleByPciBusId_v2(self, bus_id: Any, out: Any) -> int:
        self._require_init()
        raw = bus_id.value if hasattr(bus_id, "value") else bus_id
        want = (raw.decode() if isinstance(raw, bytes) else str(raw)).upper()
        for dev in self._devices:
            if dev.gpu.pci_bus_id.upper().endswith(want.removeprefix("0000")):
                return self._hand_out(dev, "nvmlDeviceGetHandleByPciBusId_v2", out)
        return _E["NOT_FOUND"]

    @_entry
    def nvmlDeviceGetIndex(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetIndex")
        _out(out).value = dev.gpu.index
        return SUCCESS

    @_entry
    def nvmlDeviceGetName(self, handle: Any, buf: Any, length: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetName")
        _write_str(buf, length, dev.model.name)
        return SUCCESS

    @_entry
    def nvmlDeviceGetUUID(self, handle: Any, buf: Any, length: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetUUID")
        _write_str(buf, length, dev.gpu.uuid)
        return SUCCESS

    @_entry
    def nvmlDeviceGetPciInfo_v3(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetPciInfo_v3")
        info = _out(out)
        domain_s, bus_s, rest = dev.gpu.pci_bus_id.split(":")
        device_s = rest.split(".")[0]
        info.busId = dev.gpu.pci_bus_id.encode()
        info.busIdLegacy = f"{int(domain_s, 16):04x}:{bus_s}:{device_s}.0".encode()
        info.domain = int(domain_s, 16)
        info.bus = int(bus_s, 16)
        info.device = int(device_s, 16)
        info.pciDeviceId = dev.model.pci_device_id
        info.pciSubSystemId = 0
        return SUCCESS

    # ------------------------------------------------------------------ memory

    def _memory(self, dev: _Device) -> tuple[int, int, int]:
        """(total, reserved, used by contexts) in bytes."""
        with self._lock:
            view = self._refresh(dev)
        return (
            dev.model.memory_total_bytes,
            dev.model.memory_reserved_bytes,
            view.process_memory_bytes + view.leaked_bytes,
        )

    @_entry
    def nvmlDeviceGetMemoryInfo(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetMemoryInfo")
        total, reserved, used = self._memory(dev)
        mem = _out(out)
        mem.total = total
        mem.used = reserved + used  # v1 counts the driver's reserve as used
        mem.free = total - reserved - used
        return SUCCESS

    @_entry
    def nvmlDeviceGetMemoryInfo_v2(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetMemoryInfo_v2")
        mem = _out(out)
        if mem.version != MEMORY_V2:
            return _E["ARGUMENT_VERSION_MISMATCH"]
        total, reserved, used = self._memory(dev)
        mem.total = total
        mem.reserved = reserved
        mem.used = used
        mem.free = total - reserved - used
        return SUCCESS

    # ------------------------------------------------------------------ power and energy

    @_entry
    def nvmlDeviceGetPowerUsage(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetPowerUsage")
        _out(out).value = self._read(dev).power_mw
        return SUCCESS

    @_entry
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetEnforcedPowerLimit")
        _out(out).value = self._read(dev).enforced_limit_mw
        return SUCCESS

    def _software_limit_mw(self, dev: _Device) -> int:
        with self._lock:
            limit = self._refresh(dev).settings.power_limit_mw
        return limit if limit is not None else round(dev.model.power_default_w * 1000)

    @_entry
    def nvmlDeviceGetPowerManagementLimit(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetPowerManagementLimit")
        _out(out).value = self._software_limit_mw(dev)
        return SUCCESS

    @_entry
    def nvmlDeviceGetPowerManagementLimitConstraints(
        self, handle: Any, out_min: Any, out_max: Any
    ) -> int:
        dev = self._device(handle, "nvmlDeviceGetPowerManagementLimitConstraints")
        _out(out_min).value = round(dev.model.power_min_w * 1000)
        _out(out_max).value = round(dev.model.power_max_w * 1000)
        return SUCCESS

    @_entry
    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetPowerManagementDefaultLimit")
        _out(out).value = round(dev.model.power_default_w * 1000)
        return SUCCESS

    @_entry
    def nvmlDeviceSetPowerManagementLimit(self, handle: Any, limit_mw: Any) -> int:
        dev = self._device(handle, "nvmlDeviceSetPowerManagementLimit")
        mw = _int(limit_mw)
        m = dev.model
        if not round(m.power_min_w * 1000) <= mw <= round(m.power_max_w * 1000):
            return _E["INVALID_ARGUMENT"]
        with self._lock:
            # Bring physics up to now under the old limit before the new one applies.
            self._refresh(dev, force=True)
            gpu_state.write_settings(self.state_dir, dev.gpu.uuid, Settings(power_limit_mw=mw))
            self._refresh(dev, force=True)
        return SUCCESS

    @_entry
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTotalEnergyConsumption")
        _out(out).value = self._read(dev).energy_mj
        return SUCCESS

    # ------------------------------------------------------------------ temperature

    @_entry
    def nvmlDeviceGetTemperature(self, handle: Any, sensor: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTemperature")
        if _int(sensor) != 0:  # NVML_TEMPERATURE_GPU is the only sensor
            return _E["INVALID_ARGUMENT"]
        _out(out).value = self._read(dev).temp_c
        return SUCCESS

    @_entry
    def nvmlDeviceGetTemperatureV(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTemperatureV")
        t = _out(out)
        if t.version != TEMPERATURE_V1:
            return _E["ARGUMENT_VERSION_MISMATCH"]
        if int(t.sensorType) != 0:
            return _E["INVALID_ARGUMENT"]
        t.temperature = self._read(dev).temp_c
        return SUCCESS

    @_entry
    def nvmlDeviceGetTemperatureThreshold(self, handle: Any, threshold: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTemperatureThreshold")
        m = dev.model
        which = _int(threshold)
        values: dict[int, float | None] = {
            0: m.temp_shutdown_c,
            1: m.temp_slowdown_c,
            2: 95.0 if m.has_memory_temp else None,  # HBM maximum operating temperature
            3: m.temp_gpu_max_c,
        }
        value = values.get(which)
        if value is None:
            return _E["NOT_SUPPORTED"] if which in values or which < 8 else _E["INVALID_ARGUMENT"]
        _out(out).value = round(value)
        return SUCCESS

    # ------------------------------------------------------------------ batched fields

    @_entry
    def nvmlDeviceGetFieldValues(self, handle: Any, count: Any, values: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetFieldValues")
        array = _out(values)
        n = _int(count)
        r = self._read(dev)
        stamp_us = int(time.time() * 1e6)
        for i in range(n):
            fv = array[i]
            fv.timestamp = stamp_us
            fv.latencyUsec = 0
            fid = int(fv.fieldId)
            fv.nvmlReturn = SUCCESS
            if fid == FI_DEV_MEMORY_TEMP and dev.model.has_memory_temp:
                fv.valueType = VALUE_TYPE_UNSIGNED_INT
                fv.value.uiVal = r.memory_temp_c
            elif fid == FI_DEV_TOTAL_ENERGY_CONSUMPTION:
                fv.valueType = VALUE_TYPE_UNSIGNED_LONG_LONG
                fv.value.ullVal = r.energy_mj
            elif fid in (FI_DEV_POWER_AVERAGE, FI_DEV_POWER_INSTANT):
                fv.valueType = VALUE_TYPE_UNSIGNED_INT
                fv.value.uiVal = r.power_mw
            else:
                fv.nvmlReturn = _E["NOT_SUPPORTED"]
        return SUCCESS

    # ------------------------------------------------------------------ load, clocks, fan

    @_entry
    def nvmlDeviceGetUtilizationRates(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetUtilizationRates")
        r = self._read(dev)
        u = _out(out)
        u.gpu = r.util_gpu_pct
        u.memory = r.util_memory_pct
        return SUCCESS

    @_entry
    def nvmlDeviceGetClockInfo(self, handle: Any, clock_type: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetClockInfo")
        r = self._read(dev)
        kind = _int(clock_type)
        clocks = {
            0: r.sm_clock_mhz,
            1: r.sm_clock_mhz,
            2: r.mem_clock_mhz,
            3: round(r.sm_clock_mhz * 0.9),
        }
        if kind not in clocks:
            return _E["INVALID_ARGUMENT"]
        _out(out).value = clocks[kind]
        return SUCCESS

    @_entry
    def nvmlDeviceGetMaxClockInfo(self, handle: Any, clock_type: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetMaxClockInfo")
        m = dev.model
        kind = _int(clock_type)
        clocks = {
            0: m.sm_clock_max_mhz,
            1: m.sm_clock_max_mhz,
            2: m.mem_clock_max_mhz,
            3: m.sm_clock_max_mhz * 0.9,
        }
        if kind not in clocks:
            return _E["INVALID_ARGUMENT"]
        _out(out).value = round(clocks[kind])
        return SUCCESS

    def _fan(self, dev: _Device) -> int:
        if not dev.model.has_fan:
            raise _Fail(_E["NOT_SUPPORTED"])
        fan = self._read(dev).fan_pct
        assert fan is not None
        return fan

    @_entry
    def nvmlDeviceGetFanSpeed(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetFanSpeed")
        _out(out).value = self._fan(dev)
        return SUCCESS

    @_entry
    def nvmlDeviceGetNumFans(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetNumFans")
        if not dev.model.has_fan:
            return _E["NOT_SUPPORTED"]
        _out(out).value = 2
        return SUCCESS

    @_entry
    def nvmlDeviceGetFanSpeed_v2(self, handle: Any, fan: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetFanSpeed_v2")
        if dev.model.has_fan and _int(fan) >= 2:
            return _E["INVALID_ARGUMENT"]
        _out(out).value = self._fan(dev)
        return SUCCESS

    @_entry
    def nvmlDeviceGetPerformanceState(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetPerformanceState")
        _out(out).value = self._read(dev).pstate
        return SUCCESS

    @_entry
    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetCurrentClocksEventReasons")
        _out(out).value = self._read(dev).reasons
        return SUCCESS

    @_entry
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")
        _out(out).value = self._read(dev).reasons
        return SUCCESS

    @_entry
    def nvmlDeviceGetSupportedClocksEventReasons(self, handle: Any, out: Any) -> int:
        self._device(handle, "nvmlDeviceGetSupportedClocksEventReasons")
        _out(out).value = SUPPORTED_REASONS
        return SUCCESS

    # ------------------------------------------------------------------ PCIe and ECC

    @_entry
    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetCurrPcieLinkGeneration")
        idle = self._read(dev).pcie_generation_idle
        _out(out).value = 1 if idle else dev.gpu.pcie_generation
        return SUCCESS

    @_entry
    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetCurrPcieLinkWidth")
        _out(out).value = dev.gpu.pcie_width
        return SUCCESS

    @_entry
    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetMaxPcieLinkGeneration")
        _out(out).value = dev.gpu.pcie_generation
        return SUCCESS

    @_entry
    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetMaxPcieLinkWidth")
        _out(out).value = dev.gpu.pcie_width
        return SUCCESS

    @_entry
    def nvmlDeviceGetTotalEccErrors(
        self, handle: Any, error_type: Any, counter_type: Any, out: Any
    ) -> int:
        dev = self._device(handle, "nvmlDeviceGetTotalEccErrors")
        if not dev.model.has_ecc:
            return _E["NOT_SUPPORTED"]
        if _int(error_type) == 0:  # corrected: the simulator injects none
            _out(out).value = 0
            return SUCCESS
        volatile = _int(counter_type) == 0
        after = self._xid_base_seq if volatile else 0
        with self._lock:
            events = self._reader.xid_events(after)
        _out(out).value = sum(1 for e in events if e.uuid == dev.gpu.uuid and e.xid in _ECC_XIDS)
        return SUCCESS

    # ------------------------------------------------------------------ processes

    def _processes(self, handle: Any, symbol: str, kind: str, count: Any, infos: Any) -> int:
        dev = self._device(handle, symbol)
        with self._lock:
            procs = [p for p in self._refresh(dev).processes if p.kind == kind]
        n_out = _out(count)
        capacity = int(n_out.value)
        n_out.value = len(procs)
        if not procs:
            return SUCCESS
        if infos is None or capacity < len(procs):
            # Phase one of the two-phase protocol: say how many, ask for a bigger array.
            return _E["INSUFFICIENT_SIZE"]
        for i, p in enumerate(procs):
            infos[i].pid = p.pid
            infos[i].usedGpuMemory = p.used_memory_bytes
            infos[i].gpuInstanceId = NO_INSTANCE
            infos[i].computeInstanceId = NO_INSTANCE
        return SUCCESS

    @_entry
    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: Any, count: Any, infos: Any) -> int:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v3", "C", count, infos)

    @_entry
    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, handle: Any, count: Any, infos: Any) -> int:
        return self._processes(
            handle, "nvmlDeviceGetGraphicsRunningProcesses_v3", "G", count, infos
        )

    # ------------------------------------------------------------------ XID events

    @_entry
    def nvmlDeviceGetSupportedEventTypes(self, handle: Any, out: Any) -> int:
        self._device(handle, "nvmlDeviceGetSupportedEventTypes")
        # Only what the simulator delivers: critical XIDs.
        _out(out).value = EVENT_TYPE_XID_CRITICAL_ERROR
        return SUCCESS

    @_entry
    def nvmlEventSetCreate(self, out: Any) -> int:
        self._require_init()
        with self._lock:
            es = _EventSet((ctypes.c_char * 8)(), self._reader.last_xid_seq())
            address = ctypes.addressof(es.buf)
            self._event_sets[address] = es
        _set_pointer(_out(out), address)
        return SUCCESS

    def _event_set(self, handle: Any) -> _EventSet:
        es = self._event_sets.get(_address(handle) or 0)
        if es is None:
            raise _Fail(_E["INVALID_ARGUMENT"])
        return es

    @_entry
    def nvmlDeviceRegisterEvents(self, handle: Any, event_types: Any, event_set: Any) -> int:
        dev = self._device(handle, "nvmlDeviceRegisterEvents")
        types = _int(event_types)
        if types & ~EVENT_TYPE_XID_CRITICAL_ERROR:
            return _E["NOT_SUPPORTED"]
        with self._lock:
            es = self._event_set(event_set)
            es.masks[dev.gpu.uuid] = es.masks.get(dev.gpu.uuid, 0) | types
        return SUCCESS

    @_entry
    def nvmlEventSetWait_v2(self, event_set: Any, out: Any, timeout_ms: Any) -> int:
        self._require_init()
        deadline = time.monotonic() + _int(timeout_ms) / 1000.0
        while True:
            with self._lock:
                es = self._event_set(event_set)
                for rec in self._reader.xid_events(es.cursor):
                    es.cursor = rec.seq
                    if es.masks.get(rec.uuid, 0) & EVENT_TYPE_XID_CRITICAL_ERROR:
                        data = _out(out)
                        dev = self._by_uuid[rec.uuid]
                        data.device = ctypes.cast(dev.address, type(data.device))
                        data.eventType = EVENT_TYPE_XID_CRITICAL_ERROR
                        data.eventData = rec.xid
                        data.gpuInstanceId = NO_INSTANCE
                        data.computeInstanceId = NO_INSTANCE
                        return SUCCESS
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _E["TIMEOUT"]
            if self._closed.wait(min(_EVENT_POLL_S, remaining)):
                return _E["UNINITIALIZED"]

    @_entry
    def nvmlEventSetFree(self, event_set: Any) -> int:
        self._require_init()
        with self._lock:
            self._event_set(event_set)
            self._event_sets.pop(_address(event_set) or 0, None)
        return SUCCESS
