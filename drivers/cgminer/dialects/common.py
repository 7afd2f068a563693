"""Parsing shared by every dialect, and the finishing step that turns a `Draft` into a reading.

Shared: the cgminer `pools` and `summary` records (same field names everywhere, Q15 typos and
Q23 pool numbering included) and `finalise`, which applies what does not depend on the firmware:

* Q27: a short window of 0 while the hashboards hash is replaced by the boards' total;
* Q29 hashrate-unit sanity check against the model's nominal hashrate (see `_unit_correction`),
  or against a physical ceiling when no nominal is known;
* nominal hashrate and chips expected from the nameplate table when the firmware says nothing;
* power: the reported value, else nameplate W × hashrate / nominal (`power_estimated=True`);
* J/TH and the firmware's state (mining / sleeping / curtailed / error / unknown).
"""

from __future__ import annotations

import math
from typing import Any

from msgspec import structs

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import clean_text, truthy
from drivers.cgminer.dialects.base import Draft, Identity, ParseContext, Replies, records
from drivers.cgminer.errors import DecodeError
from drivers.cgminer.models import ModelSpec, lookup
from drivers.cgminer.reading import AsicReading, BoardReading, MinerState, PoolReading

# --- pools and summary --------------------------------------------------------------------------


POOL_KEYS = (
    "POOL",
    "URL",
    "User",
    "Status",
    "Stratum Active",
    "Priority",
    "Accepted",
    "Rejected",
    "Stale",
)
"""Every key `parse_pools` reads of a pool record (of about 33): a poll's join decodes only these
(`RECORDS_READ`)."""

RECORDS_READ: dict[tuple[str, str], tuple[str, ...]] = {("pools", "POOLS"): POOL_KEYS}
"""The record keys a poll reads, for `client.plan_join`: pools are read by `parse_pools` alone,
whatever the dialect. The other sections are decoded whole."""


def parse_pools(pool_records: list[dict[str, Any]], ctx: ParseContext) -> tuple[PoolReading, ...]:
    """`POOLS` records → readings, indexed by the firmware's own `POOL` id (Whatsminer: from 1).

    Reads only `POOL_KEYS`: a poll's join decodes nothing else of a pool record, so a key read
    here must be added there (tests/integration/test_cgminer_typed_join.py compares both ways).
    """
    pools: list[PoolReading] = []
    any_active_flag = False
    integer = ctx.integer

    for position, record in enumerate(pool_records):
        get = record.get
        # Hot path (every pool, every poll): plain ints and clean strings are taken as they are;
        # anything else goes through the tolerant readers, in the same order as the fields.
        index = get("POOL")
        if type(index) is not int:
            index = integer(record, "POOL", "pools")
        active = get("Stratum Active")
        if type(active) is not bool:
            active = truthy(active)
        if active is not None:
            any_active_flag = True
        priority = get("Priority")
        if type(priority) is not int:
            priority = integer(record, "Priority", "pools")
        accepted = get("Accepted")
        if type(accepted) is not int:
            accepted = integer(record, "Accepted", "pools")
        rejected = get("Rejected")
        if type(rejected) is not int:
            rejected = integer(record, "Rejected", "pools")
        stale = get("Stale")
        if type(stale) is not int:
            stale = integer(record, "Stale", "pools")
        pools.append(
            PoolReading(
                index=position if index is None else index,
                url=clean_text(get("URL")) or "",
                user=clean_text(get("User")) or "",
                status=clean_text(get("Status")) or "Unknown",
                active=bool(active),
                priority=priority,
                accepted=accepted,
                rejected=rejected,
                stale=stale,
            )
        )
    if pools and not any_active_flag:
        # No `Stratum Active` anywhere: the live pool is the alive one with the best priority.
        alive = [p for p in pools if p.status.lower() == "alive"]
        if alive:
            best = min(alive, key=lambda p: p.priority if p.priority is not None else 1 << 30)
            pools = [structs.replace(p, active=True) if p is best else p for p in pools]
    return tuple(pools)


def summary_counters(draft: Draft, summary: dict[str, Any], ctx: ParseContext) -> None:
    """Shares, hardware errors and uptime from a cgminer `SUMMARY` record."""
    draft.accepted = ctx.integer(summary, "Accepted", "summary")
    draft.rejected = ctx.integer(summary, "Rejected", "summary")
    draft.stale = ctx.integer(summary, "Stale", "summary")
    draft.hardware_errors = ctx.integer(summary, "Hardware Errors", "summary")
    draft.uptime_s = ctx.num(summary, "Elapsed", "summary")


