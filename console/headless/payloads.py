"""The JSON documents published on the state, event and reply topics (docs/mqtt.md).

Device and site documents encode the snapshot's own Structs with msgspec, so every field the
snapshot carries (readings, controls, and whatever the GPU and earnings work adds to
`DeviceStatus` and `Snapshot`) is published without this module knowing about it. On top of
that each device document has a small `summary` with the four numbers dashboards chart
(hashrate, power, temperature, profit), in fixed places whatever the device kind, which is
what the Home Assistant entities read.

`summarise` is the one place that knows where those numbers live in a `DeviceStatus`: it finds
the readings by type (an `AsicReading`, a `GpuReading`) and the earnings by their
`profit_usd_per_day` field, so it keeps working when those land in new `DeviceStatus` fields.
A GPU's hashrate comes from its miner process, which no reading type carries yet: it is None
until that reading exists and is added here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Final, get_args

import msgspec

from console.actions import ActionResult
from console.model import DeviceStatus, Freshness, Snapshot
from console.report import earnings_json, market_json
from drivers.cgminer.reading import AsicReading
from drivers.gpu_reading import GpuReading

DEVICE_SCHEMA: Final = "hashpivot.mqtt.device/1"
SITE_SCHEMA: Final = "hashpivot.mqtt.site/1"
JOBS_SCHEMA: Final = "hashpivot.mqtt.jobs/1"
INVENTORY_SCHEMA: Final = "hashpivot.mqtt.devices/1"
EVENT_SCHEMA: Final = "hashpivot.mqtt.event/1"
REPLY_SCHEMA: Final = "hashpivot.mqtt.reply/1"

ONLINE: Final = b"online"
OFFLINE: Final = b"offline"

_encoder = msgspec.json.Encoder()
encode = _encoder.encode

JobListing = Callable[[], Sequence[Any]]
"""Where `jobs/state` comes from: returns the AI job queue as msgspec-encodable records
(Structs, dicts, dataclasses). `no_jobs` until the workloads layer is wired in."""


def no_jobs() -> Sequence[Any]:
    return ()


class DeviceSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers every device document carries in one place. None = not known now."""

    hashrate_hs: float | None = None
    power_w: float | None = None
    temp_c: float | None = None
    profit_usd_per_day: float | None = None


