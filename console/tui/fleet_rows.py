"""What the fleet table shows, kept in line with the snapshots: no widgets, no terminal.

`FleetRows.apply(snapshot)` finds the devices that changed since the last snapshot (a status
object the store handed out anew, or earnings cells that moved: a market move reprices every
device without any new reading), recomputes their cell texts, and reports which rows changed
and whether the display order did. Per tick the cost is proportional to the devices that
changed, not to the fleet:

* changed statuses are found by identity in C (`map(is_not, ...)`), changed earnings by one
  vectorised comparison of the four money columns;
* the sort order is a list of row numbers kept sorted by a key per row; a row whose key
  moved is taken out and put back in with `bisect` (a device flipping between healthy and
  problem moves itself, nothing else is re-sorted); only a change of most rows, or of the
  sort itself, sorts everything again;
* the filter keeps a match flag per row (it searches the words: name, model, firmware,
  states, host, note); the display order is the sorted order without the rows that do not
  match, in the chosen direction;
* a changed row only gets a new version: its cell texts (and its money cells, when the
  earnings moved) are computed when something reads them, which is the rows on screen. A
  market move reprices every device, and costs the rows on screen plus, when the table is
  sorted by a money column, the sort keys.

Rows are numbered in snapshot order (the store's device order, which does not change while a
site runs); `order` is the display order as row numbers, `ids` the device ids.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from operator import is_not
from typing import Final

import numpy as np
import numpy.typing as npt

from console.economics import FleetEarnings
from console.model import DeviceStatus, Snapshot
from console.tui.rows import COLUMN_KEYS, MONEY_KEYS, Money, SortKey, cell_texts, note, sort_key

F64 = npt.NDArray[np.float64]

FullKey = tuple[int, SortKey, int]
"""(problem rank, column key, row number): unique per row, so bisect finds exactly it."""


def _haystack(d: DeviceStatus) -> str:
    """What the filter searches, lower case: the words of a row and where the device is
    (name, kind, states, model, firmware, host, the note), not its figures, which move on
    every poll and are what the sort is for."""
    r = d.reading
    return "\x00".join(
        (
            d.name,
            d.kind.value,
            d.observed.value.replace("_", " "),
            d.freshness.value,
            d.commanded.value,
            d.model or "",
            r.firmware.value if r is not None else "",
            d.host,
            note(d),
        )
    ).lower()


FULL_SORT_SHARE = 0.05
"""Above this share of rows with a new key, one sort beats taking each row out and back in."""


@dataclass
class Changes:
    """What one `apply` changed: rows (row numbers) whose cells changed, and the order."""

    rows: list[int] = field(default_factory=list)
    order: bool = False
    layout: bool = False  # the set of devices changed: everything is new


def _money_block(e: FleetEarnings | None, n: int) -> F64:
    """(4, n): revenue, cost, profit, switch gain per day; NaN when unknown or unpriced."""
    block = np.full((4, n), np.nan)
    if e is not None and len(e.device_ids) == n:
        c = e.columns
        block[0] = c.revenue_usd_per_day
        block[1] = c.power_cost_usd_per_day
        block[2] = c.profit_usd_per_day
        block[3] = c.switch_gain_usd_per_day
        # An unpriced device has no money cells at all (its columns are NaN anyway).
        block[:, ~e.inputs.priced] = np.nan
    return block


def _opt(value: float) -> float | None:
    return None if value != value else value  # NaN → None


_UNSET: Final = object()
"""Marks a lazily computed cell (money, texts) that must be computed again when read."""


class FleetRows:
    def __init__(self) -> None:
        self.sort_column = "name"
        self.sort_reverse = False
        self.problems_first = True
        self._filter = ""
        self.ids: tuple[str, ...] = ()
        self._row_index: dict[str, int] = {}
        self.statuses: list[DeviceStatus] = []
        self.versions: list[int] = []
        """Per row: bumped whenever what the row shows may have changed (the render cache key)."""
        self._block: F64 = np.zeros((4, 0))
        # Money and texts are computed when read: a market move reprices every device, but
        # only the rows on screen (and the sort keys, when sorting by money) need them.
        self._money: list[object] = []
        self._texts: list[tuple[str, ...] | None] = []
        self._keys: list[FullKey] = []
        self._match: list[bool] = []
        self._haystack: list[str] = []
        self._sorted: list[int] = []
        self._sorted_keys: list[FullKey] = []
        self.order: list[int] = []
        """Display order: row numbers, sorted and filtered, in the chosen direction."""
        self._positions: list[int] | None = None
        self.last: Snapshot | None = None

    # --- reading ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.order)

    def row_of(self, device_id: str) -> int | None:
        """The row number of a device (its place in the snapshot), or None."""
        return self._row_index.get(device_id)

    def position_of(self, device_id: str) -> int | None:
        """Where a device is in the display order now, or None when it is filtered out."""
        row = self.row_of(device_id)
        if row is None:
            return None
        if self._positions is None:
            # Rebuilt once per order change, then every lookup is an index.
            positions = [-1] * len(self.ids)
            for position, i in enumerate(self.order):
                positions[i] = position
            self._positions = positions
        position = self._positions[row]
        return None if position < 0 else position

    def display_ids(self) -> list[str]:
        return [self.ids[i] for i in self.order]

    def money(self, i: int) -> Money | None:
        """Row i's earnings cells (None: not priced)."""
        cached = self._money[i]
        if cached is _UNSET:
            rev, cost, profit, gain = self._block[:, i].tolist()
            if rev != rev and cost != cost and profit != profit and gain != gain:
                cached = None
            else:
                cached = Money(_opt(rev), _opt(cost), _opt(profit), _opt(gain))
            self._money[i] = cached
        return cached  # type: ignore[return-value]

    def texts(self, i: int) -> tuple[str, ...]:
        """Row i's cell texts, one per column of `COLUMNS`."""
        texts = self._texts[i]
        if texts is None:
            texts = cell_texts(self.statuses[i], self.money(i))
            self._texts[i] = texts
        return texts

    def text(self, device_id: str, column_key: str) -> str:
        row = self.row_of(device_id)
        if row is None:
            raise KeyError(device_id)
        return self.texts(row)[COLUMN_KEYS.index(column_key)]

    # --- updating -----------------------------------------------------------------------

    def apply(self, snapshot: Snapshot) -> Changes:
        """Bring every row in line with `snapshot`; returns what changed."""
        self.last = snapshot
        devices = snapshot.devices
        n = len(devices)
        block = _money_block(snapshot.earnings, n)
        if n != len(self.ids):
            return self._reset(snapshot, block)
        status_rows = list(itertools.compress(range(n), map(is_not, devices, self.statuses)))
        if any(devices[i].device_id != self.ids[i] for i in status_rows):
            return self._reset(snapshot, block)  # another site, or devices in another order
        same = (block == self._block) | (np.isnan(block) & np.isnan(self._block))
        money_rows = np.flatnonzero(~same.all(axis=0)).tolist()
        self._block = block
        changes = Changes(rows=sorted(set(money_rows).union(status_rows)))
        for i in changes.rows:
            # Texts again when read (the rows on screen), and a new version so the row
            # renders again; a status change or an earnings change may move any cell.
            self._texts[i] = None
            self.versions[i] += 1
        moved: list[tuple[int, FullKey, FullKey]] = []
        if self.sort_column in MONEY_KEYS:
            for i in money_rows:
                self._money[i] = _UNSET
                self._rekey(i, moved)
        else:
            for i in money_rows:
                self._money[i] = _UNSET
        match_changed = False
        needle = self._filter
        for i in status_rows:
            d = devices[i]
            self.statuses[i] = d
            haystack = _haystack(d)
            if haystack != self._haystack[i]:
                self._haystack[i] = haystack
                match = needle in haystack
                if match != self._match[i]:
                    self._match[i] = match
                    match_changed = True
            self._rekey(i, moved)
        if moved:
            self._move(moved)
        if moved or match_changed:
            changes.order = self._refresh_order()
        return changes

    def _rekey(self, i: int, moved: list[tuple[int, FullKey, FullKey]]) -> None:
        key = self._full_key(i)
        if key != self._keys[i]:
            moved.append((i, self._keys[i], key))
            self._keys[i] = key

    def _reset(self, snapshot: Snapshot, block: F64) -> Changes:
        devices = snapshot.devices
        n = len(devices)
        self.ids = tuple(d.device_id for d in devices)
        self._row_index = {device_id: i for i, device_id in enumerate(self.ids)}
        self.statuses = list(devices)
        self._block = block
        self._money = [_UNSET] * n
        self._texts = [None] * n
        self.versions = [0] * n
        self._haystack = [_haystack(d) for d in devices]
        self._match = [self._filter in h for h in self._haystack]
        self._keys = []
        self._resort_all()
        return Changes(rows=list(range(n)), order=True, layout=True)

    def _full_key(self, i: int) -> FullKey:
        # Problems first is a partition in front of the chosen sort, in either direction: the
        # display is the ascending order reversed, so the ranks flip with the direction.
        d = self.statuses[i]
        first, rest = (1, 0) if self.sort_reverse else (0, 1)
        problem_rank = first if (self.problems_first and d.problem) else rest
        key = sort_key(self.sort_column, d, self.money(i), reverse=self.sort_reverse)
        return (problem_rank, key, i)

    def _move(self, moved: list[tuple[int, FullKey, FullKey]]) -> None:
        if len(moved) > FULL_SORT_SHARE * len(self.ids):
            self._sorted = sorted(range(len(self.ids)), key=self._keys.__getitem__)
            self._sorted_keys = [self._keys[i] for i in self._sorted]
            return
        rows, keys = self._sorted, self._sorted_keys
        for i, old, new in moved:
            at = bisect.bisect_left(keys, old)
            del rows[at], keys[at]
            at = bisect.bisect_left(keys, new)
            rows.insert(at, i)
            keys.insert(at, new)

    def _resort_all(self) -> None:
        self._keys = [self._full_key(i) for i in range(len(self.ids))]
        self._sorted = sorted(range(len(self.ids)), key=self._keys.__getitem__)
        self._sorted_keys = [self._keys[i] for i in self._sorted]
        self._refresh_order()

    def _refresh_order(self) -> bool:
        match = self._match
        order = [i for i in self._sorted if match[i]] if self._filter else list(self._sorted)
        if self.sort_reverse:
            order.reverse()
        if order == self.order:
            return False
        self.order = order
        self._positions = None
        return True

    # --- what the operator changes ------------------------------------------------------

    @property
    def filter_text(self) -> str:
        return self._filter

    def set_filter(self, text: str) -> bool:
        """Show only rows whose text contains `text` (any case); returns whether the display
        order changed. Rows are hidden, never rebuilt."""
        needle = text.strip().lower()
        if needle == self._filter:
            return False
        self._filter = needle
        self._match = [needle in h for h in self._haystack]
        return self._refresh_order()

    def set_sort(
        self,
        column: str | None = None,
        *,
        reverse: bool | None = None,
        problems_first: bool | None = None,
    ) -> None:
        """Change the sort; every key is recomputed and the rows sorted once."""
        if column is not None:
            if column not in COLUMN_KEYS:
                raise ValueError(f"no fleet column {column!r}")
            self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        if problems_first is not None:
            self.problems_first = problems_first
        self._resort_all()
