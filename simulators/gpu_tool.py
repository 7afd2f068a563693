"""Command-line access to a simulated GPU site's state directory (`simulators.gpu_state`), for
demos and manual fault drills while a console is running:

    python -m simulators.gpu_tool create DIR rtx4090 rtx3090 a100-80gb [--seed N]
    python -m simulators.gpu_tool show DIR
    python -m simulators.gpu_tool fault DIR GPU lost=true leak=true ambient_c=45
    python -m simulators.gpu_tool fault DIR GPU 'hang=["nvmlDeviceGetPowerUsage"]'
    python -m simulators.gpu_tool fault DIR GPU \\
        'call_errors={"nvmlDeviceGetFanSpeed": "NOT_SUPPORTED"}'
    python -m simulators.gpu_tool clear DIR GPU
    python -m simulators.gpu_tool xid DIR GPU 79
    python -m simulators.gpu_tool reset DIR GPU
    python -m simulators.gpu_tool driver DIR unloaded|loaded

GPU is an NVML index, a full UUID or a unique UUID prefix. Fault values are JSON (``true``,
``45.0``, lists, objects); anything that is not JSON is taken as a string.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import msgspec

from simulators import gpu_state
from simulators.gpu_models import model


def _gpu(site: gpu_state.SiteInfo, ref: str) -> gpu_state.SiteGpu:
    if ref.isdigit() and int(ref) < len(site.gpus):
        return site.gpus[int(ref)]
    matches = [g for g in site.gpus if g.uuid.startswith(ref)]
    if len(matches) != 1:
        known = ", ".join(f"{g.index}={g.uuid}" for g in site.gpus)
        raise SystemExit(f"error: {ref!r} names {len(matches)} GPUs; known: {known}")
    return matches[0]


def _value(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _show(d: str) -> None:
    site = gpu_state.load_site(d)
    reader = gpu_state.StateReader(d)
    sf = reader.site_faults()
    print(
        f"site {d}: driver {site.driver_version}, CUDA {site.cuda_driver_version}"
        + (" — DRIVER NOT LOADED" if sf.driver_not_loaded else "")
    )
    for g in site.gpus:
        view = reader.view(g.uuid)
        faults = msgspec.structs.asdict(view.faults)
        active = {k: v for k, v in faults.items() if v not in (False, None, {}, ())}
        print(
            f"{g.index} {g.uuid} {model(g.model).name} {g.pci_bus_id} "
            f"PCIe {g.pcie_generation}x{g.pcie_width}"
        )
        if active:
            print(f"    faults: {json.dumps(active)}")
        if view.settings.power_limit_mw is not None:
            print(f"    power limit: {view.settings.power_limit_mw / 1000:.0f} W")
        for p in view.processes:
            print(
                f"    pid {p.pid} {p.name}: {p.used_memory_bytes >> 20} MiB, "
                f"{p.util_gpu_pct:.0f} % util"
            )
        for m in view.leaked:
            print(f"    leaked by exited pid {m.pid} ({m.name}): {m.used_memory_bytes >> 20} MiB")


MIXED_MODELS = ("rtx3090", "rtx4090", "a100-80gb", "h100", "l40s")
"""The board mix `hashpivot simulate --gpus N` cycles through."""


def config_snippet(site: gpu_state.SiteInfo, state_dir: str, seed: int, api_port: int) -> str:
    """`[gpu_simulation]` and `[[gpus]]` TOML for a console to run on this simulated site:
    every GPU idle at first, with a simulated miner on consecutive API ports."""
    models = ", ".join(json.dumps(g.model) for g in site.gpus)
    lines = [
        "[gpu_simulation]",
        f"models = [{models}]",
        f"seed = {seed}",
        f"dir = {json.dumps(state_dir)}",
    ]
    for g in site.gpus:
        lines += [
            "",
            "[[gpus]]",
            f'name = "gpu{g.index}-{g.model}"',
            f'uuid = "{g.uuid}"',
            'initial_mode = "idle"',
            'miner_argv = ["{python}", "-m", "simulators.gpu_miner", "--api-port", "{api_port}"]',
            f"miner_api_port = {api_port + g.index}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m simulators.gpu_tool", description="Inspect and fault a simulated GPU site."
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("dir")
    c.add_argument("models", nargs="+")
    c.add_argument("--seed", type=int, default=0)
    sub.add_parser("show").add_argument("dir")
    for name in ("fault", "clear", "xid", "reset"):
        sp = sub.add_parser(name)
        sp.add_argument("dir")
        sp.add_argument("gpu")
        if name == "fault":
            sp.add_argument("changes", nargs="+", metavar="NAME=VALUE")
        if name == "xid":
            sp.add_argument("xid", type=int)
    dr = sub.add_parser("driver")
    dr.add_argument("dir")
    dr.add_argument("state", choices=["loaded", "unloaded"])
    args = p.parse_args(argv)

    if args.cmd == "create":
        site = gpu_state.create_site(args.dir, args.models, seed=args.seed)
        for g in site.gpus:
            print(f"{g.index} {g.uuid} {g.model}")
        return 0
    if args.cmd == "show":
        _show(args.dir)
        return 0
    if args.cmd == "driver":
        gpu_state.set_site_faults(args.dir, driver_not_loaded=args.state == "unloaded")
        return 0
    g = _gpu(gpu_state.load_site(args.dir), args.gpu)
    if args.cmd == "fault":
        changes: dict[str, object] = {}
        for item in args.changes:
            key, sep, raw = item.partition("=")
            if not sep:
                p.error(f"{item!r}: expected NAME=VALUE, e.g. lost=true")
            changes[key] = _value(raw)
        try:
            faults = gpu_state.set_faults(args.dir, g.uuid, **changes)
        except ValueError as exc:
            p.error(str(exc))
        print(json.dumps(msgspec.structs.asdict(faults)))
    elif args.cmd == "clear":
        gpu_state.clear_faults(args.dir, g.uuid)
    elif args.cmd == "xid":
        print(gpu_state.inject_xid(args.dir, g.uuid, args.xid))
    elif args.cmd == "reset":
        try:
            print(f"freed {gpu_state.reset_gpu(args.dir, g.uuid) >> 20} MiB")
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
