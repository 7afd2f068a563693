"""Braiins OS writes over the cgminer-compatible RPC: `pause`/`resume` and pool commands.

Reboot, restart and power targets go through BOS's gRPC API (port 50051) or SSH, not this RPC:
unsupported here. `pause` answers `PAUSE:[{...}]`, `resume` `RESUME:[{...}]` (§4.3).
"""

from __future__ import annotations

from typing import ClassVar

from drivers.cgminer.control import (
    ADD_POOL,
    CURTAIL,
    DISABLE_POOL,
    ENABLE_POOL,
    SWITCH_POOL,
    WAKE,
    Channel,
    ControlResult,
    result_of,
)
from drivers.cgminer.controls.cgminer import CgminerPoolWrites
from drivers.cgminer.reading import Firmware


class BraiinsControls(CgminerPoolWrites):
    firmware: ClassVar[Firmware | None] = Firmware.BRAIINS
    actions: ClassVar[frozenset[str]] = frozenset(
        {CURTAIL, WAKE, SWITCH_POOL, ENABLE_POOL, DISABLE_POOL, ADD_POOL}
    )
    why_unsupported: ClassVar[str] = (
        "Braiins OS reboots, restarts and power targets go through its gRPC API, not implemented"
    )

    async def curtail(self, channel: Channel) -> ControlResult:
        return result_of(CURTAIL, await channel.send("pause"))

    async def wake(self, channel: Channel) -> ControlResult:
        return result_of(WAKE, await channel.send("resume"))
