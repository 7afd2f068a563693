"""Avalon (Canaan's cgminer 4.11.1 fork, §4.5).

Recognised by `PROD` / `MODEL` keys in `version` (or `devdetails` `Driver: "avalon"`). Reading:
`summary` (`MHS *` in MH/s), `estats` (or `stats` where estats is refused) and `pools`.

All hardware telemetry sits in one string per module, `STATS[0]["MM ID0"]` (or `"MM ID0:Summary"`,
sometimes wrapped in `'STATS':{...}`), made of `Key[value]` tokens with space-separated lists:
`GHSmm` (nominal, GH/s), `MGHS` (per board GH/s), `MTavg`/`MTmax` (per board chip °C), `Fan1..4`,
`WALLPOWER` (W; older firmware: the last field of `PS[...]`), `HW`, `Elapsed`,
`SYSTEMSTATU[Work: In Idle, ...]` (soft-off), `SoftOffTime`, and `PVT_T<n>` per-chip temperatures
(chips found = non-zero entries, chips expected = entries, as pyasic counts them).

Q27/Q28: `MHS 5s` reads 0 (or far below the truth on small models) while `MHS av` is large, so
the reading's short-window hashrate is `MHS 1m` (falling back to `MHS 5s`), never `MHS av`.
Q8: `inf` / `nan` values (decoder + `ParseContext.num`) read as None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import Why, clean_text, parse_number
from drivers.cgminer.dialects.base import (
    GH_S,
    MH_S,
    Draft,
    Identity,
    ParseContext,
    Replies,
    records,
)
from drivers.cgminer.dialects.common import (
    detail_records,
    first_positive,
    parse_pools,
    rate_hs,
    summary_counters,
    summary_record,
    version_record,
)
from drivers.cgminer.reading import BoardReading, Firmware, MinerState

_TOKEN = re.compile(r"(\w+)\[([^\]]*)\]")
# Q27/Q28: Avalon's 5 s window reads 0 or far too low; the 1 m window is the short one to trust.
_SHORT_WINDOWS = ("MHS 1m", "MHS 5s")
# `PS[err vout vin iout pout ? pin]` on A12xx captures (`PS[0 1214 1316 242 3189 1320 3504]`:
# 12.14 V x 242 A ≈ 3189 W out of the PSU; the last field, ~9 % more, is read as wall power).
# Used only when the firmware has no WALLPOWER token.
_PS_MIN_FIELDS = 7


def avalon_model(prod: str | None, model: str | None) -> str | None:
    """`"AvalonMiner 1246-83"` → `"AvalonMiner 1246"`; `"Avalon Q"` stays."""
    name = prod or (f"Avalon {model}" if model else None)
    if not name:
        return None
    return name.split("-", 1)[0].strip() or None


def parse_mm(text: str) -> dict[str, str]:
    """`"Ver[1246-83] Elapsed[24684] MGHS[26907.01 26025.06]"` → `{"Ver": ..., "MGHS": ...}`."""
    return dict(_TOKEN.findall(text))


class Avalon:
    """Dialect: Canaan Avalon."""

    firmware = Firmware.AVALON
    make = "Avalon"
    poll_commands: tuple[str, ...] = ("summary", "estats", "pools")
    detail_commands: tuple[str, ...] = ()
    idle_commands: tuple[str, ...] = ()
    alternatives: Mapping[str, str] = {"estats": "stats"}

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        record = version_record(version)
        model = avalon_model(clean_text(record.get("PROD")), clean_text(record.get("MODEL")))
        if model is None:
            for dev in detail_records(details, "devdetails", "DEVDETAILS"):
                model = clean_text(dev.get("Model")) or None
                if model:
                    break
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=model,
            firmware_version=clean_text(
                record.get("LVERSION") or record.get("CGVERSION") or record.get("CGMiner")
            ),
        )

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        draft = Draft()
        summary = summary_record(replies, ctx)
        windows = [rate_hs(summary, ((key, MH_S),), ctx, "summary") for key in _SHORT_WINDOWS]
        draft.hashrate_5s_hs = first_positive(*windows)
        draft.hashrate_avg_hs = rate_hs(summary, (("MHS av", MH_S),), ctx, "summary")
        summary_counters(draft, summary, ctx)

        command = "estats" if isinstance(replies.get("estats"), Reply) else "stats"
        modules = _modules(records(replies, command, "STATS", ctx))
        if not modules and command in replies:
            ctx.warn(f"{command}: no 'MM ID' module data")
        self._apply_modules(draft, modules, ctx)
        draft.pools = parse_pools(records(replies, "pools", "POOLS", ctx), ctx)
        return draft

    def _apply_modules(
        self, draft: Draft, modules: list[dict[str, str]], ctx: ParseContext
    ) -> None:
        boards: list[BoardReading] = []
        fans: list[int] = []
        nominal_gh = 0.0
        power = 0.0
        power_seen = False
        hardware_errors = 0
        hardware_seen = False
        for mm in modules:
            nominal = _num(mm.get("GHSmm"), ctx)
            if nominal:
                nominal_gh += nominal
            board_rates = _numbers(mm.get("MGHS"))
            chip_temps = _numbers(mm.get("MTavg")) or _numbers(mm.get("MTmax"))
            for position, rate in enumerate(board_rates):
                temp = chip_temps[position] if position < len(chip_temps) else None
                # Per-chip temperatures: a chip that reports 0 does not answer (as pyasic counts).
                # Only counted, never converted: hundreds of tokens per reading.
                chips = (mm.get(f"PVT_T{position}") or "").split()
                boards.append(
                    BoardReading(
                        index=len(boards),
                        hashrate_hs=None if rate is None else rate * GH_S,
                        temp_chip_c=temp if temp else None,
                        chips_found=len(chips) - chips.count("0") if chips else None,
                        chips_expected=len(chips) if chips else None,
                    )
                )
            for key in ("Fan1", "Fan2", "Fan3", "Fan4"):
                rpm = _num(mm.get(key), ctx)
                if rpm is not None and rpm > 0:
                    fans.append(int(rpm))
            watts = _num(mm.get("WALLPOWER"), ctx)
            if watts is None:
                supply = _numbers(mm.get("PS"))
                if len(supply) >= _PS_MIN_FIELDS and supply[-1]:
                    watts = supply[-1]
            if watts is not None:
                power += watts
                power_seen = True
            errors = _num(mm.get("HW"), ctx)
            if errors is not None:
                hardware_errors += int(errors)
                hardware_seen = True
            if draft.uptime_s is None:
                draft.uptime_s = _num(mm.get("Elapsed"), ctx)
            if _soft_off(mm):
                draft.state = MinerState.SLEEPING
        draft.boards = boards
        draft.fans_rpm = tuple(fans)
        draft.nominal_hashrate_hs = nominal_gh * GH_S if nominal_gh else None
        draft.power_w = power if power_seen else None
        if draft.hardware_errors is None and hardware_seen:
            draft.hardware_errors = hardware_errors


def _modules(stats_records: list[dict[str, Any]]) -> list[dict[str, str]]:
    modules = []
    for record in stats_records:
        for key, value in record.items():
            if key.startswith("MM ID") and isinstance(value, str):
                modules.append(parse_mm(value))
        board_info = record.get("HBinfo")
        if modules and isinstance(board_info, str):
            # Newer firmware moves PVT_T<n> (per-chip temperatures) into `HBinfo`.
            for key, value in parse_mm(board_info).items():
                modules[-1].setdefault(key, value)
    return modules


def _num(text: str | None, ctx: ParseContext) -> float | None:
    if text is None:
        return None
    number, why = parse_number(text)
    if why is Why.NON_FINITE and "non_finite_number" not in ctx.repairs:
        ctx.repairs.append("non_finite_number")
    return number


def _numbers(text: str | None) -> Sequence[float | None]:
    """A space-separated list, position kept (a dead board's 0 must not shift the others)."""
    if not text:
        return []
    parts = text.split()
    try:
        # Fast path: plain numbers (MGHS, MTavg, PS); tolerant parsing only when that fails.
        numbers = list(map(float, parts))
    except ValueError:
        pass
    else:
        total = sum(numbers)
        if total - total == 0.0:  # no inf / nan among them
            return numbers
    return [parse_number(part)[0] for part in parts]


def _soft_off(mm: dict[str, str]) -> bool:
    """`SYSTEMSTATU[Work: In Idle, ...]`, or a soft-off time / flag set while no board hashes."""
    status = mm.get("SYSTEMSTATU", "").lower()
    if "idle" in status:
        return True
    if "work" in status:
        return False
    soft_off = mm.get("SoftOffTime") or mm.get("SoftOFF") or mm.get("SoftOff") or ""
    if soft_off.strip() in ("", "0"):
        return False
    return not any(rate for rate in _numbers(mm.get("MGHS")) if rate)
