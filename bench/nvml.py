"""NVML sampling cost: CPU per GPU per tick, through the real nvidia-ml-py binding.

A simulated site of `--gpus` GPUs (the five models in turn), half of them running a
registered process, is polled by `drivers.nvml.NvmlDriver` in a closed loop of `--ticks`
ticks (each tick = one `sample()`: every field of every GPU, in one executor hop). CPU time is
the whole process's (event loop, NVML worker thread, XID thread), divided by ticks and GPUs.

Two library set-ups, so the figure can be read both ways:

- `sim`      the NVML simulator as the demo runs it: state directory re-read every 0.1 s per
             GPU, physics on the real clock. Includes the simulator's own cost (directory
             scans, physics integration), which a real libnvidia-ml does not have.
- `frozen`   the same simulator with its state directory and physics frozen (no re-reads, a
             clock that stands still): what is left is the driver plus the binding's ctypes
             marshalling plus a Python function per C call — an upper bound for the
             driver's own share. Real NVML calls are C (microseconds to milliseconds on real
             boards, unmeasured here: reference §9).

`--split` profiles the `frozen` poll (the worker's blocking function, run on this thread so
cProfile sees it) and prints where its CPU goes: driver, binding, simulator, C builtins.

    ./dev bench nvml --gpus 8 --ticks 300
    ./dev bench nvml --gpus 8 --ticks 100 --split
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.nvml import NvmlDriver  # noqa: E402
from simulators import gpu_state  # noqa: E402
from simulators.nvml import NvmlSim  # noqa: E402

MODELS = ("rtx3090", "rtx4090", "a100-80gb", "h100", "l40s")


async def run(mode: str, gpus: int, ticks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        site = gpu_state.create_site(d, [MODELS[i % len(MODELS)] for i in range(gpus)])
        for g in site.gpus[::2]:
            gpu_state.Registration(
                d,
                g.uuid,
                name="bench",
                used_memory_bytes=4 << 30,
                util_gpu_pct=100,
                util_memory_pct=80,
            )
        if mode == "frozen":
            frozen_at = time.monotonic()
            clock: Callable[[], float] = lambda: frozen_at  # noqa: E731
            sim = NvmlSim(d, clock=clock, view_ttl_s=float("inf"))
        else:
            sim = NvmlSim(d)
        driver = NvmlDriver(library=sim)
        state = await driver.start()
        assert state.available and len(state.gpus) == gpus
        for _ in range(5):  # warm-up: caches, first-call symbol lookups
            await driver.sample()
        calls_before = sum(sim.calls.values())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(ticks):
            state = await driver.sample()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        calls = sum(sim.calls.values()) - calls_before
        assert all(g.sample is not None for g in state.gpus)
        sim.close()
        await driver.close()
    return {
        "cpu_ms_per_tick": cpu / ticks * 1e3,
        "cpu_us_per_gpu_tick": cpu / ticks / gpus * 1e6,
        "wall_ms_per_tick": wall / ticks * 1e3,
        "calls_per_gpu_tick": calls / ticks / gpus,
        "cpu_us_per_call": cpu / calls * 1e6,
    }


async def split(gpus: int, ticks: int) -> dict[str, float]:
    """Share of the frozen poll's CPU per layer, from cProfile's own-time per function."""
    from drivers.nvml import _Job  # private: this measures the worker's blocking hop itself

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        site = gpu_state.create_site(d, [MODELS[i % len(MODELS)] for i in range(gpus)])
        for g in site.gpus[::2]:
            gpu_state.Registration(
                d,
                g.uuid,
                name="bench",
                used_memory_bytes=4 << 30,
                util_gpu_pct=100,
                util_memory_pct=80,
            )
        frozen_at = time.monotonic()
        sim = NvmlSim(d, clock=lambda: frozen_at, view_ttl_s=float("inf"))
        driver = NvmlDriver(library=sim, xid_events=False)
        await driver.start()
        targets = driver._gpus
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(ticks):
            driver._poll_blocking(_Job(), targets)
        prof.disable()
        sim.close()
        await driver.close()
    shares: dict[str, float] = {}
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (filename, _line, _fn), (_cc, _nc, own, _cum, _callers) in stats.items():
        layer = (
            "simulator"
            if "/simulators/" in filename
            else "binding (pynvml)"
            if filename.endswith("pynvml.py")
            else "driver"
            if "/drivers/" in filename
            else "C builtins (ctypes, msgspec...)"
            if filename == "~"
            else "stdlib/other"
        )
        shares[layer] = shares.get(layer, 0.0) + own
    total = sum(shares.values())
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--ticks", type=int, default=300)
    p.add_argument("--modes", default="sim,frozen")
    p.add_argument("--split", action="store_true", help="profile the frozen poll by layer")
    args = p.parse_args()
    print(
        f"NVML sampling, {args.gpus} simulated GPUs, {args.ticks} ticks, "
        f"pid {os.getpid()}, Python {sys.version.split()[0]}"
    )
    print(
        f"{'mode':8} {'CPU/tick':>10} {'CPU/GPU/tick':>13} {'wall/tick':>10} "
        f"{'calls/GPU/tick':>15} {'CPU/call':>9}"
    )
    for mode in args.modes.split(","):
        r = asyncio.run(run(mode, args.gpus, args.ticks))
        print(
            f"{mode:8} {r['cpu_ms_per_tick']:8.2f}ms {r['cpu_us_per_gpu_tick']:11.0f}µs "
            f"{r['wall_ms_per_tick']:8.2f}ms {r['calls_per_gpu_tick']:15.1f} "
            f"{r['cpu_us_per_call']:7.1f}µs"
        )
    if args.split:
        print("where the frozen poll's CPU goes (cProfile own time; profiling inflates it):")
        for layer, share in asyncio.run(split(args.gpus, args.ticks)).items():
            print(f"  {layer:34} {share:6.1%}")


if __name__ == "__main__":
    main()
