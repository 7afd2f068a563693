"""Firmware personas: one module per firmware family, all built on `base.Persona`."""

from __future__ import annotations

from simulators.asic.personas.antminer import AntminerStock
from simulators.asic.personas.avalon import Avalon
from simulators.asic.personas.base import MinerContext, Persona, Reply
from simulators.asic.personas.braiins import Braiins
from simulators.asic.personas.cgminer import CGMiner
from simulators.asic.personas.luxos import LuxOS
from simulators.asic.personas.vnish import Vnish
from simulators.asic.personas.whatsminer import Whatsminer

PERSONA_CLASSES: dict[str, type[Persona]] = {
    "antminer_stock": AntminerStock,
    "whatsminer": Whatsminer,
    "braiins": Braiins,
    "luxos": LuxOS,
    "avalon": Avalon,
    "vnish": Vnish,
    "cgminer": CGMiner,
}

__all__ = ["PERSONA_CLASSES", "MinerContext", "Persona", "Reply"]
