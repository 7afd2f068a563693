"""Bundled ASIC simulators speaking the CGMiner-family API on TCP 4028 like each real firmware.

Personas (`antminer_stock`, `whatsminer`, `braiins`, `luxos`, `avalon`, `vnish`, `cgminer`)
emit each firmware's field names, units, framing and access rules; `physics` makes the numbers
move like a machine; faults and quirks (see `spec` for the fault-spec grammar, `quirks` for the
Q1–Q31 byte patterns) reproduce what real firmware gets wrong. The web-API quirks Q32–Q36 (HTTP)
are out of scope: these simulators speak the RPC port only.

Simulators never import `drivers` or `console`: they are written from the protocol reference.
"""

from __future__ import annotations

from simulators.asic.fleet import AsicFleet, run_simulator_cli
from simulators.asic.miner import MinerTruth, SimulatedMiner
from simulators.asic.models import MODELS, ModelSpec
from simulators.asic.spec import (
    FAULT_KINDS,
    PERSONAS,
    WHATSMINER_ADMIN_PASSWORD,
    Fault,
    MinerSpec,
    parse_fault_spec,
    plan_fleet,
)

__all__ = [
    "FAULT_KINDS",
    "MODELS",
    "PERSONAS",
    "WHATSMINER_ADMIN_PASSWORD",
    "AsicFleet",
    "Fault",
    "MinerSpec",
    "MinerTruth",
    "ModelSpec",
    "SimulatedMiner",
    "parse_fault_spec",
    "plan_fleet",
    "run_simulator_cli",
]
