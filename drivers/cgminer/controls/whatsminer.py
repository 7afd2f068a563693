"""Whatsminer API V2 writes, all through the encrypted token flow (`whatsminer_auth`).

reboot → `reboot`; restart → `restart_btminer`; curtail → `power_off` (`respbefore: "true"`, so
the reply comes before the hashboards stop); wake → `power_on`; set_power_target →
`adjust_power_limit` (`power_limit` as a string; the miner restarts btminer to apply it).
Pool changes exist only as `update_pools`, which replaces all three pools at once: not offered.
API V3 (port 4433, firmware ≥ 2024-11) is not implemented.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.cgminer.control import (
    CURTAIL,
    REBOOT,
    RESTART,
    SET_POWER_TARGET,
    WAKE,
    Channel,
    ControlResult,
    Controls,
    result_of,
    unconfirmed,
)
from drivers.cgminer.controls.whatsminer_auth import WhatsminerAuth
from drivers.cgminer.errors import EmptyReply, ReplyInterrupted, RequestTimeout
from drivers.cgminer.reading import Firmware


class WhatsminerControls(Controls):
    firmware: ClassVar[Firmware | None] = Firmware.WHATSMINER
    actions: ClassVar[frozenset[str]] = frozenset(
        {REBOOT, RESTART, CURTAIL, WAKE, SET_POWER_TARGET}
    )
    why_unsupported: ClassVar[str] = (
        "Whatsminer V2 changes pools only with update_pools (all pools at once), not offered"
    )

    def __init__(self) -> None:
        self.auth = WhatsminerAuth()

    async def _send(
        self, channel: Channel, action: str, command: str, **arguments: str
    ) -> ControlResult:
        return result_of(action, await self.auth.send(channel, command, **arguments))

    async def _send_restarting(self, channel: Channel, action: str, command: str) -> ControlResult:
        try:
            return await self._send(channel, action, command)
        except (EmptyReply, ReplyInterrupted, RequestTimeout) as exc:
            if isinstance(exc, RequestTimeout) and exc.phase != "read":
                raise
            return unconfirmed(action, exc)

    async def reboot(self, channel: Channel) -> ControlResult:
        return await self._send_restarting(channel, REBOOT, "reboot")

    async def restart(self, channel: Channel) -> ControlResult:
        return await self._send_restarting(channel, RESTART, "restart_btminer")

    async def curtail(self, channel: Channel) -> ControlResult:
        return await self._send(channel, CURTAIL, "power_off", respbefore="true")

    async def wake(self, channel: Channel) -> ControlResult:
        return await self._send(channel, WAKE, "power_on")

    async def set_power_target(self, channel: Channel, watts: int) -> ControlResult:
        if watts <= 0:
            raise ValueError(f"power target must be positive, not {watts}")
        return await self._send(
            channel, SET_POWER_TARGET, "adjust_power_limit", power_limit=str(int(watts))
        )
