"""Per-device polling: schedules, a concurrency cap, per-device deadlines and back-off.

One scheduler task keeps a heap of (due time, device). When a device is due it gets its own
task, bounded by a semaphore, and its own deadline, so a hung or slow device only ever costs
its own slot: it never delays another device's reading. Results go to a sink (the store).

Back-off: after the n-th consecutive failure the next attempt waits
`min(interval × 2^(n-1), backoff_max_s)` (never less than the interval), with ±10 % jitter so
that a rack that dropped together does not come back in lock-step.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from console.model import ErrorKind
from drivers.cgminer.reading import AsicReading


class PollSource(Protocol):
    """Something the poller can read: one device behind a driver."""

    @property
    def device_id(self) -> str: ...

    @property
    def interval_s(self) -> float: ...

    @property
    def deadline_s(self) -> float: ...

    async def read(self) -> AsicReading: ...


class PollSink(Protocol):
    def record_ok(self, device_id: str, reading: AsicReading, at: float) -> None: ...

    def record_failure(self, device_id: str, kind: ErrorKind, message: str, at: float) -> None: ...


Classifier = Callable[[BaseException], ErrorKind]

JITTER_FRACTION = 0.10
BATCH_WINDOW_S = 0.1
"""Devices due within this window start together. At 10,000 miners on 30 s, polls would
otherwise arrive one per wake-up of the event loop; starting them in small batches lets one
loop iteration serve many sockets, which is most of the CPU saved at that scale."""


def default_classifier(exc: BaseException) -> ErrorKind:
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, OSError):
        return ErrorKind.CONNECT
    return ErrorKind.INTERNAL


def backoff_delay_s(interval_s: float, failures: int, backoff_max_s: float) -> float:
    """Delay before the next attempt after `failures` consecutive failures (no jitter)."""
    if failures <= 0:
        return interval_s
    grown_s: float = interval_s * 2.0 ** (failures - 1)
    return max(interval_s, min(grown_s, backoff_max_s))


class Poller:
    """Runs every source on its own schedule until cancelled."""

    def __init__(
        self,
        sources: Sequence[PollSource],
        sink: PollSink,
        *,
        max_concurrency: int = 256,
        backoff_max_s: float = 300.0,
        classify: Classifier = default_classifier,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._sources = list(sources)
        self._sink = sink
        self._max_concurrency = max_concurrency
        self._backoff_max_s = backoff_max_s
        self._classify = classify
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._rng = random.Random(seed)
        self._failures = [0] * len(self._sources)
        # Never batch more coarsely than a tenth of the fastest interval.
        fastest_s = min((s.interval_s for s in self._sources), default=1.0)
        self._batch_window_s = min(BATCH_WINDOW_S, 0.1 * fastest_s)
        self.polls_started = 0
        self.polls_completed = 0

    async def poll_once(self, index: int) -> bool:
        """Poll one source now, under its deadline; record the outcome. True on success."""
        source = self._sources[index]
        self.polls_started += 1
        try:
            async with asyncio.timeout(source.deadline_s):
                reading = await source.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is data about the device, never a poller crash
            self._failures[index] += 1
            kind = self._classify(exc)
            message = str(exc) or type(exc).__name__
            if kind is ErrorKind.TIMEOUT and not str(exc):
                message = f"no complete reply within {source.deadline_s:g} s"
            self._sink.record_failure(source.device_id, kind, message, self._wall_clock())
            return False
        finally:
            self.polls_completed += 1
        self._failures[index] = 0
        self._sink.record_ok(source.device_id, reading, self._wall_clock())
        return True

    async def poll_all_once(self) -> None:
        """Poll every source once, concurrently within the cap (used by `hashpivot snapshot`)."""
        slots = asyncio.Semaphore(self._max_concurrency)

        async def bounded(index: int) -> None:
            async with slots:
                await self.poll_once(index)

        async with asyncio.TaskGroup() as group:
            for index in range(len(self._sources)):
                group.create_task(bounded(index))

    def _next_delay_s(self, index: int) -> float:
        source = self._sources[index]
        delay = backoff_delay_s(source.interval_s, self._failures[index], self._backoff_max_s)
        jitter = self._rng.uniform(-JITTER_FRACTION, JITTER_FRACTION)
        return delay * (1.0 + jitter)

    async def run(self) -> None:
        """Schedule forever. Every source is polled at start, then on its own interval."""
        slots = asyncio.Semaphore(self._max_concurrency)
        wake = asyncio.Event()
        now = self._monotonic()
        # (due, sequence, index): the sequence keeps heap order stable for equal due times.
        heap: list[tuple[float, int, int]] = [(now, i, i) for i in range(len(self._sources))]
        heapq.heapify(heap)
        sequence = len(heap)
        running: set[asyncio.Task[None]] = set()
        # When the scheduler sleeps until (or is blocked on a slot), and whether it needs a
        # wake-up: a finished poll reschedules its device an interval ahead, almost never
        # before what the scheduler already waits for, so waking it for every poll (hundreds
        # per second on a big site) would be pure overhead.
        sleeping_until = float("inf")

        async def poll_and_reschedule(index: int, started: float) -> None:
            nonlocal sequence
            try:
                await self.poll_once(index)
            finally:
                slots.release()
                sequence += 1
                # Schedule from the start of this poll so a slow reply doesn't drift the cadence.
                due = started + self._next_delay_s(index)
                heapq.heappush(heap, (due, sequence, index))
                if due < sleeping_until:
                    wake.set()

        try:
            while True:
                now = self._monotonic()
                while heap and heap[0][0] <= now + self._batch_window_s:
                    _, _, index = heapq.heappop(heap)
                    # Waiting here only happens when every slot is busy: due devices stay due
                    # and start in due-time order as slots free up.
                    await slots.acquire()
                    task = asyncio.create_task(poll_and_reschedule(index, self._monotonic()))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    now = self._monotonic()
                wake.clear()
                timeout = heap[0][0] - now if heap else None
                sleeping_until = heap[0][0] if heap else float("inf")
                try:
                    async with asyncio.timeout(timeout):
                        await wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
