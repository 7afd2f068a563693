"""GPU test fixtures (load with ``pytest_plugins = ("tests.nvml_fixtures",)``): a simulated
site of the five GPU models, a manual clock, the NVML simulator, and the NVML driver on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from drivers.nvml import NvmlDriver
from simulators import gpu_state
from simulators.nvml import NvmlSim
from tests.gpu_helpers import ALL_MODELS, ManualClock, reset_binding


@pytest.fixture
def site_dir(tmp_path: Path) -> Iterator[tuple[Path, gpu_state.SiteInfo]]:
    d = tmp_path / "gpus"
    site = gpu_state.create_site(d, ALL_MODELS)
    yield d, site


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(site_dir: tuple[Path, gpu_state.SiteInfo], clock: ManualClock) -> Iterator[NvmlSim]:
    s = NvmlSim(site_dir[0], clock=clock)
    yield s
    s.close()
    reset_binding()


@pytest.fixture
async def driver(sim: NvmlSim) -> AsyncIterator[NvmlDriver]:
    d = NvmlDriver(
        library=sim,
        tick_deadline_s=1.0,
        retry_unavailable_s=0.0,
        lost_retry_s=0.0,
        xid_wait_ms=100,
    )
    yield d
    sim.close()  # releases a hung call first, so close() never waits on one
    await d.close()
