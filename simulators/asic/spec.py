"""What a simulated miner is: `MinerSpec`, `Fault`, the fault-spec grammar and the fleet planner.

Fault-spec grammar (``hashpivot simulate --faults SPEC``)
---------------------------------------------------------
A comma-separated list of items ``KIND[=ARG][@TARGET]``:

* ``KIND`` is one of `FAULT_KINDS` (``hang``, ``slow_drip``, ``reset``, ``refuse``, ``no_close``,
  ``delay``, ``truncate``, ``malformed``, ``wrong_units``, ``access_denied``, ``empty``,
  ``socket_text``, ``flapping``, ``joins_unsupported``, ``invalid_utf8``, ``trailing_space``,
  ``board_fail``, ``chip_fail``, ``overheat``, ``quirk``).
* ``ARG`` is required by ``slow_drip`` (seconds per chunk), ``delay`` (seconds), ``flapping``
  (period in seconds), ``board_fail`` (board index), ``chip_fail`` (missing chips on board 0) and
  ``quirk`` (``Q1`` … ``Q31``); the other kinds take none.
* ``TARGET`` picks the miners: ``@3`` (index), ``@0-9`` (inclusive range), ``@10%`` (that share of
  the fleet, at least one miner, chosen deterministically from the seed) or nothing (every miner).

Example: ``hang@10%,slow_drip=0.5@3,quirk=Q3@0-4,access_denied@7``. A bad item raises
`ValueError` naming the item and the valid kinds.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from simulators.asic.models import MODELS, VENDOR_OF_PERSONA

PERSONAS: frozenset[str] = frozenset(
    {"antminer_stock", "whatsminer", "braiins", "luxos", "avalon", "vnish", "cgminer"}
)

WHATSMINER_ADMIN_PASSWORD = "admin"
"""btminer's factory admin password; `MinerSpec.admin_password` overrides it per miner."""

# kind -> type of its argument: None (takes none), float, int or "quirk".
FAULT_KINDS: dict[str, type | str | None] = {
    "hang": None,
    "slow_drip": float,
    "reset": None,
    "refuse": None,
    "no_close": None,
    "delay": float,
    "truncate": None,
    "malformed": None,
    "wrong_units": None,
    "access_denied": None,
    "empty": None,
    "socket_text": None,
    "flapping": float,
    "joins_unsupported": None,
    "invalid_utf8": None,
    "trailing_space": None,
    "board_fail": int,
    "chip_fail": int,
    "overheat": None,
    "quirk": "quirk",
}

