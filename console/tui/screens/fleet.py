"""The fleet screen: site totals on top, the live device table, a filter line, the footer."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from console.model import Snapshot
from console.tui.rows import COLUMN_KEYS
from console.tui.widgets.device_table import DeviceTable
from console.tui.widgets.site_summary import SiteSummary


class FleetScreen(Screen[None]):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("p", "toggle_problems", "Problems first"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    DEFAULT_CSS = """
    FleetScreen #filter { dock: bottom; display: none; }
    FleetScreen #filter.visible { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield SiteSummary(id="summary")
        yield DeviceTable(id="devices")
        yield Input(placeholder="filter: name, model, firmware, state…", id="filter")
        yield Footer()

    @property
    def table(self) -> DeviceTable:
        return self.query_one(DeviceTable)

    def apply(self, snapshot: Snapshot) -> None:
        self.query_one(SiteSummary).apply(snapshot)
        self.table.apply(snapshot)

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
        self.table.rebuild()
        state = "on" if self.table.problems_first else "off"
        self.notify(f"problems first: {state}", timeout=2)

    def action_next_sort(self) -> None:
        keys = COLUMN_KEYS
        self._sort_by(keys[(keys.index(self.table.sort_column) + 1) % len(keys)])

    def action_reverse_sort(self) -> None:
        self.table.sort_reverse = not self.table.sort_reverse
        self.table.rebuild()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.table.sort_column:
            self.action_reverse_sort()
        else:
            self._sort_by(key)

    def _sort_by(self, column_key: str) -> None:
        self.table.sort_column = column_key
        self.table.rebuild()
        self.notify(f"sorted by {column_key}", timeout=2)
