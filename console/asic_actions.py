"""ASIC actions on the action path: curtail, wake, reboot, switch pool.

`register_asic_actions` gives the `ActionPath` one handler per ASIC action. A handler finds the
device, refuses (before any I/O) when the device is not privileged or its firmware cannot do
it, runs the driver's control call under one lock per device (two operators cannot interleave
writes to one miner), records the commanded mode in the store on success, and reports the
before/after state for the audit log. Driver exceptions become result codes here, so callers
(TUI, MQTT) only ever see an `ActionResult`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from console.actions import (
    ActionName,
    ActionPath,
    ActionRequest,
    HandlerOutcome,
    ResultCode,
)
from console.model import CommandedMode
from console.store import Store
from drivers.cgminer.control import CURTAIL, REBOOT, SWITCH_POOL, WAKE, ControlResult
from drivers.cgminer.errors import (
    CgminerError,
    ControlNotPermitted,
    ControlUnsupported,
    RequestTimeout,
)
from drivers.cgminer.miner import CgminerMiner

Call = Callable[[CgminerMiner, ActionRequest], Awaitable[ControlResult]]

# action → (driver capability name, driver call, commanded mode after success or None)
_ACTIONS: dict[ActionName, tuple[str, Call, CommandedMode | None]] = {
    ActionName.ASIC_CURTAIL: (CURTAIL, lambda m, _r: m.curtail(), CommandedMode.CURTAILED),
    ActionName.ASIC_WAKE: (WAKE, lambda m, _r: m.wake(), CommandedMode.MINING),
    ActionName.ASIC_REBOOT: (REBOOT, lambda m, _r: m.reboot(), None),
    ActionName.ASIC_SWITCH_POOL: (
        SWITCH_POOL,
        lambda m, r: m.switch_pool(int(r.params["pool"])),
        None,
    ),
}


def asic_action_names(capabilities: frozenset[str]) -> tuple[ActionName, ...]:
    """The action-path names of the driver capabilities a device has (for presenters)."""
    return tuple(name for name, (cap, _, _) in _ACTIONS.items() if cap in capabilities)


def _validate_switch_pool(request: ActionRequest) -> str | None:
    pool = request.params.get("pool")
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
        return "asic.switch_pool needs params.pool: the firmware's pool index, an integer >= 0"
    return None


def _validate_target(request: ActionRequest) -> str | None:
    if not request.target:
        return f"{request.action} needs a target: the device name"
    return None


class AsicActions:
    """The handlers, bound to the site's miners and store."""

    def __init__(self, miners: Mapping[str, CgminerMiner], store: Store) -> None:
        self._miners = miners
        self._store = store
        self._locks: dict[str, asyncio.Lock] = {}

    def register(self, path: ActionPath) -> None:
        for name in _ACTIONS:
            path.register(name, self._handler(name), self._validator(name))

    @staticmethod
    def _validator(name: ActionName) -> Callable[[ActionRequest], str | None]:
        def validate(request: ActionRequest) -> str | None:
            problem = _validate_target(request)
            if problem is None and name is ActionName.ASIC_SWITCH_POOL:
                problem = _validate_switch_pool(request)
            return problem

        return validate

    def _handler(self, name: ActionName) -> Callable[[ActionRequest], Awaitable[HandlerOutcome]]:
        async def handle(request: ActionRequest) -> HandlerOutcome:
            return await self._run(name, request)

        return handle

    def _state(self, device_id: str) -> dict[str, Any]:
        status = self._store.status(device_id)
        reading = status.reading
        return {
            "commanded": status.commanded.value,
            "observed": status.observed.value,
            "hashrate_hs": reading.hashrate_5s_hs if reading else None,
            "power_w": reading.power_w if reading else None,
        }

    async def _run(self, name: ActionName, request: ActionRequest) -> HandlerOutcome:
        device_id = request.target or ""
        miner = self._miners.get(device_id)
        if miner is None:
            return HandlerOutcome(
                ok=False, code=ResultCode.NOT_FOUND, message=f"no ASIC named {device_id!r}"
            )
        capability, call, mode_after = _ACTIONS[name]
        before = self._state(device_id)
        lock = self._locks.setdefault(device_id, asyncio.Lock())
        if lock.locked():
            return HandlerOutcome(
                ok=False,
                code=ResultCode.BUSY,
                message=f"{device_id}: another action is running on it; try again when it ends",
                before=before,
            )
        async with lock:
            try:
                result = await call(miner, request)
            except ControlNotPermitted as exc:
                return HandlerOutcome(
                    ok=False, code=ResultCode.NOT_PERMITTED, message=str(exc), before=before
                )
            except ControlUnsupported as exc:
                return HandlerOutcome(
                    ok=False,
                    code=ResultCode.UNSUPPORTED,
                    message=f"{device_id}: {exc or capability + ' is not supported'}",
                    before=before,
                )
            except RequestTimeout as exc:
                return HandlerOutcome(
                    ok=False, code=ResultCode.TIMEOUT, message=f"{device_id}: {exc}", before=before
                )
            except CgminerError as exc:
                return HandlerOutcome(
                    ok=False, code=ResultCode.FAILED, message=f"{device_id}: {exc}", before=before
                )
        if not result.ok:
            return HandlerOutcome(
                ok=False,
                code=ResultCode.FAILED,
                message=f"{device_id}: {capability} refused by the firmware: "
                f"{result.message or result.detail or 'no reason given'}",
                detail={"firmware_code": result.code},
                before=before,
            )
        if mode_after is not None:
            self._store.set_commanded(device_id, mode_after)
        return HandlerOutcome(
            ok=True,
            code=ResultCode.OK,
            message=f"{device_id}: {capability} accepted"
            + (f" ({result.message})" if result.message else ""),
            detail={"firmware_code": result.code},
            before=before,
            after=self._state(device_id),
        )
