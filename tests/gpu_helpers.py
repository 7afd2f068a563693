"""Shared helpers for the GPU tests: a manual clock, resetting the binding, and the fake workload
processes started as real OS processes. The fixtures live in `tests.nvml_fixtures`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pynvml

from simulators import gpu_state

REPO = Path(__file__).resolve().parents[1]
ALL_MODELS = ("rtx3090", "rtx4090", "a100-80gb", "h100", "l40s")


class ManualClock:
    """An injectable monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def reset_binding() -> None:
    """Leave pynvml as an untouched import would: no library, no cached symbols."""
    with pynvml.libLoadLock:
        pynvml.nvmlLib = None
        pynvml._nvmlGetFunctionPointer_cache.clear()
        pynvml._nvmlLib_refcount = 0


def sim_env(state_dir: Path, uuid: str) -> dict[str, str]:
    return dict(
        os.environ,
        **{
            gpu_state.STATE_ENV: str(state_dir),
            "CUDA_VISIBLE_DEVICES": uuid,
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "PYTHONUNBUFFERED": "1",
        },
    )


async def start_module(module: str, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def read_until(proc: asyncio.subprocess.Process, needle: str, timeout: float = 20.0) -> str:
    """Read the process's output until a line containing `needle`; returns that line."""
    assert proc.stdout is not None

    async def scan() -> str:
        seen = []
        while True:
            raw = await proc.stdout.readline()  # type: ignore[union-attr]
            if not raw:
                raise AssertionError(f"process exited before printing {needle!r}: {seen}")
            line = raw.decode().rstrip()
            seen.append(line)
            if needle in line:
                return line

    return await asyncio.wait_for(scan(), timeout)


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy (a failure bound, not a timing claim)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last: Any = None
    while loop.time() < end:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
