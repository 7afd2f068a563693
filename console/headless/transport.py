"""The MQTT transport: the only module that imports aiomqtt (and, through it, paho-mqtt).

`MqttTransport.run()` keeps one connection to the broker for as long as it runs:

* connects with a stable client id, user name and password, TLS when configured, MQTT v5
  (falling back to 3.1.1 once if the broker refuses v5), a clean session (a command sent while
  the bridge was away must not run minutes later), and a retained last will `offline` on the
  bridge availability topic;
* on every connect publishes retained `online` there, (re)subscribes, runs the owner's
  `on_connect` hook (which re-publishes discovery and every current state), and only then
  lets `send` through;
* when the connection drops, retries with capped exponential back-off and jitter, forever,
  logging why; nothing above it sees an exception except `TransportDown` from `send`;
* `stop()` publishes retained `offline` itself and disconnects cleanly: a clean disconnect
  discards the will, so without this a graceful shutdown would leave `online` behind.

Speed. Per QoS 0 message, aiomqtt's `publish` waits for the event loop to write it, and
paho (under it) builds an MQTTMessageInfo with a lock, writes each packet with its own
`send()` call, and, for MQTT v5, builds a ReasonCode and a Properties object to report that
the write happened: about 120 µs of CPU per message, which caps a bridge near 5-8k states/s.
So QoS 0 telemetry takes a shorter road: `encode_publish` builds the PUBLISH packets here
(fixed header, topic, empty v5 properties, payload: a QoS 0 PUBLISH has nothing else), and a
whole chunk of them goes into paho's output queue as one block (`Client._packet_queue`, with
a command code paho only writes, never interprets), so paho writes it in one or a few
`send()` calls, in order with everything else it sends (pings, QoS 1 publishes, acks).
`send` then waits until paho's buffer has reached the socket before taking more, so a slow
broker backs up into the `Outbox` (where state coalesces), not into memory here. QoS 1
messages go through paho's `publish` (aiomqtt's adds an Event, a pending-call entry and a
timeout task to each) and `send` waits for all their acknowledgements at once. If a paho
release lacks `_packet_queue`, QoS 0 falls back to paho's `publish` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_ERR_SUCCESS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from console.headless.commands import Inbound
from console.headless.outbox import Outgoing

log = logging.getLogger("hashpivot.mqtt")

OFFLINE: Final = b"offline"
ONLINE: Final = b"online"
ACK_TIMEOUT_S: Final = 10.0
"""How long a QoS 1 publish may wait for the broker's acknowledgement."""
INCOMING_QUEUE: Final = 10_000
"""Inbound messages buffered at most (commands, the inventory, HA's status)."""
MAX_INFLIGHT: Final = 100
"""QoS 1 messages awaiting their acknowledgement at once. paho's default, 20, makes the
20,000 availability and discovery messages of a 10,000-device reconnect wait on round trips.
paho walks its in-flight list on every acknowledgement, so a very large window costs CPU
(profiled with bench/mqtt.py: at 1,000, 1.6 s of an 11 s connect); 100 and 1,000 gave the same
connect time within the noise of a shared machine."""
_RAW: Final = 0x00
"""Command code of a block of ready-made packets in paho's output queue: not PUBLISH and not
DISCONNECT, the two codes paho acts on after writing, so it only writes the bytes."""

_UNSUPPORTED_PROTOCOL: Final = frozenset({1, 132})
"""CONNACK codes meaning "not this protocol version": 1 in MQTT 3.1.1, 0x84 in MQTT 5."""


class TransportDown(ConnectionError):
    """No connection to the broker right now; the caller keeps the messages for later."""


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    ca_file: str | None = None
    """CA bundle that signed the broker's certificate; None: the system's trusted CAs."""
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    """Skip certificate and host name verification (only when the config says so)."""


