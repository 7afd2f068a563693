"""Commands behind a real mosquitto password file and ACL: only an operator the ACL lets
write `cmd/...` can command a miner, and the audit log names the verified user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from console.config import load_config
from console.headless.service import Bridge
from console.headless.settings import resolve
from console.site import Site
from simulators.asic import AsicFleet, MinerSpec
from tests.mqtt_broker import Mosquitto, Subscriber, make_broker

__all__ = ["make_broker"]

USERS = {"bridge-mq": "b-secret", "alice": "a-secret", "viewer": "v-secret"}


def acl(prefix: str) -> str:
    """The docs/mqtt.md example, for one site: the bridge owns its tree, operators may write
    commands only under their own name, viewers only read."""
    base = f"{prefix}/v1/mq"
    return (
        "user bridge-mq\n"
        f"topic readwrite {base}/#\n"
        "topic readwrite homeassistant/#\n"
        "\n"
        "user alice\n"
        f"topic read {prefix}/#\n"
        f"topic write {base}/cmd/+/alice\n"
        "\n"
        "user viewer\n"
        f"topic read {prefix}/#\n"
    )


@pytest.fixture
async def fleet() -> AsyncIterator[AsicFleet]:
    spec = MinerSpec(persona="luxos", model="Antminer S19j Pro", port=0, seed=7, ramp_s=0.5)
    async with AsicFleet([spec]) as running:
        yield running


async def command(broker: Mosquitto, user: str, topic: str, body: dict[str, object]) -> None:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=USERS[user],
        identifier=f"cli-{user}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        # An ACL-denied QoS 1 publish raises nothing: the broker acknowledges and drops it.
        await client.publish(topic, json.dumps(body).encode(), qos=1)


async def test_only_an_operator_the_acl_allows_can_command(
    tmp_path: Path, fleet: AsicFleet, make_broker: Callable[..., Mosquitto]
) -> None:
    prefix = "hp"
    broker = make_broker(users=USERS, acl=acl(prefix))
    miner = fleet.miners[0]
    path = tmp_path / "site.toml"
    path.write_text(
        f'[site]\nname = "mq"\nstate_dir = "{tmp_path / "state"}"\n'
        "[poller]\nasic_poll_interval_s = 0.3\n"
        f'[mqtt]\nurl = "{broker.url}/{prefix}"\nusername = "bridge-mq"\n'
        'password_env = "TEST_BRIDGE_PASS"\ncommands = true\npublish_interval_s = 0.1\n'
        f'[[asics]]\nname = "lux"\nhost = "{miner.host}"\nport = {miner.port}\n'
        "privileged = true\n"
    )
    config = load_config(path)
    base = f"{prefix}/v1/mq"
    async with Site(config) as site:
        bridge = Bridge(site, resolve(config, env={"TEST_BRIDGE_PASS": "b-secret"}))
        stop = asyncio.Event()
        task = asyncio.create_task(bridge.run(stop))
        try:
            async with Subscriber(
                broker, f"{base}/#", username="viewer", password=USERS["viewer"]
            ) as sub:
                await sub.wait_for(
                    lambda: (
                        sub.last(f"{base}/bridge/availability") is not None
                        and bridge.transport.wait_connected is not None
                        and bridge.transport.connected
                    ),
                    what="the bridge online",
                )
                await asyncio.wait_for(bridge.transport.wait_connected(), 15)
                # A viewer cannot command, under its own name or without one; nor can an
                # operator write outside her own name.
                curtail = {"device": "lux", "actor": "alice"}
                await command(
                    broker,
                    "viewer",
                    f"{base}/cmd/asic.curtail/viewer",
                    {**curtail, "request_id": "v1"},
                )
                await command(
                    broker, "viewer", f"{base}/cmd/asic.curtail", {**curtail, "request_id": "v2"}
                )
                await command(
                    broker, "alice", f"{base}/cmd/asic.curtail", {**curtail, "request_id": "a0"}
                )
                # The operator, under her own name: accepted, and she is the actor.
                await command(
                    broker,
                    "alice",
                    f"{base}/cmd/asic.curtail/alice",
                    {"device": "lux", "request_id": "a1", "reason": "peak"},
                )
                await sub.wait_for(lambda: sub.on(f"{base}/reply/a1"), what="alice's reply")
                reply = json.loads(sub.on(f"{base}/reply/a1")[0].payload)
                assert reply["ok"] is True, reply
                # Messages reach the bridge in order: had any denied one got through, it
                # would have been counted before alice's.
                assert bridge.commands.received == 1
                assert not any(sub.on(f"{base}/reply/{rid}") for rid in ("v1", "v2", "a0"))
            entries = await site.audit.recent()
            assert [(e.actor, e.request_id, e.reason) for _, e in entries] == [
                ("alice", "a1", "peak")
            ]
            assert miner.truth.state == "curtailed"
            log = broker.log()
            assert log.count("Denied PUBLISH from cli-viewer") == 2
            assert log.count("Denied PUBLISH from cli-alice") == 1
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def test_a_wrong_password_is_retried_not_fatal(
    tmp_path: Path, make_broker: Callable[..., Mosquitto]
) -> None:
    from console.headless.transport import BrokerSettings, MqttTransport

    broker = make_broker(users=USERS, acl=acl("hp"))

    async def nothing() -> None:
        return None

    transport = MqttTransport(
        BrokerSettings(
            host=broker.host,
            port=broker.port,
            client_id="wrong-pass",
            username="bridge-mq",
            password="nope",
            reconnect_min_s=0.1,
            reconnect_max_s=0.2,
        ),
        availability_topic="hp/v1/mq/bridge/availability",
        subscriptions=[],
        on_connect=nothing,
        on_message=lambda _m: None,
    )
    task = asyncio.create_task(transport.run())
    try:
        for _ in range(200):
            if transport.last_error:
                break
            await asyncio.sleep(0.05)
        assert transport.last_error is not None
        assert "username or password" in transport.last_error.lower() or (
            "not authori" in transport.last_error.lower()
        ), transport.last_error
        assert not task.done() and not transport.connected
    finally:
        await transport.stop()
        await asyncio.wait_for(task, 15)
