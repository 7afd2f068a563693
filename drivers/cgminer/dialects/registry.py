"""The one instance of each dialect, by firmware family."""

from __future__ import annotations

from drivers.cgminer.dialects.antminer import AntminerStock
from drivers.cgminer.dialects.avalon import Avalon
from drivers.cgminer.dialects.base import Dialect
from drivers.cgminer.dialects.braiins import Braiins
from drivers.cgminer.dialects.cgminer import Cgminer
from drivers.cgminer.dialects.luxos import LuxOS
from drivers.cgminer.dialects.vnish import Vnish
from drivers.cgminer.dialects.whatsminer import Whatsminer
from drivers.cgminer.reading import Firmware

DIALECTS: dict[Firmware, Dialect] = {
    Firmware.ANTMINER_STOCK: AntminerStock(),
    Firmware.VNISH: Vnish(),
    Firmware.LUXOS: LuxOS(),
    Firmware.BRAIINS: Braiins(),
    Firmware.AVALON: Avalon(),
    Firmware.WHATSMINER: Whatsminer(),
    Firmware.CGMINER: Cgminer(),
}