# RPC-wire quirks a simulator can emit; Q32–Q36 are web-API (HTTP) quirks and out of scope here.
QUIRKS: frozenset[str] = frozenset(f"Q{i}" for i in range(1, 32))
WEB_QUIRKS: frozenset[str] = frozenset(f"Q{i}" for i in range(32, 37))


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: ``Fault("delay", 2.0)``, ``Fault("quirk", "Q3")``."""

    kind: str
    arg: float | str | None = None

    def __post_init__(self) -> None:
        _validate_fault(self.kind, self.arg, item=str(self))

    def __str__(self) -> str:
        if self.arg is None:
            return self.kind
        arg = self.arg
        if isinstance(arg, float) and arg.is_integer():
            arg = int(arg)
        return f"{self.kind}={arg}"


@dataclass(frozen=True, slots=True)
class MinerSpec:
    """Everything that defines one simulated miner; the simulation is a pure function of it."""

    persona: str
    model: str
    host: str = "127.0.0.1"
    port: int = 4028
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    ambient_c: float = 25.0
    name: str | None = None
    reboot_s: float = 20.0
    """How long the RPC port stays closed after a reboot/restart command."""
    ramp_s: float = 5.0
    """How long hashrate takes to ramp fully down (sleep/curtail) or up (wake, after boot)."""
    noise: bool = True
    """False freezes hashrate noise: every window then reads the steady value (oracle tests)."""
    cache_s: float = 1.0
    """Simulated-time resolution: physics is sampled, and replies cached, per tick of this size."""
    uptime_s: float | None = None
    """Uptime at start; None picks a seeded value between one and twenty days."""
    pool_difficulty: float | None = None
    """Stratum difficulty; None picks one giving a few shares per ten seconds."""
    admin_password: str = WHATSMINER_ADMIN_PASSWORD
    """Whatsminer API admin password used to check privileged (encrypted) commands."""
    pools: tuple[tuple[str, str], ...] = field(default=())
    """(url, user) per configured pool; empty picks three realistic ones."""

    def __post_init__(self) -> None:
        if self.persona not in PERSONAS:
            raise ValueError(
                f"unknown persona {self.persona!r}; valid: {', '.join(sorted(PERSONAS))}"
            )
        model = MODELS.get(self.model)
        if model is None:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if model.vendor not in VENDOR_OF_PERSONA[self.persona]:
            raise ValueError(f"persona {self.persona!r} does not run on {self.model!r}")
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"simulators bind loopback addresses only, not {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")


def _validate_fault(kind: str, arg: float | str | None, *, item: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(
            f"bad fault item {item!r}: unknown kind {kind!r}; valid kinds: "
            + ", ".join(FAULT_KINDS)
        )
    want = FAULT_KINDS[kind]
    if want is None:
        if arg is not None:
            raise ValueError(f"bad fault item {item!r}: {kind} takes no argument")
        return
    if arg is None:
        raise ValueError(f"bad fault item {item!r}: {kind} needs an argument ({kind}=...)")
    if want == "quirk":
        if arg in WEB_QUIRKS:
            raise ValueError(
                f"bad fault item {item!r}: {arg} is a web-API quirk, out of scope for the RPC "
                "simulator (valid: Q1-Q31)"
            )
        if arg not in QUIRKS:
            raise ValueError(f"bad fault item {item!r}: quirk must be one of Q1-Q31")
        return
    if isinstance(arg, str) or arg < 0:
        raise ValueError(f"bad fault item {item!r}: {kind} needs a non-negative number")
    if want is int and not float(arg).is_integer():
        raise ValueError(f"bad fault item {item!r}: {kind} needs an integer")


def _parse_arg(kind: str, raw: str, item: str) -> float | str:
    if FAULT_KINDS.get(kind) == "quirk":
        return raw.strip().upper()
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"bad fault item {item!r}: {raw!r} is not a number") from None
    return value


def parse_fault_spec(spec: str, n: int, seed: int = 0) -> dict[int, tuple[Fault, ...]]:
    """Parse a fault spec (grammar in the module docstring) into miner index -> faults."""
    out: dict[int, list[Fault]] = {}
    for position, raw_item in enumerate(spec.split(",")):
        item = raw_item.strip()
        if not item:
            continue
        body, _, target = item.partition("@")
        kind, eq, raw_arg = body.partition("=")
        kind = kind.strip()
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"bad fault item {item!r}: unknown kind {kind!r}; valid kinds: "
                + ", ".join(FAULT_KINDS)
            )
        arg = _parse_arg(kind, raw_arg, item) if eq else None
        fault = Fault(kind, arg) if arg is None else _checked(kind, arg, item)
        for index in _targets(target.strip(), n, seed, position, item, has_at="@" in item):
            out.setdefault(index, []).append(fault)
    return {i: tuple(f) for i, f in sorted(out.items())}


def _checked(kind: str, arg: float | str, item: str) -> Fault:
    _validate_fault(kind, arg, item=item)
    return Fault(kind, arg)


def _targets(
    target: str, n: int, seed: int, position: int, item: str, *, has_at: bool
) -> list[int]:
    if not has_at:
        return list(range(n))
    if not target:
        raise ValueError(f"bad fault item {item!r}: empty target after '@'")
    try:
        if target.endswith("%"):
            pct = float(target[:-1])
            if not 0 < pct <= 100:
                raise ValueError
            count = max(1, round(n * pct / 100))
            # Seeded per item so that two percentage items pick independent miners.
            rng = random.Random(f"{seed}:{position}:{target}")
            return sorted(rng.sample(range(n), min(count, n)))
        if "-" in target:
            lo_s, hi_s = target.split("-", 1)
            lo, hi = int(lo_s), int(hi_s)
            if lo > hi:
                raise ValueError
        else:
            lo = hi = int(target)
    except ValueError:
        raise ValueError(
            f"bad fault item {item!r}: target {target!r} must be N, A-B or P%"
        ) from None
    if lo < 0 or hi >= n:
        raise ValueError(f"bad fault item {item!r}: target {target!r} outside 0-{n - 1}")
    return list(range(lo, hi + 1))


# A site's fleet: (persona, model, weight). Mostly stock Antminers, like real sites.
FLEET_MIX: tuple[tuple[str, str, int], ...] = (
    ("antminer_stock", "Antminer S19j Pro", 30),
    ("antminer_stock", "Antminer S21", 18),
    ("antminer_stock", "Antminer S19 XP", 10),
    ("whatsminer", "Whatsminer M50", 10),
    ("whatsminer", "Whatsminer M60S", 6),
    ("braiins", "Antminer S19j Pro", 8),
    ("luxos", "Antminer S19j Pro", 7),
    ("avalon", "AvalonMiner 1246", 5),
    ("vnish", "Antminer S19 XP", 6),
)


def _loopback_hosts(base_ip: str, n: int) -> list[str]:
    addr = int(ipaddress.IPv4Address(base_ip))
    net = ipaddress.IPv4Network("127.0.0.0/8")
    hosts: list[str] = []
    while len(hosts) < n:
        ip = ipaddress.IPv4Address(addr)
        if ip not in net:
            raise ValueError(f"fleet of {n} from {base_ip} leaves 127.0.0.0/8")
        if ip.packed[3] not in (0, 255):
            hosts.append(str(ip))
        addr += 1
    return hosts


def plan_fleet(
    n: int,
    *,
    base_ip: str = "127.0.1.1",
    port: int = 4028,
    port_per_miner: bool = False,
    faults: str | None = None,
    seed: int = 0,
) -> list[MinerSpec]:
    """A realistic, deterministic mix of `n` miners (see `FLEET_MIX`), one loopback IP each on
    `port`, or all on `base_ip` with consecutive ports from `port` when `port_per_miner`."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if not ipaddress.ip_address(base_ip).is_loopback:
        raise ValueError(f"base_ip must be a loopback address, not {base_ip!r}")
    if port_per_miner and port + n - 1 > 65535:
        raise ValueError(f"{n} consecutive ports from {port} exceed 65535")
    fault_map = parse_fault_spec(faults, n, seed) if faults else {}
    # Largest-remainder allocation keeps the mix realistic even for small fleets.
    total = sum(w for _, _, w in FLEET_MIX)
    quotas = [n * w / total for _, _, w in FLEET_MIX]
    counts = [int(q) for q in quotas]
    for i in sorted(range(len(quotas)), key=lambda i: counts[i] - quotas[i])[: n - sum(counts)]:
        counts[i] += 1
    kinds = [(p, m) for (p, m, _), c in zip(FLEET_MIX, counts, strict=True) for _ in range(c)]
    random.Random(seed).shuffle(kinds)
    hosts = [base_ip] * n if port_per_miner else _loopback_hosts(base_ip, n)
    specs = []
    for i, (persona, model) in enumerate(kinds):
        specs.append(
            MinerSpec(
                persona=persona,
                model=model,
                host=hosts[i],
                port=port + i if port_per_miner else port,
                seed=seed * 1_000_003 + i,
                faults=fault_map.get(i, ()),
                name=f"sim-{i:04d}",
            )
        )
    return specs
