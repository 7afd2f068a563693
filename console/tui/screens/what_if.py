"""The what-if panel (`e`): type a BTC price, a difficulty and a power price; see the fleet's
revenue, cost and profit against now, where the fleet breaks even, and every device's change.

The three inputs start at the market of the moment. Each accepts a value ("95000", "$95,000")
or a change ("-10%"). Every keystroke that leaves a valid number reprices the fleet
(`console.tui.what_if.evaluate`, on the same arrays as the live figures); an invalid one says
why under the inputs and keeps the last good result on screen. The panel follows the live
fleet on every tick with the typed market held fixed; Ctrl+R puts the market of the moment
back. The device table (worst first; a header click sorts by that column) renders only its
visible rows, so it costs the same for 7 devices or 10,000. Enter on a device opens its
detail.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from console.model import MISSING, Snapshot
from console.tui.messages import OpenDevice
from console.tui.what_if import (
    TERA,
    MarketNow,
    WhatIf,
    WhatIfInputError,
    evaluate,
    fleet_breakeven_lines,
    parse_value,
    signed_usd,
    usd,
)
from console.tui.widgets.virtual_table import Cell, PlainColumn, TableColumn, VirtualTable

COLUMNS = (
    PlainColumn("name", "Name", 16, False, 0),
    PlainColumn("now", "Profit now", 10, True, 2),
    PlainColumn("then", "Profit if", 10, True, 1),
    PlainColumn("change", "Change", 9, True, 3),
    PlainColumn("be_kwh", "Breakeven pwr", 13, True, 4),
    PlainColumn("be_btc", "Breakeven BTC", 13, True, 5),
)
_LABELS = {c.key: c.label for c in COLUMNS}


def _order(values: npt.NDArray[np.float64], descending: bool) -> npt.NDArray[np.intp]:
    """Indices sorting `values`, unknown (NaN) last in either direction."""
    keyed = -values if descending else values.copy()
    keyed[np.isnan(keyed)] = np.inf
    return np.argsort(keyed, kind="stable")


class WhatIfSource:
    """The what-if result as the device table's rows (formatted only when on screen)."""

    def __init__(self) -> None:
        self.result: WhatIf | None = None
        self.sort_column = "then"
        self.descending = False
        self.order: list[int] = []
        self.generation = 0
        self._positions: dict[str, int] | None = None

    def update(self, result: WhatIf | None) -> None:
        self.result = result
        self.generation += 1
        self.resort()

    def resort(self) -> None:
        w = self.result
        self._positions = None
        if w is None:
            self.order = []
            return
        if self.sort_column == "name":
            self.order = sorted(
                range(len(w.names)), key=w.names.__getitem__, reverse=self.descending
            )
            return
        values = {
            "now": w.profit_now,
            "then": w.profit_then,
            "change": w.change,
            "be_kwh": w.breakeven_usd_per_kwh,
            "be_btc": w.breakeven_btc_price_usd,
        }[self.sort_column]
        self.order = _order(values, self.descending).tolist()

    def __len__(self) -> int:
        return len(self.order)

    def row_id(self, position: int) -> str:
        assert self.result is not None
        return self.result.device_ids[self.order[position]]

    def position_of(self, row_id: str) -> int | None:
        if self.result is None:
            return None
        if self._positions is None:
            ids = self.result.device_ids
            self._positions = {ids[i]: p for p, i in enumerate(self.order)}
        return self._positions.get(row_id)

    def row_version(self, position: int) -> Hashable:
        return self.generation

    def row_cells(self, position: int, columns: Sequence[TableColumn]) -> list[Cell]:
        w = self.result
        assert w is not None
        i = self.order[position]
        then = float(w.profit_then[i])
        change = float(w.change[i])
        kwh = float(w.breakeven_usd_per_kwh[i])
        btc = float(w.breakeven_btc_price_usd[i])
        cells: dict[str, Cell] = {
            "name": (w.names[i], ""),
            "now": (usd(float(w.profit_now[i])), ""),
            "then": (usd(then), "bold red" if then < 0 else "bold"),
            "change": (signed_usd(change), "red" if change < -0.005 else ""),
            "be_kwh": (MISSING if kwh != kwh else f"${kwh:.4f}/kWh", ""),
            "be_btc": (MISSING if btc != btc else f"${btc:,.0f}", ""),
        }
        return [cells[c.key] for c in columns]


def totals_table(w: WhatIf) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(width=11)
    for _ in range(3):
        table.add_column(justify="right", min_width=9)
    table.add_row("", Text("now", "bold"), Text("what-if", "bold"), Text("change", "bold"))
    rows = (
        ("Revenue/day", w.now.revenue_usd_per_day, w.then.revenue_usd_per_day),
        ("Cost/day", w.now.power_cost_usd_per_day, w.then.power_cost_usd_per_day),
        ("Profit/day", w.now.profit_usd_per_day, w.then.profit_usd_per_day),
    )
    for label, now, then in rows:
        style = "bold red" if label == "Profit/day" and then < 0 else ""
        table.add_row(label, usd(now), Text(usd(then), style), signed_usd(then - now))
    return table


