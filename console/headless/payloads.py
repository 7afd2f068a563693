"""The JSON documents published on the state, event and reply topics (docs/mqtt.md).

A device document is the device's `DeviceStatus` encoded with msgspec (every field the
snapshot carries: the ASIC `reading`, the GPU's `gpu` view with its NVML reading, state
machine, miner and job), its row of the snapshot's earnings (`DeviceEarnings`: revenue, power
cost, profit, and for a GPU the other mode and the switch gain), and a small `summary` with the
numbers dashboards chart (hashrate, power, temperature, profit; GPU utilisation) in fixed
places whatever the device kind, which is what the Home Assistant entities read.

`summarise` is the one place that knows where those numbers live: an ASIC's in its
`reading`, a GPU's in its `gpu` view (hashrate from its miner's API, the only proof that a
miner hashes; power, temperature and utilisation from NVML), profit in the earnings row.

The job queue (`jobs/state`) is published as `JobRecord`s: what an operator and a dashboard
need about each job, never its argv or environment, which may carry credentials.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import msgspec

from console.actions import ActionResult
from console.economics import DeviceEarnings
from console.events import SiteEvent
from console.gpu_site import JobsSeen
from console.model import DeviceStatus, Freshness, Snapshot
from console.report import earnings_json, market_json
from console.workloads.events import StepEvent
from console.workloads.queue import FINISHED, Job

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


JobListing = Callable[[], JobsSeen]
"""Where `jobs/state` comes from: the queue as the site last read it. Synchronous, because it
runs inside a publish tick (`GpuSide.jobs_seen` for a site with GPUs, `no_jobs` without)."""


def no_jobs() -> JobsSeen:
    return JobsSeen(None, ())


class DeviceSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers every device document carries in one place. None = not known now."""

    hashrate_hs: float | None = None
    """ASIC: SHA-256 H/s from its reading; GPU: its miner's H/s on the miner's algorithm."""
    power_w: float | None = None
    temp_c: float | None = None
    profit_usd_per_day: float | None = None
    gpu_util_pct: float | None = None
    """GPU utilisation from NVML (None for ASICs)."""


_NOTHING: Final = DeviceSummary()


def summarise(status: DeviceStatus, earnings: DeviceEarnings | None = None) -> DeviceSummary:
    """Hashrate, power, temperature and profit of a device (and a GPU's utilisation).

    A lost device has no current values: its last reading is history, not the present
    (the same rule as the site totals and the earnings model), so everything is None.
    Runs for every device document (10,000 a second at scale): the finiteness checks are
    written out rather than called."""
    if status.freshness is Freshness.LOST:
        return _NOTHING
    isfinite = math.isfinite
    hashrate = power = temp = util = None
    reading, gpu = status.reading, status.gpu
    if gpu is not None:
        hashrate, power, temp = gpu.miner_hashrate_hs, gpu.power_w, gpu.temp_c
        sample = gpu.nvml.sample if gpu.nvml is not None else None
        util = sample.util_gpu_pct if sample is not None else None
    elif reading is not None:
        hashrate = reading.hashrate_5s_hs if reading.hashrate_5s_hs else reading.hashrate_avg_hs
        power, temp = reading.power_w, reading.temp_max_c
    profit = earnings.profit_usd_per_day if earnings is not None else None
    return DeviceSummary(
        hashrate_hs=hashrate if hashrate is not None and isfinite(hashrate) else None,
        power_w=power if power is not None and isfinite(power) else None,
        temp_c=temp if temp is not None and isfinite(temp) else None,
        profit_usd_per_day=profit if profit is not None and isfinite(profit) else None,
        gpu_util_pct=util if util is not None and isfinite(util) else None,
    )


def encode_status(status: DeviceStatus) -> bytes:
    """The status alone: what is compared (with the earnings row) to decide whether a device
    changed."""
    return encode(status)


NO_EARNINGS: Final = b"null"


def encode_earnings(earnings: DeviceEarnings | None) -> bytes:
    """A device's earnings row as JSON (`null` when the site does not price the device now);
    the same shape as a device's `earnings` in the snapshot JSON (docs/snapshot.md)."""
    return NO_EARNINGS if earnings is None else encode(earnings)


_DEVICE_HEAD: Final = b'{"schema":"' + DEVICE_SCHEMA.encode() + b'","ts":'
_PROBLEM: Final = b',"problem":true,"summary":'
_NO_PROBLEM: Final = b',"problem":false,"summary":'
_EARNINGS: Final = b',"earnings":'


