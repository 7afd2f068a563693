"""`hashpivot headless`: a running `Site` published to MQTT, and commands taken from it.

`Bridge` wires the parts: the site's snapshots go through the `Publisher` into the `Outbox`;
a pump task moves the outbox to the `MqttTransport` whenever it is connected; inbound command
messages go to the `CommandHandler` (each in its own task, since an action can take seconds)
and every answer goes back out as a reply, plus an event on `events/action`. Two event streams
are forwarded as they come: the workloads' step events (`events/switch`) and the site's alarms
(`events/site`: the site's `EventHub`, plus device lost / back judged here from the snapshots
with the console's own `FreshnessWatch`, as the TUI does).

On every (re)connect, before anything else is sent, the bridge reads the retained inventory
(`site/devices`) left by the previous run, clears the retained topics and Home Assistant
devices of devices that are no longer in the config (or all discovery documents, when
discovery has been turned off), publishes the new inventory, and asks the publisher to
re-publish every retained topic.

`site_bridge` builds the bridge of a `Site` (the GPU side's job queue and step events wired in
when the site has GPUs); `run_headless` is the entry point: it loads nothing Textual, handles
SIGTERM and SIGINT by stopping gracefully (pending messages flushed for up to `FLUSH_S`, then
retained `offline`, then a clean disconnect), and returns the process exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable
from typing import Final

from console.config import SiteConfig
from console.events import FreshnessWatch, SiteEvent
from console.headless.commands import Answer, CommandHandler, Inbound
from console.headless.outbox import Outbox, Outgoing
from console.headless.payloads import (
    ActionEvent,
    BridgeCounters,
    Inventory,
    InventoryEntry,
    JobListing,
    decode_inventory,
    encode,
    no_jobs,
    site_alarm,
    switch_event,
)
from console.headless.publisher import Publisher
from console.headless.settings import BridgeSettings, SettingsError, resolve
from console.headless.topics import Topics, ha_object_id
from console.headless.transport import MqttTransport, TransportDown
from console.site import Site, SiteStartError
from console.workloads.events import EventBus

log = logging.getLogger("hashpivot.headless")

SLICE: Final = 250
"""Changed devices encoded per step of a publish tick, between which the pump may send (and
the rest of the event loop run): ~2-3 ms of encoding at a time."""
CHUNK: Final = 500
"""Messages handed to the transport at once; it drains its buffer between chunks."""
INVENTORY_WAIT_S: Final = 1.0
"""How long to wait, after subscribing, for the previous run's retained inventory. The broker
sends a retained message right behind the subscription's acknowledgement, so on any working
link this is far more than needed; with no inventory retained, it is what a connect costs."""
FLUSH_S: Final = 3.0
"""On a graceful stop, how long pending messages may take to go out before `offline`."""
RETAINED_PER_DEVICE: Final = 3
"""Retained topics per device: state, availability, discovery."""
COMMAND_CONCURRENCY: Final = 64
"""Commands running at once; more wait (each action locks its own device anyway)."""


class Bridge:
    def __init__(
        self,
        site: Site,
        settings: BridgeSettings,
        *,
        jobs: JobListing = no_jobs,
        steps: EventBus | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`jobs`: the AI queue for `jobs/state`; `steps`: the workloads' step events for
        `events/switch` (both from the site's GPU side, see `site_bridge`)."""
        self.site = site
        self.settings = settings
        self._clock = clock
        self.topics = Topics(settings.prefix, settings.site, settings.discovery_prefix)
        # The queue must hold the whole site's retained state once (state, availability and
        # discovery per device), or a reconnect could never publish all of it.
        devices = len(site.snapshot().devices)
        floor = RETAINED_PER_DEVICE * devices + 100
        if settings.queue_max < floor:
            log.info("[mqtt] queue_max raised to %d: 3 per device + 100", floor)
        self.outbox = Outbox(max(settings.queue_max, floor))
        self.publisher = Publisher(
            self.topics,
            self.outbox,
            discovery=settings.discovery,
            commands=settings.commands,
            full_refresh_s=settings.full_refresh_s,
            jobs=jobs,
        )
        self.commands = CommandHandler(
            site.actions,
            enabled=settings.commands,
            parse_topic=self.topics.parse_command,
            clock=clock,
        )
        subscriptions = [self.topics.command_filter]
        if settings.discovery:
            subscriptions.append(self.topics.ha_status)
        self.transport = MqttTransport(
            settings.broker,
            availability_topic=self.topics.bridge_availability,
            subscriptions=subscriptions,
            on_connect=self._on_connect,
            on_message=self._on_message,
        )
        self._steps = steps
        self._freshness = FreshnessWatch()
        self._inventory: asyncio.Future[bytes] | None = None
        self._command_slots = asyncio.Semaphore(COMMAND_CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- counters --------------------------------------------------------------------------

    def counters(self) -> BridgeCounters:
        return BridgeCounters(
            connected=self.transport.connected,
            connects=self.transport.connects,
            published=self.transport.published,
            queued=len(self.outbox),
            coalesced=self.outbox.coalesced,
            dropped=self.outbox.dropped,
            commands=self.commands.received,
            commands_refused=self.commands.refused,
        )

    # -- connect: inventory reconciliation -------------------------------------------------

    def _entries(self) -> tuple[InventoryEntry, ...]:
        site = self.settings.site
        return tuple(
            InventoryEntry(
                id=d.device_id,
                kind=d.kind.value,
                ha_object_id=ha_object_id(site, d.device_id) if self.settings.discovery else None,
            )
            for d in self.site.snapshot().devices
        )

    async def _on_connect(self) -> None:
        # Everything is re-published on every connect; forget what was sent first, so that the
        # publish ticks during the inventory wait below already queue it.
        self.publisher.refresh(discovery=True)
        loop = asyncio.get_running_loop()
        self._inventory = loop.create_future()
        await self.transport.subscribe(self.topics.inventory)
        try:
            async with asyncio.timeout(INVENTORY_WAIT_S):
                previous_bytes = await asyncio.shield(self._inventory)
        except TimeoutError:
            previous_bytes = b""
        finally:
            self._inventory = None
        await self.transport.unsubscribe(self.topics.inventory)
        previous = decode_inventory(previous_bytes)
        entries = self._entries()
        if previous is not None:
            self._clear_removed(previous, {e.id for e in entries})
        current = Inventory(
            discovery_prefix=self.settings.discovery_prefix if self.settings.discovery else None,
            devices=entries,
        )
        self.outbox.put_state(Outgoing(self.topics.inventory, encode(current), 1, True))
        # Queue the present now (no-op for what the ticks above already queued), so that the
        # first send after connecting carries the whole site, once.
        self.publisher.publish(self.site.snapshot(), self.counters())

    def _clear_removed(self, previous: Inventory, current_ids: set[str]) -> None:
        """Empty retained payloads for what the previous run published and this one won't."""
        cleared = 0
        for entry in previous.devices:
            gone = entry.id not in current_ids
            if gone:
                for topic in (
                    self.topics.device_state(entry.id),
                    self.topics.device_availability(entry.id),
                ):
                    self.outbox.put_state(Outgoing(topic, b"", 1, True))
            old_prefix = previous.discovery_prefix
            if (
                entry.ha_object_id
                and old_prefix
                and (
                    gone
                    or not self.settings.discovery
                    or old_prefix != self.settings.discovery_prefix
                )
            ):
                topic = f"{old_prefix}/device/{entry.ha_object_id}/config"
                self.outbox.put_state(Outgoing(topic, b"", 1, True))
            cleared += gone
        if cleared:
            log.info("removed the retained topics of %d device(s) no longer configured", cleared)

    # -- inbound ---------------------------------------------------------------------------

    def _on_message(self, message: Inbound) -> None:
        if message.topic == self.topics.inventory:
            if self._inventory is not None and not self._inventory.done():
                self._inventory.set_result(message.payload)
            return
        if message.topic == self.topics.ha_status:
            if message.payload.strip() == b"online":
                # Home Assistant restarted: it wants discovery and states again.
                self.publisher.refresh(discovery=True)
            return
        task = asyncio.create_task(self._command(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _command(self, message: Inbound) -> None:
        async with self._command_slots:
            answer = await self.commands.handle(message)
        self._send_answer(answer)

    def _send_answer(self, answer: Answer) -> None:
        reply = answer.reply
        payload = encode(reply)
        self.outbox.put_event(Outgoing(self.topics.reply(reply.request_id), payload, 1, False))
        if answer.response_topic:
            self.outbox.put_event(
                Outgoing(answer.response_topic, payload, 1, False, answer.correlation_data)
            )
        if answer.result is not None and answer.actor is not None:
            event = ActionEvent(
                ts=self._clock(),
                site=self.settings.site,
                actor=answer.actor,
                origin="mqtt",
                result=answer.result,
            )
            self.outbox.put_event(Outgoing(self.topics.action_events, encode(event), 1, False))
        level = logging.INFO if reply.ok else logging.WARNING
        log.log(
            level, "command %s %s: %s %s", reply.request_id, reply.action, reply.code, reply.message
        )

    # -- events ----------------------------------------------------------------------------

    def _alarm(self, event: SiteEvent) -> None:
        payload = encode(site_alarm(event, self.settings.site))
        self.outbox.put_event(Outgoing(self.topics.site_events, payload, 1, False))

    async def _forward_alarms(self) -> None:
        async for event in self.site.events.subscribe():
            self._alarm(event)

    async def _forward_steps(self, bus: EventBus) -> None:
        async for event in bus.subscribe():
            payload = encode(switch_event(event, self.settings.site))
            self.outbox.put_event(Outgoing(self.topics.switch_events, payload, 1, False))

    # -- loops -----------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        interval = self.settings.publish_interval_s
        while True:
            started = time.monotonic()
            snapshot = self.site.snapshot()
            for event in self._freshness.update(snapshot):
                self._alarm(event)
            self.publisher.begin(snapshot)
            while self.publisher.pending:
                self.publisher.publish_pending(SLICE)
                await asyncio.sleep(0)  # let the pump send this slice while we encode the next
            self.publisher.publish_site(snapshot, self.counters())
            # The interval is from start to start: a slow look does not add its own duration.
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _pump(self) -> None:
        while True:
            await self.outbox.wait()
            await self.transport.wait_connected()
            if not await self._send_waiting():
                await asyncio.sleep(0.05)  # the transport noticed first; let it reconnect

    async def _send_waiting(self) -> bool:
        """Send everything waiting; False if the connection went away (the rest waits).

        Events and replies first (someone is waiting for them), then QoS 0 states, then QoS 1
        states: each QoS 1 message costs an acknowledgement, and after a reconnect of a
        10,000-device site the 20,000 availability and discovery messages would otherwise hold
        the device states back by seconds."""
        taken = self.outbox.take_all()
        batch = [m for m in taken if not m.retain]
        batch += [m for m in taken if m.retain and m.qos == 0]
        batch += [m for m in taken if m.retain and m.qos > 0]
        for start in range(0, len(batch), CHUNK):
            try:
                await self.transport.send(batch[start : start + CHUNK])
            except TransportDown:
                self.outbox.restore(batch[start:])
                return False
        return True

    async def flush(self, timeout_s: float) -> None:
        """Send what is waiting, if connected, for at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while len(self.outbox) and self.transport.connected:
                    if not await self._send_waiting():
                        return

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, publish and take commands until `stop` is set; then shut down gracefully."""
        log.info(
            "publishing site %r to %s under %s (discovery %s, commands %s)",
            self.settings.site,
            self.settings.url_shown,
            self.topics.base,
            "on" if self.settings.discovery else "off",
            "on" if self.settings.commands else "off",
        )
        transport = asyncio.create_task(self.transport.run(), name="mqtt-transport")
        workers = [
            asyncio.create_task(self.site.run(), name="site-poll"),
            asyncio.create_task(self._publish_loop(), name="mqtt-publish"),
            asyncio.create_task(self._pump(), name="mqtt-pump"),
            asyncio.create_task(self._forward_alarms(), name="mqtt-site-events"),
        ]
        if self._steps is not None:
            workers.append(
                asyncio.create_task(self._forward_steps(self._steps), name="mqtt-switch-events")
            )
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                [transport, stopping, *workers], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopping:
                    task.result()  # a crashed loop is a bug: surface it
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if self._tasks:  # commands in flight get their replies out
                await asyncio.wait(self._tasks, timeout=FLUSH_S)
            await self.flush(FLUSH_S)
            await self.transport.stop()
            with contextlib.suppress(asyncio.CancelledError):
                async with asyncio.timeout(FLUSH_S + 10):
                    await transport
            stopping.cancel()


def tune_gc() -> None:
    """Garbage-collector settings for a long-running bridge (called once the site is built).

    Each published state allocates a few short-lived objects; at 10,000 states a second the
    default thresholds run a collection every few milliseconds, and full collections walk
    every object of the site (measured with bench/mqtt.py: ~690 collections and 0.7-1.0 s of
    collector time in 25 s). Freezing what exists at start-up (config, drivers, store) takes it
    out of every future collection, and a larger first threshold makes collections rarer (~100
    and 0.1 s). Cyclic garbage still gets collected, just less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def site_bridge(site: Site, settings: BridgeSettings) -> Bridge:
    """The bridge of a site: with GPUs, `jobs/state` is their AI queue (as the GPU tick last
    read it) and `events/switch` their workloads' step events."""
    gpus = site.gpus
    if gpus is None:
        return Bridge(site, settings)
    return Bridge(
        site,
        settings,
        jobs=lambda: gpus.jobs_seen,
        steps=gpus.workloads.events,
    )


async def serve(config: SiteConfig, settings: BridgeSettings, stop: asyncio.Event) -> None:
    async with Site(config) as site:
        bridge = site_bridge(site, settings)
        tune_gc()
        await bridge.run(stop)


def run_headless(config: SiteConfig, url: str | None) -> int:
    """`hashpivot headless`: returns the exit code."""
    from console.cli import run_async

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = resolve(config, url)
    except SettingsError as exc:
        log.error("%s", exc)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, settings, stop)

    try:
        run_async(main())
    except SiteStartError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # unreadable TLS files, surfaced when the transport is built
        log.error("cannot start the MQTT bridge: %s", exc)
        return 2
    return 0