class WhatIfScreen(Screen[None]):
    CSS_PATH = "what_if.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+r", "reset", "Market now"),
        # A letter: typed into an input while one has focus, a sort key on the table.
        Binding("s", "next_sort", "Sort (table)"),
    ]

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self._snapshot = snapshot
        self._now = MarketNow.of(snapshot)
        self._typed = self._now
        self.source = WhatIfSource()
        self.result: WhatIf | None = None
        self.error: str | None = None
        self._ready = False  # composed and shown once: ticks may update it from then on

    def compose(self) -> ComposeResult:
        yield Label(
            "What-if: the fleet under another market (a value, or a change like -10%)",
            id="title",
        )
        with Horizontal(id="inputs"):
            for key, label in (
                ("btc", "BTC price, USD"),
                ("difficulty", "Difficulty, T"),
                ("power", "Power, USD/kWh"),
            ):
                with Vertical(classes="field"):
                    yield Label(label, id=f"{key}-label")
                    yield Input(id=key, select_on_focus=False)
        yield Static("", id="error")
        with Horizontal(id="summary"):
            yield Static("", id="totals")
            yield Static("", id="breakeven")
        yield Label("", id="devices-title")
        yield VirtualTable(COLUMNS, self.source, id="devices")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#btc", Input).focus()
        self.action_reset()
        self._ready = True

    def apply(self, snapshot: Snapshot) -> None:
        """A new tick: the live fleet under the typed market (inputs untouched)."""
        self._snapshot = snapshot
        self._now = MarketNow.of(snapshot) or self._now
        if self._ready and self.is_attached:
            self._recompute()

    @on(Input.Changed)
    def _typed_changed(self, event: Input.Changed) -> None:
        self._recompute()

    def _read_inputs(self) -> MarketNow:
        now = self._now
        assert now is not None
        return MarketNow(
            parse_value(self.query_one("#btc", Input).value, now.btc_price_usd, "BTC price"),
            parse_value(
                self.query_one("#difficulty", Input).value, now.difficulty / TERA, "difficulty"
            )
            * TERA,
            parse_value(self.query_one("#power", Input).value, now.power_usd_per_kwh, "power"),
        )

    def _recompute(self) -> None:
        error = self.query_one("#error", Static)
        if self._now is None:
            self.error = "no market data in this snapshot: nothing to compare with"
        else:
            try:
                self._typed = self._read_inputs()
                self.error = None
            except WhatIfInputError as exc:
                self.error = str(exc)
        error.update(Text(self.error or "", style="bold red"))
        error.display = self.error is not None
        if self._typed is None:
            return
        typed = self._typed
        result = evaluate(
            self._snapshot, typed.btc_price_usd, typed.difficulty, typed.power_usd_per_kwh
        )
        self.result = result
        self.source.update(result)
        table = self.query_one("#devices", VirtualTable)
        table.sort_arrow = (self.source.sort_column, self.source.descending)
        table.rows_changed(None)
        if result is None:
            self.query_one("#totals", Static).update("no earnings in this snapshot")
            return
        self.query_one("#totals", Static).update(totals_table(result))
        breakeven = Text("Fleet breaks even at", style="bold")
        for line in fleet_breakeven_lines(result):
            breakeven.append("\n" + line)
        self.query_one("#breakeven", Static).update(breakeven)
        self._show_now()
        sc = result.scenario
        self.query_one("#devices-title", Label).update(
            f"BTC {sc.btc_price_factor - 1:+.0%} · difficulty {sc.difficulty_factor - 1:+.0%} · "
            f"power {sc.power_price_factor - 1:+.0%}: "
            f"{result.losing} of {result.priced} priced devices lose money"
        )

    @on(VirtualTable.HeaderSelected, "#devices")
    def _header_clicked(self, event: VirtualTable.HeaderSelected) -> None:
        self.sort_by(event.column_key)

    def action_next_sort(self) -> None:
        keys = [c.key for c in self.query_one("#devices", VirtualTable).columns]
        at = keys.index(self.source.sort_column) if self.source.sort_column in keys else -1
        self.sort_by(keys[(at + 1) % len(keys)])

    def sort_by(self, column_key: str) -> None:
        """Sort the device table by a column; the same column again reverses it."""
        source = self.source
        if column_key == source.sort_column:
            source.descending = not source.descending
        else:
            source.sort_column, source.descending = column_key, False
        source.resort()
        table = self.query_one("#devices", VirtualTable)
        table.sort_arrow = (source.sort_column, source.descending)
        table.rows_changed(None)
        self.notify(f"sorted by {_LABELS[source.sort_column]}", timeout=2)

    @on(VirtualTable.RowSelected, "#devices")
    def _open(self, event: VirtualTable.RowSelected) -> None:
        self.post_message(OpenDevice(event.row_id))

    def _show_now(self) -> None:
        """The market of the moment next to each input, so a typed value has its reference."""
        now = self._now
        if now is None:
            return
        for key, label, value in (
            ("btc", "BTC USD", f"{now.btc_price_usd:,.0f}"),
            ("difficulty", "Difficulty T", f"{now.difficulty / TERA:,.2f}"),
            ("power", "Power $/kWh", f"{now.power_usd_per_kwh:.4f}"),
        ):
            self.query_one(f"#{key}-label", Label).update(f"{label}, now {value}")

    def action_reset(self) -> None:
        now = self._now
        if now is None:
            return
        with self.prevent(Input.Changed):
            self.query_one("#btc", Input).value = f"{now.btc_price_usd:.0f}"
            self.query_one("#difficulty", Input).value = f"{now.difficulty / TERA:.2f}"
            self.query_one("#power", Input).value = f"{now.power_usd_per_kwh:.4f}"
        self._recompute()

    def action_back(self) -> None:
        self.dismiss(None)
