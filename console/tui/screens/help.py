"""The help screen (`?`): every key binding, grouped by the screen it works on.

It is built from the screens' own `BINDINGS`, hidden ones included, so it cannot drift from
what the keys really do; the app passes its own bindings and the palette key in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

HelpSection = tuple[str, Sequence[BindingType], Sequence[tuple[str, str]]]
"""(title, bindings, extra (key, description) lines for mouse gestures and the like)"""


def _describe(binding: Binding) -> str:
    if binding.description:
        return binding.description
    return binding.action.split("(")[0].replace("_", " ")


def section_table(
    title: str,
    bindings: Iterable[BindingType],
    extra: Sequence[tuple[str, str]],
    key_display: dict[str, str],
) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(width=14, no_wrap=True)
    table.add_column()
    table.title = Text(title, style="bold")
    table.title_justify = "left"
    seen: set[str] = set()
    for binding in Binding.make_bindings(bindings):
        # The first binding of a key wins, as it does when the key is pressed.
        if binding.key not in seen:
            seen.add(binding.key)
            key = key_display.get(binding.key, binding.key)
            table.add_row(Text(key, style="bold"), _describe(binding))
    for key, description in extra:
        table.add_row(Text(key, style="bold"), description)
    return table


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__()
        self._sections = sections

    def compose(self) -> ComposeResult:
        key_display = {
            b.key: self.app.get_key_display(b)
            for _, bindings, _ in self._sections
            for b in Binding.make_bindings(bindings)
        }
        with VerticalScroll(id="help"):
            yield Label("Keys, by screen  (Esc closes; arrows / PgUp / PgDn scroll)", id="title")
            for title, bindings, extra in self._sections:
                yield Static(section_table(title, bindings, extra, key_display), classes="keys")

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
