"""Stock Antminer firmware (bmminer, "cgminer 1.0.0"): S9 … S19 / S21 (§4.1).

Read-only RPC (API group A: stats, pools, devs, summary, version). A full reading is
`summary+stats+pools`; `version` is read once at detection (model from `Type`).

Units: `GHS 5s` / `GHS av` and `chain_rate<i>` are GH/s, often as strings (Q14). `summary` has
no power field, so power is always estimated from the nameplate. `devs` is a useless single
`BTM_SOC` record with the `Tenperature` typo (Q15), so it is not read.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import clean_text
from drivers.cgminer.dialects.antminer_stats import AntminerStats, parse_stats
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
    parse_pools,
    rate_hs,
    strip_type_suffix,
    summary_counters,
    summary_record,
    version_record,
)
from drivers.cgminer.models import lookup
from drivers.cgminer.reading import Firmware

# Antminer summaries are GH/s; a few cgminer-based builds (S9 on cgminer 4.x) send MH/s.
RATE_5S_KEYS = (("GHS 5s", GH_S), ("MHS 5s", MH_S))
RATE_AVG_KEYS = (("GHS av", GH_S), ("MHS av", MH_S))


class AntminerStock:
    """Dialect: stock Antminer bmminer."""

    firmware = Firmware.ANTMINER_STOCK
    make = "Antminer"
    poll_commands: tuple[str, ...] = ("summary", "stats", "pools")
    detail_commands: tuple[str, ...] = ()
    idle_commands: tuple[str, ...] = ()
    alternatives: Mapping[str, str] = {}

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        record = version_record(version)
        model_type = record.get("Type")
        firmware_version = clean_text(record.get("CompileTime")) or clean_text(
            record.get("BMMiner") or record.get("Miner")
        )
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=strip_type_suffix(model_type if isinstance(model_type, str) else None),
            firmware_version=firmware_version,
        )

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        draft = Draft()
        summary = summary_record(replies, ctx)
        draft.hashrate_5s_hs = rate_hs(summary, RATE_5S_KEYS, ctx, "summary")
        draft.hashrate_avg_hs = rate_hs(summary, RATE_AVG_KEYS, ctx, "summary")
        summary_counters(draft, summary, ctx)
        stats = parse_stats(records(replies, "stats", "STATS", ctx), ctx, lookup(identity.model))
        self.apply_stats(draft, identity, stats)
        draft.pools = parse_pools(records(replies, "pools", "POOLS", ctx), ctx)
        return draft

    def apply_stats(self, draft: Draft, identity: Identity, stats: AntminerStats) -> None:
        """Copy what `stats` says into the draft (a hook Vnish and LuxOS extend)."""
        draft.boards = stats.boards
        draft.fans_rpm = stats.fans_rpm
        draft.nominal_hashrate_hs = stats.nominal_hs
        if draft.uptime_s is None:
            draft.uptime_s = stats.uptime_s
        if identity.model is None:
            draft.model = strip_type_suffix(stats.model_type)
