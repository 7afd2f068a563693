"""Avalon writes: `ascset|0,<option>,<value>` plus the cgminer pool commands (§4.5).

`softoff` / `softon` take `1:<unix time>` (act at that time; now = at once), `reboot` `0`,
`worklevel,set,<n>`. Success is `119 S "ASC 0 set OK"` or `118 I "ASC 0 set info: ..."`;
a message containing "fail" is a failure even with an I letter.

Power targets: Avalon firmware has work levels, not watts. Level 2 runs at about the nameplate,
1 at about 85 % of it, 0 at about 70 % (the thresholds pyasic's mapping implies). Like a LuxOS
profile pick, the target chooses the highest level whose power stays at or below it; approximate
by nature, and unsupported when the model's nameplate is unknown.
"""

from __future__ import annotations

import time
from typing import ClassVar

from drivers.cgminer.client import Reply
from drivers.cgminer.control import (
    ADD_POOL,
    CURTAIL,
    DISABLE_POOL,
    ENABLE_POOL,
    REBOOT,
    RESTART,
    SET_POWER_TARGET,
    SWITCH_POOL,
    WAKE,
    Channel,
    ControlResult,
    result_of,
    send_restarting,
)
from drivers.cgminer.controls.cgminer import CgminerPoolWrites
from drivers.cgminer.models import ModelSpec
from drivers.cgminer.reading import Firmware


def _ascset_result(action: str, reply: Reply, detail: str = "") -> ControlResult:
    result = result_of(action, reply, detail=detail)
    if result.ok and "fail" in reply.status.msg.lower():
        return ControlResult(
            ok=False, action=action, code=result.code, message=result.message, detail=detail
        )
    return result


_LEVEL_POWER_FRACTION = ((2, 1.0), (1, 0.85))


def work_level(watts: int, spec: ModelSpec) -> int:
    """The highest work level expected to draw at most `watts` (level 0 as the floor)."""
    fraction = watts / spec.power_w
    for level, level_fraction in _LEVEL_POWER_FRACTION:
        if fraction >= level_fraction:
            return level
    return 0


class AvalonControls(CgminerPoolWrites):
    firmware: ClassVar[Firmware | None] = Firmware.AVALON
    actions: ClassVar[frozenset[str]] = frozenset(
        {
            REBOOT,
            RESTART,
            CURTAIL,
            WAKE,
            SET_POWER_TARGET,
            SWITCH_POOL,
            ENABLE_POOL,
            DISABLE_POOL,
            ADD_POOL,
        }
    )

    def __init__(self, spec: ModelSpec | None = None) -> None:
        self.spec = spec

    async def reboot(self, channel: Channel) -> ControlResult:
        return await send_restarting(channel, REBOOT, "ascset", "0,reboot,0")

    async def restart(self, channel: Channel) -> ControlResult:
        return await send_restarting(channel, RESTART, "restart")

    async def curtail(self, channel: Channel) -> ControlResult:
        reply = await channel.send("ascset", f"0,softoff,1:{int(time.time())}")
        return _ascset_result(CURTAIL, reply)

    async def wake(self, channel: Channel) -> ControlResult:
        reply = await channel.send("ascset", f"0,softon,1:{int(time.time())}")
        return _ascset_result(WAKE, reply)

    async def set_power_target(self, channel: Channel, watts: int) -> ControlResult:
        if self.spec is None:
            raise self.unsupported(SET_POWER_TARGET + " (model nameplate unknown)")
        level = work_level(watts, self.spec)
        reply = await channel.send("ascset", f"0,worklevel,set,{level}")
        detail = f"work level {level} for {watts} W on a {self.spec.power_w:g} W nameplate"
        return _ascset_result(SET_POWER_TARGET, reply, detail)
