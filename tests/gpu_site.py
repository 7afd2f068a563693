"""The simulated GPU site config the GPU tests share: one `[[gpus]]` per mode on simulated
GPUs, simulated miners (fast DAG and ramp), one queued AI job "finetune" at 1.5 USD/GPU-hour,
and switch deadlines short enough for tests."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from simulators.gpu_state import _gpu_uuid

SEED = 7
MINER_ARGV = [
    "{python}", "-m", "simulators.gpu_miner", "--api-port", "{api_port}",
    "--dag-seconds", "0.2", "--ramp-seconds", "0.1",
]  # fmt: skip
BROKEN_MINER_ARGV = ["{python}", "-c", "import sys; sys.exit(3)"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gpu_site_toml(
    root: Path,
    *,
    site: str = "gpus",
    modes: tuple[str, ...] = ("mining", "idle"),
    models: tuple[str, ...] = ("rtx4090", "a100-80gb"),
    gpu_poll_interval_s: float = 0.2,
    mqtt: str | None = None,
    broken_miner_on: str | None = None,
) -> Path:
    """Write `<site>.toml` under `root` (state under `root/state`) and return its path.

    `mqtt` is the body of an `[mqtt]` table; `broken_miner_on` gives that GPU a miner that
    exits at once, so a switch to mining fails at launch."""
    text = f"""
[site]
name = "{site}"
state_dir = "{root / "state"}"

[host]
enabled = false

[poller]
gpu_poll_interval_s = {gpu_poll_interval_s}

[workloads]
min_dwell_s = 0
min_gain_fraction = 0
verify_free_timeout_s = 5
verify_poll_s = 0.1
launch_confirm_timeout_s = 20
miner_ready_timeout_s = 20
job_grace_s = 10
watch_interval_s = 0.2
"""
    if mqtt is not None:
        text += f"\n[mqtt]\n{mqtt}\n"
    text += f"""
[gpu_simulation]
models = {json.dumps(list(models))}
seed = {SEED}

[[gpu_simulation.jobs]]
name = "finetune"
customer = "acme"
rate_usd_per_gpu_hour = 1.5
min_vram_gb = 16
total_steps = 100000
"""
    for index, mode in enumerate(modes):
        name = f"g{index}"
        argv = BROKEN_MINER_ARGV if name == broken_miner_on else MINER_ARGV
        text += f"""
[[gpus]]
name = "{name}"
uuid = "{_gpu_uuid(SEED, index)}"
initial_mode = "{mode}"
miner_argv = {json.dumps(argv)}
miner_api_port = {free_port()}
"""
    path = root / f"{site}.toml"
    path.write_text(text)
    return path
