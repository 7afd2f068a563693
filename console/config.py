"""Site config: TOML on disk → validated, frozen msgspec Structs; every problem reported at once.

Responsibilities:

* The Structs below are the only declaration of what a config file may say. There is one
  Struct per TOML table (`[site]` → `SiteSection`, `[poller]` → `PollerConfig`, each
  `[[asics]]` entry → `AsicConfig`, ...), and the string under each field is its documentation.
  Adding a table is adding a Struct and a field on `SiteConfig`: the validator walks the
  Structs generically, so unknown keys, missing keys, types and constraints come for free.
* `check_config` reports *every* problem in a file (msgspec stops at the first), each with the
  file, the key path in TOML's vocabulary (`asics[3].port`; entries are numbered from 0 in file
  order), the line where we could find it, what was found against what was expected, and a fix.
  `load_config` raises `ConfigError` carrying the same list.
* Rules that span fields or entries (unique names and addresses, one password source,
  loopback-only simulators) live here too, so a config that loads is one the site can run.
* Resolution of defaults that depend on other tables (`SiteConfig.asic_timing`) and on the
  environment (`SiteSection.state_dir`) happens here, once, so callers never repeat fallbacks.

Who reads what: `console.site` builds drivers, the poller and simulators from `SiteConfig`;
`console.cli` runs `check_config` for `hashpivot config check`. Secrets are never in the TOML:
an entry names an environment variable or a file that holds them.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import ipaddress
import json
import math
import os
import re
import tomllib
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

import msgspec
import msgspec.inspect as mi
from msgspec import Meta

__all__ = [
    "PERSONAS",
    "WEEKDAYS",
    "AsicConfig",
    "AsicSimulate",
    "ConfigError",
    "GpuConfig",
    "GpuMode",
    "GpuSimulation",
    "GpuSimulationJob",
    "HostConfig",
    "MarketConfig",
    "MarketLiveConfig",
    "MarketScenario",
    "MqttConfig",
    "PollTiming",
    "PollerConfig",
    "PowerConfig",
    "Problem",
    "SiteConfig",
    "SiteSection",
    "StopStepConfig",
    "TouWindow",
    "WorkloadsConfig",
    "bundled_demo_path",
    "check_config",
    "format_problem",
    "load_config",
]

DEFAULT_CGMINER_PORT: Final = 4028
"""The CGMiner API port every firmware family listens on unless reconfigured."""

# Freshness defaults when [poller] leaves stale_after_s / lost_after_s at 0 ("automatic"):
# stale after missing about two polls, lost after ten polls but never sooner than two minutes,
# so that a fast demo interval does not flap a device to "lost" on one slow reply.
AUTO_STALE_INTERVALS: Final = 2.5
AUTO_LOST_INTERVALS: Final = 10.0
AUTO_LOST_MIN_S: Final = 120.0

# ---------------------------------------------------------------------------------------------
# Constrained scalar types. `extra["expected"]` is the phrase problems use for "expected ...";
# `examples` feed the "fix: write key = ..." hint when a key has no default to suggest.

SiteName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9_-]+$",
        max_length=64,
        examples=["demo"],
        extra={"expected": "a short id of lowercase letters, digits, '_' and '-' (at most 64)"},
    ),
]
DeviceName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_.-]+$",
        max_length=64,
        examples=["rack1-s19jpro-01"],
        extra={"expected": "a name of letters, digits, '_', '.' and '-' (at most 64)"},
    ),
]
HostName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=253,
        examples=["192.0.2.21"],
        extra={"expected": "an IPv4/IPv6 address or a hostname"},
    ),
]
Port = Annotated[
    int,
    Meta(
        ge=1, le=65535, examples=[DEFAULT_CGMINER_PORT], extra={"expected": "an integer 1..65535"}
    ),
]
EnvVarName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        examples=["MINER_ADMIN_PASS"],
        extra={"expected": "an environment variable name (letters, digits, '_')"},
    ),
]
FilePath = Annotated[str, Meta(min_length=1, examples=["/etc/hashpivot/miner.pass"])]
Tag = Annotated[str, Meta(min_length=1, max_length=64)]
# Upper bounds catch unit mistakes (a timeout of 5000 meant as milliseconds is 83 minutes).
IntervalSeconds = Annotated[
    float,
    Meta(
        gt=0, le=86_400, examples=[30.0], extra={"expected": "a number of seconds > 0 and <= 86400"}
    ),
]
TimeoutSeconds = Annotated[
    float,
    Meta(gt=0, le=600, examples=[5.0], extra={"expected": "a number of seconds > 0 and <= 600"}),
]
AutoSeconds = Annotated[
    float,
    Meta(
        ge=0,
        le=86_400,
        extra={"expected": "a number of seconds >= 0 (0 = automatic), at most 86400"},
    ),
]
Concurrency = Annotated[int, Meta(ge=1, le=65_536)]
Seed = Annotated[int, Meta(ge=0)]

GpuUuid = Annotated[
    str,
    Meta(
        pattern=r"^(GPU|MIG)-[0-9A-Za-z-]{1,96}$",
        examples=["GPU-5f0c1b2e-8a3d-4c4e-9b1a-0d2f3e4a5b6c"],
        extra={"expected": "a GPU UUID as NVML reports it (GPU-… or MIG-…)"},
    ),
]
WaitSeconds = Annotated[
    float,
    Meta(ge=0, le=600, examples=[15.0], extra={"expected": "a number of seconds 0..600"}),
]
Bytes = Annotated[int, Meta(ge=0, examples=[536_870_912], extra={"expected": "a byte count >= 0"})]
Watts = Annotated[
    float, Meta(gt=0, le=5_000, examples=[300.0], extra={"expected": "watts > 0 and <= 5000"})
]
GainFraction = Annotated[
    float, Meta(ge=0, le=10, examples=[0.12], extra={"expected": "a fraction >= 0 (0.12 = 12 %)"})
]
ArgvItem = Annotated[str, Meta(min_length=1)]
SignalName = Literal["SIGINT", "SIGTERM", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT"]
GpuMode = Literal["mining", "ai", "idle"]
MinerDialect = Literal["trex", "lolminer"]
BrokerUrlText = Annotated[
    str,
    Meta(
        min_length=1,
        examples=["mqtt://127.0.0.1:1883/hashpivot"],
        extra={"expected": "a broker URL: mqtt://host[:port][/prefix] or mqtts://... for TLS"},
    ),
]
MqttClientId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_.-]+$",
        max_length=128,
        examples=["hashpivot-north-hall"],
        extra={"expected": "letters, digits, '_', '.' and '-' (at most 128)"},
    ),
]
DiscoveryPrefix = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
        max_length=128,
        examples=["homeassistant"],
        extra={"expected": "topic levels of letters, digits, '_' and '-', joined by '/'"},
    ),
]
PublishIntervalSeconds = Annotated[
    float,
    Meta(ge=0.05, le=60, extra={"expected": "a number of seconds >= 0.05 and <= 60"}),
]
RefreshSeconds = Annotated[
    float,
    Meta(ge=10, le=86_400, extra={"expected": "a number of seconds >= 10 and <= 86400"}),
]
QueueMessages = Annotated[int, Meta(ge=100, le=10_000_000)]
ReconnectSeconds = Annotated[
    float, Meta(ge=1, le=3600, extra={"expected": "a number of seconds >= 1 and <= 3600"})
]
KeepaliveSeconds = Annotated[int, Meta(ge=5, le=3600)]

Persona = Literal["antminer_stock", "whatsminer", "braiins", "luxos", "avalon", "vnish", "cgminer"]
PERSONAS: Final[tuple[str, ...]] = get_args(Persona)
"""Simulated firmware personalities, named like `drivers.cgminer.reading.Firmware` values."""

# Market and power figures. Upper bounds catch unit mistakes (a price in cents, a fee in percent).
UsdPerBtc = Annotated[
    float,
    Meta(
        gt=0,
        le=100_000_000,
        examples=[91_580.0],
        extra={"expected": "a price in USD per BTC, > 0"},
    ),
]
Difficulty = Annotated[
    float,
    Meta(
        ge=1,
        examples=[146.47e12],
        extra={"expected": "a network difficulty >= 1 (e.g. 146.47e12)"},
    ),
]
BtcPerBlock = Annotated[
    float,
    Meta(ge=0, le=50, examples=[3.125], extra={"expected": "an amount in BTC per block, 0..50"}),
]
Fraction = Annotated[
    float,
    Meta(
        ge=0,
        lt=1,
        examples=[0.025],
        extra={"expected": "a fraction >= 0 and < 1 (2.5 % is 0.025)"},
    ),
]
Utilization = Annotated[
    float,
    Meta(ge=0, le=1, examples=[0.6], extra={"expected": "a fraction 0..1 (60 % is 0.6)"}),
]
UsdPerKwh = Annotated[
    float,
    Meta(
        ge=0,
        le=10,
        examples=[0.045],
        extra={"expected": "a price in USD per kWh, 0..10 (4.5 ¢/kWh is 0.045)"},
    ),
]
Overhead = Annotated[
    float,
    Meta(
        ge=1,
        le=3,
        examples=[1.05],
        extra={"expected": "a factor 1..3 of IT load (1.05 = 5 % on top for cooling and aux)"},
    ),
]
UsdRate = Annotated[
    float,
    Meta(ge=0, le=1_000, extra={"expected": "a rate in USD, 0..1000"}),
]
RateName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_. -]+$",
        min_length=1,
        max_length=64,
        extra={"expected": "a name of letters, digits, '_', '.', '-' and spaces"},
    ),
]
Factor = Annotated[
    float,
    Meta(gt=0, le=100, examples=[0.9], extra={"expected": "a factor > 0 (0.9 = 10 % lower)"}),
]
ClockTime = Annotated[
    str,
    Meta(
        pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$",
        examples=["14:00"],
        extra={"expected": 'a local time "HH:MM" (00:00..24:00)'},
    ),
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[str, ...]] = get_args(Weekday)
"""`[[power.tou]].days` values, Monday first (the order of `datetime.weekday()`)."""
Month = Annotated[int, Meta(ge=1, le=12, extra={"expected": "a month number 1..12"})]
PoolScheme = Literal["FPPS", "PPS+", "PPS", "PPLNS"]
HttpUrl = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=300,
        examples=["https://mempool.space/api"],
        extra={"expected": "an http(s) URL"},
    ),
]


# ---------------------------------------------------------------------------------------------
# The schema: one Struct per table.


class SiteSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[site]`: who this site is and where it keeps its state."""

    name: SiteName
    """Short id of the site, used in MQTT topics and device ids. Required; `[a-z0-9_-]+`."""

    state_dir: str | None = None
    """Directory for persistent state (SQLite: job queue, GPU mode intent, audit log, earnings).
    `~` is expanded and a relative path is taken from the config file's folder. Default:
    `$XDG_STATE_HOME/hashpivot`, else `~/.local/state/hashpivot`. After `load_config` this is
    always set, to an absolute path."""

    timezone: str | None = None
    """IANA timezone of the site, e.g. "America/Chicago": where "today" starts for accrued
    earnings and what the `[[power.tou]]` times mean. Default: this machine's local time."""

    @property
    def zone(self) -> tzinfo | None:
        """`timezone` as a tzinfo; None means this machine's local time. A config that loaded
        has a valid name (checked by `check_config`)."""
        return zoneinfo.ZoneInfo(self.timezone) if self.timezone else None

    @property
    def state_path(self) -> Path:
        """`state_dir` as a `Path`; the XDG default if the Struct was built without one."""
        return Path(self.state_dir) if self.state_dir else default_state_dir()


class PollTiming(msgspec.Struct, frozen=True, kw_only=True):
    """Effective timings of one device after defaults and "automatic" values are resolved."""

    poll_interval_s: float
    """Seconds between polls while the device answers."""
    timeout_s: float
    """Connect + read deadline of one request, in seconds."""
    backoff_max_s: float
    """Cap of the back-off between polls after failures, in seconds."""
    stale_after_s: float
    """Seconds without a good reading after which the data shows as stale."""
    lost_after_s: float
    """Seconds without a good reading after which the device shows as lost (>= stale_after_s)."""


class PollerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[poller]`: how hard and how often devices are polled, and when data counts as old."""

    max_concurrency: Concurrency = 256
    """Device polls in flight at once across the whole site (>= 1). Raise it for sites with
    thousands of miners; lower it if the management network or a NAT box drops connections."""

    asic_poll_interval_s: IntervalSeconds = 30.0
    """Default seconds between polls of one ASIC; an `[[asics]]` entry may override it."""

    gpu_poll_interval_s: IntervalSeconds = 1.0
    """Seconds between NVML samples of every GPU and reads of the GPU miners' APIs."""

    asic_timeout_s: TimeoutSeconds = 5.0
    """Default connect + read deadline per request to one ASIC, in seconds."""

    backoff_max_s: IntervalSeconds = 300.0
    """Cap, in seconds, of the exponential back-off between polls of a device that keeps failing."""

    stale_after_s: AutoSeconds = 0.0
    """Seconds without a good reading before a device's data shows as stale.
    0 = automatic: 2.5 × the device's poll interval."""

    lost_after_s: AutoSeconds = 0.0
    """Seconds without a good reading before a device shows as lost.
    0 = automatic: max(120, 10 × the device's poll interval)."""

    def timing(self, *, poll_interval_s: float, timeout_s: float) -> PollTiming:
        """Resolve the automatic freshness thresholds for a device polled every `poll_interval_s`.

        Used for ASICs (`SiteConfig.asic_timing`) and for any later device kind."""
        stale_s = self.stale_after_s or AUTO_STALE_INTERVALS * poll_interval_s
        lost_s = self.lost_after_s or max(AUTO_LOST_MIN_S, AUTO_LOST_INTERVALS * poll_interval_s)
        return PollTiming(
            poll_interval_s=poll_interval_s,
            timeout_s=timeout_s,
            backoff_max_s=self.backoff_max_s,
            stale_after_s=stale_s,
            # An explicit stale threshold above the automatic lost one must not make a device
            # "lost" before it was ever "stale".
            lost_after_s=max(lost_s, stale_s),
        )


class HostConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[host]`: metrics (psutil) of the machine running hashpivot, usually the GPU rig's host."""

    enabled: bool = True
    """Sample CPU, memory, disks, network and temperatures of this machine."""

    interval_s: IntervalSeconds = 5.0
    """Seconds between host samples."""


class AsicSimulate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[asics.simulate]`: run a simulated miner for this entry, in-process (demo/test sites)."""

    persona: Persona
    """Firmware personality to simulate: one of `PERSONAS`."""

    faults: str = ""
    """Fault spec for this miner, e.g. `"hang"` or `"quirk=Q3"`; checked by the simulator."""

    seed: Seed = 0
    """Seed of the simulation's randomness (uptime, noise, pools); same seed, same miner."""


class AsicConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `[[asics]]` entry: a miner reached over the CGMiner JSON API."""

    name: DeviceName
    """Unique device name, shown in the console and used in ids and topics."""

    host: HostName
    """IPv4/IPv6 address or hostname of the miner's API."""

    port: Port = DEFAULT_CGMINER_PORT
    """TCP port of the CGMiner API."""

    model: str | None = None
    """Expected model, e.g. "Antminer S19j Pro"; used when the firmware does not say."""

    privileged: bool = False
    """Allow control commands (curtail, wake, reboot, pool changes). Off unless set here."""

    poll_interval_s: IntervalSeconds | None = None
    """Seconds between polls of this miner; default `[poller].asic_poll_interval_s`."""

    timeout_s: TimeoutSeconds | None = None
    """Per-request deadline for this miner; default `[poller].asic_timeout_s`."""

    password_env: EnvVarName | None = None
    """Environment variable holding the admin password (Whatsminer/LuxOS writes)."""

    password_file: FilePath | None = None
    """File holding the admin password; an alternative to `password_env`, not both."""

    tags: tuple[Tag, ...] = ()
    """Free labels for filtering and grouping, e.g. `["row1", "hydro"]`."""

    simulate: AsicSimulate | None = None
    """Simulate this miner in-process (demo/test sites only; host must be 127.x.y.z)."""


class MarketLiveConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[market.live]`: optional live market feed (mempool.space, CoinGecko). Off by default.

    When on, BTC price, network difficulty, average fees per block and the tip height (hence
    the block subsidy) come from the feed; each value falls back to its last good value, then,
    after `last_good_max_age_s`, to the static `[market]` figure."""

    enabled: bool = False
    """Fetch live market data. Default false: every figure comes from `[market]` (or the
    reference defaults) and is shown with its date."""

    mempool_url: HttpUrl = "https://mempool.space/api"
    """Base URL of a mempool.space-compatible REST API (difficulty, fees, tip height, price).
    A self-hosted mempool instance works too."""

    coingecko_url: HttpUrl = "https://api.coingecko.com/api/v3"
    """Base URL of the CoinGecko API, the price fallback when mempool's price fails. For the
    Pro plan: https://pro-api.coingecko.com/api/v3."""

    coingecko_api_key_env: EnvVarName | None = None
    """Environment variable holding a CoinGecko demo API key (sent as `x-cg-demo-api-key`).
    Optional: the public endpoint works without one at low rates."""

    price_interval_s: Annotated[float, Meta(ge=30, le=86_400)] = 60.0
    """Seconds between BTC price fetches (>= 30; CoinGecko's demo tier allows ~30 calls/min)."""

    chain_interval_s: Annotated[float, Meta(ge=60, le=86_400)] = 600.0
    """Seconds between fetches of difficulty, fees and tip height (>= 60; they change per
    block, about every 10 minutes)."""

    timeout_s: TimeoutSeconds = 10.0
    """Deadline of one HTTP request (connect + response), in seconds."""

    backoff_max_s: Annotated[float, Meta(ge=1, le=86_400)] = 1800.0
    """Cap of the exponential back-off after failures, in seconds. An HTTP 429 with
    `Retry-After` waits as long as the server asks."""

    last_good_max_age_s: Annotated[float, Meta(ge=60, le=30 * 86_400)] = 86_400.0
    """How long a last good live value is used after fetches start failing (shown as
    "last good …" with its age); after that the static `[market]` figure is used."""


class MarketScenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `[[market.scenarios]]` entry: a what-if on the same fleet (fleet totals only)."""

    name: DeviceName
    """Short name shown in the console, e.g. "btc-10pct"."""

    btc_price_factor: Factor = 1.0
    """Multiply the BTC price by this (0.9 = 10 % lower)."""

    difficulty_factor: Factor = 1.0
    """Multiply the network difficulty by this (1.05 = 5 % higher)."""

    power_price_factor: Factor = 1.0
    """Multiply the power price by this (1.25 = 25 % dearer)."""


class MarketConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[market]`: static market figures, used when the live feed is off or has failed.

    Every key is optional. A key left out takes the reference default of 2026-01-12
    (shared/reference/economics.md) and is shown as "default 2026-01-12" with that age, so a
    stale figure never passes for a live one. A key given here is shown as "config"."""

    as_of: date | None = None
    """The date the figures in this table were taken (a TOML date: 2026-01-12). Shown as their
    age. Without it the age of a "config" figure is unknown and shows as "—"."""

    btc_price_usd: UsdPerBtc | None = None
    """BTC price in USD. Default 91580 (2026-01-12)."""

    network_difficulty: Difficulty | None = None
    """Bitcoin network difficulty. Default 146.47e12 (retarget of 2026-01-08)."""

    block_subsidy_btc: BtcPerBlock | None = None
    """Block subsidy in BTC. Default 3.125 (since block 840,000). With the live feed on it is
    computed from the tip height instead."""

    fees_per_block_btc: BtcPerBlock | None = None
    """Average transaction fees per block, in BTC. Default 0.017 (week to 2026-01-12)."""

    pool_fee: Fraction | None = None
    """Bitcoin pool fee as a fraction of revenue. Default 0.025 (2.5 %)."""

    pool_scheme: PoolScheme | None = None
    """Payout scheme: FPPS, PPS+, PPS or PPLNS. Default FPPS. PPS pays the subsidy only (no
    fees); PPS+, FPPS and PPLNS are priced at the expected subsidy + fees (PPLNS varies
    around it)."""

    gpu_pool_fee: Fraction | None = None
    """Pool fee for GPU mining, as a fraction. Default: `pool_fee`."""

    gpu_mining_usd_per_mhs_day: dict[RateName, UsdRate] = {}
    """Gross GPU mining revenue per algorithm in USD per MH/s per day, e.g.
    `{ kawpow = 0.012 }`. Merged over the defaults (kawpow 0.012, etchash 0.018,
    autolykos2 0.008, firopow 0.025: Jan 2026 hand estimates, low confidence)."""

    ai_rate_usd_per_gpu_hour: dict[RateName, UsdRate] = {}
    """AI rental rate per GPU model in USD per GPU-hour (what the renter pays), e.g.
    `{ H100 = 2.0, RTX4090 = 0.35 }`. A GPU matches the key whose words all appear in its
    name ("A100 80GB" matches "NVIDIA A100-SXM4-80GB"); the longest match wins. Merged over
    the defaults (H100 2.00, H200 2.60, A100 80GB 1.00, L40S 0.75, RTX4090 0.35,
    RTX3090 0.20)."""

    ai_platform_fee: Fraction | None = None
    """The marketplace's cut of AI rental revenue, as a fraction. Default 0.20 (assumption:
    the exact figure is not published)."""

    ai_expected_utilization: Utilization | None = None
    """Fraction of hours a GPU offered for rent is billed, used when no queued job fits.
    Default 0.60 (marketplace assumption; 0.95 is typical under contract)."""

    ai_load_factor: Utilization | None = None
    """GPU power under an AI job as a fraction of its default power limit, for estimates.
    Default 0.8."""

    ai_idle_power_fraction: Utilization | None = None
    """GPU power while idle as a fraction of its default power limit, for estimates.
    Default 0.15."""

    live: MarketLiveConfig = msgspec.field(default_factory=MarketLiveConfig)
    """`[market.live]`: the optional live feed."""

    scenarios: tuple[MarketScenario, ...] = ()
    """`[[market.scenarios]]`: what-ifs computed on every snapshot. Default: BTC −10 %,
    difficulty +5 %, power +25 %."""


class TouWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `[[power.tou]]` entry: a time-of-use price window in the site's timezone."""

    name: DeviceName
    """Short name shown with the price, e.g. "summer-peak"."""

    start: ClockTime
    """Local start time "HH:MM" (inclusive)."""

    end: ClockTime
    """Local end time "HH:MM" (exclusive); "24:00" for midnight. An end before the start wraps
    past midnight ("22:00" to "06:00")."""

    price_usd_per_kwh: UsdPerKwh
    """Power price inside this window, in USD per kWh."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    """Days the window applies on (of its start time): mon tue wed thu fri sat sun. Default
    every day."""

    months: tuple[Month, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
    """Months the window applies in, 1..12. Default every month."""


class PowerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[power]`: what a kWh costs and how much the site adds to each device's own draw."""

    price_usd_per_kwh: UsdPerKwh | None = None
    """All-in power price in USD per kWh outside any time-of-use window. Default 0.045."""

    overhead_asic: Overhead | None = None
    """Site power per watt an ASIC draws (PUE-like: cooling, aux). Default 1.05 (assumption for
    air-cooled halls)."""

    overhead_gpu: Overhead | None = None
    """Site power per watt a GPU draws (host CPU/RAM/NIC, cooling). Default 1.25
    (assumption)."""

    tou: tuple[TouWindow, ...] = ()
    """`[[power.tou]]`: time-of-use windows; the first window (in file order) that contains
    the current local time sets the price."""


class StopStepConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One step of stopping a process: `{ signal = "SIGINT", wait_s = 15 }`."""

    signal: SignalName
    """Signal to send: SIGINT, SIGTERM, SIGKILL, SIGUSR1, SIGUSR2, SIGHUP or SIGQUIT."""

    wait_s: WaitSeconds
    """Seconds to wait for the process to exit before the next step."""


DEFAULT_MINER_STOP: Final[tuple[StopStepConfig, ...]] = (
    StopStepConfig(signal="SIGINT", wait_s=15.0),
    StopStepConfig(signal="SIGTERM", wait_s=5.0),
    StopStepConfig(signal="SIGKILL", wait_s=5.0),
)


class GpuConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `[[gpus]]` entry: an NVIDIA GPU that mines or runs AI jobs, one miner process per GPU."""

    name: DeviceName
    """Unique device name, shown in the console and used in ids, topics and `gpu.switch`."""

    uuid: GpuUuid
    """The GPU's UUID as NVML reports it (`nvidia-smi -L`). GPUs are addressed by UUID only:
    the NVML index is PCI order, not the CUDA ordinal."""

    model: str | None = None
    """Expected model, e.g. "RTX 4090"; a hint shown until NVML reports the name."""

    initial_mode: GpuMode = "mining"
    """Mode at the very first start, before any mode was persisted: mining, ai or idle."""

    miner_argv: tuple[ArgvItem, ...] = ()
    """The miner command as a list (never a shell string). `{api_port}`, `{gpu_uuid}`,
    `{gpu_name}` and `{python}` (hashpivot's interpreter) are replaced; it runs with
    `CUDA_VISIBLE_DEVICES=<uuid>`. Empty: no miner, so this GPU cannot be switched to mining."""

    miner_api_port: Port | None = None
    """Port of the miner's HTTP API on 127.0.0.1 (T-Rex `--api-bind-http`, lolMiner
    `--apiport`); needed to confirm the miner is hashing after a switch."""

    miner_api_dialect: MinerDialect = "trex"
    """Which API the miner speaks: trex (`/summary`, T-Rex) or lolminer."""

    miner_stop: tuple[StopStepConfig, ...] = DEFAULT_MINER_STOP
    """How to stop the miner: signals in order, each with its wait; must end with SIGKILL.
    Default SIGINT 15 s, SIGTERM 5 s, SIGKILL 5 s."""

    min_dwell_s: WaitSeconds | None = None
    """Minimum seconds in a mode before a switch (unless forced); default
    `[workloads].min_dwell_s`. Limited to 600 here; use [workloads] for longer."""

    ai_power_limit_w: Watts | None = None
    """Power limit for AI work (clamped to the GPU's limits); default: the GPU's default
    limit. Applied only when `privileged = true`."""

    mining_power_limit_w: Watts | None = None
    """Power limit while mining; applied only when `privileged = true`."""

    privileged: bool = False
    """Allow hardware writes on this GPU (power limit, clock reset; needs root). Off unless set."""

    tags: tuple[Tag, ...] = ()
    """Free labels for filtering and grouping, e.g. `["rig1"]`."""


class WorkloadsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[workloads]`: defaults for GPU mode switching and the AI job queue."""

    jobs_dir: str = "jobs"
    """Where job logs and checkpoint folders go; relative to the state directory."""

    min_dwell_s: AutoSeconds = 600.0
    """Minimum seconds a GPU stays in a mode before a switch (hysteresis); `force` overrides."""

    min_gain_fraction: GainFraction = 0.12
    """A policy switch needs an expected gain above this fraction (0.12 = 12 %)."""

    verify_free_timeout_s: TimeoutSeconds = 30.0
    """Seconds to wait for NVML to show the GPU free (no process, memory at baseline)."""

    verify_poll_s: TimeoutSeconds = 0.5
    """Seconds between NVML checks while verifying free and confirming a launch."""

    free_memory_tolerance_bytes: Bytes = 512 * 1024 * 1024
    """Memory used above the GPU's idle baseline that still counts as free (driver reserve)."""

    launch_confirm_timeout_s: TimeoutSeconds = 60.0
    """Seconds for a launched process to appear on its GPU in NVML."""

    miner_ready_timeout_s: TimeoutSeconds = 180.0
    """Seconds for a started miner to report hashrate > 0 (DAG builds take tens of seconds)."""

    job_grace_s: TimeoutSeconds = 60.0
    """Default seconds a job gets to checkpoint and exit after its checkpoint signal."""

    job_kill_wait_s: TimeoutSeconds = 5.0
    """After the grace: seconds between SIGTERM and SIGKILL, and for SIGKILL to take effect."""

    watch_interval_s: TimeoutSeconds = 1.0
    """Seconds between checks of running jobs and miners (exit, progress, earnings)."""

    max_attempts: Annotated[int, Meta(ge=1, le=1000)] = 5
    """A job that was started this many times without finishing is marked failed. A run the
    console stopped (a switch, a shutdown) that ended in a checkpoint does not count."""

    miner_restart_backoff_max_s: IntervalSeconds = 60.0
    """Cap of the back-off between restarts of a miner that keeps exiting."""


GpuSimModel = Literal["rtx3090", "rtx4090", "a100-80gb", "h100", "l40s"]


class GpuSimulationJob(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `[[gpu_simulation.jobs]]` entry: a simulated AI job put in the queue the first time
    the simulated site starts (the demo's pre-filled queue)."""

    name: DeviceName
    """Job name shown in the queue."""

    customer: str = ""
    """Customer or contract the job is billed to."""

    rate_usd_per_gpu_hour: Annotated[float, Meta(ge=0, le=1000)] = 1.0
    """What the customer pays per GPU-hour, in USD."""

    min_vram_gb: Annotated[float, Meta(ge=0, le=1024)] = 0.0
    """Memory the job needs on its GPU, in GB (10^9 bytes)."""

    priority: Annotated[int, Meta(ge=-1000, le=1000)] = 0
    """Higher runs first."""

    total_steps: Annotated[int, Meta(ge=1, le=100_000_000)] = 36_000
    """Training steps of the simulated job (0.1 s each)."""


class GpuSimulation(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[gpu_simulation]`: run the `[[gpus]]` on a simulated NVML library (demo/test sites).

    The simulated GPUs' UUIDs follow from `seed` and their position in `models`
    (`python -m simulators.gpu_tool create DIR --models ... --seed N` prints them), and each
    `[[gpus]]` entry must name one of them."""

    models: tuple[GpuSimModel, ...]
    """One simulated board per entry, in PCI bus order."""

    seed: Seed = 0
    """Seed the UUIDs (and the physics' randomness) derive from."""

    dir: str | None = None
    """Directory of the simulated GPUs' shared state; default `gpu-sim` under `state_dir`."""

    jobs: tuple[GpuSimulationJob, ...] = ()
    """`[[gpu_simulation.jobs]]`: the queue a fresh simulated site starts with."""


class MqttConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[mqtt]`: the broker `hashpivot headless` publishes to and takes commands from.

    `hashpivot headless --mqtt URL` overrides `url` (and may carry a password, which this
    table never does). Topic schema and examples: docs/mqtt.md."""

    url: BrokerUrlText = "mqtt://127.0.0.1:1883/hashpivot"
    """Broker URL: `mqtt://host[:port][/prefix]`, or `mqtts://` for TLS (port 8883 by default).
    The path is the topic prefix (default `hashpivot`). A user name may be given here; a
    password never is (use `password_env` or `password_file`)."""

    username: str | None = None
    """User name for the broker, if it is not in `url`."""

    password_env: EnvVarName | None = None
    """Environment variable holding the broker password. When neither this nor `password_file`
    is set, `HASHPIVOT_MQTT_PASSWORD` is used if it is set."""

    password_file: FilePath | None = None
    """File holding the broker password (first line); an alternative to `password_env`."""

    client_id: MqttClientId | None = None
    """MQTT client id; default `hashpivot-<site name>`. Two processes with one id disconnect
    each other in a loop, so give a second bridge for the same site its own."""

    ca_file: FilePath | None = None
    """PEM file of the CA(s) that signed the broker's certificate (mqtts:// only); default:
    the system's trusted CAs."""

    cert_file: FilePath | None = None
    """PEM client certificate, for brokers that authenticate clients by certificate."""

    key_file: FilePath | None = None
    """PEM private key of `cert_file` (unencrypted), if it is not inside `cert_file`."""

    tls_insecure: bool = False
    """Accept any broker certificate and host name (mqtts:// only). Off unless set here: it
    gives up the protection TLS exists for; use it only on a lab network."""

    discovery: bool = True
    """Publish Home Assistant device discovery (one HA device per miner or GPU). Turning it
    off removes the discovery documents this site published before."""

    discovery_prefix: DiscoveryPrefix = "homeassistant"
    """Home Assistant's discovery prefix (its MQTT integration setting)."""

    commands: bool = False
    """Accept commands on `<prefix>/v1/<site>/cmd/<action>` (curtail, wake, reboot, GPU switch,
    jobs). Off unless set here; when on, restrict who may write `cmd/#` with the broker's
    ACL (docs/mqtt.md) — the ACL is what authenticates an operator."""

    publish_interval_s: PublishIntervalSeconds = 0.25
    """Seconds between two looks at the site: each publishes the devices whose state changed."""

    full_refresh_s: RefreshSeconds = 300.0
    """Seconds between two re-publications of every retained state, changed or not."""

    queue_max: QueueMessages = 50_000
    """Messages held for the broker at most. While it is away, only the latest state of each
    device is kept; past this bound new messages are dropped (and counted in `site/state`).
    Never less than 3 per device + 100 (one copy of every retained topic): a smaller value is
    raised to that."""

    reconnect_max_s: ReconnectSeconds = 60.0
    """Cap, in seconds, of the exponential back-off between connection attempts."""

    keepalive_s: KeepaliveSeconds = 30
    """MQTT keep-alive, in seconds: the broker publishes the bridge's `offline` will after
    about 1.5 × this without traffic from a dead or frozen bridge."""


class SiteConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A whole config file."""

    site: SiteSection
    """`[site]`: required."""

    poller: PollerConfig = msgspec.field(default_factory=PollerConfig)
    """`[poller]`: optional."""

    host: HostConfig = msgspec.field(default_factory=HostConfig)
    """`[host]`: optional."""

    asics: tuple[AsicConfig, ...] = ()
    """`[[asics]]`: one entry per miner."""

    market: MarketConfig = msgspec.field(default_factory=MarketConfig)
    """`[market]`: static market figures and the optional live feed."""

    power: PowerConfig = msgspec.field(default_factory=PowerConfig)
    """`[power]`: power price, time-of-use windows and site overhead."""
    workloads: WorkloadsConfig = msgspec.field(default_factory=WorkloadsConfig)
    """`[workloads]`: optional."""

    gpus: tuple[GpuConfig, ...] = ()
    """`[[gpus]]`: one entry per GPU."""

    gpu_simulation: GpuSimulation | None = None
    """`[gpu_simulation]`: simulate the GPUs (demo/test sites only)."""

    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    """`[mqtt]`: optional; used by `hashpivot headless`."""

    @property
    def gpu_sim_path(self) -> Path | None:
        """Where the simulated GPUs keep their shared state (None: real GPUs)."""
        sim = self.gpu_simulation
        if sim is None:
            return None
        path = Path(sim.dir).expanduser() if sim.dir else Path("gpu-sim")
        return path if path.is_absolute() else self.site.state_path / path

    def gpu_min_dwell_s(self, gpu: GpuConfig) -> float:
        """Minimum dwell of `gpu`: its own value, else `[workloads].min_dwell_s`."""
        return gpu.min_dwell_s if gpu.min_dwell_s is not None else self.workloads.min_dwell_s

    @property
    def jobs_path(self) -> Path:
        """`[workloads].jobs_dir` resolved against the state directory."""
        jobs = Path(self.workloads.jobs_dir).expanduser()
        return jobs if jobs.is_absolute() else self.site.state_path / jobs

    def asic_timing(self, asic: AsicConfig) -> PollTiming:
        """Effective timings of `asic`: its own values, else the `[poller]` defaults."""
        return self.poller.timing(
            poll_interval_s=(
                asic.poll_interval_s
                if asic.poll_interval_s is not None
                else self.poller.asic_poll_interval_s
            ),
            timeout_s=asic.timeout_s if asic.timeout_s is not None else self.poller.asic_timeout_s,
        )


# ---------------------------------------------------------------------------------------------
# Problems


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing wrong with a config file, phrased for the person who edits it."""

    file: str
    """The config file, as given by the caller."""
    key_path: str
    """Where, in TOML terms: `poller.max_concurrency`, `asics[3].port` (entries count from 0);
    empty for problems with the whole file."""
    message: str
    """What was found and what was expected."""
    hint: str = ""
    """How to fix it."""
    line: int | None = None
    """1-based line in the file, where it could be found."""
    column: int | None = None
    """1-based column, for TOML syntax errors."""


class ConfigError(ValueError):
    """A config file could not be loaded; `problems` lists everything wrong with it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(format_problem(p) for p in self.problems))


def format_problem(problem: Problem) -> str:
    """One line: `file: table (line N): key: message — fix: hint`."""
    table, key = _split_key_path(problem.key_path)
    text = problem.file
    if table:
        text += f": {table}"
    if problem.line is not None:
        where = f"line {problem.line}"
        if problem.column is not None:
            where += f", column {problem.column}"
        text += f" ({where})"
    if key:
        text += f": {key}"
    text += f": {problem.message}"
    if problem.hint:
        text += f" — fix: {problem.hint}"
    return text


def _split_key_path(key_path: str) -> tuple[str, str]:
    """`asics[3].port` → (`asics[3]`, `port`); a path without a dot is all table."""
    in_quotes = False
    last_dot = -1
    for i, ch in enumerate(key_path):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "." and not in_quotes:
            last_dot = i
    if last_dot < 0:
        return key_path, ""
    return key_path[:last_dot], key_path[last_dot + 1 :]


# ---------------------------------------------------------------------------------------------
# Public entry points


def bundled_demo_path() -> Path:
    """The bundled simulated site, `config/demo.toml` at the repository root."""
    return Path(__file__).resolve().parents[1] / "config" / "demo.toml"


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/hashpivot`, else `~/.local/state/hashpivot`."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "hashpivot"
    return Path.home() / ".local" / "state" / "hashpivot"


def load_config(path: str | Path) -> SiteConfig:
    """Read and validate a config file; raise `ConfigError` listing every problem."""
    config, problems = _load(Path(path))
    if problems or config is None:
        raise ConfigError(problems)
    return config


def check_config(path: str | Path) -> list[Problem]:
    """Every problem in a config file, in file order; empty when it loads clean. Never raises
    for the file's content or absence: those are problems too."""
    return _load(Path(path))[1]


def _load(path: Path) -> tuple[SiteConfig | None, list[Problem]]:
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [
            Problem(
                file=file,
                key_path="",
                message="config file not found",
                hint=f"check the path; the bundled simulated site is {bundled_demo_path()}",
            )
        ]
    except OSError as exc:
        return None, [
            Problem(
                file=file,
                key_path="",
                message=f"cannot read the config file: {exc.strerror or exc}",
                hint="check that it is a readable file (permissions, not a directory)",
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Problem(
                file=file,
                key_path="",
                message=f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                hint="TOML files must be UTF-8; re-save the file as UTF-8",
                line=data.count(b"\n", 0, exc.start) + 1,
            )
        ]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_syntax_problem(file, text, str(exc))]

    ctx = _Context(file=file, source=_SourceMap(text))
    values, _ = _decode_fields(raw, SiteConfig, (), ctx)
    _check_site_rules(ctx)
    problems = sorted(ctx.problems, key=lambda p: p.line or 0)
    if problems:
        return None, problems
    config = SiteConfig(**values)
    try:
        state_dir = _resolve_state_dir(config.site.state_dir, path.resolve().parent)
    except (RuntimeError, OSError) as exc:  # expanduser: unknown user or no home directory
        return None, [
            Problem(
                file=file,
                key_path="site.state_dir",
                message=f"cannot expand {config.site.state_dir!r}: {exc}",
                hint="write an absolute path",
                line=ctx.source.line_for(("site", "state_dir")),
            )
        ]
    site = msgspec.structs.replace(config.site, state_dir=str(state_dir))
    return msgspec.structs.replace(config, site=site), []


def _resolve_state_dir(state_dir: str | None, config_dir: Path) -> Path:
    if not state_dir:
        return default_state_dir()
    path = Path(state_dir).expanduser()
    return path if path.is_absolute() else config_dir / path


_TOML_LOCATION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")
_SYNTAX_HINTS: Final = (
    ("Invalid value", 'strings need quotes (host = "192.0.2.21"); booleans are true/false'),
    ("Cannot declare", "each [table] may appear once; repeat [[asics]] for more entries"),
    ("Cannot overwrite", "each key may appear once per table"),
    ("Expected '=' after a key", "write key = value on one line"),
    ("Unclosed", "close the string, array or table on the same line"),
    ("Illegal character", "close the string before the end of the line"),
)


def _syntax_problem(file: str, text: str, error: str) -> Problem:
    match = _TOML_LOCATION.search(error)
    message = error[: match.start()] if match else error
    line: int | None = None
    column: int | None = None
    if match and match.group(1):
        line, column = int(match.group(1)), int(match.group(2))
    elif match:  # "at end of document"
        line = max(1, len(text.splitlines()))
    hint = next((h for prefix, h in _SYNTAX_HINTS if message.startswith(prefix)), "")
    return Problem(
        file=file,
        key_path="",
        message=f"TOML syntax error: {message}",
        hint=hint or "fix the TOML syntax at this position",
        line=line,
        column=column,
    )


# ---------------------------------------------------------------------------------------------
# The generic validator: walks the Structs, checks each key on its own so that one bad key
# never hides another, and records decoded entries for the cross-entry rules.

_Path = tuple[str | int, ...]
_S = TypeVar("_S", bound=msgspec.Struct)


class _Invalid:
    """Marker for a value that failed validation (its problem is already recorded)."""


_INVALID: Final = _Invalid()


@dataclass
class _Context:
    file: str
    source: _SourceMap
    problems: list[Problem] = field(default_factory=list)
    # Decoded fields of every array-of-tables entry, valid or not, keyed by the array's path:
    # the cross-entry rules (unique names, unique addresses) run on whatever decoded.
    entries: dict[_Path, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)

    def add(self, path: _Path, message: str, hint: str = "") -> None:
        self.problems.append(
            Problem(
                file=self.file,
                key_path=_render_path(path),
                message=message,
                hint=hint,
                line=self.source.line_for(path),
            )
        )


def _decode_fields(
    raw: Mapping[str, Any], cls: type[msgspec.Struct], path: _Path, ctx: _Context
) -> tuple[dict[str, Any], bool]:
    """Validate each key of a table against `cls`; return the decoded values and whether all
    keys were valid. Unknown and missing keys are problems too."""
    rule = _TABLE_RULES.get(cls)
    if _whole_table_decodable(cls):
        # Fast path: a clean table decodes in one msgspec call (a 5,000-miner site loads in
        # well under a second); the key-by-key walk below only runs to explain a failure.
        try:
            obj = msgspec.convert(raw, cls)
        except msgspec.ValidationError:
            pass
        else:
            decoded = {name: getattr(obj, name) for name in cls.__struct_fields__}
            return decoded, rule is None or rule(raw, decoded, path, ctx)
    infos = _fields(cls)
    ok = True
    for key, value in raw.items():
        if key not in infos:
            ok = False
            _unknown_key(key, value, infos, path, ctx)
    values: dict[str, Any] = {}
    for key, info in infos.items():
        if key not in raw:
            if info.required:
                ok = False
                _missing_key(key, info.type, path, ctx)
            continue
        decoded = _decode_value(raw[key], info.type, info.default, (*path, key), ctx)
        if isinstance(decoded, _Invalid):
            ok = False
        else:
            values[info.name] = decoded
    if rule is not None and not rule(raw, values, path, ctx):
        ok = False
    return values, ok


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """A table's keys (encode names) and their fields; cached, as resolving the annotations
    is the slow part of msgspec.structs.fields."""
    return {f.encode_name: f for f in msgspec.structs.fields(cls)}


@functools.cache
def _whole_table_decodable(cls: type[msgspec.Struct]) -> bool:
    """Whether msgspec alone can decode a valid table of `cls` with nothing skipped: no array
    of tables (its entries feed the cross-entry rules) and no nested table with rules."""
    for info in _fields(cls).values():
        if _array_of_structs(info.type) is not None:
            return False
        nested = _struct_of(info.type)
        if nested is not None and (nested in _TABLE_RULES or not _whole_table_decodable(nested)):
            return False
    return True


def _decode_value(value: Any, typ: Any, default: Any, path: _Path, ctx: _Context) -> Any:
    struct_cls = _struct_of(typ)
    if struct_cls is not None:
        if not isinstance(value, dict):
            ctx.add(
                path,
                f"expected a table {_table_label(path)}, got {_found(value)}",
                f"write {_table_label(path)} on its own line and put its keys under it",
            )
            return _INVALID
        values, ok = _decode_fields(value, struct_cls, path, ctx)
        return struct_cls(**values) if ok else _INVALID

    item_struct = _array_of_structs(typ)
    if item_struct is not None:
        label = _table_label((*path, 0))
        if isinstance(value, dict):
            ctx.add(
                path,
                f"expected an array of tables {label} (one per entry), got a single table",
                f"write {label} (double brackets) above each entry",
            )
            return _INVALID
        if not isinstance(value, list):
            ctx.add(
                path,
                f"expected an array of tables {label}, got {_found(value)}",
                f"write {label} above each entry",
            )
            return _INVALID
        decoded: list[Any] = []
        seen = ctx.entries.setdefault(path, [])
        all_ok = True
        for index, item in enumerate(value):
            item_path = (*path, index)
            if not isinstance(item, dict):
                ctx.add(item_path, f"expected a table {label}, got {_found(item)}")
                all_ok = False
                continue
            values, ok = _decode_fields(item, item_struct, item_path, ctx)
            seen.append((index, values))
            if ok:
                decoded.append(item_struct(**values))
            all_ok = all_ok and ok
        return tuple(decoded) if all_ok else _INVALID

    return _decode_scalar(value, typ, default, path, ctx)


def _decode_scalar(value: Any, typ: Any, default: Any, path: _Path, ctx: _Context) -> Any:
    """Keys whose values are not tables: msgspec checks type and constraints; we phrase it."""
    try:
        return msgspec.convert(value, typ)
    except msgspec.ValidationError:
        info = _non_none(mi.type_info(typ))
        # An array with bad items: report each bad item on its own.
        if isinstance(info, mi.VarTupleType | mi.ListType) and isinstance(value, list):
            item_typ = _array_item(typ)
            for index, item in enumerate(value):
                try:
                    msgspec.convert(item, item_typ)
                except msgspec.ValidationError:
                    ctx.add(
                        (*path, index),
                        f"expected {_describe(mi.type_info(item_typ))}, got {_found(item)}",
                    )
            return _INVALID
        # A table of name = value with bad entries: report each bad entry on its own.
        if isinstance(info, mi.DictType) and isinstance(value, dict):
            key_typ, value_typ = _dict_types(typ)
            for name, item in value.items():
                try:
                    msgspec.convert(name, key_typ)
                except msgspec.ValidationError:
                    ctx.add(
                        (*path, name),
                        f"bad name {name!r}: expected {_describe(mi.type_info(key_typ))}",
                        "rename it",
                    )
                    continue
                try:
                    msgspec.convert(item, value_typ)
                except msgspec.ValidationError:
                    ctx.add(
                        (*path, name),
                        f"expected {_describe(mi.type_info(value_typ))}, got {_found(item)}",
                    )
            return _INVALID
        key = str(path[-1])
        ctx.add(
            path,
            f"expected {_describe(info)}, got {_found(value)}",
            _fix_hint(key, value, typ, info, default),
        )
        return _INVALID


def _unknown_key(
    key: str, value: Any, infos: Mapping[str, msgspec.structs.FieldInfo], path: _Path, ctx: _Context
) -> None:
    where = _table_label(path) if path else "the top level"
    candidates = list(infos)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    is_table = isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )
    if is_table:
        label = _table_label(path + ((key, 0) if isinstance(value, list) else (key,)))
        message = f"unknown table {label}"
        if close:
            right = _table_label(path + ((close[0], 0) if isinstance(value, list) else (close[0],)))
            message += f"; did you mean {right}?"
            hint = f"rename it to {right}"
        else:
            hint = "remove it; valid here: " + ", ".join(
                _field_label(path, c, infos) for c in candidates
            )
    else:
        message = f"unknown key {key!r} in {where}" if path else f"unknown top-level key {key!r}"
        if close:
            message += f"; did you mean {close[0]!r}?"
            hint = f"rename it to {close[0]}"
        else:
            hint = "remove it; valid keys: " + ", ".join(
                _field_label(path, c, infos) for c in candidates
            )
    ctx.add((*path, key), message, hint)


