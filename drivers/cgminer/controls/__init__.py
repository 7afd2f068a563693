"""Per-family control implementations and the capability table.

`capabilities(firmware)` is what the UI uses to offer only supported actions;
`controls_for(firmware, spec)` builds the (per-device, possibly stateful) implementation.
"""

from __future__ import annotations

from drivers.cgminer.control import Controls
from drivers.cgminer.controls.antminer import AntminerStockControls, VnishControls
from drivers.cgminer.controls.avalon import AvalonControls
from drivers.cgminer.controls.braiins import BraiinsControls
from drivers.cgminer.controls.cgminer import CgminerControls
from drivers.cgminer.controls.luxos import LuxOSControls
from drivers.cgminer.controls.whatsminer import WhatsminerControls
from drivers.cgminer.dialects.base import Dialect
from drivers.cgminer.models import ModelSpec
from drivers.cgminer.reading import Firmware

_CLASSES: dict[Firmware, type[Controls]] = {
    Firmware.ANTMINER_STOCK: AntminerStockControls,
    Firmware.VNISH: VnishControls,
    Firmware.LUXOS: LuxOSControls,
    Firmware.BRAIINS: BraiinsControls,
    Firmware.AVALON: AvalonControls,
    Firmware.WHATSMINER: WhatsminerControls,
    Firmware.CGMINER: CgminerControls,
}


def capabilities(family: Firmware | Dialect) -> frozenset[str]:
    """The control actions a firmware family (or its dialect) supports (`control.ACTIONS` names).

    Privilege is a separate, per-device matter: `CgminerMiner.privileged`.
    """
    firmware = family if isinstance(family, Firmware) else family.firmware
    return _CLASSES[firmware].actions


def controls_for(firmware: Firmware, spec: ModelSpec | None = None) -> Controls:
    """A fresh control implementation for one device of this family."""
    if firmware is Firmware.AVALON:
        return AvalonControls(spec)
    return _CLASSES[firmware]()


__all__ = ["capabilities", "controls_for"]
