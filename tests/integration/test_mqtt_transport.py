"""The transport's own packet path against a real mosquitto: QoS 0 PUBLISH packets built by
`encode_publish` (every remaining-length size class, MQTT 5 and 3.1.1) and QoS 1 messages
through paho, all received intact, retained where asked, in one connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from console.headless.outbox import Outgoing
from console.headless.transport import (
    BrokerSettings,
    MqttTransport,
    _remaining_length,
    encode_publish,
    fixed_header,
    topic_header,
)
from tests.mqtt_broker import Mosquitto, Subscriber, broker, make_broker, retained

__all__ = ["broker", "make_broker"]

# Remaining-length boundaries: 1, 2, 3 and 4 bytes of length (MQTT §1.5.5).
SIZES = (0, 1, 100, 127, 128, 16_000, 16_383, 16_384, 300_000, 2_097_152)


def test_encode_publish_matches_the_spec() -> None:
    header = topic_header("a/b", v5=True)
    assert header == b"\x00\x03a/b\x00"
    assert encode_publish(header, b"hi", retain=True) == b"\x31\x08\x00\x03a/b\x00hi"
    assert topic_header("a/b", v5=False) == b"\x00\x03a/b"
    assert encode_publish(topic_header("t", False), b"x" * 200, retain=False)[:3] == (
        b"\x30\xcb\x01"  # 3 + 200 = 203 = 0x4b | 0x80, then 1
    )
    with pytest.raises(ValueError):
        topic_header("x" * 70_000, v5=True)
    # The direct one- and two-byte lengths agree with the general encoding at every boundary.
    for n in (0, 1, 127, 128, 129, 2_700, 16_383, 16_384, 2_097_151, 2_097_152):
        assert fixed_header(True, n) == b"\x31" + _remaining_length(n)
        assert fixed_header(False, n) == b"\x30" + _remaining_length(n)


async def nothing() -> None:
    return None


@pytest.mark.parametrize("mqtt5", [True, False], ids=["mqtt5", "mqtt311"])
async def test_qos0_packets_and_qos1_messages_arrive_intact(broker: Mosquitto, mqtt5: bool) -> None:
    transport = MqttTransport(
        BrokerSettings(host=broker.host, port=broker.port, client_id="pkt", mqtt5=mqtt5),
        availability_topic="pkt/availability",
        subscriptions=[],
        on_connect=nothing,
        on_message=lambda _m: None,
    )
    task = asyncio.create_task(transport.run())
    try:
        await asyncio.wait_for(transport.wait_connected(), 15)
        assert transport.protocol == ("5" if mqtt5 else "3.1.1")
        messages = [
            Outgoing(
                f"pkt/size/{size}", bytes(range(256)) * (size // 256) + b"z" * (size % 256), 0, True
            )
            for size in SIZES
        ]
        messages += [Outgoing(f"pkt/q1/{n}", f"q1-{n}".encode(), 1, n % 2 == 0) for n in range(50)]
        messages += [Outgoing("pkt/live", str(n).encode(), 0, False) for n in range(500)]
        async with Subscriber(broker, "pkt/#") as sub:
            await transport.send(messages)
            await sub.wait_for(lambda: len(sub.messages) >= len(messages) + 1, what="all")
            got = {}
            for m in sub.messages:
                got.setdefault(m.topic, []).append(m.payload)
        for message in messages[: len(SIZES)]:
            assert got[message.topic] == [message.payload], message.topic
        assert [int(p) for p in got["pkt/live"]] == list(range(500))  # in order, none lost
        assert all(got[f"pkt/q1/{n}"] == [f"q1-{n}".encode()] for n in range(50))
        assert transport.published == len(messages)
        kept = {m.topic for m in await retained(broker, "pkt/#")}
        sized = {m.topic for m in messages[: len(SIZES)]}
        assert sized - kept == {"pkt/size/0"}  # a retained empty payload clears, by design
        assert "pkt/q1/0" in kept and "pkt/q1/1" not in kept and "pkt/live" not in kept
    finally:
        await transport.stop()
        await asyncio.wait_for(task, 15)


async def test_send_while_the_broker_is_away_raises_and_recovers(
    make_broker: Callable[..., Mosquitto],
) -> None:
    from console.headless.transport import TransportDown

    server = make_broker()
    transport = MqttTransport(
        BrokerSettings(
            host=server.host,
            port=server.port,
            client_id="away",
            reconnect_min_s=0.1,
            reconnect_max_s=0.3,
        ),
        availability_topic="away/availability",
        subscriptions=[],
        on_connect=nothing,
        on_message=lambda _m: None,
    )
    task = asyncio.create_task(transport.run())
    try:
        await asyncio.wait_for(transport.wait_connected(), 15)
        server.stop()
        with pytest.raises(TransportDown):
            for _ in range(200):  # until the transport has noticed
                await transport.send([Outgoing("away/x", b"1", 1, True)])
                await asyncio.sleep(0.05)
        assert not transport.connected
        server.start()
        await asyncio.wait_for(transport.wait_connected(), 15)
        await transport.send([Outgoing("away/x", b"2", 1, True)])
        [kept] = await retained(server, "away/x")
        assert kept.payload == b"2" and transport.connects == 2
    finally:
        await transport.stop()
        await asyncio.wait_for(task, 15)
