"""Process memory policy: keep freed large buffers for reuse instead of returning them to the OS,
and keep the long-lived start-up heap out of the cyclic garbage collector's way.

glibc's malloc serves every block above M_MMAP_THRESHOLD (128 KiB at first) with its own
`mmap` and gives it back with `munmap` when freed. Pricing a 100,000-device fleet creates and
drops a few dozen arrays of 0.8 MB per snapshot; with the default policy each one is a fresh
mapping whose pages fault in one by one (the kernel zeroes each 4 KiB page on first touch),
which cost several times the arithmetic (bench/economics.py: ~24 ms against ~8 ms per priced
snapshot at 100k). Raising both thresholds makes those blocks come from, and go back to,
malloc's heap, where the next snapshot finds them already mapped.

`keep_freed_buffers` is called once at process start by the `hashpivot` entry point (and the
benchmarks); a no-op where the C library is not glibc; never raises. `freeze_startup_heap` is
called when a site starts polling (see its docstring).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
MMAP_THRESHOLD_BYTES: Final = 32 * 1024 * 1024  # glibc's maximum on 64-bit
TRIM_THRESHOLD_BYTES: Final = 256 * 1024 * 1024  # keep up to this much free heap mapped


def keep_freed_buffers() -> bool:
    """Apply the policy; True when glibc accepted it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


_heap_frozen = False
YOUNG_GC_THRESHOLD: Final = 10_000


def freeze_startup_heap() -> bool:
    """Exempt everything alive now from the cyclic garbage collector, once per process.

    Called when a site starts polling (`Site.run`). By then the process holds what it keeps
    for its whole life: modules, classes, the config, and per device a source, a driver, a
    store row. At 10,000 miners that is ~150,000 GC-tracked objects, and CPython walks all of
    them in every full collection (~70–100 ms each here), which the steady churn of in-flight
    polls triggers a few times per poll cycle (bench/poll.py `--fleet-check` reports the
    collector's share of the CPU: 8–11 % before, under 1 % now). Frozen objects are freed normally
    when their reference count drops; only a cycle among them would never be reclaimed, so
    the cycles already garbage are collected first.

    The youngest generation's threshold is raised too (700 → 10,000 net allocations): a poll
    allocates dozens of containers (decoded replies, coroutines, futures) that nearly all die
    within milliseconds, so what a young collection finds alive is about the same at either
    threshold (the polls in flight), while collections become 14 times rarer.

    Returns True the first time (when it froze), False afterwards.
    """
    global _heap_frozen
    if _heap_frozen:
        return False
    _heap_frozen = True
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
    return True