@dataclass(frozen=True, kw_only=True)
class BrokerSettings:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    mqtt5: bool = True
    """Try MQTT 5 first (falling back to 3.1.1 if refused); False: MQTT 3.1.1 only."""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    connect_timeout_s: float = 10.0


def reconnect_delay_s(failures: int, min_s: float, max_s: float, rand: float) -> float:
    """Seconds before the next attempt after `failures` consecutive failures.

    Doubles from `min_s` up to `max_s`; `rand` in [0, 1) spreads it over the upper half
    ("equal jitter"), so bridges that lost one broker together do not return in lock-step."""
    ceiling: float = min(max_s, min_s * 2.0 ** min(failures, 32))
    return ceiling / 2 + rand * ceiling / 2


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """The TLS context for the broker; raises OSError / ssl.SSLError for unreadable files."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _remaining_length(n: int) -> bytes:
    """MQTT's variable-length integer (1-4 bytes, 7 bits each, high bit = more)."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def topic_header(topic: str, v5: bool) -> bytes:
    """The variable header of a QoS 0 PUBLISH to `topic`: the UTF-8 topic with its 2-byte
    length, then (MQTT 5) an empty property list."""
    name = topic.encode()
    if len(name) > 0xFFFF:
        raise ValueError(f"topic longer than MQTT allows: {topic[:80]}...")
    return len(name).to_bytes(2, "big") + name + (b"\x00" if v5 else b"")


def fixed_header(retain: bool, remaining: int) -> bytes:
    """The fixed header of a QoS 0 PUBLISH whose variable header and payload are `remaining`
    bytes long (the one- and two-byte lengths, nearly every device document, computed
    directly)."""
    first = 0x31 if retain else 0x30
    if remaining < 0x80:
        return bytes((first, remaining))
    if remaining < 0x4000:
        return bytes((first, remaining & 0x7F | 0x80, remaining >> 7))
    return bytes((first,)) + _remaining_length(remaining)


def encode_publish(header: bytes, payload: bytes, retain: bool) -> bytes:
    """One QoS 0 PUBLISH packet (MQTT 3.1.1 §3.3 / MQTT 5 §3.3), `header` from
    `topic_header`. (`send` joins the same pieces for a whole block at once, so each payload
    is copied once.)"""
    return b"".join((fixed_header(retain, len(header) + len(payload)), header, payload))


def _inbound(message: aiomqtt.Message) -> Inbound:
    props = message.properties
    response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
    correlation = getattr(props, "CorrelationData", None) if props is not None else None
    return Inbound(
        topic=message.topic.value,
        payload=bytes(message.payload),
        response_topic=response_topic if isinstance(response_topic, str) else None,
        correlation_data=bytes(correlation) if isinstance(correlation, bytes | bytearray) else None,
        retain=message.retain,
    )


