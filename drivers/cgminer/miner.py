"""`CgminerMiner`: one CGMiner-family device, as the poller and the action path see it.

`read()` is the hot path: detect once (cached), then one `+`-join per poll (or single commands
once the device has shown that joins fail), parse with the cached dialect, finish. Re-detection
happens only after hints of a firmware change: a required command refused as invalid/denied,
or the device coming back after a transport failure (flashing firmware needs a reboot).

Control methods refuse with `ControlNotPermitted` unless the device is marked `privileged`
(before any I/O), raise `ControlUnsupported` where the firmware has no way to do it, and
otherwise return a checked `ControlResult` (see `control.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from drivers.cgminer.client import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT_S,
    JoinPlan,
    MultiReply,
    multi,
    plan_join,
)
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
    Controls,
)
from drivers.cgminer.controls import capabilities, controls_for
from drivers.cgminer.dialects.base import Dialect, Draft, Identity, ParseContext, Replies
from drivers.cgminer.dialects.common import RECORDS_READ, finalise
from drivers.cgminer.dialects.detect import detect
from drivers.cgminer.errors import (
    TRANSPORT_ERRORS,
    AccessDenied,
    CgminerError,
    CommandError,
    ControlNotPermitted,
    DecodeError,
    InvalidCommand,
)
from drivers.cgminer.models import lookup
from drivers.cgminer.reading import AsicReading, Firmware

# Bugs in a parser must not take the poller down; they surface as a DecodeError for this device.
_PARSER_BUGS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


class CgminerMiner:
    """One miner on the CGMiner-style API (TCP 4028)."""

    __slots__ = (
        "_channel",
        "_controls",
        "_dialect",
        "_identity",
        "_joins",
        "_plan",
        "_poll_commands",
        "_redetect",
        "expected_firmware",
        "host",
        "model_hint",
        "port",
        "privileged",
        "timeout_s",
    )

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        privileged: bool = False,
        firmware: Firmware | None = None,
        password: str | None = None,
        model_hint: str | None = None,
    ) -> None:
        """`model_hint`: the model the operator configured, used only when the firmware names
        none (plain CGMiner builds), so the nameplate still gives a power estimate, nominal
        hashrate and chip counts; a warning on every reading says where the model came from."""
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.privileged = privileged
        self.expected_firmware = firmware
        self.model_hint = model_hint or None
        self._channel = Channel(host, port, timeout_s=timeout_s, password=password)
        self._dialect: Dialect | None = None
        self._identity: Identity | None = None
        self._controls: Controls | None = None
        self._poll_commands: tuple[str, ...] = ()
        # The poll's join, request bytes included, built once per command set (not per poll).
        self._plan: JoinPlan = plan_join(())
        self._joins: bool | None = None  # None: not known yet; False: the device rejects joins
        self._redetect = False

    def __repr__(self) -> str:
        family = self._identity.firmware.value if self._identity else "undetected"
        return f"CgminerMiner({self.host}:{self.port}, {family})"

    # --- state --------------------------------------------------------------------------------

    @property
    def identity(self) -> Identity | None:
        """What detection learned (None before the first successful detection)."""
        return self._identity

    @property
    def joins_supported(self) -> bool | None:
        """Whether `+`-joins worked on this device (None until tried)."""
        return self._joins

    def capabilities(self) -> frozenset[str]:
        """Control actions this device's firmware supports (empty until detected)."""
        firmware = self._identity.firmware if self._identity else self.expected_firmware
        return capabilities(firmware) if firmware is not None else frozenset()

    # --- reading ------------------------------------------------------------------------------

    async def detect(self) -> Identity:
        """(Re-)recognise the firmware family and model; resets what was learned about joins."""
        dialect, identity = await detect(
            self.host, self.port, timeout_s=self.timeout_s, expected=self.expected_firmware
        )
        if identity.model is None and self.model_hint is not None:
            identity = msgspec.structs.replace(
                identity,
                model=self.model_hint,
                warnings=(
                    *identity.warnings,
                    f"firmware reports no model: {self.model_hint!r} is the configured one",
                ),
            )
        if self._identity is None or identity.firmware is not self._identity.firmware:
            self._controls = None
        self._dialect = dialect
        self._identity = identity
        self._poll_commands = dialect.poll_commands
        self._plan = plan_join(dialect.poll_commands, RECORDS_READ)
        self._joins = None
        self._redetect = False
        return identity

    async def read(self) -> AsicReading:
        """Poll the device once and return a normalised reading.

        Raises `CgminerError` subclasses only: transport errors (device down), `DecodeError`
        (structurally unusable reply), `CommandError` (the required `summary` refused),
        `DetectionFailed`.
        """
        dialect = self._dialect
        identity = self._identity
        if dialect is None or identity is None or self._redetect:
            try:
                identity = await self.detect()
            except TRANSPORT_ERRORS:
                self._redetect = True
                raise
            dialect = self._dialect
            assert dialect is not None
        try:
            result = await multi(
                self.host,
                self.port,
                self._plan,
                timeout_s=self.timeout_s,
                join=self._joins is not False,
            )
        except TRANSPORT_ERRORS:
            self._redetect = True  # firmware changes need a reboot: check again when it is back
            raise
        if result.join_error is not None:
            self._joins = False
        elif result.joined:
            self._joins = True
        replies: Replies = result.replies
        repairs = result.repairs
        if dialect.alternatives:
            replies, repairs = await self._substitute(dialect, result, repairs)

        ctx = ParseContext()
        draft = self._parse(dialect, identity, replies, ctx)
        if dialect.idle_commands and draft.state is None and not (draft.hashrate_5s_hs or 0) > 0:
            # No hashrate and no marker yet: ask why (e.g. Whatsminer `status` btmineroff).
            extra = await self._optional(dialect.idle_commands)
            if extra is not None:
                replies = {**replies, **extra.replies}
                repairs = tuple(dict.fromkeys((*repairs, *extra.repairs)))
                ctx = ParseContext()
                draft = self._parse(dialect, identity, replies, ctx)
        return finalise(identity, draft, ctx, repairs)

    def _parse(
        self, dialect: Dialect, identity: Identity, replies: Replies, ctx: ParseContext
    ) -> Draft:
        try:
            return dialect.parse(identity, replies, ctx)
        except (InvalidCommand, AccessDenied):
            # The required command is refused: the firmware may have changed under us.
            self._redetect = True
            raise
        except CgminerError:
            raise
        except _PARSER_BUGS as exc:
            raise DecodeError(
                f"{identity.firmware.value} reply could not be parsed: {exc!r}"
            ) from exc

    async def _optional(self, commands: tuple[str, ...]) -> MultiReply | None:
        try:
            return await multi(self.host, self.port, commands, timeout_s=self.timeout_s, join=False)
        except CgminerError:
            return None

    async def _substitute(
        self, dialect: Dialect, result: MultiReply, repairs: tuple[str, ...]
    ) -> tuple[Replies, tuple[str, ...]]:
        """Swap refused poll commands for their alternatives (Avalon estats → stats), for good."""
        replies = dict(result.replies)
        for original, alternative in dialect.alternatives.items():
            if not isinstance(replies.get(original), InvalidCommand | AccessDenied):
                continue
            self._poll_commands = tuple(
                alternative if name == original else name for name in self._poll_commands
            )
            self._plan = plan_join(self._poll_commands, RECORDS_READ)
            extra = await self._optional((alternative,))
            if extra is not None:
                replies.update(extra.replies)
                repairs = tuple(dict.fromkeys((*repairs, *extra.repairs)))
        return replies, repairs

    # --- control ------------------------------------------------------------------------------

    async def _control(
        self, action: str, call: Callable[[Controls, Channel], Awaitable[ControlResult]]
    ) -> ControlResult:
        if not self.privileged:
            raise ControlNotPermitted(
                f"{action} refused for {self.host}:{self.port}: privileged writes are off for "
                "this device (enable them per device in the config)"
            )
        controls = await self._controls_ready()
        if action not in controls.actions:
            raise controls.unsupported(action)
        try:
            return await call(controls, self._channel)
        except CommandError as exc:
            return ControlResult(
                ok=False, action=action, code=exc.code, message=exc.msg, detail=str(exc)
            )

    async def _controls_ready(self) -> Controls:
        if self._identity is None:
            await self.detect()
        identity = self._identity
        assert identity is not None
        if self._controls is None:
            self._controls = controls_for(identity.firmware, lookup(identity.model))
        return self._controls

    async def reboot(self) -> ControlResult:
        """Reboot the device (the controller, not just the mining software)."""
        return await self._control(REBOOT, lambda c, ch: c.reboot(ch))

    async def restart(self) -> ControlResult:
        """Restart the mining software."""
        return await self._control(RESTART, lambda c, ch: c.restart(ch))

    async def switch_pool(self, pool_index: int) -> ControlResult:
        """Switch to the pool the firmware numbers `pool_index` (`PoolReading.index`)."""
        return await self._control(SWITCH_POOL, lambda c, ch: c.switch_pool(ch, pool_index))

    async def enable_pool(self, pool_index: int) -> ControlResult:
        return await self._control(ENABLE_POOL, lambda c, ch: c.enable_pool(ch, pool_index))

    async def disable_pool(self, pool_index: int) -> ControlResult:
        return await self._control(DISABLE_POOL, lambda c, ch: c.disable_pool(ch, pool_index))

    async def add_pool(self, url: str, user: str, password: str) -> ControlResult:
        return await self._control(ADD_POOL, lambda c, ch: c.add_pool(ch, url, user, password))

    async def curtail(self) -> ControlResult:
        """Stop hashing on command (LuxOS curtail, Braiins pause, Whatsminer power_off, ...)."""
        return await self._control(CURTAIL, lambda c, ch: c.curtail(ch))

    async def wake(self) -> ControlResult:
        """Undo `curtail`."""
        return await self._control(WAKE, lambda c, ch: c.wake(ch))

    async def set_power_target(self, watts: int) -> ControlResult:
        """Ask the firmware to run at (or below) `watts`, where it has a way to."""
        return await self._control(SET_POWER_TARGET, lambda c, ch: c.set_power_target(ch, watts))


__all__ = ["CgminerMiner"]
