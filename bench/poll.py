"""Poll benchmark: full ASIC readings per second and client CPU per reading.

A simulated fleet runs in ANOTHER process (`hashpivot simulate`), pinned to one core; the client
runs here, pinned to another, so the figures are the client's own cost. Each client mode runs a
closed loop of `--concurrency` workers over the whole fleet for `--seconds`:

- `bare`        connect, send one `summary+stats+pools` join, read to EOF or NUL; no decoding.
                The practical limit of a Python asyncio client.
- `hashpivot`   `CgminerMiner.read()`: the full reading (join, tolerant decode, dialect
                parse into a normalised `AsicReading`), as the poller does it.
- `pyasic-rpc`  pyasic's RPC client: the same join through `multicommand`, decoded, not normalised.
- `pyasic-data` pyasic's `get_data()`: its full reading.

Each line also shows the simulator's CPU share over the same window: near 100 % means the
simulator, not the client, set the pace, and the client's figures are then pessimistic (an idle
client spends more CPU per poll).

`--fleet-check` instead runs hashpivot's real poller over the fleet at `--interval` seconds and
reports the client's CPU use as a share of one core (the "10,000 miners at 30 s" question,
measured rather than extrapolated). The window is a whole number of intervals (`--seconds`
rounded up) and starts 1.5 intervals in: every device is polled at start, so a window that is
not a whole number of cycles, or that starts on a cycle boundary, counts some cycles' polls
twice or not at all. This way it holds exactly that many cycles of the fleet.

`--step-times` (with `--fleet-check`) also times the steps of each poll inside that window:
the transport's whole-JSON check of NUL-less replies, the tolerant decoder (`decode`: the
join plan's typed decoder, or the whole JSON), the dialect's parse, `finalise` and the store's
`record_ok`, as a mean per call and per poll. The timers themselves add about a microsecond per
step.

    ./dev bench poll --miners 1000 --seconds 10
    ./dev bench poll --miners 10000 --fleet-check --interval 30 --seconds 60
    ./dev bench poll --miners 10000 --fleet-check --interval 30 --seconds 30 --step-times
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE_IP = "127.0.10.1"
JOIN = b'{"command":"summary+stats+pools"}'


def pin(core: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {core % os.cpu_count()})  # type: ignore[operator]


def start_simulator(miners: int, core: int) -> tuple[subprocess.Popen[str], list[tuple[str, int]]]:
    code = (
        "import sys; from console.cli import main; "
        f"sys.exit(main(['simulate', '--asics', '{miners}', '--base-ip', '{BASE_IP}']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: pin(core),
    )
    endpoints: list[tuple[str, int]] = []
    assert proc.stdout is not None
    while len(endpoints) < miners:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("simulator exited before listening")
        first = line.split()[0] if line.split() else ""
        if ":" in first and first[0].isdigit():
            host, port = first.rsplit(":", 1)
            endpoints.append((host, int(port)))
    return proc, endpoints


class BareProtocol(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[int]) -> None:
        self.done = done
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(JOIN)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.size += len(data)
        if data.endswith(b"\x00") and not self.done.done():
            self.done.set_result(self.size)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.size)


async def bare_poll(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: BareProtocol(done), host, port)
    try:
        async with asyncio.timeout(5):
            await done
    finally:
        transport.close()


async def make_pollers(
    mode: str, endpoints: list[tuple[str, int]]
) -> list[Callable[[], Awaitable[object]]]:
    if mode == "bare":
        return [lambda h=h, p=p: bare_poll(h, p) for h, p in endpoints]
    if mode == "hashpivot":
        from drivers.cgminer.miner import CgminerMiner

        miners = [CgminerMiner(h, p, timeout_s=5.0) for h, p in endpoints]
        return [m.read for m in miners]
    import warnings

    import pyasic  # test-only oracle

    # pyasic warns once per request about commands a family lacks (Whatsminer `stats`).
    warnings.simplefilter("ignore")

    # Identification is not what is measured; keep it gentle so a busy simulator doesn't make
    # pyasic's 3 s factory timeout give up on miners.
    gate = asyncio.Semaphore(32)

    async def identify(host: str) -> object:
        async with gate:
            return await pyasic.get_miner(host)

    found = await asyncio.gather(*(identify(h) for h, _ in endpoints))
    usable = [m for m in found if m is not None]
    if len(usable) < len(found):
        print(f"  pyasic recognised {len(usable)}/{len(found)} miners", file=sys.stderr)
    if not usable:
        raise RuntimeError("pyasic recognised no miner")
    if mode == "pyasic-data":
        return [m.get_data for m in usable]
    return [lambda m=m: m.rpc.multicommand("summary", "stats", "pools") for m in usable]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by another process; 0.0 where /proc is missing.

    Used to show whether the simulator, not the client, set the pace of a run: a simulator near
    100 % of its core means the client's throughput figure is a floor, not its limit.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def closed_loop(
    pollers: list[Callable[[], Awaitable[object]]],
    seconds: float,
    concurrency: int,
    sim_pid: int | None = None,
) -> dict[str, float]:
    # Warm-up: one pass, so dialect detection and imports are not counted.
    await asyncio.gather(*(p() for p in pollers), return_exceptions=True)
    order = itertools.cycle(pollers)
    ok = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal ok, errors
        while time.perf_counter() < deadline:
            try:
                await next(order)()
                ok += 1
            except Exception:
                errors += 1

    sim0 = process_cpu_s(sim_pid) if sim_pid else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sim = process_cpu_s(sim_pid) - sim0 if sim_pid else 0.0
    return {
        "polls": ok,
        "errors": errors,
        "polls_per_s": ok / wall,
        "cpu_ms_per_poll": 1000 * cpu / max(ok, 1),
        "cpu_share": cpu / wall,
        "sim_share": sim / wall,
    }


class FloorSource:
    """A poll source that only does the I/O of a poll (the same join through the same
    transport) and records a constant reading: what the poller, transport and store cost
    without decoding and parsing (`--fleet-check --floor`)."""

    def __init__(self, device_id: str, host: str, port: int, interval_s: float) -> None:
        from drivers.cgminer.reading import AsicReading, Firmware
        from drivers.cgminer.transport import exchange

        self.exchange = exchange
        self.device_id = device_id
        self.host = host
        self.port = port
        self.interval_s = interval_s
        self.deadline_s = 10.0
        self.reading = AsicReading(firmware=Firmware.CGMINER, make="floor", hashrate_5s_hs=1e14)

    async def read(self) -> object:
        await self.exchange(self.host, self.port, JOIN, timeout_s=5.0, max_reply_bytes=1 << 20)
        return self.reading


class StepTimes:
    """Wall time spent in named steps, summed per step, while `on` (see `--step-times`)."""

    def __init__(self) -> None:
        self.on = False
        self.calls: dict[str, int] = {}
        self.ns: dict[str, int] = {}

    def wrap(self, name: str, func: Callable[..., object]) -> Callable[..., object]:
        clock = time.perf_counter_ns
        self.calls[name] = self.ns[name] = 0

        def timed(*args: object) -> object:
            if not self.on:
                return func(*args)
            started = clock()
            try:
                return func(*args)
            finally:
                self.ns[name] += clock() - started
                self.calls[name] += 1

        return timed

    def install(self) -> None:
        """Wrap the steps of a poll where the poll path looks them up at call time."""
        from console.store import Store
        from drivers.cgminer import client, miner, transport

        for owner, attribute, name in (
            (transport, "_check_json_object", "whole-JSON check"),
            (client, "decode", "decode"),
            (miner.CgminerMiner, "_parse", "parse"),
            (miner, "finalise", "finalise"),
            (Store, "record_ok", "record_ok"),
        ):
            setattr(owner, attribute, self.wrap(name, getattr(owner, attribute)))

    def report(self, polls: int) -> str:
        return "\n".join(
            f"  {name:20s} {calls:7d} calls  {self.ns[name] / max(calls, 1) / 1000:6.1f} us/call"
            f"  {self.ns[name] / max(polls, 1) / 1000:6.1f} us/poll"
            for name, calls in self.calls.items()
        )


async def fleet_check(
    endpoints: list[tuple[str, int]],
    interval_s: float,
    seconds: float,
    floor: bool = False,
    steps: StepTimes | None = None,
) -> dict[str, float]:
    from console.alloc import freeze_startup_heap
    from console.model import DeviceKind
    from console.poller import Poller
    from console.site import AsicSource, classify_error
    from console.store import DeviceInfo, Store
    from drivers.cgminer.miner import CgminerMiner

    infos, sources = [], []
    for i, (host, port) in enumerate(endpoints):
        name = f"m{i:05d}"
        infos.append(
            DeviceInfo(
                device_id=name,
                kind=DeviceKind.ASIC,
                name=name,
                host=host,
                port=port,
                model=None,
                interval_s=interval_s,
                stale_after_s=2.5 * interval_s,
                lost_after_s=10 * interval_s,
            )
        )
        if floor:
            sources.append(FloorSource(name, host, port, interval_s))
        else:
            miner = CgminerMiner(host, port, timeout_s=5.0)
            sources.append(AsicSource(name, miner, interval_s, 5.0))
    store = Store("bench", infos)
    poller = Poller(sources, store, max_concurrency=256, classify=classify_error)
    freeze_startup_heap()  # as `Site.run` does when the console starts polling
    task = asyncio.create_task(poller.run())
    # Every device is polled at start and then every interval ± 10 % jitter. The jitter adds
    # up from cycle to cycle, but for the first several cycles each one's polls stay within
    # ± half an interval of its nominal start: a window of whole intervals that starts half an
    # interval after the first cycle then holds whole cycles only.
    await asyncio.sleep(1.5 * interval_s)
    gc_clock = GcClock()
    gc.callbacks.append(gc_clock)
    if steps is not None:
        steps.on = True
    done0, times0, wall0 = poller.polls_completed, os.times(), time.perf_counter()
    await asyncio.sleep(seconds)
    times1 = os.times()
    if steps is not None:
        steps.on = False
    done, wall = poller.polls_completed - done0, time.perf_counter() - wall0
    gc.callbacks.remove(gc_clock)
    user, system = times1.user - times0.user, times1.system - times0.system
    cpu = user + system
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    snap = store.snapshot()
    return {
        "polls": done,
        "polls_per_s": done / wall,
        "cpu_share": cpu / wall,
        "cpu_ms_per_poll": 1000 * cpu / max(done, 1),
        "fresh": snap.totals.fresh,
        "devices": snap.totals.devices,
        "kernel_share": system / max(cpu, 1e-9),
        "gc_share": gc_clock.cpu_s / max(cpu, 1e-9),
        "gc_runs": gc_clock.runs,
    }


class GcClock:
    """A `gc.callbacks` hook that adds up the CPU time the cyclic collector takes."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.runs = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.cpu_s += time.process_time() - self._started
            self.runs += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--miners", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--modes", default="bare,hashpivot,pyasic-rpc,pyasic-data")
    parser.add_argument("--fleet-check", action="store_true")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="with --fleet-check: sources only do the poll's I/O (no decoding or parsing)",
    )
    parser.add_argument(
        "--step-times",
        action="store_true",
        help="with --fleet-check: time decode, parse, finalise and record_ok inside the window",
    )
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sim, endpoints = start_simulator(args.miners, core=1)
    pin(0)
    loop_factory = None
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
    print(
        f"fleet: {len(endpoints)} simulated miners in pid {sim.pid} (core 1); client on core 0; "
        f"loop: {'uvloop' if loop_factory else 'asyncio'}; cpu count {os.cpu_count()}"
    )
    try:
        if args.fleet_check:
            cycles = max(1, math.ceil(args.seconds / args.interval - 1e-9))
            window_s = cycles * args.interval
            steps = StepTimes() if args.step_times else None
            if steps is not None:
                steps.install()
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                r = runner.run(fleet_check(endpoints, args.interval, window_s, args.floor, steps))
            label = "fleet-floor" if args.floor else "fleet-check"
            print(
                f"{label}  {r['devices']} miners @ {args.interval:g} s, {cycles} whole "
                f"cycle(s) ({window_s:g} s): {r['polls_per_s']:.0f} polls/s (fleet average "
                f"{r['devices'] / args.interval:.0f}/s), client CPU "
                f"{100 * r['cpu_share']:.1f}% of one core, {r['cpu_ms_per_poll']:.3f} ms/poll, "
                f"{r['fresh']} fresh (kernel {100 * r['kernel_share']:.0f}% of it, cyclic GC "
                f"{100 * r['gc_share']:.0f}% in {r['gc_runs']} runs); "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            if steps is not None:
                print(steps.report(int(r["polls"])))
            return
        results = {}
        for mode in args.modes.split(","):
            # Every client gets the same event loop, so the comparison is of the clients.
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                r = runner.run(_run_mode(mode, endpoints, args, sim.pid))
            results[mode] = r
            print(
                f"{mode:12s} {r['polls_per_s']:8.0f} polls/s  "
                f"{r['cpu_ms_per_poll']:.3f} ms CPU/poll  "
                f"client CPU {100 * r['cpu_share']:.0f}%  sim CPU {100 * r['sim_share']:.0f}%  "
                f"errors {r['errors']:.0f}"
            )
        if "hashpivot" in results:
            per = results["hashpivot"]["cpu_ms_per_poll"] / 1000
            print(f"10,000 miners @ 30 s (extrapolated): {100 * per * 10000 / 30:.1f}% of one core")
            if results.get("pyasic-rpc", {}).get("polls_per_s"):
                ratio = results["hashpivot"]["polls_per_s"] / results["pyasic-rpc"]["polls_per_s"]
                print(f"hashpivot / pyasic-rpc throughput: {ratio:.1f}x")
    finally:
        sim.terminate()
        sim.wait(10)


async def _run_mode(
    mode: str, endpoints: list[tuple[str, int]], args: argparse.Namespace, sim_pid: int
) -> dict[str, float]:
    pollers = await make_pollers(mode, endpoints)
    return await closed_loop(pollers, args.seconds, args.concurrency, sim_pid)


if __name__ == "__main__":
    main()
