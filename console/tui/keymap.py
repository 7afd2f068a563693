"""What the help screen lists: each screen's bindings, in the order an operator meets them,
plus the mouse gestures and the palette key that are not bindings of ours."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.widgets import OptionList

from console.tui.screens.confirm import ConfirmActionScreen
from console.tui.screens.device_detail import DeviceDetailScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.gpu_switch import GpuSwitchScreen
from console.tui.screens.help import HelpScreen, HelpSection
from console.tui.screens.jobs import JobFormScreen, JobsScreen, PriorityScreen
from console.tui.screens.pool_picker import PoolPickerScreen
from console.tui.screens.what_if import WhatIfScreen
from console.tui.widgets.device_table import DeviceTable
from console.tui.widgets.virtual_table import VirtualTable

PALETTE = Binding(
    "ctrl+p",
    "command_palette",
    "Command palette: go to a device, device actions, sort, toggle, what-if, jobs",
)


def help_sections(app_bindings: Sequence[BindingType]) -> list[HelpSection]:
    return [
        ("Everywhere", [*app_bindings, PALETTE], ()),
        (
            "Fleet",
            FleetScreen.BINDINGS,
            (
                ("click", "select a row; click a column header to sort by it (again: reverse)"),
                ("double-click", "open the device's detail"),
            ),
        ),
        ("Fleet table", DeviceTable.BINDINGS, ()),
        (
            "Device detail",
            [*DeviceDetailScreen.BINDINGS, *ScrollableContainer.BINDINGS],
            (("", "actions appear only where the device is privileged and supports them"),),
        ),
        ("Confirm an action", ConfirmActionScreen.BINDINGS, (("tab", "next field or button"),)),
        (
            "What-if (e)",
            WhatIfScreen.BINDINGS,
            (
                ("tab", "next input, then the device table"),
                ("", "type a value (95000) or a change (-10%); Enter on a device opens it"),
                ("click", "a column header sorts by it (again: reverse)"),
            ),
        ),
        (
            "Switch a GPU (g)",
            GpuSwitchScreen.BINDINGS,
            (
                ("arrows", "choose the target mode"),
                ("", "the steps show as they run; closing the dialog does not stop a switch"),
            ),
        ),
        (
            "Jobs (j)",
            [*JobsScreen.BINDINGS, *VirtualTable.BINDINGS],
            (("enter", "open the GPU the job runs on"),),
        ),
        ("Submit a job", JobFormScreen.BINDINGS, (("tab", "next field"),)),
        ("Job priority", PriorityScreen.BINDINGS, ()),
        ("Pick a pool", [*PoolPickerScreen.BINDINGS, *OptionList.BINDINGS], ()),
        ("Help", HelpScreen.BINDINGS, ()),
    ]
