"""A misbehaving AI job for the switch tests: it ignores `CUDA_VISIBLE_DEVICES` and opens a
second GPU as well (the classic index mix-up, reference §7.2). A real process registering on
the simulated NVML site through `simulators.gpu_state`, like `simulators.ai_job` does.

    python rogue_job.py OTHER_GPU_UUID
"""

from __future__ import annotations

import os
import sys
import time

from simulators.gpu_state import STATE_ENV, Registration, load_site, visible_gpu

state_dir = os.environ[STATE_ENV]
mine = visible_gpu(load_site(state_dir), os.environ)
claims = [
    Registration(state_dir, uuid, name="rogue", used_memory_bytes=1 << 30, util_gpu_pct=90.0)
    for uuid in (mine.uuid, sys.argv[1])
]
print(f"holding {mine.uuid} and {sys.argv[1]}", flush=True)
while True:
    time.sleep(0.1)
