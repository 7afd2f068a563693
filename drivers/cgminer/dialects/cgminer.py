"""Plain cgminer (4.x) with no vendor markers — also the fallback for unknown forks (§3).

Reading: `summary` (`MHS *`, MH/s), `devs` (one record per ASC: `MHS 5s`, `Temperature`,
`Status`, `Hardware Errors`) and `pools`. cgminer does not know the hardware model, so there is
no nominal hashrate and no power estimate unless `devdetails` named a model at detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import clean_text
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
from drivers.cgminer.reading import BoardReading, Firmware

_RATE_5S = (("MHS 5s", MH_S), ("GHS 5s", 1e9))
_RATE_1M = (("MHS 1m", MH_S), ("GHS 1m", 1e9))
_RATE_AVG = (("MHS av", MH_S), ("GHS av", 1e9))


class Cgminer:
    """Dialect: plain cgminer."""

    firmware = Firmware.CGMINER
    make = "cgminer"
    poll_commands: tuple[str, ...] = ("summary", "devs", "pools")
    detail_commands: tuple[str, ...] = ()
    idle_commands: tuple[str, ...] = ()
    alternatives: Mapping[str, str] = {}

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        record = version_record(version)
        model = None
        for dev in detail_records(details, "devdetails", "DEVDETAILS"):
            model = clean_text(dev.get("Model"))
            if model:
                break
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=model,
            firmware_version=clean_text(record.get("CGMiner") or record.get("Miner")),
        )

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        draft = Draft()
        summary = summary_record(replies, ctx)
        draft.hashrate_5s_hs = _short_window(summary, ctx, "summary")
        draft.hashrate_avg_hs = rate_hs(summary, _RATE_AVG, ctx, "summary")
        summary_counters(draft, summary, ctx)
        draft.boards = [
            _board(position, dev, ctx)
            for position, dev in enumerate(records(replies, "devs", "DEVS", ctx))
        ]
        draft.pools = parse_pools(records(replies, "pools", "POOLS", ctx), ctx)
        return draft


def _short_window(record: dict[str, Any], ctx: ParseContext, where: str) -> float | None:
    # Q27: a 0 short window while the 1 m window is busy means "not computed", not "stopped".
    return first_positive(
        rate_hs(record, _RATE_5S, ctx, where), rate_hs(record, _RATE_1M, ctx, where)
    )


def _board(position: int, dev: dict[str, Any], ctx: ParseContext) -> BoardReading:
    index = ctx.integer_any(dev, ("ASC", "PGA", "ID"), "devs")
    temp = ctx.num_any(dev, ("Temperature", "Tenperature"), "devs")
    return BoardReading(
        index=position if index is None else index,
        hashrate_hs=_short_window(dev, ctx, "devs"),
        temp_board_c=temp if temp else None,
        hardware_errors=ctx.integer(dev, "Hardware Errors", "devs"),
    )
