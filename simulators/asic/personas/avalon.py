"""Canaan AvalonMiner (cgminer 4.11.1 fork, §4.5).

`version` has `PROD`/`MODEL` (how pyasic spots it), `devdetails` the ``AVALON`` device, `devs`
one ASC with the real MHS; `summary` is cgminer-style MH/s where ``MHS 5s`` reads 0 while
``MHS av`` is real (Q27, inherent). All telemetry lives in `estats`/`stats` as one ``MM ID0``
string of ``Key[value]`` tokens: GHSspd, GHSmm, GHSavg, per-board MGHS/MTmax/MTavg, Temp, TMax,
TAvg, Fan1..4, PS[...] (last field = wall power), WALLPOWER, MPO (power limit), WORKLEVEL,
SYSTEMSTATU and per-board PVT_T chip temperatures. No NUL (Q2).

Control is `ascset|0,<opt>,<val>`: `help` (118), `softoff,1:<ts>` / `softon,1:<ts>`,
`worklevel,set,<n>`, `led,1-1|1-0`, `reboot,0` (119 "ASC 0 set OK").
"""

from __future__ import annotations

from typing import ClassVar

from simulators.asic.encoding import F6
from simulators.asic.personas.base import Body, MinerContext, Persona, Reply
from simulators.asic.physics import PhysicsSample
from simulators.asic.request import Request

WORKLEVEL_TARGET = {0: 0.7, 1: 0.85, 2: 1.0}
SET_HELP = "softoff|softon|worklevel|workmode|led|reboot|fan-spd|voltage|frequency"


