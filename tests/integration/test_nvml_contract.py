"""Contract tests: NVIDIA's real binding (nvidia-ml-py) against the simulated NVML library.

Two layers. First the ABI: the binding's own functions, called as any NVML user would, must
get what a real library gives (str vs bytes, integer units, the two-phase process query,
NotSupported on the fields a board lacks, GpuIsLost, FunctionNotFound, event sets). Then the
driver: for every GPU model, each field of `drivers.nvml`'s normalised reading must equal the
simulator's ground truth converted to the driver's units (mW → W, mJ → J, bytes, MHz, °C).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest

from drivers.gpu_reading import GpuHealth
from drivers.nvml import NvmlDriver, decode_throttle_reasons
from simulators import gpu_state
from simulators.gpu_models import model
from simulators.nvml import NvmlSim
from tests.gpu_helpers import ALL_MODELS, ManualClock, reset_binding

pytest_plugins = ("tests.nvml_fixtures",)

GIB = 1 << 30


@pytest.fixture
def nvml(sim: NvmlSim) -> Iterator[NvmlSim]:
    """The binding pointed at the simulator and initialised, as the driver does it."""
    pynvml.nvmlLib = sim
    pynvml._nvmlGetFunctionPointer_cache.clear()
    pynvml.nvmlInit()
    yield sim
    reset_binding()


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Real idle processes to register on GPUs (distinct live PIDs)."""
    procs = [subprocess.Popen(["sleep", "120"]) for _ in range(3)]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def _handle(i: int) -> object:
    return pynvml.nvmlDeviceGetHandleByIndex(i)


# ---------------------------------------------------------------------------------------------
# The binding's own view


def test_the_deprecated_pynvml_distribution_is_not_installed() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("pynvml")
    assert Path(pynvml.__file__).name == "pynvml.py"
    assert importlib.metadata.version("nvidia-ml-py")


def test_identity_strings_and_versions(nvml: NvmlSim) -> None:
    site = nvml.site
    assert pynvml.nvmlDeviceGetCount() == len(ALL_MODELS)
    for g in site.gpus:
        h = _handle(g.index)
        assert pynvml.nvmlDeviceGetName(h) == model(g.model).name
        assert pynvml.nvmlDeviceGetUUID(h) == g.uuid
        assert pynvml.nvmlDeviceGetIndex(h) == g.index
        pci = pynvml.nvmlDeviceGetPciInfo(h)
        assert pci.busId == g.pci_bus_id  # the binding's structs hand out str
        assert pci.bus == g.index + 1
        by_uuid = pynvml.nvmlDeviceGetHandleByUUID(g.uuid)
        assert ctypes.cast(by_uuid, ctypes.c_void_p).value == ctypes.cast(h, ctypes.c_void_p).value
    assert pynvml.nvmlSystemGetDriverVersion() == site.driver_version
    assert pynvml.nvmlSystemGetNVMLVersion() == site.nvml_version
    assert pynvml.nvmlSystemGetCudaDriverVersion() == site.cuda_driver_version
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000")
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(len(ALL_MODELS))


def test_units_are_nvml_integers(nvml: NvmlSim) -> None:
    h = _handle(1)  # RTX 4090
    assert pynvml.nvmlDeviceGetPowerManagementLimitConstraints(h) == [150_000, 600_000]
    assert pynvml.nvmlDeviceGetPowerManagementDefaultLimit(h) == 450_000
    assert pynvml.nvmlDeviceGetEnforcedPowerLimit(h) == 450_000
    assert pynvml.nvmlDeviceGetPowerUsage(h) == 18_000  # idle, in mW
    assert isinstance(pynvml.nvmlDeviceGetTotalEnergyConsumption(h), int)  # mJ
    assert (
        pynvml.nvmlDeviceGetTemperatureThreshold(h, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)
        == 90
    )


def test_memory_v1_counts_the_reserve_as_used_v2_does_not(nvml: NvmlSim) -> None:
    d = nvml.state_dir
    g = nvml.site.gpus[0]
    gpu_state.Registration(d, g.uuid, name="me", used_memory_bytes=3 * GIB)
    h = _handle(0)
    v1 = pynvml.nvmlDeviceGetMemoryInfo(h)
    v2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
    m = model(g.model)
    assert v1.total == v2.total == m.memory_total_bytes
    assert v2.used == 3 * GIB and v2.reserved == m.memory_reserved_bytes
    assert v1.used == v2.used + v2.reserved
    assert v1.free == v2.free == v1.total - v1.used


