"""The device detail screen (Enter on a fleet row): everything known about one device.

Top to bottom: a header with the three state axes, headline figures and the device's actions;
the history sparklines (hashrate, temperature, power, profit); what it earns; the blocks for
its kind (boards and chips, pools for ASICs); its audit
entries; every field of its status and reading. All of it updates in place on the app's tick.

The audit list is read from the audit log when the screen opens, after every action the
console completes, and every few ticks (an action sent over MQTT shows up too).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Footer, Label

from console.actions import ActionResult
from console.model import DeviceStatus, Snapshot
from console.tui.device_actions import action_bindings, is_offered
from console.tui.messages import RunAction
from console.tui.source import ConsoleSite, find_device
from console.tui.widgets.audit_list import AuditList
from console.tui.widgets.device_sections import (
    SECTIONS_BY_KIND,
    DetailHeader,
    DeviceSection,
    EarningsSection,
    FieldsSection,
)
from console.tui.widgets.history_panel import HistoryPanel

AUDIT_ROWS = 20
AUDIT_RELOAD_TICKS = 5


class DeviceDetailScreen(Screen[None]):
    CSS_PATH = "device_detail.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]
    BINDINGS = [
        Binding("escape", "back", "Back"),
        *action_bindings(show=True),
    ]

    def __init__(
        self,
        device: DeviceStatus,
        snapshot: Snapshot,
        site: ConsoleSite,
        completed: Signal[ActionResult],
    ) -> None:
        super().__init__()
        self.device_id = device.device_id
        self.device: DeviceStatus = device
        self._first = snapshot
        self._site = site
        self._completed = completed
        self._kind_sections = SECTIONS_BY_KIND.get(device.kind, tuple)()
        self._ticks = 0
        self._offered: tuple[str, ...] = ()
        self._ready = False
        # Kept, not queried, on every tick: a tick may land while the screen is being torn down.
        self._header = DetailHeader(id="header")
        self._history = HistoryPanel(id="history", classes="section")
        self._earnings = EarningsSection(id="earnings-section", classes="section")
        self._fields = FieldsSection(id="fields-section", classes="section")
        self._audit = AuditList(id="audit")

    def compose(self) -> ComposeResult:
        yield self._header
        with VerticalScroll(id="body"), Vertical(id="columns"):
            with Vertical(id="main"):
                yield self._history
                yield self._earnings
                for section in self._kind_sections:
                    section.add_class("section")
                    yield section
                with Vertical(id="audit-section", classes="section"):
                    yield Label("Audit log", classes="section-title")
                    yield self._audit
            yield self._fields
        yield Footer()

    def on_mount(self) -> None:
        self._completed.subscribe(self, self._action_completed)
        self.query_one("#body").focus()
        # Nested blocks compose after this handler: fill them once everything is laid out.
        self.call_after_refresh(self._show_first)

    def _show_first(self) -> None:
        self._ready = True
        self.apply(self._first)
        self.reload_audit()

    def selected_device(self) -> DeviceStatus | None:
        return self.device

    def apply(self, snapshot: Snapshot) -> None:
        device = find_device(snapshot, self.device_id)
        if device is None or not self._ready or not self._header.is_attached:
            return  # not composed yet, or being torn down while a tick lands
        self.device = device
        with self.app.batch_update():
            self._header.apply(device, snapshot)
            self._history.apply(self._site, self.device_id)
            self._earnings.apply(device, snapshot)
            section: DeviceSection
            for section in self._kind_sections:
                section.apply(device, snapshot)
            self._fields.apply(device, snapshot)
        offered = tuple(sorted(device.controls))
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()
        self._ticks += 1
        if self._ticks % AUDIT_RELOAD_TICKS == 0:
            self.reload_audit()

    def reload_audit(self) -> None:
        self.run_worker(self._load_audit(), group="audit", exclusive=True, exit_on_error=False)

    async def _load_audit(self) -> None:
        entries = await self._site.audit.recent(target=self.device_id, limit=AUDIT_ROWS)
        self._audit.apply_entries(entries)

    def _action_completed(self, result: ActionResult) -> None:
        if result.target == self.device_id:
            self.reload_audit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "device_action":
            return is_offered(str(parameters[0]), self.device)
        return True

    def action_device_action(self, name: str) -> None:
        self.post_message(RunAction(name, self.device_id))

    def action_back(self) -> None:
        self.dismiss(None)
