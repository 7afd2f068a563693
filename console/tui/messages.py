"""Messages screens send up to the app, so no screen needs to know how the app is built."""

from __future__ import annotations

from textual.message import Message


class OpenDevice(Message):
    """Show the detail screen of a device."""

    def __init__(self, device_id: str) -> None:
        super().__init__()
        self.device_id = device_id


class RunAction(Message):
    """Start a device action (it is confirmed in a modal before anything is sent)."""

    def __init__(self, name: str, device_id: str) -> None:
        super().__init__()
        self.name = name
        self.device_id = device_id
