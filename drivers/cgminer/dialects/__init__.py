"""Firmware dialects: one module per family, a shared base, detection and a registry.

Each dialect declares the commands a full reading needs and parses their replies into one
`AsicReading` (through `dialects.common.finalise`). See `base.Dialect` for the contract.
"""

from __future__ import annotations

from drivers.cgminer.dialects.base import Dialect, Draft, Identity, ParseContext
from drivers.cgminer.dialects.detect import classify, detect
from drivers.cgminer.dialects.registry import DIALECTS

__all__ = ["DIALECTS", "Dialect", "Draft", "Identity", "ParseContext", "classify", "detect"]
