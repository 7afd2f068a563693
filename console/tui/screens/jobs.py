"""The Jobs screen (`j`): the AI queue, live, with submit, cancel, reprioritise and retry.

Every row is a job: id, name, customer, rate, priority, state, GPU, runtime, progress and
what it earned so far (the run in progress included). The queue is read from the site's
workloads on every tick (a worker; SQLite runs off the event loop there). `n` submits a job
(a form: name, customer, rate, minimum VRAM, priority, command line), `x` cancels the
highlighted one (confirmed first: a running job is checkpointed and stopped), `p` changes
its priority, `r` puts a failed one back in line (confirmed, with why it failed). Each goes
through the site's action path as `job.submit`, `job.cancel`, `job.reprioritise`, `job.retry`
(origin TUI, the operator's name, a reason for the audit log); a refusal says why. Enter on
a placed job opens its GPU.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from console.actions import ActionRequest, ActionResult, Origin
from console.model import Snapshot
from console.tui.jobs_rows import COLUMNS, JobsSource
from console.tui.messages import OpenDevice
from console.tui.screens.confirm import ConfirmActionScreen
from console.tui.source import ActionPerformer, ConsoleSite
from console.tui.widgets.virtual_table import VirtualTable
from console.workloads.queue import ACTIVE, WAITING, Job, JobState

GB = 1e9


class JobsScreen(Screen[None]):
    CSS_PATH = "jobs.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("n", "submit", "Submit"),
        Binding("x", "cancel_job", "Cancel job"),
        Binding("p", "priority", "Priority"),
        Binding("r", "retry_job", "Retry failed"),
    ]

    def __init__(self, site: ConsoleSite, performer: ActionPerformer, operator: str) -> None:
        super().__init__()
        self._site = site
        self._performer = performer
        self.operator = operator
        self.source = JobsSource()
        self._gpu_names: dict[str, str] = {}
        self._now: float | None = None
        self._loaded = False
        self._ready = False  # composed: ticks may reload it from then on

    def compose(self) -> ComposeResult:
        yield Label("AI jobs", id="title")
        yield Static("", id="queue-summary")
        yield VirtualTable(COLUMNS, self.source, id="jobs")
        yield Footer()

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#jobs", VirtualTable)

    def on_mount(self) -> None:
        self._ready = True
        self.table.focus()
        self.reload()

    def apply(self, snapshot: Snapshot) -> None:
        """The app's tick: GPU names for the GPU column, then the queue again."""
        self._gpu_names = {
            d.gpu.uuid: d.name for d in snapshot.devices if d.gpu is not None and d.gpu.uuid
        }
        # Runtime and earnings of running jobs at the snapshot's clock, like every other figure.
        self._now = snapshot.taken_at
        if self._ready and self.is_attached:
            self.reload()

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="jobs", exit_on_error=False)
    async def _load(self) -> None:
        gpus = self._site.gpus
        if gpus is None:
            self._show_summary("this site has no [[gpus]]: there is no AI queue to show")
            return
        jobs = await gpus.workloads.jobs()
        now = self._now if self._now is not None else time.time()
        self.source.update(jobs, self._gpu_names, now)
        self._loaded = True
        self.table.rows_changed(None)
        running = sum(j.state in ACTIVE for j in jobs)
        waiting = sum(j.state in WAITING for j in jobs)
        earning = sum(j.rate_usd_per_gpu_hour for j in jobs if j.state is JobState.RUNNING)
        self._show_summary(
            f"{len(jobs)} jobs: {running} on a GPU, {waiting} waiting · "
            f"billing ${earning:,.2f}/h now"
        )

    def _show_summary(self, text: str) -> None:
        self.query_one("#queue-summary", Static).update(text)

    def selected_job(self) -> Job | None:
        row_id = self.table.cursor_row_id
        return None if row_id is None else self.source.job(row_id)

    # --- actions ------------------------------------------------------------------------

    async def _perform(
        self, action: str, target: str | None, params: dict[str, Any], reason: str
    ) -> ActionResult:
        result = await self._performer.perform(
            ActionRequest(
                action=action,
                target=target,
                params=params,
                actor=self.operator,
                origin=Origin.TUI,
                reason=reason,
            )
        )
        if result.ok:
            self.notify(result.message, title=action, timeout=6)
        else:
            self.notify(
                f"{result.code.value}: {result.message}",
                title=f"{action} not done",
                severity="error",
                timeout=15,
            )
        self.reload()
        return result

    def action_submit(self) -> None:
        if self._site.gpus is None:
            self.notify("this site has no [[gpus]]: nothing can run a job", severity="warning")
            return
        self.app.push_screen(JobFormScreen(self._submit))

    async def _submit(self, params: dict[str, Any], reason: str) -> ActionResult:
        return await self._perform("job.submit", None, params, reason)

    @work(group="job-action", exit_on_error=False)
    async def action_cancel_job(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        if job.state not in ACTIVE and job.state not in WAITING:
            self.notify(f"job {job.id} is {job.state.value}: nothing to cancel", timeout=4)
            return
        gpu = self._gpu_names.get(job.gpu_uuid or "", job.gpu_uuid or "")
        effect = (
            f"Job {job.id} {job.name} is {job.state.value} on GPU {gpu}: it is told to "
            f"checkpoint and exit ({job.checkpoint_signal}, grace {job.grace_s:g} s), then "
            "stopped and marked cancelled; its GPU waits for the next job that fits."
            if job.state in ACTIVE
            else f"Job {job.id} {job.name} leaves the queue and never starts."
        )
        body = Text(f"${job.rate_usd_per_gpu_hour:.2f}/GPU-h · {job.progress:.0%} done\n\n")
        body.append(effect + "\n\n")
        await self._confirm_and_perform(
            job, "job.cancel", body, "Cancel job", "Cancel the job", "Keep it"
        )

    @work(group="job-action", exit_on_error=False)
    async def action_priority(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        answer = await self.app.push_screen_wait(PriorityScreen(job))
        if answer is not None:
            priority, reason = answer
            await self._perform("job.reprioritise", str(job.id), {"priority": priority}, reason)

    @work(group="job-action", exit_on_error=False)
    async def action_retry_job(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        if job.state is not JobState.FAILED:
            self.notify(
                f"job {job.id} is {job.state.value}: only a failed job is retried", timeout=4
            )
            return
        body = Text(f"{job.progress:.0%} done, ${job.earned_usd:.2f} earned\n")
        body.append("Failed  ", style="bold")
        body.append(f"{job.last_error or 'no reason recorded'}\n\n", style="yellow")
        body.append(
            "It goes back in line at its priority with its attempts reset, and resumes from "
            "its last checkpoint on the next GPU that fits.\n\n"
        )
        await self._confirm_and_perform(
            job, "job.retry", body, "Retry job", "Retry the job", "Leave it failed"
        )

    async def _confirm_and_perform(
        self, job: Job, action: str, details: Text, title: str, confirm: str, keep: str
    ) -> None:
        """Ask the operator (the job, `details`, where it is recorded; a reason), then send."""
        body = Text()
        body.append("Job     ", style="bold")
        body.append(f"{job.id} {job.name} · {job.customer or 'no customer'} · ")
        body.append_text(details)
        body.append(
            f"Sent as {action} by {self.operator} ({Origin.TUI.value}) and recorded in the "
            "audit log.",
            style="dim",
        )
        reason = await self.app.push_screen_wait(
            ConfirmActionScreen(
                title=f"{title} {job.id} {job.name}?",
                body=body,
                confirm_label=confirm,
                cancel_label=keep,
            )
        )
        if reason is not None:
            await self._perform(action, str(job.id), {}, reason)

    @on(VirtualTable.RowSelected, "#jobs")
    def _open_gpu(self, event: VirtualTable.RowSelected) -> None:
        job = self.source.job(event.row_id)
        name = self._gpu_names.get(job.gpu_uuid or "") if job is not None else None
        if name is not None:
            self.post_message(OpenDevice(name))
        else:
            self.notify("this job is not on a GPU", timeout=3)

    def action_back(self) -> None:
        self.dismiss(None)


class JobFormScreen(ModalScreen[ActionResult | None]):
    """Submit a job: the form is checked by the action path itself (`job.submit`), and a
    refusal is shown here, with what was typed kept."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    FIELDS = (
        ("name", "Name", "finetune-llama"),
        ("customer", "Customer", "acme"),
        ("rate", "Rate, $/GPU-h", "1.50"),
        ("vram", "Min VRAM, GB", "16"),
        ("priority", "Priority", "0"),
        ("command", "Command", "python train.py --epochs 3"),
        ("reason", "Reason", "for the audit log (optional)"),
    )

    def __init__(self, submit: Any) -> None:
        super().__init__()
        self._submit = submit
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Submit an AI job", id="title")
            with Grid(id="form"):
                for key, label, placeholder in self.FIELDS:
                    yield Label(label)
                    yield Input(placeholder=placeholder, id=key)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Submit", id="submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def value(self, key: str) -> str:
        return self.query_one(f"#{key}", Input).value.strip()

    def params(self) -> dict[str, Any]:
        """The `job.submit` payload from the form; ValueError says which field is wrong."""
        params: dict[str, Any] = {"name": self.value("name"), "customer": self.value("customer")}
        try:
            params["argv"] = shlex.split(self.value("command"))
        except ValueError as exc:
            raise ValueError(f"command: {exc}") from None
        for key, field, kind, scale in (
            ("rate", "rate_usd_per_gpu_hour", float, 1.0),
            ("vram", "min_vram_bytes", float, GB),
            ("priority", "priority", int, 1),
        ):
            text = self.value(key)
            if not text:
                continue
            try:
                number = kind(text)
            except ValueError:
                raise ValueError(f"{key}: {text!r} is not a number") from None
            params[field] = int(number * scale) if field == "min_vram_bytes" else number
        return params

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    async def _send(self) -> None:
        try:
            params = self.params()
        except ValueError as exc:
            self._error(str(exc))
            return
        result: ActionResult = await self._submit(params, self.value("reason"))
        if result.ok:
            self.dismiss(result)
        else:
            self._error(f"{result.code.value}: {result.message}")

    def _error(self, text: str) -> None:
        self.error = text
        error = self.query_one("#error", Static)
        error.update(Text(text, style="bold red"))


class PriorityScreen(ModalScreen[tuple[int, str] | None]):
    """A job's new priority (-1000..1000; higher starts first) and a reason."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        job = self.job
        with Vertical(id="dialog"):
            yield Label(f"Priority of job {job.id} {job.name}", id="title")
            yield Static(
                f"Now {job.priority}. Higher starts first (-1000 to 1000); a job on a GPU keeps "
                "running and the new priority applies the next time it waits.",
                id="body",
            )
            yield Input(str(job.priority), id="priority")
            yield Input(placeholder="reason for the audit log (optional)", id="reason")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Set", id="set", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#priority", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#set")
    def _set(self) -> None:
        text = self.query_one("#priority", Input).value.strip()
        try:
            priority = int(text)
        except ValueError:
            self.query_one("#error", Static).update(
                Text(f"{text!r} is not a whole number", style="bold red")
            )
            return
        self.dismiss((priority, self.query_one("#reason", Input).value.strip()))
