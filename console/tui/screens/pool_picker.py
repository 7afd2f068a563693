"""Pick one of a miner's configured pools (from its latest reading) for `asic.switch_pool`.

The active pool is listed but cannot be picked: switching to it would change nothing. The
screen's result is the firmware's pool index, or None when the operator backs out.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from console.model import MISSING, DeviceStatus


def pool_option(index: int, url: str, user: str, status: str, active: bool) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{index}  ")
    text.append("▶ active " if active else "         ", style="bold" if active else "")
    text.append(f"{status:<9} ")
    text.append(url)
    text.append(f"  {user or MISSING}", style="dim")
    return text


class PoolPickerScreen(ModalScreen[int | None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, device: DeviceStatus) -> None:
        super().__init__()
        self._device = device

    def compose(self) -> ComposeResult:
        pools = self._device.reading.pools if self._device.reading else ()
        with Vertical(id="dialog"):
            yield Label(f"Switch pool on {self._device.name}", id="title")
            yield Static("Pick the pool the miner should send its work to (Enter), Esc to cancel.")
            yield OptionList(
                *(
                    Option(
                        pool_option(p.index, p.url, p.user, p.status, p.active),
                        id=str(p.index),
                        disabled=p.active,
                    )
                    for p in pools
                ),
                id="pools",
            )

    def on_mount(self) -> None:
        pools = self.query_one("#pools", OptionList)
        pools.focus()
        # Start on the first pool that can be picked.
        for i in range(pools.option_count):
            if not pools.get_option_at_index(i).disabled:
                pools.highlighted = i
                break

    @on(OptionList.OptionSelected, "#pools")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None
        self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
