"""The firmware persona base: STATUS blocks, dispatch, access groups, joins, and the cgminer
4.11.1 command set that most firmware forks inherit.

A persona turns a `Request` into a `Reply` (a structure, not bytes: the quirk layer and the
encoder produce the bytes). Each firmware module subclasses `Persona` and overrides what that
firmware does differently: field names, units, framing, extra commands, access rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from simulators.asic.encoding import F2, F4, F6, F8
from simulators.asic.models import ModelSpec
from simulators.asic.physics import PhysicsSample
from simulators.asic.pools import PoolTable, PoolView, WriteResult
from simulators.asic.request import Request
from simulators.asic.spec import MinerSpec

Body = dict[str, Any]


@dataclass(slots=True)
class Reply:
    """What a persona answers: one body, or the sections of a join, or raw bytes."""

    body: Body | None = None
    sections: list[tuple[str, Body]] | None = None
    raw: bytes | None = None
    command: str = ""
    cacheable: bool = False
    nul: bool | None = None
    """Override the persona's NUL framing for this reply (None = persona default)."""
    after: Callable[[], None] | None = None
    """Run once the reply has been handed to the transport (reboots go offline *after* replying)."""
    silent: bool = False
    """Send nothing and close (Q31 no reply to version)."""
    flat_ok: bool = False
    """Body is already in a non-standard STATUS form (flat or object): structural quirks skip it."""
    extra: dict[str, Any] = field(default_factory=dict)


class MinerContext(Protocol):
    """What a persona may see and do on its miner (implemented by `SimulatedMiner`)."""

    spec: MinerSpec
    model: ModelSpec
    pools: PoolTable

    def sample(self) -> PhysicsSample: ...
    def when(self) -> int: ...
    def quirk(self, q: str) -> bool: ...
    def has_fault(self, kind: str) -> bool: ...
    def command_state(self, target: float, state: str) -> None: ...
    def reboot(self) -> None: ...
    def counters(self) -> tuple[int, int, int]: ...
    def invalidate(self) -> None: ...


