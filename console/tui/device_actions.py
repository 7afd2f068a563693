"""The console's device actions, keyed by action-path name: what each is called, its key, when it
is offered, what exactly it will do, and how the operator is asked before it is sent.

Screens and the command palette read `ACTIONS`; they never name an action themselves. An
action is offered only where `offered(device)` says so; for ASICs that is the device's
`controls` (privileged and supported by its firmware), mapped to action names by
`console.asic_actions.asic_action_names`. Every action is confirmed in a modal that names the
device and the change before anything is sent (`prepare`), and is then sent by
`console.tui.action_runner.ActionRunner` through `Site.actions.perform`.

The GPU switch is registered by `console.tui.gpu_actions` (imported at the end of this module,
so before any screen builds its key bindings from the registry): an `ActionSpec` with a `run`,
because its dialog shows a preview, then every step of the switch live, then retry / abort.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding

from console.actions import ActionName, ActionResult, Origin
from console.asic_actions import asic_action_names
from console.model import MISSING, DeviceKind, DeviceStatus, Snapshot, fmt_hashrate, fmt_num
from console.tui.screens.confirm import ConfirmActionScreen
from console.tui.screens.pool_picker import PoolPickerScreen
from console.tui.source import ActionPerformer, ConsoleSite
from console.tui.states import observed_text


@dataclass(frozen=True)
class Prepared:
    """What the operator agreed to: the request's params and their reason for the audit log."""

    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


Prepare = Callable[[App[Any], "ActionSpec", DeviceStatus, str], Awaitable[Prepared | None]]
"""Ask the operator (modals, run in a worker): (app, spec, device, operator) → Prepared, or
None when they cancelled."""


async def confirm_only(
    app: App[Any], spec: ActionSpec, device: DeviceStatus, operator: str
) -> Prepared | None:
    reason = await app.push_screen_wait(confirmation(spec, device, {}, operator))
    return None if reason is None else Prepared({}, reason)


async def choose_pool_then_confirm(
    app: App[Any], spec: ActionSpec, device: DeviceStatus, operator: str
) -> Prepared | None:
    pool = await app.push_screen_wait(PoolPickerScreen(device))
    if pool is None:
        return None
    params = {"pool": pool}
    reason = await app.push_screen_wait(confirmation(spec, device, params, operator))
    return None if reason is None else Prepared(params, reason)


@dataclass(frozen=True)
class ActionContext:
    """Everything an interactive action (`ActionSpec.run`) works with."""

    app: App[Any]
    spec: ActionSpec
    device: DeviceStatus
    operator: str
    performer: ActionPerformer
    site: ConsoleSite | None
    snapshot: Snapshot | None


Run = Callable[[ActionContext], Awaitable[ActionResult | None]]
"""An action that asks, sends and shows its progress itself (the GPU switch: a preview, then
every step live, then retry / abort): it performs through `ActionContext.performer` and
returns the last result, or None when nothing was sent."""


@dataclass(frozen=True)
class ActionSpec:
    name: str  # the action path's name (`ActionName` value)
    label: str  # a verb: "Curtail"
    key: str  # its key binding on device screens
    offered: Callable[[DeviceStatus], bool]
    effect: Callable[[DeviceStatus, Mapping[str, Any]], str]
    """Exactly what will happen to the device, in one paragraph, for the confirmation."""
    prepare: Prepare = confirm_only
    run: Run | None = None
    """When set, replaces prepare → perform → report (see `Run`)."""


ACTIONS: dict[str, ActionSpec] = {}


def register(spec: ActionSpec) -> None:
    if spec.name in ACTIONS:
        raise ValueError(f"console action {spec.name} is already registered")
    if any(other.key == spec.key for other in ACTIONS.values()):
        raise ValueError(f"key {spec.key!r} is already bound to another device action")
    ACTIONS[spec.name] = spec


def offered_actions(device: DeviceStatus) -> list[ActionSpec]:
    return [spec for spec in ACTIONS.values() if spec.offered(device)]


def is_offered(name: str, device: DeviceStatus | None) -> bool:
    spec = ACTIONS.get(name)
    return spec is not None and device is not None and spec.offered(device)


def action_bindings(*, show: bool) -> list[Binding]:
    """One binding per registered action, for a screen that acts on a selected device; the
    screen's `check_action` hides those its device is not offered."""
    return [
        Binding(spec.key, f"device_action('{spec.name}')", spec.label, show=show)
        for spec in ACTIONS.values()
    ]


# --- what the confirmation says -------------------------------------------------------------


