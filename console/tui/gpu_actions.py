"""The GPU switch as a console action: key `g` on a GPU row or its detail screen, and in the
command palette, like every entry of `console.tui.device_actions.ACTIONS`.

It is offered on every GPU the site watches (the action path and the switch's own precheck
refuse what cannot be done now, with the reason); its `run` opens `GpuSwitchScreen` with the
GPU's earnings row from the latest snapshot and the AI queue as it is now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.actions import ActionName, ActionResult
from console.model import DeviceKind, DeviceStatus
from console.tui.device_actions import ActionContext, ActionSpec, register
from console.tui.gpu_switch_text import current_work_text
from console.tui.screens.gpu_switch import GpuSwitchScreen


def offers_switch(d: DeviceStatus) -> bool:
    return d.kind is DeviceKind.GPU and d.gpu is not None


def _effect(d: DeviceStatus, params: Mapping[str, Any]) -> str:
    return f"{d.name} switches to {params.get('mode', '?')}; {current_work_text(d)}."


async def run_gpu_switch(ctx: ActionContext) -> ActionResult | None:
    snapshot = ctx.snapshot
    row = snapshot.earnings.by_id(ctx.device.device_id) if snapshot and snapshot.earnings else None
    gpus = ctx.site.gpus if ctx.site is not None else None
    workloads = gpus.workloads if gpus is not None else None
    jobs = await workloads.jobs() if workloads is not None else None
    screen = GpuSwitchScreen(
        ctx.device,
        row,
        ctx.performer,
        ctx.operator,
        workloads.events if workloads is not None else None,
        jobs,
    )
    result: ActionResult | None = await ctx.app.push_screen_wait(screen)
    return result


register(
    ActionSpec(
        ActionName.GPU_SWITCH.value,
        "Switch GPU",
        "g",
        offers_switch,
        _effect,
        run=run_gpu_switch,
    )
)
