"""A device's audit entries, newest first: when, what, the outcome, who, and the full message.

Two lines per entry, so the refusal reason is readable at 80 columns:

    09-21 14:03:20  ✗ failed  asic.switch_pool pool=2  ha-automation@mqtt
        r1-s21-02: switch_pool refused by the firmware: pool 2 is dead  (reason: failover test)

The text is rebuilt only when the entries change (after an action, or a periodic reload).
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from console.actions import AuditEntry


def _params(params: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(params.items()))


def audit_text(entries: list[tuple[int, AuditEntry]]) -> Text:
    if not entries:
        return Text("no actions recorded for this device", style="dim")
    text = Text()
    for n, (_, e) in enumerate(reversed(entries)):
        if n:
            text.append("\n")
        text.append(time.strftime("%m-%d %H:%M:%S", time.localtime(e.at)))
        text.append("  ")
        if e.ok:
            text.append("✓ ok", style="green")
        else:
            text.append(f"✗ {e.code}", style="bold red")
        text.append(f"  {e.action}", style="bold")
        if e.params:
            text.append(f" {_params(e.params)}")
        text.append(f"  {e.actor}@{e.origin}", style="dim")
        text.append(f"\n    {e.message}")
        if e.reason:
            text.append(f"  (reason: {e.reason})", style="italic")
    return text


class AuditList(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("loading the audit log…", id=id)
        self.entries: list[tuple[int, AuditEntry]] = []
        self._shown: list[int] | None = None

    def apply_entries(self, entries: list[tuple[int, AuditEntry]]) -> None:
        ids = [audit_id for audit_id, _ in entries]
        if ids != self._shown:
            self._shown = ids
            self.entries = entries
            self.update(audit_text(entries))
