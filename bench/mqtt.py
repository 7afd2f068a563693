"""MQTT benchmark: device states per second published to mosquitto for a 10,000-device site,
and the end-to-end latency from a reading to a subscriber.

The publishing side is hashpivot's real headless `Bridge` (publisher, outbox, pump, aiomqtt
transport) over a real `Store` holding `--devices` ASICs, each snapshot priced by the site's
real `SitePricing` (static market from the config) as `Site.snapshot()` does, so every device
document carries its earnings row (`--no-earnings`: unpriced snapshots, as before the bridge
published earnings). Only the readings are synthetic (realistic S19-class `AsicReading`s:
three boards, four fans, two pools; about 2.7 kB of JSON per device document with earnings,
2.1 kB without), recorded into the store the way the poller records them. The broker is a real
mosquitto; the subscriber is `mosquitto_sub` on `device/+/state`, piped into a small parser
process. Broker, subscriber and parser are pinned to core 1, the bridge to core 0.

Latency = the subscriber's receive time (mosquitto_sub `%U`) minus the reading's `last_ok_at`
(when the store recorded it), so it includes the bridge's publish interval (`--interval`,
the `[mqtt] publish_interval_s`, default 0.25 s), the encoding, the queue, the broker and the
subscriber.

Phases, each reported on its own line:

1. `connect`  the bridge connects and publishes the whole site (states, availability, HA
              discovery): time until the subscriber has every device's state;
2. `burst`    every device gets a new reading at the same instant (a fleet-wide change):
              states/s until the subscriber has all of them, and their latency;
3. `steady`   `--rate` readings per second, spread evenly (the poller's steady state; 10,000
              devices at a 30 s interval is 333/s) for `--seconds`: states/s received,
              latency p50/p99/max, and the bridge's CPU.

    ./dev bench mqtt --devices 10000 --rate 10000 --seconds 10
    ./dev bench mqtt --devices 10000 --rate 333 --seconds 20

`--steps` adds how long each synchronous step of the bridge held the event loop during the
steady phase (site snapshot, publisher look and slices, outbox) and each garbage collection;
`--profile FILE` writes a cProfile of the bridge (`--phase connect|steady`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from console.actions import ActionPath  # noqa: E402
from console.audit import AuditLog  # noqa: E402
from console.config import SiteConfig, load_config  # noqa: E402
from console.events import EventHub  # noqa: E402
from console.headless.service import Bridge, tune_gc  # noqa: E402
from console.headless.settings import resolve  # noqa: E402
from console.model import DeviceKind, Snapshot  # noqa: E402
from console.pricing import SitePricing  # noqa: E402
from console.store import DeviceInfo, Store  # noqa: E402
from drivers.cgminer.reading import (  # noqa: E402
    AsicReading,
    BoardReading,
    Firmware,
    MinerState,
    PoolReading,
)

PARSER = r"""
import sys
import numpy as np
recv, read = [], []
key = b'"last_ok_at":'
for line in sys.stdin.buffer:
    space = line.find(b" ")
    at = line.find(key, space)
    if space < 0 or at < 0:
        continue
    end = line.find(b",", at)
    recv.append(float(line[:space]))
    read.append(float(line[at + len(key):end]))