def _missing_key(key: str, typ: Any, path: _Path, ctx: _Context) -> None:
    struct_cls = _struct_of(typ)
    if struct_cls is not None:
        label = _table_label((*path, key))
        required = [
            f"{f.encode_name} = {_toml_value(_example(f.type, f.default))}"
            for f in _fields(struct_cls).values()
            if f.required
        ]
        hint = f"add a {label} table" + (f" with {', '.join(required)}" if required else "")
        ctx.add((*path, key), f"missing required table {label}", hint)
        return
    where = _table_label(path) if path else "the top level"
    example = _example(typ, msgspec.NODEFAULT)
    hint = f"add {key} = {_toml_value(example)}" if example is not None else f"add {key} = ..."
    # Point at the table header: the key itself is not in the file.
    ctx.add((*path, key), f"missing required key {key!r} in {where}", hint)


def _fix_hint(key: str, value: Any, typ: Any, info: mi.Type, default: Any) -> str:
    if isinstance(info, mi.Metadata):
        info = info.type
    # A number written as a string: `port = "4028"`.
    if isinstance(info, mi.IntType | mi.FloatType) and isinstance(value, str):
        try:
            number: float = int(value.strip()) if isinstance(info, mi.IntType) else float(value)
            msgspec.convert(number, typ)
        except (ValueError, msgspec.ValidationError):
            pass
        else:
            return f"write {key} = {_toml_value(number)} (a number, without quotes)"
    if isinstance(info, mi.BoolType) and isinstance(value, str | int):
        # `privileged = "yes"` or `enabled = 1`: TOML booleans are the bare words true/false.
        word = str(value).strip().lower()
        unquote = " (without quotes)" if isinstance(value, str) else ""
        if word in {"true", "yes", "on", "1"}:
            return f"write {key} = true{unquote}"
        if word in {"false", "no", "off", "0"}:
            return f"write {key} = false{unquote}"
    if isinstance(info, mi.LiteralType):
        close = difflib.get_close_matches(
            str(value), [str(v) for v in info.values], n=1, cutoff=0.5
        )
        if close:
            return f"write {key} = {_toml_value(close[0])}"
    if isinstance(info, mi.VarTupleType | mi.ListType) and not isinstance(value, list | dict):
        try:
            msgspec.convert([value], typ)
        except msgspec.ValidationError:
            pass
        else:
            return f"write {key} = [{_toml_value(value)}]"
    if isinstance(info, mi.StrType) and isinstance(value, str) and info.pattern:
        for candidate in _slug_candidates(value):
            try:
                msgspec.convert(candidate, typ)
            except msgspec.ValidationError:
                continue
            return f"write {key} = {_toml_value(candidate)}"
    if isinstance(info, mi.StrType) and not isinstance(value, str | list | dict):
        return f'quote it: {key} = "{_toml_value(value)}"'
    example = _example(typ, default)
    if example is not None:
        return f"write {key} = {_toml_value(example)}"
    return ""


