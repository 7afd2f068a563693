"""Stock Antminer firmware (bmminer, "cgminer 1.0.0") on S19 / S19j Pro / S19 XP / S21 (§4.1).

Group-A RPC only (`api-groups A:stats:pools:devs:summary:version`): every other command,
`devdetails` and all writes included, is E 45 (Q24). Hashrates in GH/s. `stats` has the classic
two-object layout (version object, then `BTM_SOC0` with per-chain extras, several of them strings,
Q14); with `"new_api": true` it is the web `stats.cgi` document (STATUS object, lowercase keys,
Q13). `devs` is one useless `BTM_SOC` record with the `Tenperature` typo and `pools` has
`Pool Stale%%`, H:MM:SS share times and `"524K"` difficulties (Q15). Pool changes and reboots go
through the web CGI on real units, so they are simply not available here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from simulators.asic.encoding import F2, F4, F6, F8
from simulators.asic.personas.base import Body, Persona, Reply, hms
from simulators.asic.physics import PhysicsSample
from simulators.asic.pools import PoolView
from simulators.asic.request import Request

GROUP_A = frozenset({"stats", "pools", "devs", "summary", "version"})
CHAIN_SLOTS = 4  # chain_* keys come in four slots on X19/X21; unused slots are "" / 0


def diff_text(diff: float) -> str:
    """bmminer's short difficulty: 524288 -> "524K", 65536 -> "65.5K"."""
    if diff >= 1e9:
        return f"{diff / 1e9:.3g}G"
    if diff >= 1e6:
        return f"{diff / 1e6:.3g}M"
    if diff >= 1e3:
        return f"{diff / 1e3:.3g}K"
    return f"{diff:.0f}"


@lru_cache(maxsize=256)
def chip_status(found: int, expected: int) -> str:
    """`chain_acs`: groups of three `o` (ok) / `x` (missing), each group led by a space."""
    if found == 0:
        return ""
    marks = "o" * found + "x" * (expected - found)
    return "".join(" " + marks[i : i + 3] for i in range(0, len(marks), 3))


