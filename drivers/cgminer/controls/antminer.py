"""Stock Antminer and Vnish: no writes over the 4028 RPC.

Stock bmminer puts every client in API group A (stats, pools, devs, summary, version); every
write answers 45. Pool changes, sleep mode and reboots go through the web CGI
(`set_miner_conf.cgi`, `reboot.cgi`, digest auth) — not implemented yet. Vnish does its writes
through its REST API on port 80 (`/api/v1/...`), also not implemented yet.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.cgminer.control import Controls
from drivers.cgminer.reading import Firmware


class AntminerStockControls(Controls):
    firmware: ClassVar[Firmware | None] = Firmware.ANTMINER_STOCK
    why_unsupported: ClassVar[str] = (
        "stock Antminer RPC is read-only (API group A: stats, pools, devs, summary, version); "
        "writes go through the web CGI (set_miner_conf.cgi / reboot.cgi), not implemented"
    )


class VnishControls(Controls):
    firmware: ClassVar[Firmware | None] = Firmware.VNISH
    why_unsupported: ClassVar[str] = (
        "Vnish takes writes through its REST API on port 80 (/api/v1/...), not implemented"
    )
