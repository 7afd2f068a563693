"""`hashpivot scan CIDR [CIDR ...]`: arguments, Ctrl-C, progress, output and exit codes.

Exit codes (also in docs/scan.md):

    0    the scan finished (whether or not anything was found)
    1    the scan could not run on this machine (e.g. out of file descriptors)
    2    bad usage: a bad target, a range too large or public without --force, a bad option
         value, a config file with problems
    130  interrupted by Ctrl-C: what was found so far is printed, marked partial

Results go to stdout (table, `--json` or `--toml`); progress, notes and the summary go to stderr,
so `hashpivot scan 10.0.3.0/24 --toml >> site.toml` appends nothing but TOML.

This module imports the engine lazily: `hashpivot --help` must not pay for the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.scan.engine import ScanOptions
    from console.scan.output import ConfigIndex
    from console.scan.result import ScanReport
    from console.scan.targets import Targets

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
FD_HEADROOM = 64  # stdio, the event loop, imports: what the scan itself must leave free


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{text} s is out of range (> 0 and <= 600)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 65_536:
        raise argparse.ArgumentTypeError(f"{value} is out of range (1 to 65536)")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (1 to 65535)")
    return value


def add_scan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `scan` and its options on the `hashpivot` subcommand parser."""
    scan = sub.add_parser(
        "scan",
        help="find the miners on a network (CGMiner API probe + identification)",
        description=(
            "Probe every address of the given networks for a miner API, identify what answers "
            "(make, model, firmware) and print the result. Exit codes: 0 done, 1 could not "
            "run, 2 bad usage, 130 interrupted (partial results printed). See docs/scan.md."
        ),
    )
    scan.add_argument(
        "targets",
        nargs="+",
        metavar="CIDR",
        help="network(s) to sweep, e.g. 10.0.3.0/24, or single addresses",
    )
    form = scan.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="JSON (schema: docs/scan.md)")
    form.add_argument(
        "--toml",
        action="store_true",
        help="[[asics]] entries to append to a site config (hosts in --config are skipped)",
    )
    scan.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        default=argparse.SUPPRESS,
        help="site config whose [[asics]] are already known: marked in the table and JSON, "
        "never repeated by --toml",
    )
    scan.add_argument(
        "--force",
        action="store_true",
        help="allow more than 4096 addresses, or public (internet-routable) ones",
    )
    scan.add_argument("--port", type=_port, default=None, help="CGMiner API port (default 4028)")
    scan.add_argument(
        "--no-other-ports",
        action="store_true",
        help="probe only the API port, not the Whatsminer API V3 port 4433 as well",
    )
    scan.add_argument(
        "--probe-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="connect deadline per address (default 1.0 s)",
    )
    scan.add_argument(
        "--probe-concurrency",
        type=_count,
        default=None,
        metavar="N",
        help="addresses probed at once (default 256)",
    )
    scan.add_argument(
        "--identify-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="deadline to identify one open host, all requests together (default 5.0 s)",
    )
    scan.add_argument(
        "--identify-concurrency",
        type=_count,
        default=None,
        metavar="N",
        help="hosts identified at once (default 64)",
    )
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _options(args: argparse.Namespace) -> ScanOptions:
    from console.scan.engine import ScanOptions

    defaults = ScanOptions()
    return ScanOptions(
        port=args.port if args.port is not None else defaults.port,
        other_ports=() if args.no_other_ports else defaults.other_ports,
        probe_timeout_s=args.probe_timeout or defaults.probe_timeout_s,
        probe_concurrency=args.probe_concurrency or defaults.probe_concurrency,
        identify_timeout_s=args.identify_timeout or defaults.identify_timeout_s,
        identify_concurrency=args.identify_concurrency or defaults.identify_concurrency,
    )


def _fit_to_fd_limit(options: ScanOptions, say: list[str]) -> ScanOptions:
    """Raise the soft `ulimit -n` if the scan needs it; else narrow the probe stage, and say so.

    Running out of descriptors mid-sweep would fail probes for reasons that have nothing to do
    with the hosts, so the budget is settled before the first connection.
    """
    try:
        import resource
    except ImportError:  # not POSIX: no limit to manage
        return options
    from dataclasses import replace

    needed = options.sockets_needed() + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return options
    # Shrink both stages by the same factor: neither may starve the other.
    share = max(soft - FD_HEADROOM, 0) / options.sockets_needed()
    probes = max(1, int(options.probe_concurrency * share))
    identify = max(1, int(options.identify_concurrency * share))
    say.append(
        f"note: the open-file limit is {soft} (ulimit -n); probing {probes} and identifying "
        f"{identify} hosts at once instead of {options.probe_concurrency} and "
        f"{options.identify_concurrency}"
    )
    return replace(options, probe_concurrency=probes, identify_concurrency=identify)


