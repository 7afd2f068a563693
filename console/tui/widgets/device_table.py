"""The fleet table: one row per device, updated in place once a tick.

Updates follow engineering.md §2.5: stable row keys (device id) and column keys, a diff against
what is on screen, `update_cell` only for cells whose text changed, all inside one
`batch_update`, fixed column widths, and a re-sort only when a value in the sort column moved.
Filtering or re-sorting by the operator rebuilds the rows once; a live tick never does.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.binding import Binding
from textual.widgets import DataTable

from console.model import DeviceStatus, Snapshot
from console.tui.rows import COLUMN_KEYS, COLUMNS, SortKey, cell_texts, sort_key, styled


class _NameCell(Text):
    """The name cell carries its row's device id: `DataTable.sort` hands key functions cell
    values, not row keys, and the visible name may be clipped."""

    def __init__(self, text: Text, device_id: str) -> None:
        super().__init__(text.plain, style=text.style, justify=text.justify, no_wrap=True)
        self.device_id = device_id


def matches(d: DeviceStatus, needle: str) -> bool:
    """Case-insensitive substring match on everything the operator can see in the row."""
    return any(needle in text.lower() for text in cell_texts(d))


class DeviceTable(DataTable[Text]):
    """Live device table; call `apply(snapshot)` on every tick.

    A click selects a row; a double click or Enter posts `RowSelected` (open the device).
    DataTable also posts it for a single click on the row that is already highlighted, which
    would open a device on a stray click, so that one is dropped here.
    """

    DEFAULT_CSS = """
    DeviceTable { height: 1fr; }
    """
    # DataTable's own Enter binding, shown in the footer under what it does here.
    BINDINGS = [Binding("enter", "select_cursor", "Detail")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.sort_column = "name"
        self.sort_reverse = False
        self.problems_first = True
        self.filter_text = ""
        self._shown: dict[str, tuple[str, ...]] = {}
        self._sort_keys: dict[str, tuple[int, SortKey]] = {}
        self._last: Snapshot | None = None
        self._click_chain = 0

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column.label, width=column.width, key=column.key)

    def _wanted(self, snapshot: Snapshot) -> list[DeviceStatus]:
        needle = self.filter_text.lower()
        return [d for d in snapshot.devices if not needle or matches(d, needle)]

    def _full_sort_key(self, d: DeviceStatus) -> tuple[int, SortKey]:
        # Problems first is a partition in front of the chosen sort, in either direction: the
        # table is sorted with `reverse`, so the ranks flip with it.
        first, rest = (1, 0) if self.sort_reverse else (0, 1)
        problem_rank = first if (self.problems_first and d.problem) else rest
        return (problem_rank, sort_key(self.sort_column, d, reverse=self.sort_reverse))

    def apply(self, snapshot: Snapshot) -> None:
        """Bring the table in line with `snapshot`, touching only what changed."""
        self._last = snapshot
        wanted = self._wanted(snapshot)
        wanted_ids = {d.device_id for d in wanted}
        resort = False
        with self.app.batch_update():
            for device_id in [k for k in self._shown if k not in wanted_ids]:
                self.remove_row(device_id)
                del self._shown[device_id]
                self._sort_keys.pop(device_id, None)
            for d in wanted:
                texts = cell_texts(d)
                key = self._full_sort_key(d)
                if self._sort_keys.get(d.device_id) != key:
                    self._sort_keys[d.device_id] = key
                    resort = True
                old = self._shown.get(d.device_id)
                if old is None:
                    self.add_row(*self._cells(d, texts), key=d.device_id)
                    resort = True
                elif old != texts:
                    for column_key, new, before in zip(COLUMN_KEYS, texts, old, strict=True):
                        if new != before and column_key != "name":
                            self.update_cell(d.device_id, column_key, styled(column_key, new, d))
                self._shown[d.device_id] = texts
            if resort:
                self._resort()

    @staticmethod
    def _cells(d: DeviceStatus, texts: tuple[str, ...]) -> list[Text]:
        cells = [styled(c, t, d) for c, t in zip(COLUMN_KEYS, texts, strict=True)]
        name_index = COLUMN_KEYS.index("name")
        cells[name_index] = _NameCell(cells[name_index], d.device_id)
        return cells

    def _resort(self) -> None:
        keys = self._sort_keys
        self.sort("name", key=lambda cell: keys[cell.device_id], reverse=self.sort_reverse)

    def rebuild(self) -> None:
        """After a filter or sort change: start again from the last snapshot."""
        self.clear()
        self._shown.clear()
        self._sort_keys.clear()
        if self._last is not None:
            self.apply(self._last)

    def on_click(self, event: events.Click) -> None:
        self._click_chain = event.chain

    def action_select_cursor(self) -> None:
        self._click_chain = 0
        super().action_select_cursor()

    @on(DataTable.RowSelected)
    def _single_click_only_selects(self, event: DataTable.RowSelected) -> None:
        if self._click_chain == 1:
            event.stop()
        self._click_chain = 0

    def selected_device_id(self) -> str | None:
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value
