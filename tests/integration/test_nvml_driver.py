"""The NVML driver under faults, through the real binding and the simulated NVML: one GPU lost
while the others update, a hung call (deadline, STALE, no queueing behind it), per-field
NotSupported/NoPermission/FunctionNotFound, ResetRequired, no library / no driver, XIDs,
leaked memory, versioned-call fallbacks, power-limit writes."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pynvml
import pytest

from drivers.gpu_reading import GpuHealth, GpuReading, NvmlState
from drivers.nvml import NvmlCommandError, NvmlDriver, decode_throttle_reasons
from simulators import gpu_state
from simulators.nvml import NvmlSim
from tests.gpu_helpers import ManualClock, reset_binding

pytest_plugins = ("tests.nvml_fixtures",)

GIB = 1 << 30


def by_uuid(state: NvmlState, uuid: str) -> GpuReading:
    return next(g for g in state.gpus if g.static.uuid == uuid)


class Hiding:
    """The simulator with some symbols missing, as an older driver's library would be."""

    def __init__(self, sim: NvmlSim, *hidden: str) -> None:
        self._sim = sim
        self._hidden = set(hidden)

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._sim, name)


class Refusing:
    """A library whose nvmlInit fails with a fixed NVML error (no driver, no library...)."""

    def __init__(self, code: int) -> None:
        self.code = code

    def nvmlInitWithFlags(self, flags: int) -> int:
        return self.code


@pytest.fixture
async def make_driver() -> AsyncIterator[Any]:
    made: list[NvmlDriver] = []

    def make(library: object, **kw: Any) -> NvmlDriver:
        d = NvmlDriver(
            library=library, retry_unavailable_s=0.0, lost_retry_s=0.0, xid_wait_ms=100, **kw
        )
        made.append(d)
        return d

    yield make
    for d in made:
        await d.close()
    reset_binding()


def test_throttle_reasons_decode_to_short_labels() -> None:
    assert decode_throttle_reasons(0x4 | 0x40 | 0x8) == ("PWR", "HW", "THERM-HW")
    assert decode_throttle_reasons(0x1, util_gpu_pct=0.0) == ()  # idle at idle: noise
    assert decode_throttle_reasons(0x1, util_gpu_pct=30.0) == ("IDLE",)
    assert decode_throttle_reasons(0x80 | 0x20) == ("THERM-SW", "BRAKE")
    assert decode_throttle_reasons(0) == ()


async def test_a_lost_gpu_does_not_stop_the_others(
    sim: NvmlSim, driver: NvmlDriver, clock: ManualClock
) -> None:
    gpus = sim.site.gpus
    first = await driver.start()
    assert all(g.health is GpuHealth.OK for g in first.gpus)
    gpu_state.set_faults(sim.state_dir, gpus[1].uuid, lost=True)
    clock.advance(10)
    state = await driver.sample()
    lost = by_uuid(state, gpus[1].uuid)
    assert lost.health is GpuHealth.LOST and lost.sample is None
    assert lost.error is not None and "lost" in lost.error
    assert lost.static.name == "NVIDIA GeForce RTX 4090"  # identity kept from before
    for g in gpus:
        if g.uuid == gpus[1].uuid:
            continue
        before, after = by_uuid(first, g.uuid).sample, by_uuid(state, g.uuid).sample
        assert by_uuid(state, g.uuid).health is GpuHealth.OK
        assert before is not None and after is not None
        assert after.energy_j is not None and before.energy_j is not None
        assert after.energy_j > before.energy_j  # still updating
    # The board comes back (re-seated, host rebooted): the driver probes and resumes.
    gpu_state.set_faults(sim.state_dir, gpus[1].uuid, lost=False)
    back = by_uuid(await driver.sample(), gpus[1].uuid)
    assert back.health is GpuHealth.OK and back.sample is not None


