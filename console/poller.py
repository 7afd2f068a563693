"""Per-device polling: schedules, a concurrency cap, per-device deadlines and back-off.

A heap of (due time, device) feeds a pool of worker tasks, at most `max_concurrency` of them. A
due device goes to an idle worker (or a new one, under the cap); when every worker is busy, the
next to finish takes the longest-overdue device straight from the heap. Every poll has its own
deadline, so a hung or slow device only ever holds its own worker: it never delays another
device's reading. Results go to a sink (the store).

Why workers and a deadline sweep instead of a task and an `asyncio.timeout` per poll: a site of
10,000 miners on 30 s runs ~330 polls/s, and that bookkeeping (a task registered in asyncio's
weak set of all tasks, a timeout context with its own timer, a semaphore) cost as much CPU as
decoding a reply. A waiting worker is woken through one future; deadlines are enforced by one
periodic sweep, armed only while polls are in flight, that cancels each poll past its deadline
(at most one sweep period late: a tenth of the shortest deadline, 100 ms at most).

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
BATCH_WINDOW_S = 1.0
BATCH_FRACTION = 0.05
"""Devices due within the batch window start together: `BATCH_WINDOW_S`, and never more than
`BATCH_FRACTION` of the fastest interval (1 s at a 30 s interval, 50 ms at 1 s). At 10,000
miners on 30 s, polls would otherwise start a few at a time, each group paying for its own
wake-ups and finding the interpreter's and the kernel's caches cold; a second's worth (~330)
started together costs about what a poll costs at full speed (bench/poll.py `--fleet-check`).
A device started early is next due one interval after the time it was due, not after its early
start, so batching never shortens its cadence; the window is well inside the ±10 % jitter."""
SWEEP_MAX_S = 0.1
"""The longest period of the deadline sweep (it is also never more than a tenth of the
shortest deadline): how late, at most, a hung poll is given up."""


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


class _Worker:
    """One worker task of `Poller.run` and the deadline of the poll it is running."""

    __slots__ = ("deadline", "expired", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.deadline = float("inf")  # monotonic time; inf while idle
        self.expired = False  # the sweep cancelled the current poll for its deadline


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
        # When each device was last due: a batch may start it a little before that.
        self._due = [0.0] * len(self._sources)
        fastest_s = min((s.interval_s for s in self._sources), default=1.0)
        self._batch_window_s = min(BATCH_WINDOW_S, BATCH_FRACTION * fastest_s)
        shortest_deadline_s = min((s.deadline_s for s in self._sources), default=1.0)
        self._sweep_s = max(0.001, min(SWEEP_MAX_S, 0.1 * shortest_deadline_s))
        self.polls_started = 0
        self.polls_completed = 0
        # The state of `run` (one run at a time).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heap: list[tuple[float, int, int]] = []  # (due, sequence, index)
        self._sequence = 0
        self._workers: set[_Worker] = set()
        self._idle: list[tuple[_Worker, asyncio.Future[int]]] = []
        self._busy: set[_Worker] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._sweeper: asyncio.TimerHandle | None = None
        self._running = False

    # --- one-shot polling -----------------------------------------------------------------

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
            self._record_failure(index, exc)
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

    def _record_failure(self, index: int, exc: BaseException) -> None:
        source = self._sources[index]
        self._failures[index] += 1
        kind = self._classify(exc)
        message = str(exc) or type(exc).__name__
        if kind is ErrorKind.TIMEOUT and not str(exc):
            message = f"no complete reply within {source.deadline_s:g} s"
        self._sink.record_failure(source.device_id, kind, message, self._wall_clock())

    def _next_delay_s(self, index: int) -> float:
        source = self._sources[index]
        failures = self._failures[index]
        delay = (
            source.interval_s
            if failures == 0
            else backoff_delay_s(source.interval_s, failures, self._backoff_max_s)
        )
        jitter = self._rng.uniform(-JITTER_FRACTION, JITTER_FRACTION)
        return delay * (1.0 + jitter)

    # --- scheduling -----------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule forever. Every source is polled at start, then on its own interval."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        now = self._monotonic()
        # The sequence keeps heap order stable for equal due times.
        self._heap = [(now, i, i) for i in range(len(self._sources))]
        self._due = [now] * len(self._sources)
        heapq.heapify(self._heap)
        self._sequence = len(self._heap)
        forever: asyncio.Future[None] = loop.create_future()
        self._running = True
        try:
            self._dispatch()
            await forever
        finally:
            # First, so that the workers' last reschedules arm no new timer.
            self._running = False
            for handle in (self._timer, self._sweeper):
                if handle is not None:
                    handle.cancel()
            self._timer = self._sweeper = None
            self._timer_at = float("inf")
            tasks = [worker.task for worker in self._workers if worker.task is not None]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._idle.clear()
            self._busy.clear()

    def _dispatch(self) -> None:
        """Start every device due within the batch window (the scheduler's timer callback)."""
        self._timer = None
        self._timer_at = float("inf")
        heap = self._heap
        idle = self._idle
        horizon = self._monotonic() + self._batch_window_s
        while heap and heap[0][0] <= horizon:
            if idle:
                _worker, wake = idle.pop()  # the most recently busy worker: warm caches
                wake.set_result(heapq.heappop(heap)[2])
            elif len(self._workers) < self._max_concurrency:
                self._spawn(heapq.heappop(heap)[2])
            else:
                break  # all busy: a finishing worker takes what is overdue, or re-arms the timer
        self._arm_timer()

    def _arm_timer(self) -> None:
        """Make sure the scheduler wakes for the earliest due device."""
        heap = self._heap
        if not heap or not self._running:
            return
        due = heap[0][0]
        if self._timer is not None:
            if self._timer_at <= due:
                return
            self._timer.cancel()
        elif (
            not self._idle
            and len(self._workers) >= self._max_concurrency
            and due <= self._monotonic() + self._batch_window_s
        ):
            return  # saturated: the next worker to finish takes it, no timer needed
        assert self._loop is not None
        self._timer_at = due
        self._timer = self._loop.call_later(max(0.0, due - self._monotonic()), self._dispatch)

    def _take_overdue(self) -> int | None:
        """A device already past due (every worker was busy when it fell due), if any.

        Only those: devices coming due are left to `_dispatch`, which starts them together in
        one batch (one loop iteration for many sockets) rather than one per finished poll.
        """
        heap = self._heap
        if heap and heap[0][0] <= self._monotonic():
            return heapq.heappop(heap)[2]
        return None

    def _spawn(self, index: int) -> None:
        assert self._loop is not None
        worker = _Worker()
        self._workers.add(worker)
        worker.task = self._loop.create_task(self._work(worker, index))

    async def _work(self, worker: _Worker, index: int) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            while True:
                await self._poll(worker, index)
                next_index = self._take_overdue()
                if next_index is None:
                    wake: asyncio.Future[int] = loop.create_future()
                    self._idle.append((worker, wake))
                    self._arm_timer()  # after going idle, so it cannot count as saturated
                    next_index = await wake
                index = next_index
        finally:
            self._workers.discard(worker)

    async def _poll(self, worker: _Worker, index: int) -> None:
        source = self._sources[index]
        started = self._monotonic()
        worker.deadline = started + source.deadline_s
        self._busy.add(worker)
        if self._sweeper is None and self._running:
            assert self._loop is not None
            self._sweeper = self._loop.call_later(self._sweep_s, self._sweep)
        self.polls_started += 1
        try:
            try:
                reading = await source.read()
            except asyncio.CancelledError:
                if not self._end_expiry(worker):
                    raise  # not (only) our deadline: the poller is being stopped
                self._record_failure(index, TimeoutError())
            except Exception as exc:  # every failure is data about the device
                self._end_expiry(worker)
                self._record_failure(index, exc)
            else:
                self._end_expiry(worker)
                self._failures[index] = 0
                self._sink.record_ok(source.device_id, reading, self._wall_clock())
        finally:
            worker.deadline = float("inf")
            self._busy.discard(worker)
            self.polls_completed += 1
            # Schedule from the start of this poll so a slow reply doesn't drift the cadence,
            # or from when it was due if a batch started it early (the cadence stays whole).
            self._sequence += 1
            due = self._due[index]
            due = (started if started > due else due) + self._next_delay_s(index)
            self._due[index] = due
            heapq.heappush(self._heap, (due, self._sequence, index))
            if due < self._timer_at:
                self._arm_timer()

    @staticmethod
    def _end_expiry(worker: _Worker) -> bool:
        """Clear a deadline cancellation of this poll; True if no other one is pending."""
        if not worker.expired:
            return False
        worker.expired = False
        assert worker.task is not None
        return worker.task.uncancel() == 0

    def _sweep(self) -> None:
        """Cancel the polls past their deadline; runs every sweep period while any is busy."""
        self._sweeper = None
        busy = self._busy
        if not busy or not self._running:
            return
        now = self._monotonic()
        for worker in busy:
            if worker.deadline <= now and not worker.expired and worker.task is not None:
                worker.expired = True
                worker.task.cancel()
        assert self._loop is not None
        self._sweeper = self._loop.call_later(self._sweep_s, self._sweep)
