"""GPUs in the console, driven through Pilot against a real site on simulated GPUs: the NVML
simulator behind the real pynvml binding, real miner and AI job processes, the real switch
state machine and job queue, everything sent through the site's action path."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from console.model import Observed
from console.site import Site
from console.tui.app import HashpivotApp
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.gpu_switch import GpuSwitchScreen
from console.tui.screens.jobs import JobFormScreen, JobsScreen, PriorityScreen
from console.tui.widgets.device_sections import GpuWorkloadSection
from console.tui.widgets.live_table import LiveTable
from console.workloads.queue import JobState
from drivers.processes import ProcessIdentity
from tests.tui.pilot_helpers import open_detail, wait_until
from tests.tui.site_fixtures import DETAIL_DEVICE, GPU_AI, GPU_MINING, FixedSite

SWITCH_POLLS = 800  # × 50 ms of app time: a switch starts and stops real processes


def observed(app: HashpivotApp, name: str) -> Observed | None:
    snap = app.last_snapshot
    d = next((d for d in snap.devices if d.device_id == name), None) if snap else None
    return None if d is None else d.observed


async def ready(pilot, app: HashpivotApp) -> None:  # type: ignore[no-untyped-def]
    """Until g0 hashes (its miner reports hashrate) and the table shows both GPUs."""
    await wait_until(
        pilot, lambda: observed(app, "g0") is Observed.HASHING, "g0 hashing", SWITCH_POLLS
    )
    await wait_until(pilot, lambda: app.fleet.table.row_count == 2, "two GPU rows")


async def open_switch(pilot, app: HashpivotApp, name: str) -> GpuSwitchScreen:  # type: ignore[no-untyped-def]
    assert app.fleet.table.move_cursor_to(name)
    await pilot.press("g")
    await wait_until(pilot, lambda: isinstance(app.screen, GpuSwitchScreen), "the switch dialog")
    screen = app.screen
    assert isinstance(screen, GpuSwitchScreen)
    await pilot.pause()
    return screen


async def test_gpu_rows_detail_and_switch_to_ai_and_back(gpu_site: Site) -> None:
    app = HashpivotApp(gpu_site, operator="night-shift")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        table = app.fleet.table
        await wait_until(
            pilot, lambda: table.cell_text("g0", "hashrate").endswith("MH/s"), "g0's hashrate"
        )
        assert table.cell_text("g1", "hashrate").endswith("% util")  # idle: utilisation
        assert table.cell_text("g0", "gain").startswith("$")  # a GPU has another mode

        # The detail: workload and the processes NVML sees (the miner's PID).
        detail = await open_detail(pilot, app, "g0")
        workload = detail.query_one(GpuWorkloadSection)
        await wait_until(pilot, lambda: bool(workload.fields), "the workload section")
        assert workload.value("gpu_state") == "MINING"
        pid = detail.device.gpu.miner_pid  # type: ignore[union-attr]
        processes = detail.query_one("#processes", LiveTable)
        await wait_until(pilot, lambda: processes.row_count >= 1, "the miner on the GPU")
        assert processes.cell_text(str(pid), "pid") == str(pid)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet")

        # g on the mining GPU: AI is the preselected target, with the queued job named.
        dialog = await open_switch(pilot, app, "g0")
        assert dialog.target == "ai"
        await wait_until(pilot, lambda: dialog.jobs is not None, "the queue")
        rows = {label: text for label, text, _ in _preview(dialog)}
        assert rows["Profit now (mining)"].endswith("/day")
        assert rows["Estimated in ai"].endswith(")")  # the estimate and its gain
        assert rows["Job that would run"].startswith("job 1 finetune (acme)")
        assert rows["Current work"].startswith(f"the miner (PID {pid}) is stopped")

        await pilot.press("y")
        await wait_until(pilot, lambda: dialog.phase == "done", "the switch to AI", SWITCH_POLLS)
        steps = [line.plain for line in dialog.step_lines]
        for step in ("precheck", "cordon", "stop_miner", "verify_free", "launch", "confirm"):
            assert any(line.startswith(f"✓ {step}") for line in steps), (step, steps)
        assert dialog.result is not None and dialog.result.ok
        await pilot.press("n")
        await wait_until(
            pilot, lambda: observed(app, "g0") is Observed.RUNNING_JOB, "the job", SWITCH_POLLS
        )

        # And back: from AI the dialog offers mining first; the job is checkpointed.
        dialog = await open_switch(pilot, app, "g0")
        assert dialog.target == "mining"
        rows = {label: text for label, text, _ in _preview(dialog)}
        assert rows["Current work"].startswith("job 1 finetune")
        await pilot.press("y")
        await wait_until(pilot, lambda: dialog.phase == "done", "back to mining", SWITCH_POLLS)
        await pilot.press("n")
        await wait_until(
            pilot, lambda: observed(app, "g0") is Observed.HASHING, "hashing", SWITCH_POLLS
        )
        entries = [e for _, e in await gpu_site.audit.recent(target="g0")]
        mine = [e for e in entries if e.actor == "night-shift"]
        assert [e.action for e in mine] == ["gpu.switch", "gpu.switch"]
        assert all(e.ok and e.origin == "tui" for e in mine)


def _preview(dialog: GpuSwitchScreen) -> list[tuple[str, str, str]]:
    from console.tui.gpu_switch_text import preview_rows

    assert dialog.target is not None
    return preview_rows(dialog.device, dialog.row, dialog.target, dialog.jobs)


async def test_a_failed_switch_shows_why_with_retry_and_abort(broken_gpu_site: Site) -> None:
    app = HashpivotApp(broken_gpu_site, operator="night-shift")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot, app)
        dialog = await open_switch(pilot, app, "g1")  # idle; its miner exits at once
        dialog.select_target("mining")
        await pilot.press("y")
        await wait_until(pilot, lambda: dialog.phase == "failed", "the failure", SWITCH_POLLS)
        assert dialog.result is not None and not dialog.result.ok
        assert "exited before it showed on the GPU" in dialog.result.message
        assert any(line.plain.startswith("✗ confirm") for line in dialog.step_lines)
        await wait_until(
            pilot, lambda: observed(app, "g1") is Observed.FAULTED, "g1 held", SWITCH_POLLS
        )

        # Closed and opened again on the held GPU, the dialog goes straight to why, with
        # retry and abort.
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet")
        dialog = await open_switch(pilot, app, "g1")
        assert dialog.phase == "failed"
        await pilot.press("r")  # retry: the same miner fails the same way
        await wait_until(
            pilot,
            lambda: dialog.result is not None and dialog.phase != "running",
            "the retry",
            SWITCH_POLLS,
        )
        assert dialog.phase == "failed"
        await pilot.press("a")  # abort: back to idle, where it came from
        await wait_until(pilot, lambda: dialog.phase == "done", "the abort", SWITCH_POLLS)
        await pilot.press("n")
        await wait_until(pilot, lambda: observed(app, "g1") is Observed.IDLE, "idle", SWITCH_POLLS)
        ops = [e.params.get("op") for _, e in await broken_gpu_site.audit.recent(target="g1")]
        assert ops[-2:] == ["retry", "abort"]
        dialog = await open_switch(pilot, app, "g1")  # idle again: a new switch, not a retry
        assert dialog.phase == "preview"
        await pilot.press("n")


async def test_jobs_screen_submit_reprioritise_and_cancel(gpu_site: Site) -> None:
    app = HashpivotApp(gpu_site, operator="night-shift")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        await pilot.press("j")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await wait_until(pilot, lambda: len(jobs.source) == 1, "the queued demo job")
        assert jobs.source.job("1") is not None

        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, JobFormScreen), "the form")
        form = app.screen
        assert isinstance(form, JobFormScreen)
        # A bad rate is refused by the form, with the field named; nothing is sent.
        for key, text in (
            ("name", "batch-7"),
            ("customer", "pixelworks"),
            ("rate", "lots"),
            ("vram", "8"),
            ("priority", "3"),
            ("command", "python -c pass"),
        ):
            form.query_one(f"#{key}", Input).value = text
        await pilot.click("#submit")
        await wait_until(pilot, lambda: form.error is not None, "the form's complaint")
        assert form.error is not None and form.error.startswith("rate:")
        await pilot.pause(0.2)  # the error line moved the buttons: let the layout settle
        form.query_one("#rate", Input).value = "2.25"
        form.query_one("#command", Input).focus()
        await pilot.press("enter")  # Enter in any field submits
        await wait_until(pilot, lambda: app.screen is jobs, "the form to close")
        await wait_until(pilot, lambda: len(jobs.source) == 2, "the new job")
        new = jobs.source.job("2")
        assert new is not None and new.name == "batch-7" and new.priority == 3
        assert new.rate_usd_per_gpu_hour == 2.25 and new.min_vram_bytes == 8_000_000_000
        assert jobs.source.row_id(0) == "2"  # waiting jobs in start order: priority first

        jobs.table.move_cursor_to("1")
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PriorityScreen), "priority")
        await pilot.press("ctrl+a", "ctrl+k", "9", "enter")
        await wait_until(
            pilot, lambda: (j := jobs.source.job("1")) is not None and j.priority == 9, "prio 9"
        )
        assert jobs.source.row_id(0) == "1"
        assert jobs.table.cursor_row_id == "1"  # the cursor stays on the job it was on

        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen is not jobs, "the confirmation")
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: (j := jobs.source.job("1")) is not None and j.state is JobState.CANCELLED,
            "job 1 cancelled",
        )
        actions = [
            (e.action, e.origin, e.ok)
            for _, e in await gpu_site.audit.recent()
            if e.actor == "night-shift"
        ]
        assert actions == [
            ("job.submit", "tui", True),
            ("job.reprioritise", "tui", True),
            ("job.cancel", "tui", True),
        ]


async def test_jobs_screen_retries_a_failed_job_after_confirmation(gpu_site: Site) -> None:
    app = HashpivotApp(gpu_site, operator="night-shift")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        assert gpu_site.gpus is not None
        queue = gpu_site.gpus.workloads.queue
        # The queued job ran somewhere and crashed: booked as the supervisor books an exit 3.
        claimed = await queue.claim_next("GPU-elsewhere", 80 * 2**30)
        assert claimed is not None and claimed.id == 1
        await queue.mark_launched(1, ProcessIdentity(pid=4242, create_time=1.0, cmdline=("x",)))
        await queue.end_run(1, JobState.FAILED, progress=0.4, error="exit code 3")

        await pilot.press("j")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await wait_until(
            pilot,
            lambda: (j := jobs.source.job("1")) is not None and j.state is JobState.FAILED,
            "the failed job",
        )
        jobs.table.move_cursor_to("1")
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen is not jobs, "the confirmation")
        shown = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "exit code 3" in shown  # why it failed, before the operator decides
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: (j := jobs.source.job("1")) is not None and j.state is JobState.REQUEUED,
            "job 1 back in line",
        )
        again = await queue.get(1)
        assert again is not None and again.attempts == 0 and again.progress == 0.4
        # A job that has not failed is not retried: a notification says why, nothing is sent.
        await pilot.press("r")
        await pilot.pause(0.2)
        assert app.screen is jobs
        retries = [
            (e.origin, e.ok, e.target)
            for _, e in await gpu_site.audit.recent()
            if e.action == "job.retry"
        ]
        assert retries == [("tui", True, "1")]


async def test_palette_offers_the_gpu_switch_and_the_jobs(gpu_site: Site) -> None:
    app = HashpivotApp(gpu_site, operator="night-shift")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        app.fleet.table.move_cursor_to("g1")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"switch gpu g1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, GpuSwitchScreen), "the dialog")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"jobs: the ai")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")


# --- screenshots of the fixed site ---------------------------------------------------------


async def open_gpu_switch(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.5)
    assert pilot.app.fleet.table.move_cursor_to(GPU_MINING)
    await pilot.press("g")
    await pilot.pause(0.6)


async def open_jobs(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.5)
    await pilot.press("j")
    await pilot.pause(0.6)


async def open_gpu_detail(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.5)
    from console.tui.messages import OpenDevice

    pilot.app.post_message(OpenDevice(GPU_AI))
    await pilot.pause(0.6)


def fixed_app(tmp_path: Path) -> HashpivotApp:
    return HashpivotApp(FixedSite(tmp_path), operator="night-shift")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gpu_switch_dialog(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fixed_app(tmp_path), terminal_size=size, run_before=open_gpu_switch)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_jobs_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fixed_app(tmp_path), terminal_size=size, run_before=open_jobs)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gpu_detail_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fixed_app(tmp_path), terminal_size=size, run_before=open_gpu_detail)


def test_fixed_site_keeps_its_detail_device() -> None:
    assert DETAIL_DEVICE != GPU_AI