async def test_a_gpu_lost_before_identification_is_a_placeholder(
    sim: NvmlSim, driver: NvmlDriver
) -> None:
    gpu_state.set_faults(sim.state_dir, sim.site.gpus[0].uuid, lost=True)
    state = await driver.start()
    r = state.gpus[0]
    assert r.health is GpuHealth.LOST
    assert not r.static.identified and r.static.uuid == "unidentified-nvml-index-0"
    assert [g.health for g in state.gpus[1:]] == [GpuHealth.OK] * 4
    gpu_state.set_faults(sim.state_dir, sim.site.gpus[0].uuid, lost=False)
    r = (await driver.sample()).gpus[0]
    assert r.static.identified and r.static.uuid == sim.site.gpus[0].uuid
    assert r.health is GpuHealth.OK


async def test_a_hung_call_marks_its_gpu_stale_and_the_others_go_on(
    sim: NvmlSim, make_driver: Any
) -> None:
    gpus = sim.site.gpus
    driver: NvmlDriver = make_driver(sim, tick_deadline_s=0.5)
    await driver.start()
    gpu_state.set_faults(sim.state_dir, gpus[1].uuid, hang=["nvmlDeviceGetTotalEnergyConsumption"])
    state = await driver.sample()
    hung = by_uuid(state, gpus[1].uuid)
    assert hung.health is GpuHealth.STALE and hung.sample is None
    assert hung.error is not None and "nvmlDeviceGetTotalEnergyConsumption" in hung.error
    assert by_uuid(state, gpus[0].uuid).health is GpuHealth.OK  # sampled before the hang
    for g in gpus[2:]:  # queued behind the hung call in this tick
        assert by_uuid(state, g.uuid).health is GpuHealth.STALE
    # Next tick: a fresh worker polls the others; the hung GPU gets no more work.
    calls_before = sim.calls["nvmlDeviceGetPowerUsage", gpus[1].uuid]
    state = await driver.sample()
    assert by_uuid(state, gpus[1].uuid).health is GpuHealth.STALE
    assert [by_uuid(state, g.uuid).health for g in gpus if g != gpus[1]] == [GpuHealth.OK] * 4
    assert sim.calls["nvmlDeviceGetPowerUsage", gpus[1].uuid] == calls_before
    fast = await driver.sample_one(gpus[3].uuid)
    assert fast.health is GpuHealth.OK
    # The call returns (the driver recovers): the GPU is polled again.
    gpu_state.set_faults(sim.state_dir, gpus[1].uuid, hang=[])

    async def recovered() -> bool:
        return by_uuid(await driver.sample(), gpus[1].uuid).health is GpuHealth.OK

    for _ in range(50):
        if await recovered():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the GPU stayed STALE after its hung call returned")


async def test_unsupported_fields_are_none_and_no_longer_polled(
    sim: NvmlSim, driver: NvmlDriver
) -> None:
    u = sim.site.gpus[0].uuid
    gpu_state.set_faults(
        sim.state_dir,
        u,
        call_errors={
            "nvmlDeviceGetFanSpeed": "NOT_SUPPORTED",
            "nvmlDeviceGetPerformanceState": "NO_PERMISSION",
            "nvmlDeviceGetPowerUsage": "TIMEOUT",  # transient: asked again next tick
        },
    )
    await driver.start()
    s = by_uuid(await driver.sample(), u).sample
    assert s is not None
    assert s.fan_pct is None and s.pstate is None and s.power_w is None
    assert {"fan_pct", "pstate"} <= set(s.unsupported) and "power_w" not in s.unsupported
    assert dict(s.field_errors)["power_w"] == "Timeout"
    fan_calls = sim.calls["nvmlDeviceGetFanSpeed", u]
    power_calls = sim.calls["nvmlDeviceGetPowerUsage", u]
    await driver.sample()
    await driver.sample()
    assert sim.calls["nvmlDeviceGetFanSpeed", u] == fan_calls
    assert sim.calls["nvmlDeviceGetPowerUsage", u] == power_calls + 2


