"""Stateful pool configuration of one miner and the cgminer pool writes with their exact codes.

Shares are credited to the pool that was active while they were found, so per-pool Accepted sums
to the miner's Accepted. Messages and codes follow cgminer 4.11.1 `api.c` (§3 "Writes").
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_POOLS = 16


@dataclass(slots=True)
class Pool:
    url: str
    user: str
    password: str = "x"
    enabled: bool = True
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    """Shares credited while not active (frozen counters)."""


@dataclass(frozen=True, slots=True)
class PoolView:
    """One pool as seen at one tick."""

    index: int
    url: str
    user: str
    enabled: bool
    active: bool
    priority: int
    accepted: int
    rejected: int
    stale: int

    @property
    def status(self) -> str:
        return "Alive" if self.enabled else "Disabled"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a pool write: severity letter, cgminer code and message."""

    sev: str
    code: int
    msg: str

    @property
    def ok(self) -> bool:
        return self.sev in ("S", "I")


def default_pools(seed: int, name: str) -> list[tuple[str, str]]:
    worker = f"hashpivot.{name}"
    return [
        ("stratum+tcp://btc.pool.example:3333", worker),
        ("stratum+tcp://btc-backup.pool.example:443", worker),
        ("stratum+tcp://solo.pool.example:3333", f"bc1qsim{seed % 100000:05d}"),
    ]


def _atoi(s: str) -> int:
    # cgminer parses pool ids with atoi(): leading digits, anything else is 0.
    s = s.strip()
    sign = -1 if s.startswith("-") else 1
    digits = ""
    for ch in s.lstrip("+-"):
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


class PoolTable:
    """The pool list; the active pool is the one `switchpool` chose (failover order otherwise)."""

    def __init__(self, pools: list[tuple[str, str]]) -> None:
        self.pools = [Pool(url, user) for url, user in pools]
        self.active = 0 if self.pools else -1
        # Miner share counters at the moment the active pool became active.
        self._mark = (0, 0, 0)

    def views(self, accepted: int, rejected: int, stale: int) -> list[PoolView]:
        out = []
        for i, p in enumerate(self.pools):
            a, r, s = p.accepted, p.rejected, p.stale
            if i == self.active:
                a += max(0, accepted - self._mark[0])
                r += max(0, rejected - self._mark[1])
                s += max(0, stale - self._mark[2])
            out.append(PoolView(i, p.url, p.user, p.enabled, i == self.active, i, a, r, s))
        return out

    def reset_counters(self) -> None:
        """After a restart the miner's counters start from zero, and so do the pools'."""
        for p in self.pools:
            p.accepted = p.rejected = p.stale = 0
        self._mark = (0, 0, 0)

    def _activate(self, index: int, counters: tuple[int, int, int]) -> None:
        if 0 <= self.active < len(self.pools) and self.active != index:
            old = self.pools[self.active]
            old.accepted += max(0, counters[0] - self._mark[0])
            old.rejected += max(0, counters[1] - self._mark[1])
            old.stale += max(0, counters[2] - self._mark[2])
            self._mark = counters
        self.active = index

    def _pick(self, param: str | None) -> tuple[int, WriteResult | None]:
        if not self.pools:
            return -1, WriteResult("E", 8, "No pools")
        if param is None or param == "":
            return -1, WriteResult("E", 25, "Missing pool id parameter")
        idx = _atoi(param)
        if not 0 <= idx < len(self.pools):
            return -1, WriteResult(
                "E", 26, f"Invalid pool id {idx} - range is 0 - {len(self.pools) - 1}"
            )
        return idx, None

    def switch(self, param: str | None, counters: tuple[int, int, int]) -> WriteResult:
        idx, err = self._pick(param)
        if err:
            return err
        pool = self.pools[idx]
        pool.enabled = True
        self._activate(idx, counters)
        return WriteResult("S", 27, f"Switching to pool {idx}:'{pool.url}'")

    def enable(self, param: str | None, counters: tuple[int, int, int]) -> WriteResult:
        idx, err = self._pick(param)
        if err:
            return err
        pool = self.pools[idx]
        if pool.enabled:
            return WriteResult("I", 49, f"Pool {idx}:'{pool.url}' already enabled")
        pool.enabled = True
        if not self.pools[self.active].enabled or idx < self.active:
            # Failover: a higher-priority pool coming back takes over.
            self._activate(idx, counters)
        return WriteResult("S", 47, f"Enabling pool {idx}:'{pool.url}'")

    def disable(self, param: str | None, counters: tuple[int, int, int]) -> WriteResult:
        idx, err = self._pick(param)
        if err:
            return err
        pool = self.pools[idx]
        if not pool.enabled:
            return WriteResult("I", 50, f"Pool {idx}:'{pool.url}' already disabled")
        if sum(1 for p in self.pools if p.enabled) <= 1:
            return WriteResult("E", 51, f"Cannot disable last active pool {idx}:'{pool.url}'")
        pool.enabled = False
        if idx == self.active:
            nxt = next(i for i, p in enumerate(self.pools) if p.enabled)
            self._activate(nxt, counters)
        return WriteResult("S", 48, f"Disabling pool {idx}:'{pool.url}'")

    def add(self, param: str | None) -> WriteResult:
        if param is None or param == "":
            return WriteResult("E", 52, "Missing addpool details")
        parts = _split_escaped(param)
        if len(parts) != 3 or not parts[0]:
            return WriteResult("E", 53, f"Invalid addpool details '{param}'")
        if len(self.pools) >= MAX_POOLS:
            return WriteResult("E", 54, f"Reached maximum number of pools ({MAX_POOLS})")
        url, user, password = parts
        self.pools.append(Pool(url, user, password))
        if self.active < 0:
            self.active = 0
        return WriteResult("S", 55, f"Added pool {len(self.pools) - 1}: '{url}'")

    def remove(self, param: str | None, counters: tuple[int, int, int]) -> WriteResult:
        idx, err = self._pick(param)
        if err:
            return err
        pool = self.pools[idx]
        if len(self.pools) <= 1:
            return WriteResult("E", 66, f"Cannot remove last pool {idx}:'{pool.url}'")
        if idx == self.active:
            return WriteResult("E", 67, f"Cannot remove active pool {idx}:'{pool.url}'")
        del self.pools[idx]
        if idx < self.active:
            self.active -= 1
        return WriteResult("S", 68, f"Removed pool {idx}:'{pool.url}'")

    def replace_all(
        self, entries: list[tuple[str, str, str]], counters: tuple[int, int, int]
    ) -> None:
        """Whatsminer `update_pools`: the whole list is rewritten, pool 0 becomes active."""
        self._activate(self.active, counters)
        self.pools = [Pool(u, w, p) for u, w, p in entries if u]
        self.active = 0 if self.pools else -1
        self._mark = counters


def _split_escaped(s: str) -> list[str]:
    """Split on `,` honouring cgminer's `\\` escapes."""
    parts, cur, esc = [], "", False
    for ch in s:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts
