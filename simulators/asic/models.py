"""The catalogue of simulated ASIC models: nameplate and hardware layout per model.

Figures come from the reference (`cgminer-protocol.md` §7 realistic values, `economics.md` §2
nameplates). Where the reference gives no figure (chips per board for newer Whatsminer and Avalon
models), the value is an approximation, marked as such, and only shapes plausible output.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One hardware model as the simulator needs it."""

    name: str
    """Marketing name, also the catalogue key: ``"Antminer S19j Pro"``."""
    vendor: str
    """``"bitmain"``, ``"microbt"`` or ``"canaan"``: decides which personas may run it."""
    nominal_ths: float
    """Nameplate hashrate, TH/s."""
    power_w: float
    """Wall power at nameplate hashrate, W."""
    boards: int
    chips_per_board: int
    fans: int
    freq_mhz: float
    """Typical chip frequency."""
    fan_max_rpm: int
    """Fan speed at full duty; fans idle near a quarter of it."""
    model_code: str = ""
    """Firmware model code, where the firmware reports one (``M50VH50``, Avalon ``1246-83``)."""

    @property
    def nominal_hs(self) -> float:
        return self.nominal_ths * 1e12

    @property
    def chips_total(self) -> int:
        return self.boards * self.chips_per_board


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("Antminer S19j Pro", "bitmain", 104.0, 3068.0, 3, 126, 4, 525.0, 6000),
        ModelSpec("Antminer S19 Pro", "bitmain", 110.0, 3250.0, 3, 114, 4, 525.0, 6000),
        ModelSpec("Antminer S19 XP", "bitmain", 140.0, 3010.0, 3, 110, 4, 495.0, 6000),
        ModelSpec("Antminer S21", "bitmain", 200.0, 3500.0, 3, 108, 4, 490.0, 7000),
        ModelSpec("Whatsminer M50", "microbt", 118.0, 3422.0, 3, 105, 2, 620.0, 6500, "M50VH50"),
        # M50S / M60S chip counts are approximations (no capture in the reference).
        ModelSpec("Whatsminer M50S", "microbt", 126.0, 3276.0, 3, 123, 2, 620.0, 6500, "M50SVH50"),
        ModelSpec("Whatsminer M60S", "microbt", 186.0, 3441.0, 3, 111, 2, 600.0, 6500, "M60SVK40"),
        # The 1246 capture (§4.5) reads ~83 TH/s with three boards; chips per board approximate.
        ModelSpec("AvalonMiner 1246", "canaan", 83.0, 3154.0, 3, 120, 4, 502.0, 5400, "1246-83"),
    )
}

VENDOR_OF_PERSONA: dict[str, frozenset[str]] = {
    "antminer_stock": frozenset({"bitmain"}),
    "vnish": frozenset({"bitmain"}),
    "braiins": frozenset({"bitmain"}),
    "luxos": frozenset({"bitmain"}),
    "whatsminer": frozenset({"microbt"}),
    "avalon": frozenset({"canaan"}),
    # Plain cgminer is a generic build: it can pretend to drive any hardware.
    "cgminer": frozenset({"bitmain", "microbt", "canaan"}),
}
