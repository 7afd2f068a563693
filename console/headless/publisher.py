"""Snapshots → outgoing messages: only what changed since the last look, plus refreshes.

Called once per publish interval with the site's latest `Snapshot`. For each device it
compares with what it last published: first by identity (the store hands out the same
`DeviceStatus` object until something about the device changes; the scan runs in C over a
list kept in snapshot order, so at 10,000 devices a tick costs the devices that changed, not
the fleet), then by the encoded bytes of the status and the device's earnings row (the rows
of the changed devices are built in one batch, `FleetEarnings.rows`). What changed goes to the
`Outbox` as retained state; transitions worth an alarm (lost, recovered, faulted, degraded,
healthy, commanded mode) go out as events.

Earnings follow the status: a device whose status object is unchanged is skipped without
looking at its earnings row, so a new market price alone (the same readings priced anew) does
not re-publish 10,000 documents; the next reading of each device, and the full refresh,
carry the new figures. Site earnings (`site/state`) are compared on every tick.

`refresh()` forgets what was published, so the next call re-publishes every retained topic:
the transport asks for it on every (re)connect (a restarted broker may have lost its retained
messages), Home Assistant's birth message asks for discovery too, and `publish` does it on its
own every `full_refresh_s`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from operator import is_not
from typing import Final

from console.economics import DeviceEarnings, FleetEarnings
from console.headless.discovery import Identity, discovery_document, identity
from console.headless.outbox import Outbox, Outgoing
from console.headless.payloads import (
    BridgeCounters,
    DeviceEvent,
    JobListing,
    availability,
    device_document,
    encode,
    encode_earnings,
    encode_status,
    jobs_body,
    jobs_state,
    no_jobs,
    site_state,
)
from console.headless.topics import Topics, ha_object_id
from console.model import DeviceStatus, Freshness, Observed, Snapshot

_ALARMING: Final = (Observed.FAULTED, Observed.DEGRADED)
_HEALTHY: Final = (Observed.HASHING, Observed.RUNNING_JOB)


class Publisher:
    def __init__(
        self,
        topics: Topics,
        outbox: Outbox,
        *,
        discovery: bool,
        commands: bool,
        full_refresh_s: float,
        jobs: JobListing = no_jobs,
    ) -> None:
        self.topics = topics
        self.outbox = outbox
        self.discovery = discovery
        self.commands = commands
        self.full_refresh_s = full_refresh_s
        self.jobs = jobs
        # The last status handled at each snapshot position (None: publish it next time).
        self._handled: list[DeviceStatus | None] = []
        self._bytes: dict[str, tuple[bytes, bytes]] = {}  # status and earnings, as published
        self._avail: dict[str, bytes] = {}
        self._ident: dict[str, Identity] = {}
        self._seen: dict[str, DeviceStatus] = {}  # for transitions; survives refresh()
        self._site: bytes | None = None
        self._jobs: bytes | None = None
        self._refreshed_at: float | None = None
        self._priced = False  # the snapshot being published has earnings
        # The changed devices of the snapshot being published (position, status), not yet
        # encoded (`publish_pending` works through them); `_next` is the first one left.
        self._pending: list[tuple[int, DeviceStatus]] = []
        self._fleet: FleetEarnings | None = None  # that snapshot's earnings
        self._next = 0
        self._now = 0.0

    def refresh(self, *, discovery: bool = False) -> None:
        """Re-publish every retained topic at the next `publish` (discovery too if asked)."""
        self._handled = []
        self._bytes.clear()
        self._avail.clear()
        if discovery:
            self._ident.clear()
        self._site = None
        self._jobs = None

    def publish(self, snapshot: Snapshot, counters: BridgeCounters) -> int:
        """Queue what changed in `snapshot`; returns how many messages were queued."""
        self.begin(snapshot)
        queued = self.publish_pending()
        return queued + self.publish_site(snapshot, counters)

    # `publish` in three steps, so that a caller can let the transport send the first devices
    # of a large site while later ones are still being encoded.

    def begin(self, snapshot: Snapshot) -> int:
        """Start a look at `snapshot` (and a full refresh, when one is due): find the devices
        whose status object changed since the last look. Returns how many changed; they
        replace whatever an earlier look left unpublished (older statuses)."""
        now = snapshot.taken_at
        if self._refreshed_at is None or now - self._refreshed_at >= self.full_refresh_s:
            self._refreshed_at = now
            self.refresh()
        devices = snapshot.devices
        handled = self._handled
        if len(handled) != len(devices):
            handled = self._handled = [None] * len(devices)
        else:
            # Devices of an earlier look not encoded yet: they are still to be published.
            for i, status in self._pending[self._next :]:
                if handled[i] is status:
                    handled[i] = None
        changed = list(itertools.compress(range(len(devices)), map(is_not, devices, handled)))
        for i in changed:
            previous = handled[i]
            if previous is not None and previous.device_id != devices[i].device_id:
                # The site's device list changed: publish every device once more.
                self._handled = []
                self._pending = []
                return self.begin(snapshot)
            handled[i] = devices[i]
        self._fleet = snapshot.earnings
        self._priced = self._fleet is not None
        self._pending = [(i, devices[i]) for i in changed]
        self._next = 0
        self._now = now
        return len(changed)

    def _rows(self, pending: list[tuple[int, DeviceStatus]]) -> list[DeviceEarnings | None]:
        """The earnings rows of `pending` (snapshot positions and statuses), in one batch."""
        fleet = self._fleet
        if fleet is None:
            return [None] * len(pending)
        ids = fleet.device_ids
        positions: list[int | None] = [i for i, _ in pending]
        if not all(i < len(ids) and ids[i] == status.device_id for i, status in pending):
            # Not in the snapshot's order (the usual case is: they are built from it).
            positions = [fleet.index_of(status.device_id) for _, status in pending]
        found = iter(fleet.rows([p for p in positions if p is not None]))
        return [None if p is None else next(found) for p in positions]

    @property
    def pending(self) -> int:
        """Changed devices of the current look not yet encoded."""
        return len(self._pending) - self._next

    def publish_pending(self, limit: int | None = None) -> int:
        """Encode and queue up to `limit` (all by default) of the changed devices left;
        returns how many messages were queued."""
        start = self._next
        stop = len(self._pending) if limit is None else min(len(self._pending), start + limit)
        self._next = stop
        queued = 0
        now = self._now
        ts = encode(now)
        device = self._device
        # Priced slice by slice, so a large look holds the event loop in small steps.
        part = self._pending[start:stop]
        for (_, status), earnings in zip(part, self._rows(part), strict=True):
            queued += device(status, earnings, now, ts)
        if stop == len(self._pending):
            self._pending = []
            self._next = 0
        return queued

    def publish_site(self, snapshot: Snapshot, counters: BridgeCounters) -> int:
        now = snapshot.taken_at
        queued = 0
        body, site = site_state(snapshot, counters)
        if body != self._site:  # the timestamp alone changing is no news
            self._site = body
            self.outbox.put_state(Outgoing(self.topics.site_state, site, 0, True))
            queued += 1
        seen = self.jobs()
        jobs = jobs_body(seen)
        if jobs != self._jobs:
            self._jobs = jobs
            ts = seen.at if seen.at is not None else now
            self.outbox.put_state(Outgoing(self.topics.jobs_state, jobs_state(jobs, ts), 0, True))
            queued += 1
        return queued

    def _device(
        self, status: DeviceStatus, earnings: DeviceEarnings | None, now: float, ts: bytes
    ) -> int:
        """Queue what changed about one device (`ts`: `now` encoded)."""
        device_id = status.device_id
        topics = self.topics
        put_state = self.outbox.put_state
        queued = 0
        encoded = (encode_status(status), encode_earnings(earnings))
        if self._bytes.get(device_id) != encoded:
            self._bytes[device_id] = encoded
            document = device_document(status, encoded[0], now, earnings, encoded[1], encoded_ts=ts)
            put_state(Outgoing(topics.device_state(device_id), document, 0, True))
            queued += 1
        avail = availability(status)
        if self._avail.get(device_id) != avail:
            self._avail[device_id] = avail
            put_state(Outgoing(topics.device_availability(device_id), avail, 1, True))
            queued += 1
        if self.discovery:
            ident = identity(status, priced=self._priced)
            if self._ident.get(device_id) != ident:
                self._ident[device_id] = ident
                uid = ha_object_id(topics.site, device_id)
                put_state(
                    Outgoing(
                        topics.discovery(uid),
                        discovery_document(status, topics, commands=self.commands, ident=ident),
                        1,
                        True,
                    )
                )
                queued += 1
        previous = self._seen.get(device_id)
        self._seen[device_id] = status
        if previous is not None and (
            previous.freshness is not status.freshness
            or previous.observed is not status.observed
            or previous.commanded is not status.commanded
        ):
            for event in transitions(previous, status, topics.site, now):
                self.outbox.put_event(
                    Outgoing(topics.device_events(device_id), encode(event), 1, False)
                )
                queued += 1
        return queued


def transitions(
    before: DeviceStatus, after: DeviceStatus, site: str, now: float
) -> Iterable[DeviceEvent]:
    """Events for what changed between two statuses of one device."""

    def event(name: str, previous: str | None) -> DeviceEvent:
        return DeviceEvent(
            ts=now,
            site=site,
            device=after.device_id,
            event=name,
            freshness=after.freshness.value,
            observed=after.observed.value,
            commanded=after.commanded.value,
            previous=previous,
            message=after.last_error,
        )

    if after.freshness is not before.freshness:
        if after.freshness is Freshness.LOST:
            yield event("lost", before.freshness.value)
        elif before.freshness is Freshness.LOST and after.freshness is Freshness.FRESH:
            yield event("recovered", before.freshness.value)
    if after.observed is not before.observed:
        if after.observed in _ALARMING:
            yield event(after.observed.value, before.observed.value)
        elif before.observed in _ALARMING and after.observed in _HEALTHY:
            yield event("healthy", before.observed.value)
    if after.commanded is not before.commanded:
        yield event("commanded", before.commanded.value)
