"""A table that renders only the lines on screen: the Line API (engineering.md §2.5 rule 6).

Textual's DataTable keeps every row as widget state and invalidates its render caches on any
update, so a repaint costs the whole table. Here the rows live in a `TableSource` (plain
Python: the fleet's `FleetRows`, the what-if results), and the widget asks it for the rows
that are visible, one `render_line` per screen line. A rendered row is cached as a `Strip`
keyed by (row id, row version, row style (cursor, stripe, focus), columns, horizontal scroll,
width), so a tick repaints the rows whose version moved and reuses every other line;
scrolling and re-sorting cost the visible rows.

What the widget owns: the columns that fit the width (`fit_columns`, by priority), the
header (with the sort arrow), the cursor (on the top row until the operator moves it, then
kept on that row id when rows move), keyboard and mouse. A click selects a row, a double
click or Enter posts `RowSelected`, a click on the header posts `HeaderSelected`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

GAP = 1
"""Spaces before the first column and after each one."""

Cell = tuple[str, str]
"""(plain text, Rich style string; "" for none)"""


class TableColumn(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def right(self) -> bool: ...
    @property
    def priority(self) -> int: ...


@dataclass(frozen=True)
class PlainColumn:
    """A `TableColumn` and nothing more, for tables whose source formats its own cells."""

    key: str
    label: str
    width: int
    right: bool
    priority: int  # lower is more important: dropped from the highest up when space runs out


class TableSource(Protocol):
    """The rows a `VirtualTable` shows, in display order (position 0 is the top row)."""

    def __len__(self) -> int: ...

    def row_id(self, position: int) -> str: ...

    def position_of(self, row_id: str) -> int | None: ...

    def row_version(self, position: int) -> Hashable:
        """Changes whenever the row's cells change: the render cache key."""
        ...

    def row_cells(self, position: int, columns: Sequence[TableColumn]) -> Sequence[Cell]: ...


def fit_columns(width: int, columns: Sequence[TableColumn]) -> tuple[TableColumn, ...]:
    """The most important columns (by priority) whose widths plus gaps fit in `width`, in
    display order; at least the most important one, whatever the width."""
    chosen: set[str] = set()
    used = GAP
    for column in sorted(columns, key=lambda c: c.priority):
        need = column.width + GAP
        if chosen and used + need > width:
            continue
        chosen.add(column.key)
        used += need
    return tuple(c for c in columns if c.key in chosen)


def fit(text: str, width: int, right: bool) -> str:
    """`text` in exactly `width` cells: clipped with an ellipsis, padded on the aligned side."""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - length)
    return pad + text if right else text + pad


@functools.lru_cache(maxsize=256)
def _style(text: str) -> Style:
    return Style.parse(text)


class VirtualTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        &:focus {
            background-tint: $foreground 5%;
            & > .vtable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .vtable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .vtable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .vtable--even-row {
            background: $surface-lighten-1 50%;
        }
        &:dark > .vtable--even-row {
            background: $surface-darken-1 40%;
        }
        & > .vtable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vtable--header",
        "vtable--even-row",
        "vtable--cursor",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Detail"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First row", show=False),
        Binding("end,ctrl+end", "last", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]

    class RowSelected(Message):
        """Enter or a double click on a row."""

        def __init__(self, table: VirtualTable, row_id: str) -> None:
            super().__init__()
            self.table = table
            self.row_id = row_id

        @property
        def control(self) -> VirtualTable:
            return self.table

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, table: VirtualTable, column_key: str) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[TableColumn],
        source: TableSource,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.all_columns = tuple(columns)
        self.columns: tuple[TableColumn, ...] = self.all_columns
        self.source = source
        self.cursor = 0
        self._cursor_id: str | None = None
        self._pinned = False
        """True once the operator put the cursor on a row: from then on it follows that row
        when rows move. Before, it stays on the top row (problems first: the one to look at)."""
        self.sort_arrow: tuple[str, bool] | None = None
        """(column key, descending) to mark in the header, or None."""
        self._content_width = 0
        self._layout = 0  # bumped when columns, styles or focus change: part of the cache key
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(4096)
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self.rows_rendered = 0
        """Rows rendered into strips so far (cache misses), for tests and benchmarks."""

    # --- layout -------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        columns = fit_columns(max(width, 1), self.all_columns)
        if columns != self.columns or not self._content_width:
            self.columns = columns
            self._content_width = GAP + sum(c.width + GAP for c in columns)
            self._layout += 1
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        size = Size(self._content_width, len(self.source) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._layout += 1

    def on_focus(self) -> None:
        self._layout += 1
        self.refresh()

    def on_blur(self) -> None:
        self._layout += 1
        self.refresh()

    # --- the rows changed ---------------------------------------------------------------

    def rows_changed(self, rows: Sequence[str] | None = None) -> None:
        """The source changed: `rows` (ids) whose cells changed in place, or None when rows
        moved, came or went. Repaints only what is on screen and keeps the cursor on its
        row."""
        visible = self._visible_rows()
        if rows is not None and len(rows) > visible:
            self.refresh()  # more changed rows than lines: repaint the lines (strips cached)
            return
        if rows is not None:
            first = int(self.scroll_offset.y)
            for row_id in rows:
                position = self.source.position_of(row_id)
                if position is not None and first <= position < first + visible:
                    self.refresh(Region(0, position - first + 1, self.size.width, 1))
            return
        self._update_virtual_size()
        n = len(self.source)
        position = None
        if self._pinned and self._cursor_id is not None:
            position = self.source.position_of(self._cursor_id)
        if position is None:
            position = min(self.cursor, max(n - 1, 0))
        self._set_cursor(position, scroll=position != self.cursor, pin=False)
        self.refresh()

    # --- cursor -------------------------------------------------------------------------

    def _visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _set_cursor(self, position: int, *, scroll: bool = True, pin: bool = True) -> None:
        n = len(self.source)
        position = max(0, min(position, n - 1))
        self._pinned = self._pinned or pin
        if position != self.cursor:
            self.refresh()
        self.cursor = position
        self._cursor_id = self.source.row_id(position) if n else None
        if scroll:
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        visible = self._visible_rows()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    def move_cursor_to(self, row_id: str) -> bool:
        position = self.source.position_of(row_id)
        if position is None:
            return False
        self._set_cursor(position)
        return True

    @property
    def cursor_row_id(self) -> str | None:
        if not len(self.source):
            return None
        return self.source.row_id(min(self.cursor, len(self.source) - 1))

    def action_cursor_up(self) -> None:
        self._set_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._set_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self._set_cursor(self.cursor - self._visible_rows())

    def action_page_down(self) -> None:
        self._set_cursor(self.cursor + self._visible_rows())

    def action_first(self) -> None:
        self._set_cursor(0)

    def action_last(self) -> None:
        self._set_cursor(len(self.source) - 1)

    def action_select_cursor(self) -> None:
        row_id = self.cursor_row_id
        if row_id is not None:
            self.post_message(self.RowSelected(self, row_id))

    # --- mouse --------------------------------------------------------------------------

    def column_at(self, x: int) -> TableColumn | None:
        """The column under content x (0 = the left edge of the table, scrolling included)."""
        left = GAP
        for column in self.columns:
            if left <= x < left + column.width + GAP:
                return column
            left += column.width + GAP
        return None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self.column_at(offset.x + int(self.scroll_offset.x))
            if column is not None:
                self.post_message(self.HeaderSelected(self, column.key))
            return
        position = int(self.scroll_offset.y) + offset.y - 1
        if position >= len(self.source):
            return
        self._set_cursor(position)
        if event.chain >= 2:
            self.post_message(self.RowSelected(self, self.source.row_id(position)))

    # --- rendering ----------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # Component styles once per repaint, not once per line.
        self._styles = (
            self.rich_style,
            self.get_component_rich_style("vtable--header"),
            self.get_component_rich_style("vtable--even-row"),
            self.get_component_rich_style("vtable--cursor"),
        )
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if y == 0:
            style = self._row_style(-1)
            return self._line(("\x00header",), style, lambda: self._header_strip(style))
        position = int(self.scroll_offset.y) + y - 1
        if position >= len(self.source):
            return Strip.blank(self.size.width, self._styles[0] if self._styles else None)
        style = self._row_style(position)
        key = (self.source.row_id(position), self.source.row_version(position))

        def build() -> Strip:
            self.rows_rendered += 1
            return self._build(self.source.row_cells(position, self.columns), style)

        return self._line(key, style, build)

    def _line(self, key: tuple[object, ...], style: Style, build: Callable[[], Strip]) -> Strip:
        """The line as it appears: cropped to the horizontal scroll and the widget's width.
        Cached with everything it depends on, so an unchanged row is one dictionary lookup."""
        width = self.size.width
        scroll_x = int(self.scroll_offset.x)
        full_key = (*key, style, self._layout, scroll_x, width, self.sort_arrow)
        line = self._strips.get(full_key)
        if line is None:
            strip = build()
            line = strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, style)
            self._strips[full_key] = line
        return line

    def _header_strip(self, header: Style) -> Strip:
        cells: list[Cell] = []
        for column in self.columns:
            label = column.label
            if self.sort_arrow is not None and self.sort_arrow[0] == column.key:
                arrow = "▼" if self.sort_arrow[1] else "▲"
                label = label + arrow if cell_len(label) < column.width else label[:-1] + arrow
            cells.append((label, ""))
        return self._build(cells, header)

    def _row_style(self, position: int) -> Style:
        """The header's style (position -1), or a row's: zebra stripe, cursor."""
        base, header, even, cursor = self._styles or (self.rich_style,) * 4
        if position < 0:
            return base + header
        style = base + even if position % 2 == 0 else base
        if position == self.cursor:
            style += cursor
        return style

    def _build(self, cells: Sequence[Cell], style: Style) -> Strip:
        gap = Segment(" " * GAP, style)
        segments = [gap]
        for column, (text, cell_style) in zip(self.columns, cells, strict=True):
            segments.append(
                Segment(
                    fit(text, column.width, column.right),
                    style + _style(cell_style) if cell_style else style,
                )
            )
            segments.append(gap)
        return Strip(segments, self._content_width)
