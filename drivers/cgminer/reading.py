"""The normalised ASIC reading: one shape for every CGMiner-family firmware.

Every dialect parser (Antminer stock, Whatsminer, Braiins OS, LuxOS, Avalon, ...) produces an
`AsicReading`. Units are normalised here, at the driver boundary: H/s, W, °C, RPM, seconds.
A value the firmware does not report is `None`, never 0.

The reading types are `gc=False`: they are immutable trees of scalars, strings and tuples of
each other, so they can never be part of a reference cycle, and the cyclic garbage collector
need not track them. A console keeps one reading per device alive (10,000 at a large site) and
replaces hundreds per second; tracked, they would be walked by every full collection.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Firmware(StrEnum):
    """The firmware family that answered; decides field names, units and control commands."""

    ANTMINER_STOCK = "antminer_stock"
    WHATSMINER = "whatsminer"
    BRAIINS = "braiins"
    LUXOS = "luxos"
    AVALON = "avalon"
    VNISH = "vnish"
    CGMINER = "cgminer"  # a plain cgminer build with no vendor markers


class MinerState(StrEnum):
    """The firmware's own idea of what it is doing (not what it was told, not freshness)."""

    MINING = "mining"
    SLEEPING = "sleeping"
    CURTAILED = "curtailed"
    ERROR = "error"
    UNKNOWN = "unknown"


class BoardReading(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One hashboard (chain)."""

    index: int
    hashrate_hs: float | None = None
    nominal_hashrate_hs: float | None = None
    temp_board_c: float | None = None
    temp_chip_c: float | None = None
    chips_found: int | None = None
    chips_expected: int | None = None
    hardware_errors: int | None = None
    frequency_mhz: float | None = None
    serial: str | None = None


class PoolReading(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One configured pool, as the firmware numbers it (`index` is the firmware's POOL id)."""

    index: int
    url: str
    user: str = ""
    status: str = "Unknown"  # firmware's word: Alive / Dead / Disabled / Rejecting / Unknown
    active: bool = False  # the pool currently receiving work (Stratum Active)
    priority: int | None = None
    accepted: int | None = None
    rejected: int | None = None
    stale: int | None = None


class AsicReading(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Everything one poll of one miner learned, normalised.

    `repairs` lists the decoder repairs applied to any reply in this poll (for example
    `"trailing_nul"`, `"missing_comma_between_objects"`), so an operator can see that a
    firmware is sending broken JSON without the reading being lost. `warnings` lists
    partial-data problems (a denied or failed command) that did not prevent a reading.
    """

    firmware: Firmware
    make: str  # "Antminer", "Whatsminer", "Avalon", ...
    model: str | None = None  # "Antminer S19j Pro", "Whatsminer M50", "AvalonMiner 1246"
    firmware_version: str | None = None
    hashrate_5s_hs: float | None = None
    hashrate_avg_hs: float | None = None
    nominal_hashrate_hs: float | None = None
    boards: tuple[BoardReading, ...] = ()
    fans_rpm: tuple[int, ...] = ()
    power_w: float | None = None
    power_estimated: bool = False  # True when power_w comes from the model's nameplate
    efficiency_j_per_th: float | None = None
    accepted: int | None = None
    rejected: int | None = None
    stale: int | None = None
    hardware_errors: int | None = None
    pools: tuple[PoolReading, ...] = ()
    uptime_s: float | None = None
    state: MinerState = MinerState.UNKNOWN
    repairs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def temp_max_c(self) -> float | None:
        """Hottest chip (or board, where chips are not reported) across all boards."""
        temps = [
            t
            for b in self.boards
            for t in (b.temp_chip_c if b.temp_chip_c is not None else b.temp_board_c,)
            if t is not None
        ]
        return max(temps) if temps else None
