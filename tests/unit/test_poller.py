"""Poller scheduling: cadence, back-off, deadlines and isolation, with in-process sources.

These sources are plain coroutines (no sockets) because what is under test is the scheduler;
the same properties are checked against real simulated miners in tests/integration.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import pytest

from console.model import ErrorKind
from console.poller import Poller, backoff_delay_s
from drivers.cgminer.reading import AsicReading, Firmware


def _reading() -> AsicReading:
    return AsicReading(firmware=Firmware.CGMINER, make="test", hashrate_5s_hs=1e12)


@dataclass
class Source:
    device_id: str
    interval_s: float = 0.05
    deadline_s: float = 0.2
    behaviour: str = "ok"  # ok | hang | fail
    calls: int = 0

    async def read(self) -> AsicReading:
        self.calls += 1
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "fail":
            raise ConnectionRefusedError("refused")
        return _reading()


@dataclass
class Sink:
    ok: dict[str, int] = field(default_factory=dict)
    failed: dict[str, list[ErrorKind]] = field(default_factory=dict)

    def record_ok(self, device_id: str, reading: AsicReading, at: float) -> None:
        self.ok[device_id] = self.ok.get(device_id, 0) + 1

    def record_failure(self, device_id: str, kind: ErrorKind, message: str, at: float) -> None:
        self.failed.setdefault(device_id, []).append(kind)


def test_backoff_grows_from_interval_to_cap() -> None:
    assert backoff_delay_s(30, 0, 300) == 30
    assert backoff_delay_s(30, 1, 300) == 30
    assert backoff_delay_s(30, 2, 300) == 60
    assert backoff_delay_s(30, 3, 300) == 120
    assert backoff_delay_s(30, 10, 300) == 300
    # A cap below the interval never makes a device poll faster than its interval.
    assert backoff_delay_s(30, 5, 10) == 30


async def test_hung_devices_do_not_delay_the_others() -> None:
    sources = [Source(f"d{i}", behaviour="hang" if i % 10 == 0 else "ok") for i in range(40)]
    sink = Sink()
    poller = Poller(sources, sink, max_concurrency=64, seed=1)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    healthy = [s for s in sources if s.behaviour == "ok"]
    # Each healthy source, on a 50 ms interval for 1 s, must have been read many times even
    # though every tenth source hangs until its 200 ms deadline on every attempt.
    assert all(sink.ok.get(s.device_id, 0) >= 5 for s in healthy)
    hung = [s for s in sources if s.behaviour == "hang"]
    assert all(ErrorKind.TIMEOUT in sink.failed[s.device_id] for s in hung)
    assert all(s.device_id not in sink.ok for s in hung)


async def test_failures_back_off() -> None:
    failing = Source("bad", behaviour="fail")
    healthy = Source("good")
    sink = Sink()
    poller = Poller([failing, healthy], sink, backoff_max_s=10.0, seed=2)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Healthy: ~20 polls in 1 s. Failing: delays 50, 50, 100, 200, 400 ms … → at most ~6.
    assert healthy.calls >= 10
    assert failing.calls <= 7
    assert set(sink.failed["bad"]) == {ErrorKind.CONNECT}


async def test_concurrency_cap_is_respected() -> None:
    in_flight = 0
    peak = 0

    @dataclass
    class Slow(Source):
        async def read(self) -> AsicReading:
            nonlocal in_flight, peak
            self.calls += 1
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            return _reading()

    sources = [Slow(f"s{i}") for i in range(50)]
    poller = Poller(sources, Sink(), max_concurrency=5)
    await poller.poll_all_once()
    assert peak == 5
    assert all(s.calls == 1 for s in sources)


async def test_exceptions_from_a_driver_never_escape() -> None:
    @dataclass
    class Broken(Source):
        async def read(self) -> AsicReading:
            raise KeyError("field")

    sink = Sink()
    await Poller([Broken("x")], sink).poll_all_once()
    assert sink.failed["x"] == [ErrorKind.INTERNAL]


async def test_stopping_leaves_no_task_or_timer_behind() -> None:
    @dataclass
    class Slow(Source):
        async def read(self) -> AsicReading:
            self.calls += 1
            await asyncio.sleep(0.05)
            return _reading()

    # Many polls in flight when it stops: each one ends by rescheduling its device.
    sources = [Slow(f"d{i}", interval_s=0.02) for i in range(30)]
    sources.append(Source("hung", behaviour="hang"))
    poller = Poller(sources, Sink(), seed=3)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # A timer a stopped poller had left armed would start new workers in this pause.
    await asyncio.sleep(0.2)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_devices_due_close_together_start_together_and_never_early_beyond_the_window() -> (
    None
):
    loop = asyncio.get_running_loop()
    starts: dict[str, list[float]] = {}

    @dataclass
    class Timed(Source):
        async def read(self) -> AsicReading:
            starts.setdefault(self.device_id, []).append(loop.time())
            return _reading()

    # 1 s interval: the batch window is 5 % of it (50 ms); the second polls fall due spread over
    # 0.9–1.1 s (±10 % jitter), one every ~2 ms on average.
    sources = [Timed(f"d{i}", interval_s=1.0, deadline_s=0.5) for i in range(100)]
    poller = Poller(sources, Sink(), seed=5, monotonic=loop.time)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(1.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(len(times) == 2 for times in starts.values())
    seconds = sorted(times[1] for times in starts.values())
    # Starts of one batch happen in one loop iteration: count the distinct instants (2 ms
    # apart or more). Started one by one, a hundred polls spread over 200 ms would make ~50.
    instants = 1 + sum(1 for a, b in itertools.pairwise(seconds) if b - a > 0.002)
    assert instants <= 15
    # Early by at most the window: never sooner than 90 % of the interval minus 50 ms.
    assert all(times[1] - times[0] >= 0.9 - 0.05 - 0.005 for times in starts.values())
