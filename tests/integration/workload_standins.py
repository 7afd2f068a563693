"""Stand-in GPU workloads for the switch tests: a miner and an AI job as real OS processes.

STAND-INS ONLY until `simulators/gpu_miner.py` and `simulators/ai_job.py` (branch gpu-hw) land;
the lead replaces them with those. They speak the real protocols: each registers on the GPU
that `CUDA_VISIBLE_DEVICES` selects in the simulated NVML site (`HASHPIVOT_SIM_GPU_STATE`,
through `simulators.gpu_state`), so the real NVML driver sees its PID and memory; the miner
serves a T-Rex-style `GET /summary`; the job follows the console's job contract (progress
file, checkpoint directory, checkpoint signal → checkpoint and exit 0).

    python workload_standins.py miner --port N [--ignore SIGINT ...] [--warmup-s S]
    python workload_standins.py job [--steps N] [--step-s S] [--ignore SIGTERM ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from simulators.gpu_state import STATE_ENV, Registration, load_site, visible_gpu

MiB = 1024 * 1024
stop_requested = threading.Event()


def register(name: str, hold_mib: int) -> Registration:
    state_dir = os.environ[STATE_ENV]
    gpu = visible_gpu(load_site(state_dir), os.environ)
    return Registration(
        state_dir, gpu.uuid, name=name, used_memory_bytes=hold_mib * MiB, util_gpu_pct=99.0
    )


def install(ignore: list[str], sigs: tuple[str, ...]) -> None:
    def polite(signum: int, _frame: object) -> None:
        print(f"got {signal.Signals(signum).name}", flush=True)
        stop_requested.set()

    for name in sigs:
        sig = signal.Signals[name]
        signal.signal(sig, signal.SIG_IGN if name in ignore else polite)


def miner(args: argparse.Namespace) -> None:
    install(args.ignore, ("SIGINT", "SIGTERM"))
    register("t-rex", args.hold_mib)
    started = time.monotonic()

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            warm = time.monotonic() - started >= args.warmup_s
            hashrate = 61_500_000 if warm else 0
            body = json.dumps(
                {"hashrate": hashrate, "gpus": [{"gpu_id": 0, "hashrate": hashrate}]}
            ).encode()
            self.send_response(200 if self.path == "/summary" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"mining, API on 127.0.0.1:{args.port}", flush=True)
    while not stop_requested.wait(0.05):
        pass
    server.shutdown()


def job(args: argparse.Namespace) -> None:
    install(args.ignore, (args.signal,))
    ckpt_dir = Path(os.environ["HASHPIVOT_CHECKPOINT_DIR"])
    progress_file = Path(os.environ["HASHPIVOT_PROGRESS_FILE"])
    ckpt = ckpt_dir / "ckpt.json"
    step = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    print(f"resuming at step {step}", flush=True)
    if args.crash is not None:
        print("CUDA error: an illegal memory access was encountered", flush=True)
        sys.exit(args.crash)
    register("python", args.hold_mib)
    for uuid in args.also_gpu:  # a job that ignores CUDA_VISIBLE_DEVICES and opens another GPU
        Registration(os.environ[STATE_ENV], uuid, name="python", used_memory_bytes=MiB)

    def save(path: Path, data: dict[str, object]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    while step < args.steps:
        if stop_requested.is_set():
            save(ckpt, {"step": step})
            save(progress_file, {"progress": step / args.steps})
            print(f"checkpointed at step {step}", flush=True)
            return
        time.sleep(args.step_s)
        step += 1
        if step % args.ckpt_every == 0:  # periodic checkpoints: a SIGKILL loses little
            save(ckpt, {"step": step})
        save(progress_file, {"progress": step / args.steps})
    save(ckpt, {"step": step})
    print("finished", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="kind", required=True)
    m = sub.add_parser("miner")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--warmup-s", type=float, default=0.3)
    m.add_argument("--hold-mib", type=int, default=4000)
    m.add_argument("--ignore", action="append", default=[])
    j = sub.add_parser("job")
    j.add_argument("--steps", type=int, default=100_000)
    j.add_argument("--step-s", type=float, default=0.01)
    j.add_argument("--hold-mib", type=int, default=12_000)
    j.add_argument("--signal", default="SIGTERM")
    j.add_argument("--ckpt-every", type=int, default=20)
    j.add_argument("--crash", type=int, default=None, help="exit with this code at start")
    j.add_argument("--also-gpu", action="append", default=[], help="also open this GPU UUID")
    j.add_argument("--ignore", action="append", default=[])
    args = parser.parse_args()
    if args.kind == "miner":
        miner(args)
    else:
        job(args)
    sys.exit(0)


if __name__ == "__main__":
    main()
