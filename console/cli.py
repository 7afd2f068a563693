"""The `hashpivot` command: argument parsing and dispatch to one function per subcommand.

    hashpivot [--config FILE] [--operator NAME]
                                   the console (TUI); the bundled simulated site by default
    hashpivot snapshot [--config FILE] [--json]
    hashpivot headless [--config FILE] [--mqtt URL]
    hashpivot simulate [--asics N] [--gpus M] [--faults SPEC] [--base-ip IP] [--port N]
                       [--port-per-miner] [--gpu-dir DIR]
    hashpivot config check FILE [FILE ...]
    hashpivot scan CIDR [CIDR ...] [--json | --toml] [--config FILE]   (console/scan/)
    hashpivot jobs [--config FILE] submit|list|cancel|reprioritise ...   (console/jobs_cli.py)

Each subcommand imports what it needs inside its function: `hashpivot snapshot` must start fast
and must never load Textual.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from console.config import SiteConfig

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: about twice the connections per second of the stdlib loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


def _add_config_arg(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        # A subcommand's own --config must not reset one given before the subcommand.
        default=None if top_level else argparse.SUPPRESS,
        help="site config (TOML); default: the bundled simulated site, config/demo.toml",
    )


def _loopback_ip(text: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from exc
    if not address.is_loopback:
        raise argparse.ArgumentTypeError(
            f"{text} is not a loopback address: simulated miners listen on 127.0.0.0/8 only"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashpivot",
        description="Operations console for mining sites moving part of their fleet to AI compute.",
    )
    _add_config_arg(parser, top_level=True)
    parser.add_argument(
        "--operator",
        metavar="NAME",
        help="who the audit log records for actions taken in the console (default: $USER)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    snap = sub.add_parser("snapshot", help="poll the whole site once and print it")
    _add_config_arg(snap)
    snap.add_argument("--json", action="store_true", help="JSON (schema: docs/snapshot.md)")

    headless = sub.add_parser(
        "headless", help="run without a UI: publish the site to MQTT (docs/mqtt.md)"
    )
    _add_config_arg(headless)
    headless.add_argument(
        "--mqtt",
        metavar="URL",
        help="broker, e.g. mqtt://user:pass@host:1883/prefix or mqtts://... "
        "(default: [mqtt] url in the config, else mqtt://127.0.0.1:1883/hashpivot)",
    )

    sim = sub.add_parser(
        "simulate", help="run a simulated ASIC fleet until Ctrl-C; create simulated GPUs"
    )
    sim.add_argument("--asics", type=int, default=0, metavar="N", help="number of miners")
    sim.add_argument(
        "--gpus",
        type=int,
        default=0,
        metavar="M",
        help="create M simulated GPUs (mixed models) and print the config that uses them",
    )
    sim.add_argument(
        "--gpu-dir",
        type=Path,
        metavar="DIR",
        help="where the simulated GPUs keep their state (default: gpu-sim in the state dir)",
    )
    sim.add_argument(
        "--gpu-api-port",
        type=int,
        default=24100,
        metavar="PORT",
        help="first simulated GPU miner's API port in the printed config (default 24100)",
    )
    sim.add_argument("--faults", metavar="SPEC", help="fault spec, e.g. 'hang@10%%,quirk=Q3@0-4'")
    sim.add_argument(
        "--base-ip",
        type=_loopback_ip,
        default="127.0.1.1",
        help="first miner's IP (default 127.0.1.1)",
    )
    sim.add_argument("--port", type=int, default=4028, help="API port (default 4028)")
    sim.add_argument(
        "--port-per-miner",
        action="store_true",
        help="all miners on --base-ip with consecutive ports from --port",
    )
    sim.add_argument(
        "--seed", type=int, default=0, help="random seed for the fleet mix and physics"
    )

    cfg = sub.add_parser("config", help="config file tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = cfg_sub.add_parser("check", help="report every problem in config files")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")

    from console.scan.command import add_scan_parser

    add_scan_parser(sub)
    from console.jobs_cli import add_jobs_parser

    add_jobs_parser(sub, _add_config_arg)
    return parser


def cmd_config_check(files: Sequence[Path]) -> int:
    from console.config import check_config, format_problem

    failed = False
    for path in files:
        problems = check_config(path)
        if problems:
            failed = True
            for problem in problems:
                print(format_problem(problem), file=sys.stderr)
            print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def _load_site_config(path: Path | None) -> SiteConfig:
    from console.config import ConfigError, bundled_demo_path, format_problem, load_config

    try:
        return load_config(path or bundled_demo_path())
    except ConfigError as exc:
        for problem in exc.problems:
            print(format_problem(problem), file=sys.stderr)
        raise SystemExit(2) from None


def cmd_snapshot(config_path: Path | None, as_json: bool) -> int:
    from console.report import snapshot_json_bytes, snapshot_table
    from console.site import Site, SiteStartError

    config = _load_site_config(config_path)

    async def once() -> bytes:
        async with Site(config) as site:
            await site.poll_all_once()
            snap = site.snapshot()
        return snapshot_json_bytes(snap) if as_json else snapshot_table(snap).encode()

    try:
        sys.stdout.buffer.write(run_async(once()))
    except SiteStartError as exc:
        print(f"hashpivot snapshot: {exc}", file=sys.stderr)
        return 2
    return 0


def _simulate_gpus(count: int, directory: Path | None, seed: int, api_port: int) -> int:
    """Create (or reuse) a simulated GPU site and print the config that runs a console on it.

    The simulated GPUs need no process of their own: a console's NVML stand-in reads their
    shared state directory, and the miners and jobs it launches register there."""
    from console.config import default_state_dir
    from simulators import gpu_state
    from simulators.gpu_tool import MIXED_MODELS, config_snippet

    target = (directory or default_state_dir() / "gpu-sim").expanduser().resolve()
    if (target / "site.json").exists():
        site = gpu_state.load_site(target)
        if len(site.gpus) != count:
            print(
                f"hashpivot simulate: {target} already holds {len(site.gpus)} simulated GPUs, "
                f"not {count}; give another --gpu-dir or --gpus {len(site.gpus)}",
                file=sys.stderr,
            )
            return 2
    else:
        models = [MIXED_MODELS[i % len(MIXED_MODELS)] for i in range(count)]
        site = gpu_state.create_site(target, models, seed=seed)
    for g in site.gpus:
        print(f"gpu {g.index}  {g.uuid}  {g.model}  {g.pci_bus_id}", file=sys.stderr)
    print(f"# {count} simulated GPUs in {target}; add this to a site config:", file=sys.stderr)
    print(config_snippet(site, str(target), seed, api_port), end="")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.asic import plan_fleet
    from simulators.asic.fleet import run_simulator_cli

    if args.asics < 0 or args.gpus < 0 or args.asics + args.gpus == 0:
        print("hashpivot simulate: give --asics N and/or --gpus M (at least one)", file=sys.stderr)
        return 2
    if args.gpus:
        rc = _simulate_gpus(args.gpus, args.gpu_dir, args.seed, args.gpu_api_port)
        if rc or not args.asics:
            return rc
    try:
        specs = plan_fleet(
            args.asics,
            base_ip=args.base_ip,
            port=args.port,
            port_per_miner=args.port_per_miner,
            faults=args.faults,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"hashpivot simulate: {exc}", file=sys.stderr)
        return 2
    try:
        run_async(run_simulator_cli(specs))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_headless(config_path: Path | None, url: str | None) -> int:
    from console.headless.service import run_headless

    return run_headless(_load_site_config(config_path), url)


def cmd_tui(config_path: Path | None, operator: str | None = None) -> int:
    from console.tui.app import run_tui

    return run_tui(_load_site_config(config_path), operator=operator)


def main(argv: Sequence[str] | None = None) -> int:
    from console.alloc import keep_freed_buffers

    keep_freed_buffers()  # large numpy buffers are reused, not re-mapped per snapshot
    args = build_parser().parse_args(argv)
    if args.command == "snapshot":
        return cmd_snapshot(args.config, args.json)
    if args.command == "headless":
        return cmd_headless(args.config, args.mqtt)
    if args.command == "simulate":
        return cmd_simulate(args)
    if args.command == "config":
        return cmd_config_check(args.files)
    if args.command == "scan":
        from console.scan.command import cmd_scan

        return cmd_scan(args)
    if args.command == "jobs":
        from console.jobs_cli import cmd_jobs

        return cmd_jobs(args, args.config)
    return cmd_tui(args.config, args.operator)


if __name__ == "__main__":
    raise SystemExit(main())
