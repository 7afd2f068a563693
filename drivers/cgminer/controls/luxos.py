"""LuxOS writes: every privileged command carries a session id (§4.4).

Flow per action: `session` (reuse an open session: LuxOS allows one at a time and `logon` fails
while another is open), else `logon` → `SESSION[0].SessionID`; then the command with the id as
the first comma-separated parameter (`curtail` `"<sid>,sleep"`); then `logoff|<sid>` if the
session was ours. `set_power_target` picks the highest-power profile at or below the target
(`profiles` → `profileset "<sid>,<name>"`), like pyasic.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drivers.cgminer.control import (
    ACTIONS,
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
    Controls,
    escape_field,
    failed,
    pool_index,
    result_of,
    send_restarting,
)
from drivers.cgminer.errors import CgminerError
from drivers.cgminer.reading import Firmware


def _session_id(data: dict[str, Any]) -> str:
    sessions = data.get("SESSION")
    if isinstance(sessions, list) and sessions and isinstance(sessions[0], dict):
        return str(sessions[0].get("SessionID") or "").strip()
    return ""


class LuxOSControls(Controls):
    firmware: ClassVar[Firmware | None] = Firmware.LUXOS
    actions: ClassVar[frozenset[str]] = ACTIONS

    async def _open(self, channel: Channel) -> tuple[str, bool] | ControlResult:
        """(session id, opened by us) or a failed result saying why there is none."""
        current = await channel.send("session")
        if current.status.ok:
            existing = _session_id(current.data)
            if existing:
                return existing, False
        reply = await channel.send("logon")
        sid = _session_id(reply.data) if reply.status.ok else ""
        if not sid:
            return failed(
                "logon",
                f"LuxOS logon failed: {reply.status.msg or reply.status.letter}",
                code=reply.status.code,
            )
        return sid, True

    async def _privileged(
        self, channel: Channel, action: str, name: str, *arguments: str, restarting: bool = False
    ) -> ControlResult:
        opened = await self._open(channel)
        if isinstance(opened, ControlResult):
            return ControlResult(ok=False, action=action, code=opened.code, message=opened.message)
        sid, ours = opened
        parameter = ",".join((sid, *arguments))
        try:
            if restarting:
                return await send_restarting(channel, action, name, parameter)
            return result_of(action, await channel.send(name, parameter))
        finally:
            if ours and not restarting:
                try:
                    await channel.send("logoff", sid)
                except CgminerError:
                    pass  # the session times out on its own; the action's result stands

    async def reboot(self, channel: Channel) -> ControlResult:
        return await self._privileged(channel, REBOOT, "rebootdevice", restarting=True)

    async def restart(self, channel: Channel) -> ControlResult:
        return await self._privileged(channel, RESTART, "resetminer", restarting=True)

    async def switch_pool(self, channel: Channel, index: int) -> ControlResult:
        return await self._privileged(channel, SWITCH_POOL, "switchpool", pool_index(index))

    async def enable_pool(self, channel: Channel, index: int) -> ControlResult:
        return await self._privileged(channel, ENABLE_POOL, "enablepool", pool_index(index))

    async def disable_pool(self, channel: Channel, index: int) -> ControlResult:
        return await self._privileged(channel, DISABLE_POOL, "disablepool", pool_index(index))

    async def add_pool(self, channel: Channel, url: str, user: str, password: str) -> ControlResult:
        fields = [escape_field(field) for field in (url, user, password)]
        return await self._privileged(channel, ADD_POOL, "addpool", *fields)

    async def curtail(self, channel: Channel) -> ControlResult:
        return await self._privileged(channel, CURTAIL, "curtail", "sleep")

    async def wake(self, channel: Channel) -> ControlResult:
        return await self._privileged(channel, WAKE, "curtail", "wakeup")

    async def set_power_target(self, channel: Channel, watts: int) -> ControlResult:
        reply = await channel.send("profiles")
        if not reply.status.ok:
            return result_of(SET_POWER_TARGET, reply)
        profiles = reply.data.get("PROFILES")
        candidates: list[tuple[float, str]] = []
        if isinstance(profiles, list):
            for profile in profiles:
                if not isinstance(profile, dict):
                    continue
                name = profile.get("Profile Name")
                power = profile.get("Watts")
                if isinstance(name, str) and isinstance(power, int | float) and power <= watts:
                    candidates.append((float(power), name))
        if not candidates:
            return failed(SET_POWER_TARGET, f"no LuxOS profile at or below {watts} W")
        power, name = max(candidates)
        result = await self._privileged(channel, SET_POWER_TARGET, "profileset", name)
        detail = f"profile {name!r} ({power:g} W)"
        return ControlResult(
            ok=result.ok,
            action=result.action,
            code=result.code,
            message=result.message,
            detail=detail,
        )