def _config_index(path: Path) -> ConfigIndex | None:
    """The hosts `path` already holds; None (problems printed) when it does not load."""
    from console.config import ConfigError, format_problem, load_config
    from console.scan.output import ConfigIndex

    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(format_problem(problem), file=sys.stderr)
        print(
            f"hashpivot scan: --config {path} has problems (above); fix them, or leave "
            "--config out",
            file=sys.stderr,
        )
        return None
    return ConfigIndex.of(config.asics)


async def _run(
    targets: Targets, options: ScanOptions, *, quiet: bool, notes: list[str]
) -> tuple[ScanReport, bool]:
    """Scan with progress on stderr; Ctrl-C stops the scan and returns what it found."""
    from console.scan.engine import Scanner
    from console.scan.output import summary_text
    from console.scan.progress import ProgressDisplay

    scanner = Scanner(targets, options)
    display = ProgressDisplay(scanner.live, sys.stderr, tty=sys.stderr.isatty())
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        scanner.stop()
        # A second Ctrl-C gets Python's default: if stopping itself hangs, it still ends.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)

    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        handled = True
    if not quiet:
        others = "".join(f" (+{port})" for port in options.other_ports)
        display.say(
            f"scan: {targets.host_count} address(es) in {targets.describe()}, "
            f"port {options.port}{others}; Ctrl-C stops and prints what was found"
        )
        for note in notes:
            display.say(note)
    drawing = None if quiet else asyncio.create_task(display.run())
    try:
        report = await scanner.run()
    finally:
        if drawing is not None:
            drawing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drawing
        if handled:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
    # Ctrl-C that lands as the last identification ends changes nothing: the report is whole.
    interrupted = interrupted and not report.complete
    summary = (
        f"scan {'interrupted' if interrupted else 'done'} in {report.duration_s:.1f} s: "
        + summary_text(report)
    )
    if quiet:
        if interrupted:
            print(summary, file=sys.stderr)
    else:
        display.close(summary)
    return report, interrupted


def cmd_scan(args: argparse.Namespace) -> int:
    """Run `hashpivot scan`; returns the exit code."""
    from console.scan.targets import TargetError, parse_targets

    try:
        targets = parse_targets(args.targets, force=args.force)
    except TargetError as exc:
        print(f"hashpivot scan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config_path: Path | None = getattr(args, "config", None)
    index = None
    if config_path is not None:
        index = _config_index(config_path)
        if index is None:
            return EXIT_USAGE
    notes = list(targets.notes)
    options = _fit_to_fd_limit(_options(args), notes)
    if args.quiet:
        for note in notes:
            print(note, file=sys.stderr)

    from console.cli import run_async

    try:
        report, interrupted = run_async(_run(targets, options, quiet=args.quiet, notes=notes))
    except KeyboardInterrupt:
        # Ctrl-C before the scan had installed its handler (or a second one while stopping).
        print("hashpivot scan: interrupted before any result", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(
            f"hashpivot scan: this machine could not run the scan: {exc} — fix: lower "
            "--probe-concurrency / --identify-concurrency, or raise `ulimit -n`",
            file=sys.stderr,
        )
        return EXIT_FAILED
    _print_result(report, args, index, config_path)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _print_result(
    report: ScanReport, args: argparse.Namespace, index: ConfigIndex | None, path: Path | None
) -> None:
    from console.scan.output import asics_toml, mark_in_config, report_json, report_table

    if index is not None:
        report = mark_in_config(report, index)
        if index.hostname_entries:
            print(
                f"note: {path} entries with a hostname were not compared (no DNS lookups): "
                + ", ".join(index.hostname_entries),
                file=sys.stderr,
            )
    if args.json:
        sys.stdout.buffer.write(report_json(report))
    elif args.toml:
        toml = asics_toml(report, index)
        sys.stdout.write(toml.text)
        if toml.skipped:
            print(
                f"skipped {len(toml.skipped)} host(s) already in {path}: "
                + ", ".join(f"{h.host} (as {h.config_name})" for h in toml.skipped),
                file=sys.stderr,
            )
        left_out = len(report.unidentified)
        print(
            f"wrote {len(toml.written)} [[asics]] entr{'y' if len(toml.written) == 1 else 'ies'}"
            + (
                f"; {left_out} open but unidentified host(s) left out (see the table or --json)"
                if left_out
                else ""
            ),
            file=sys.stderr,
        )
    else:
        sys.stdout.write(report_table(report, with_config=index is not None))
    sys.stdout.flush()


__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_scan_parser",
    "cmd_scan",
]
