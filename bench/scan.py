"""Discovery benchmark: time for `hashpivot scan` to sweep a /22 holding 500 simulated miners.

The fleet (the `hashpivot simulate` firmware mix) runs in ANOTHER process pinned to core 1,
its miners spread over the /22 like a real site's DHCP pool: 500 of the 1,022 host addresses
answer on port 4028, the rest refuse. The scan runs as the real command
(`hashpivot scan CIDR --json`, pinned to core 0), so each figure includes Python start-up and
imports, exactly what an operator waits for. Printed per run:

- wall    from starting the command to its exit;
- scan    the report's own `duration_s` (first probe to last identification);
- probe   the report's `probe_s` (the sweep of all addresses, overlapping identification);
- CPU     user + system seconds of the scan process;
- found   identified / open but not identified / silent, checked against the fleet.

`--faults` adds simulator faults (same grammar as `hashpivot simulate --faults`), e.g.
`hang@2%` to see what hung miners cost (each holds its host for the identification deadline).

`--black-holes` makes every address without a miner drop connection attempts instead of
refusing them, which is what empty addresses on a real LAN do (no ARP reply, no RST): each then
costs the full probe deadline. On loopback this is a listening socket with a backlog of 0 whose
one queue slot is taken by a connection that is never accepted, so Linux drops further SYNs.

    ./dev bench scan                       # 3 runs, clean fleet, empty addresses refuse
    ./dev bench scan --black-holes         # empty addresses time out, like a real LAN
    ./dev bench scan --faults 'hang@2%'    # with 10 hung miners

Target (issue "Discovery"): under 15 s for the /22 with 500 miners.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NETWORK = "127.0.76.0/22"  # this benchmark's own loopback range


def pin(core: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})  # type: ignore[attr-defined]


def spread(count: int, network: str) -> list[str]:
    """`count` addresses spread evenly over the network's hosts (deterministic)."""
    hosts = list(ipaddress.ip_network(network).hosts())
    if count > len(hosts):
        raise SystemExit(f"{count} miners do not fit in {network} ({len(hosts)} hosts)")
    step = len(hosts) / count
    return [str(hosts[int(i * step)]) for i in range(count)]


def black_hole(host: str, port: int = 4028) -> list[socket.socket]:
    """Make `host:port` drop SYNs: a full accept queue (backlog 0, one connection queued)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(0)
    filler = socket.create_connection((host, port), timeout=5)
    return [listener, filler]


def serve(count: int, faults: str | None, holes: bool) -> None:
    """The simulator process: the fleet on spread addresses, one line when listening."""
    import asyncio

    from simulators.asic import AsicFleet, plan_fleet

    addresses = spread(count, NETWORK)
    planned = plan_fleet(count, base_ip="127.0.76.1", faults=faults)
    specs = [dataclasses.replace(s, host=host) for s, host in zip(planned, addresses, strict=True)]
    taken = set(addresses)
    empty = [str(a) for a in ipaddress.ip_network(NETWORK).hosts() if str(a) not in taken]
    kept = [sock for host in empty for sock in black_hole(host)] if holes else []

    async def run() -> None:
        async with AsicFleet(specs):
            hung = sum(1 for s in specs if any(f.kind == "hang" for f in s.faults))
            print(f"ready {len(specs)} {hung} {len(kept) // 2}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop

            uvloop.run(run())
        except ImportError:
            asyncio.run(run())


def start_fleet(count: int, faults: str | None, holes: bool) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, __file__, "--serve", str(count)]
    if faults:
        command += ["--faults", faults]
    if holes:
        command.append("--black-holes")
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=lambda: pin(1)
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit("the simulator process did not start")
    return proc, int(line[2])


def scan_once(extra: list[str]) -> tuple[float, float, dict[str, object]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "scan", NETWORK, "--json", "--quiet", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=lambda: pin(0),
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"scan failed ({result.returncode}): {result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--miners", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faults", default=None, help="simulator fault spec, e.g. 'hang@2%%'")
    parser.add_argument(
        "--black-holes", action="store_true", help="empty addresses drop SYNs (time out)"
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "scan_args", nargs="*", help="extra `hashpivot scan` options (after --)", default=[]
    )
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.faults, args.black_holes)
        return

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by both children
    fleet, hung = start_fleet(args.miners, args.faults, args.black_holes)
    hosts = sum(1 for _ in ipaddress.ip_network(NETWORK).hosts())
    print(
        f"fleet: {args.miners} simulated miners ({hung} hung) spread over {NETWORK} "
        f"({hosts} addresses), pid {fleet.pid} on core 1; scan on core 0; "
        f"faults: {args.faults or 'none'}; empty addresses "
        f"{'drop SYNs' if args.black_holes else 'refuse'}; cpu count {os.cpu_count()}"
    )
    try:
        for run in range(1, args.runs + 1):
            wall, cpu, doc = scan_once(args.scan_args)
            counts = doc["counts"]
            assert isinstance(counts, dict)
            expected = (args.miners - hung, hung, hosts - args.miners)
            found = (counts["identified"], counts["unidentified"], counts["silent"])
            check = "ok" if found == expected else f"MISMATCH, expected {expected}"
            silent = doc["silent"]
            assert isinstance(silent, list)
            timeouts = sum(1 for h in silent if h["reason"] == "timeout")
            print(
                f"run {run}: wall {wall:5.2f} s  scan {doc['duration_s']:5.2f} s  "
                f"probe {doc['probe_s']:5.2f} s  CPU {cpu:5.2f} s  "
                f"found {found[0]} identified / {found[1]} unidentified / {found[2]} silent "
                f"({timeouts} timed out) ({check})"
            )
    finally:
        fleet.terminate()
        fleet.wait(10)


if __name__ == "__main__":
    main()
