"""A poll's join decoded into the shape of what is read (pool records cut to the keys
`parse_pools` reads) gives exactly the reading the whole reply gives, for every simulated
firmware over a real socket and every captured fixture, and a reply of another shape falls back
to the whole decode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drivers.cgminer.client import JoinPlan, fetch, join_replies, plan_join
from drivers.cgminer.decoder import decode
from drivers.cgminer.dialects import DIALECTS, ParseContext
from drivers.cgminer.dialects.base import Identity
from drivers.cgminer.dialects.common import POOL_KEYS, RECORDS_READ, finalise
from drivers.cgminer.dialects.detect import detect
from drivers.cgminer.reading import AsicReading, Firmware
from simulators.asic import MinerSpec, SimulatedMiner
from tests.asic_personas import MODEL_OF

FIXTURES = Path(__file__).parent.parent / "unit" / "cgminer_fixtures"


def reading_of(identity: Identity, plan: JoinPlan, body: bytes) -> AsicReading:
    decoded = decode(body, plan.typed)
    ctx = ParseContext()
    draft = DIALECTS[identity.firmware].parse(identity, join_replies(plan, decoded), ctx)
    return finalise(identity, draft, ctx, decoded.repairs)


def both_ways(identity: Identity, body: bytes) -> tuple[AsicReading, AsicReading]:
    typed = plan_join(DIALECTS[identity.firmware].poll_commands, RECORDS_READ)
    assert typed.typed is not None
    return reading_of(identity, typed, body), reading_of(identity, typed._replace(typed=None), body)


@pytest.mark.parametrize("persona", sorted(MODEL_OF))
async def test_each_simulated_firmware_reads_the_same_through_the_typed_join(persona: str) -> None:
    miner = SimulatedMiner(MinerSpec(persona, MODEL_OF[persona], port=0, seed=7))
    await miner.start()
    try:
        _dialect, identity = await detect(miner.host, miner.port, timeout_s=5.0)
        plan = plan_join(DIALECTS[identity.firmware].poll_commands)
        body = await fetch(miner.host, miner.port, plan.payload)
    finally:
        await miner.stop()
    typed, whole = both_ways(identity, body)
    assert typed == whole
    assert typed.pools and typed.boards and typed.hashrate_5s_hs


def fixture_join(name: str, identity: Identity) -> bytes:
    """The fixture's single-command replies as one join reply (one-reply lists, §1)."""
    raw: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    commands = DIALECTS[identity.firmware].poll_commands
    return json.dumps({c: [raw[c]] for c in commands if c in raw} | {"id": 1}).encode()


FIXTURE_FIRMWARE = {
    "antminer_s19jpro": (Firmware.ANTMINER_STOCK, "Antminer S19j Pro"),
    "avalon_1246": (Firmware.AVALON, "AvalonMiner 1246"),
    "braiins_s19jpro": (Firmware.BRAIINS, "Antminer S19j Pro"),
    "cgminer_generic": (Firmware.CGMINER, None),
    "luxos_s19kpro": (Firmware.LUXOS, "Antminer S19k Pro"),
    "vnish_s19xp": (Firmware.VNISH, "Antminer S19 XP"),
    "whatsminer_m50": (Firmware.WHATSMINER, "Whatsminer M50"),
}


def identity_of(firmware: Firmware, model: str | None) -> Identity:
    return Identity(firmware=firmware, make=DIALECTS[firmware].make, model=model)


@pytest.mark.parametrize("name", sorted(FIXTURE_FIRMWARE))
def test_each_captured_fixture_reads_the_same_through_the_typed_join(name: str) -> None:
    identity = identity_of(*FIXTURE_FIRMWARE[name])
    body = fixture_join(name, identity)
    typed, whole = both_ways(identity, body)
    assert typed == whole
    assert typed.pools


def test_the_typed_join_skips_the_pool_keys_no_one_reads() -> None:
    identity = identity_of(*FIXTURE_FIRMWARE["antminer_s19jpro"])
    plan = plan_join(DIALECTS[identity.firmware].poll_commands, RECORDS_READ)
    decoded = decode(fixture_join("antminer_s19jpro", identity), plan.typed)
    pool = decoded.obj["pools"][0]["POOLS"][0]
    assert set(pool) <= set(POOL_KEYS) and "URL" in pool and "Difficulty Accepted" not in pool
    assert len(decoded.obj["stats"][0]["STATS"][1]) > 50  # sections no one declared: whole


@pytest.mark.parametrize(
    "reshape",
    [
        lambda pools: pools["POOLS"].append("not a record"),  # skipped by the parser
        lambda pools: pools.update(POOLS=pools["POOLS"][0]),  # one record, not a list
        lambda pools: pools.update(STATUS="S"),  # Whatsminer's flat status (Q12)
    ],
)
def test_replies_of_other_shapes_read_the_same(reshape: Any) -> None:
    identity = identity_of(*FIXTURE_FIRMWARE["antminer_s19jpro"])
    join = json.loads(fixture_join("antminer_s19jpro", identity))
    reshape(join["pools"][0])
    typed, whole = both_ways(identity, json.dumps(join).encode())
    assert typed == whole
    assert typed.pools
