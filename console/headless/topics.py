"""The versioned topic schema: every topic hashpivot publishes or listens on is built here.

Under `<prefix>/v1/<site>/` (docs/mqtt.md has the full table):

    bridge/availability          retained, QoS 1: "online" / "offline" (birth and last will)
    site/state                   retained, QoS 0: totals, host, market/earnings, bridge counters
    site/devices                 retained, QoS 1: the device inventory (what the bridge publishes)
    jobs/state                   retained, QoS 0: the AI job queue
    device/<id>/state            retained, QoS 0: one JSON document per device
    device/<id>/availability     retained, QoS 1: "online" / "offline" from the device's freshness
    events/device/<id>           QoS 1, not retained: faults and mode changes of one device
    events/action                QoS 1, not retained: results of actions taken over MQTT
    cmd/<action>[/<user>]        QoS 1, never retained: commands (listened on, when enabled)
    reply/<request id>           QoS 1, not retained: the answer to each command

`v1` changes only when a document changes incompatibly; new fields are added within v1.
Device ids and site names are already valid topic levels (the config restricts them to
letters, digits, `_`, `.`, `-`); Home Assistant object ids allow no `.`, so `ha_object_id`
maps them.
"""

from __future__ import annotations

import re
import zlib
from typing import Final

SCHEMA_LEVEL: Final = "v1"

_HA_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def valid_request_id(text: str) -> bool:
    """Whether `text` can be a request id: it becomes a topic level of `reply/<id>`."""
    return bool(_REQUEST_ID.match(text))


def ha_object_id(site: str, device_id: str) -> str:
    """Home Assistant object id (and device identifier) of a device: `hashpivot_<site>_<id>`.

    HA allows only `[A-Za-z0-9_-]`; when the device id has other characters they become `_`
    and a checksum of the original is appended, so `a.b` and `a_b` stay distinct devices."""
    safe = _HA_UNSAFE.sub("_", device_id)
    if safe != device_id:
        safe += f"_{zlib.crc32(device_id.encode()):08x}"
    return f"hashpivot_{site}_{safe}"


class Topics:
    """Topic names for one site under one prefix; device topics are cached (10k devices)."""

    def __init__(self, prefix: str, site: str, discovery_prefix: str = "homeassistant") -> None:
        self.prefix = prefix
        self.site = site
        self.discovery_prefix = discovery_prefix
        self.base = f"{prefix}/{SCHEMA_LEVEL}/{site}"
        self.bridge_availability = f"{self.base}/bridge/availability"
        self.site_state = f"{self.base}/site/state"
        self.inventory = f"{self.base}/site/devices"
        self.jobs_state = f"{self.base}/jobs/state"
        self.action_events = f"{self.base}/events/action"
        self.command_filter = f"{self.base}/cmd/#"
        self.ha_status = f"{discovery_prefix}/status"
        self._command_prefix = f"{self.base}/cmd/"
        self._device: dict[str, tuple[str, str, str]] = {}

    def _device_topics(self, device_id: str) -> tuple[str, str, str]:
        topics = self._device.get(device_id)
        if topics is None:
            root = f"{self.base}/device/{device_id}"
            topics = (
                f"{root}/state",
                f"{root}/availability",
                f"{self.base}/events/device/{device_id}",
            )
            self._device[device_id] = topics
        return topics

    def device_state(self, device_id: str) -> str:
        return self._device_topics(device_id)[0]

    def device_availability(self, device_id: str) -> str:
        return self._device_topics(device_id)[1]

    def device_events(self, device_id: str) -> str:
        return self._device_topics(device_id)[2]

    def command(self, action: str) -> str:
        return f"{self._command_prefix}{action}"

    def reply(self, request_id: str) -> str:
        return f"{self.base}/reply/{request_id}"

    def discovery(self, object_id: str) -> str:
        """Home Assistant device-based discovery topic of one device."""
        return f"{self.discovery_prefix}/device/{object_id}/config"

    def parse_command(self, topic: str) -> tuple[str, str | None] | None:
        """`cmd/<action>` → (action, None); `cmd/<action>/<user>` → (action, user); else None."""
        if not topic.startswith(self._command_prefix):
            return None
        levels = topic[len(self._command_prefix) :].split("/")
        if len(levels) == 1 and levels[0]:
            return levels[0], None
        if len(levels) == 2 and levels[0] and levels[1]:
            return levels[0], levels[1]
        return None
