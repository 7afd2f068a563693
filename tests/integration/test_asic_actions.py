"""ASIC actions through the one action path, against real simulated miners over real sockets:
results are checked, refusals say why, and every attempt lands in the SQLite audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.actions import ActionRequest, Origin, ResultCode
from console.audit import AuditLog
from console.config import load_config
from console.model import CommandedMode
from console.site import Site
from simulators.asic import AsicFleet, MinerSpec


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[Site, AsicFleet]]:
    specs = [
        MinerSpec(persona="luxos", model="Antminer S19j Pro", port=0, seed=1),
        MinerSpec(persona="antminer_stock", model="Antminer S21", port=0, seed=2),
        MinerSpec(persona="cgminer", model="Antminer S19 Pro", port=0, seed=3),
    ]
    names = ["lux", "stock", "plain"]
    privileged = [True, False, True]
    async with AsicFleet(specs) as fleet:
        text = f'[site]\nname = "act"\nstate_dir = "{tmp_path / "state"}"\n'
        for name, miner, priv in zip(names, fleet.miners, privileged, strict=True):
            text += (
                f'[[asics]]\nname = "{name}"\nhost = "{miner.host}"\nport = {miner.port}\n'
                f"privileged = {str(priv).lower()}\n"
            )
        path = tmp_path / "site.toml"
        path.write_text(text)
        async with Site(load_config(path)) as running:
            await running.poll_all_once()
            yield running, fleet


def request(action: str, target: str | None, **params: object) -> ActionRequest:
    return ActionRequest(
        action=action,
        target=target,
        params=dict(params),
        actor="night-shift",
        origin=Origin.CLI,
        reason="test",
        request_id="r1",
    )


async def test_curtail_and_wake_a_privileged_luxos_miner(
    site: tuple[Site, AsicFleet],
) -> None:
    running, fleet = site
    assert "curtail" in running.snapshot().devices[0].controls
    result = await running.actions.perform(request("asic.curtail", "lux"))
    assert result.ok, result.message
    assert result.code is ResultCode.OK and result.request_id == "r1"
    assert fleet.miners[0].truth.state == "curtailed"
    assert running.snapshot().devices[0].commanded is CommandedMode.CURTAILED

    woken = await running.actions.perform(request("asic.wake", "lux"))
    assert woken.ok, woken.message
    assert running.snapshot().devices[0].commanded is CommandedMode.MINING

    entries = await running.audit.recent(target="lux")
    assert [e.action for _, e in entries] == ["asic.curtail", "asic.wake"]
    first = entries[0][1]
    assert first.actor == "night-shift" and first.ok and first.before is not None
    assert first.before["commanded"] == "mining" and first.after is not None
    assert first.after["commanded"] == "curtailed"


async def test_refusals_are_results_with_reasons_and_are_audited(
    site: tuple[Site, AsicFleet],
) -> None:
    running, fleet = site
    not_privileged = await running.actions.perform(request("asic.reboot", "stock"))
    assert not not_privileged.ok and not_privileged.code is ResultCode.NOT_PERMITTED
    assert "privileged" in not_privileged.message
    assert running.snapshot().devices[1].controls == ()

    unsupported = await running.actions.perform(request("asic.curtail", "plain"))
    assert unsupported.code is ResultCode.UNSUPPORTED, unsupported.message

    missing = await running.actions.perform(request("asic.wake", "nosuch"))
    assert missing.code is ResultCode.NOT_FOUND

    bad_pool = await running.actions.perform(request("asic.switch_pool", "lux", pool="two"))
    assert bad_pool.code is ResultCode.INVALID and "params.pool" in bad_pool.message

    unknown = await running.actions.perform(request("asic.explode", "lux"))
    assert unknown.code is ResultCode.INVALID and "asic.curtail" in unknown.message

    assert fleet.miners[1].truth.state == "mining"
    entries = await running.audit.recent()
    assert [e.code for _, e in entries] == [
        "not_permitted",
        "unsupported",
        "not_found",
        "invalid",
        "invalid",
    ]


async def test_audit_survives_reopening(tmp_path: Path) -> None:
    from console.actions import AuditEntry

    log = AuditLog.in_state_dir(tmp_path)
    entry = AuditEntry(
        at=1.0,
        actor="a",
        origin="cli",
        action="asic.wake",
        target="x",
        reason="",
        params={"k": 1},
        ok=True,
        code="ok",
        message="m",
    )
    first = await log.record(entry)
    log.close()
    reopened = AuditLog.in_state_dir(tmp_path)
    assert [(i, e) for i, e in await reopened.recent()] == [(first, entry)]
    reopened.close()
