"""Braiins OS (bosminer / BOSer) cgminer-compatible RPC (§4.3).

Recognised by a `BOSer` / `BOSminer` key (or Description) in `version`. Reading:
`summary` (MH/s), `devs` (one record per hashboard: `MHS 5s`, `Nominal MHS`, `Hardware Errors`),
`pools`, `fans` (`FANS[*].RPM`), `temps` (`TEMPS[*]` `{ID, Board, Chip}`) and `tunerstatus`
(`ApproximateMinerPowerConsumption`: reported power). `devdetails` is read once: `Model`
(`"Bitmain Antminer S19j Pro"` → `"Antminer S19j Pro"`) and `Chips` per board.

State: a paused miner (`pause`) is reported as sleeping; see `_paused` for how it is told apart.

Hashboards are matched across `devs`, `temps` and `devdetails` by their `ID` (6–8 on S9-era
slots, else from 0 or 1) and numbered 0..n-1 in ID order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import clean_text, truthy
from drivers.cgminer.dialects.base import MH_S, Draft, Identity, ParseContext, Replies, records
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

_RATE_5S = (("MHS 5s", MH_S),)
_RATE_1M = (("MHS 1m", MH_S),)
_RATE_AVG = (("MHS av", MH_S),)


def braiins_model(raw: str | None) -> str | None:
    """`"Bitmain Antminer S19j Pro"` → `"Antminer S19j Pro"`; `S19XP` → `S19 XP` (pyasic §6.4)."""
    if not raw:
        return None
    model = raw.strip()
    if model.lower().startswith("bitmain "):
        model = model[len("bitmain ") :]
    return model.replace("S19XP", "S19 XP") or None


class Braiins:
    """Dialect: Braiins OS."""

    firmware = Firmware.BRAIINS
    make = "Antminer"
    poll_commands: tuple[str, ...] = ("summary", "devs", "pools", "fans", "temps", "tunerstatus")
    detail_commands: tuple[str, ...] = ("devdetails",)
    idle_commands: tuple[str, ...] = ()
    alternatives: Mapping[str, str] = {}

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        record = version_record(version)
        firmware_version = clean_text(
            record.get("BOSer") or record.get("BOSminer") or record.get("BOSminer+")
        )
        devdetails = detail_records(details, "devdetails", "DEVDETAILS")
        warnings: tuple[str, ...] = ()
        if not devdetails:
            # Q24: denied or unknown — the model is then "not available", not a failure.
            warnings = (f"devdetails not available: {_why(details.get('devdetails'))}",)
        model = next(
            (braiins_model(clean_text(d.get("Model"))) for d in devdetails if d.get("Model")),
            None,
        )
        chips = {}
        for position, board in enumerate(devdetails):
            board_id = board.get("ID", position)
            count = board.get("Chips")
            if isinstance(count, int) and not isinstance(count, bool):
                chips[str(board_id)] = count
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=model,
            firmware_version=firmware_version,
            warnings=warnings,
            details={"chips": chips},
        )

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        draft = Draft()
        summary = summary_record(replies, ctx)
        # Q27: a 0 short window while the 1 m window is busy is "not computed", not "stopped".
        draft.hashrate_5s_hs = first_positive(
            rate_hs(summary, _RATE_5S, ctx, "summary"), rate_hs(summary, _RATE_1M, ctx, "summary")
        )
        draft.hashrate_avg_hs = rate_hs(summary, _RATE_AVG, ctx, "summary")
        summary_counters(draft, summary, ctx)

        temps = {str(t.get("ID")): t for t in records(replies, "temps", "TEMPS", ctx)}
        chips: dict[str, int] = identity.details.get("chips", {})
        devs = sorted(records(replies, "devs", "DEVS", ctx), key=_board_id_key)
        boards = []
        nominal_total = 0.0
        for index, dev in enumerate(devs):
            board_id = str(dev.get("ID", index))
            temp = temps.get(board_id, {})
            nominal = rate_hs(dev, (("Nominal MHS", MH_S),), ctx, "devs")
            if nominal:
                nominal_total += nominal
            boards.append(
                BoardReading(
                    index=index,
                    hashrate_hs=first_positive(
                        rate_hs(dev, _RATE_5S, ctx, "devs"), rate_hs(dev, _RATE_1M, ctx, "devs")
                    ),
                    nominal_hashrate_hs=nominal or None,
                    temp_board_c=_positive(ctx.num(temp, "Board", "temps")),
                    temp_chip_c=_positive(ctx.num(temp, "Chip", "temps")),
                    chips_found=chips.get(board_id),
                    hardware_errors=ctx.integer(dev, "Hardware Errors", "devs"),
                )
            )
        draft.boards = boards
        draft.nominal_hashrate_hs = nominal_total or None

        fans = []
        for fan in records(replies, "fans", "FANS", ctx):
            rpm = ctx.num(fan, "RPM", "fans")
            if rpm is not None and rpm > 0:
                fans.append(int(rpm))
        draft.fans_rpm = tuple(fans)

        tuner = records(replies, "tunerstatus", "TUNERSTATUS", ctx)
        if tuner:
            draft.power_w = ctx.num(tuner[0], "ApproximateMinerPowerConsumption", "tunerstatus")
        draft.pools = parse_pools(records(replies, "pools", "POOLS", ctx), ctx)
        if _paused(summary, devs, draft):
            draft.state = MinerState.SLEEPING
        return draft


def _board_id_key(record: dict[str, Any]) -> float:
    value = record.get("ID")
    return float(value) if isinstance(value, int | float) else 0.0


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _paused(summary: dict[str, Any], devs: list[dict[str, Any]], draft: Draft) -> bool:
    """Whether mining is paused (`pause`): an explicit flag where a build has one, else inferred.

    The RPC has no documented pause marker, so a paused miner is recognised by what `pause`
    leaves behind: no hashrate, while every hashboard still reports `Alive` and a pool is alive
    (a failing miner loses boards; a miner without pools loses them).
    """
    if truthy(summary.get("Paused")):
        return True
    statuses = [str(dev.get("Status", "")).lower() for dev in devs]
    if statuses and all(status in ("paused", "stopped") for status in statuses):
        return True
    return (
        draft.hashrate_5s_hs == 0
        and bool(statuses)
        and all(status == "alive" for status in statuses)
        and any(pool.status.lower() == "alive" for pool in draft.pools)
    )


def _why(reply: Reply | Exception | None) -> str:
    if reply is None:
        return "not requested"
    if isinstance(reply, Reply):
        return "no DEVDETAILS records"
    return str(reply)
