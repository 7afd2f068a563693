"""The GPU switch dialog (`g` on a GPU, or the palette): preview, confirm, every step live,
then retry / abort when it failed.

Preview: the GPU now, a target mode (the one the earnings model favours is preselected), the
profit now against the model's estimate in the target, the job that would run, what happens
to the current work, a reason for the audit log, and `force` (skips the dwell time and gain
margin, and acknowledges a GPU health warning; the switch says when it needs it).

On confirm the dialog sends `gpu.switch` through the site's action path (origin TUI, the
operator's name) and lists the workloads' step events for this GPU as they come: precheck,
cordon, stop, verify free, launch, confirm, steady. The send runs as an app worker, not the
dialog's: closing the dialog mid-switch never cancels a switch (the result then arrives as a
notification). When the switch fails the GPU is held (FAULTED / NEEDS_RESET / LOST): the
dialog shows the failed step and why, with Retry (`op: retry`, on towards the intended mode)
and Abort (`op: abort`, back to the mode it came from). A refusal (nothing changed) shows its
reason, with "force" offered when the refusal says force would do it.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from console.actions import ActionRequest, ActionResult, Origin, ResultCode
from console.economics import DeviceEarnings
from console.model import DeviceStatus, Snapshot
from console.tui import gpu_switch_text as txt
from console.tui.source import ActionPerformer, StepSource, find_device
from console.workloads.events import Step, StepEvent, StepStatus
from console.workloads.queue import Job

FORCE_OFF = "force: off (f)"
FORCE_ON = "force: ON (f): skip dwell time and gain margin, acknowledge health warnings"


class GpuSwitchScreen(ModalScreen[ActionResult | None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y", "confirm", "Switch"),
        Binding("f", "toggle_force", "Force", show=False),
        Binding("r", "retry", "Retry"),
        Binding("a", "abort", "Abort"),
        Binding("n,escape", "close", "Close"),
    ]

    def __init__(
        self,
        device: DeviceStatus,
        row: DeviceEarnings | None,
        performer: ActionPerformer,
        operator: str,
        steps: StepSource | None,
        jobs: list[Job] | None = None,
    ) -> None:
        super().__init__()
        self.device = device
        self.row = row
        self._performer = performer
        self.operator = operator
        self._steps = steps
        self.jobs = jobs
        self.target = txt.default_target(device, row)
        self.phase = "failed" if txt.held(device) else "preview"
        """preview → running → done | refused | failed (retry / abort) → running → ..."""
        self.result: ActionResult | None = None
        self.step_lines: list[Text] = []
        self._step_at: dict[Step, int] = {}
        self._listening = False
        self._ready = False  # composed: ticks and results may update it from then on

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        d = self.device
        with Vertical(id="dialog"):
            yield Label(f"Switch GPU {d.name}", id="title")
            yield Static(self._header(), id="body")
            with RadioSet(id="targets"):
                for mode in txt.targets(d):
                    yield RadioButton(f"to {mode}", value=mode == self.target, id=f"to-{mode}")
            yield Static(id="preview")
            yield Checkbox(FORCE_OFF, id="force")
            yield Input(placeholder="reason for the audit log (optional)", id="reason")
            with VerticalScroll(id="steps"):
                yield Static(id="step-lines")
            yield Static(id="outcome")
            with Horizontal(id="buttons"):
                yield Button("Close (n)", id="close")
                yield Button("Abort (a)", id="abort", variant="warning")
                yield Button("Retry (r)", id="retry", variant="primary")
                yield Button("Switch (y)", id="confirm", variant="error")

    def _header(self) -> Table:
        d = self.device
        static = d.gpu.nvml.static if d.gpu is not None and d.gpu.nvml else None
        gpu = f"{d.name} · {d.model or '—'}"
        if static is not None:
            gpu += f" · {static.memory_total_bytes / txt.GIB:.0f} GiB · {static.uuid}"
        table = Table.grid(padding=(0, 1))
        table.add_column(width=19, style="bold", no_wrap=True)
        table.add_column()
        table.add_row("GPU", gpu)
        table.add_row("Now", txt.now_text(d, self.row))
        return table

    def apply(self, snapshot: Snapshot) -> None:
        """The app's tick: the GPU as it is now, in the header (live during a switch)."""
        device = find_device(snapshot, self.device.device_id)
        if device is None or not self._ready or not self.is_attached:
            return
        self.device = device
        if snapshot.earnings is not None:
            self.row = snapshot.earnings.by_id(device.device_id)
        self.query_one("#body", Static).update(self._header())

    def on_mount(self) -> None:
        self._ready = True
        self._show()
        self.query_one("#close", Button).focus()
        if self._steps is not None:
            self._follow_steps()

    def _show(self) -> None:
        preview = self.query_one("#preview", Static)
        if self.target is not None:
            preview.update(txt.preview(self.device, self.row, self.target, self.jobs))
        preview.display = self.phase == "preview" and self.target is not None
        choosing = self.phase == "preview"
        self.query_one("#targets").display = choosing and self.target is not None
        self.query_one("#reason").display = self.phase in ("preview", "refused", "failed")
        self.query_one("#force").display = self.phase in ("preview", "refused")
        self.query_one("#steps").display = bool(self.step_lines)
        self.query_one("#step-lines", Static).update(Text("\n").join(self.step_lines))
        outcome = self.query_one("#outcome", Static)
        outcome.update(self._outcome_text())
        outcome.display = self.phase != "preview"
        buttons = {
            "confirm": self.phase in ("preview", "refused") and self.target is not None,
            "retry": self.phase == "failed",
            "abort": self.phase == "failed",
            "close": True,
        }
        for name, shown in buttons.items():
            self.query_one(f"#{name}", Button).display = shown
        self.query_one("#close", Button).label = (
            "Close (n): the switch goes on" if self.phase == "running" else "Close (n)"
        )

    def _outcome_text(self) -> Text:
        gpu = self.device.gpu
        if self.phase == "running":
            return Text("switching… every step is shown as it happens", style="bold yellow")
        if self.phase == "failed" and self.result is None and gpu is not None:
            return Text.assemble(
                (f"Held {gpu.state}", "bold red"),
                f" after {gpu.failed_step or 'a failed step'}: {gpu.error or 'no reason recorded'}",
                "\nRetry goes on towards its intended mode; abort goes back to the mode it came "
                "from. Both verify the GPU is free first.",
            )
        r = self.result
        if r is None:
            return Text()
        if r.ok:
            return Text.assemble(("Done: ", "bold green"), r.message)
        head = {"failed": "Failed", "refused": "Refused: nothing was changed"}.get(self.phase, "")
        text = Text.assemble((f"{head or r.code.value}: ", "bold red"), r.message)
        if self.phase == "failed":
            text.append("\nRetry goes on towards the intended mode; abort goes back.")
        elif "force" in r.message:
            text.append("\nTick force (f) and switch again to override.", style="yellow")
        return text

    # --- the operator -------------------------------------------------------------------

    @on(RadioSet.Changed, "#targets")
    def _target_changed(self, event: RadioSet.Changed) -> None:
        button = event.pressed
        if button.id is not None:
            self.target = button.id.removeprefix("to-")
            self._show()

    def select_target(self, mode: str) -> None:
        """Choose the target mode (tests and keyboard users: the radio buttons do the same)."""
        self.query_one(f"#to-{mode}", RadioButton).value = True
        self.target = mode
        self._show()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {
            "confirm": self.action_confirm,
            "retry": self.action_retry,
            "abort": self.action_abort,
            "close": self.action_close,
        }
        if event.button.id in actions:
            actions[event.button.id]()

    @on(Checkbox.Changed, "#force")
    def _force_changed(self, event: Checkbox.Changed) -> None:
        # Said in words, not only by the box's colour.
        event.checkbox.label = FORCE_ON if event.value else FORCE_OFF

    def action_toggle_force(self) -> None:
        box = self.query_one("#force", Checkbox)
        box.value = not box.value

    def action_confirm(self) -> None:
        if self.phase in ("preview", "refused") and self.target is not None:
            params: dict[str, object] = {"mode": self.target}
            if self.query_one("#force", Checkbox).value:
                params["force"] = True
            self._send(params)

    def action_retry(self) -> None:
        if self.phase == "failed":
            self._send({"op": "retry"})

    def action_abort(self) -> None:
        if self.phase == "failed":
            self._send({"op": "abort"})

    def action_close(self) -> None:
        self.dismiss(self.result)

    # --- sending and following ----------------------------------------------------------

    def _send(self, params: dict[str, object]) -> None:
        request = ActionRequest(
            action="gpu.switch",
            target=self.device.device_id,
            params=params,
            actor=self.operator,
            origin=Origin.TUI,
            reason=self.query_one("#reason", Input).value.strip(),
        )
        self.phase = "running"
        self.step_lines = []
        self._step_at = {}
        self._listening = True
        self._show()
        # An app worker: closing this dialog must not cancel a switch half way.
        self.app.run_worker(self._perform(request), group="gpu-switch", exit_on_error=False)

    async def _perform(self, request: ActionRequest) -> None:
        result = await self._performer.perform(request)
        self.result = result
        self._listening = False
        if result.ok:
            self.phase = "done"
        elif result.code in (ResultCode.FAILED, ResultCode.TIMEOUT):
            self.phase = "failed"  # the GPU is held: retry or abort
        else:
            self.phase = "refused"  # refused, busy, invalid...: nothing was changed
        if self._ready and self.is_attached:
            self._show()
        else:
            # The dialog was closed while it ran: say how it ended.
            self.app.notify(
                result.message,
                title=f"GPU switch {self.device.name}",
                severity="information" if result.ok else "error",
            )

    @work(exclusive=True, group="gpu-switch-steps", exit_on_error=False)
    async def _follow_steps(self) -> None:
        assert self._steps is not None
        async for event in self._steps.subscribe():
            if self._listening and event.gpu == self.device.name:
                self.add_step(event)

    def add_step(self, event: StepEvent) -> None:
        """One line per step: "…" while it runs, then how it ended (notes get their own)."""
        if event.step is Step.STATE:
            return  # the steps say it; the header shows the state
        line = txt.step_line(event)
        at = self._step_at.get(event.step)
        if event.status is StepStatus.INFO or at is None:
            if event.status is not StepStatus.INFO:
                self._step_at[event.step] = len(self.step_lines)
            self.step_lines.append(line)
        else:
            self.step_lines[at] = line
        if self._ready and self.is_attached:
            self.query_one("#steps").display = True
            self.query_one("#step-lines", Static).update(Text("\n").join(self.step_lines))
            self.query_one("#steps", VerticalScroll).scroll_end(animate=False)
