"""Whatsminer (MicroBT btminer) API V2 on 4028 (§4.2).

Recognised by `devdetails` `Driver: "bitmicro"` (its `version` often answers a flat
`"Msg":"invalid cmd"`, Q25). Reading: `summary` (MH/s, with `Power`, `Factory GHS` nominal,
`Fan Speed In/Out`), `devs` (one record per hashboard: `MHS 5s`/`1m`, `Temperature` = board,
`Chip Temp Avg`, `Effective Chips`, `PCB SN`), `pools` (numbered from 1, Q23). Read once:
`devdetails` (model) and `get_version` (flat reply, `Msg.fw_ver`). Read only when the hashrate is
0: `status` (flat, `btmineroff`/`mineroff` = the miner was powered off by `power_off`).

Quirks handled elsewhere: Q5/Q6/Q7/Q10/Q11/Q17 in the decoder, Q12 flat STATUS in `status.py`,
Q16 quoted `Firmware Version` by `clean_text`. `Power` -1 means "not reported" (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import clean_text, truthy
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
)
from drivers.cgminer.reading import BoardReading, Firmware, MinerState

_RATE_5S = (("MHS 5s", MH_S),)
_RATE_1M = (("MHS 1m", MH_S),)
_RATE_AVG = (("MHS av", MH_S),)


def whatsminer_model(raw: str | None) -> str | None:
    """`"M50_VH51"` → `"Whatsminer M50VH51"` (underscores dropped, the bin kept)."""
    if not raw:
        return None
    compact = raw.replace("_", "").strip()
    return f"Whatsminer {compact}" if compact else None


class Whatsminer:
    """Dialect: Whatsminer btminer API V2."""

    firmware = Firmware.WHATSMINER
    make = "Whatsminer"
    poll_commands: tuple[str, ...] = ("summary", "devs", "pools")
    detail_commands: tuple[str, ...] = ("devdetails", "get_version")
    idle_commands: tuple[str, ...] = ("status",)
    alternatives: Mapping[str, str] = {}

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        devdetails = detail_records(details, "devdetails", "DEVDETAILS")
        model = next(
            (whatsminer_model(clean_text(d.get("Model"))) for d in devdetails if d.get("Model")),
            None,
        )
        firmware_version = None
        get_version = details.get("get_version")
        if isinstance(get_version, Reply):
            message = get_version.data.get("Msg")
            if isinstance(message, dict):
                firmware_version = clean_text(message.get("fw_ver"))
        warnings: tuple[str, ...] = ()
        if model is None:
            warnings = ("devdetails not available: model unknown",)
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=model,
            firmware_version=firmware_version,
            warnings=warnings,
        )

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        draft = Draft()
        summary = summary_record(replies, ctx)
        draft.hashrate_5s_hs = short_window(summary, ctx, "summary")
        draft.hashrate_avg_hs = rate_hs(summary, _RATE_AVG, ctx, "summary")
        summary_counters(draft, summary, ctx)
        factory = ctx.num(summary, "Factory GHS", "summary")
        draft.nominal_hashrate_hs = factory * GH_S if factory else None
        power = ctx.num(summary, "Power", "summary")
        draft.power_w = power if power is not None and power >= 0 else None
        fans = []
        for key in ("Fan Speed In", "Fan Speed Out"):
            rpm = ctx.num(summary, key, "summary")
            if rpm is not None and rpm > 0:
                fans.append(int(rpm))
        draft.fans_rpm = tuple(fans)
        if identity.firmware_version is None:
            draft.firmware_version = clean_text(summary.get("Firmware Version"))

        draft.boards = [
            _board(position, dev, ctx)
            for position, dev in enumerate(records(replies, "devs", "DEVS", ctx))
        ]
        draft.pools = parse_pools(records(replies, "pools", "POOLS", ctx), ctx)
        status = replies.get("status")
        if isinstance(status, Reply) and _powered_off(status.data.get("Msg")):
            draft.state = MinerState.SLEEPING
        return draft


def _board(position: int, dev: dict[str, Any], ctx: ParseContext) -> BoardReading:
    index = ctx.integer_any(dev, ("ASC", "Slot", "ID"), "devs")
    nominal = ctx.num(dev, "Factory GHS", "devs")
    return BoardReading(
        index=position if index is None else index,
        hashrate_hs=short_window(dev, ctx, "devs"),
        nominal_hashrate_hs=nominal * GH_S if nominal else None,
        temp_board_c=_positive(ctx.num_any(dev, ("Temperature", "Tenperature"), "devs")),
        temp_chip_c=_positive(ctx.num(dev, "Chip Temp Avg", "devs")),
        chips_found=ctx.integer(dev, "Effective Chips", "devs"),
        hardware_errors=ctx.integer(dev, "Hardware Errors", "devs"),
        frequency_mhz=ctx.num_any(dev, ("Chip Frequency", "Frequency"), "devs"),
        serial=clean_text(dev.get("PCB SN")),
    )


def short_window(record: dict[str, Any], ctx: ParseContext, where: str) -> float | None:
    """`MHS 5s`, or `MHS 1m` when the 5 s window reads 0 while the miner hashes (Q27)."""
    return first_positive(
        rate_hs(record, _RATE_5S, ctx, where), rate_hs(record, _RATE_1M, ctx, where)
    )


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _powered_off(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    return any(truthy(message.get(key)) for key in ("btmineroff", "mineroff"))