np.save(sys.argv[1], np.array([recv, read], dtype=np.float64))
"""


def pin(core: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readings(count: int, seed: int = 1) -> list[AsicReading]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        hashrate = rng.uniform(95e12, 110e12)
        out.append(
            AsicReading(
                firmware=Firmware.ANTMINER_STOCK,
                make="Antminer",
                model="Antminer S19j Pro",
                firmware_version="Mon Dec 26 17:10:01 CST 2022",
                hashrate_5s_hs=hashrate,
                hashrate_avg_hs=104e12,
                nominal_hashrate_hs=104e12,
                boards=tuple(
                    BoardReading(
                        index=i,
                        chips_found=126,
                        chips_expected=126,
                        hashrate_hs=hashrate / 3,
                        temp_board_c=rng.uniform(55, 65),
                        temp_chip_c=rng.uniform(65, 78),
                        frequency_mhz=525.0,
                    )
                    for i in range(3)
                ),
                fans_rpm=tuple(rng.randint(4800, 5600) for _ in range(4)),
                power_w=3068.0,
                power_estimated=True,
                efficiency_j_per_th=29.5,
                accepted=rng.randint(10_000, 90_000),
                rejected=rng.randint(0, 50),
                stale=rng.randint(0, 20),
                hardware_errors=rng.randint(0, 500),
                pools=(
                    PoolReading(
                        index=0,
                        url="stratum+tcp://pool.example:3333",
                        user="site.worker",
                        status="Alive",
                        active=True,
                        priority=0,
                        accepted=50_000,
                        rejected=12,
                        stale=3,
                    ),
                    PoolReading(
                        index=1,
                        url="stratum+tcp://backup.example:3333",
                        user="site.worker",
                        status="Alive",
                        active=False,
                        priority=1,
                    ),
                ),
                uptime_s=rng.uniform(1e5, 2e6),
                state=MinerState.MINING,
            )
        )
    return out


class BenchSite:
    """What `Bridge` needs from a `Site`: a store's snapshots (priced, unless `config` is None),
    an action path and an event hub. Readings are recorded by the benchmark itself instead of
    a poller; the site has no GPUs."""

    gpus = None

    def __init__(self, devices: int, state_dir: Path, config: SiteConfig | None) -> None:
        self.ids = [f"r{i // 100:03d}-m{i % 100:02d}" for i in range(devices)]
        infos = [
            DeviceInfo(
                device_id=device_id,
                kind=DeviceKind.ASIC,
                name=device_id,
                host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                port=4028,
                model="Antminer S19j Pro",
                interval_s=30.0,
                stale_after_s=75.0,
                lost_after_s=300.0,
            )
            for i, device_id in enumerate(self.ids)
        ]
        self.store = Store("bench", infos)
        self.audit = AuditLog.in_state_dir(state_dir)
        self.actions = ActionPath(self.audit)
        self.events = EventHub()
        self.pricing = (
            None
            if config is None
            else SitePricing(config, self.ids, [info.stale_after_s for info in infos])
        )
        self.templates = readings(64)
        self._next = 0

    def snapshot(self) -> Snapshot:
        snapshot = self.store.snapshot()
        return snapshot if self.pricing is None else self.pricing.price(snapshot)

    async def run(self) -> None:
        await asyncio.Event().wait()  # readings come from record(), not a poller

    def record(self, count: int) -> None:
        """The next `count` devices (round robin) get a new reading, recorded now."""
        at = time.time()
        ids, templates = self.ids, self.templates
        for _ in range(count):
            i = self._next
            self._next = (i + 1) % len(ids)
            self.store.record_ok(ids[i], templates[(i + int(at * 7)) % len(templates)], at)


def start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = workdir / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [mosquitto, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: pin(1),
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start") from None
            time.sleep(0.05)


def start_subscriber(port: int, topic: str, out: Path) -> tuple[subprocess.Popen[bytes], ...]:
    sub_bin = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    sub = subprocess.Popen(
        [sub_bin, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "0", "-R",
         "-F", "%U %p"],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: pin(1),
    )  # fmt: skip
    parser = subprocess.Popen(
        [sys.executable, "-c", PARSER, str(out)], stdin=sub.stdout, preexec_fn=lambda: pin(1)
    )
    assert sub.stdout is not None
    sub.stdout.close()  # the parser owns the pipe now
    return sub, parser


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def describe(name: str, recv: np.ndarray, read: np.ndarray, extra: str = "") -> None:
    if not len(recv):
        print(f"{name:8s} no messages received")
        return
    latency = recv - read
    span = float(recv.max() - read.min())
    print(
        f"{name:8s} {len(recv):7d} states in {span:6.2f} s = {len(recv) / span:8.0f} states/s; "
        f"latency p50 {pct(latency, 50) * 1000:6.0f} ms  p99 {pct(latency, 99) * 1000:6.0f} ms  "
        f"max {latency.max() * 1000:6.0f} ms{extra}"
    )


class StepTimer:
    """`--steps`: how long each synchronous step of the bridge held the event loop (and how
    long each garbage collection took), to tell the bridge's own stalls from the machine's."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self._gc_started = 0.0

    def wrap(self, owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)
        times = self.times.setdefault(label, [])

        def timed(*a: object, **kw: object) -> object:
            started = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                times.append(time.perf_counter() - started)

        setattr(owner, name, timed)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            label = f"gc gen{info['generation']}"
            self.times.setdefault(label, []).append(time.perf_counter() - self._gc_started)

    def report(self) -> None:
        for label, times in self.times.items():
            if times:
                t = np.array(times) * 1000
                print(
                    f"  step {label:22s} n {len(t):6d}  total {t.sum():7.0f} ms  "
                    f"p50 {pct(t, 50):6.2f}  p99 {pct(t, 99):6.2f}  max {t.max():6.1f} ms"
                )