_NOTHING: Final = DeviceSummary()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@functools.cache
def struct_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of a status class that can hold a Struct (a reading, earnings): the only
    ones `summarise` needs to look at. Resolved once per class."""
    names = []
    for field in msgspec.structs.fields(cls):
        types = get_args(field.type) or (field.type,)
        if any(isinstance(t, type) and issubclass(t, msgspec.Struct) for t in types):
            names.append(field.name)
    return tuple(names)


def summarise(status: DeviceStatus) -> DeviceSummary:
    """Hashrate, power, temperature and profit of a device, wherever its status keeps them.

    A lost device has no current values: its last reading is history, not the present
    (the same rule as the site totals), so everything is None."""
    if status.freshness is Freshness.LOST:
        return _NOTHING
    hashrate = power = temp = profit = None
    for name in struct_fields(type(status)):
        value = getattr(status, name)
        if isinstance(value, AsicReading):
            hashrate = value.hashrate_5s_hs if value.hashrate_5s_hs else value.hashrate_avg_hs
            power, temp = value.power_w, value.temp_max_c
        elif isinstance(value, GpuReading):
            if value.sample is not None:
                power, temp = value.sample.power_w, value.sample.temp_gpu_c
        elif isinstance(value, msgspec.Struct):
            # Earnings (console.economics): any struct on the status that states a profit.
            candidate = getattr(value, "profit_usd_per_day", None)
            if isinstance(candidate, int | float) and not isinstance(candidate, bool):
                profit = float(candidate)
    return DeviceSummary(
        hashrate_hs=_finite(hashrate),
        power_w=_finite(power),
        temp_c=_finite(temp),
        profit_usd_per_day=_finite(profit),
    )


def encode_status(status: DeviceStatus) -> bytes:
    """The status alone: what is compared to decide whether a device changed."""
    return encode(status)


_DEVICE_HEAD: Final = b'{"schema":"' + DEVICE_SCHEMA.encode() + b'","ts":'


def device_document(status: DeviceStatus, encoded_status: bytes, taken_at: float) -> bytes:
    """`device/<id>/state`: schema, snapshot time, problem flag and summary, then every field
    of the `DeviceStatus` (spliced in from `encoded_status`, which is a JSON object). Built
    from pieces because this runs for every state published (10,000 a second at scale)."""
    return b"".join(
        (
            _DEVICE_HEAD,
            encode(taken_at),
            b',"problem":true,"summary":' if status.problem else b',"problem":false,"summary":',
            encode(summarise(status)),
            b",",
            encoded_status[1:],
        )
    )


def availability(status: DeviceStatus) -> bytes:
    """`online` while the data is fresh or only a little stale; `offline` when the device is
    lost or has never answered (pending). Only meaningful while the bridge is online."""
    return ONLINE if status.freshness in (Freshness.FRESH, Freshness.STALE) else OFFLINE


class BridgeCounters(msgspec.Struct, frozen=True, kw_only=True):
    """How the bridge itself is doing; published inside `site/state`."""

    connected: bool
    connects: int
    """Successful connections since start (1 + reconnects)."""
    published: int
    """Messages handed to the broker since start."""
    queued: int
    """Messages waiting in the outgoing queue now."""
    coalesced: int
    """State messages replaced by a newer state of the same topic before they were sent."""
    dropped: int
    """Messages dropped because the outgoing queue was full."""
    commands: int
    """Commands received."""
    commands_refused: int
    """Commands answered with an error before reaching the action path (bad payload,
    not allowed, commands disabled)."""


def site_document(snapshot: Snapshot) -> dict[str, Any]:
    """Every field of the snapshot except the device list (totals, host, market data and site
    earnings). Market and earnings use the snapshot JSON's shapes (docs/snapshot.md): each
    figure with its source and age, fleet totals without the per-device arrays."""
    doc = {
        name: getattr(snapshot, name)
        for name in snapshot.__struct_fields__
        if name not in ("devices", "taken_at", "market", "earnings")
    }
    doc["market"] = None if snapshot.market is None else market_json(snapshot.market)
    doc["earnings"] = None if snapshot.earnings is None else earnings_json(snapshot.earnings)
    return doc


def site_state(snapshot: Snapshot, counters: BridgeCounters) -> tuple[bytes, bytes]:
    """(`body`, `document`) of `site/state`: the body has no timestamp, so comparing bodies
    tells whether anything but the time changed."""
    body = encode({**site_document(snapshot), "bridge": counters})
    head = encode({"schema": SITE_SCHEMA, "ts": snapshot.taken_at})
    return body, head[:-1] + b"," + body[1:]


def jobs_state(jobs: Sequence[Any], taken_at: float) -> bytes:
    return encode({"schema": JOBS_SCHEMA, "ts": taken_at, "jobs": list(jobs)})


class InventoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    ha_object_id: str | None = None
    """Home Assistant discovery object id, when discovery was published for the device."""


class Inventory(msgspec.Struct, frozen=True, kw_only=True):
    """`site/devices`: which devices this bridge publishes, so that the next run can remove
    the retained topics (and HA devices) of devices no longer in the config."""

    schema: str = INVENTORY_SCHEMA
    discovery_prefix: str | None = None
    """The HA discovery prefix used, or None when discovery was off."""
    devices: tuple[InventoryEntry, ...] = ()


def decode_inventory(payload: bytes) -> Inventory | None:
    """The retained inventory of a previous run; None if absent or unreadable (then nothing
    is removed: an unreadable inventory must never delete anything)."""
    if not payload:
        return None
    try:
        inventory = msgspec.json.decode(payload, type=Inventory)
    except msgspec.DecodeError:
        return None
    return inventory if inventory.schema == INVENTORY_SCHEMA else None


class DeviceEvent(msgspec.Struct, frozen=True, kw_only=True):
    """`events/device/<id>`: a transition worth an operator's attention."""

    schema: str = EVENT_SCHEMA
    ts: float
    site: str
    device: str
    event: str
    """lost, recovered, faulted, degraded, healthy, commanded."""
    freshness: str
    observed: str
    commanded: str
    previous: str | None = None
    """The value before the transition (freshness, observed or commanded, per event)."""
    message: str | None = None
    """The device's last error, when there is one."""


class ActionEvent(msgspec.Struct, frozen=True, kw_only=True):
    """`events/action`: an action taken over MQTT and its result."""

    schema: str = EVENT_SCHEMA
    ts: float
    site: str
    event: str = "action"
    actor: str
    origin: str
    result: ActionResult


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """`reply/<request id>`: the answer to one command; `ok` false says why in `message`."""

    schema: str = REPLY_SCHEMA
    ts: float
    request_id: str
    ok: bool
    code: str
    message: str
    action: str | None = None
    target: str | None = None
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    audit_id: int | None = None
    """Row of the audit log that recorded the action; None when it never reached the path."""