def device_document(
    status: DeviceStatus,
    encoded_status: bytes,
    taken_at: float,
    earnings: DeviceEarnings | None = None,
    encoded_earnings: bytes | None = None,
    *,
    encoded_ts: bytes | None = None,
) -> bytes:
    """`device/<id>/state`: schema, snapshot time, problem flag, summary and earnings row,
    then every field of the `DeviceStatus` (spliced in from `encoded_status`, which is a JSON
    object). Built from pieces because this runs for every state published (10,000 a second
    at scale); `encoded_ts` is `taken_at` already encoded, for a caller that writes many
    documents of one snapshot."""
    if encoded_earnings is None:
        encoded_earnings = encode_earnings(earnings)
    return b"".join(
        (
            _DEVICE_HEAD,
            encode(taken_at) if encoded_ts is None else encoded_ts,
            _PROBLEM if status.problem else _NO_PROBLEM,
            encode(summarise(status, earnings)),
            _EARNINGS,
            encoded_earnings,
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


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One job of the AI queue as `jobs/state` publishes it.

    Deliberately not the queue's `Job`: its argv and environment may carry credentials
    (tokens, data-store keys) and its paths are the console host's business; everything here
    is what the console's own job list shows."""

    id: int
    name: str
    customer: str
    state: str
    """queued, starting, running, preempting, done, failed, cancelled, requeued."""
    priority: int
    rate_usd_per_gpu_hour: float
    min_vram_bytes: int
    gpu_uuid: str | None
    """The GPU it is placed on (starting, running, preempting), else None."""
    progress: float
    """0..1, from the job's own progress file."""
    runtime_s: float
    """Completed runs plus the current one, at the document's `ts`."""
    earned_usd: float
    """runtime × rate, at the document's `ts`."""
    attempts: int
    submitted_at: float
    started_at: float | None
    """Start of the current run; None while it is not running."""
    finished_at: float | None
    last_error: str | None
    cancel_requested: bool


def job_record(job: Job, at: float) -> JobRecord:
    return JobRecord(
        id=job.id,
        name=job.name,
        customer=job.customer,
        state=job.state.value,
        priority=job.priority,
        rate_usd_per_gpu_hour=job.rate_usd_per_gpu_hour,
        min_vram_bytes=job.min_vram_bytes,
        gpu_uuid=job.gpu_uuid,
        progress=job.progress,
        runtime_s=job.runtime_s_at(at),
        earned_usd=job.earned_usd_at(at),
        attempts=job.attempts,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        last_error=job.last_error,
        cancel_requested=job.cancel_requested,
    )


FINISHED_JOBS_SHOWN: Final = 50
"""Finished jobs (done, failed, cancelled) kept in `jobs/state`: the most recent ones. The queue
keeps every job forever; a retained document must not grow with the site's history."""


def jobs_body(seen: JobsSeen) -> bytes:
    """The job list alone (no timestamp): what is compared to decide whether to republish.

    Every job not finished, in the queue's order, then the most recently finished ones.
    Running jobs' runtime and earnings move with each read of the queue (once per GPU tick),
    so while a job runs the document is republished at that pace."""
    at = seen.at if seen.at is not None else 0.0
    open_jobs = [j for j in seen.jobs if j.state not in FINISHED]
    finished = sorted(
        (j for j in seen.jobs if j.state in FINISHED),
        key=lambda j: j.finished_at or j.updated_at,
        reverse=True,
    )[:FINISHED_JOBS_SHOWN]
    return encode([job_record(job, at) for job in (*open_jobs, *finished)])


def jobs_state(body: bytes, ts: float) -> bytes:
    """`jobs/state`: schema, when the queue was read, and the jobs (`body` from `jobs_body`)."""
    return b"".join(
        (b'{"schema":"', JOBS_SCHEMA.encode(), b'","ts":', encode(ts), b',"jobs":', body, b"}")
    )


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


class SwitchEvent(msgspec.Struct, frozen=True, kw_only=True):
    """`events/switch`: one step of a GPU's workload life, as the workloads layer reports it.

    A switch reports each step's start and end (ok / failed / skipped) and every state change
    (`step` "state", `detail` from_state / to_state), all with the same `switch_id`; outside a
    switch the supervisor reports a miner or job that exited, a re-attach after a restart,
    a recovery (no `switch_id`)."""

    schema: str = EVENT_SCHEMA
    ts: float
    site: str
    event: str = "switch_step"
    gpu: str
    """The GPU's configured name (its device id)."""
    uuid: str
    switch_id: str | None
    step: str
    status: str
    """started, ok, failed, skipped, info."""
    state: str
    """The GPU's state machine state when the event was made."""
    message: str
    detail: dict[str, Any]


def switch_event(event: StepEvent, site: str) -> SwitchEvent:
    return SwitchEvent(
        ts=event.at,
        site=site,
        gpu=event.gpu,
        uuid=event.uuid,
        switch_id=event.switch_id,
        step=event.step.value,
        status=event.status.value,
        state=event.state.value,
        message=event.message,
        detail=event.detail,
    )


class SiteAlarm(msgspec.Struct, frozen=True, kw_only=True):
    """`events/site`: a fault an operator must hear about, once (the console's notifications):
    a device lost or back, a job that failed, a GPU switch that failed."""

    schema: str = EVENT_SCHEMA
    ts: float
    site: str
    event: str
    """device_lost, device_back, job_failed, switch_failed, action_failed."""
    subject: str
    """The device id, or `job <id>`."""
    severity: str
    """info, warning, error."""
    message: str


def site_alarm(event: SiteEvent, site: str) -> SiteAlarm:
    return SiteAlarm(
        ts=event.at,
        site=site,
        event=event.kind.value,
        subject=event.subject,
        severity=event.severity.value,
        message=event.message,
    )


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