def first_positive(*values: float | None) -> float | None:
    """The first value that is > 0, else the first that is not None (a real 0), else None."""
    for value in values:
        if value is not None and value > 0:
            return value
    for value in values:
        if value is not None:
            return value
    return None


# --- finishing ----------------------------------------------------------------------------------

# Q29: a reading this far from the nominal is a unit mistake, not a physical hashrate.
_TOO_HIGH_RATIO = 200.0
_TOO_LOW_RATIO = 1 / 200.0
# Without a nominal: the largest single machines (hydro S21 XP) do ~0.5 PH/s; 2 PH/s is a
# generous ceiling above which a reading can only be a unit mistake.
_CEILING_HS = 2e15


def _unit_correction(ratio: float, *, confirm: float | None = None) -> float:
    """The power of 1000 that brings `ratio` (measured / nominal) back to a plausible value.

    Readings far *above* nominal are physically impossible, so they are corrected whenever a
    power of 1000 lands them within 0.2–5× nominal. Readings far *below* nominal could also be a
    miner warming up or failing, so they are corrected only when the result lands within
    0.5–2× nominal and the second window (`confirm`, e.g. the average) is off by the same factor.
    Returns 1.0 when no correction applies.
    """
    if ratio <= 0 or _TOO_LOW_RATIO <= ratio <= _TOO_HIGH_RATIO:
        return 1.0
    exponent = round(math.log10(ratio) / 3)
    if exponent == 0:
        return 1.0
    factor = 1000.0 ** (-exponent)
    corrected = ratio * factor
    if ratio > _TOO_HIGH_RATIO:
        return factor if 0.2 <= corrected <= 5.0 else 1.0
    if not 0.5 <= corrected <= 2.0:
        return 1.0
    if confirm is None or confirm <= 0:
        return 1.0
    return factor if 0.5 <= confirm * factor <= 2.0 else 1.0


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _scaled_boards(boards: list[BoardReading], factor: float) -> list[BoardReading]:
    return [
        structs.replace(
            board,
            hashrate_hs=_scaled(board.hashrate_hs, factor),
            nominal_hashrate_hs=_scaled(board.nominal_hashrate_hs, factor),
        )
        for board in boards
    ]


def _board_dead(board: BoardReading) -> bool:
    if board.chips_found == 0:
        return True
    return board.chips_found is None and board.hashrate_hs == 0


def _state(
    hint: MinerState | None, hashrate_hs: float | None, boards: list[BoardReading]
) -> MinerState:
    # Every board reporting 0 chips found is hard evidence of a fault, stronger than a sleep
    # flag (some firmwares raise their "off" flag for any non-mining condition).
    if boards:
        for board in boards:
            if board.chips_found != 0:
                break
        else:
            return MinerState.ERROR
    if hint is not None:
        return hint
    if hashrate_hs is not None and hashrate_hs > 0:
        return MinerState.MINING
    if boards and all(_board_dead(board) for board in boards):
        return MinerState.ERROR
    return MinerState.UNKNOWN


def _with_expected_chips(boards: list[BoardReading], spec: ModelSpec | None) -> list[BoardReading]:
    if spec is None or spec.chips_per_board is None:
        return boards
    expected = spec.chips_per_board
    for board in boards:
        if board.chips_expected is None:
            break
    else:
        return boards  # the dialect already filled it in (Antminer stats): nothing to copy
    return [
        structs.replace(board, chips_expected=expected) if board.chips_expected is None else board
        for board in boards
    ]


