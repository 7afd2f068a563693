"""Control actions on CGMiner-family devices: the result type, the action names, the base class.

Every action returns a checked `ControlResult`: `ok` is True only when the device acknowledged
the command (STATUS S/I), and `code`/`message` carry what it said. A device that refuses
(STATUS E/F) gives `ok=False`, not an exception; transport failures (refused, timeout) do raise,
because then nothing is known about whether the action happened.

Exception: `reboot`/`restart` often lose the connection before replying; that is reported as
`ok=True` with `detail="unconfirmed: ..."`, and the next poll is the confirmation.

`Controls` is the per-family base: every action raises `ControlUnsupported` with the family's
explanation unless a subclass implements it and lists it in `actions` (the capability set the
UI uses). Family implementations live in `drivers/cgminer/controls/`.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from drivers.cgminer.client import DEFAULT_TIMEOUT_S, Reply, request
from drivers.cgminer.errors import (
    CgminerError,
    ControlUnsupported,
    EmptyReply,
    ReplyInterrupted,
    RequestTimeout,
)
from drivers.cgminer.reading import Firmware

REBOOT = "reboot"
RESTART = "restart"
SWITCH_POOL = "switch_pool"
ENABLE_POOL = "enable_pool"
DISABLE_POOL = "disable_pool"
ADD_POOL = "add_pool"
CURTAIL = "curtail"
WAKE = "wake"
SET_POWER_TARGET = "set_power_target"

ACTIONS: frozenset[str] = frozenset(
    {
        REBOOT,
        RESTART,
        SWITCH_POOL,
        ENABLE_POOL,
        DISABLE_POOL,
        ADD_POOL,
        CURTAIL,
        WAKE,
        SET_POWER_TARGET,
    }
)
POOL_ACTIONS: frozenset[str] = frozenset({SWITCH_POOL, ENABLE_POOL, DISABLE_POOL, ADD_POOL})


class ControlResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a control action achieved, as the device reported it."""

    ok: bool
    action: str
    code: int | None = None
    message: str = ""
    detail: str = ""


class Channel:
    """How control code talks to one device: address, deadline and credentials."""

    __slots__ = ("host", "password", "port", "timeout_s")

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.password = password

    async def send(self, name: str, parameter: str | int | None = None) -> Reply:
        """One command; a failed STATUS is returned in the reply, not raised."""
        return await request(self.host, self.port, name, parameter, timeout_s=self.timeout_s)


def result_of(action: str, reply: Reply, *, detail: str = "") -> ControlResult:
    """A `ControlResult` from a reply's status."""
    status = reply.status
    return ControlResult(
        ok=status.ok,
        action=action,
        code=status.code,
        message=status.msg or status.letter,
        detail=detail,
    )


def failed(
    action: str, message: str, *, code: int | None = None, detail: str = ""
) -> ControlResult:
    return ControlResult(ok=False, action=action, code=code, message=message, detail=detail)


async def send_restarting(
    channel: Channel, action: str, name: str, parameter: str | None = None
) -> ControlResult:
    """Send a reboot/restart command, accepting a dropped connection as "probably done"."""
    try:
        reply = await channel.send(name, parameter)
    except (EmptyReply, ReplyInterrupted) as exc:
        return unconfirmed(action, exc)
    except RequestTimeout as exc:
        if exc.phase == "read":
            return unconfirmed(action, exc)
        raise
    return result_of(action, reply)


def unconfirmed(action: str, exc: CgminerError) -> ControlResult:
    return ControlResult(
        ok=True,
        action=action,
        message="no reply: the connection dropped, as it does while the device restarts",
        detail=f"unconfirmed: {exc}",
    )


def pool_index(index: int) -> str:
    """Validate a pool id and format it as the string cgminer expects (`"0"`, never absent)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"pool index must be a non-negative int, not {index!r}")
    return str(index)


def escape_field(value: str) -> str:
    """Escape `\\` and `,` inside one field of a comma-separated parameter (§1.2)."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


class Controls:
    """Base: every action unsupported, with the family's explanation."""

    firmware: ClassVar[Firmware | None] = None
    actions: ClassVar[frozenset[str]] = frozenset()
    why_unsupported: ClassVar[str] = "this firmware offers no such command over its RPC"

    def unsupported(self, action: str) -> ControlUnsupported:
        family = self.firmware.value if self.firmware is not None else "this firmware"
        return ControlUnsupported(f"{action} is not supported on {family}: {self.why_unsupported}")

    async def reboot(self, channel: Channel) -> ControlResult:
        raise self.unsupported(REBOOT)

    async def restart(self, channel: Channel) -> ControlResult:
        raise self.unsupported(RESTART)

    async def switch_pool(self, channel: Channel, index: int) -> ControlResult:
        raise self.unsupported(SWITCH_POOL)

    async def enable_pool(self, channel: Channel, index: int) -> ControlResult:
        raise self.unsupported(ENABLE_POOL)

    async def disable_pool(self, channel: Channel, index: int) -> ControlResult:
        raise self.unsupported(DISABLE_POOL)

    async def add_pool(self, channel: Channel, url: str, user: str, password: str) -> ControlResult:
        raise self.unsupported(ADD_POOL)

    async def curtail(self, channel: Channel) -> ControlResult:
        raise self.unsupported(CURTAIL)

    async def wake(self, channel: Channel) -> ControlResult:
        raise self.unsupported(WAKE)

    async def set_power_target(self, channel: Channel, watts: int) -> ControlResult:
        raise self.unsupported(SET_POWER_TARGET)


__all__ = [
    "ACTIONS",
    "ADD_POOL",
    "CURTAIL",
    "DISABLE_POOL",
    "ENABLE_POOL",
    "POOL_ACTIONS",
    "REBOOT",
    "RESTART",
    "SET_POWER_TARGET",
    "SWITCH_POOL",
    "WAKE",
    "Channel",
    "ControlResult",
    "Controls",
    "escape_field",
    "failed",
    "pool_index",
    "result_of",
    "send_restarting",
    "unconfirmed",
]
