"""The fleet screen: site totals on top, the live device table, a filter line, the footer.

Enter (or a double click) on a row opens that device's detail screen; the device action keys
work on the highlighted row too (listed in help, not in the footer, which is kept for the
table's own keys at 80 columns).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from console.model import DeviceStatus, Snapshot
from console.tui.device_actions import action_bindings, is_offered
from console.tui.messages import OpenDevice, RunAction
from console.tui.rows import COLUMN_KEYS
from console.tui.source import find_device
from console.tui.widgets.device_table import DeviceTable
from console.tui.widgets.site_summary import SiteSummary


class FleetScreen(Screen[None]):
    CSS_PATH = "fleet.tcss"
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("p", "toggle_problems", "Problems first"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        *action_bindings(show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._snapshot: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield SiteSummary(id="summary")
        yield DeviceTable(id="devices")
        yield Input(placeholder="filter: name, model, firmware, state…", id="filter")
        yield Footer()

    @property
    def table(self) -> DeviceTable:
        return self.query_one(DeviceTable)

    def apply(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.query_one(SiteSummary).apply(snapshot)
        self.table.apply(snapshot)

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

    @on(DataTable.RowSelected, "#devices")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(OpenDevice(event.row_key.value))

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
        self.table.filter_text = event.value.strip()
        self.table.rebuild()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("visible")
        self.table.focus()

    def action_toggle_problems(self) -> None:
        self.table.problems_first = not self.table.problems_first
        self.table.resort()
        state = "on" if self.table.problems_first else "off"
        self.notify(f"problems first: {state}", timeout=2)

    def action_next_sort(self) -> None:
        keys = COLUMN_KEYS
        self._sort_by(keys[(keys.index(self.table.sort_column) + 1) % len(keys)])

    def action_reverse_sort(self) -> None:
        self.table.sort_reverse = not self.table.sort_reverse
        self.table.resort()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.table.sort_column:
            self.action_reverse_sort()
        else:
            self._sort_by(key)

    def sort_by(self, column_key: str) -> None:
        self._sort_by(column_key)

    def _sort_by(self, column_key: str) -> None:
        self.table.sort_column = column_key
        self.table.resort()
        self.notify(f"sorted by {column_key}", timeout=2)