def _slug_candidates(value: str) -> list[str]:
    """Plausible repairs of a name that breaks its pattern: `My Site` → `my-site`."""
    candidates = [
        re.sub(r"[^A-Za-z0-9_.-]+", "-", value.strip()).strip("-"),
        re.sub(r"[^a-z0-9_-]+", "-", value.strip().lower()).strip("-"),
    ]
    return [c for c in candidates if c]


# ---------------------------------------------------------------------------------------------
# Rules that span keys or entries


def _asic_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    ok = True
    host = values.get("host")
    if isinstance(host, str):
        host_problem = _host_problem(host)
        if host_problem is not None:
            ctx.add((*path, "host"), *host_problem)
            ok = False
        elif "simulate" in raw and not _is_sim_loopback(host):
            ctx.add(
                (*path, "host"),
                f"host {host!r} is not a loopback address, but this entry has "
                "[asics.simulate]; expected an IPv4 address in 127.0.0.0/8",
                "use a 127.x.y.z address such as 127.0.2.1 (one per simulated miner), "
                "or remove [asics.simulate] for a real miner",
            )
            ok = False
    if "password_env" in raw and "password_file" in raw:
        ctx.add(
            (*path, "password_file"),
            "both password_env and password_file are set; expected at most one",
            "keep one: password_env names an environment variable, password_file a file",
        )
        ok = False
    if "simulate" in raw and "model" not in raw:
        ctx.add(
            (*path, "simulate"),
            "a simulated miner needs a model, but this entry has no model",
            'add model = "Antminer S19j Pro" (or another simulated model) to the entry',
        )
        ok = False
    return ok


def _poller_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    stale_s = values.get("stale_after_s") or 0.0
    lost_s = values.get("lost_after_s") or 0.0
    if stale_s and lost_s and lost_s <= stale_s:
        ctx.add(
            (*path, "lost_after_s"),
            f"lost_after_s ({_toml_value(lost_s)}) must be greater than stale_after_s "
            f"({_toml_value(stale_s)})",
            f"write lost_after_s = {_toml_value(max(AUTO_LOST_MIN_S, 4 * stale_s))}, "
            "or 0 for automatic",
        )
        return False
    return True


