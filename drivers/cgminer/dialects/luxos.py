"""LuxOS (Luxor firmware on Antminers, §4.4).

Recognised by the `LUXminer` key in `version`. Reading: `summary` (GH/s), `stats` (the Antminer
classic layout), `pools`, `power` (`POWER[0].Watts`, reported power) and `config` (`CurtailMode`
tells a curtailed miner from a broken one; `NameplateTHS` is the nominal when `stats` has none).
"""

from __future__ import annotations

from drivers.cgminer.client import Reply
from drivers.cgminer.coerce import clean_text
from drivers.cgminer.dialects.antminer import AntminerStock
from drivers.cgminer.dialects.base import TH_S, Draft, Identity, ParseContext, Replies, records
from drivers.cgminer.dialects.common import strip_type_suffix, version_record
from drivers.cgminer.reading import Firmware, MinerState

# CurtailMode values that mean "not curtailed".
_NOT_CURTAILED = frozenset({"", "none", "off", "false", "disabled", "0", "normal", "wakeup"})


class LuxOS(AntminerStock):
    """Dialect: LuxOS."""

    firmware = Firmware.LUXOS
    make = "Antminer"
    poll_commands: tuple[str, ...] = ("summary", "stats", "pools", "power", "config")

    def identify(self, version: Reply | None, details: Replies) -> Identity:
        record = version_record(version)
        model_type = record.get("Type")
        return Identity(
            firmware=self.firmware,
            make=self.make,
            model=strip_type_suffix(model_type if isinstance(model_type, str) else None),
            firmware_version=clean_text(record.get("LUXminer") or record.get("Miner")),
        )

    def parse(self, identity: Identity, replies: Replies, ctx: ParseContext) -> Draft:
        draft = super().parse(identity, replies, ctx)
        power = records(replies, "power", "POWER", ctx)
        if power:
            draft.power_w = ctx.num(power[0], "Watts", "power")
        config = records(replies, "config", "CONFIG", ctx)
        if config:
            record = config[0]
            if draft.nominal_hashrate_hs is None:
                nameplate = ctx.num(record, "NameplateTHS", "config")
                draft.nominal_hashrate_hs = nameplate * TH_S if nameplate else None
            mode = clean_text(record.get("CurtailMode"))
            if mode is not None and mode.lower() not in _NOT_CURTAILED:
                draft.state = MinerState.CURTAILED
        return draft