def finalise(
    identity: Identity,
    draft: Draft,
    ctx: ParseContext,
    repairs: tuple[str, ...] = (),
) -> AsicReading:
    """Apply the firmware-independent rules and freeze the reading."""
    model = draft.model or identity.model
    spec = lookup(model)
    hashrate_5s = draft.hashrate_5s_hs
    hashrate_avg = draft.hashrate_avg_hs
    nominal = draft.nominal_hashrate_hs
    boards = draft.boards

    if spec is not None and nominal is not None and nominal > 0:
        nominal_factor = _unit_correction(
            nominal / spec.nominal_hs, confirm=nominal / spec.nominal_hs
        )
        if nominal_factor != 1.0:
            ctx.warn(
                f"reported nominal hashrate {nominal:.4g} H/s is {1 / nominal_factor:g}x the "
                f"{spec.name} nameplate: wrong unit from firmware, corrected (Q29)"
            )
            nominal *= nominal_factor

    if not hashrate_5s and boards:
        # Q27: a short window of 0 (or none) while the hashboards report hashing means the
        # firmware did not compute it; the boards' current rates are the better short window.
        board_total = sum(board.hashrate_hs or 0.0 for board in boards)
        if board_total > 0:
            hashrate_5s = board_total

    reference = spec.nominal_hs if spec is not None else nominal
    # The window checked against the reference, and the other one to confirm a correction.
    measured: float | None
    confirm: float | None
    if hashrate_5s is not None and hashrate_5s > 0:
        measured, confirm = hashrate_5s, hashrate_avg
    else:
        measured, confirm = hashrate_avg, hashrate_5s
    if not reference and measured is not None and measured > _CEILING_HS:
        # No nominal to compare with, but no single machine hashes above the ceiling.
        factor = 1.0
        while measured * factor > _CEILING_HS:
            factor /= 1000.0
        ctx.warn(
            f"hashrate {measured:.4g} H/s is above any single machine's: wrong unit from "
            f"firmware, divided by {1 / factor:g} (Q29)"
        )
        hashrate_5s = _scaled(hashrate_5s, factor)
        hashrate_avg = _scaled(hashrate_avg, factor)
        boards = _scaled_boards(boards, factor)
    elif reference and measured is not None and measured > 0:
        factor = _unit_correction(
            measured / reference, confirm=None if confirm is None else confirm / reference
        )
        if factor != 1.0:
            ctx.warn(
                f"hashrate {measured:.4g} H/s is {1 / factor:g}x the nominal {reference:.4g} H/s: "
                "wrong unit from firmware, corrected (Q29)"
            )
            hashrate_5s = _scaled(hashrate_5s, factor)
            hashrate_avg = _scaled(hashrate_avg, factor)
            boards = _scaled_boards(boards, factor)

    if nominal is None and spec is not None:
        nominal = spec.nominal_hs
    boards = _with_expected_chips(boards, spec)

    basis = hashrate_5s if hashrate_5s is not None else hashrate_avg
    power = draft.power_w
    estimated = False
    if power is None and spec is not None and basis is not None:
        power = spec.power_w * basis / spec.nominal_hs
        estimated = True
    efficiency = None
    if power is not None and basis is not None and basis > 0:
        efficiency = power / (basis / 1e12)

    all_repairs = repairs
    if ctx.repairs:
        all_repairs = tuple(dict.fromkeys((*repairs, *ctx.repairs)))
    return AsicReading(
        firmware=identity.firmware,
        make=identity.make,
        model=model,
        firmware_version=draft.firmware_version or identity.firmware_version,
        hashrate_5s_hs=hashrate_5s,
        hashrate_avg_hs=hashrate_avg,
        nominal_hashrate_hs=nominal,
        boards=tuple(boards),
        fans_rpm=draft.fans_rpm,
        power_w=power,
        power_estimated=estimated,
        efficiency_j_per_th=efficiency,
        accepted=draft.accepted,
        rejected=draft.rejected,
        stale=draft.stale,
        hardware_errors=draft.hardware_errors,
        pools=draft.pools,
        uptime_s=draft.uptime_s,
        state=_state(draft.state, basis, boards),
        repairs=all_repairs,
        warnings=(*identity.warnings, *ctx.warnings) if identity.warnings else tuple(ctx.warnings),
    )


def summary_record(replies: Replies, ctx: ParseContext) -> dict[str, Any]:
    """The one `SUMMARY` record; without it there is no reading, so this raises."""
    found = records(replies, "summary", "SUMMARY", ctx, required=True)
    if not found:
        raise DecodeError("summary: reply has an empty 'SUMMARY' section")
    return found[0]


def rate_hs(
    record: dict[str, Any], keys: tuple[tuple[str, float], ...], ctx: ParseContext, where: str
) -> float | None:
    """The first of `(key, unit factor)` present in `record`, in H/s."""
    for key, factor in keys:
        if key in record:
            value = ctx.num(record, key, where)
            return None if value is None else value * factor
    return None


def version_record(version: Reply | None) -> dict[str, Any]:
    """`VERSION[0]` of a version reply, or an empty dict."""
    if version is None:
        return {}
    value = version.data.get("VERSION")
    if type(value) is list and value and type(value[0]) is dict:
        return value[0]
    if type(value) is dict:
        return value
    return {}


def detail_records(details: Replies, command: str, section: str) -> list[dict[str, Any]]:
    """Records of a detection-time reply, or [] when it failed (the caller decides what to say)."""
    reply = details.get(command)
    if not isinstance(reply, Reply):
        return []
    value = reply.data.get(section)
    if type(value) is list:
        return [item for item in value if type(item) is dict]
    if type(value) is dict:
        return [value]
    return []


def strip_type_suffix(model_type: str | None) -> str | None:
    """`"Antminer S19 XP (Vnish 1.2.0-rc1)"` → `"Antminer S19 XP"`."""
    if not model_type:
        return None
    return model_type.split(" (", 1)[0].strip() or None
