"""A fake AI training job: a real OS process that holds a simulated GPU and checkpoints.

    HASHPIVOT_SIM_GPU_STATE=<dir> CUDA_VISIBLE_DEVICES=<GPU UUID> \\
        python -m simulators.ai_job --checkpoint-dir DIR [--total-steps 1000]
            [--step-seconds 0.5] [--checkpoint-every 50] [--checkpoint-signal TERM]
            [--ignore-signal] [--memory-bytes N] [--load-seconds 1] [--checkpoint-seconds 0.2]
            [--progress-file PATH] [--name NAME]

It keeps the AI-job contract the console relies on (reference §7.1, Slurm-style preemption):

* it finds its GPU as CUDA would (``CUDA_VISIBLE_DEVICES``) and exits 1 with CUDA's message
  when there is none, or when the GPU has not enough free memory ("out of memory");
* it loads its model (memory grows over ``--load-seconds``), then trains: each step takes
  ``--step-seconds`` at high utilisation;
* it resumes from ``<checkpoint-dir>/checkpoint.json`` when one exists (same directory, new
  process), so a preempted job continues where it stopped;
* it writes a checkpoint every ``--checkpoint-every`` steps, and on the checkpoint signal
  (``--checkpoint-signal``, SIGTERM by default): finish writing, then exit 0. With
  ``--ignore-signal`` it logs the signal and carries on (a job that must be killed);
* progress goes to stdout (its log) and to ``--progress-file`` (default
  ``<checkpoint-dir>/progress.json``): state, step, total, progress fraction, last checkpoint;
* when all steps are done it writes a final checkpoint, marks itself done and exits 0.

Files are written atomically (temporary file + rename), so a reader never sees half a JSON
document, and a SIGKILL never corrupts the last good checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulators import gpu_state

MIB = 1 << 20
SLICE_S = 0.02
"""Granularity of the step sleep: how fast a signal is noticed."""


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


class Job:
    def __init__(self, args: argparse.Namespace, state_dir: str, gpu: gpu_state.SiteGpu) -> None:
        self.args = args
        self.state_dir = state_dir
        self.gpu = gpu
        self.ckpt_dir = Path(args.checkpoint_dir)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_path = self.ckpt_dir / "checkpoint.json"
        self.progress_path = (
            Path(args.progress_file) if args.progress_file else self.ckpt_dir / "progress.json"
        )
        self.step = 0
        self.last_checkpoint_step: int | None = None
        self.signalled: str | None = None
        self.started = time.time()
        self.state = "loading"

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {self.args.name}: {text}", flush=True)

    def on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.args.ignore_signal:
            self.log(f"{name} received and ignored")
            return
        self.signalled = name

    def resume(self) -> None:
        if not self.ckpt_path.exists():
            self.log(f"starting fresh: {self.args.total_steps} steps")
            return
        doc = json.loads(self.ckpt_path.read_text())
        self.step = int(doc["step"])
        self.last_checkpoint_step = self.step
        self.log(f"resuming from checkpoint at step {self.step}/{self.args.total_steps}")

    def write_progress(self) -> None:
        total = self.args.total_steps
        _atomic_json(
            self.progress_path,
            {
                "pid": os.getpid(),
                "name": self.args.name,
                "gpu_uuid": self.gpu.uuid,
                "state": self.state,
                "step": self.step,
                "total_steps": total,
                "progress": self.step / total if total else 1.0,
                "last_checkpoint_step": self.last_checkpoint_step,
                "started_at": self.started,
                "updated_at": time.time(),
            },
        )

    def checkpoint(self, why: str) -> None:
        self.state = "checkpointing"
        self.write_progress()
        # Saving weights takes a while; it is what the console's grace period has to cover.
        time.sleep(self.args.checkpoint_seconds)
        _atomic_json(
            self.ckpt_path,
            {
                "name": self.args.name,
                "step": self.step,
                "total_steps": self.args.total_steps,
                "written_at": time.time(),
            },
        )
        self.last_checkpoint_step = self.step
        self.log(f"checkpoint saved at step {self.step} ({why})")

    def sleep(self, seconds: float) -> bool:
        """Sleep in slices; False as soon as the checkpoint signal has arrived."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.signalled:
                return False
            time.sleep(min(SLICE_S, left))
        return not self.signalled

    def run(self) -> int:
        self.resume()
        self.write_progress()
        try:
            reg = gpu_state.Registration(
                self.state_dir,
                self.gpu.uuid,
                name=self.args.name,
                used_memory_bytes=300 * MIB,
                util_gpu_pct=5.0,
                power_intensity=1.1,
            )
            steps = 4
            for i in range(1, steps + 1):
                reg.update(used_memory_bytes=self.args.memory_bytes * i // steps)
                if not self.sleep(self.args.load_seconds / steps):
                    break
        except gpu_state.OutOfMemory as exc:
            self.log(f"CUDA error: {exc}")
            self.state = "failed"
            self.write_progress()
            return 1
        reg.update(util_gpu_pct=self.args.util_pct, util_memory_pct=self.args.util_pct * 0.6)
        self.state = "running"
        self.log(f"training on {self.gpu.uuid} from step {self.step}")
        report_every = max(1, self.args.total_steps // 20)
        while self.step < self.args.total_steps:
            if not self.sleep(self.args.step_seconds):
                break
            self.step += 1
            if self.step % report_every == 0:
                self.log(f"step {self.step}/{self.args.total_steps}")
            self.write_progress()
            if self.step % self.args.checkpoint_every == 0 and self.step < self.args.total_steps:
                self.checkpoint("periodic")
                self.state = "running"
        if self.signalled:
            self.log(f"{self.signalled} received: checkpointing before exit")
            self.checkpoint(self.signalled)
            self.state = "preempted"
            self.write_progress()
            self.log("exiting after checkpoint")
            return 0
        self.checkpoint("final")
        self.state = "done"
        self.write_progress()
        self.log("training complete")
        return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulators.ai_job", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--name", default="train")
    p.add_argument("--total-steps", type=int, default=1000)
    p.add_argument("--step-seconds", type=float, default=0.5)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--checkpoint-seconds", type=float, default=0.2)
    p.add_argument(
        "--checkpoint-signal", default="TERM", help="signal name without SIG: TERM, USR1, INT, ..."
    )
    p.add_argument("--ignore-signal", action="store_true")
    p.add_argument("--memory-bytes", type=int, default=8 << 30)
    p.add_argument("--load-seconds", type=float, default=1.0)
    p.add_argument("--util-pct", type=float, default=97.0)
    p.add_argument("--progress-file", default=None)
    args = p.parse_args(argv)
    if args.total_steps < 0 or args.checkpoint_every < 1:
        p.error("--total-steps must be >= 0 and --checkpoint-every >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    state_dir = os.environ.get(gpu_state.STATE_ENV)
    if not state_dir:
        print(f"error: {gpu_state.STATE_ENV} is not set (the simulated GPU site)", file=sys.stderr)
        return 2
    try:
        sig = signal.Signals[f"SIG{args.checkpoint_signal.upper().removeprefix('SIG')}"]
    except KeyError:
        print(f"error: unknown signal {args.checkpoint_signal!r}", file=sys.stderr)
        return 2
    try:
        gpu = gpu_state.visible_gpu(gpu_state.load_site(state_dir), os.environ)
    except gpu_state.NoCudaDevice as exc:
        print(f"CUDA error: {exc}", file=sys.stderr, flush=True)
        return 1
    job = Job(args, state_dir, gpu)
    signal.signal(sig, job.on_signal)
    return job.run()


if __name__ == "__main__":
    sys.exit(main())
