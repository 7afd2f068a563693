"""Device state and the immutable per-tick snapshot, plus the one formatter for unreported values.

A device's state has three independent axes (DESIGN.md), never collapsed into one flag:

- `CommandedMode`: what it was told to do (mining / ai / idle / curtailed / sleeping);
- `Observed`: what it is actually doing, from its last reading;
- `Freshness`: how old that reading is (fresh / stale / lost), or `pending` before the first poll.

Everything here is frozen: presenters (TUI, MQTT, snapshot CLI) read snapshots, never mutate
them.
"""

from __future__ import annotations

import math
from enum import StrEnum

import msgspec

from console.economics import FleetEarnings
from console.market import MarketSnapshot
from drivers.cgminer.reading import AsicReading, MinerState
from drivers.gpu_reading import GpuHealth, GpuReading
from drivers.host import HostReading

MISSING = "—"
"""How every presenter shows a value the hardware did not report."""


class DeviceKind(StrEnum):
    ASIC = "asic"
    GPU = "gpu"


class CommandedMode(StrEnum):
    MINING = "mining"
    AI = "ai"
    IDLE = "idle"
    CURTAILED = "curtailed"
    SLEEPING = "sleeping"


class Observed(StrEnum):
    HASHING = "hashing"
    RUNNING_JOB = "running_job"
    IDLE = "idle"
    DEGRADED = "degraded"
    FAULTED = "faulted"
    SWITCHING = "switching"  # a GPU between modes: draining, verifying free, launching
    UNKNOWN = "unknown"  # no usable reading (never polled, unreachable, or access denied)


class Freshness(StrEnum):
    PENDING = "pending"  # no poll has completed yet
    FRESH = "fresh"
    STALE = "stale"
    LOST = "lost"


class ErrorKind(StrEnum):
    """Why the last poll failed; `access_denied` means the device answered, so it is not dead."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    DECODE = "decode"
    ACCESS_DENIED = "access_denied"
    COMMAND = "command"
    INTERNAL = "internal"


DEGRADED_HASHRATE_FRACTION = 0.80
"""Below this fraction of nominal, a hashing miner is reported degraded (boards or chips lost)."""


class GpuJobView(msgspec.Struct, frozen=True, kw_only=True):
    """The AI job on a GPU, as presenters show it."""

    id: int
    name: str
    customer: str
    state: str  # the queue's state: starting / running / preempting / ...
    rate_usd_per_gpu_hour: float
    progress: float  # 0..1
    runtime_s: float  # completed runs plus the current one
    earned_usd: float  # completed runs plus the current one, at the job's rate


class GpuView(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU: what NVML says, where its mode state machine is, and what its workload does."""

    uuid: str
    nvml: GpuReading | None  # None until NVML has seen this UUID (or NVML is unavailable)
    mode: str  # commanded: mining / ai / idle
    state: str  # the switch state machine: MINING, DRAINING_MINER, ..., FAULTED, LOST
    switching: bool  # a switch is running now
    error: str | None = None  # why the GPU is held, or the last failure
    failed_step: str | None = None
    mode_since: float | None = None  # unix seconds
    miner_pid: int | None = None
    miner_hashrate_hs: float | None = None  # from the miner's API while mining
    miner_algorithm: str | None = None
    miner_error: str | None = None  # why the miner API could not be read
    job: GpuJobView | None = None
    nvml_unavailable: str | None = None  # "no GPUs: <reason>" when NVML itself is down

    @property
    def power_w(self) -> float | None:
        sample = self.nvml.sample if self.nvml else None
        return sample.power_w if sample else None

    @property
    def temp_c(self) -> float | None:
        sample = self.nvml.sample if self.nvml else None
        return sample.temp_gpu_c if sample else None


class DeviceStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One device at one instant: identity, the three state axes, last reading, poll health."""

    device_id: str
    kind: DeviceKind
    name: str
    host: str
    port: int
    model: str | None
    commanded: CommandedMode
    observed: Observed
    freshness: Freshness
    reading: AsicReading | None = None
    last_ok_at: float | None = None  # unix seconds of the last good reading
    last_attempt_at: float | None = None
    last_error: str | None = None  # message of the most recent failed poll (None after a success)
    error_kind: ErrorKind | None = None
    consecutive_failures: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    privileged: bool = False
    tags: tuple[str, ...] = ()
    gpu: GpuView | None = None  # set for kind "gpu"
    controls: tuple[str, ...] = ()
    """Control actions this device accepts now (driver capability names such as "curtail"):
    empty unless the device is privileged and its firmware is known to support them."""

    @property
    def problem(self) -> bool:
        """True when an operator should look: not fresh, not doing what it was told, or failing."""
        if self.freshness in (Freshness.STALE, Freshness.LOST):
            return True
        if self.observed in (Observed.DEGRADED, Observed.FAULTED):
            return True
        return self.last_error is not None


def observe_asic(reading: AsicReading | None) -> Observed:
    """What an ASIC is doing, judged from its reading alone (freshness is a separate axis)."""
    if reading is None:
        return Observed.UNKNOWN
    if reading.state is MinerState.ERROR:
        return Observed.FAULTED
    if reading.state in (MinerState.SLEEPING, MinerState.CURTAILED):
        return Observed.IDLE
    hashrate = reading.hashrate_avg_hs if reading.hashrate_avg_hs else reading.hashrate_5s_hs
    if not hashrate:
        # Pools configured but no hashrate and no sleep flag: the firmware says mining, the
        # chips say otherwise (is_mining lies, cgminer-protocol.md §5).
        return Observed.FAULTED
    dead_boards = any(b.chips_found == 0 for b in reading.boards)
    nominal = reading.nominal_hashrate_hs
    if dead_boards or (nominal and hashrate < DEGRADED_HASHRATE_FRACTION * nominal):
        return Observed.DEGRADED
    return Observed.HASHING


_GPU_HOLDING = frozenset({"FAULTED", "LOST", "NEEDS_RESET"})


def observe_gpu(view: GpuView | None) -> Observed:
    """What a GPU is doing, from NVML health, its state machine and its workload."""
    if view is None or view.nvml is None:
        return Observed.UNKNOWN
    if view.state in _GPU_HOLDING or view.nvml.health in (
        GpuHealth.LOST,
        GpuHealth.FAULTED,
        GpuHealth.NEEDS_RESET,
    ):
        return Observed.FAULTED
    if view.switching or view.state not in ("MINING", "AI_RUNNING", "IDLE"):
        return Observed.SWITCHING
    if view.state == "AI_RUNNING" and view.job is not None:
        sample = view.nvml.sample
        throttled = sample is not None and any(
            r in ("THERM-HW", "BRAKE", "HW") for r in sample.throttle_reasons
        )
        return Observed.DEGRADED if throttled else Observed.RUNNING_JOB
    if view.state == "MINING":
        # The miner process alone is not proof: its API must report hashrate.
        return Observed.HASHING if view.miner_hashrate_hs else Observed.DEGRADED
    return Observed.IDLE


class SiteTotals(msgspec.Struct, frozen=True, kw_only=True):
    devices: int
    fresh: int
    stale: int
    lost: int
    pending: int
    problems: int
    hashrate_hs: float
    power_w: float
    power_estimated_w: float  # the part of power_w that comes from nameplates, not meters


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The whole site at one instant. Built once per tick; presenters only read it."""

    site: str
    taken_at: float  # unix seconds
    devices: tuple[DeviceStatus, ...]
    totals: SiteTotals
    host: HostReading | None = None
    # Filled by the site's pricing (console.pricing) after the store builds the snapshot:
    # the market at `taken_at` (every figure with source and age) and the fleet's earnings
    # (columns in `devices` order; `earnings.row(i)` / `earnings.by_id(id)` for one device).
    market: MarketSnapshot | None = None
    earnings: FleetEarnings | None = None


def totals_part(d: DeviceStatus) -> tuple[float, float, float]:
    """One device's part of the site totals: (SHA-256 hashrate H/s, power W, of it estimated W).

    Stale readings still count (the miner is probably still hashing); lost ones do not,
    because a total that includes a dead miner's last value would lie."""
    if d.freshness is Freshness.LOST:
        return 0.0, 0.0, 0.0
    if d.gpu is not None:
        # GPU hashrate is another algorithm's: it never adds to the site's SHA-256 total.
        return 0.0, d.gpu.power_w or 0.0, 0.0
    r = d.reading
    if r is None:
        return 0.0, 0.0, 0.0
    hashrate = r.hashrate_5s_hs or r.hashrate_avg_hs or 0.0
    if r.power_w is None:
        return hashrate, 0.0, 0.0
    return hashrate, r.power_w, r.power_w if r.power_estimated else 0.0


def site_totals(devices: tuple[DeviceStatus, ...]) -> SiteTotals:
    """Sum what is known (`totals_part` of each device, in order)."""
    counts = dict.fromkeys(Freshness, 0)
    hashrate = power = estimated = 0.0
    problems = 0
    for d in devices:
        counts[d.freshness] += 1
        problems += d.problem
        h, p, e = totals_part(d)
        hashrate += h
        power += p
        estimated += e
    return SiteTotals(
        devices=len(devices),
        fresh=counts[Freshness.FRESH],
        stale=counts[Freshness.STALE],
        lost=counts[Freshness.LOST],
        pending=counts[Freshness.PENDING],
        problems=problems,
        hashrate_hs=hashrate,
        power_w=power,
        power_estimated_w=estimated,
    )


_SI = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def fmt_hashrate(hs: float | None) -> str:
    """`104.2 TH/s`; `—` when unreported."""
    if hs is None or not math.isfinite(hs):
        return MISSING
    for scale, prefix in _SI:
        if abs(hs) >= scale:
            return f"{hs / scale:.1f} {prefix}H/s"
    return f"{hs:.0f} H/s"


def fmt_num(value: float | int | None, spec: str = ".0f", unit: str = "") -> str:
    """Format a number with an optional unit; `—` when unreported (never 0)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    text = format(value, spec)
    return f"{text} {unit}" if unit else text


def fmt_usd(value: float | None, spec: str = ",.2f") -> str:
    """`$1,234.56`, `-$0.82`; `—` when unknown."""
    if value is None or not math.isfinite(value):
        return MISSING
    text = format(abs(value), spec)
    return f"-${text}" if value < 0 else f"${text}"


def fmt_age(age_s: float | None) -> str:
    """How old a figure is: `12 s`, `5 min`, `3.2 h`, `318 d`; `age unknown` when None."""
    if age_s is None or not math.isfinite(age_s):
        return "age unknown"
    if age_s < 90:
        return f"{age_s:.0f} s"
    if age_s < 90 * 60:
        return f"{age_s / 60:.0f} min"
    if age_s < 48 * 3600:
        return f"{age_s / 3600:.1f} h"
    return f"{age_s / 86400:.0f} d"