def test_processes_two_phase_query(nvml: NvmlSim, sleepers: list[subprocess.Popen[bytes]]) -> None:
    d, g = nvml.state_dir, nvml.site.gpus[2]
    for i, p in enumerate(sleepers):
        gpu_state.Registration(d, g.uuid, name=f"p{i}", used_memory_bytes=(i + 1) * GIB, pid=p.pid)
    h = _handle(2)
    procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
    assert sorted((p.pid, p.usedGpuMemory) for p in procs) == sorted(
        (p.pid, (i + 1) * GIB) for i, p in enumerate(sleepers)
    )
    assert pynvml.nvmlDeviceGetGraphicsRunningProcesses(h) == []
    # The raw symbol: a NULL array or one too small answers INSUFFICIENT_SIZE with the count.
    fn = pynvml._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses_v3")
    count = ctypes.c_uint(0)
    assert fn(h, ctypes.byref(count), None) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    assert count.value == 3
    small = (pynvml.c_nvmlProcessInfo_v3_t * 2)()
    count.value = 2
    assert fn(h, ctypes.byref(count), small) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    assert count.value == 3
    # No process at all: success with zero, the binding's "special case".
    assert pynvml.nvmlDeviceGetComputeRunningProcesses(_handle(0)) == []


@pytest.mark.parametrize("index", range(len(ALL_MODELS)))
def test_fields_a_board_lacks_are_not_supported(nvml: NvmlSim, index: int) -> None:
    m = model(ALL_MODELS[index])
    h = _handle(index)
    checks = {
        "fan": (m.has_fan, lambda: pynvml.nvmlDeviceGetFanSpeed(h)),
        "ecc": (
            m.has_ecc,
            lambda: pynvml.nvmlDeviceGetTotalEccErrors(
                h, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC
            ),
        ),
    }
    for name, (supported, call) in checks.items():
        if supported:
            assert isinstance(call(), int), name
        else:
            with pytest.raises(pynvml.NVMLError_NotSupported):
                call()
    fv = pynvml.nvmlDeviceGetFieldValues(h, [pynvml.NVML_FI_DEV_MEMORY_TEMP])[0]
    want = pynvml.NVML_SUCCESS if m.has_memory_temp else pynvml.NVML_ERROR_NOT_SUPPORTED
    assert fv.nvmlReturn == want


def test_error_codes_become_the_binding_exceptions(nvml: NvmlSim) -> None:
    d, gpus = nvml.state_dir, nvml.site.gpus
    gpu_state.set_faults(d, gpus[0].uuid, lost=True)
    gpu_state.set_faults(d, gpus[1].uuid, call_errors={"nvmlDeviceGetPowerUsage": "NO_PERMISSION"})
    gpu_state.set_faults(d, gpus[2].uuid, reset_required=True)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        _handle(0)
    with pytest.raises(pynvml.NVMLError_NoPermission):
        pynvml.nvmlDeviceGetPowerUsage(_handle(1))
    assert pynvml.nvmlDeviceGetTotalEnergyConsumption(_handle(1)) >= 0  # the others still work
    with pytest.raises(pynvml.NVMLError_ResetRequired):
        _handle(2)
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        pynvml.nvmlDeviceGetMigMode(_handle(3))  # a symbol the simulator does not export


def test_uninitialised_and_driver_not_loaded(sim: NvmlSim) -> None:
    pynvml.nvmlLib = sim
    pynvml._nvmlGetFunctionPointer_cache.clear()
    try:
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        gpu_state.set_site_faults(sim.state_dir, driver_not_loaded=True)
        with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
            pynvml.nvmlInit()
        gpu_state.set_site_faults(sim.state_dir, driver_not_loaded=False)
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
    finally:
        reset_binding()


