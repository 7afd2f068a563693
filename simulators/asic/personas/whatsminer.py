"""Whatsminer (MicroBT btminer, API V2 on 4028, §4.2).

cgminer-style reads (`summary`, `devs`, `edevs`, `pools`, `devdetails`) in MH/s with the
Whatsminer extras, Description ``cgminer 4.9.2``; `devdetails` names the ``bitmicro`` driver and
the ``M50VH50``-style model (how pyasic spots it). `get_*` and `status` answer with a flat STATUS
(Q12) and Code 131; anything unknown, `version` and `stats` included, is the flat
``"Msg":"invalid cmd"`` (Q25). Pools are numbered from 1 (Q23); `Firmware Version` carries
embedded single quotes (Q16); no trailing NUL (Q2).

Privileged commands go through the real token flow: `get_token` → (time, salt, newsalt); the
client sends ``{"enc":1,"data":...}`` AES-encrypted with a key derived from the admin password
(see `whatsminer_crypto`); a wrong token gets 135, a plain unencrypted write 45.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any, ClassVar

from simulators.asic import whatsminer_crypto as wc
from simulators.asic.encoding import F2, F4, Raw, encode
from simulators.asic.personas.base import Body, MinerContext, Persona, Reply
from simulators.asic.physics import PhysicsSample, unit_noise
from simulators.asic.request import Request, request_from_json

FW_VERSION = "20230803.11.REL"
API_VERSION = "2.0.5"
FLAT_DESCRIPTION = "whatsminer v1.4.0"
TOKEN_TTL_S = 1800.0
_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Whatsminer(Persona):
    name: ClassVar[str] = "whatsminer"
    nul: ClassVar[bool] = False
    description: ClassVar[str] = "cgminer 4.9.2"
    inherent: ClassVar[frozenset[str]] = frozenset({"Q23", "Q25"})

    def __init__(self, ctx: MinerContext) -> None:
        super().__init__(ctx)
        self.asc_name = "SM"
        seed = ctx.spec.seed
        self.salt = self._salt(seed, 1)
        self._newsalt_n = 0
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self.power_limit_w = 3500 if ctx.model.power_w <= 3500 else 3600
        self.power_mode = "Normal"
        self.led = "auto"
        self.mac = "C6:07:" + ":".join(f"{(seed >> (8 * i)) & 0xFF:02X}" for i in range(4))
        for cmd in (
            "version",
            "stats",
            "estats",
            "config",
            "coin",
            "lcd",
            "notify",
            "check",
            "asccount",
        ):
            self.reads.pop(cmd, None)
        self.writes = {}
        self.flat_reads = {
            "get_version": self.get_version,
            "get_miner_info": self.get_miner_info,
            "get_psu": self.get_psu,
            "get_error_code": self.get_error_code,
            "status": self.get_status,
            "get_token": self.get_token,
        }
        self.privileged = {
            "power_off": self.p_power_off,
            "power_on": self.p_power_on,
            "reboot": self.p_reboot,
            "restart_btminer": self.p_reboot,
            "update_pools": self.p_update_pools,
            "adjust_power_limit": self.p_adjust_power_limit,
            "set_power_pct": self.p_set_power_pct,
            "set_led": self.p_set_led,
            "set_low_power": self.p_power_mode,
            "set_normal_power": self.p_power_mode,
            "set_high_power": self.p_power_mode,
        }

    @staticmethod
    def _salt(seed: int, n: int) -> str:
        return "".join(
            _SALT_CHARS[int((unit_noise(seed, 700 + n, i) + 1) / 2 * 64) % 64] for i in range(8)
        )

    # ---- flat replies -----------------------------------------------------------------------

    def flat(self, sev: str, code: int, msg: Any, *, cacheable: bool = False) -> Reply:
        body = {
            "STATUS": sev,
            "When": self.ctx.when(),
            "Code": code,
            "Msg": msg,
            "Description": FLAT_DESCRIPTION,
        }
        return Reply(body=body, flat_ok=True, cacheable=cacheable)

    def invalid(self, command: str = "") -> Reply:
        reply = self.flat("E", 14, "invalid cmd")
        reply.command = command
        return reply

    def handle(self, req: Request) -> Reply:
        if req.enc is not None:
            return self.encrypted(req.enc)
        cmd = req.command or ""
        if cmd in self.privileged:
            reply = self.flat("E", 45, "permission denied")
            reply.command = cmd
            return reply
        if cmd in self.flat_reads and "+" not in cmd:
            if self.ctx.has_fault("access_denied"):
                return self.denied(cmd)
            reply = self.flat_reads[cmd](req)
            reply.command = cmd
            return reply
        return super().handle(req)

    # ---- reads ------------------------------------------------------------------------------

    def errors(self, s: PhysicsSample) -> list[tuple[str, str]]:
        out = []
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.ctx.when() - s.elapsed_s))
        for bd in s.boards:
            if not bd.alive:
                out.append((f"{530 + bd.index}", stamp))  # simulated "hashboard lost" codes
        if self.ctx.has_fault("overheat"):
            out.append(("352", stamp))
        return out

    def summary_record(self, s: PhysicsSample) -> Body:
        base = super().summary_record(s)
        m = self.ctx.model
        chip = [b.temp_chip_c for b in s.boards if b.alive] or [s.ambient_c]
        errs = self.errors(s)
        fans = [*list(s.fans_rpm), 0, 0]
        out: Body = {}
        for k, v in base.items():
            out[k] = v
            if k == "MHS 15m":
                out["HS RT"] = self.hr(s.windows_hs["1m"])
            if k == "Best Share":
                out.update(
                    {
                        "Temperature": F2(s.temp_board_max_c),
                        "freq_avg": round(m.freq_mhz),
                        "Fan Speed In": fans[0],
                        "Fan Speed Out": fans[1],
                        "Voltage": 1290,
                        "Power": round(s.power_w),
                        "Power_RT": round(s.power_w),
                        "Power Current": round(s.power_w / 12.3),
                        "Power Fanspeed": round(6100 + 20 * (s.temp_board_max_c - 60)),
                        "Power Rate": F2(
                            s.power_w / (s.hashrate_hs / 1e12) if s.hashrate_hs else 0.0
                        ),
                        "Power Limit": self.power_limit_w,
                        "Power Mode": self.power_mode,
                        "Factory GHS": round(m.nominal_ths * 1000),
                        "Target Freq": round(m.freq_mhz),
                        "Target MHS": round(m.nominal_ths * 1e6),
                        "Env Temp": F2(s.ambient_c),
                        "Chip Temp Min": F2(min(chip)),
                        "Chip Temp Max": F2(max(chip)),
                        "Chip Temp Avg": F2(sum(chip) / len(chip)),
                        "Hash Stable": s.elapsed_s > 600,
                        "Hash Stable Cost Seconds": min(s.elapsed_s, 600),
                        "Hash Deviation%": F4(
                            (s.windows_hs["1m"] / s.nominal_hashrate_hs - 1) * 100
                            if s.nominal_hashrate_hs
                            else 0.0
                        ),
                        "Uptime": s.elapsed_s + 40,
                        "Security Mode": 0,
                        "Liquid Cooling": False,
                        "Error Code Count": len(errs),
                        "Factory Error Code Count": 0,
                    }
                )
                for i, (code, _) in enumerate(errs):
                    out[f"Error Code {i}"] = int(code)
                out.update(
                    {
                        "MAC": self.mac,
                        "Firmware Version": f"'{FW_VERSION}'",  # Q16: quotes inside the value
                        "CB Platform": "H6OS",
                        "CB Version": "V10",
                        "Chip Data": "K5-HP3-BIN2",
                        "Btminer Fast Boot": "disable",
                        "Debug": "0",
                    }
                )
        return out

    def dev_record(self, s: PhysicsSample, b: int) -> Body:
        rec = super().dev_record(s, b)
        bd = s.boards[b]
        fans = [*list(s.fans_rpm), 0, 0]
        rec["Temperature"] = F2(bd.temp_outlet_c)
        rec.update(
            {
                "Slot": b,
                "Chip Frequency": round(bd.freq_mhz),
                "Fan Speed In": fans[0],
                "Fan Speed Out": fans[1],
                "Upfreq Complete": 1,
                "Effective Chips": bd.chips_found,
                "PCB SN": f"HEM{self.ctx.spec.seed % 10**8:08d}{b}",
                "Chip Temp Min": F2(bd.temp_chip_c - 8.0 if bd.alive else 0.0),
                "Chip Temp Max": F2(bd.temp_chip_c + 6.0 if bd.alive else 0.0),
                "Chip Temp Avg": F2(bd.temp_chip_c if bd.alive else 0.0),
            }
        )
        return rec

    def pool_record(self, s: PhysicsSample, p: Any) -> Body:
        rec = super().pool_record(s, p)
        # btminer sends Last Share Time as an epoch integer
        rec["Last Share Time"] = self.counters(s)["last_share"] if p.active else 0
        return rec

    def devdetails_record(self, b: int) -> Body:
        return {
            "DEVDETAILS": b,
            "Name": "SM",
            "ID": b,
            "Driver": "bitmicro",
            "Kernel": "",
            "Model": self.ctx.model.model_code,
        }

    def get_version(self, req: Request) -> Reply:
        return self.flat(
            "S",
            131,
            {"api_ver": API_VERSION, "fw_ver": FW_VERSION, "platform": "H6OS", "chip": "K5"},
            cacheable=True,
        )

    def get_miner_info(self, req: Request) -> Reply:
        seed = self.ctx.spec.seed
        return self.flat(
            "S",
            131,
            {
                "ip": self.ctx.spec.host,
                "proto": "dhcp",
                "netmask": "255.0.0.0",
                "dns": "127.0.0.53",
                "mac": self.mac,
                "ledstat": self.led,
                "gateway": "127.0.0.1",
                "hostname": self.ctx.spec.name or f"WhatsMiner-{seed}",
                "minersn": f"HMS{seed % 10**10:010d}",
            },
            cacheable=True,
        )

    def get_psu(self, req: Request) -> Reply:
        s = self.ctx.sample()
        return self.flat(
            "S",
            131,
            {
                "name": "P221B",
                "hw_version": "V01.00",
                "sw_version": "V01.00.V01.03",
                "model": "P221B",
                "iin": str(round(s.power_w / 220.0 * 1000)),
                "vin": "22000",
                "fan_speed": str(round(6100 + 20 * (s.temp_board_max_c - 60))),
                "version": "4",
                "serial_no": f"PSU{self.ctx.spec.seed % 10**8:08d}",
                "vendor": "1",
            },
            cacheable=True,
        )

    def get_error_code(self, req: Request) -> Reply:
        errs = self.errors(self.ctx.sample())
        if self.q("Q11"):
            # btminer API 2.0.4 prints the list of {code: time} objects like a dict (Q11).
            errs = errs or [("110", "2024-06-15 09:15:00")]
            inner = ",".join(encode(c) + ":" + encode(t) for c, t in errs)
            return self.flat("S", 131, {"error_code": Raw("[" + inner + "]")}, cacheable=True)
        return self.flat("S", 131, {"error_code": [{c: t} for c, t in errs]}, cacheable=True)

    def get_status(self, req: Request) -> Reply:
        s = self.ctx.sample()
        off = s.state != "mining"
        return self.flat(
            "S",
            131,
            {
                "btmineroff": "true" if off else "false",
                "Firmware Version": f"'{FW_VERSION}'",
                "power_mode": self.power_mode,
                "power_limit_set": str(self.power_limit_w),
                "hash_percent": str(round(100 * s.hashrate_hs / s.nominal_hashrate_hs)),
            },
            cacheable=True,
        )

    def get_token(self, req: Request) -> Reply:
        self._newsalt_n += 1
        now = self.ctx.when()
        t = str(now)[-4:]
        newsalt = self._salt(self.ctx.spec.seed, 1000 + self._newsalt_n)
        passwd_md5 = wc.host_passwd_md5(self.ctx.spec.admin_password, self.salt)
        sign = wc.host_sign(passwd_md5, t, newsalt)
        self._tokens[sign] = time.monotonic()
        while len(self._tokens) > 64:
            self._tokens.popitem(last=False)
        return self.flat("S", 134, {"time": t, "salt": self.salt, "newsalt": newsalt})

    # ---- privileged (encrypted) -------------------------------------------------------------

    def encrypted(self, env: dict[str, Any]) -> Reply:
        data = env.get("data")
        if not isinstance(data, str):
            return self.flat("E", 23, "invalid JSON")
        key = wc.aes_key(wc.host_passwd_md5(self.ctx.spec.admin_password, self.salt))
        try:
            plain = wc.decrypt(key, data)
        except (ValueError, TypeError):
            return self.flat("E", 137, "base64 decode error")
        try:
            obj = json.loads(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            # A wrong password gives a wrong key: the plaintext is garbage.
            return self.flat("E", 135, "check token error")
        if not isinstance(obj, dict):
            return self.flat("E", 135, "check token error")
        token = obj.get("token")
        issued = self._tokens.get(token) if isinstance(token, str) else None
        if issued is None or time.monotonic() - issued > TOKEN_TTL_S:
            return self.flat("E", 135, "check token error")
        req = request_from_json(obj)
        handler = self.privileged.get(req.command or "")
        inner = self.invalid(req.command or "") if handler is None else handler(req)
        assert inner.body is not None
        enc = wc.encrypt(key, encode(inner.body).encode("utf-8"))
        return Reply(
            raw=('{"enc":"' + enc + '"}').encode("ascii"),
            after=inner.after,
            command=req.command or "",
        )

    def ok131(self) -> Reply:
        return self.flat("S", 131, "API command OK")

    def arg(self, req: Request, key: str) -> str | None:
        v = (req.extra or {}).get(key)
        return None if v is None else str(v)

    def p_power_off(self, req: Request) -> Reply:
        self.ctx.command_state(0.0, "sleeping")
        return self.ok131()

    def p_power_on(self, req: Request) -> Reply:
        self.ctx.command_state(self.mode_target(), "mining")
        return self.ok131()

    def p_reboot(self, req: Request) -> Reply:
        reply = self.ok131()
        reply.after = self.ctx.reboot
        return reply

    def p_update_pools(self, req: Request) -> Reply:
        entries = []
        for i in (1, 2, 3):
            url = self.arg(req, f"pool{i}")
            if url:
                entries.append(
                    (url, self.arg(req, f"worker{i}") or "", self.arg(req, f"passwd{i}") or "")
                )
        if not entries:
            return self.flat("E", 132, "command error")
        self.ctx.pools.replace_all(entries, self.ctx.counters())
        self.ctx.invalidate()
        return self.ok131()

    def mode_target(self) -> float:
        base = {"Low": 0.8, "Normal": 1.0, "High": 1.1}.get(self.power_mode, 1.0)
        return min(base, self.power_limit_w / (self.ctx.model.power_w * 1.02))

    def p_adjust_power_limit(self, req: Request) -> Reply:
        raw = self.arg(req, "power_limit")
        try:
            limit = int(float(raw or ""))
        except ValueError:
            return self.flat("E", 132, "command error")
        if not 0 < limit <= 99999:
            return self.flat("E", 132, "command error")
        self.power_limit_w = limit
        if self.ctx.sample().state == "mining":
            self.ctx.command_state(self.mode_target(), "mining")
        self.ctx.invalidate()
        return self.ok131()

    def p_set_power_pct(self, req: Request) -> Reply:
        try:
            pct = int(float(self.arg(req, "percent") or ""))
        except ValueError:
            return self.flat("E", 132, "command error")
        if not 0 <= pct <= 100:
            return self.flat("E", 132, "command error")
        self.ctx.command_state(pct / 100.0, "mining" if pct else "sleeping")
        return self.ok131()

    def p_set_led(self, req: Request) -> Reply:
        self.led = "auto" if req.parameter == "auto" else "manual"
        self.ctx.invalidate()
        return self.ok131()

    def p_power_mode(self, req: Request) -> Reply:
        self.power_mode = {"set_low_power": "Low", "set_high_power": "High"}.get(
            req.command or "", "Normal"
        )
        if self.ctx.sample().state == "mining":
            self.ctx.command_state(self.mode_target(), "mining")
        return self.ok131()
