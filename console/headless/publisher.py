"""Snapshots → outgoing messages: only what changed since the last look, plus refreshes.

Called once per publish interval with the site's latest `Snapshot`. For each device it
compares with what it last published: first by identity (the store hands out the same
`DeviceStatus` object until something about the device changes, so at 10,000 devices an idle
tick costs a dictionary lookup per device), then by the encoded bytes. What changed goes to
the `Outbox` as retained state; transitions worth an alarm (lost, recovered, faulted,
degraded, healthy, commanded mode) go out as events.

`refresh()` forgets what was published, so the next call re-publishes every retained topic:
the transport asks for it on every (re)connect (a restarted broker may have lost its retained
messages), Home Assistant's birth message asks for discovery too, and `publish` does it on its
own every `full_refresh_s`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from console.headless.discovery import Identity, discovery_document, identity
from console.headless.outbox import Outbox, Outgoing
from console.headless.payloads import (
    BridgeCounters,
    DeviceEvent,
    JobListing,
    availability,
    device_document,
    encode,
    encode_status,
    jobs_state,
    no_jobs,
    site_state,
)
from console.headless.topics import Topics, ha_object_id
from console.model import DeviceStatus, Freshness, Observed, Snapshot

_ALARMING: Final = (Observed.FAULTED, Observed.DEGRADED)


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
        self._status: dict[str, DeviceStatus] = {}  # last status handled, by identity
        self._bytes: dict[str, bytes] = {}  # its encoding, as last published
        self._avail: dict[str, bytes] = {}
        self._ident: dict[str, Identity] = {}
        self._seen: dict[str, DeviceStatus] = {}  # for transitions; survives refresh()
        self._site: bytes | None = None
        self._jobs: bytes | None = None
        self._refreshed_at: float | None = None

    def refresh(self, *, discovery: bool = False) -> None:
        """Re-publish every retained topic at the next `publish` (discovery too if asked)."""
        self._status.clear()
        self._bytes.clear()
        self._avail.clear()
        if discovery:
            self._ident.clear()
        self._site = None
        self._jobs = None

    def publish(self, snapshot: Snapshot, counters: BridgeCounters) -> int:
        """Queue what changed in `snapshot`; returns how many messages were queued."""
        self.begin(snapshot)
        queued = self.publish_devices(snapshot.devices, snapshot.taken_at)
        return queued + self.publish_site(snapshot, counters)

    # `publish` in three steps, so that a caller can let the transport send the first devices
    # of a large site while later ones are still being encoded.

    def begin(self, snapshot: Snapshot) -> None:
        """Start a look at `snapshot` (and a full refresh, when one is due)."""
        now = snapshot.taken_at
        if self._refreshed_at is None or now - self._refreshed_at >= self.full_refresh_s:
            self._refreshed_at = now
            self.refresh()

    def publish_devices(self, devices: Iterable[DeviceStatus], now: float) -> int:
        queued = 0
        for status in devices:
            queued += self._device(status, now)
        return queued

    def publish_site(self, snapshot: Snapshot, counters: BridgeCounters) -> int:
        now = snapshot.taken_at
        queued = 0
        body, site = site_state(snapshot, counters)
        if body != self._site:  # the timestamp alone changing is no news
            self._site = body
            self.outbox.put_state(Outgoing(self.topics.site_state, site, 0, True))
            queued += 1
        listing = list(self.jobs())
        jobs = encode(listing)
        if jobs != self._jobs:
            self._jobs = jobs
            self.outbox.put_state(
                Outgoing(self.topics.jobs_state, jobs_state(listing, now), 0, True)
            )
            queued += 1
        return queued

    def _device(self, status: DeviceStatus, now: float) -> int:
        device_id = status.device_id
        if self._status.get(device_id) is status:
            return 0
        self._status[device_id] = status
        queued = 0
        encoded = encode_status(status)
        if self._bytes.get(device_id) != encoded:
            self._bytes[device_id] = encoded
            self.outbox.put_state(
                Outgoing(
                    self.topics.device_state(device_id),
                    device_document(status, encoded, now),
                    0,
                    True,
                )
            )
            queued += 1
        avail = availability(status)
        if self._avail.get(device_id) != avail:
            self._avail[device_id] = avail
            self.outbox.put_state(
                Outgoing(self.topics.device_availability(device_id), avail, 1, True)
            )
            queued += 1
        if self.discovery:
            ident = identity(status)
            if self._ident.get(device_id) != ident:
                self._ident[device_id] = ident
                uid = ha_object_id(self.topics.site, device_id)
                self.outbox.put_state(
                    Outgoing(
                        self.topics.discovery(uid),
                        discovery_document(
                            status, self.topics, commands=self.commands, ident=ident
                        ),
                        1,
                        True,
                    )
                )
                queued += 1
        previous = self._seen.get(device_id)
        self._seen[device_id] = status
        if previous is not None:
            for event in transitions(previous, status, self.topics.site, now):
                self.outbox.put_event(
                    Outgoing(self.topics.device_events(device_id), encode(event), 1, False)
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
        elif before.observed in _ALARMING and after.observed is Observed.HASHING:
            yield event("healthy", before.observed.value)
    if after.commanded is not before.commanded:
        yield event("commanded", before.commanded.value)
