"""`hashpivot jobs`: the AI job queue from the shell, through the audited action path.

    hashpivot jobs submit --name NAME [--customer C] [--rate USD] [--min-vram 24GiB]
                          [--priority N] [--grace S] [--checkpoint-signal SIG]
                          [--checkpoint-dir DIR] [--env KEY=VALUE ...] -- PROGRAM [ARG ...]
    hashpivot jobs list [--json] [--state STATE ...]
    hashpivot jobs cancel ID
    hashpivot jobs reprioritise ID PRIORITY
    hashpivot jobs retry ID

It works on the queue in the state directory of the config (`--config`, default the bundled
demo site), so it can run next to a console: submits are picked up by the console's watch, and
cancelling a running job asks that console to checkpoint and stop it. Every command is an
action of origin CLI with the operator as actor (`--actor`, default the login name), so it is
in the audit log like a click in the TUI.

Exit status: 0 done, 1 refused or failed (the message says why), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

MISSING = "—"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`24GiB`, `24G` (binary), `80GB` (decimal), `1048576` → bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size; write e.g. 24GiB, 80GB or a number of bytes"
        )
    number, prefix, suffix = match.groups()
    power = "KMGT".find(prefix.upper()) + 1 if prefix else 0
    base = 1000 if suffix.upper() == "B" and prefix else 1024
    return int(float(number) * base**power)


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def add_jobs_parser(sub: Any, add_config_arg: Any) -> None:
    """Add `jobs` and its subcommands to the `hashpivot` parser."""
    jobs = sub.add_parser(
        "jobs", help="the AI job queue: submit, list, cancel, reprioritise, retry"
    )
    add_config_arg(jobs)
    jobs.add_argument("--actor", default=None, help="who (default: your login name)")
    jobs.add_argument("--reason", default="", help="why, for the audit log")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    submit = jobs_sub.add_parser("submit", help="queue a job: ... -- PROGRAM [ARG ...]")
    submit.add_argument("--name", required=True)
    submit.add_argument("--customer", default="")
    submit.add_argument("--rate", type=float, default=0.0, metavar="USD", help="USD per GPU-hour")
    submit.add_argument(
        "--min-vram",
        type=parse_size,
        default=0,
        metavar="SIZE",
        help="minimum GPU memory, e.g. 24GiB",
    )
    submit.add_argument("--priority", type=int, default=0, help="higher runs first (-1000..1000)")
    submit.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="S",
        help="seconds to checkpoint after the signal (default: the site's)",
    )
    submit.add_argument("--checkpoint-signal", default="SIGTERM", metavar="SIG")
    submit.add_argument("--checkpoint-dir", default=None, metavar="DIR")
    submit.add_argument("--env", type=_env_pair, action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--json", action="store_true", help="print the result as JSON")
    submit.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARG ...]")

    listing = jobs_sub.add_parser("list", help="every job, queue order first")
    listing.add_argument("--json", action="store_true")
    listing.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="STATE",
        help="only jobs in this state (repeatable)",
    )

    cancel = jobs_sub.add_parser("cancel", help="cancel a job (a running one checkpoints first)")
    cancel.add_argument("job_id", type=int, metavar="ID")

    prio = jobs_sub.add_parser("reprioritise", help="change a job's priority")
    prio.add_argument("job_id", type=int, metavar="ID")
    prio.add_argument("priority", type=int)

    retry = jobs_sub.add_parser(
        "retry", help="put a failed job back in line (resumes from its checkpoint)"
    )
    retry.add_argument("job_id", type=int, metavar="ID")


def cmd_jobs(args: argparse.Namespace, config_path: Path | None) -> int:
    from console.cli import _load_site_config, run_async

    config = _load_site_config(config_path)
    return run_async(_run(args, config))


async def _run(args: argparse.Namespace, config: Any) -> int:
    from console.actions import ActionPath, ActionRequest, Origin
    from console.audit import AuditLog
    from console.workloads.actions import WorkloadActions
    from console.workloads.db import WorkloadDb
    from console.workloads.queue import JobQueue, JobState

    state_dir = config.site.state_path
    db = WorkloadDb.in_state_dir(state_dir)
    audit = AuditLog.in_state_dir(state_dir)
    try:
        queue = JobQueue(
            db,
            config.jobs_path,
            default_grace_s=config.workloads.job_grace_s,
            max_attempts=config.workloads.max_attempts,
        )
        if args.jobs_command == "list":
            try:
                states = [JobState(s) for s in args.state] or None
            except ValueError:
                known = ", ".join(s.value for s in JobState)
                print(f"hashpivot jobs list: unknown state; known: {known}", file=sys.stderr)
                return 2
            jobs = await queue.list_jobs(states)
            if args.json:
                sys.stdout.write(json.dumps(msgspec.to_builtins(jobs), indent=2) + "\n")
            else:
                sys.stdout.write(jobs_table(jobs))
            return 0

        path = ActionPath(audit)
        WorkloadActions(queue).register(path)
        actor = args.actor or _login()
        if args.jobs_command == "submit":
            argv = list(args.argv)
            if argv and argv[0] == "--":
                argv = argv[1:]
            if not argv:
                print(
                    "hashpivot jobs submit: give the command after --, e.g. "
                    "-- python train.py --epochs 3",
                    file=sys.stderr,
                )
                return 2
            params: dict[str, Any] = {
                "argv": argv,
                "name": args.name,
                "customer": args.customer,
                "rate_usd_per_gpu_hour": args.rate,
                "min_vram_bytes": args.min_vram,
                "priority": args.priority,
                "checkpoint_signal": args.checkpoint_signal,
                "env": dict(args.env),
            }
            if args.grace is not None:
                params["grace_s"] = args.grace
            if args.checkpoint_dir is not None:
                params["checkpoint_dir"] = args.checkpoint_dir
            request = ActionRequest(
                action="job.submit",
                params=params,
                actor=actor,
                origin=Origin.CLI,
                reason=args.reason,
            )
        elif args.jobs_command in ("cancel", "retry"):
            request = ActionRequest(
                action=f"job.{args.jobs_command}",
                target=str(args.job_id),
                actor=actor,
                origin=Origin.CLI,
                reason=args.reason,
            )
        else:
            request = ActionRequest(
                action="job.reprioritise",
                target=str(args.job_id),
                params={"priority": args.priority},
                actor=actor,
                origin=Origin.CLI,
                reason=args.reason,
            )
        result = await path.perform(request)
        if getattr(args, "json", False):
            sys.stdout.write(json.dumps(msgspec.to_builtins(result), indent=2) + "\n")
        else:
            print(result.message, file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1
    finally:
        audit.close()
        db.close()


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def jobs_table(jobs: Sequence[Any]) -> str:
    """A fixed-width table of jobs; unreported values show as —."""
    headers = (
        "ID",
        "STATE",
        "PRIO",
        "NAME",
        "CUSTOMER",
        "GPU",
        "PROGRESS",
        "EARNED",
        "USD/GPU-H",
        "TRIES",
        "NOTE",
    )
    now = time.time()
    rows = []
    for job in jobs:
        rows.append(
            (
                str(job.id),
                job.state.value + (" (cancel requested)" if job.cancel_requested else ""),
                str(job.priority),
                job.name,
                job.customer or MISSING,
                job.gpu_uuid[:12] if job.gpu_uuid else MISSING,
                f"{job.progress:.0%}",
                f"${job.earned_usd_at(now):,.2f}",
                f"{job.rate_usd_per_gpu_hour:.2f}",
                str(job.attempts),
                (job.last_error or "")[:60],
            )
        )
    if not rows:
        return "no jobs\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"