async def test_function_not_found_falls_back_or_turns_the_field_off(
    sim: NvmlSim, make_driver: Any
) -> None:
    lib = Hiding(
        sim,
        "nvmlDeviceGetTemperatureV",
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetMemoryInfo_v2",
        "nvmlDeviceGetCurrPcieLinkWidth",
    )
    driver: NvmlDriver = make_driver(lib)
    state = await driver.start()
    g = sim.site.gpus[4]
    gpu_state.Registration(sim.state_dir, g.uuid, name="x", used_memory_bytes=GIB, util_gpu_pct=100)
    s = by_uuid(await driver.sample(), g.uuid).sample
    assert s is not None
    truth = sim.reading(g.uuid)
    assert s.temp_gpu_c == truth.temp_c  # from the legacy nvmlDeviceGetTemperature
    assert s.throttle_reasons == decode_throttle_reasons(truth.reasons, 100)
    # v1 memory: `used` includes the driver's reserve, which v1 cannot separate.
    assert s.memory_reserved_bytes is None
    assert s.memory_used_bytes is not None and s.memory_used_bytes > GIB
    assert s.pcie_width is None and "pcie_width" in s.unsupported
    assert state.available


async def test_reset_required_is_needs_reset(sim: NvmlSim, driver: NvmlDriver) -> None:
    u3, u4 = sim.site.gpus[3].uuid, sim.site.gpus[4].uuid
    gpu_state.set_faults(sim.state_dir, u4, reset_required=True)  # already before start
    state = await driver.start()
    early = state.gpus[4]
    assert early.health is GpuHealth.NEEDS_RESET and not early.static.identified
    gpu_state.set_faults(sim.state_dir, u3, reset_required=True)  # while being polled
    r = by_uuid(await driver.sample(), u3)
    assert r.health is GpuHealth.NEEDS_RESET and r.error is not None and "reset" in r.error
    assert r.static.identified


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "library not found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no permission"),
        (pynvml.NVML_ERROR_UNKNOWN, "nvmlinit failed"),
    ],
)
async def test_no_library_or_driver_is_a_state_not_a_crash(
    make_driver: Any, code: int, words: str
) -> None:
    driver: NvmlDriver = make_driver(Refusing(code))
    state = await driver.start()
    assert state.available is False and state.gpus == ()
    assert state.reason is not None and words in state.reason.lower()
    assert (await driver.sample()).available is False  # retried, still no


async def test_driver_not_loaded_then_loaded(sim: NvmlSim, make_driver: Any) -> None:
    gpu_state.set_site_faults(sim.state_dir, driver_not_loaded=True)
    driver: NvmlDriver = make_driver(sim)
    state = await driver.start()
    assert not state.available and state.reason and "not loaded" in state.reason
    gpu_state.set_site_faults(sim.state_dir, driver_not_loaded=False)
    state = await driver.sample()  # retry_unavailable_s=0: tries again now
    assert state.available and len(state.gpus) == 5


