"""The blocks of the device detail screen, each updated in place from the device's status.

`DeviceSection` is the contract: a titled block with `apply(device, snapshot)`. The detail
screen shows the common blocks (header, history, earnings, fields) for every device and the
blocks listed under the device's kind in `SECTIONS_BY_KIND`: boards and chips, and pools, for
ASICs; workload (state machine, miner, job) and throttling / XIDs / processes for GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

from console.model import DeviceKind, DeviceStatus, Snapshot
from console.tui.detail_fields import (
    BOARD_COLUMNS,
    POOL_COLUMNS,
    PROCESS_COLUMNS,
    Field,
    board_cells,
    device_fields,
    earnings_fields,
    fmt_age,
    health_lines,
    pool_cells,
    process_cells,
    workload_fields,
)
from console.tui.device_actions import offered_actions
from console.tui.states import freshness_text, observed_text
from console.tui.widgets.live_table import LiveTable


class DeviceSection(Vertical):
    """A titled block of the detail screen."""

    TITLE = ""

    def compose(self) -> ComposeResult:
        yield Label(self.TITLE, classes="section-title")
        yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        raise NotImplementedError


def actions_line(d: DeviceStatus) -> Text:
    """Which actions this device offers, or why it offers none (so nobody hunts for a key)."""
    text = Text()
    offered = offered_actions(d)
    if offered:
        text.append("Actions ", style="bold")
        text.append("  ".join(f"[{spec.key}] {spec.label}" for spec in offered))
    elif not d.privileged:
        text.append("No actions: read only (set privileged = true for it in the config)", "dim")
    elif d.reading is None:
        text.append("No actions until its first reading says which firmware it runs", "dim")
    else:
        text.append(f"No actions: {d.reading.firmware.value} offers no controls here", "dim")
    return text


def header_text(d: DeviceStatus, now: float) -> Text:
    """Who it is, its three state axes, and its actions. Figures are in the history lines."""
    r = d.reading
    text = Text()
    text.append(d.name, style="bold")
    text.append(f"  {d.model or '—'} · {d.kind.value} · {d.host}:{d.port}")
    if r is not None:
        text.append(f" · {r.firmware.value} {r.firmware_version or ''}".rstrip())
    text.append("\n")
    text.append_text(observed_text(d.observed))
    text.append(" · ")
    text.append_text(freshness_text(d.freshness))
    if d.last_ok_at is not None:
        text.append(f" ({fmt_age(now - d.last_ok_at)})")
    text.append(f" · commanded {d.commanded.value}")
    if d.last_error:
        text.append(f" · {d.last_error}", style="red")
    text.append("\n")
    text.append_text(actions_line(d))
    return text


class DetailHeader(Static):
    """Name, the three state axes, the headline figures and the device's actions."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Text | None = None

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        text = header_text(device, snapshot.taken_at)
        if text != self._shown:
            self._shown = text
            self.update(text)


def fields_table(fields: list[Field]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(width=18, no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for f in fields:
        value = f.value.copy()
        value.no_wrap, value.overflow = False, "fold"  # a long error reads in full here
        table.add_row(f.label, value)
    return table


class FieldsSection(DeviceSection):
    """Every field as label / value lines; long values (errors, warnings) wrap."""

    TITLE = "Every field"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.fields: list[Field] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="fields")

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        fields = device_fields(device, snapshot.taken_at)
        if fields != self.fields:
            self.fields = fields
            self.query_one("#fields", Static).update(fields_table(fields))

    def value(self, key: str) -> str:
        return next(f.value.plain for f in self.fields if f.key == key)


class EarningsSection(DeviceSection):
    """Revenue, power cost and profit now, breakevens, and today's accrual (every kind)."""

    TITLE = "Earnings"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.fields: list[Field] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="earnings")

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        fields = earnings_fields(device, snapshot)
        if fields != self.fields:
            self.fields = fields
            self.query_one("#earnings", Static).update(fields_table(fields))

    def value(self, key: str) -> str:
        return next(f.value.plain for f in self.fields if f.key == key)


class BoardsSection(DeviceSection):
    TITLE = "Boards and chips"

    def compose_body(self) -> ComposeResult:
        yield LiveTable(BOARD_COLUMNS, id="boards")
        yield Static("no board data in the last reading", classes="empty")

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        boards = device.reading.boards if device.reading else ()
        self.query_one(LiveTable).apply([(str(b.index), board_cells(b)) for b in boards])
        self.query_one(".empty", Static).display = not boards


class PoolsSection(DeviceSection):
    TITLE = "Pools"

    def compose_body(self) -> ComposeResult:
        yield LiveTable(POOL_COLUMNS, id="pools")
        yield Static("no pool data in the last reading", classes="empty")

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        pools = device.reading.pools if device.reading else ()
        self.query_one(LiveTable).apply([(str(p.index), pool_cells(p)) for p in pools])
        self.query_one(".empty", Static).display = not pools


class GpuWorkloadSection(DeviceSection):
    """The switch state machine, the miner and the AI job on the GPU."""

    TITLE = "Workload"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.fields: list[Field] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="workload")

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        fields = workload_fields(device.gpu, snapshot.taken_at) if device.gpu else []
        if fields != self.fields:
            self.fields = fields
            self.query_one("#workload", Static).update(fields_table(fields))

    def value(self, key: str) -> str:
        return next(f.value.plain for f in self.fields if f.key == key)


class GpuHealthSection(DeviceSection):
    """Throttle reasons, XIDs and the processes NVML sees on the GPU."""

    TITLE = "Throttling, XIDs, processes"

    def compose_body(self) -> ComposeResult:
        yield Static(id="gpu-health")
        yield LiveTable(PROCESS_COLUMNS, id="processes")
        yield Static("no process on this GPU", classes="empty")

    def apply(self, device: DeviceStatus, snapshot: Snapshot) -> None:
        gpu = device.gpu
        if gpu is None:
            return
        self.query_one("#gpu-health", Static).update(health_lines(gpu, snapshot.taken_at))
        sample = gpu.nvml.sample if gpu.nvml else None
        processes = sample.processes if sample else ()
        self.query_one(LiveTable).apply([(str(p.pid), process_cells(p)) for p in processes])
        self.query_one(".empty", Static).display = not processes


SECTIONS_BY_KIND: dict[DeviceKind, Callable[[], Sequence[DeviceSection]]] = {
    DeviceKind.ASIC: lambda: (BoardsSection(id="boards-section"), PoolsSection(id="pools-section")),
    DeviceKind.GPU: lambda: (
        GpuWorkloadSection(id="workload-section"),
        GpuHealthSection(id="gpu-health-section"),
    ),
}
"""The kind-specific blocks, in display order."""
