"""The fleet table: one row per device, updated in place once a tick.

A `VirtualTable` (only the lines on screen are rendered) over `FleetRows` (the diff, sort and
filter, without widgets). Per tick: the rows whose cells changed are recomputed; if none of
them moved in the order, only their lines on screen are repainted; if some moved (a device
turned into a problem, a sort key changed), the screen's lines are drawn again from the strip
cache, so only rows whose cells changed render anew. Nothing is ever rebuilt: a filter hides
rows, a sort reorders row numbers.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from console.model import Snapshot
from console.tui.fleet_rows import FleetRows
from console.tui.rows import COLUMN_KEYS, COLUMNS, cell_style
from console.tui.widgets.virtual_table import Cell, TableColumn, VirtualTable

_COLUMN_INDEX = {key: i for i, key in enumerate(COLUMN_KEYS)}


class FleetSource:
    """`FleetRows` seen as a `TableSource` (display positions → rows)."""

    def __init__(self, rows: FleetRows) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows.order)

    def row_id(self, position: int) -> str:
        return self.rows.ids[self.rows.order[position]]

    def position_of(self, row_id: str) -> int | None:
        return self.rows.position_of(row_id)

    def row_version(self, position: int) -> Hashable:
        return self.rows.versions[self.rows.order[position]]

    def row_cells(self, position: int, columns: Sequence[TableColumn]) -> list[Cell]:
        rows = self.rows
        i = rows.order[position]
        texts, d, m = rows.texts(i), rows.statuses[i], rows.money(i)
        return [(texts[_COLUMN_INDEX[c.key]], cell_style(c.key, d, m)) for c in columns]


class DeviceTable(VirtualTable):
    """Live device table; call `apply(snapshot)` on every tick."""

    def __init__(self, *, id: str | None = None) -> None:
        self.rows = FleetRows()
        super().__init__(COLUMNS, FleetSource(self.rows), id=id)
        self._show_sort()

    def apply(self, snapshot: Snapshot) -> None:
        """Bring the table in line with `snapshot`, touching only what changed."""
        changes = self.rows.apply(snapshot)
        if changes.order:
            self.rows_changed(None)
        elif changes.rows:
            ids = self.rows.ids
            self.rows_changed([ids[i] for i in changes.rows])

    # --- what the operator changes ------------------------------------------------------

    @property
    def sort_column(self) -> str:
        return self.rows.sort_column

    @property
    def sort_reverse(self) -> bool:
        return self.rows.sort_reverse

    @property
    def problems_first(self) -> bool:
        return self.rows.problems_first

    @property
    def filter_text(self) -> str:
        return self.rows.filter_text

    def set_filter(self, text: str) -> None:
        if self.rows.set_filter(text):
            self.rows_changed(None)

    def set_sort(
        self,
        column: str | None = None,
        *,
        reverse: bool | None = None,
        problems_first: bool | None = None,
    ) -> None:
        self.rows.set_sort(column, reverse=reverse, problems_first=problems_first)
        self._show_sort()
        self.rows_changed(None)

    def _show_sort(self) -> None:
        self.sort_arrow = (self.rows.sort_column, self.rows.sort_reverse)
        self.refresh()

    # --- reading (screens, palette, tests) ----------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.rows.order)

    def display_ids(self) -> list[str]:
        return self.rows.display_ids()

    def selected_device_id(self) -> str | None:
        return self.cursor_row_id

    def cell_text(self, device_id: str, column_key: str) -> str:
        return self.rows.text(device_id, column_key)

    def visible_column_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)
