"""A fake GPU miner: a real OS process that occupies one simulated GPU and serves a miner API.

    HASHPIVOT_SIM_GPU_STATE=<dir> CUDA_VISIBLE_DEVICES=<GPU UUID> \\
        python -m simulators.gpu_miner --api-port 4067 [--dialect trex|lolminer] [--algo kawpow]
            [--dag-seconds 8] [--dag-bytes N] [--ramp-seconds 3] [--ignore-sigint]
            [--ignore-sigterm] [--pool URL] [--user WALLET]

It behaves like one T-Rex (or lolMiner) process mining on one GPU:

* it finds its GPU the way CUDA would (``CUDA_VISIBLE_DEVICES``, full or prefix UUID, or an
  ordinal under ``CUDA_DEVICE_ORDER``) and exits 1 with CUDA's message when there is none;
* it registers on that GPU in the simulated site (`simulators.gpu_state`): a CUDA context
  first, then the DAG growing over ``--dag-seconds`` (exit 1 "out of memory" when the GPU has
  not that much free), then full utilisation while mining;
* its hashrate is 0 during the DAG build, then ramps to the model's nominal rate for the
  algorithm, scaled by the SM clock the simulated GPU actually runs at (a power cap or a
  thermal slowdown costs hashrate), with small deterministic noise; shares accrue from the
  hashes done;
* it serves the miner's read API on 127.0.0.1 only: T-Rex ``GET /summary`` (and
  ``/control?pause=true|false`` — pausing keeps the DAG in memory, as the real miner does, and
  ``/control?command=shutdown``), or lolMiner's newer JSON on ``/summary`` and ``/``;
  ``--api-port 0`` picks a free port; the chosen address is printed on stdout as T-Rex logs it
  ("ApiServer: HTTP server started on 127.0.0.1:PORT");
* SIGINT and SIGTERM stop it cleanly (exit 0) unless ``--ignore-sigint`` / ``--ignore-sigterm``
  (a miner that will not die, to exercise the supervisor's escalation); it never withdraws its
  GPU claim itself: the simulated driver frees it when it sees the process gone.

Nominal hashrates and DAG sizes are rough public figures per model and algorithm, not
measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from simulators import gpu_state
from simulators.gpu_models import GpuModel, model
from simulators.nvml import NvmlSim

GIB = 1 << 30
MIB = 1 << 20
CONTEXT_BYTES = 310 * MIB
"""What a CUDA context takes before the miner allocates anything."""

# Nominal MH/s per (algorithm, model): rough public benchmark figures.
NOMINAL_MHS: dict[str, dict[str, float]] = {
    "kawpow": {"rtx3090": 27.0, "rtx4090": 55.0, "a100-80gb": 38.0, "h100": 62.0, "l40s": 46.0},
    "etchash": {
        "rtx3090": 121.0,
        "rtx4090": 130.0,
        "a100-80gb": 195.0,
        "h100": 240.0,
        "l40s": 110.0,
    },
    "autolykos2": {
        "rtx3090": 190.0,
        "rtx4090": 300.0,
        "a100-80gb": 270.0,
        "h100": 390.0,
        "l40s": 280.0,
    },
}
DAG_BYTES: dict[str, int] = {
    "kawpow": int(4.4 * GIB),
    "etchash": int(3.4 * GIB),
    "autolykos2": int(3.9 * GIB),
}
COIN: dict[str, str] = {"kawpow": "RVN", "etchash": "ETC", "autolykos2": "ERG"}
SHARE_SECONDS = 8.0
"""A share is found about every this many seconds at nominal hashrate."""
VERSION_TREX = "0.26.8"
VERSION_LOLMINER = "1.88"


def _cuda_text(version: int) -> str:
    """12040 → "12.40", as T-Rex prints the CUDA version."""
    return f"{version // 1000}.{version % 1000 // 10}0"


def _noise(seed: int, k: int) -> float:
    """Deterministic noise in [-1, 1) for bucket k."""
    z = (seed * 0x9E3779B97F4A7C15 + k * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 31)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return ((z ^ (z >> 29)) / 2.0**63) - 1.0


@dataclass(slots=True)
class MinerState:
    """What the miner is doing; advanced from the monotonic clock when someone asks."""

    started: float
    dag_done_at: float
    ramp_s: float
    nominal_hs: float
    seed: int
    paused: bool = False
    last_t: float = 0.0
    hashes: float = 0.0
    clock_factor: float = 1.0

    def rate_hs(self, now: float) -> float:
        if self.paused or now < self.dag_done_at:
            return 0.0
        ramp = min(1.0, (now - self.dag_done_at) / self.ramp_s) if self.ramp_s > 0 else 1.0
        wobble = 1.0 + 0.01 * _noise(self.seed, int(now))
        return self.nominal_hs * ramp * self.clock_factor * wobble

    def advance(self, now: float) -> None:
        # Integrate in one-second slices so the share count does not depend on polling.
        t = max(self.last_t, self.started)
        while t < now:
            step = min(1.0, now - t)
            self.hashes += self.rate_hs(t) * step
            t += step
        self.last_t = now


class Miner:
    def __init__(self, args: argparse.Namespace, site: gpu_state.SiteInfo, gpu: gpu_state.SiteGpu):
        self.args = args
        self.state_dir = os.environ[gpu_state.STATE_ENV]
        self.site = site
        self.gpu = gpu
        self.model: GpuModel = model(gpu.model)
        algo = args.algo
        self.nominal_hs = NOMINAL_MHS[algo][gpu.model] * 1e6 * args.hashrate_scale
        self.dag_bytes = args.dag_bytes if args.dag_bytes is not None else DAG_BYTES[algo]
        now = time.monotonic()
        self.started_wall = time.time()
        self.state = MinerState(
            started=now,
            dag_done_at=now + args.dag_seconds,
            ramp_s=args.ramp_seconds,
            nominal_hs=self.nominal_hs,
            seed=gpu.index + 17,
            last_t=now,
        )
        self.sim = NvmlSim(self.state_dir)
        self.registration: gpu_state.Registration | None = None
        self.stop_event = asyncio.Event()

    # -- GPU occupation ----------------------------------------------------------------

    async def occupy(self) -> None:
        """Context, then the DAG growing in steps, then full load; keep the claim current."""
        reg = gpu_state.Registration(
            self.state_dir,
            self.gpu.uuid,
            name="t-rex" if self.args.dialect == "trex" else "lolMiner",
            used_memory_bytes=CONTEXT_BYTES,
            util_gpu_pct=0.0,
            power_intensity=0.95,
        )
        self.registration = reg
        print(f"GPU #0: {self.model.name} ({self.gpu.pci_bus_id}) - generating DAG", flush=True)
        steps = max(1, math.ceil(self.args.dag_seconds / 0.25))
        for i in range(1, steps + 1):
            reg.update(
                used_memory_bytes=CONTEXT_BYTES + self.dag_bytes * i // steps,
                util_gpu_pct=60.0,
                util_memory_pct=70.0,
            )
            if i < steps:
                await asyncio.sleep(self.args.dag_seconds / steps)
        print(f"GPU #0: DAG generated ({self.dag_bytes / GIB:.2f} GB)", flush=True)
        await self._mining_load()

    async def _mining_load(self) -> None:
        assert self.registration is not None
        if self.state.paused:
            self.registration.update(util_gpu_pct=0.0, util_memory_pct=0.0)
        else:
            self.registration.update(util_gpu_pct=100.0, util_memory_pct=92.0)

    async def set_paused(self, paused: bool) -> None:
        now = time.monotonic()
        self.state.advance(now)
        self.state.paused = paused
        if self.registration is not None and now >= self.state.dag_done_at:
            await self._mining_load()
        print("Miner paused" if paused else "Miner resumed", flush=True)

    # -- what the API reports --------------------------------------------------------------

    def _snapshot(self) -> dict[str, float | int | None]:
        now = time.monotonic()
        reading = self.sim.reading(self.gpu.uuid)
        # Core-bound algorithms scale with the SM clock the GPU really runs at.
        self.state.clock_factor = min(1.0, reading.sm_clock_mhz / self.model.sm_clock_boost_mhz)
        if self.state.paused or now < self.state.dag_done_at:
            self.state.clock_factor = 1.0
        self.state.advance(now)
        share_hashes = self.nominal_hs * SHARE_SECONDS
        accepted = int(self.state.hashes // share_hashes)
        uptime = now - self.state.started
        return {
            "rate": self.state.rate_hs(now),
            "avg": self.state.hashes / uptime if uptime > 0 else 0.0,
            "accepted": accepted,
            "rejected": accepted // 150,
            "uptime": int(uptime),
            "temp": reading.temp_c,
            "power": reading.power_mw / 1000.0,
            "fan": reading.fan_pct,
            "cclk": reading.sm_clock_mhz,
            "mclk": reading.mem_clock_mhz,
        }

    def trex_summary(self) -> dict[str, object]:
        s = self._snapshot()
        rate, avg = int(s["rate"] or 0), int(s["avg"] or 0)
        power = round(float(s["power"] or 0.0))
        shares = {
            "accepted_count": s["accepted"],
            "invalid_count": 0,
            "rejected_count": s["rejected"],
            "solved_count": 0,
        }
        gpu = {
            "cclock": s["cclk"],
            "dag_build_mode": 0,
            "device_id": 0,
            "efficiency": f"{rate / 1000 / power:.0f}kH/W" if power else "0kH/W",
            "fan_speed": s["fan"] if s["fan"] is not None else 0,
            "gpu_id": 0,
            "gpu_user_id": 0,
            "hashrate": rate,
            "hashrate_day": avg,
            "hashrate_hour": avg,
            "hashrate_instant": rate,
            "hashrate_minute": rate,
            "intensity": 22.0,
            "low_load": False,
            "mclock": s["mclk"],
            "name": self.model.name.removeprefix("NVIDIA ").removeprefix("GeForce "),
            "paused": self.state.paused,
            "pci_bus": int(self.gpu.pci_bus_id.split(":")[1], 16),
            "pci_domain": 0,
            "pci_id": 0,
            "potentially_unstable": False,
            "power": power,
            "power_avr": power,
            "shares": shares,
            "temperature": s["temp"],
            "uuid": self.gpu.uuid.removeprefix("GPU-").replace("-", ""),
            "vendor": "NVIDIA",
        }
        return {
            "accepted_count": s["accepted"],
            "active_pool": {
                "difficulty": "4.00 G",
                "ping": 31,
                "retries": 0,
                "url": self.args.pool,
                "user": self.args.user,
                "worker": "rig",
            },
            "algorithm": self.args.algo,
            "api": "4.2",
            "build_date": "Mar  6 2024 10:02:51",
            "coin": COIN[self.args.algo],
            "cuda": _cuda_text(self.site.cuda_driver_version),
            "description": "T-Rex NVIDIA GPU miner",
            "driver": self.site.driver_version,
            "gpu_total": 1,
            "gpus": [gpu],
            "hashrate": rate,
            "hashrate_day": avg,
            "hashrate_hour": avg,
            "hashrate_minute": rate,
            "invalid_count": 0,
            "name": "t-rex",
            "os": "linux",
            "paused": self.state.paused,
            "rejected_count": s["rejected"],
            "revision": "a2cf8b6e1d4f",
            "sharerate": 60.0 / SHARE_SECONDS,
            "sharerate_average": 60.0 / SHARE_SECONDS,
            "solved_count": 0,
            "stat_by_gpu": [shares],
            "success": 1,
            "ts": int(time.time()),
            "uptime": s["uptime"],
            "version": VERSION_TREX,
            "watchdog_stat": {"built_in": True, "total_restarts": 0, "uptime": s["uptime"]},
        }

    def lolminer_summary(self) -> dict[str, object]:
        s = self._snapshot()
        mhs = round(float(s["rate"] or 0.0) / 1e6, 2)
        bus = int(self.gpu.pci_bus_id.split(":")[1], 16)
        return {
            "Software": f"lolMiner {VERSION_LOLMINER}",
            "Session": {
                "Startup": int(self.started_wall),
                "Startup_String": time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(self.started_wall)
                ),
                "Uptime": s["uptime"],
                "Last_Update": int(time.time()),
            },
            "Num_Workers": 1,
            "Workers": [
                {
                    "Index": 0,
                    "Name": self.model.name,
                    "Power": round(float(s["power"] or 0.0), 1),
                    "CCLK": s["cclk"],
                    "MCLK": s["mclk"],
                    "Core_Temp": s["temp"],
                    "Juc_Temp": (s["temp"] or 0) + 9,
                    "Mem_Temp": 0,
                    "Fan_Speed": s["fan"] if s["fan"] is not None else 0,
                    "LHR_Unlock_Value": 0,
                    "PCIE_Address": f"{bus}:0",
                }
            ],
            "Num_Algorithms": 1,
            "Algorithms": [
                {
                    "Algorithm": self.args.algo.capitalize(),
                    "Algorithm_Appendix": "",
                    "Pool": self.args.pool.split("://")[-1],
                    "User": self.args.user,
                    "Worker": "rig",
                    "Performance_Unit": "Mh/s",
                    "Performance_Factor": 1000000,
                    "Total_Performance": mhs,
                    "Total_Accepted": s["accepted"],
                    "Total_Rejected": s["rejected"],
                    "Total_Stales": 0,
                    "Total_Errors": 0,
                    "Worker_Performance": [mhs],
                    "Worker_Accepted": [s["accepted"]],
                    "Worker_Rejected": [s["rejected"]],
                    "Worker_Stales": [0],
                    "Worker_Errors": [0],
                }
            ],
        }

    # -- HTTP API --------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            if len(parts) != 3 or parts[0] != "GET":
                await self._respond(writer, 405, {"error": "only GET is served"})
                return
            url = urlsplit(parts[1])
            status, body = await self.route(url.path, parse_qs(url.query))
            await self._respond(writer, status, body)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()

    async def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, object]]:
        if self.args.dialect == "trex":
            if path == "/summary":
                return 200, self.trex_summary()
            if path == "/control":
                if query.get("command") == ["shutdown"]:
                    print("Shutdown requested through the API", flush=True)
                    self.stop_event.set()
                    return 200, {"success": 1}
                if "pause" in query:
                    await self.set_paused(query["pause"][0].split(":")[0] == "true")
                    return 200, {"success": 1}
            return 404, {"error": "not found"}
        if path in ("/summary", "/"):
            return 200, self.lolminer_summary()
        return 404, {"error": "not found"}

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulators.gpu_miner", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--api-port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--api-host", default="127.0.0.1", choices=["127.0.0.1"], help="loopback only")
    p.add_argument("--dialect", choices=["trex", "lolminer"], default="trex")
    p.add_argument("--algo", choices=sorted(NOMINAL_MHS), default="kawpow")
    p.add_argument("--pool", default="stratum+tcp://rvn.2miners.com:6060")
    p.add_argument("--user", default="RSimulatedWallet0000000000000000000")
    p.add_argument("--dag-seconds", type=float, default=8.0)
    p.add_argument("--dag-bytes", type=int, default=None, help="default: the algorithm's DAG")
    p.add_argument("--ramp-seconds", type=float, default=3.0)
    p.add_argument("--hashrate-scale", type=float, default=1.0, help="silicon lottery factor")
    p.add_argument("--ignore-sigint", action="store_true")
    p.add_argument("--ignore-sigterm", action="store_true")
    return p.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    state_dir = os.environ.get(gpu_state.STATE_ENV)
    if not state_dir:
        print(f"error: {gpu_state.STATE_ENV} is not set (the simulated GPU site)", file=sys.stderr)
        return 2
    site = gpu_state.load_site(state_dir)
    try:
        gpu = gpu_state.visible_gpu(site, os.environ)
    except gpu_state.NoCudaDevice as exc:
        print(f"CUDA error: {exc}", file=sys.stderr, flush=True)
        return 1
    miner = Miner(args, site, gpu)
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals, ignore: bool) -> None:
        if ignore:
            print(f"{sig.name} received and ignored", flush=True)
            return
        print(f"{sig.name} received, shutting down", flush=True)
        miner.stop_event.set()

    loop.add_signal_handler(signal.SIGINT, on_signal, signal.SIGINT, args.ignore_sigint)
    loop.add_signal_handler(signal.SIGTERM, on_signal, signal.SIGTERM, args.ignore_sigterm)
    server = await asyncio.start_server(miner.handle, args.api_host, args.api_port)
    port = server.sockets[0].getsockname()[1]
    print(f"ApiServer: HTTP server started on {args.api_host}:{port}", flush=True)
    occupy = asyncio.create_task(miner.occupy())
    stop = asyncio.create_task(miner.stop_event.wait())
    done, _ = await asyncio.wait({occupy, stop}, return_when=asyncio.FIRST_COMPLETED)
    failure = occupy.exception() if occupy in done else None
    if failure is not None:
        oom = isinstance(failure, gpu_state.OutOfMemory)
        print(f"CUDA error: {failure}" if oom else repr(failure), file=sys.stderr, flush=True)
        server.close()
        return 1
    await stop
    occupy.cancel()
    server.close()
    await server.wait_closed()
    print("Miner stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_run(_parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
