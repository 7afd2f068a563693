"""The confirmation modal every hardware-changing action passes through.

It states the device, what it is doing now, exactly what the action will do, and who it will
be recorded as. Focus starts on Cancel, so a stray Enter does nothing; `y` (or the confirm
button) sends, `n` / Escape cancels. An optional reason goes into the audit log with the action.
The screen's result is the reason (possibly empty) on confirm, None on cancel.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmActionScreen(ModalScreen[str | None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y", "confirm", "Confirm"),
        Binding("n", "cancel", "Cancel"),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    def __init__(
        self, title: str, body: Text, confirm_label: str, cancel_label: str = "Cancel"
    ) -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._confirm_label = confirm_label
        self._cancel_label = cancel_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="title")
            yield Static(self._body, id="body")
            yield Input(placeholder="reason for the audit log (optional)", id="reason")
            with Horizontal(id="buttons"):
                yield Button(f"{self._cancel_label} (n)", id="cancel")
                yield Button(f"{self._confirm_label} (y)", id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_confirm(self) -> None:
        self.dismiss(self.query_one("#reason", Input).value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Input.Submitted, "#reason")
    def _reason_submitted(self) -> None:
        self.action_confirm()