def _site_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    name = values.get("timezone")
    if not isinstance(name, str):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(_timezones()), n=1, cutoff=0.6)
        ctx.add(
            (*path, "timezone"),
            f'unknown timezone {name!r}; expected an IANA name such as "America/Chicago"',
            f"write timezone = {_toml_value(close[0])}"
            if close
            else 'write an IANA name ("Europe/Oslo", "UTC"), or leave it out for local time',
        )
        return False
    return True


@functools.cache
def _timezones() -> frozenset[str]:
    try:
        return frozenset(zoneinfo.available_timezones())
    except OSError:
        return frozenset()


def _live_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    ok = True
    for key in ("mempool_url", "coingecko_url"):
        url = values.get(key)
        if not isinstance(url, str):
            continue
        problem = _url_problem(key, url)
        if problem is not None:
            ctx.add((*path, key), *problem)
            ok = False
    return ok


def _url_problem(key: str, url: str) -> tuple[str, str] | None:
    """(message, hint) for a feed base URL that is not usable: not http(s), no host, or plain
    http to a host that is not loopback (market requests must not cross a network in clear)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return (
            f"expected an http(s) URL with a host, got {url!r}",
            f'write {key} = "https://…", the API\'s base URL',
        )
    if parsed.query or parsed.fragment:
        return (
            f"expected a base URL without '?' or '#', got {url!r}",
            "remove the query/fragment; API keys go in an environment variable",
        )
    if parsed.scheme == "http":
        try:
            loopback = ipaddress.ip_address(parsed.hostname).is_loopback
        except ValueError:
            loopback = parsed.hostname == "localhost"
        if not loopback:
            return (
                f"plain http to {parsed.hostname!r}; expected https (http only for a loopback "
                "test server)",
                f"write {key} = {_toml_value('https://' + url.split('://', 1)[1])}",
            )
    return None


def _tou_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    start, end = values.get("start"), values.get("end")
    if isinstance(start, str) and start == end:
        ctx.add(
            (*path, "end"),
            f"end ({end}) equals start: the window would be empty",
            "give a different end time; for a whole day leave [[power.tou]] out or use "
            'start = "00:00", end = "24:00"',
        )
        return False
    if isinstance(start, str) and start == "24:00":
        ctx.add((*path, "start"), "start may not be 24:00", 'write start = "00:00"')
        return False
    return True


_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
_MINER_PLACEHOLDERS: Final = frozenset({"api_port", "gpu_uuid", "gpu_name", "python"})


def _gpu_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    ok = True
    stop = values.get("miner_stop")
    if isinstance(stop, tuple) and (not stop or stop[-1].signal != "SIGKILL"):
        ctx.add(
            (*path, "miner_stop"),
            "the stop sequence must end with SIGKILL, or a miner that ignores signals would "
            "hold the GPU forever",
            'add { signal = "SIGKILL", wait_s = 5.0 } as the last step',
        )
        ok = False
    argv = values.get("miner_argv")
    if isinstance(argv, tuple):
        for index, item in enumerate(argv):
            unknown = set(_PLACEHOLDER.findall(item)) - _MINER_PLACEHOLDERS
            if unknown:
                ctx.add(
                    (*path, "miner_argv", index),
                    f"unknown placeholder {{{sorted(unknown)[0]}}} in {item!r}",
                    "use {api_port}, {gpu_uuid}, {gpu_name} or {python}",
                )
                ok = False
        uses_port = any("{api_port}" in item for item in argv)
        if uses_port and "miner_api_port" not in raw:
            ctx.add(
                (*path, "miner_argv"),
                "miner_argv uses {api_port} but the entry has no miner_api_port",
                "add miner_api_port = 4067 (a free port on 127.0.0.1, one per GPU)",
            )
            ok = False
    if values.get("initial_mode", "mining") == "mining" and "miner_argv" not in raw:
        ctx.add(
            (*path, "initial_mode"),
            'initial_mode is "mining" (the default) but the entry has no miner_argv',
            'add miner_argv = ["t-rex", ...], or write initial_mode = "idle"',
        )
        ok = False
    return ok


def _mqtt_rules(
    raw: Mapping[str, Any], values: Mapping[str, Any], path: _Path, ctx: _Context
) -> bool:
    from console.headless.url import BrokerUrlError, parse_broker_url

    ok = True
    tls: bool | None = None
    url = values.get("url")
    if isinstance(url, str):
        try:
            parsed = parse_broker_url(url)
        except BrokerUrlError as exc:
            ctx.add((*path, "url"), exc.message, exc.hint)
            return False
        tls = parsed.tls
        if parsed.password is not None:
            ctx.add(
                (*path, "url"),
                "the url carries a password; secrets never go in the config file",
                "remove ':password' from the url and set password_env (an environment "
                "variable) or password_file",
            )
            ok = False
        if parsed.username is not None and "username" in raw:
            ctx.add(
                (*path, "username"),
                "the user name is given twice: in url and in username",
                "keep one of them",
            )
            ok = False
    if "password_env" in raw and "password_file" in raw:
        ctx.add(
            (*path, "password_file"),
            "both password_env and password_file are set; expected at most one",
            "keep one: password_env names an environment variable, password_file a file",
        )
        ok = False
    if tls is False:
        for key in ("ca_file", "cert_file", "key_file", "tls_insecure"):
            if key in raw and raw[key] not in (False, None):
                ctx.add(
                    (*path, key),
                    f"{key} is a TLS setting, but the url is mqtt:// (plain TCP)",
                    f"write the url as mqtts://... (TLS, port 8883 by default), or remove {key}",
                )
                ok = False
    if "key_file" in raw and "cert_file" not in raw:
        ctx.add(
            (*path, "key_file"),
            "key_file is set without cert_file",
            "add cert_file (the client certificate the key belongs to), or remove key_file",
        )
        ok = False
    return ok


_TABLE_RULES: Final[
    dict[
        type[msgspec.Struct],
        Callable[[Mapping[str, Any], Mapping[str, Any], _Path, _Context], bool],
    ]
] = {
    AsicConfig: _asic_rules,
    PollerConfig: _poller_rules,
    SiteSection: _site_rules,
    MarketLiveConfig: _live_rules,
    TouWindow: _tou_rules,
    GpuConfig: _gpu_rules,
    MqttConfig: _mqtt_rules,
}


def _check_site_rules(ctx: _Context) -> None:
    """Cross-entry rules: names unique within each array of tables, ASIC addresses unique."""
    for array_path, entries in ctx.entries.items():
        names: dict[str, int] = {}
        for index, values in entries:
            name = values.get("name")
            if not isinstance(name, str):
                continue
            if name in names:
                first = (*array_path, names[name])
                ctx.add(
                    (*array_path, index, "name"),
                    f"duplicate name {name!r}: already used by {_render_path(first)}"
                    + _at_line(ctx, first),
                    f"give every {_table_label((*array_path, 0))} entry its own name",
                )
            else:
                names[name] = index

    endpoints: dict[tuple[str, int], int] = {}
    for index, values in ctx.entries.get(("asics",), []):
        host = values.get("host")
        if not isinstance(host, str) or _host_problem(host) is not None:
            continue
        port = values.get("port", DEFAULT_CGMINER_PORT)
        endpoint = (_normalise_host(host), port)
        if endpoint in endpoints:
            first = ("asics", endpoints[endpoint])
            ctx.add(
                ("asics", index, "host"),
                f"duplicate address {_endpoint_text(host, port)}: already used by "
                f"{_render_path(first)}" + _at_line(ctx, first),
                "each miner needs its own host:port; correct the host or port of one of them",
            )
        else:
            endpoints[endpoint] = index

    _unique_gpu_values(ctx, "uuid", "every GPU has its own UUID (nvidia-smi -L lists them)")
    _unique_gpu_values(ctx, "miner_api_port", "give each GPU's miner its own API port")


def _unique_gpu_values(ctx: _Context, key: str, hint: str) -> None:
    seen: dict[Any, int] = {}
    for index, values in ctx.entries.get(("gpus",), []):
        value = values.get(key)
        if value is None:
            continue
        if value in seen:
            first = ("gpus", seen[value])
            ctx.add(
                ("gpus", index, key),
                f"duplicate {key} {_toml_value(value)}: already used by {_render_path(first)}"
                + _at_line(ctx, first),
                hint,
            )
        else:
            seen[value] = index


def _at_line(ctx: _Context, path: _Path) -> str:
    line = ctx.source.line_for(path)
    return f" (line {line})" if line is not None else ""


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _host_problem(host: str) -> tuple[str, str] | None:
    """(message, hint) when `host` is neither an IP literal nor a valid hostname."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if "://" in host:
        bare = host.split("://", 1)[1].split("/", 1)[0]
        return (f"expected an address or hostname, got a URL {host!r}", f'write host = "{bare}"')
    if host.startswith("[") and host.endswith("]"):
        return (
            f"expected an IPv6 address without brackets, got {host!r}",
            f'write host = "{host[1:-1]}"',
        )
    if host.count(":") == 1:
        bare, _, port = host.partition(":")
        if port.isdigit():
            return (
                f"expected a host without a port, got {host!r}",
                f'write host = "{bare}" and port = {port}',
            )
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        return (
            f"expected an IPv4 address, got {host!r}",
            "write four numbers 0..255 separated by dots",
        )
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return (
            f"expected an IPv4/IPv6 address or a hostname, got {host!r}",
            "hostnames use letters, digits, '-' and dots; IPv6 without brackets",
        )
    return None