async def bench(args: argparse.Namespace, workdir: Path, port: int) -> dict[str, float]:
    config_path = workdir / "site.toml"
    config_path.write_text(
        f'[site]\nname = "bench"\nstate_dir = "{workdir / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}/bench"\n'
        f"publish_interval_s = {args.interval}\nqueue_max = {max(50_000, 4 * args.devices)}\n"
        f"discovery = {'false' if args.no_discovery else 'true'}\n"
    )
    config = load_config(config_path)
    site = BenchSite(args.devices, workdir / "state", None if args.no_earnings else config)
    settings = resolve(config, env={})
    bridge = Bridge(site, settings)  # type: ignore[arg-type]
    site.record(args.devices)  # every device has a first reading before the bridge starts
    steps = StepTimer() if args.steps else None
    if steps is not None:
        steps.wrap(site, "snapshot", "site.snapshot (priced)")
        steps.wrap(site.store, "snapshot", "  of which Store.snapshot")
        steps.wrap(bridge._freshness, "update", "FreshnessWatch.update")
        steps.wrap(bridge.publisher, "begin", "Publisher.begin")
        steps.wrap(bridge.publisher, "publish_pending", "Publisher.publish_pending")
        steps.wrap(bridge.publisher, "publish_site", "Publisher.publish_site")
        steps.wrap(bridge.outbox, "take_all", "Outbox.take_all")
        steps.wrap(site, "record", "bench: record readings")
    tune_gc()  # as `hashpivot headless` does once its site is built
    connect_profiler = None
    if args.profile and args.phase == "connect":
        import cProfile

        connect_profiler = cProfile.Profile()
        connect_profiler.enable()
    t_connect = time.time()
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await bridge.transport.wait_connected()

    async def drained(settle_s: float = 1.0) -> float:
        """Wait until the bridge has been idle for `settle_s` (nothing sent beyond the site
        and jobs documents a publish tick may refresh; the outbox alone does not tell, as the
        pump empties it before it has finished sending); return when it last was busy."""
        step = 0.05
        allowance = 2 * step / args.interval + 3
        last_busy = time.time()
        sent = bridge.transport.published
        while time.time() - last_busy < settle_s:
            await asyncio.sleep(step)
            now_sent = bridge.transport.published
            if now_sent - sent > allowance or len(bridge.outbox) > 3:
                last_busy = time.time()
            sent = now_sent
        return last_busy

    t_connect_done = await drained()
    if connect_profiler is not None:
        connect_profiler.disable()
        connect_profiler.dump_stats(args.profile)
    connect_sent = bridge.transport.published
    t_burst = time.time()
    site.record(args.devices)
    await drained()
    t_steady = time.time()
    batch_s = 0.01
    recorded = 0
    profiler = None
    if args.profile and args.phase == "steady":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if steps is not None:  # only the steady phase
        for times in steps.times.values():
            times.clear()
        gc.callbacks.append(steps.on_gc)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    coalesced0, dropped0 = bridge.outbox.coalesced, bridge.outbox.dropped
    lag_max = 0.0  # the longest the event loop kept this loop waiting beyond its sleep
    while (elapsed := time.monotonic() - wall0) < args.seconds:
        # Catch up on what is owed by now, so a busy loop does not lower the offered rate.
        count = int(args.rate * elapsed) - recorded
        if count > 0:
            site.record(count)
            recorded += count
        asleep = time.monotonic()
        await asyncio.sleep(batch_s)
        lag_max = max(lag_max, time.monotonic() - asleep - batch_s)
    t_end = time.time()
    await drained()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    if steps is not None:
        gc.callbacks.remove(steps.on_gc)
        steps.report()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    wall = time.monotonic() - wall0
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    coalesced = bridge.outbox.coalesced - coalesced0
    dropped = bridge.outbox.dropped - dropped0
    stop.set()
    await task
    site.audit.close()
    if site.pricing is not None:
        await site.pricing.close()
    return {
        "t_connect": t_connect,
        "t_connect_done": t_connect_done,
        "connect_sent": connect_sent,
        "t_burst": t_burst,
        "t_steady": t_steady,
        "t_end": t_end,
        "cpu": cpu / wall,
        "coalesced": coalesced,
        "dropped": dropped,
        "recorded": recorded,
        "lag_max": lag_max,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10_000.0, help="readings per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.25, help="publish_interval_s")
    parser.add_argument("--no-discovery", action="store_true")
    parser.add_argument(
        "--no-earnings", action="store_true", help="unpriced snapshots: no earnings rows"
    )
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the bridge (see --phase)")
    parser.add_argument("--phase", choices=("connect", "steady"), default="steady")
    parser.add_argument(
        "--steps", action="store_true", help="time the bridge's steps and GC (steady phase)"
    )
    args = parser.parse_args()

    loop_factory = None
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
    with tempfile.TemporaryDirectory(prefix="hashpivot-bench-mqtt-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        broker = start_broker(workdir, port)
        out = workdir / "received.npy"
        sub, parse = start_subscriber(port, "bench/v1/bench/device/+/state", out)
        time.sleep(0.5)  # subscribed before the bridge publishes anything
        pin(0)
        print(
            f"{args.devices} devices, publish interval {args.interval:g} s, "
            f"discovery {'off' if args.no_discovery else 'on'}, "
            f"earnings {'off' if args.no_earnings else 'on'}; loop "
            f"{'uvloop' if loop_factory else 'asyncio'}; bridge on core 0, mosquitto + "
            f"subscriber on core 1 ({os.cpu_count()} cpus)"
        )
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                r = runner.run(bench(args, workdir, port))
        finally:
            time.sleep(0.5)
            sub.terminate()
            sub.wait(10)
            parse.wait(30)
            broker.terminate()
            broker.wait(10)
        recv, read = np.load(out)
        connect = read < r["t_connect"]
        burst = (read >= r["t_burst"]) & (read < r["t_steady"])
        steady = (read >= r["t_steady"]) & (read <= r["t_end"])
        describe(
            "connect",
            recv[connect],
            np.full(connect.sum(), r["t_connect"]),
            f"; all {r['connect_sent']:.0f} messages (states, availability, discovery, site) "
            f"in {r['t_connect_done'] - r['t_connect']:.2f} s",
        )
        describe("burst", recv[burst], read[burst])
        describe(
            "steady",
            recv[steady],
            read[steady],
            f"; offered {r['recorded']:.0f} readings ({args.rate:g}/s); bridge CPU "
            f"{r['cpu'] * 100:.0f}% of one core, longest event-loop stall "
            f"{r['lag_max'] * 1000:.0f} ms; coalesced {r['coalesced']:.0f}, "
            f"dropped {r['dropped']:.0f}",
        )


if __name__ == "__main__":
    main()
