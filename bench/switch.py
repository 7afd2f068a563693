"""Switch benchmark: how long a GPU takes to go mining → AI and back, step by step, on the
simulated site.

Everything is real except the GPU: the NVML driver over the real pynvml binding over the
simulated NVML library, the simulated miner (`simulators.gpu_miner`, T-Rex API) and AI job
(`simulators.ai_job`) as OS processes, the SQLite queue and intent, the audit log and the
action path. Each round submits a job, switches one GPU mining → AI (stop the miner, verify
free, launch, confirm the job's PID on that GPU only) and back AI → mining (checkpoint and
requeue the job, verify free, start the miner, wait for hashrate > 0).

The figures are wall-clock per step, from the switch's own step events. Most of the time is
the workloads' own behaviour, set here to the simulators' defaults unless `--fast`:
the miner's DAG build (8 s) and ramp (3 s), the job's model load (1 s) and checkpoint write
(0.2 s); and NVML's view of a process appearing or leaving (the simulator refreshes every
0.1 s) seen through the switch's poll interval (`--poll`, the site default 0.5 s). The
console's own overhead is what is left: the `console` column (total minus stop, verify,
confirm and steady waits).

    ./dev bench switch --rounds 5
    ./dev bench switch --rounds 10 --fast --poll 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.actions import ActionPath, ActionRequest, Origin  # noqa: E402
from console.audit import AuditLog  # noqa: E402
from console.config import load_config  # noqa: E402
from console.workloads.events import StepEvent  # noqa: E402
from console.workloads.service import Workloads  # noqa: E402
from drivers.nvml import NvmlDriver  # noqa: E402
from simulators.gpu_state import STATE_ENV, create_site  # noqa: E402
from simulators.nvml import NvmlSim  # noqa: E402

WAITS = ("stop", "verify", "confirm", "steady")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def site_config(root: Path, uuid: str, *, fast: bool, poll_s: float) -> Path:
    miner = [sys.executable, "-m", "simulators.gpu_miner", "--api-port", "{api_port}"]
    if fast:
        miner += ["--dag-seconds", "0.2", "--ramp-seconds", "0.1"]
    text = (
        f'[site]\nname = "bench"\nstate_dir = "{root / "state"}"\n'
        f"[workloads]\nmin_dwell_s = 0\nverify_poll_s = {poll_s}\n"
        f'[[gpus]]\nname = "g0"\nuuid = "{uuid}"\nminer_argv = {json.dumps(miner)}\n'
        f"miner_api_port = {free_port()}\n"
    )
    path = root / "site.toml"
    path.write_text(text)
    return path


def job_argv(fast: bool) -> list[str]:
    argv = [
        sys.executable, "-m", "simulators.ai_job", "--checkpoint-dir", "{checkpoint_dir}",
        "--progress-file", "{progress_file}", "--total-steps", "100000",
        "--step-seconds", "0.05", "--memory-bytes", str(16 << 30),
    ]  # fmt: skip
    if fast:
        argv += ["--load-seconds", "0.05", "--checkpoint-seconds", "0.02"]
    return argv


def phases(steps: list[StepEvent]) -> dict[str, float]:
    """Seconds per phase, from the step events' timestamps."""
    at: dict[tuple[str, str], float] = {}
    for e in steps:
        at.setdefault((e.step.value, e.status.value), e.at)
    first = steps[0].at
    last = steps[-1].at

    def span(step: str) -> float:
        start, end = at.get((step, "started")), at.get((step, "ok"))
        return end - start if start is not None and end is not None else 0.0

    stop = span("stop_miner") + span("preempt_job")
    out = {
        "stop": stop,
        "verify": span("verify_free"),
        "confirm": span("confirm"),
        "steady": span("steady"),
        "total": last - first,
    }
    out["console"] = out["total"] - sum(out[k] for k in WAITS)
    return out


async def run(rounds: int, fast: bool, poll_s: float) -> dict[str, list[dict[str, float]]]:
    with tempfile.TemporaryDirectory(prefix="hashpivot-bench-switch-") as tmp:
        root = Path(tmp)
        site = create_site(root / "sim", ["rtx4090"])
        os.environ[STATE_ENV] = str(root / "sim")
        config = load_config(site_config(root, site.gpus[0].uuid, fast=fast, poll_s=poll_s))
        driver = NvmlDriver(library=NvmlSim(root / "sim"), xid_events=False)
        await driver.start()
        audit = AuditLog.in_state_dir(config.site.state_path)
        actions = ActionPath(audit)
        workloads = Workloads(config, actions, driver)
        results: dict[str, list[dict[str, float]]] = {"mining → ai": [], "ai → mining": []}
        seen: list[StepEvent] = []

        def of(detail: dict[str, object]) -> list[StepEvent]:
            return [e for e in seen if e.switch_id == detail["switch_id"]]

        try:
            for result in await workloads.start():
                assert result.ok, result.message

            async def act(action: str, target: str | None, **params: object) -> dict[str, object]:
                result = await actions.perform(
                    ActionRequest(
                        action=action,
                        target=target,
                        params=dict(params),
                        actor="bench",
                        origin=Origin.CLI,
                    )
                )
                if not result.ok:
                    raise SystemExit(f"{action} failed: {result.message}")
                return result.detail

            with workloads.events.listen(seen.append):
                for _ in range(rounds):
                    await act("job.submit", None, argv=job_argv(fast), name="bench")
                    detail = await act("gpu.switch", "g0", mode="ai")
                    results["mining → ai"].append(phases(of(detail)))
                    detail = await act("gpu.switch", "g0", mode="mining")
                    results["ai → mining"].append(phases(of(detail)))
                    for job in await workloads.jobs():
                        if job.state.value == "requeued":
                            await act("job.cancel", str(job.id))
        finally:
            await workloads.stop_all()
            await workloads.close()
            await driver.close()
            audit.close()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fast", action="store_true", help="short DAG, ramp, load, checkpoint")
    parser.add_argument("--poll", type=float, default=0.5, help="verify/confirm poll interval")
    args = parser.parse_args()
    results = asyncio.run(run(args.rounds, args.fast, args.poll))
    mode = "fast simulator timings" if args.fast else "simulator default timings"
    print(f"GPU switch latency, {args.rounds} rounds, {mode}, poll {args.poll:g} s")
    print(f"{'direction':<13} {'phase':<8} {'median':>8} {'max':>8}")
    for direction, rows in results.items():
        for phase in ("total", *WAITS, "console"):
            values = [r[phase] for r in rows]
            print(
                f"{direction:<13} {phase:<8} {statistics.median(values):>7.2f}s "
                f"{max(values):>7.2f}s"
            )


if __name__ == "__main__":
    main()
