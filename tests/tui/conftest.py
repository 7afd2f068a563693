"""Shared set-up for console tests: a real site over real simulated miners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.config import load_config
from console.site import Site
from simulators.asic import AsicFleet, Fault, MinerSpec


@pytest.fixture
async def live_site(tmp_path: Path) -> AsyncIterator[Site]:
    """Six simulated miners (one hung) behind a real `Site`, polled every 0.3 s."""
    specs = [
        MinerSpec(persona="antminer_stock", model="Antminer S19j Pro", port=0, seed=1),
        MinerSpec(persona="antminer_stock", model="Antminer S21", port=0, seed=2),
        MinerSpec(persona="whatsminer", model="Whatsminer M50", port=0, seed=3),
        MinerSpec(persona="luxos", model="Antminer S19j Pro", port=0, seed=4),
        MinerSpec(persona="avalon", model="AvalonMiner 1246", port=0, seed=5),
        MinerSpec(
            persona="antminer_stock",
            model="Antminer S19j Pro",
            port=0,
            seed=6,
            faults=(Fault("hang"),),
        ),
    ]
    names = ["a-s19jpro", "b-s21", "c-m50", "d-luxos", "e-avalon", "f-hung"]
    async with AsicFleet(specs) as fleet:
        text = '[site]\nname = "tui"\n[poller]\nasic_poll_interval_s = 0.3\nasic_timeout_s = 0.3\n'
        for name, miner in zip(names, fleet.miners, strict=True):
            text += f'[[asics]]\nname = "{name}"\nhost = "{miner.host}"\nport = {miner.port}\n'
        path = tmp_path / "site.toml"
        path.write_text(text)
        yield Site(load_config(path))
