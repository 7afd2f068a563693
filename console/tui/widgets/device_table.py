"""The fleet table: one row per device, updated in place once a tick.

Updates follow engineering.md §2.5: stable row keys (device id) and column keys, a diff against
what is on screen (skipping devices whose status object is the one already shown), new values
only for cells whose text changed, stored in one bulk update inside one `batch_update`, fixed
column widths, and a re-sort only when a sort key moved. A filter change rebuilds the rows
once; a sort change re-sorts them in place; a live tick never rebuilds. Rendered cells are
cached per cell, so a repaint renders only the cells that changed.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.binding import Binding
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

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
        self._seen: dict[str, DeviceStatus] = {}
        self.cells_rendered = 0
        """Body cells rendered through Rich so far (cache misses), for tests and benchmarks."""
        self._cell_lines: LRUCache[tuple[object, ...], tuple[Text, list[list[Segment]]]] = LRUCache(
            20_000
        )

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
        changed: list[tuple[str, str, Text]] = []
        with self.app.batch_update():
            for device_id in [k for k in self._shown if k not in wanted_ids]:
                self.remove_row(device_id)
                del self._shown[device_id]
                self._sort_keys.pop(device_id, None)
            for d in wanted:
                if self._seen.get(d.device_id) is d and d.device_id in self._shown:
                    continue  # the store hands out the same status object while nothing changed
                self._seen[d.device_id] = d
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
                            changed.append((d.device_id, column_key, styled(column_key, new, d)))
                self._shown[d.device_id] = texts
            self._set_cells(changed)
            if resort:
                self._resort()

    def _set_cells(self, changed: list[tuple[str, str, Text]]) -> None:
        """`update_cell` for many cells with one invalidation and one refresh.

        `DataTable.update_cell` stores the value, bumps the table's update counter and calls
        `refresh()`; per call that costs ~65 µs, which at 10,000 rows and a few hundred
        changed rows per tick was the largest part of a tick. Same effect, once. Private API
        of textual 8.x (pinned <9); tests/tui/test_fleet.py checks the cells show the values.
        """
        if not changed:
            return
        data = self._data
        for row_key, column_key, value in changed:
            data[RowKey(row_key)][ColumnKey(column_key)] = value
        self._update_count += 1
        self.refresh()

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
        """After a filter change: start again from the last snapshot."""
        self.clear()
        self._shown.clear()
        self._sort_keys.clear()
        self._seen.clear()
        if self._last is not None:
            self.apply(self._last)

    def resort(self) -> None:
        """After a sort or problems-first change: same rows, new order (no rebuild)."""
        shown = {d.device_id: d for d in self._last.devices} if self._last else {}
        self._sort_keys = {k: self._full_sort_key(shown[k]) for k in self._shown if k in shown}
        self._resort()

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        # DataTable keys its cell render cache on a table-wide update counter, so one changed
        # cell makes every visible cell render again through Rich (~0.5 ms each, hundreds per
        # repaint). Here a rendered cell is reused while the cell object itself is unchanged
        # (an update always stores a new Text) and so is everything else the render
        # depends on, including the row index baked into its click metadata. Private API of
        # textual 8.x (pinned <9); bench/tui.py shows what it saves.
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cell = self._data[row_key][column_key]
        key = (
            row_key,
            column_key,
            row_index,
            width,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        hit = self._cell_lines.get(key)
        if hit is not None and hit[0] is cell:
            return hit[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self.cells_rendered += 1
        self._cell_lines[key] = (cell, lines)
        return lines

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