class AntminerStock(Persona):
    name: ClassVar[str] = "antminer_stock"
    description: ClassVar[str] = "cgminer 1.0.0"
    # bmminer predates cgminer 4.11's "no Description on Code 14".
    describe_invalid: ClassVar[bool] = True
    version_msg: ClassVar[str] = "CGMiner versions"
    stats_msg: ClassVar[str] = "CGMiner stats"
    unit: ClassVar[str] = "GH"
    read_group: ClassVar[frozenset[str] | None] = GROUP_A
    asc_name: str = "BTM_SOC"
    miner_version: ClassVar[str] = "uart_trans.1.3"
    compile_time: ClassVar[str] = "Mon Dec 26 17:10:01 CST 2022"

    def type_string(self) -> str:
        return self.ctx.model.name

    # ---- version ----------------------------------------------------------------------------

    def version_record(self) -> Body:
        return {
            "BMMiner": "1.0.0",
            "API": "3.1",
            "Miner": self.miner_version,
            "CompileTime": self.compile_time,
            "Type": self.type_string(),
        }

    # ---- summary ----------------------------------------------------------------------------

    def summary_record(self, s: PhysicsSample) -> Body:
        c = self.counters(s)
        w = s.windows_hs
        return {
            "Elapsed": s.elapsed_s,
            "GHS 5s": self.hr(self.short_window(w["5s"])),
            "GHS av": self.hr(s.hashrate_avg_hs),
            "GHS 30m": self.hr(w["30m"]),
            "Found Blocks": 0,
            "Getwork": c["getworks"],
            **self.summary_tail(s, c),
        }

    def cmd_summary(self, req: Request) -> Reply:
        if req.new_api:
            return self.new_api_doc("summary", "SUMMARY", [self.new_api_summary()])
        return super().cmd_summary(req)

    # ---- devs: the one useless BTM_SOC record -----------------------------------------------

    def cmd_devs(self, req: Request) -> Reply:
        s = self.ctx.sample()
        rec = {
            "ASC": 0,
            "Name": "BTM_SOC",
            "ID": 0,
            "Enabled": "Y",
            "Status": "Alive",
            "Tenperature": F2(0.0),
            "MHS av": F2(0.0),
            "MHS 5s": F2(0.0),
            "MHS 1m": F2(0.0),
            "MHS 5m": F2(0.0),
            "MHS 15m": F2(0.0),
            "Accepted": 0,
            "Rejected": 0,
            "Hardware Errors": 0,
            "Utility": F2(0.0),
            "Last Share Pool": -1,
            "Last Share Time": 0,
            "Total MH": F4(0.0),
            "Diff1 Work": 0,
            "Difficulty Accepted": F8(0.0),
            "Difficulty Rejected": F8(0.0),
            # bmminer really puts a timestamp here (Q15).
            "Last Share Difficulty": F8(float(self.counters(s)["last_share"])),
            "Last Valid Work": self.counters(s)["last_share"],
            "Device Hardware%": F4(0.0),
            "Device Rejected%": F4(0.0),
            "Device Elapsed": s.elapsed_s,
        }
        return self.ok(9, "1 ASC(s)", "DEVS", [rec])

    # ---- pools ------------------------------------------------------------------------------

    def pool_record(self, s: PhysicsSample, p: PoolView) -> Body:
        diff = s.pool_difficulty
        age = s.last_share_age_s
        return {
            "POOL": p.index,
            "URL": p.url,
            "Status": p.status,
            "Priority": p.priority,
            "Quota": 1,
            "Long Poll": "N",
            "Getworks": p.accepted // 4 + (s.elapsed_s // 30 if p.active else 0),
            "Accepted": p.accepted,
            "Rejected": p.rejected,
            "Discarded": p.accepted // 2,
            "Stale": p.stale,
            "Get Failures": 0,
            "Remote Failures": 0,
            "User": p.user,
            "Last Share Time": hms(age) if p.active and p.accepted else "0",
            "Diff": diff_text(diff) if p.active else "",
            "Diff1 Shares": int(p.accepted * diff),
            "Proxy Type": "",
            "Proxy": "",
            "Difficulty Accepted": F8(p.accepted * diff),
            "Difficulty Rejected": F8(p.rejected * diff),
            "Difficulty Stale": F8(p.stale * diff),
            "Last Share Difficulty": F8(diff if p.accepted else 0.0),
            "Has Stratum": True,
            "Stratum Active": p.active,
            "Stratum URL": p.url.split("://", 1)[-1] if p.active else "",
            "Has GBT": False,
            "Best Share": s.best_share if p.active else 0,
            "Pool Rejected%": F4(
                p.rejected / (p.accepted + p.rejected) * 100 if p.accepted + p.rejected else 0.0
            ),
            "Pool Stale%%": F4(
                p.stale / (p.accepted + p.stale) * 100 if p.accepted + p.stale else 0.0
            ),
        }

    def cmd_pools(self, req: Request) -> Reply:
        if req.new_api:
            s = self.ctx.sample()
            recs = [
                {
                    "index": p.index,
                    "url": p.url,
                    "user": p.user,
                    "status": p.status,
                    "priority": p.priority,
                    "getworks": p.accepted // 4,
                    "accepted": p.accepted,
                    "rejected": p.rejected,
                    "discarded": p.accepted // 2,
                    "stale": p.stale,
                    "diff": diff_text(s.pool_difficulty) if p.active else "",
                    "diff1": int(p.accepted * s.pool_difficulty),
                    "diffa": F2(p.accepted * s.pool_difficulty),
                    "diffr": F2(p.rejected * s.pool_difficulty),
                    "diffs": F2(p.stale * s.pool_difficulty),
                    "lsdiff": F2(s.pool_difficulty if p.accepted else 0.0),
                    "lstime": hms(s.last_share_age_s) if p.active else "0",
                }
                for p in self.pool_views(s)
            ]
            return self.new_api_doc("pools", "POOLS", recs)
        return super().cmd_pools(req)

    # ---- stats ------------------------------------------------------------------------------

    def stats_header(self) -> Body:
        return {
            "BMMiner": "1.0.0",
            "Miner": self.miner_version,
            "CompileTime": self.compile_time,
            "Type": self.type_string(),
        }

    def temps_of(self, s: PhysicsSample, b: int) -> tuple[list[int], list[int], list[int]]:
        """(pic, pcb, chip) sensor quadruples: inlet, inlet, outlet, outlet (pyasic #295)."""
        bd = s.boards[b]
        pcb = [
            round(bd.temp_inlet_c),
            round(bd.temp_inlet_c),
            round(bd.temp_outlet_c),
            round(bd.temp_outlet_c),
        ]
        chip_in = bd.temp_inlet_c + (bd.temp_chip_c - bd.temp_outlet_c)
        chip = [round(chip_in), round(chip_in), round(bd.temp_chip_c), round(bd.temp_chip_c)]
        pic = [
            round(bd.temp_inlet_c - 10),
            round(bd.temp_inlet_c - 10),
            round(bd.temp_outlet_c - 10),
            round(bd.temp_outlet_c - 10),
        ]
        return pic, pcb, chip

    def chain_extras(self, s: PhysicsSample) -> Body:
        """Per-chain keys of the classic `BTM_SOC0` record, four slots, unused ones empty."""
        m = self.ctx.model
        out: dict[str, Any] = {}
        boards = s.boards
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            out[f"temp{i}"] = round(b.temp_outlet_c) if b else 0
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            out[f"temp2_{i}"] = round(b.temp_chip_c) if b else 0
        # Each live board's sensor groups, computed once (not once per group: this runs on
        # every cache miss of every Antminer-family miner).
        groups = [
            self.temps_of(s, i - 1) if i <= len(boards) and boards[i - 1].alive else None
            for i in range(1, CHAIN_SLOTS + 1)
        ]
        for key, idx in (("temp_pcb", 1), ("temp_chip", 2), ("temp_pic", 0)):
            for i in range(1, CHAIN_SLOTS + 1):
                group = groups[i - 1]
                out[f"{key}{i}"] = "-".join(map(str, group[idx])) if group else "0-0-0-0"
        out["temp_max"] = 0
        out["total_rateideal"] = F2(m.nominal_ths * 1000.0)
        out["rate_unit"] = "GH"
        out["total_freqavg"] = F2(m.freq_mhz)
        out["total_acn"] = sum(b.chips_found for b in boards)
        out["total rate"] = F2(sum(b.hashrate_hs for b in boards) / 1e9)
        out["temp_max"] = round(s.temp_chip_max_c)
        out["no_matching_work"] = 0
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            out[f"chain_acn{i}"] = b.chips_found if b else 0
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            out[f"chain_acs{i}"] = chip_status(b.chips_found, b.chips_expected) if b else ""
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            out[f"chain_hw{i}"] = b.hardware_errors if b else 0
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            # GH/s as a string (Q14), "" for an absent chain.
            out[f"chain_rate{i}"] = f"{float(self.hr(b.hashrate_hs, 'GH')):.2f}" if b else ""
        for i in range(1, CHAIN_SLOTS + 1):
            b = boards[i - 1] if i <= len(boards) else None
            out[f"freq{i}"] = round(b.freq_mhz) if b else 0
        out["miner_version"] = self.miner_version
        out["miner_id"] = f"{self.ctx.spec.seed & 0xFFFFFFFFFFFF:016x}"
        return out

    def classic_stats(self, s: PhysicsSample) -> Body:
        m = self.ctx.model
        w = s.windows_hs
        rec: Body = {
            "STATS": 0,
            "ID": "BTM_SOC0",
            "Elapsed": s.elapsed_s,
            "Calls": 0,
            "Wait": F6(0.0),
            "Max": F6(0.0),
            "Min": F6(99999999.0),
            "GHS 5s": "{:.2f}".format(float(self.hr(self.short_window(w["5s"]), "GH"))),
            "GHS av": self.hr(s.hashrate_avg_hs, "GH"),
            "rate_30m": self.hr(w["30m"], "GH"),
            "Mode": 2 if s.state == "mining" else 1,
            "miner_count": m.boards,
            "frequency": round(m.freq_mhz),
            "fan_num": m.fans,
        }
        for i in range(1, CHAIN_SLOTS + 1):
            rec[f"fan{i}"] = s.fans_rpm[i - 1] if i <= len(s.fans_rpm) else 0
        rec["temp_num"] = m.boards
        rec.update(self.chain_extras(s))
        return rec

    def new_api_stats(self, s: PhysicsSample) -> Body:
        m = self.ctx.model
        w = s.windows_hs
        chains = []
        for bd in s.boards:
            pic, pcb, chip = self.temps_of(s, bd.index)
            if not bd.alive:
                pic = pcb = chip = [0, 0, 0, 0]
            chains.append(
                {
                    "index": bd.index,
                    "freq_avg": round(bd.freq_mhz),
                    "rate_ideal": F2(bd.nominal_hashrate_hs / 1e9),
                    "rate_real": self.hr(bd.hashrate_hs, "GH"),
                    "asic_num": bd.chips_found,
                    "asic": chip_status(bd.chips_found, bd.chips_expected),
                    "temp_pic": pic,
                    "temp_pcb": pcb,
                    "temp_chip": chip,
                    "hw": bd.hardware_errors,
                    "eeprom_loaded": True,
                    "sn": f"SIM{self.ctx.spec.seed % 10**8:08d}B{bd.index}",
                    "hwp": F4(bd.hardware_errors / max(s.diff1_work, 1.0) * 100),
                }
            )
        rec: Body = {
            "elapsed": s.elapsed_s,
            "rate_5s": self.hr(self.short_window(w["5s"]), "GH"),
            "rate_30m": self.hr(w["30m"], "GH"),
            "rate_avg": self.hr(s.hashrate_avg_hs, "GH"),
            "rate_ideal": F2(m.nominal_ths * 1000.0),
            "rate_unit": "GH/s",
            "chain_num": m.boards,
            "fan_num": m.fans,
            "fan": list(s.fans_rpm),
            "hwp_total": F4(s.hardware_errors / max(s.diff1_work, 1.0) * 100),
            "miner-mode": 0 if s.state == "mining" else 1,
            "freq-level": 100,
            "chain": chains,
        }
        if m.name.startswith("Antminer S21"):
            rec["psu"] = {"index": 0, "status": "ok"}
        return rec

    def new_api_summary(self) -> Body:
        s = self.ctx.sample()
        w = s.windows_hs
        ok_rate = "s" if s.hashrate_hs > 0.5 * s.nominal_hashrate_hs else "e"
        return {
            "elapsed": s.elapsed_s,
            "rate_5s": self.hr(self.short_window(w["5s"]), "GH"),
            "rate_30m": self.hr(w["30m"], "GH"),
            "rate_avg": self.hr(s.hashrate_avg_hs, "GH"),
            "rate_ideal": F2(self.ctx.model.nominal_ths * 1000.0),
            "rate_unit": "GH/s",
            "hw_all": s.hardware_errors,
            "bestshare": s.best_share,
            "status": [
                {"type": t, "status": st, "code": 0, "msg": ""}
                for t, st in (
                    ("rate", ok_rate),
                    ("network", "s"),
                    ("fans", "s"),
                    ("temp", "e" if s.temp_chip_max_c > 90 else "s"),
                )
            ],
        }

    def new_api_doc(self, msg: str, section: str, records: list[Body]) -> Reply:
        body: Body = {
            "STATUS": {"STATUS": "S", "when": self.ctx.when(), "Msg": msg, "api_version": "1.0.0"},
            "INFO": {
                "miner_version": self.miner_version,
                "CompileTime": self.compile_time,
                "type": self.type_string(),
            },
            section: records,
        }
        return Reply(body=body, cacheable=True, flat_ok=True)

    def cmd_stats(self, req: Request) -> Reply:
        s = self.ctx.sample()
        if req.new_api:
            return self.new_api_doc("stats", "STATS", [self.new_api_stats(s)])
        return self.ok(70, self.stats_msg, "STATS", [self.stats_header(), self.classic_stats(s)])