def test_xid_events_through_a_real_event_set(nvml: NvmlSim) -> None:
    d, gpus = nvml.state_dir, nvml.site.gpus
    gpu_state.inject_xid(d, gpus[1].uuid, 13)  # before anyone listens: never delivered
    es = pynvml.nvmlEventSetCreate()
    h = _handle(1)
    assert pynvml.nvmlDeviceGetSupportedEventTypes(h) & pynvml.nvmlEventTypeXidCriticalError
    pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, es)
    with pytest.raises(pynvml.NVMLError_Timeout):
        pynvml.nvmlEventSetWait_v2(es, 10)
    gpu_state.inject_xid(d, gpus[0].uuid, 31)  # a GPU not registered: skipped
    gpu_state.inject_xid(d, gpus[1].uuid, 79)
    gpu_state.inject_xid(d, gpus[1].uuid, 48)
    got = [pynvml.nvmlEventSetWait_v2(es, 1000) for _ in range(2)]
    assert [e.eventData for e in got] == [79, 48]
    assert all(e.eventType == pynvml.nvmlEventTypeXidCriticalError for e in got)
    assert (
        ctypes.cast(got[0].device, ctypes.c_void_p).value == ctypes.cast(h, ctypes.c_void_p).value
    )
    pynvml.nvmlEventSetFree(es)


# ---------------------------------------------------------------------------------------------
# The driver's normalised reading against the simulator's truth


@pytest.mark.parametrize("index", range(len(ALL_MODELS)))
async def test_driver_reading_equals_the_simulated_truth(
    sim: NvmlSim, driver: NvmlDriver, clock: ManualClock, index: int
) -> None:
    g = sim.site.gpus[index]
    m = model(g.model)
    gpu_state.Registration(
        sim.state_dir,
        g.uuid,
        name="load",
        used_memory_bytes=5 * GIB,
        util_gpu_pct=100,
        util_memory_pct=80,
    )
    await driver.start()
    clock.advance(45.0)  # load has warmed the board up; the clock then stands still
    state = await driver.sample()
    truth = sim.reading(g.uuid)
    r = next(x for x in state.gpus if x.static.uuid == g.uuid)
    s = r.sample
    assert r.health is GpuHealth.OK and r.error is None and s is not None

    st = r.static
    assert (st.uuid, st.index, st.name, st.pci_bus_id) == (g.uuid, g.index, m.name, g.pci_bus_id)
    assert st.memory_total_bytes == m.memory_total_bytes
    assert (st.power_limit_min_w, st.power_limit_max_w, st.power_limit_default_w) == (
        m.power_min_w,
        m.power_max_w,
        m.power_default_w,
    )
    assert st.temp_slowdown_c == m.temp_slowdown_c
    assert (st.driver_version, st.nvml_version, st.cuda_driver_version) == (
        sim.site.driver_version,
        sim.site.nvml_version,
        sim.site.cuda_driver_version,
    )

    assert s.power_w == truth.power_mw / 1000
    assert s.power_limit_w == truth.enforced_limit_mw / 1000
    assert s.energy_j == truth.energy_mj / 1000
    assert s.temp_gpu_c == truth.temp_c
    assert (s.util_gpu_pct, s.util_memory_pct) == (100.0, 80.0)
    assert s.memory_used_bytes == 5 * GIB
    assert s.memory_total_bytes == m.memory_total_bytes
    assert s.memory_reserved_bytes == m.memory_reserved_bytes
    assert (s.clock_sm_mhz, s.clock_memory_mhz) == (truth.sm_clock_mhz, truth.mem_clock_mhz)
    assert s.pstate == truth.pstate
    assert s.throttle_reasons == decode_throttle_reasons(truth.reasons, 100.0)
    assert (s.pcie_generation, s.pcie_width) == (g.pcie_generation, g.pcie_width)
    assert [(p.pid, p.used_memory_bytes, p.kind) for p in s.processes] == [
        (os.getpid(), 5 * GIB, "C")
    ]
    assert s.processes[0].name  # resolved through the OS
    # What the board lacks is None and says so; what it has is a number.
    for name, has, value, want in (
        ("fan_pct", m.has_fan, s.fan_pct, truth.fan_pct),
        ("temp_memory_c", m.has_memory_temp, s.temp_memory_c, truth.memory_temp_c),
        ("ecc_uncorrected", m.has_ecc, s.ecc_uncorrected, 0),
        ("ecc_corrected", m.has_ecc, s.ecc_corrected, 0),
    ):
        if has:
            assert value == want, name
            assert name not in s.unsupported
        else:
            assert value is None, name
            assert name in s.unsupported