async def test_the_real_loader_finding_no_library(
    make_driver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """library=None: the binding loads libnvidia-ml.so.1 itself. Make that load fail the way
    it does on a host without the NVIDIA driver, whatever this host has."""
    reset_binding()

    def no_such_library(name: str, *a: object, **kw: object) -> object:
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(pynvml, "CDLL", no_such_library)
    driver: NvmlDriver = make_driver(None)
    state = await driver.start()
    assert not state.available
    assert state.reason is not None and "libnvidia-ml.so.1" in state.reason


async def test_nvml_init_that_hangs_gives_unavailable(sim: NvmlSim, make_driver: Any) -> None:
    release = threading.Event()

    class SlowInit:
        def __getattr__(self, name: str) -> Any:
            return getattr(sim, name)

        def nvmlInitWithFlags(self, flags: int) -> int:
            release.wait(10)
            return int(sim.nvmlInitWithFlags(flags))

    driver: NvmlDriver = make_driver(SlowInit(), init_deadline_s=0.3)
    try:
        state = await driver.start()
        assert not state.available and state.reason and "did not return" in state.reason
    finally:
        release.set()


async def test_critical_xid_faults_the_gpu_until_acknowledged(
    sim: NvmlSim, driver: NvmlDriver
) -> None:
    gpus = sim.site.gpus
    await driver.start()
    gpu_state.inject_xid(sim.state_dir, gpus[2].uuid, 13)  # app error: reported, not a fault
    gpu_state.inject_xid(sim.state_dir, gpus[3].uuid, 48)  # double-bit ECC: critical

    async def both_seen() -> bool:
        s = await driver.sample()
        return by_uuid(s, gpus[2].uuid).last_xid is not None and (
            by_uuid(s, gpus[3].uuid).health is GpuHealth.FAULTED
        )

    for _ in range(100):
        if await both_seen():
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("XIDs never arrived")
    state = driver.state
    app, ecc = by_uuid(state, gpus[2].uuid), by_uuid(state, gpus[3].uuid)
    assert app.health is GpuHealth.OK and app.last_xid is not None and app.last_xid.xid == 13
    assert ecc.error is not None and "XID 48" in ecc.error
    s = (await driver.sample_one(gpus[3].uuid)).sample
    assert s is not None and s.ecc_uncorrected == 1  # the sim counts XID 48 as a DBE
    assert driver.acknowledge_fault(gpus[3].uuid)
    after = by_uuid(await driver.sample(), gpus[3].uuid)
    assert after.health is GpuHealth.OK and after.last_xid is not None
    assert not driver.acknowledge_fault(gpus[3].uuid)


async def test_memory_left_with_no_process_is_needs_reset(sim: NvmlSim, driver: NvmlDriver) -> None:
    u = sim.site.gpus[1].uuid
    gpu_state.set_faults(sim.state_dir, u, leak=True)
    code = (
        "from simulators import gpu_state\n"
        f"gpu_state.Registration({str(sim.state_dir)!r}, {u!r}, name='leaky',"
        " used_memory_bytes=6 << 30, util_gpu_pct=100)\n"
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    assert await child.wait() == 0
    await driver.start()

    async def leaked() -> GpuReading | None:
        r = await driver.sample_one(u)
        return r if r.health is GpuHealth.NEEDS_RESET else None

    r = None
    for _ in range(50):
        if (r := await leaked()) is not None:
            break
        await asyncio.sleep(0.05)
    assert r is not None and r.sample is not None
    assert r.sample.processes == () and r.sample.memory_used_bytes == 6 * GIB
    assert r.error is not None and "6144 MiB held with no process" in r.error
    gpu_state.reset_gpu(sim.state_dir, u)
    r = await driver.sample_one(u)
    assert r.health is GpuHealth.OK and r.sample is not None and r.sample.memory_used_bytes == 0


async def test_power_limit_writes(sim: NvmlSim, driver: NvmlDriver, clock: ManualClock) -> None:
    g = sim.site.gpus[0]  # RTX 3090: 100..400 W, default 350 W
    gpu_state.Registration(sim.state_dir, g.uuid, name="x", util_gpu_pct=100)
    await driver.start()
    with pytest.raises(NvmlCommandError, match=r"outside .* 100–400 W"):
        await driver.set_power_limit(g.uuid, 50)
    assert await driver.set_power_limit(g.uuid, 220) == 220.0
    clock.advance(20)
    s = by_uuid(await driver.sample(), g.uuid).sample
    assert s is not None and s.power_limit_w == 220.0 and s.power_w == 220.0
    assert "PWR" in s.throttle_reasons
    assert await driver.reset_power_limit(g.uuid) == 350.0
    # The limit lives on the GPU (the state directory), not in the driver: a new simulator
    # instance over the same site sees it, as a restarted console would.
    await driver.set_power_limit(g.uuid, 300)
    assert gpu_state.StateReader(sim.state_dir).view(g.uuid).settings.power_limit_mw == 300_000
    with pytest.raises(NvmlCommandError, match="no usable GPU"):
        await driver.set_power_limit("GPU-nope", 300)


async def test_sample_one_unknown_uuid(driver: NvmlDriver) -> None:
    await driver.start()
    with pytest.raises(KeyError):
        await driver.sample_one("GPU-00000000-0000-0000-0000-000000000000")


async def test_close_uninstalls_the_library(sim: NvmlSim, make_driver: Any) -> None:
    driver: NvmlDriver = make_driver(sim)
    await driver.start()
    assert pynvml.nvmlLib is sim
    await driver.close()
    assert pynvml.nvmlLib is None
    assert not driver.state.available
