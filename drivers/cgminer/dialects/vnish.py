"""Vnish (AnthillOS) on Antminers (§4.6): the stock layout plus a few extras.

Recognised by `(Vnish x.y.z)` in `Type`. `stats` adds `chain_consumption<i>` (W per chain: the
reading's reported power), `chain_rateideal<i>`, `chain_state<i>` and a miner `state`; pools
include a `DevFee` entry. Controls go through Vnish's REST API (not this RPC) and are out of
scope here. Q31: some Vnish builds do not answer `version`; detection then falls back to `stats`.
"""

from __future__ import annotations

import re

from drivers.cgminer.client import Reply
from drivers.cgminer.dialects.antminer import AntminerStock
from drivers.cgminer.dialects.antminer_stats import AntminerStats
from drivers.cgminer.dialects.base import Draft, Identity, Replies
from drivers.cgminer.dialects.common import strip_type_suffix, version_record
from drivers.cgminer.reading import Firmware, MinerState

_VNISH_VERSION = re.compile(r"\(\s*vnish\s+([^)]*)\)", re.IGNORECASE)

# Vnish `state` words → the firmware's own state (anything else: decided from the hashrate).
_STATES = {
    "stopped": MinerState.SLEEPING,
    "paused": MinerState.SLEEPING,
    "sleep": MinerState.SLEEPING,
    "sleeping": MinerState.SLEEPING,
    "failure": MinerState.ERROR,
    "error": MinerState.ERROR,
}


def vnish_version(model_type: str | None) -> str | None:
    """`"Antminer S19 XP (Vnish 1.2.0-rc1)"` → `"1.2.0-rc1"`."""
    if not model_type:
        return None
    match = _VNISH_VERSION.search(model_type)
    return match.group(1).strip() if match else None


class Vnish(AntminerStock):
    """Dialect: Vnish firmware on Antminers."""

    firmware = Firmware.VNISH
    make = "Antminer"

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        record = version_record(version)
        model_type = record.get("Type")
        if not isinstance(model_type, str):
            # Q31: no usable version reply; detection read `stats` instead.
            stats = details.get("stats")
            model_type = _stats_type(stats) if isinstance(stats, Reply) else None
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=strip_type_suffix(model_type),
            firmware_version=vnish_version(model_type),
        )

    def apply_stats(self, draft: Draft, identity: Identity, stats: AntminerStats) -> None:
        super().apply_stats(draft, identity, stats)
        draft.power_w = stats.power_w
        if stats.model_type:
            draft.model = strip_type_suffix(stats.model_type) or identity.model
            draft.firmware_version = vnish_version(stats.model_type) or identity.firmware_version
        if stats.state_text:
            draft.state = _STATES.get(stats.state_text.lower())


def _stats_type(stats: Reply) -> str | None:
    value = stats.data.get("STATS")
    if isinstance(value, list):
        for record in value:
            if isinstance(record, dict) and isinstance(record.get("Type"), str):
                return str(record["Type"])
    return None
