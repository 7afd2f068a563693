"""A simulated GPU rig for the workloads tests: the real NVML driver over the real pynvml binding
over the simulated NVML library (`simulators.nvml`), the simulated miner and AI job as real OS
processes (`simulators.gpu_miner`, `simulators.ai_job`), the real miner API reader, the real
SQLite state, audit log and action path.

`open_rig` writes a site config with one `[[gpus]]` entry per simulated GPU and yields a `Rig`;
`Rig.restart()` is a console restart (a new `Workloads` on the same state directory, the
workloads left running).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.actions import ActionPath, ActionRequest, ActionResult, Origin
from console.audit import AuditLog
from console.config import SiteConfig, load_config
from console.workloads.ports import PowerLimitTuner
from console.workloads.queue import Job
from console.workloads.service import Workloads
from drivers.gpu_reading import NvmlState
from drivers.nvml import NvmlDriver
from simulators.gpu_state import STATE_ENV, SiteInfo, create_site, load_site
from simulators.nvml import NvmlSim

ROGUE_JOB = Path(__file__).with_name("rogue_job.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def job_argv(*extra: str) -> list[str]:
    """The simulated AI job, fast: 10 ms steps, a checkpoint every 20; `extra` overrides."""
    return [
        sys.executable, "-m", "simulators.ai_job",
        "--checkpoint-dir", "{checkpoint_dir}", "--progress-file", "{progress_file}",
        "--total-steps", "100000", "--step-seconds", "0.01", "--checkpoint-every", "20",
        "--load-seconds", "0.05", "--checkpoint-seconds", "0.05", "--memory-bytes", str(8 << 30),
        *extra,
    ]  # fmt: skip


@dataclass
class Rig:
    root: Path
    sim_dir: Path
    site: SiteInfo
    config: SiteConfig
    driver: NvmlDriver
    audit: AuditLog
    actions: ActionPath
    workloads: Workloads
    closed: list[Workloads] = field(default_factory=list)

    def uuid(self, index: int) -> str:
        return self.site.gpus[index].uuid

    async def act(self, action: str, target: str | None = None, **params: Any) -> ActionResult:
        return await self.actions.perform(
            ActionRequest(
                action=action,
                target=target,
                params=params,
                actor="night-shift",
                origin=Origin.TUI,
                reason="test",
            )
        )

    async def switch(self, gpu: str, mode: str, **params: Any) -> ActionResult:
        return await self.act("gpu.switch", gpu, mode=mode, **params)

    async def submit(
        self, name: str = "train", *extra: str, argv: list[str] | None = None, **fields: Any
    ) -> Job:
        command = argv if argv is not None else job_argv(*extra)
        result = await self.act("job.submit", None, argv=command, name=name, **fields)
        assert result.ok, result.message
        job = await self.workloads.queue.get(int(result.detail["job_id"]))
        assert job is not None
        return job

    async def nvml(self) -> NvmlState:
        return await self.driver.sample()

    async def pids_on(self, index: int) -> set[int]:
        state = await self.nvml()
        reading = next(g for g in state.gpus if g.static.uuid == self.uuid(index))
        return {p.pid for p in (reading.sample.processes if reading.sample else ())}

    async def restart(self, *, start: bool = True) -> list[ActionResult]:
        """A console restart: forget every process handle (they keep running), then a new
        action path and `Workloads` over the same state directory."""
        await self.workloads.close()
        self.closed.append(self.workloads)
        self.actions = ActionPath(self.audit)
        self.workloads = Workloads(self.config, self.actions, self.driver)
        return await self.workloads.start() if start else []

    async def wait_for(self, predicate: Any, what: str, timeout_s: float = 30.0) -> None:
        """Poll an async predicate (a deadline for a hang, not a timing assertion)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not await predicate():
            assert loop.time() < deadline, f"gave up waiting for {what}"
            await asyncio.sleep(0.05)


def gpu_entry(
    name: str, uuid: str, *, initial_mode: str, port: int, miner_extra: Sequence[str] = ()
) -> str:
    argv = [
        sys.executable, "-m", "simulators.gpu_miner", "--api-port", "{api_port}",
        "--dag-seconds", "0.2", "--ramp-seconds", "0.1", *miner_extra,
    ]  # fmt: skip
    return (
        "[[gpus]]\n"
        f'name = "{name}"\n'
        f'uuid = "{uuid}"\n'
        f'initial_mode = "{initial_mode}"\n'
        f"miner_argv = {json.dumps(argv)}\n"
        f"miner_api_port = {port}\n"
        "miner_stop = [\n"
        '  { signal = "SIGINT", wait_s = 2.0 },\n'
        '  { signal = "SIGTERM", wait_s = 2.0 },\n'
        '  { signal = "SIGKILL", wait_s = 5.0 },\n'
        "]\n"
    )


WORKLOADS_TABLE = """
[workloads]
min_dwell_s = {min_dwell_s}
verify_free_timeout_s = 4.0
verify_poll_s = 0.1
launch_confirm_timeout_s = 20.0
miner_ready_timeout_s = 20.0
job_grace_s = 10.0
job_kill_wait_s = 3.0
watch_interval_s = 0.2
"""


@contextlib.asynccontextmanager
async def open_rig(
    root: Path,
    *,
    modes: Sequence[str] = ("mining", "idle"),
    models: Sequence[str] = ("rtx4090", "rtx3090"),
    min_dwell_s: float = 0.0,
    miner_extra: Sequence[Sequence[str]] = (),
    gpu_extra: str = "",
    tuner: bool = False,
    start: bool = True,
) -> AsyncIterator[Rig]:
    """The caller must have set `HASHPIVOT_SIM_GPU_STATE` to `root / "sim"` (monkeypatch), so
    the workloads it launches find the simulated site. A `root` that already holds a rig (a
    console that was killed) is opened again as it is: same GPUs, same config, same state."""
    sim_dir = root / "sim"
    path = root / "site.toml"
    if (sim_dir / "site.json").exists():
        site = load_site(sim_dir)
    else:
        site = create_site(sim_dir, list(models))
        text = f'[site]\nname = "rig"\nstate_dir = "{root / "state"}"\n'
        text += WORKLOADS_TABLE.format(min_dwell_s=min_dwell_s)
        for index, (gpu, mode) in enumerate(zip(site.gpus, modes, strict=True)):
            extra = miner_extra[index] if index < len(miner_extra) else ()
            text += gpu_entry(
                f"g{index}", gpu.uuid, initial_mode=mode, port=free_port(), miner_extra=extra
            )
            text += gpu_extra
        path.write_text(text)
    config = load_config(path)
    driver = NvmlDriver(library=NvmlSim(sim_dir), tick_deadline_s=5.0, xid_events=False)
    await driver.start()
    audit = AuditLog.in_state_dir(config.site.state_path)
    actions = ActionPath(audit)
    workloads = Workloads(config, actions, driver, tuner=PowerLimitTuner(driver) if tuner else None)
    rig = Rig(root, sim_dir, site, config, driver, audit, actions, workloads)
    try:
        if start:
            for result in await workloads.start():
                assert result.ok, result.message
        yield rig
    finally:
        await rig.workloads.stop_all()
        await rig.workloads.close()
        await driver.close()
        audit.close()


def sim_env(monkeypatch: Any, root: Path) -> None:
    monkeypatch.setenv(STATE_ENV, str(root / "sim"))
