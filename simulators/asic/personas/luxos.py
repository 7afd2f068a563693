"""LuxOS (Luxor firmware on Antminers, §4.4): GH/s, Antminer classic stats, and login sessions.

Reads are open to everyone. Privileged commands need a session: `logon` opens one (only one at a
time), `session` shows it, `logoff|<sid>` / `kill` end it, and every privileged command carries
the session id as the first comma-separated parameter (``curtail "<sid>,sleep"``,
``switchpool "<sid>,1"``, ``addpool "<sid>,url,user,pass"``). A missing or wrong id is refused.
`curtail` sleeps quietly (fans low); `profileset` moves along 25 MHz frequency steps.
"""

from __future__ import annotations

import string
from typing import ClassVar

from simulators.asic.encoding import F2
from simulators.asic.personas.antminer import AntminerStock
from simulators.asic.personas.base import Body, MinerContext, Reply
from simulators.asic.physics import PhysicsSample, unit_noise
from simulators.asic.pools import PoolView
from simulators.asic.request import Request

LUX_VERSION = "2025.4.8.220305-57b389c7"
LUX_MINER = "2025.4.8.220305"
STEP_MHZ = 25
PROFILES_UNDER = 16
PROFILES_OVER = 8


class LuxOS(AntminerStock):
    name: ClassVar[str] = "luxos"
    description: ClassVar[str] = f"LUXminer {LUX_VERSION}"
    describe_invalid: ClassVar[bool] = True
    version_msg: ClassVar[str] = "LUXminer versions"
    stats_msg: ClassVar[str] = "LUXminer stats"
    config_msg: ClassVar[str] = "LUXminer config"
    read_group: ClassVar[frozenset[str] | None] = None
    compile_time: ClassVar[str] = "Tue Apr  8 22:03:05 UTC 2025"

    def __init__(self, ctx: MinerContext) -> None:
        super().__init__(ctx)
        self.session_id = ""
        self._sessions_opened = 0
        self.profile = "default"
        base = round(ctx.model.freq_mhz / STEP_MHZ) * STEP_MHZ
        self.base_freq = base
        self.profile_freqs: dict[str, int] = {"default": base}
        for k in range(-PROFILES_UNDER, PROFILES_OVER + 1):
            f = base + k * STEP_MHZ
            if f > 0 and k != 0:
                self.profile_freqs[f"{f}MHz"] = f
        self.reads.update(
            {
                "power": self.cmd_power,
                "fans": self.cmd_fans,
                "temps": self.cmd_temps,
                "profiles": self.cmd_profiles,
                "session": self.cmd_session,
                "tempctrl": self.cmd_tempctrl,
                "groups": self.cmd_groups,
            }
        )
        # logon/logoff/kill manage sessions and are not joinable reads.
        self.writes.update(
            {
                "logon": self.cmd_logon,
                "logoff": self.cmd_logoff,
                "kill": self.cmd_kill,
                "curtail": self.cmd_curtail,
                "profileset": self.cmd_profileset,
                "rebootdevice": self.cmd_rebootdevice,
                "resetminer": self.cmd_resetminer,
            }
        )
        for name in ("restart", "quit", "privileged", "ascset"):
            self.writes.pop(name, None)

    def on_boot(self) -> None:
        self.session_id = ""

    # ---- reads ------------------------------------------------------------------------------

    def version_record(self) -> Body:
        return {
            "API": "3.7",
            "CompileTime": self.compile_time,
            "LUXminer": LUX_VERSION,
            "Miner": LUX_MINER,
            "Type": self.type_string(),
        }

    def stats_header(self) -> Body:
        return {
            "LUXminer": LUX_VERSION,
            "Miner": LUX_MINER,
            "CompileTime": self.compile_time,
            "Type": self.type_string(),
        }

    def summary_record(self, s: PhysicsSample) -> Body:
        rec = super().summary_record(s)
        w = s.windows_hs
        out: Body = {}
        for k, v in rec.items():
            if k == "GHS 30m":
                out["GHS 1m"] = self.hr(w["1m"])
                out["GHS 5m"] = self.hr(w["5m"])
                out["GHS 15m"] = self.hr(w["15m"])
                out["GHS 30m"] = v
                out["GHS 24h"] = self.hr(s.hashrate_avg_hs)
            elif k == "Getwork":
                out["Getworks"] = v
            elif k == "Pool Stale%":
                out[k] = v
            else:
                out[k] = v
        return out

    def cmd_devs(self, req: Request) -> Reply:
        s = self.ctx.sample()
        recs = []
        for b in range(self.ctx.model.boards):
            rec = self.dev_record(s, b)
            bd = s.boards[b]
            extra: Body = {
                "Board": b,
                "Connector": f"J{b + 1}",
                "Profile": self.profile,
                "Nominal MHS": F2(bd.nominal_hashrate_hs / 1e6),
                "SerialNumber": f"LUX{self.ctx.spec.seed % 10**8:08d}{b}",
                "MHS 30m": self.hr(bd.hashrate_1m_hs, "MH"),
                "MHS 60m": self.hr(bd.hashrate_1m_hs, "MH"),
            }
            for k in ("MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m"):
                rec[k] = self.hr(
                    {
                        "MHS av": s.hashrate_avg_hs
                        * bd.nominal_hashrate_hs
                        / s.nominal_hashrate_hs,
                        "MHS 5s": self.short_window(bd.hashrate_hs),
                    }.get(k, bd.hashrate_1m_hs),
                    "MH",
                )
            rec.update(extra)
            recs.append(rec)
        return self.ok(9, f"{len(recs)} ASC(s)", "DEVS", recs)

    def cmd_devdetails(self, req: Request) -> Reply:
        recs = [
            {
                "DEVDETAILS": b,
                "Name": "BTM",
                "ID": b,
                "Driver": "luxminer",
                "Kernel": "",
                "Model": self.ctx.model.name,
                "Device Path": "",
            }
            for b in range(self.ctx.model.boards)
        ]
        return self.ok(69, "Device Details", "DEVDETAILS", recs)

    def cmd_config(self, req: Request) -> Reply:
        m = self.ctx.model
        seed = self.ctx.spec.seed
        mac = ":".join(f"{(seed >> (8 * i)) & 0xFF:02X}" for i in range(4))
        rec: Body = {
            "ASC Count": m.boards,
            "PGA Count": 0,
            "Pool Count": len(self.ctx.pools.pools),
            "Strategy": "Failover",
            "Log Interval": 5,
            "Device Code": "",
            "OS": "Linux",
            "Hotplug": "None",
            "Model": m.name,
            "SerialNumber": f"LUXSIM{seed % 10**8:08d}",
            "MACAddr": f"02:00:{mac}",
            "Hostname": self.ctx.spec.name or f"luxos-{seed}",
            "Profile": self.profile,
            "CurtailMode": "sleep" if self.ctx.sample().state == "curtailed" else "None",
            "IsTuning": False,
            "RedLed": "off",
            "NameplateTHS": round(m.nominal_ths),
            "PSULabel": "APW12",
            "SystemStatus": self.ctx.sample().state,
        }
        return self.ok(33, self.config_msg, "CONFIG", [rec])

    def cmd_power(self, req: Request) -> Reply:
        s = self.ctx.sample()
        return self.ok(311, "Power usage", "POWER", [{"PSU": False, "Watts": round(s.power_w)}])

    def cmd_fans(self, req: Request) -> Reply:
        s = self.ctx.sample()
        fans = [
            {
                "FAN": f"FAN{i}",
                "ID": i,
                "RPM": rpm,
                "Speed": round(100 * rpm / self.ctx.model.fan_max_rpm),
            }
            for i, rpm in enumerate(s.fans_rpm)
        ]
        reply = self.ok(202, f"{len(fans)} Fan(s)", "FANS", fans)
        assert reply.body is not None
        reply.body = {
            "STATUS": reply.body["STATUS"],
            "FANS": fans,
            "FANCTRL": [{"Mode": "Auto", "MinFans": self.ctx.model.fans, "PowerOffSpeed": 0}],
            "id": 1,
        }
        return reply

    def cmd_temps(self, req: Request) -> Reply:
        s = self.ctx.sample()
        temps = []
        for bd in s.boards:
            temps.append(
                {
                    "TEMPS": bd.index,
                    "ID": bd.index,
                    "Board": bd.index,
                    "TopLeft": F2(bd.temp_outlet_c),
                    "TopRight": F2(bd.temp_chip_c),
                    "BottomLeft": F2(bd.temp_inlet_c),
                    "BottomRight": F2(bd.temp_inlet_c + 2.0),
                }
            )
        reply = self.ok(201, f"{len(temps)} Temp(s)", "TEMPS", temps)
        assert reply.body is not None
        reply.body = {
            "STATUS": reply.body["STATUS"],
            "TEMPS": temps,
            "METADATA": [{"Unit": "C", "Sensors": 4}],
            "id": 1,
        }
        return reply

    def cmd_tempctrl(self, req: Request) -> Reply:
        return self.ok(
            203,
            "Temperature control",
            "TEMPCTRL",
            [{"Mode": "Auto", "Target": 75, "Hot": 90, "Dangerous": 105}],
        )

    def cmd_groups(self, req: Request) -> Reply:
        return self.ok(
            204,
            "1 Group(s)",
            "GROUPS",
            [{"GROUP": 0, "Name": "Default", "Quota": 1, "Strategy": "Failover"}],
        )

    def pool_record(self, s: PhysicsSample, p: PoolView) -> Body:
        rec = super(AntminerStock, self).pool_record(s, p)  # cgminer fields, not bmminer's
        rec["GROUP"] = 0
        return rec

    def profile_hashrate_ths(self, freq: int) -> float:
        return self.ctx.model.nominal_ths * freq / self.base_freq

    def cmd_profiles(self, req: Request) -> Reply:
        m = self.ctx.model
        recs = []
        for name, f in self.profile_freqs.items():
            ratio = f / self.base_freq
            recs.append(
                {
                    "Profile Name": name,
                    "Frequency": f,
                    "Hashrate": F2(self.profile_hashrate_ths(f)),
                    "Watts": round(m.power_w * ratio**1.3),
                    "Voltage": F2(13.8 + (ratio - 1.0) * 2.0),
                    "Step": round((f - self.base_freq) / STEP_MHZ),
                    "IsDynamic": False,
                    "IsTuned": name == self.profile,
                }
            )
        return self.ok(300, f"{len(recs)} Profile(s)", "PROFILES", recs)

    # ---- sessions ---------------------------------------------------------------------------

    def cmd_session(self, req: Request) -> Reply:
        return self.ok(300, "Session", "SESSION", [{"SessionID": self.session_id}], cacheable=False)

    def cmd_logon(self, req: Request) -> Reply:
        if self.session_id:
            return self.error(302, "Another session is active")
        self._sessions_opened += 1
        alphabet = string.ascii_letters + string.digits
        sid = "".join(
            alphabet[
                int(
                    (unit_noise(self.ctx.spec.seed, 900 + self._sessions_opened, i) + 1)
                    / 2
                    * len(alphabet)
                )
                % len(alphabet)
            ]
            for i in range(8)
        )
        self.session_id = sid
        return self.ok(301, "Logged on", "SESSION", [{"SessionID": sid}], cacheable=False)

    def cmd_logoff(self, req: Request) -> Reply:
        if not self.session_id or (req.parameter or "").split(",")[0] != self.session_id:
            return self.error(303, "Invalid session id")
        self.session_id = ""
        return self.ok(304, "Logged off", "SESSION", [{"SessionID": ""}], cacheable=False)

    def cmd_kill(self, req: Request) -> Reply:
        self.session_id = ""
        return self.ok(305, "Session killed", "SESSION", [{"SessionID": ""}], cacheable=False)

    # ---- privileged -------------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        cmd = req.command or ""
        if cmd in self.writes and cmd not in ("logon", "logoff", "kill"):
            sid, _, rest = (req.parameter or "").partition(",")
            if not self.session_id or sid != self.session_id:
                return self.error(
                    45, f"Access denied to '{cmd}' command: invalid session id", command=cmd
                )
            req = Request(cmd, rest if rest else None, text_mode=req.text_mode)
        return super().handle(req)

    def cmd_curtail(self, req: Request) -> Reply:
        mode = (req.parameter or "").strip().lower()
        if mode == "sleep":
            self.ctx.command_state(0.0, "curtailed")
        elif mode == "wakeup":
            self.ctx.command_state(self.base_target(), "mining")
        else:
            return self.error(310, f"Invalid curtail mode '{mode}' (sleep|wakeup)")
        return self.error(310, f"Curtail {mode} OK", sev="S")

    def base_target(self) -> float:
        return self.profile_freqs[self.profile] / self.base_freq

    def cmd_profileset(self, req: Request) -> Reply:
        name = (req.parameter or "").strip()
        if name not in self.profile_freqs:
            return self.error(322, f"Profile '{name}' not found")
        self.profile = name
        if self.ctx.sample().state == "mining":
            self.ctx.command_state(self.base_target(), "mining")
        self.ctx.invalidate()
        return self.error(321, f"Profile set to {name}", sev="S")

    def cmd_rebootdevice(self, req: Request) -> Reply:
        reply = self.error(360, "Rebooting device", sev="S")
        reply.after = self.ctx.reboot
        return reply

    def cmd_resetminer(self, req: Request) -> Reply:
        reply = self.error(361, "Resetting miner", sev="S")
        reply.after = self.ctx.reboot
        return reply
