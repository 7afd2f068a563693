"""What `hashpivot scan` is asked to sweep: CIDR arguments → a checked, de-duplicated host list.

Every refusal is loud and names the argument and the fix (`TargetError`); every liberty taken
with the input (host bits set, a network inside another one) is said in a note, never done
silently. Three rules protect the operator from a slip of the keyboard:

* more than `DEFAULT_MAX_HOSTS` addresses (a /20) needs `--force` — a /16 typed for a /24 is
  minutes of probing;
* public (internet-routable) addresses need `--force` — miners live on private management
  networks, and sweeping someone else's addresses is not a thing to do by accident;
* more than `HARD_MAX_HOSTS` (a /12) is refused even with `--force`: split the range.

Loopback, private (RFC 1918, ULA), link-local and shared (100.64/10) ranges are all fine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_MAX_HOSTS = 4096
"""Addresses one scan may cover without `--force` (a /20)."""
HARD_MAX_HOSTS = 1 << 20
"""Addresses one scan may cover at all (a /12 of IPv4); a larger sweep must be split."""

_FIX = "write a network as ADDRESS/PREFIX (e.g. 192.168.1.0/24) or a single address"


class TargetError(ValueError):
    """A scan target that cannot be used as given; the message names it and says the fix."""


@dataclass(frozen=True, slots=True)
class Targets:
    """The networks to sweep, in the order given, none inside another."""

    networks: tuple[IPNetwork, ...]
    host_count: int
    notes: tuple[str, ...] = ()

    def hosts(self) -> Iterator[str]:
        """Every address to probe, as text, network by network (lazily: a /12 is 1M hosts)."""
        for network in self.networks:
            for address in network.hosts():
                yield str(address)

    def describe(self) -> str:
        return ", ".join(str(network) for network in self.networks)


def _excluded(network: IPNetwork) -> frozenset[IPAddress]:
    """Addresses of `network` that `network.hosts()` leaves out (network / broadcast)."""
    if isinstance(network, ipaddress.IPv4Network):
        if network.prefixlen >= 31:
            return frozenset()
        return frozenset({network.network_address, network.broadcast_address})
    if network.prefixlen >= 127:
        return frozenset()
    return frozenset({network.network_address})  # the subnet-router anycast address


def _host_count(network: IPNetwork) -> int:
    return network.num_addresses - len(_excluded(network))


def _covered(inner: IPNetwork, outer: IPNetwork) -> bool:
    """Whether every address `inner.hosts()` yields is also yielded by `outer.hosts()`."""
    if inner.version != outer.version or not inner.subnet_of(outer):  # type: ignore[arg-type]
        return False
    inner_excluded = _excluded(inner)
    return not any(
        address in inner and address not in inner_excluded for address in _excluded(outer)
    )


def parse_target(text: str) -> tuple[IPNetwork, str | None]:
    """One argument → its network, and a note when it was read liberally (host bits set)."""
    raw = text.strip()
    if not raw:
        raise TargetError(f"bad target {text!r}: it is empty — fix: {_FIX}")
    try:
        return ipaddress.ip_network(raw, strict=True), None
    except ValueError as exc:
        reason = str(exc)
    # Host bits set ("192.168.1.7/24"): almost always "the /24 this address is in". Taking it
    # that way is convenient, and the note makes sure the operator sees it was reinterpreted.
    if "has host bits set" in reason:
        network = ipaddress.ip_network(raw, strict=False)
        return network, f"{raw} has host bits set; scanning {network}"
    address, slash, prefix = raw.partition("/")
    if slash and not prefix.isdigit():
        why = f"prefix {prefix!r} is not a number"
    elif slash and prefix.isdigit():
        try:
            version = ipaddress.ip_address(address).version
        except ValueError:
            why = f"{address!r} is not an IPv4 or IPv6 address"
        else:
            top = 32 if version == 4 else 128
            why = f"prefix length /{prefix} is out of range for IPv{version} (0-{top})"
    else:
        why = f"{raw!r} is not an IPv4 or IPv6 address or network"
    raise TargetError(f"bad target {text!r}: {why} — fix: {_FIX}")


def parse_targets(
    texts: Sequence[str], *, force: bool = False, max_hosts: int = DEFAULT_MAX_HOSTS
) -> Targets:
    """Check every argument and build the sweep; raise `TargetError` for the first bad one."""
    if not texts:
        raise TargetError(f"no target given — fix: {_FIX}")
    notes: list[str] = []
    parsed: list[tuple[str, IPNetwork]] = []
    for text in texts:
        network, note = parse_target(text)
        if note:
            notes.append(note)
        # IPv6 counts ::/8, loopback included, as "reserved": only an unusable range counts.
        reserved = network.is_reserved and not (network.is_loopback or network.is_private)
        if network.is_multicast or network.is_unspecified or reserved:
            raise TargetError(
                f"bad target {text!r}: {network} is a multicast, unspecified or reserved range, "
                f"where no miner can listen — fix: {_FIX}"
            )
        if network.is_global and not force:
            raise TargetError(
                f"target {text!r} includes public (internet-routable) addresses; miners sit on "
                "private management networks (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) — fix: "
                "scan the site's private subnet, or add --force if this really is your network"
            )
        parsed.append((text, network))

    kept: list[IPNetwork] = []
    for position, (text, network) in enumerate(parsed):
        outer = next(
            (
                other
                for index, (_, other) in enumerate(parsed)
                if index != position
                and _covered(network, other)
                # Equal networks: keep the first, drop the later ones.
                and (network != other or index < position)
            ),
            None,
        )
        if outer is not None:
            notes.append(f"{text} is inside {outer}; its hosts are scanned once")
        else:
            kept.append(network)

    count = sum(_host_count(network) for network in kept)
    if count == 0:
        raise TargetError(f"targets {' '.join(texts)!r} hold no host address — fix: {_FIX}")
    if count > HARD_MAX_HOSTS:
        raise TargetError(
            f"targets {' '.join(texts)!r} hold {count:,} addresses, more than one scan sweeps "
            f"({HARD_MAX_HOSTS:,}) — fix: split the range into smaller networks"
        )
    if count > max_hosts and not force:
        raise TargetError(
            f"targets {' '.join(texts)!r} hold {count:,} addresses, more than {max_hosts:,} "
            "(a /20); was a smaller prefix meant? — fix: narrow the range, or add --force to "
            "sweep it all"
        )
    return Targets(tuple(kept), count, tuple(notes))


__all__ = [
    "DEFAULT_MAX_HOSTS",
    "HARD_MAX_HOSTS",
    "TargetError",
    "Targets",
    "parse_target",
    "parse_targets",
]
