"""What every firmware dialect provides, and the small shared types they fill in.

A *dialect* knows one firmware family: which commands make up a full reading, how to recognise
the device's model and firmware version (`identify`), and how to turn the replies of one poll into
a `Draft` (`parse`). The shared finishing step (`dialects.common.finalise`) then applies what is
the same for every family: units sanity (Q29), nameplate lookups, power estimate, J/TH, state.

`ParseContext` collects warnings (partial data) and parse-time repairs while a reading is built,
and offers the tolerant field readers dialects use, so that a malformed field costs that field
(None + a warning), never the whole reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import Why, clean_text, parse_number
from drivers.cgminer.errors import CgminerError, DecodeError
from drivers.cgminer.reading import BoardReading, Firmware, MinerState, PoolReading

# Hashrate units → H/s.
MH_S = 1e6
GH_S = 1e9
TH_S = 1e12

Replies = Mapping[str, "Reply | CgminerError"]


class Identity(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What detection learned about a device; stable until the firmware changes.

    Decoded data only (never in a cycle), so `gc=False`: one per device for the process's life.
    """

    firmware: Firmware
    make: str
    model: str | None = None
    firmware_version: str | None = None
    # Problems found at detection that every reading should keep showing (Q24: devdetails denied).
    warnings: tuple[str, ...] = ()
    # Static per-dialect facts read once (e.g. Braiins chips per board from devdetails).
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class Draft:
    """A reading under construction: raw-ish values in SI units, before the shared finishing."""

    __slots__ = (
        "accepted",
        "boards",
        "fans_rpm",
        "firmware_version",
        "hardware_errors",
        "hashrate_5s_hs",
        "hashrate_avg_hs",
        "model",
        "nominal_hashrate_hs",
        "pools",
        "power_w",
        "rejected",
        "stale",
        "state",
        "uptime_s",
    )

    def __init__(self) -> None:
        self.model: str | None = None
        self.firmware_version: str | None = None
        self.hashrate_5s_hs: float | None = None
        self.hashrate_avg_hs: float | None = None
        self.nominal_hashrate_hs: float | None = None
        self.boards: list[BoardReading] = []
        self.fans_rpm: tuple[int, ...] = ()
        self.power_w: float | None = None  # only a *reported* power; estimates come later
        self.accepted: int | None = None
        self.rejected: int | None = None
        self.stale: int | None = None
        self.hardware_errors: int | None = None
        self.pools: tuple[PoolReading, ...] = ()
        self.uptime_s: float | None = None
        # The firmware's own marker (sleeping / curtailed / error), or None when it has none.
        self.state: MinerState | None = None


class ParseContext:
    """Warnings and parse-time repairs for one reading, plus tolerant field readers."""

    __slots__ = ("repairs", "warnings")

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.repairs: list[str] = []

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def num(self, record: Mapping[str, Any], key: str, where: str) -> float | None:
        """`record[key]` as a finite float; None (+ warning if malformed) otherwise."""
        value: Any = record.get(key)
        kind = type(value)
        if kind is float:
            if value - value == 0.0:
                return value  # type: ignore[no-any-return]
        elif kind is int:
            return float(value)
        elif value is None:
            return None
        elif kind is str:
            if not value:
                return None  # "" = absent chain / not reported (Q14)
            # Q14 fast path: most string numbers are plain decimals ("34650.04").
            try:
                plain = float(value)
            except ValueError:
                pass
            else:
                if plain - plain == 0.0:
                    return plain
        number, why = parse_number(value)
        if why is Why.OK:
            return number
        if why is Why.NON_FINITE:
            if "non_finite_number" not in self.repairs:
                self.repairs.append("non_finite_number")
        elif why is Why.MALFORMED:
            self.warn(f"{where}: {key!r} is not a number ({value!r})")
        return None

    def num_any(self, record: Mapping[str, Any], keys: tuple[str, ...], where: str) -> float | None:
        """The first of `keys` present in `record` (typos and firmware variants, Q15)."""
        for key in keys:
            if key in record:
                return self.num(record, key, where)
        return None

    def integer(self, record: Mapping[str, Any], key: str, where: str) -> int | None:
        value = record.get(key)
        if type(value) is int:
            return value
        number = self.num(record, key, where)
        return None if number is None else int(number)

    def integer_any(
        self, record: Mapping[str, Any], keys: tuple[str, ...], where: str
    ) -> int | None:
        for key in keys:
            if key in record:
                return self.integer(record, key, where)
        return None

    @staticmethod
    def text(record: Mapping[str, Any], key: str) -> str | None:
        """`record[key]` as a clean string (Q16 quotes stripped); None when absent or empty."""
        return clean_text(record.get(key))


def reply_of(
    replies: Replies, command: str, ctx: ParseContext, *, required: bool = False
) -> Reply | None:
    """The successful reply to `command`, or None with a warning (raised if `required`)."""
    reply = replies.get(command)
    if reply is None:
        if required:
            raise DecodeError(f"{command}: no reply")
        return None
    if isinstance(reply, CgminerError):
        if required:
            raise reply
        ctx.warn(f"{command} not available: {reply}")
        return None
    return reply


def records(
    replies: Replies, command: str, section: str, ctx: ParseContext, *, required: bool = False
) -> list[dict[str, Any]]:
    """The records of `section` in the reply to `command` ([] with a warning if unusable)."""
    reply = reply_of(replies, command, ctx, required=required)
    if reply is None:
        return []
    value = reply.data.get(section)
    if type(value) is list:
        return [item for item in value if type(item) is dict]
    if type(value) is dict:
        return [value]
    if required:
        raise DecodeError(f"{command}: reply has no usable {section!r} section")
    ctx.warn(f"{command}: reply has no {section!r} section")
    return []


class Dialect(Protocol):
    """One firmware family's commands and parser."""

    firmware: Firmware
    make: str
    # Commands fetched on every poll (joined when the device supports joins).
    poll_commands: tuple[str, ...]
    # Commands fetched once after detection, for `identify` (e.g. Whatsminer get_version).
    detail_commands: tuple[str, ...]
    # Commands fetched only when a poll shows no hashrate, to learn why (sleep markers).
    idle_commands: tuple[str, ...]
    # Substitutes for poll commands the device refuses (Avalon: estats → stats).
    alternatives: Mapping[str, str]

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        """Model, firmware version and static facts from `version` and `detail_commands`."""
        ...

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        """Fill a `Draft` from one poll's replies; raise only if `summary` is unusable."""
        ...
