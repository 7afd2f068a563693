"""Plain cgminer 4.11.1 (`generic` build, MH/s, `CGMiner` key): the base dialect with full access.

It is what `--api-listen --api-allow W:127.0.0.1` gives: every read and every privileged write
(pool changes, restart, quit). pyasic cannot classify it (§6.2): drivers must be told.
"""

from __future__ import annotations

from typing import ClassVar

from simulators.asic.personas.base import MinerContext, Persona


class CGMiner(Persona):
    name: ClassVar[str] = "cgminer"

    def __init__(self, ctx: MinerContext) -> None:
        super().__init__(ctx)
        # The driver name cgminer prints depends on the hardware it drives.
        self.asc_name = {"bitmain": "BTM", "microbt": "SM", "canaan": "AVA"}.get(
            ctx.model.vendor, "ASC"
        )