class Avalon(Persona):
    name: ClassVar[str] = "avalon"
    nul: ClassVar[bool] = False
    inherent: ClassVar[frozenset[str]] = frozenset({"Q27"})

    def __init__(self, ctx: MinerContext) -> None:
        super().__init__(ctx)
        self.asc_name = "AVA"
        self.worklevel = 2
        self.led = 0
        self.soft_off_at = 0

    def version_record(self) -> Body:
        code = self.ctx.model.model_code
        seed = self.ctx.spec.seed
        return {
            "CGMiner": "4.11.1",
            "API": "3.7",
            "STM8": "20.08.01",
            "PROD": f"AvalonMiner {code}",
            "MODEL": code,
            "HWTYPE": "MM3v2_X3",
            "SWTYPE": "MM319",
            "LVERSION": f"{code}-21072802_4ec6bb0_211fc46",
            "BVERSION": f"{code}-21072802_4ec6bb0_211fc46",
            "CGVERSION": f"{code}-21072802_4ec6bb0_211fc46",
            "DNA": f"020100{seed & 0xFFFFFFFFFF:010x}",
            "MAC": f"b4a2eb{seed & 0xFFFFFF:06x}",
            "UPAPI": "2",
        }

    def cmd_devs(self, req: Request) -> Reply:
        s = self.ctx.sample()
        rec = self.dev_record(s, 0)
        # One ASC: the controller with all its hashboards.
        w = s.windows_hs
        rec.update(
            {
                "Name": "AVA",
                "ID": 0,
                "Temperature": rec["Temperature"],
                "MHS av": self.hr(s.hashrate_avg_hs),
                "MHS 5s": self.hr(w["5s"]),
                "MHS 1m": self.hr(w["1m"]),
                "MHS 5m": self.hr(w["5m"]),
                "MHS 15m": self.hr(w["15m"]),
                "Accepted": s.accepted,
                "Rejected": s.rejected,
                "Hardware Errors": s.hardware_errors,
            }
        )
        return self.ok(9, "1 ASC(s)", "DEVS", [rec])

    def cmd_devdetails(self, req: Request) -> Reply:
        rec = {
            "DEVDETAILS": 0,
            "Name": "AVALON",
            "ID": 0,
            "Driver": "avalon",
            "Kernel": "",
            "Model": "",
            "Device Path": "",
        }
        return self.ok(69, "Device Details", "DEVDETAILS", [rec])

    def cmd_config(self, req: Request) -> Reply:
        reply = super().cmd_config(req)
        if reply.body:
            reply.body["CONFIG"][0]["ASC Count"] = 1
            reply.body["CONFIG"][0]["Device Code"] = "AVALON"
        return reply

    def mm_string(self, s: PhysicsSample) -> str:
        m = self.ctx.model
        code = m.model_code
        w = s.windows_hs
        chips = [bd.temp_chip_c for bd in s.boards if bd.alive] or [s.ambient_c]
        fans = [*list(s.fans_rpm), 0, 0, 0, 0]
        power = round(s.power_w)

        def gh(hs: float) -> str:
            return f"{float(self.hr(hs, 'GH')):.2f}"

        dh = "%.3f%%" % (100 * s.hardware_errors / max(s.diff1_work, 1.0))
        state = "In Work" if s.state == "mining" else "In Idle"
        tokens = [
            f"Ver[{code}-21072802_4ec6bb0_211fc46]",
            f"DNA[020100{self.ctx.spec.seed & 0xFFFFFFFFFF:010x}]",
            f"Elapsed[{s.elapsed_s}]",
            f"HW[{s.hardware_errors}]",
            f"DH[{dh}]",
            f"Temp[{round(s.ambient_c)}]",
            f"TMax[{round(max(chips))}]",
            f"TAvg[{round(sum(chips) / len(chips))}]",
            f"Fan1[{fans[0]}] Fan2[{fans[1]}] Fan3[{fans[2]}] Fan4[{fans[3]}]",
            f"FanR[{round(100 * max(s.fans_rpm, default=0) / m.fan_max_rpm)}%]",
            "Vo[329]",
            f"PS[0 1213 1316 {round(power / 13.16)} {power - 20} 1320 {power}]",
            f"WALLPOWER[{power}]",
            f"GHSspd[{gh(w['5s'])}]",
            f"DHspd[{dh}]",
            f"GHSmm[{gh(s.nominal_hashrate_hs * WORKLEVEL_TARGET[self.worklevel])}]",
            f"GHSavg[{gh(s.hashrate_avg_hs)}]",
            f"WU[{s.diff1_work / max(s.elapsed_s / 60, 1):.2f}]",
            f"Freq[{m.freq_mhz:.2f}]",
            f"Led[{self.led}]",
            "MGHS[" + " ".join(gh(bd.hashrate_1m_hs) for bd in s.boards) + "]",
            "MTmax[" + " ".join(str(round(bd.temp_chip_c + 4)) for bd in s.boards) + "]",
            "MTavg[" + " ".join(str(round(bd.temp_chip_c)) for bd in s.boards) + "]",
            "TA[360]",
            "Core[A3201]",
            "PING[443]",
            f"SoftOffTime[{self.soft_off_at}]",
            "WORKMODE[1]",
            f"WORKLEVEL[{self.worklevel}]",
            f"MPO[{round(m.power_w * 1.1)}]",
            f"SYSTEMSTATU[Work: {state}, Hash Board: {sum(1 for b in s.boards if b.alive)}]",
        ]
        for bd in s.boards:
            n = bd.chips_found
            temps = [str(round(bd.temp_chip_c + ((i * 7) % 11) - 5)) for i in range(n)]
            temps += ["0"] * (bd.chips_expected - n)
            tokens.append(f"PVT_T{bd.index}[{' '.join(temps)}]")
        return " ".join(tokens)

    def device_stats(self, s: PhysicsSample) -> list[Body]:
        return [
            {
                "STATS": 0,
                "ID": "AVA100",
                "Elapsed": s.elapsed_s,
                "Calls": 0,
                "Wait": F6(0.0),
                "Max": F6(0.0),
                "Min": F6(99999999.0),
                "MM ID0": self.mm_string(s),
                "MM Count": 1,
                "Smart Speed": 1,
                "Connecter": "AUC",
                "AUC VER": "AUC-20151208",
                "AUC I2C Speed": 400000,
                "AUC I2C XDelay": 19200,
                "AUC Sensor": 15079,
                "AUC Temperature": 26.53,
                "Connection Overloaded": False,
                "Voltage Level Offset": 0,
                "Nonce Mask": 25,
            }
        ]

    # ---- control ----------------------------------------------------------------------------

    def cmd_ascset(self, req: Request) -> Reply:
        if not req.parameter:
            return self.error(15, "Missing device id parameter")
        parts = [p.strip() for p in req.parameter.split(",")]
        try:
            dev = int(parts[0])
        except ValueError:
            dev = -1
        if dev != 0:
            return self.error(107, f"Invalid ASC id {parts[0]} - range is 0 - 0")
        if len(parts) < 2 or not parts[1]:
            return self.error(116, "Missing option after ASC number")
        opt, vals = parts[1], parts[2:]
        ok = self.error(119, "ASC 0 set OK", sev="S")
        if opt == "help":
            return self.error(118, f"ASC 0 set info: {SET_HELP}", sev="I")
        if opt == "softoff":
            self.soft_off_at = self.ctx.when()
            self.ctx.command_state(0.0, "sleeping")
            return ok
        if opt == "softon":
            self.soft_off_at = 0
            self.ctx.command_state(WORKLEVEL_TARGET[self.worklevel], "mining")
            return ok
        if opt == "worklevel":
            if (
                len(vals) == 2
                and vals[0] == "set"
                and vals[1].isdigit()
                and int(vals[1]) in WORKLEVEL_TARGET
            ):
                self.worklevel = int(vals[1])
                if self.ctx.sample().state == "mining":
                    self.ctx.command_state(WORKLEVEL_TARGET[self.worklevel], "mining")
                self.ctx.invalidate()
                return ok
            return self.error(120, "ASC 0 set failed: worklevel must be set,0|1|2")
        if opt == "led":
            self.led = 1 if vals and vals[0] == "1-1" else 0
            self.ctx.invalidate()
            return ok
        if opt == "reboot":
            ok.after = self.ctx.reboot
            return ok
        if opt in ("workmode", "fan-spd", "voltage", "frequency"):
            return ok
        return self.error(120, f"ASC 0 set failed: unknown option '{opt}'")