class MqttTransport:
    """One broker connection, kept up until `stop()`."""

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        availability_topic: str,
        subscriptions: Sequence[str],
        on_connect: Callable[[], Awaitable[None]],
        on_message: Callable[[Inbound], None],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.broker = broker
        self.availability_topic = availability_topic
        self.subscriptions = tuple(subscriptions)
        self._on_connect = on_connect
        self._on_message = on_message
        self._rand = rand
        self._tls = tls_context(broker.tls) if broker.tls is not None else None
        self._v5 = broker.mqtt5
        self._client: aiomqtt.Client | None = None
        self._headers: dict[str, bytes] = {}  # topic → encoded PUBLISH variable header
        self._up = asyncio.Event()  # ready: connected and the on_connect hook has run
        self._open = False  # connected (CONNACK received), hook or not
        self._stopping = asyncio.Event()
        self.connects = 0
        self.published = 0
        self.last_error: str | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a session with the broker is open now."""
        return self._open

    @property
    def protocol(self) -> str:
        return "5" if self._v5 else "3.1.1"

    async def wait_connected(self) -> None:
        """Return once connected and the `on_connect` hook has run (`send` works then)."""
        await self._up.wait()

    def _live_client(self) -> aiomqtt.Client:
        client = self._client
        if client is None or not self._up.is_set():
            raise TransportDown("not connected to the broker")
        return client

    # -- connection loop -------------------------------------------------------------------

    def _new_client(self) -> aiomqtt.Client:
        b = self.broker
        will = aiomqtt.Will(self.availability_topic, OFFLINE, qos=1, retain=True)
        options: dict[str, Any] = (
            {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": True}
            if self._v5
            else {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": True}
        )
        return aiomqtt.Client(
            b.host,
            b.port,
            identifier=b.client_id,
            username=b.username,
            password=b.password,
            will=will,
            keepalive=b.keepalive_s,
            timeout=b.connect_timeout_s,
            tls_context=self._tls,
            max_queued_incoming_messages=INCOMING_QUEUE,
            max_inflight_messages=MAX_INFLIGHT,
            **options,
        )

    async def run(self) -> None:
        """Stay connected until `stop()`; returns after the clean disconnect."""
        failures = 0
        where = f"{self.broker.host}:{self.broker.port}"
        while not self._stopping.is_set():
            client = self._new_client()
            try:
                async with client:
                    failures = 0
                    self.last_error = None
                    await self._session(client)
            except aiomqtt.MqttCodeError as exc:
                code = getattr(exc.rc, "value", exc.rc)
                if (
                    self._v5
                    and isinstance(exc, MqttConnectError)
                    and (code in _UNSUPPORTED_PROTOCOL)
                ):
                    log.warning("broker %s refuses MQTT 5; using MQTT 3.1.1", where)
                    self._v5 = False
                    self._headers.clear()
                    continue
                self.last_error = str(exc)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
                if self._tls is not None and "timed out" in self.last_error:
                    # A TLS 1.3 broker that wants a client certificate completes the
                    # handshake, then drops us: all we see is no CONNACK.
                    self.last_error += (
                        " (over TLS; if the broker requires a client certificate, set "
                        "cert_file and key_file in [mqtt])"
                    )
            finally:
                self._up.clear()
                self._client = None
            if self._stopping.is_set():
                break
            delay = reconnect_delay_s(
                failures, self.broker.reconnect_min_s, self.broker.reconnect_max_s, self._rand()
            )
            failures += 1
            log.warning("MQTT broker %s: %s; retrying in %.1f s", where, self.last_error, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _session(self, client: aiomqtt.Client) -> None:
        client.pending_calls_threshold = 1_000_000  # QoS 1 bursts are expected, not a warning
        self._client = client
        await client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        for topic in self.subscriptions:
            granted = await client.subscribe(topic, qos=1)
            if any(getattr(code, "value", code) >= 0x80 for code in granted):
                log.warning("broker refused the subscription to %s (check its ACL)", topic)
        self.connects += 1
        self._open = True
        log.info(
            "connected to MQTT broker %s:%d as %s (MQTT %s)",
            self.broker.host,
            self.broker.port,
            self.broker.client_id,
            self.protocol,
        )
        reader = asyncio.create_task(self._read(client))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await self._on_connect()
            self._up.set()
            await asyncio.wait({reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                reader.result()  # the disconnect, as MqttError
                raise aiomqtt.MqttError("connection closed")
            # Graceful stop: say so before the clean disconnect discards the will.
            self._up.clear()
            await client.publish(
                self.availability_topic, OFFLINE, qos=1, retain=True, timeout=ACK_TIMEOUT_S
            )
        finally:
            self._up.clear()
            self._open = False
            reader.cancel()
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                self._on_message(_inbound(message))
            except Exception:  # one bad message must not take the connection down
                log.exception("error handling MQTT message on %s", message.topic.value)

    async def stop(self) -> None:
        """Ask `run()` to publish `offline`, disconnect cleanly and return."""
        self._stopping.set()

    # -- traffic ---------------------------------------------------------------------------

    async def subscribe(self, topic: str) -> None:
        client = self._client
        if client is None:
            raise TransportDown("not connected to the broker")
        await client.subscribe(topic, qos=1)

    async def unsubscribe(self, topic: str) -> None:
        client = self._client
        if client is None:
            raise TransportDown("not connected to the broker")
        await client.unsubscribe(topic)

    def _properties(self, message: Outgoing) -> Properties | None:
        if message.correlation_data is None or not self._v5:
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = message.correlation_data
        return props

    async def send(self, messages: Sequence[Outgoing]) -> None:
        """Hand `messages` to the broker and wait until the QoS 1 ones are acknowledged and
        the rest is written; raises `TransportDown` if the connection is (or goes) away, in
        which case any of them may or may not have been delivered.

        Order: the QoS 0 messages of the call go out first, as one block, then the QoS 1
        messages in their order (the outbox puts events and replies, all QoS 1, first)."""
        client = self._live_client()
        paho = client._client  # see the module docstring: the fast paths
        queue_raw = getattr(paho, "_packet_queue", None)
        block: list[bytes] = []
        acked: list[Any] = []
        later: list[Outgoing] = []
        try:
            for message in messages:
                if message.qos == 0 and message.correlation_data is None and queue_raw:
                    header = self._headers.get(message.topic)
                    if header is None:
                        header = self._headers[message.topic] = topic_header(
                            message.topic, self._v5
                        )
                    payload = message.payload
                    block += (
                        fixed_header(message.retain, len(header) + len(payload)),
                        header,
                        payload,
                    )
                else:
                    later.append(message)
            if block and queue_raw is not None:
                if paho.socket() is None:
                    raise TransportDown("not connected to the broker")
                queue_raw(_RAW, b"".join(block), 0, 0)
            for message in later:
                # paho's publish, not aiomqtt's: aiomqtt would add an Event, a pending-call
                # entry and a timeout task per message, which made a reconnect's 20,000 QoS 1
                # availability and discovery messages take seconds. The acknowledgements are
                # awaited below, all at once.
                info = paho.publish(
                    message.topic,
                    message.payload,
                    message.qos,
                    message.retain,
                    self._properties(message),
                )
                if info.rc != MQTT_ERR_SUCCESS:
                    raise TransportDown(f"publish refused by the client (rc {info.rc})")
                if message.qos:
                    acked.append(info)
            await self._acknowledged(client, acked)
            await self._drain(client)
        except TransportDown:
            # Not ready until the reader has seen the disconnect and we have reconnected:
            # otherwise the caller would retry at once, in a loop that never yields.
            self._up.clear()
            raise
        self.published += len(messages)

    async def _acknowledged(self, client: aiomqtt.Client, infos: Sequence[Any]) -> None:
        """Wait until paho has the broker's acknowledgement of every one of `infos`."""
        if not infos:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_TIMEOUT_S
        spins = 0
        for info in infos:  # the broker acknowledges in order: mostly only the first waits
            while not info.is_published():
                if self._client is not client or not self._up.is_set():
                    raise TransportDown("connection lost while waiting for acknowledgements")
                if loop.time() > deadline:
                    raise TransportDown(
                        f"the broker did not acknowledge within {ACK_TIMEOUT_S:g} s"
                    )
                await asyncio.sleep(0 if spins < 20 else 0.001)
                spins += 1

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Wait until paho's output buffer has been written to the socket."""
        paho = client._client
        spins = 0
        while paho.want_write():
            # The buffer of a dead connection never empties: stop when this connection is no
            # longer the live one (even if a new one is up already).
            if self._client is not client or not self._up.is_set():
                raise TransportDown("connection lost while sending")
            # Yield at once a few times (the writer usually empties it in one loop turn),
            # then sleep a little: a broker that reads slowly should not cost a busy loop.
            await asyncio.sleep(0 if spins < 20 else 0.002)
            spins += 1
