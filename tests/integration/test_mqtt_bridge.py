"""The headless bridge against a real mosquitto and real simulated miners over real sockets:
retained state, Home Assistant discovery, broker restarts, back-pressure, commands and
replies, removal of devices that left the config, graceful shutdown, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from console.config import load_config
from console.headless.service import Bridge
from console.headless.settings import resolve
from console.headless.topics import ha_object_id
from console.headless.transport import BrokerSettings, MqttTransport, TlsSettings
from console.site import Site
from simulators.asic import AsicFleet, MinerSpec
from tests.ha_discovery import render, validate
from tests.mqtt_broker import (
    Mosquitto,
    Subscriber,
    broker,
    make_broker,
    make_tls_files,
    publish,
    retained,
    unique_prefix,
)

__all__ = ["broker", "make_broker"]  # fixtures used by the tests below

NAMES = ("lux", "stock", "avalon")
SPECS = (
    MinerSpec(persona="luxos", model="Antminer S19j Pro", port=0, seed=1, ramp_s=0.5),
    MinerSpec(persona="antminer_stock", model="Antminer S21", port=0, seed=2),
    MinerSpec(persona="avalon", model="AvalonMiner 1246", port=0, seed=3),
)


@pytest.fixture
async def fleet() -> AsyncIterator[AsicFleet]:
    async with AsicFleet(list(SPECS)) as running:
        yield running


@dataclass
class Running:
    bridge: Bridge
    site: Site
    stop: asyncio.Event
    task: asyncio.Task[None]
    prefix: str

    def topic(self, rest: str) -> str:
        return f"{self.prefix}/v1/mq/{rest}"


def write_config(
    tmp_path: Path,
    fleet: AsicFleet,
    broker: Mosquitto,
    prefix: str,
    *,
    names: tuple[str, ...] = NAMES,
    mqtt: str = "commands = true\n",
) -> Path:
    text = (
        f'[site]\nname = "mq"\nstate_dir = "{tmp_path / "state"}"\n'
        "[poller]\nasic_poll_interval_s = 0.3\nasic_timeout_s = 1.0\n"
        f'[mqtt]\nurl = "{broker.url}/{prefix}"\npublish_interval_s = 0.1\n'
        f"reconnect_max_s = 1\n{mqtt}"
    )
    for name, miner in zip(NAMES, fleet.miners, strict=True):
        if name in names:
            text += (
                f'[[asics]]\nname = "{name}"\nhost = "{miner.host}"\nport = {miner.port}\n'
                f"privileged = {'true' if name == 'lux' else 'false'}\n"
            )
    path = tmp_path / f"site-{prefix}-{len(names)}.toml"
    path.write_text(text)
    return path


@asynccontextmanager
async def bridge_running(config_path: Path, prefix: str) -> AsyncIterator[Running]:
    config = load_config(config_path)
    async with Site(config) as site:
        bridge = Bridge(site, resolve(config, env={}))
        stop = asyncio.Event()
        task = asyncio.create_task(bridge.run(stop))
        running = Running(bridge, site, stop, task, prefix)
        try:
            yield running
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return unique_prefix(request.node.name)


async def settled(sub: Subscriber, run: Running, names: tuple[str, ...] = NAMES) -> None:
    """Wait until this bridge (not a previous run's retained messages) has published a fresh
    state of every device and a site state saying it is connected."""

    def live(topic: str) -> dict[str, object] | None:
        found = [m for m in sub.on(run.topic(topic)) if not m.retain]
        return json.loads(found[-1].payload) if found else None

    def fresh() -> bool:
        site = live("site/state")
        if site is None or not site["bridge"]["connected"]:  # type: ignore[index]
            return False
        for name in names:
            state = live(f"device/{name}/state")
            if state is None or state["freshness"] != "fresh":
                return False
        return True

    await sub.wait_for(fresh, what="a fresh state of every device")


def by_topic(messages: list[object]) -> dict[str, bytes]:
    return {m.topic: m.payload for m in messages}  # type: ignore[attr-defined]


async def test_states_are_retained_and_discovery_is_valid_for_home_assistant(
    tmp_path: Path, fleet: AsicFleet, broker: Mosquitto, prefix: str
) -> None:
    async with bridge_running(write_config(tmp_path, fleet, broker, prefix), prefix) as run:
        async with Subscriber(broker, f"{prefix}/#") as sub:
            await settled(sub, run)
        # A subscriber that arrives later gets the whole site from the retained messages.
        kept = by_topic(await retained(broker, f"{prefix}/#"))
        assert kept[run.topic("bridge/availability")] == b"online"
        for name in NAMES:
            state = json.loads(kept[run.topic(f"device/{name}/state")])
            assert state["schema"] == "hashpivot.mqtt.device/1" and state["device_id"] == name
            assert state["summary"]["hashrate_hs"] > 0 and state["reading"] is not None
            assert kept[run.topic(f"device/{name}/availability")] == b"online"
        site = json.loads(kept[run.topic("site/state")])
        assert site["totals"]["devices"] == 3 and site["bridge"]["connected"] is True
        assert site["host"] is not None  # the snapshot's host reading, published as is
        assert json.loads(kept[run.topic("jobs/state")])["jobs"] == []
        inventory = json.loads(kept[run.topic("site/devices")])
        assert [d["id"] for d in inventory["devices"]] == list(NAMES)

        discovery = await retained(broker, "homeassistant/device/+/config")
        assert len(discovery) == 3
        for message in discovery:
            doc = validate(message.topic, message.payload)
            name = doc["device"]["name"]
            assert doc["object_id"] == ha_object_id("mq", name)
            state = json.loads(kept[run.topic(f"device/{name}/state")])
            for component in doc["components"].values():
                assert component["state_topic"] == run.topic(f"device/{name}/state")
                value = render(component["value_template"], value_json=state)
                assert value == "None" or float(value) >= 0, (name, value)
            assert float(render(doc["components"]["power"]["value_template"], value_json=state))


async def test_broker_restart_reconnects_republishes_and_coalesces_meanwhile(
    tmp_path: Path, fleet: AsicFleet, broker: Mosquitto, prefix: str
) -> None:
    async with bridge_running(write_config(tmp_path, fleet, broker, prefix), prefix) as run:
        async with Subscriber(broker, f"{prefix}/#") as sub:
            await settled(sub, run)
        assert run.bridge.transport.connects == 1
        broker.stop()  # retained messages die with it (persistence off)
        await asyncio.sleep(0.3)
        coalesced_before = run.bridge.outbox.coalesced
        # The site keeps polling while the broker is away: only the latest state per device
        # waits, however long the outage.
        waiting = len(run.bridge.outbox)
        await asyncio.sleep(1.5)
        assert not run.bridge.transport.connected and not run.task.done()
        assert run.bridge.outbox.coalesced > coalesced_before
        assert len(run.bridge.outbox) <= max(waiting, 20)
        broker.start()
        async with Subscriber(broker, f"{prefix}/#", "homeassistant/#") as sub:
            await sub.wait_for(
                lambda: (
                    sub.last(run.topic("bridge/availability")) is not None
                    and len(sub.on(run.topic("device/avalon/availability"))) > 0
                    and len([m for m in sub.messages if m.topic.startswith("homeassistant/")]) == 3
                ),
                what="birth, availability and discovery after the restart",
            )
            await settled(sub, run)
            site = json.loads(sub.on(run.topic("site/state"))[-1].payload)
        assert run.bridge.transport.connects == 2 and not run.task.done()
        assert site["bridge"]["connects"] == 2 and site["bridge"]["coalesced"] > 0


async def test_commands_reply_ok_or_with_a_clear_error(
    tmp_path: Path, fleet: AsicFleet, broker: Mosquitto, prefix: str
) -> None:
    async with bridge_running(write_config(tmp_path, fleet, broker, prefix), prefix) as run:
        async with Subscriber(broker, f"{prefix}/#", "me/replies") as sub:
            await settled(sub, run)
            await publish(
                broker,
                run.topic("cmd/asic.curtail"),
                b'{"device": "lux", "x": 1, "request_id": "bad-1"}',
            )
            await publish(broker, run.topic("cmd/asic.curtail"), b"{oops")
            await sub.wait_for(lambda: sub.on(run.topic("reply/bad-1")), what="reply bad-1")
            bad = json.loads(sub.on(run.topic("reply/bad-1"))[0].payload)
            assert bad["ok"] is False and bad["code"] == "invalid"
            assert "unknown field `x`" in bad["message"]
            await sub.wait_for(
                lambda: any("/reply/auto-" in m.topic for m in sub.messages), what="auto reply"
            )
            assert not sub.on(run.topic("reply/bad-1"))[0].retain

            # MQTT v5 request/response: the reply also goes to the response topic, with the
            # correlation data, which is the request id.
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = "me/replies"
            props.CorrelationData = b"curtail-7"
            await publish(
                broker,
                run.topic("cmd/asic.curtail"),
                json.dumps({"device": "lux", "actor": "ops", "reason": "peak price"}).encode(),
                properties=props,
            )
            await sub.wait_for(lambda: sub.on("me/replies"), what="v5 reply")
            reply = sub.on("me/replies")[0]
            assert reply.properties.CorrelationData == b"curtail-7"  # type: ignore[attr-defined]
            body = json.loads(reply.payload)
            assert body["ok"] is True and body["request_id"] == "curtail-7", body
            assert json.loads(sub.on(run.topic("reply/curtail-7"))[0].payload) == body
            await sub.wait_for(
                lambda: any(
                    json.loads(m.payload)["commanded"] == "curtailed"
                    for m in sub.on(run.topic("device/lux/state"))
                ),
                what="lux commanded curtailed in its state",
            )
            await sub.wait_for(lambda: sub.on(run.topic("events/action")), what="action event")
            action = json.loads(sub.on(run.topic("events/action"))[0].payload)
            assert action["actor"] == "ops (unverified)" and action["result"]["ok"]
            await sub.wait_for(
                lambda: sub.on(run.topic("events/device/lux")), what="commanded event"
            )
        assert fleet.miners[0].truth.state == "curtailed"
        [(_, entry)] = await run.site.audit.recent(target="lux")
        assert (entry.origin, entry.actor, entry.reason) == (
            "mqtt",
            "ops (unverified)",
            "peak price",
        )


async def test_commands_are_off_unless_configured(
    tmp_path: Path, fleet: AsicFleet, broker: Mosquitto, prefix: str
) -> None:
    config = write_config(tmp_path, fleet, broker, prefix, mqtt="")
    async with bridge_running(config, prefix) as run:
        async with Subscriber(broker, f"{prefix}/#") as sub:
            await settled(sub, run)
            body = json.dumps({"device": "lux", "request_id": "r-off"}).encode()
            await publish(broker, run.topic("cmd/asic.curtail"), body)
            await sub.wait_for(lambda: sub.on(run.topic("reply/r-off")), what="reply")
            reply = json.loads(sub.on(run.topic("reply/r-off"))[0].payload)
        assert reply["code"] == "disabled" and "commands = true" in reply["message"]
        assert fleet.miners[0].truth.state == "mining"
        assert await run.site.audit.recent() == []


async def test_devices_removed_from_the_config_are_removed_from_the_broker(
    tmp_path: Path, fleet: AsicFleet, broker: Mosquitto, prefix: str
) -> None:
    first = write_config(tmp_path, fleet, broker, prefix)
    async with bridge_running(first, prefix) as run, Subscriber(broker, f"{prefix}/#") as sub:
        await settled(sub, run)
    assert len(await retained(broker, "homeassistant/device/+/config")) == 3

    fewer = write_config(tmp_path, fleet, broker, prefix, names=("lux",))
    async with bridge_running(fewer, prefix) as run:
        async with Subscriber(broker, f"{prefix}/#") as sub:
            await settled(sub, run, ("lux",))
        kept = by_topic(await retained(broker, f"{prefix}/#"))
        assert run.topic("device/lux/state") in kept
        assert not any("/device/stock/" in t or "/device/avalon/" in t for t in kept), kept.keys()
        inventory = json.loads(kept[run.topic("site/devices")])
        assert [d["id"] for d in inventory["devices"]] == ["lux"]
        discovery = await retained(broker, "homeassistant/device/+/config")
        assert [m.topic for m in discovery] == [
            f"homeassistant/device/{ha_object_id('mq', 'lux')}/config"
        ]

    # Discovery switched off: the devices stay, their Home Assistant entries go.
    off = write_config(tmp_path, fleet, broker, prefix, names=("lux",), mqtt="discovery = false\n")
    async with bridge_running(off, prefix) as run:
        async with Subscriber(broker, f"{prefix}/#") as sub:
            await settled(sub, run, ("lux",))
        assert await retained(broker, "homeassistant/device/+/config") == []
        assert run.topic("device/lux/state") in by_topic(await retained(broker, f"{prefix}/#"))


async def test_graceful_shutdown_publishes_offline(
    tmp_path: Path, fleet: AsicFleet, broker: Mosquitto, prefix: str
) -> None:
    availability = f"{prefix}/v1/mq/bridge/availability"
    async with Subscriber(broker, availability) as sub:
        async with bridge_running(write_config(tmp_path, fleet, broker, prefix), prefix) as run:
            await sub.wait_for(lambda: sub.last(availability), what="online")
            assert sub.last(availability).payload == b"online"  # type: ignore[union-attr]
            run.stop.set()
            await asyncio.wait_for(run.task, 30)
        await sub.wait_for(
            lambda: sub.last(availability).payload == b"offline",  # type: ignore[union-attr]
            what="offline on shutdown",
        )
    [kept] = await retained(broker, availability)
    assert kept.payload == b"offline"
    assert "hashpivot-mq" in broker.log() and "disconnected" in broker.log().lower()


# ---- TLS ------------------------------------------------------------------------------------


async def nothing() -> None:
    return None


@pytest.mark.parametrize(
    ("ca", "insecure", "client_cert", "connects", "error"),
    [
        ("ours", False, None, True, ""),
        ("system", False, None, False, "certificate verify failed"),
        ("system", True, None, True, ""),
        ("ours", False, True, True, ""),
        ("ours", False, False, False, "client certificate"),
    ],
    ids=[
        "with-our-ca",
        "unknown-ca-refused",
        "insecure-when-explicit",
        "client-certificate",
        "client-certificate-missing",
    ],
)
async def test_tls(
    tmp_path: Path,
    make_broker: Callable[..., Mosquitto],
    ca: str,
    insecure: bool,
    client_cert: bool | None,
    connects: bool,
    error: str,
) -> None:
    files = make_tls_files(tmp_path)
    tls_broker = make_broker(tls=files, require_client_cert=client_cert is not None)
    transport = MqttTransport(
        BrokerSettings(
            host=tls_broker.host,
            port=tls_broker.port,
            client_id="tls-test",
            tls=TlsSettings(
                ca_file=str(files.ca_file) if ca == "ours" else None,
                cert_file=str(files.client_cert_file) if client_cert else None,
                key_file=str(files.client_key_file) if client_cert else None,
                insecure=insecure,
            ),
            reconnect_min_s=0.1,
            reconnect_max_s=0.2,
            connect_timeout_s=2.0,
        ),
        availability_topic="tls/availability",
        subscriptions=[],
        on_connect=nothing,
        on_message=lambda _m: None,
    )
    task = asyncio.create_task(transport.run())
    try:
        if connects:
            await asyncio.wait_for(transport.wait_connected(), 15)
            context = ssl.create_default_context(cafile=str(files.ca_file))
            context.load_cert_chain(files.client_cert_file, files.client_key_file)
            async with Subscriber(tls_broker, "tls/#", tls_context=context) as sub:
                await sub.wait_for(lambda: sub.last("tls/availability"), what="online over TLS")
        else:
            for _ in range(200):
                if transport.last_error:
                    break
                await asyncio.sleep(0.05)
            assert transport.last_error and error in transport.last_error, transport.last_error
            assert not transport.connected and not task.done()  # still trying, not crashed
    finally:
        await transport.stop()
        await asyncio.wait_for(task, 15)
