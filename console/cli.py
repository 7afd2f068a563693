"""The `hashpivot` command: argument parsing and dispatch to one function per subcommand.

    hashpivot [--config FILE]      the console (TUI); the bundled simulated site by default
    hashpivot snapshot [--config FILE] [--json]
    hashpivot headless [--config FILE] [--mqtt URL]
    hashpivot simulate --asics N [--faults SPEC] [--base-ip IP] [--port N] [--port-per-miner]
    hashpivot config check FILE [FILE ...]

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

    sim = sub.add_parser("simulate", help="run a simulated ASIC fleet until Ctrl-C")
    sim.add_argument("--asics", type=int, required=True, metavar="N", help="number of miners")
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.asic import plan_fleet
    from simulators.asic.fleet import run_simulator_cli

    if args.asics < 1:
        print("--asics must be at least 1", file=sys.stderr)
        return 2
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


def cmd_tui(config_path: Path | None) -> int:
    from console.tui.app import run_tui

    return run_tui(_load_site_config(config_path))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "snapshot":
        return cmd_snapshot(args.config, args.json)
    if args.command == "headless":
        return cmd_headless(args.config, args.mqtt)
    if args.command == "simulate":
        return cmd_simulate(args)
    if args.command == "config":
        return cmd_config_check(args.files)
    return cmd_tui(args.config)


if __name__ == "__main__":
    raise SystemExit(main())
