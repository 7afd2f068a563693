"""Shared set-up for console tests: a real site over real simulated miners."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from console.config import load_config
from console.site import Site
from simulators.asic import AsicFleet, Fault, MinerSpec
from tests.gpu_site import gpu_site_toml


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times are shown in local time (audit entries, readings): pin it so the screenshots
    match anywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A focused input's cursor blinks every 0.5 s of wall time: a screenshot taken on a slow
    machine could catch it either way. Keep it shown while focused, so screenshots are stable."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


# name, persona, model, privileged
LIVE_MINERS = (
    ("a-s19jpro", "antminer_stock", "Antminer S19j Pro", False),
    ("b-s21", "antminer_stock", "Antminer S21", False),
    # Privileged without the admin password it needs: its writes are refused, with a reason.
    ("c-m50", "whatsminer", "Whatsminer M50", True),
    ("d-luxos", "luxos", "Antminer S19j Pro", False),
    ("e-avalon", "avalon", "AvalonMiner 1246", False),
    ("f-hung", "antminer_stock", "Antminer S19j Pro", False),
    # Privileged LuxOS: accepts curtail, wake, reboot and pool switches.
    ("g-priv", "luxos", "Antminer S19 XP", True),
)


@pytest.fixture
async def live_fleet() -> AsyncIterator[AsicFleet]:
    specs = [
        MinerSpec(
            persona=persona,
            model=model,
            port=0,
            seed=i + 1,
            faults=(Fault("hang"),) if name == "f-hung" else (),
        )
        for i, (name, persona, model, _) in enumerate(LIVE_MINERS)
    ]
    async with AsicFleet(specs) as fleet:
        yield fleet


def make_site(tmp_path: Path, fleet: AsicFleet, poller: str = "") -> Site:
    text = (
        f'[site]\nname = "tui"\nstate_dir = "{tmp_path / "state"}"\n'
        f"[poller]\nasic_poll_interval_s = 0.3\nasic_timeout_s = 0.3\n{poller}"
    )
    for (name, _, _, privileged), miner in zip(LIVE_MINERS, fleet.miners, strict=True):
        text += (
            f'[[asics]]\nname = "{name}"\nhost = "{miner.host}"\nport = {miner.port}\n'
            f"privileged = {str(privileged).lower()}\n"
        )
    path = tmp_path / "site.toml"
    path.write_text(text)
    return Site(load_config(path))


@pytest.fixture
async def live_site(tmp_path: Path, live_fleet: AsicFleet) -> Site:
    """Seven simulated miners (one hung, two privileged) behind a real `Site`, polled every
    0.3 s, with its state (the audit log) under `tmp_path`."""
    return make_site(tmp_path, live_fleet)


@pytest.fixture
async def quick_lost_site(tmp_path: Path, live_fleet: AsicFleet) -> Site:
    """The same site, where a device that stops answering is lost after 2 s, not 2 min."""
    return make_site(tmp_path, live_fleet, "stale_after_s = 1.0\nlost_after_s = 2.0\n")


@pytest.fixture
async def gpu_site(tmp_path: Path) -> Site:
    """A real `Site` over two simulated GPUs (NVML simulator, real miner and job processes)."""
    return Site(load_config(gpu_site_toml(tmp_path)))


@pytest.fixture
async def broken_gpu_site(tmp_path: Path) -> Site:
    """The same, where g1's miner exits at once: a switch of g1 to mining fails."""
    return Site(load_config(gpu_site_toml(tmp_path, broken_miner_on="g1")))