def device_line(d: DeviceStatus) -> str:
    firmware = d.reading.firmware.value if d.reading else "firmware unknown"
    return f"{d.name} · {d.model or 'model unknown'} · {d.host}:{d.port} · {firmware}"


def now_line(d: DeviceStatus) -> Text:
    r = d.reading
    text = Text()
    text.append_text(observed_text(d.observed))
    hashrate = fmt_hashrate(r.hashrate_5s_hs) if r else MISSING
    power = fmt_num(r.power_w, ",.0f", "W") if r else MISSING
    text.append(f", {hashrate}, {power}; commanded {d.commanded.value}")
    return text


def confirmation(
    spec: ActionSpec, device: DeviceStatus, params: Mapping[str, Any], operator: str
) -> ConfirmActionScreen:
    body = Text()
    body.append("Device  ", style="bold")
    body.append(device_line(device) + "\n")
    body.append("Now     ", style="bold")
    body.append_text(now_line(device))
    body.append("\n\n")
    body.append(spec.effect(device, params) + "\n\n")
    body.append(
        f"Sent as {spec.name} by {operator} ({Origin.TUI.value}) and recorded in the audit log.",
        style="dim",
    )
    return ConfirmActionScreen(
        title=f"{spec.label} {device.name}?", body=body, confirm_label=spec.label
    )


def _curtail_effect(d: DeviceStatus, _params: Mapping[str, Any]) -> str:
    return (
        f"{d.name} stops hashing and drops to standby power: its hashrate goes to zero and it "
        f"earns nothing until someone wakes it. Commanded mode: {d.commanded.value} → curtailed."
    )


def _wake_effect(d: DeviceStatus, _params: Mapping[str, Any]) -> str:
    return (
        f"{d.name} leaves standby and starts hashing on its active pool again; power rises "
        f"back to its normal draw over the next minute or so. "
        f"Commanded mode: {d.commanded.value} → mining."
    )


def _reboot_effect(d: DeviceStatus, _params: Mapping[str, Any]) -> str:
    return (
        f"{d.name}'s control board restarts: it stops hashing and stops answering for a few "
        "minutes, then comes back on its own. The firmware may drop the connection before it "
        "replies; the next good poll confirms the reboot. "
        f"Commanded mode stays {d.commanded.value}."
    )


def _pool_text(d: DeviceStatus, index: object) -> str:
    pools = d.reading.pools if d.reading else ()
    for p in pools:
        if p.index == index:
            return f"pool {p.index} ({p.url}, user {p.user or MISSING})"
    return f"pool {index} (not in the last reading)"


def _switch_pool_effect(d: DeviceStatus, params: Mapping[str, Any]) -> str:
    pools = d.reading.pools if d.reading else ()
    active = next((p for p in pools if p.active), None)
    leaving = _pool_text(d, active.index) if active else "no active pool"
    return (
        f"{d.name} makes {_pool_text(d, params.get('pool'))} its top-priority pool and sends "
        f"its work there, leaving {leaving}. The other pools stay configured as failovers. "
        f"Commanded mode stays {d.commanded.value}."
    )


def _asic_offers(name: ActionName) -> Callable[[DeviceStatus], bool]:
    def offered(d: DeviceStatus) -> bool:
        return d.kind is DeviceKind.ASIC and name in asic_action_names(frozenset(d.controls))

    return offered


def _asic_offers_pool_switch(d: DeviceStatus) -> bool:
    # Needs a choice: at least one configured pool that is not already the active one.
    pools = d.reading.pools if d.reading else ()
    return _asic_offers(ActionName.ASIC_SWITCH_POOL)(d) and any(not p.active for p in pools)


register(
    ActionSpec(
        ActionName.ASIC_CURTAIL.value,
        "Curtail",
        "c",
        _asic_offers(ActionName.ASIC_CURTAIL),
        _curtail_effect,
    )
)
register(
    ActionSpec(
        ActionName.ASIC_WAKE.value, "Wake", "w", _asic_offers(ActionName.ASIC_WAKE), _wake_effect
    )
)
register(
    ActionSpec(
        ActionName.ASIC_REBOOT.value,
        "Reboot",
        "b",
        _asic_offers(ActionName.ASIC_REBOOT),
        _reboot_effect,
    )
)
register(
    ActionSpec(
        ActionName.ASIC_SWITCH_POOL.value,
        "Switch pool",
        "o",
        _asic_offers_pool_switch,
        _switch_pool_effect,
        prepare=choose_pool_then_confirm,
    )
)


# The GPU switch: its dialog lives with the screens; registering it here means every screen
# that builds bindings from ACTIONS sees it.
import console.tui.gpu_actions  # noqa: E402, F401
