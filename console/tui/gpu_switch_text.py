"""What the GPU switch dialog says, without widgets: the targets, the preview, the steps.

The preview puts the device's profit now next to the earnings model's estimate for the target
mode (`DeviceEarnings.other_*`: the best queued job that fits, or the model's rate × expected
utilisation, for AI; the last measured mining figures for mining), names the job that would
run (the queue's own `choose`: highest priority, then oldest, among the waiting jobs that fit
the GPU's memory), and says what happens to the work on the GPU now. A target the model has
no estimate for says so ("—"), it is not invented.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from console.economics import DeviceEarnings
from console.model import MISSING, DeviceStatus, fmt_hashrate, fmt_usd
from console.workloads.events import StepEvent, StepStatus
from console.workloads.queue import WAITING, Job, choose

MODES = ("mining", "ai", "idle")
HOLDING = frozenset({"FAULTED", "LOST", "NEEDS_RESET"})
GIB = 2**30

STATUS_MARK = {
    StepStatus.STARTED: ("…", "yellow"),
    StepStatus.OK: ("✓", "green"),
    StepStatus.FAILED: ("✗", "bold red"),
    StepStatus.SKIPPED: ("–", "dim"),
    StepStatus.INFO: ("·", "dim"),
}


def targets(d: DeviceStatus) -> list[str]:
    """The modes the GPU can be switched to: every mode but the one it is steady in."""
    gpu = d.gpu
    if gpu is None:
        return []
    steady = {"MINING": "mining", "AI_RUNNING": "ai", "IDLE": "idle"}.get(gpu.state)
    return [m for m in MODES if m != steady]


def default_target(d: DeviceStatus, row: DeviceEarnings | None) -> str | None:
    """The target the earnings model would pick (its other mode), else the first offered."""
    offered = targets(d)
    if row is not None and row.other_mode in offered:
        return row.other_mode
    return offered[0] if offered else None


def held(d: DeviceStatus) -> bool:
    """The GPU is in a holding state after a failure: retry or abort, not a new switch."""
    return d.gpu is not None and d.gpu.state in HOLDING


def vram_bytes(d: DeviceStatus) -> int | None:
    gpu = d.gpu
    return gpu.nvml.static.memory_total_bytes if gpu is not None and gpu.nvml else None


def job_for(d: DeviceStatus, jobs: list[Job]) -> Job | None:
    """The job a switch to AI would start here (the queue's own choice)."""
    return choose([j for j in jobs if j.state in WAITING], vram_bytes(d))


def now_text(d: DeviceStatus, row: DeviceEarnings | None) -> str:
    gpu = d.gpu
    if gpu is None:
        return MISSING
    parts = [f"{gpu.state.lower().replace('_', ' ')} (commanded {gpu.mode})"]
    if gpu.miner_hashrate_hs:
        parts.append(fmt_hashrate(gpu.miner_hashrate_hs))
    if gpu.power_w is not None:
        parts.append(f"{gpu.power_w:,.0f} W")
    if row is not None and row.profit_usd_per_day is not None:
        parts.append(f"profit {fmt_usd(row.profit_usd_per_day)}/day")
    return ", ".join(parts)


def estimate(row: DeviceEarnings | None, target: str) -> float | None:
    """The model's profit estimate (USD/day) for `target`; None when it has none."""
    if row is None or row.other_mode != target:
        return None
    return row.other_profit_usd_per_day


def job_text(d: DeviceStatus, target: str, jobs: list[Job] | None) -> str:
    if target != "ai":
        return "none (no AI job runs in this mode)"
    if jobs is None:
        return "reading the queue…"
    job = job_for(d, jobs)
    memory = vram_bytes(d)
    if job is None:
        fits = f" in {memory / GIB:.0f} GiB" if memory else ""
        return f"no queued job fits{fits}: the switch is refused until one is submitted"
    needs = f", needs {job.min_vram_bytes / 1e9:.0f} GB" if job.min_vram_bytes else ""
    return (
        f"job {job.id} {job.name} ({job.customer or 'no customer'}) at "
        f"${job.rate_usd_per_gpu_hour:.2f}/GPU-h, priority {job.priority}{needs}"
        + (f", {job.progress:.0%} done" if job.progress else "")
    )


def current_work_text(d: DeviceStatus) -> str:
    """What happens to the work on the GPU now, in one sentence."""
    gpu = d.gpu
    if gpu is None:
        return MISSING
    if gpu.state in HOLDING:
        return (
            f"it is held {gpu.state} after a failure ({gpu.error or 'no reason recorded'}); "
            "retry goes on towards its intended mode, abort back to the one it came from"
        )
    if gpu.job is not None:
        job = gpu.job
        return (
            f"job {job.id} {job.name} ({job.progress:.0%} done, ${job.earned_usd:,.2f} earned) "
            "is told to checkpoint and exit within its grace time, then requeued with its "
            "progress; its billing stops"
        )
    if gpu.miner_pid is not None:
        return (
            f"the miner (PID {gpu.miner_pid}) is stopped (SIGINT, then SIGTERM/SIGKILL if it "
            "lingers); its hashrate and pool earnings stop"
        )
    return "nothing runs on it now"


PreviewRow = tuple[str, str, str]
"""(label, text, Rich style)"""


def preview_rows(
    d: DeviceStatus, row: DeviceEarnings | None, target: str, jobs: list[Job] | None
) -> list[PreviewRow]:
    """The dialog's preview for one target: profit now, the estimate, the job, the work."""
    now = row.profit_usd_per_day if row is not None else None
    then = estimate(row, target)
    mode_now = row.mode if row is not None and row.mode else (d.gpu.mode if d.gpu else MISSING)
    rows: list[PreviewRow] = [
        (f"Profit now ({mode_now})", MISSING if now is None else f"{fmt_usd(now)}/day", "")
    ]
    if then is None:
        rows.append((f"Estimated in {target}", f"{MISSING} (no estimate for this mode)", "dim"))
    else:
        change = ""
        if now is not None:
            gain = then - now
            change = f"  ({'+' if gain >= 0 else ''}{fmt_usd(gain)}/day)"
        worse = now is not None and then < now
        rows.append(
            (f"Estimated in {target}", f"{fmt_usd(then)}/day{change}", "red" if worse else "")
        )
    rows.append(("Job that would run", job_text(d, target, jobs), ""))
    rows.append(("Current work", current_work_text(d), ""))
    return rows


def preview(
    d: DeviceStatus, row: DeviceEarnings | None, target: str, jobs: list[Job] | None
) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(width=19, style="bold", no_wrap=True)
    table.add_column()
    for label, text, style in preview_rows(d, row, target, jobs):
        table.add_row(label, Text(text, style=style))
    return table


def step_line(event: StepEvent) -> Text:
    mark, style = STATUS_MARK[event.status]
    text = Text()
    text.append(f"{mark} ", style=style)
    text.append(f"{event.step.value:<12}", style="bold")
    text.append(f" {event.message}")
    return text
