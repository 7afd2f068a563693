"""The AI queue as table rows, without widgets: columns, order and cell text of each job.

Order: what is on a GPU now first (starting, running, preempting), then what waits (the
order the queue would start them: priority, then age), then what ended (most recent first).
Runtime and earnings of a running job include the run in progress, at the snapshot's clock.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from console.model import MISSING, fmt_usd
from console.tui.detail_fields import fmt_duration
from console.tui.widgets.virtual_table import Cell, PlainColumn, TableColumn
from console.workloads.queue import ACTIVE, WAITING, Job, JobState

COLUMNS = (
    PlainColumn("id", "Id", 5, True, 0),
    PlainColumn("name", "Name", 16, False, 1),
    PlainColumn("customer", "Customer", 12, False, 8),
    PlainColumn("rate", "$/GPU-h", 9, True, 6),
    PlainColumn("priority", "Prio", 4, True, 7),
    PlainColumn("state", "State", 10, False, 2),
    PlainColumn("gpu", "GPU", 10, False, 5),
    PlainColumn("runtime", "Runtime", 10, True, 9),
    PlainColumn("progress", "Done", 6, True, 3),
    PlainColumn("earned", "Earned", 9, True, 4),
)

STATE_STYLE = {
    JobState.RUNNING: "green",
    JobState.STARTING: "cyan",
    JobState.PREEMPTING: "yellow",
    JobState.QUEUED: "",
    JobState.REQUEUED: "",
    JobState.DONE: "dim",
    JobState.CANCELLED: "dim",
    JobState.FAILED: "bold red",
}


def order(jobs: Sequence[Job]) -> list[Job]:
    def key(j: Job) -> tuple[int, float, float, int]:
        if j.state in ACTIVE:
            return (0, 0.0, j.submitted_at, j.id)
        if j.state in WAITING:
            return (1, -j.priority, j.submitted_at, j.id)
        return (2, 0.0, -(j.finished_at or j.updated_at), -j.id)

    return sorted(jobs, key=key)


def cells(job: Job, gpu_names: Mapping[str, str], now: float) -> dict[str, Cell]:
    gpu = MISSING
    if job.gpu_uuid is not None:
        gpu = gpu_names.get(job.gpu_uuid, job.gpu_uuid[:8])
    state = job.state.value + (" (cancel asked)" if job.cancel_requested else "")
    return {
        "id": (str(job.id), ""),
        "name": (job.name, ""),
        "customer": (job.customer or MISSING, ""),
        "rate": (f"${job.rate_usd_per_gpu_hour:,.2f}", ""),
        "priority": (str(job.priority), ""),
        "state": (state, STATE_STYLE.get(job.state, "")),
        "gpu": (gpu, ""),
        "runtime": (
            fmt_duration(job.runtime_s_at(now) if job.state in ACTIVE else job.runtime_s),
            "",
        ),
        "progress": (f"{job.progress:.0%}", ""),
        "earned": (
            fmt_usd(job.earned_usd_at(now) if job.state in ACTIVE else job.earned_usd),
            "",
        ),
    }


class JobsSource:
    """The queue as a `TableSource` for `VirtualTable`."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.gpu_names: Mapping[str, str] = {}
        self.now = 0.0
        self._cells: list[dict[str, Cell]] = []
        self._positions: dict[str, int] = {}

    def update(self, jobs: Sequence[Job], gpu_names: Mapping[str, str], now: float) -> None:
        self.jobs = order(jobs)
        self.gpu_names = gpu_names
        self.now = now
        self._cells = [cells(j, gpu_names, now) for j in self.jobs]
        self._positions = {str(j.id): i for i, j in enumerate(self.jobs)}

    def job(self, row_id: str) -> Job | None:
        position = self._positions.get(row_id)
        return None if position is None else self.jobs[position]

    def __len__(self) -> int:
        return len(self.jobs)

    def row_id(self, position: int) -> str:
        return str(self.jobs[position].id)

    def position_of(self, row_id: str) -> int | None:
        return self._positions.get(row_id)

    def row_version(self, position: int) -> Hashable:
        return tuple(self._cells[position].values())

    def row_cells(self, position: int, columns: Sequence[TableColumn]) -> list[Cell]:
        row = self._cells[position]
        return [row[c.key] for c in columns]
