"""Braiins OS (BOSer) on Antminers (§4.3): cgminer-compatible RPC in MH/s plus BOS extras.

`version` carries the ``BOSer`` key (how pyasic spots it), `devdetails` the ``Bitmain Antminer
...`` model and per-board chip counts; device IDs start at 1 like bosminer's chains. Extra reads:
`fans`, `temps`, `tempctrl`, `tunerstatus` (approximate power). Control: `pause` / `resume`
really stop and restart hashing. BOS answers privileged commands from any client by default (its
API has no allow-list; the gRPC API on 50051 is where authentication lives), so the simulator
does too.
"""

from __future__ import annotations

from typing import ClassVar

from simulators.asic.encoding import F2
from simulators.asic.personas.base import Body, MinerContext, Persona, Reply
from simulators.asic.physics import PhysicsSample
from simulators.asic.request import Request

BOSER = "boser-buildroot 0.1.0-75912fc7"


class Braiins(Persona):
    name: ClassVar[str] = "braiins"
    description: ClassVar[str] = f"BOSer {BOSER}"
    version_msg: ClassVar[str] = "BOSer versions"
    stats_msg: ClassVar[str] = "BOSer stats"
    config_msg: ClassVar[str] = "BOSer config"

    def __init__(self, ctx: MinerContext) -> None:
        super().__init__(ctx)
        self.asc_name = "BC5"
        self.power_limit_w = round(ctx.model.power_w)
        self.reads.update(
            {
                "fans": self.cmd_fans,
                "temps": self.cmd_temps,
                "tempctrl": self.cmd_tempctrl,
                "tunerstatus": self.cmd_tunerstatus,
            }
        )
        self.writes.update({"pause": self.cmd_pause, "resume": self.cmd_resume})

    def version_record(self) -> Body:
        return {"API": "3.7", "BOSer": BOSER}

    def dev_record(self, s: PhysicsSample, b: int) -> Body:
        rec = super().dev_record(s, b)
        rec["ID"] = b + 1  # bosminer numbers chains from 1
        return rec

    def devdetails_record(self, b: int) -> Body:
        s = self.ctx.sample()
        return {
            "DEVDETAILS": b,
            "Name": "BC5",
            "ID": b + 1,
            "Driver": "BC5",
            "Kernel": "",
            "Model": f"Bitmain {self.ctx.model.name}",
            "Device Path": "",
            "Chips": s.boards[b].chips_found,
            "Frequency": F2(s.boards[b].freq_mhz),
            "Voltage": F2(13.8),
        }

    def cmd_fans(self, req: Request) -> Reply:
        s = self.ctx.sample()
        fans = [
            {"FAN": i, "ID": i, "RPM": rpm, "Speed": round(100 * rpm / self.ctx.model.fan_max_rpm)}
            for i, rpm in enumerate(s.fans_rpm)
        ]
        return self.ok(202, f"{len(fans)} Fan(s)", "FANS", fans)

    def cmd_temps(self, req: Request) -> Reply:
        s = self.ctx.sample()
        temps = [
            {
                "TEMP": bd.index,
                "ID": bd.index + 1,
                "Board": F2(bd.temp_outlet_c),
                "Chip": F2(bd.temp_chip_c),
            }
            for bd in s.boards
        ]
        return self.ok(201, f"{len(temps)} Temp(s)", "TEMPS", temps)

    def cmd_tempctrl(self, req: Request) -> Reply:
        return self.ok(
            200,
            "Temperature control",
            "TEMPCTRL",
            [{"Mode": "Automatic", "Target": F2(75.0), "Hot": F2(90.0), "Dangerous": F2(100.0)}],
        )

    def cmd_tunerstatus(self, req: Request) -> Reply:
        s = self.ctx.sample()
        chains = [
            {
                "HashchainIndex": bd.index,
                "ApproximatePowerConsumptionWatt": round(
                    s.power_w * (bd.hashrate_hs / s.hashrate_hs if s.hashrate_hs else 0)
                ),
                "PowerLimitWatt": round(self.power_limit_w / len(s.boards)),
                "TunerRunning": False,
                "Status": "Stable",
            }
            for bd in s.boards
        ]
        rec = {
            "PowerLimit": self.power_limit_w,
            "DynamicPowerScaling": "Disabled",
            "ApproximateChainPowerConsumption": round(max(0.0, s.power_w - 60.0)),
            "ApproximateMinerPowerConsumption": round(s.power_w),
            "TunerChainStatus": chains,
            "TunerRunning": False,
        }
        return self.ok(200, "Tuner status", "TUNERSTATUS", [rec])

    def cmd_pause(self, req: Request) -> Reply:
        if self.ctx.sample().state == "sleeping":
            return self.error(201, "Mining already paused", sev="I")
        self.ctx.command_state(0.0, "sleeping")
        return self.error(200, "Mining paused", sev="S")

    def cmd_resume(self, req: Request) -> Reply:
        if self.ctx.sample().state == "mining":
            return self.error(201, "Mining already running", sev="I")
        self.ctx.command_state(1.0, "mining")
        return self.error(200, "Mining resumed", sev="S")