NON_JOINABLE_READS = frozenset({"check", "asc", "pga"})
PRIVILEGED = frozenset(
    {
        "switchpool",
        "addpool",
        "poolpriority",
        "poolquota",
        "enablepool",
        "disablepool",
        "removepool",
        "save",
        "quit",
        "privileged",
        "restart",
        "failover-only",
        "debug",
        "setconfig",
        "pgaset",
        "pgaenable",
        "pgadisable",
        "pgaidentify",
        "zero",
        "hotplug",
        "ascenable",
        "ascdisable",
        "ascidentify",
        "ascset",
        "lockstats",
    }
)


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Persona:
    """cgminer 4.11.1 as the base dialect. Subclasses override class attributes and handlers."""

    name: ClassVar[str] = "cgminer"
    nul: ClassVar[bool] = True
    description: ClassVar[str] = "cgminer 4.11.1"
    describe_invalid: ClassVar[bool] = False
    """Keep Description on Code 14 (pre-4.11 builds and bmminer do; cgminer >= 4.11.0 does not)."""
    version_msg: ClassVar[str] = "CGMiner versions"
    stats_msg: ClassVar[str] = "CGMiner stats"
    config_msg: ClassVar[str] = "CGMiner config"
    unit: ClassVar[str] = "MH"
    """Unit of the `xHS` fields: "MH" (cgminer, Whatsminer, BOS) or "GH" (Antminer, LuxOS)."""
    inherent: ClassVar[frozenset[str]] = frozenset()
    """Quirks this firmware always shows."""
    read_group: ClassVar[frozenset[str] | None] = None
    """Commands the (only) client group may run; None = every command (cgminer `W:` on loopback)."""
    asc_name: str = "BTM"

    def __init__(self, ctx: MinerContext) -> None:
        self.ctx = ctx
        self.reads: dict[str, Callable[[Request], Reply]] = {
            "version": self.cmd_version,
            "config": self.cmd_config,
            "summary": self.cmd_summary,
            "devs": self.cmd_devs,
            "edevs": self.cmd_devs,
            "pools": self.cmd_pools,
            "stats": self.cmd_stats,
            "estats": self.cmd_estats,
            "devdetails": self.cmd_devdetails,
            "coin": self.cmd_coin,
            "asccount": self.cmd_asccount,
            "lcd": self.cmd_lcd,
            "notify": self.cmd_notify,
            "check": self.cmd_check,
        }
        self.writes: dict[str, Callable[[Request], Reply]] = {
            "switchpool": self.cmd_switchpool,
            "enablepool": self.cmd_enablepool,
            "disablepool": self.cmd_disablepool,
            "addpool": self.cmd_addpool,
            "removepool": self.cmd_removepool,
            "privileged": self.cmd_privileged,
            "restart": self.cmd_restart,
            "quit": self.cmd_quit,
            "ascset": self.cmd_ascset,
        }

    def on_boot(self) -> None:
        """The controller restarted: forget volatile firmware state (sessions, tokens)."""

    # ---- quirk / fault switches -------------------------------------------------------------

    def q(self, quirk: str) -> bool:
        return quirk in self.inherent or self.ctx.quirk(quirk)

    # ---- STATUS and reply builders ----------------------------------------------------------

    def status(self, sev: str, code: int, msg: str, *, describe: bool = True) -> Body:
        st: Body = {"STATUS": sev, "When": self.ctx.when(), "Code": code, "Msg": msg}
        if describe:
            st["Description"] = self.description
        return st

    def ok(
        self,
        code: int,
        msg: str,
        section: str | None = None,
        records: Any = None,
        *,
        sev: str = "S",
        cacheable: bool = True,
        command: str = "",
    ) -> Reply:
        body: Body = {"STATUS": [self.status(sev, code, msg)]}
        if section is not None:
            body[section] = records
        body["id"] = 1
        return Reply(body=body, cacheable=cacheable, command=command)

    def error(self, code: int, msg: str, *, sev: str = "E", command: str = "") -> Reply:
        return Reply(body={"STATUS": [self.status(sev, code, msg)], "id": 1}, command=command)

    def result(self, r: WriteResult, command: str = "") -> Reply:
        return self.error(r.code, r.msg, sev=r.sev, command=command)

    def invalid(self, command: str = "") -> Reply:
        """Unknown command: Code 14, without Description on cgminer >= 4.11 (Q26)."""
        if self.q("Q25"):
            body = {
                "STATUS": "E",
                "When": self.ctx.when(),
                "Code": 14,
                "Msg": "invalid cmd",
                "Description": self.description,
            }
            return Reply(body=body, flat_ok=True, command=command)
        describe = self.describe_invalid and not self.ctx.quirk("Q26")
        st = self.status("E", 14, "Invalid command", describe=describe)
        return Reply(body={"STATUS": [st], "id": 1}, command=command)

    def denied(self, command: str) -> Reply:
        return self.error(45, f"Access denied to '{command}' command", command=command)

    # ---- dispatch ---------------------------------------------------------------------------

    def allowed(self, command: str) -> bool:
        if command == "devdetails" and self.q("Q24"):
            return False
        return self.read_group is None or command in self.read_group

    def handle(self, req: Request) -> Reply:
        if req.error is not None:
            code, msg = req.error
            if code == 14:
                return self.invalid()
            return self.error(code, msg)
        cmd = req.command or ""
        if "+" in cmd:
            if self.q("Q22"):
                return self.invalid(cmd)
            return self.join(req)
        if self.ctx.has_fault("access_denied"):
            return self.denied(cmd)
        if cmd == "version" and self.q("Q31"):
            return Reply(silent=True, command=cmd)
        handler = self.reads.get(cmd) or self.writes.get(cmd)
        if handler is None:
            return self.invalid(cmd)
        if not self.allowed(cmd):
            return self.denied(cmd)
        reply = handler(req)
        reply.command = reply.command or cmd
        return reply

    def join(self, req: Request) -> Reply:
        sections: list[tuple[str, Body]] = []
        seen: set[str] = set()
        for name in (req.command or "").split("+"):
            if not name or name in seen:
                continue
            seen.add(name)
            if (
                self.ctx.has_fault("access_denied")
                or name in self.writes
                or name in NON_JOINABLE_READS
                or name in PRIVILEGED
            ):
                sub = self.denied(name)
            elif name not in self.reads:
                sub = self.invalid(name)
            elif not self.allowed(name):
                sub = self.denied(name)
            else:
                sub = self.reads[name](Request(name, None, new_api=req.new_api))
            if sub.body is None:
                sub = self.invalid(name)
            sections.append((name, sub.body or {}))
        return Reply(sections=sections, cacheable=True, command=req.command or "")

    # ---- shared numbers ---------------------------------------------------------------------

    def hr(self, hs: float, unit: str | None = None) -> F2:
        """A hashrate in this firmware's unit (or `unit`), printed %.2f; Q29 misreports it."""
        u = unit or self.unit
        value = hs / (1e9 if u == "GH" else 1e6 if u == "MH" else 1e12)
        if self.ctx.has_fault("wrong_units") or self.ctx.quirk("Q29"):
            value *= 1000.0  # a GH/s field carrying MH/s numbers (and so on)
        return F2(value)

    def short_window(self, hs: float) -> float:
        """The 5 s window as the firmware reports it (Q27 zero, Q28 far below)."""
        if self.q("Q27"):
            return 0.0
        if self.q("Q28"):
            return hs * 0.35
        return hs

    def counters(self, s: PhysicsSample) -> Body:
        minutes = max(s.elapsed_s, 1) / 60.0
        diff = s.pool_difficulty
        d_acc, d_rej, d_stale = s.accepted * diff, s.rejected * diff, s.stale * diff
        d_all = d_acc + d_rej + d_stale
        getworks = s.elapsed_s // 30 + s.accepted // 4
        return {
            "getworks": getworks,
            "utility": F2(s.accepted / minutes),
            "work_utility": F2(s.diff1_work / minutes),
            "d_acc": F8(d_acc),
            "d_rej": F8(d_rej),
            "d_stale": F8(d_stale),
            "hw_pct": F4(
                s.hardware_errors / (s.hardware_errors + s.diff1_work) * 100
                if s.diff1_work
                else 0.0
            ),
            "dev_rej_pct": F4(d_rej / s.diff1_work * 100 if s.diff1_work else 0.0),
            "pool_rej_pct": F4(d_rej / d_all * 100 if d_all else 0.0),
            "pool_stale_pct": F4(d_stale / d_all * 100 if d_all else 0.0),
            "total_mh": F4(s.total_hashes / 1e6),
            "discarded": getworks * 2,
            "local_work": int(s.diff1_work // 2**20),
            "last_share": self.ctx.when() - int(s.last_share_age_s),
        }

    def pool_views(self, s: PhysicsSample) -> list[PoolView]:
        return self.ctx.pools.views(s.accepted, s.rejected, s.stale)

    def active_pool(self, s: PhysicsSample) -> int:
        return self.ctx.pools.active

    # ---- cgminer reads ----------------------------------------------------------------------

    def version_record(self) -> Body:
        return {"CGMiner": "4.11.1", "API": "3.7"}

    def cmd_version(self, req: Request) -> Reply:
        return self.ok(22, self.version_msg, "VERSION", [self.version_record()])

    def cmd_config(self, req: Request) -> Reply:
        rec = {
            "ASC Count": self.ctx.model.boards,
            "PGA Count": 0,
            "Pool Count": len(self.ctx.pools.pools),
            "Strategy": "Failover",
            "Log Interval": 5,
            "Device Code": "",
            "OS": "Linux",
            "Hotplug": "None",
        }
        return self.ok(33, self.config_msg, "CONFIG", [rec])

    def summary_record(self, s: PhysicsSample) -> Body:
        c = self.counters(s)
        w = s.windows_hs
        return {
            "Elapsed": s.elapsed_s,
            "MHS av": self.hr(s.hashrate_avg_hs),
            "MHS 5s": self.hr(self.short_window(w["5s"])),
            "MHS 1m": self.hr(w["1m"]),
            "MHS 5m": self.hr(w["5m"]),
            "MHS 15m": self.hr(w["15m"]),
            "Found Blocks": 0,
            "Getworks": c["getworks"],
            **self.summary_tail(s, c),
        }

    def summary_tail(self, s: PhysicsSample, c: Body) -> Body:
        """The cgminer SUMMARY fields from `Accepted` to `Last getwork`, in emission order:
        identical in every fork that keeps the cgminer list (the units-bearing head differs)."""
        return {
            "Accepted": s.accepted,
            "Rejected": s.rejected,
            "Hardware Errors": s.hardware_errors,
            "Utility": c["utility"],
            "Discarded": c["discarded"],
            "Stale": s.stale,
            "Get Failures": 0,
            "Local Work": c["local_work"],
            "Remote Failures": 0,
            "Network Blocks": s.elapsed_s // 600,
            "Total MH": c["total_mh"],
            "Work Utility": c["work_utility"],
            "Difficulty Accepted": c["d_acc"],
            "Difficulty Rejected": c["d_rej"],
            "Difficulty Stale": c["d_stale"],
            "Best Share": s.best_share,
            "Device Hardware%": c["hw_pct"],
            "Device Rejected%": c["dev_rej_pct"],
            "Pool Rejected%": c["pool_rej_pct"],
            "Pool Stale%": c["pool_stale_pct"],
            "Last getwork": self.ctx.when(),
        }

    def cmd_summary(self, req: Request) -> Reply:
        return self.ok(11, "Summary", "SUMMARY", [self.summary_record(self.ctx.sample())])

    def dev_record(self, s: PhysicsSample, b: int) -> Body:
        bd = s.boards[b]
        weight = bd.nominal_hashrate_hs / s.nominal_hashrate_hs
        c = self.counters(s)
        acc = int(s.accepted * weight)
        rej = int(s.rejected * weight)
        diff1 = int(s.diff1_work * weight)
        return {
            "ASC": b,
            "Name": self.asc_name,
            "ID": b,
            "Enabled": "Y",
            "Status": "Alive" if bd.alive else "Dead",
            "Temperature": F2(bd.temp_chip_c),
            "MHS av": self.hr(s.hashrate_avg_hs * weight if bd.alive else 0.0),
            "MHS 5s": self.hr(self.short_window(bd.hashrate_hs)),
            "MHS 1m": self.hr(bd.hashrate_1m_hs),
            "MHS 5m": self.hr(bd.hashrate_1m_hs),
            "MHS 15m": self.hr(bd.hashrate_1m_hs),
            "Accepted": acc,
            "Rejected": rej,
            "Hardware Errors": bd.hardware_errors,
            "Utility": F2(acc / max(s.elapsed_s / 60.0, 1 / 60)),
            "Last Share Pool": self.ctx.pools.active,
            "Last Share Time": c["last_share"],
            "Total MH": F4(s.total_hashes * weight / 1e6),
            "Diff1 Work": diff1,
            "Difficulty Accepted": F8(acc * s.pool_difficulty),
            "Difficulty Rejected": F8(rej * s.pool_difficulty),
            "Last Share Difficulty": F8(s.pool_difficulty),
            "No Device": False,
            "Last Valid Work": c["last_share"],
            "Device Hardware%": F4(
                bd.hardware_errors / (bd.hardware_errors + diff1) * 100 if diff1 else 0.0
            ),
            "Device Rejected%": F4(rej * s.pool_difficulty / diff1 * 100 if diff1 else 0.0),
            "Device Elapsed": s.elapsed_s,
        }

    def cmd_devs(self, req: Request) -> Reply:
        s = self.ctx.sample()
        recs = [self.dev_record(s, b) for b in range(self.ctx.model.boards)]
        return self.ok(9, f"{len(recs)} ASC(s)", "DEVS", recs)

    def pool_record(self, s: PhysicsSample, p: PoolView) -> Body:
        diff = s.pool_difficulty
        stratum = p.url.split("://", 1)[-1]
        return {
            "POOL": p.index,
            "URL": p.url,
            "Status": p.status,
            "Priority": p.priority,
            "Quota": 1,
            "Long Poll": "N",
            "Getworks": p.accepted // 4 + s.elapsed_s // 30 if p.active else p.accepted // 4,
            "Accepted": p.accepted,
            "Rejected": p.rejected,
            "Works": p.accepted * 4,
            "Discarded": p.accepted // 2,
            "Stale": p.stale,
            "Get Failures": 0,
            "Remote Failures": 0,
            "User": p.user,
            "Last Share Time": self.counters(s)["last_share"] if p.active else 0,
            "Diff1 Shares": int(p.accepted * diff),
            "Proxy Type": "",
            "Proxy": "",
            "Difficulty Accepted": F8(p.accepted * diff),
            "Difficulty Rejected": F8(p.rejected * diff),
            "Difficulty Stale": F8(p.stale * diff),
            "Last Share Difficulty": F8(diff if p.accepted else 0.0),
            "Work Difficulty": F8(diff if p.active else 0.0),
            "Has Stratum": True,
            "Stratum Active": p.active,
            "Stratum URL": stratum if p.active else "",
            "Stratum Difficulty": F8(diff if p.active else 0.0),
            "Has Vmask": True,
            "Has GBT": False,
            "Best Share": s.best_share if p.active else 0,
            "Pool Rejected%": F4(
                p.rejected / (p.accepted + p.rejected) * 100 if p.accepted + p.rejected else 0.0
            ),
            "Pool Stale%": F4(
                p.stale / (p.accepted + p.stale) * 100 if p.accepted + p.stale else 0.0
            ),
            "Bad Work": 0,
            "Current Block Height": 880000 + s.elapsed_s // 600 if p.active else 0,
            "Current Block Version": 536870912 if p.active else 0,
        }

    def pool_number(self, p: PoolView) -> int:
        return p.index + 1 if self.q("Q23") else p.index

    def cmd_pools(self, req: Request) -> Reply:
        s = self.ctx.sample()
        views = self.pool_views(s)
        if not views:
            return self.error(8, "No pools")
        recs = []
        for p in views:
            rec = self.pool_record(s, p)
            rec["POOL"] = self.pool_number(p)
            recs.append(rec)
        return self.ok(7, f"{len(recs)} Pool(s)", "POOLS", recs)

    def pool_stats_records(self, start: int) -> list[Body]:
        recs = []
        for i, p in enumerate(self.ctx.pools.pools):
            recs.append(
                {
                    "STATS": start + i,
                    "ID": f"POOL{i}",
                    "Elapsed": self.ctx.sample().elapsed_s,
                    "Calls": 0,
                    "Wait": F6(0.0),
                    "Max": F6(0.0),
                    "Min": F6(99999999.0),
                    "Pool Calls": 0,
                    "Pool Attempts": 0,
                    "Pool Wait": F6(0.0),
                    "Pool Max": F6(0.0),
                    "Pool Min": F6(99999999.0),
                    "Pool Av": F6(0.0),
                    "Work Had Roll Time": False,
                    "Work Can Roll": False,
                    "Work Had Expire": False,
                    "Work Roll Time": 0,
                    "Work Diff": F8(self.ctx.sample().pool_difficulty if p.enabled else 0.0),
                    "Min Diff": F8(0.0),
                    "Max Diff": F8(0.0),
                    "Min Diff Count": 0,
                    "Max Diff Count": 0,
                    "Times Sent": 0,
                    "Bytes Sent": 0,
                    "Times Recv": 0,
                    "Bytes Recv": 0,
                    "Net Bytes Sent": 0,
                    "Net Bytes Recv": 0,
                }
            )
        return recs

    def device_stats(self, s: PhysicsSample) -> list[Body]:
        return [
            {
                "STATS": b,
                "ID": f"{self.asc_name}{b}",
                "Elapsed": s.elapsed_s,
                "Calls": 0,
                "Wait": F6(0.0),
                "Max": F6(0.0),
                "Min": F6(99999999.0),
            }
            for b in range(self.ctx.model.boards)
        ]

    def cmd_stats(self, req: Request) -> Reply:
        devices = self.device_stats(self.ctx.sample())
        return self.ok(70, self.stats_msg, "STATS", devices + self.pool_stats_records(len(devices)))

    def cmd_estats(self, req: Request) -> Reply:
        return self.ok(70, self.stats_msg, "STATS", self.device_stats(self.ctx.sample()))

    def devdetails_record(self, b: int) -> Body:
        return {
            "DEVDETAILS": b,
            "Name": self.asc_name,
            "ID": b,
            "Driver": self.asc_name.lower(),
            "Kernel": "",
            "Model": "",
            "Device Path": "",
        }

    def cmd_devdetails(self, req: Request) -> Reply:
        recs = [self.devdetails_record(b) for b in range(self.ctx.model.boards)]
        return self.ok(69, "Device Details", "DEVDETAILS", recs)

    def cmd_coin(self, req: Request) -> Reply:
        s = self.ctx.sample()
        block = hashlib.sha256(f"{s.elapsed_s // 600}".encode()).hexdigest()
        rec = {
            "Hash Method": "sha256",
            "Current Block Time": F6(self.ctx.when() - 120.0),
            "Current Block Hash": block,
            "LP": True,
            "Network Difficulty": F8(1.1e14),
        }
        return self.ok(78, "CGMiner coin", "COIN", [rec])

    def cmd_asccount(self, req: Request) -> Reply:
        return self.ok(104, "ASC count", "ASCS", [{"Count": self.ctx.model.boards}])

    def cmd_lcd(self, req: Request) -> Reply:
        s = self.ctx.sample()
        pool = next((p for p in self.pool_views(s) if p.active), None)
        rec = {
            "Elapsed": s.elapsed_s,
            "GHS av": self.hr(s.hashrate_avg_hs, "GH"),
            "GHS 5m": self.hr(s.windows_hs["5m"], "GH"),
            "GHS 5s": self.hr(s.windows_hs["5s"], "GH"),
            "Temperature": F2(s.temp_chip_max_c),
            "Last Share Difficulty": F2(s.pool_difficulty),
            "Last Share Time": self.counters(s)["last_share"],
            "Best Share": s.best_share,
            "Last Valid Work": self.counters(s)["last_share"],
            "Found Blocks": 0,
            "Current Pool": pool.url if pool else "",
            "User": pool.user if pool else "",
        }
        return self.ok(125, "LCD", "LCD", [rec])

    def cmd_notify(self, req: Request) -> Reply:
        recs = [
            {
                "NOTIFY": b,
                "Name": self.asc_name,
                "ID": b,
                "Last Well": self.ctx.when(),
                "Last Not Well": 0,
                "Reason Not Well": "None",
            }
            for b in range(self.ctx.model.boards)
        ]
        return self.ok(60, "Notify", "NOTIFY", recs)

    def cmd_check(self, req: Request) -> Reply:
        if not req.parameter:
            return self.error(71, "Missing check cmd")
        cmd = req.parameter
        exists = cmd in self.reads or cmd in self.writes
        access = exists and self.allowed(cmd)
        return self.ok(
            72,
            "Check command",
            "CHECK",
            [{"Exists": "Y" if exists else "N", "Access": "Y" if access else "N"}],
            cacheable=False,
        )

    # ---- cgminer writes ---------------------------------------------------------------------

    def _pool_write(self, op: str, req: Request) -> Reply:
        pools = self.ctx.pools
        counters = self.ctx.counters()
        param = req.parameter
        if op == "switch":
            r = pools.switch(param, counters)
        elif op == "enable":
            r = pools.enable(param, counters)
        elif op == "disable":
            r = pools.disable(param, counters)
        elif op == "remove":
            r = pools.remove(param, counters)
        else:
            r = pools.add(param)
        if r.ok:
            self.ctx.invalidate()
        return self.result(r)

    def cmd_switchpool(self, req: Request) -> Reply:
        return self._pool_write("switch", req)

    def cmd_enablepool(self, req: Request) -> Reply:
        return self._pool_write("enable", req)

    def cmd_disablepool(self, req: Request) -> Reply:
        return self._pool_write("disable", req)

    def cmd_addpool(self, req: Request) -> Reply:
        return self._pool_write("add", req)

    def cmd_removepool(self, req: Request) -> Reply:
        return self._pool_write("remove", req)

    def cmd_privileged(self, req: Request) -> Reply:
        return self.error(46, "Privileged access OK", sev="S")

    def cmd_restart(self, req: Request) -> Reply:
        return Reply(body={"STATUS": "RESTART", "id": 1}, after=self.ctx.reboot, flat_ok=True)

    def cmd_quit(self, req: Request) -> Reply:
        # cgminer exits; the simulator behaves as if a watchdog restarted it after `reboot_s`.
        return Reply(body={"STATUS": "BYE", "id": 1}, after=self.ctx.reboot, flat_ok=True)

    def cmd_ascset(self, req: Request) -> Reply:
        if not req.parameter:
            return self.error(15, "Missing device id parameter")
        dev, _, opt = req.parameter.partition(",")
        if not opt:
            return self.error(116, "Missing option after ASC number")
        return self.error(117, f"ASC {dev.strip()} does not support ascset", sev="W")
