"""The fleet screen: site totals and earnings on top, the live device table, a filter line,
the footer.

Enter (or a double click) on a row opens that device's detail screen; the device action keys
work on the highlighted row too (listed in help, not in the footer, which is kept for the
table's own keys at 80 columns). `s` cycles the sort through the columns on screen; a click on
a header sorts by that column (again: reverse).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input

from console.model import DeviceStatus, Snapshot
from console.tui.device_actions import action_bindings, is_offered
from console.tui.messages import OpenDevice, RunAction
from console.tui.rows import BY_KEY
from console.tui.source import find_device
from console.tui.widgets.device_table import DeviceTable
from console.tui.widgets.site_summary import SiteSummary
from console.tui.widgets.virtual_table import VirtualTable


class FleetScreen(Screen[None]):
    CSS_PATH = "fleet.tcss"
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("p", "toggle_problems", "Problems first"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        *action_bindings(show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._snapshot: Snapshot | None = None
        # Kept, not queried: a tick may land before the screen is composed or while the app
        # is tearing it down.
        self._summary = SiteSummary(id="summary")
        self._table = DeviceTable(id="devices")

    def compose(self) -> ComposeResult:
        yield self._summary
        yield self._table
        yield Input(placeholder="filter: name, model, firmware, state, host, note…", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        if self._snapshot is not None:
            self.apply(self._snapshot)

    @property
    def table(self) -> DeviceTable:
        return self._table

    def apply(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if not self._table.is_mounted:
            return  # on_mount shows it
        self._summary.apply(snapshot)
        self._table.apply(snapshot)

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot the table shows."""
        return self._snapshot

    def selected_device(self) -> DeviceStatus | None:
        device_id = self.table.selected_device_id()
        return None if device_id is None else find_device(self._snapshot, device_id)

    def action_open_selected(self) -> None:
        device_id = self.table.selected_device_id()
        if device_id is not None:
            self.post_message(OpenDevice(device_id))

    @on(VirtualTable.RowSelected, "#devices")
    def _row_selected(self, event: VirtualTable.RowSelected) -> None:
        self.post_message(OpenDevice(event.row_id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "device_action":
            return is_offered(str(parameters[0]), self.selected_device())
        return True

    def action_device_action(self, name: str) -> None:
        device_id = self.table.selected_device_id()
        if device_id is not None:
            self.post_message(RunAction(name, device_id))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.table.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("visible")
        self.table.focus()

    def action_toggle_problems(self) -> None:
        self.table.set_sort(problems_first=not self.table.problems_first)
        state = "on" if self.table.problems_first else "off"
        self.notify(f"problems first: {state}", timeout=2)

    def action_next_sort(self) -> None:
        # Through the columns the operator can see: sorting by a hidden one would look random.
        keys = self.table.visible_column_keys()
        current = self.table.sort_column
        at = keys.index(current) if current in keys else -1
        self._sort_by(keys[(at + 1) % len(keys)])

    def action_reverse_sort(self) -> None:
        self.table.set_sort(reverse=not self.table.sort_reverse)

    @on(VirtualTable.HeaderSelected, "#devices")
    def _header_clicked(self, event: VirtualTable.HeaderSelected) -> None:
        if event.column_key == self.table.sort_column:
            self.action_reverse_sort()
        else:
            self._sort_by(event.column_key)

    def sort_by(self, column_key: str) -> None:
        self._sort_by(column_key)

    def _sort_by(self, column_key: str) -> None:
        self.table.set_sort(column_key)
        self.notify(f"sorted by {BY_KEY[column_key].label}", timeout=2)