def _is_sim_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv4Address) and address.is_loopback


def _normalise_host(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower().rstrip(".")


def _endpoint_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------------------------------
# Type introspection and phrasing


_UnionType = type(int | None)


def _strip_annotated(typ: Any) -> Any:
    while get_origin(typ) is Annotated:
        typ = get_args(typ)[0]
    return typ


def _without_none(typ: Any) -> Any:
    typ = _strip_annotated(typ)
    if get_origin(typ) in (Union, _UnionType):
        args = [a for a in get_args(typ) if a is not type(None)]
        if len(args) == 1:
            return _strip_annotated(args[0])
    return typ


def _struct_of(typ: Any) -> type[msgspec.Struct] | None:
    typ = _without_none(typ)
    if isinstance(typ, type) and issubclass(typ, msgspec.Struct):
        return typ
    return None


def _array_item(typ: Any) -> Any:
    typ = _without_none(typ)
    args = get_args(typ)
    return args[0] if args else Any


def _dict_types(typ: Any) -> tuple[Any, Any]:
    args = get_args(_without_none(typ))
    return (args[0], args[1]) if len(args) == 2 else (Any, Any)


def _array_of_structs(typ: Any) -> type[msgspec.Struct] | None:
    typ = _without_none(typ)
    if get_origin(typ) in (tuple, list):
        args = get_args(typ)
        if get_origin(typ) is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            return None
        return _struct_of(args[0]) if args else None
    return None


def _non_none(info: mi.Type) -> mi.Type:
    """TOML has no null: `X | None` is "X, or leave the key out"."""
    if isinstance(info, mi.UnionType):
        rest = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return info


def _describe(info: mi.Type) -> str:
    """The "expected ..." phrase for a type, in TOML words."""
    info = _non_none(info)
    if isinstance(info, mi.Metadata):
        if info.extra and "expected" in info.extra:
            return str(info.extra["expected"])
        info = info.type
    if isinstance(info, mi.BoolType):
        return "true or false"
    if isinstance(info, mi.IntType):
        return "an integer" + _bounds(info.ge, info.gt, info.le, info.lt)
    if isinstance(info, mi.FloatType):
        return "a number" + _bounds(info.ge, info.gt, info.le, info.lt)
    if isinstance(info, mi.StrType):
        text = "a string"
        if info.min_length:
            text = "a non-empty string"
        if info.max_length is not None:
            text += f" of at most {info.max_length} characters"
        if info.pattern:
            text += f" matching {info.pattern}"
        return text
    if isinstance(info, mi.LiteralType):
        return "one of " + ", ".join(str(v) for v in info.values)
    if isinstance(info, mi.VarTupleType | mi.ListType):
        item = info.item_type.type if isinstance(info.item_type, mi.Metadata) else info.item_type
        if isinstance(item, mi.StrType):
            return "an array of strings" + (" (none empty)" if item.min_length else "")
        return f"an array of: {_describe(info.item_type)}"
    if isinstance(info, mi.StructType):
        return "a table"
    if isinstance(info, mi.DictType):
        return f"a table of name = {_describe(info.value_type)}"
    if isinstance(info, mi.UnionType):
        return " or ".join(_describe(t) for t in info.types)
    return "a valid value"


def _bounds(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    if ge is not None and le is not None:
        return f" {_num(ge)}..{_num(le)}"
    parts = []
    if ge is not None:
        parts.append(f">= {_num(ge)}")
    if gt is not None:
        parts.append(f"> {_num(gt)}")
    if le is not None:
        parts.append(f"<= {_num(le)}")
    if lt is not None:
        parts.append(f"< {_num(lt)}")
    return " " + " and ".join(parts) if parts else ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _example(typ: Any, default: Any) -> Any:
    """A value to suggest: the field's default, else the type's first `Meta` example."""
    if (
        default is not msgspec.NODEFAULT
        and default is not None
        and not isinstance(default, msgspec.Struct)
    ):
        return default
    info = _non_none(mi.type_info(typ))
    if isinstance(info, mi.Metadata):
        examples = (info.extra_json_schema or {}).get("examples")
        if examples:
            return examples[0]
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    return None


def _found(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        text = _toml_value(value)
        return text if len(text) <= 60 else f"an array of {len(value)} items"
    return _toml_value(value)


def _toml_value(value: Any) -> str:
    """`value` as it would be written in TOML (strings shortened past 60 characters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key_text(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _render_path(path: _Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + _key_text(part)
    return text


def _table_label(path: _Path) -> str:
    """How a table at `path` is written in a header: `[poller]`, `[[asics]]`, `[asics.simulate]`."""
    names = ".".join(_key_text(p) for p in path if isinstance(p, str))
    return f"[[{names}]]" if path and isinstance(path[-1], int) else f"[{names}]"


def _field_label(path: _Path, key: str, infos: Mapping[str, msgspec.structs.FieldInfo]) -> str:
    typ = infos[key].type
    if _struct_of(typ) is not None:
        return _table_label((*path, key))
    if _array_of_structs(typ) is not None:
        return _table_label((*path, key, 0))
    return key


# ---------------------------------------------------------------------------------------------
# Line numbers: a simple scan of table headers and `key =` lines. Good enough for hand-written
# files; a header inside a multi-line string could fool it, which only costs a wrong line.

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]+?)\s*\]\]?\s*(?:#.*)?$")


def _header_name(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


class _SourceMap:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (0-based line index, dotted name, is an array-of-tables header)
        self.headers: list[tuple[int, tuple[str, ...], bool]] = []
        for index, line in enumerate(self.lines):
            match = _HEADER.match(line)
            if match:
                self.headers.append((index, _header_name(match.group(2)), match.group(1) == "[["))
        # Header positions (indexes into self.headers, ascending) by name, for bisection:
        # finding entry 4,999 of [[asics]] must not scan every header.
        self._arrays: dict[tuple[str, ...], list[int]] = {}
        self._tables: dict[tuple[str, ...], list[int]] = {}
        for position, (_, name, is_array) in enumerate(self.headers):
            (self._arrays if is_array else self._tables).setdefault(name, []).append(position)

    def _find(self, name: tuple[str, ...], nth: int, lo: int, hi: int, array: bool) -> int | None:
        """Position of the `nth` header called `name` in [lo, hi); a plain table path also
        finds an array's first entry ([[gpus]] named as `gpus`)."""
        candidates = []
        for positions in (
            (self._arrays.get(name, []),)
            if array
            else (
                self._tables.get(name, []),
                self._arrays.get(name, []),
            )
        ):
            at = bisect.bisect_left(positions, lo) + nth
            if at < len(positions) and positions[at] < hi:
                candidates.append(positions[at])
        return min(candidates) if candidates else None

    def line_for(self, path: _Path) -> int | None:
        """1-based line of `path`: its key line if found, else its table's header line."""
        names: tuple[str, ...] = ()
        lo, hi = 0, len(self.headers)  # headers belonging to the current table's subtree
        header: int | None = None  # index into self.headers of the current table's header
        i = 0
        while i < len(path):
            part = path[i]
            if isinstance(part, int):  # an int not after a table name: array item of a key
                break
            wanted = (*names, part)
            is_array = i + 1 < len(path) and isinstance(path[i + 1], int)
            nth = int(path[i + 1]) if is_array else 0
            found = self._find(wanted, nth, lo, hi, is_array)
            if found is None and not is_array and self._has_subtable(wanted, lo, hi):
                # A table that only exists through its sub-tables ([market.live] without a
                # [market] header): descend by name.
                names = wanted
                i += 1
                continue
            if found is None:
                # Not a table header: a key of the current table (or an inline table).
                return self._key_line(part, header)
            header = found
            names = wanted
            lo = header + 1
            hi = next(
                (
                    h
                    for h in range(header + 1, len(self.headers))
                    if self.headers[h][1][: len(names)] != names
                    or (self.headers[header][2] and self.headers[h][1] == names)
                ),
                len(self.headers),
            )
            i += 2 if is_array else 1
        return self.headers[header][0] + 1 if header is not None else None

    def _has_subtable(self, name: tuple[str, ...], lo: int, hi: int) -> bool:
        return any(len(h[1]) > len(name) and h[1][: len(name)] == name for h in self.headers[lo:hi])

    def _key_line(self, key: str, header: int | None) -> int | None:
        start = self.headers[header][0] + 1 if header is not None else 0
        nxt = (header + 1) if header is not None else 0
        end = self.headers[nxt][0] if nxt < len(self.headers) else len(self.lines)
        pattern = re.compile(
            r"^\s*(?:"
            + re.escape(key)
            + r'|"'
            + re.escape(key)
            + r'"|'
            + r"'"
            + re.escape(key)
            + r"')\s*[=.]"
        )
        for index in range(start, end):
            if pattern.match(self.lines[index]):
                return index + 1
        return self.headers[header][0] + 1 if header is not None else None
