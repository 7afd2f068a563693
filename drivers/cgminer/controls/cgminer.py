"""Plain cgminer privileged RPC writes (§3 "Writes"), shared by families that keep them.

`restart` (reply `{"STATUS":"RESTART"}`), `switchpool`/`enablepool`/`disablepool` with the pool
id as a string (`"0"` for pool 0 — pyasic omits a falsy parameter and real cgminer answers 25),
`addpool` with `URL,USER,PASS` (`,` and `\\` escaped). cgminer cannot reboot its host nor
curtail: those stay unsupported.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.cgminer.control import (
    ADD_POOL,
    DISABLE_POOL,
    ENABLE_POOL,
    RESTART,
    SWITCH_POOL,
    Channel,
    ControlResult,
    Controls,
    escape_field,
    pool_index,
    result_of,
    send_restarting,
)
from drivers.cgminer.reading import Firmware


class CgminerPoolWrites(Controls):
    """Mixin-style base: the cgminer pool commands, for any family that accepts them."""

    async def switch_pool(self, channel: Channel, index: int) -> ControlResult:
        return result_of(SWITCH_POOL, await channel.send("switchpool", pool_index(index)))

    async def enable_pool(self, channel: Channel, index: int) -> ControlResult:
        return result_of(ENABLE_POOL, await channel.send("enablepool", pool_index(index)))

    async def disable_pool(self, channel: Channel, index: int) -> ControlResult:
        return result_of(DISABLE_POOL, await channel.send("disablepool", pool_index(index)))

    async def add_pool(self, channel: Channel, url: str, user: str, password: str) -> ControlResult:
        parameter = ",".join(escape_field(field) for field in (url, user, password))
        return result_of(ADD_POOL, await channel.send("addpool", parameter))


class CgminerControls(CgminerPoolWrites):
    """Plain cgminer: restart and pool writes; no host reboot, no curtailment."""

    firmware: ClassVar[Firmware | None] = Firmware.CGMINER
    actions: ClassVar[frozenset[str]] = frozenset(
        {RESTART, SWITCH_POOL, ENABLE_POOL, DISABLE_POOL, ADD_POOL}
    )
    why_unsupported: ClassVar[str] = (
        "plain cgminer can restart itself and manage pools, but cannot reboot the host, "
        "curtail or set a power target"
    )

    async def restart(self, channel: Channel) -> ControlResult:
        return await send_restarting(channel, RESTART, "restart")
