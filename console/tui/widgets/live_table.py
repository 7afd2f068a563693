"""A small table kept in line with a list of keyed rows, touching only what changed.

For the detail screen's boards, pools, fields and audit entries: tens of rows, refreshed on
every tick. Same rules as the fleet table (engineering.md §2.5): stable row and column keys,
`update_cell` only for cells that differ, all inside one `batch_update`, fixed column widths.
When the set or order of rows changes (a board appears, a new audit entry) the rows are laid
out again; that is rare and the table is small.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Row = tuple[str, tuple[Text, ...]]
"""(row key, one cell per column)"""


class LiveTable(DataTable[Text]):
    DEFAULT_CSS = """
    LiveTable { height: auto; max-height: 100%; }
    """

    def __init__(
        self,
        columns: Sequence[tuple[str, str, int | None]],
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            id=id, classes=classes, cursor_type="none", zebra_stripes=True, show_cursor=False
        )
        self.can_focus = False
        self._columns = tuple(columns)
        self._shown: list[Row] = []

    def on_mount(self) -> None:
        for key, label, width in self._columns:
            self.add_column(label, width=width, key=key)

    def apply(self, rows: Sequence[Row]) -> None:
        keys = [key for key, _ in rows]
        with self.app.batch_update():
            if keys != [key for key, _ in self._shown]:
                self.clear()
                for key, cells in rows:
                    self.add_row(*cells, key=key)
            else:
                for (key, cells), (_, before) in zip(rows, self._shown, strict=True):
                    if cells == before:
                        continue
                    for (column, _, _), new, old in zip(self._columns, cells, before, strict=True):
                        if new != old:
                            self.update_cell(key, column, new)
        self._shown = list(rows)

    def cell_text(self, row_key: str, column_key: str) -> str:
        return self.get_cell(row_key, column_key).plain
