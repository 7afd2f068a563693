"""Vnish (AnthillOS) on Antminers (§4.6): stock-like RPC built on cgminer 4.11.1.

Differences from stock: `Type` carries a ``(Vnish x.y.z)`` suffix, Description ``cgminer 4.11.1``
(so Code 14 has no Description, Q26), `STATS[0]` holds a `Cgminer` key, the `BTM_SOC0` record adds
Vnish extras (chain_state, chain_vol, chain_consumption, "min-max" temperature strings, ...),
`summary` has ``"Fee Percent"`` and `pools` lists the ``DevFee`` pool. Reads are open; writes are
refused (45) because Vnish manages pools, presets and reboots over its REST API on port 80.
"""

from __future__ import annotations

from typing import ClassVar

from simulators.asic.encoding import F2, F4, F8
from simulators.asic.personas.antminer import AntminerStock
from simulators.asic.personas.base import PRIVILEGED, Body, Reply
from simulators.asic.physics import PhysicsSample
from simulators.asic.request import Request

VNISH_VERSION = "1.2.0-rc1"


class Vnish(AntminerStock):
    name: ClassVar[str] = "vnish"
    description: ClassVar[str] = "cgminer 4.11.1"
    describe_invalid: ClassVar[bool] = False
    read_group: ClassVar[frozenset[str] | None] = None
    fee_percent: ClassVar[float] = 3.8449

    def type_string(self) -> str:
        return f"{self.ctx.model.name} (Vnish {VNISH_VERSION})"

    def allowed(self, command: str) -> bool:
        if command in self.writes or command in PRIVILEGED:
            return False
        return super().allowed(command)

    def version_record(self) -> Body:
        return {
            "CGMiner": "4.11.1",
            "API": "3.7",
            "Miner": VNISH_VERSION,
            "CompileTime": self.compile_time,
            "Type": self.type_string(),
        }

    def stats_header(self) -> Body:
        return {
            "Cgminer": "4.11.1",
            "Miner": VNISH_VERSION,
            "CompileTime": self.compile_time,
            "Type": self.type_string(),
        }

    def summary_record(self, s: PhysicsSample) -> Body:
        rec = super().summary_record(s)
        rec["Fee Percent"] = F4(self.fee_percent)
        return rec

    def classic_stats(self, s: PhysicsSample) -> Body:
        rec = super().classic_stats(s)
        rec["state"] = "mining" if s.state == "mining" else "stopped"
        rec["fan_mode"] = "auto"
        rec["fan_pwm"] = round(100 * max(s.fans_rpm, default=0) / self.ctx.model.fan_max_rpm)
        m = self.ctx.model
        for i in range(1, m.boards + 1):
            bd = s.boards[i - 1]
            lo, hi = round(bd.temp_inlet_c), round(bd.temp_outlet_c)
            rec[f"temp_sens{i}"] = f"{lo}-{hi}"
            # Vnish prints pcb/chip temperatures as "min-max" instead of four sensors.
            rec[f"temp_pcb{i}"] = f"{lo}-{hi}" if bd.alive else "0-0"
            rec[f"temp_chip{i}"] = (
                f"{round(bd.temp_chip_c - (bd.temp_outlet_c - bd.temp_inlet_c))}-"
                f"{round(bd.temp_chip_c)}"
                if bd.alive
                else "0-0"
            )
            rec[f"chain_state{i}"] = "mining" if bd.alive and bd.hashrate_hs > 0 else "stopped"
            rec[f"chain_vol{i}"] = 13800 if bd.alive else 0
            rec[f"freq_avg{i}"] = round(bd.freq_mhz)
            rec[f"chain_rateideal{i}"] = F2(bd.nominal_hashrate_hs / 1e9)
            share = bd.hashrate_hs / s.hashrate_hs if s.hashrate_hs else 0.0
            rec[f"chain_consumption{i}"] = round(s.power_w * share)
        rec["build_version"] = f"{VNISH_VERSION} (AnthillOS)"
        return rec

    def cmd_pools(self, req: Request) -> Reply:
        reply = super().cmd_pools(req)
        body = reply.body
        if body is not None and isinstance(body.get("POOLS"), list):
            s = self.ctx.sample()
            fee_shares = int(s.accepted * self.fee_percent / 100)
            body["POOLS"].append(
                {
                    "POOL": len(body["POOLS"]),
                    "URL": "DevFee",
                    "Status": "Alive",
                    "Priority": 99,
                    "Quota": 0,
                    "Long Poll": "N",
                    "Getworks": 0,
                    "Accepted": fee_shares,
                    "Rejected": 0,
                    "Discarded": 0,
                    "Stale": 0,
                    "Get Failures": 0,
                    "Remote Failures": 0,
                    "User": "DevFee",
                    "Last Share Time": "0",
                    "Diff": "",
                    "Diff1 Shares": 0,
                    "Proxy Type": "",
                    "Proxy": "",
                    "Difficulty Accepted": F8(fee_shares * s.pool_difficulty),
                    "Difficulty Rejected": F8(0.0),
                    "Difficulty Stale": F8(0.0),
                    "Last Share Difficulty": F8(0.0),
                    "Has Stratum": True,
                    "Stratum Active": False,
                    "Stratum URL": "",
                    "Has GBT": False,
                    "Best Share": 0,
                    "Pool Rejected%": F4(0.0),
                    "Pool Stale%%": F4(0.0),
                    "Type": 1,
                }
            )
            body["STATUS"][0]["Msg"] = f"{len(body['POOLS'])} Pool(s)"
        return reply
