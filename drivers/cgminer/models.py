"""Nameplate table of ASIC models: nominal hashrate, wall power, hashboards, chips, fans.

Used for what the RPC does not say: chips expected per board, the nominal hashrate when the
firmware reports none, the sanity check of hashrate units (Q29), and the power estimate when the
firmware reports no power (`power_estimated=True`).

Sources: economics.md §2 (nameplate TH/s and W, ±5 % bins) and cgminer-protocol.md §6.4 / §7
(boards × chips, fans, observed captures). Entries marked "approx." come from vendor spec sheets
quoted by third parties and are only used when the device reports nothing better; `None` means
"not known well enough to claim".

Lookup is by a normalised key (upper case, no spaces/underscores/hyphens, vendor words removed):
exact first, then the longest table key that prefixes the model (so `M50VH51` finds the `M50VH50`
variant if listed, else the `M50` family; `S19JPROHIVEON` finds `S19JPRO`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple


class ModelSpec(NamedTuple):
    """One model's nameplate."""

    name: str  # display name, e.g. "Antminer S19j Pro"
    make: str
    nominal_ths: float
    power_w: float
    boards: int | None
    chips_per_board: int | None
    fans: int | None

    @property
    def nominal_hs(self) -> float:
        return self.nominal_ths * 1e12


def _spec(
    name: str,
    make: str,
    ths: float,
    watts: float,
    boards: int | None,
    chips: int | None,
    fans: int | None,
) -> ModelSpec:
    return ModelSpec(name, make, ths, watts, boards, chips, fans)


_TABLE: tuple[ModelSpec, ...] = (
    # Antminer (Bitmain). S19 family: 3 boards, 4 fans.
    _spec("Antminer S9", "Antminer", 13.5, 1323, 3, 63, 2),  # approx.
    _spec("Antminer S19", "Antminer", 95, 3250, 3, 76, 4),  # approx.
    _spec("Antminer S19 Pro", "Antminer", 110, 3250, 3, 114, 4),  # §7 capture: 110 TH, 3 × 114
    _spec("Antminer S19j Pro", "Antminer", 104, 3068, 3, 126, 4),  # econ §2; §7: 3 × 126
    _spec("Antminer S19k Pro", "Antminer", 120, 2760, 3, None, 4),  # approx.
    _spec("Antminer S19 XP", "Antminer", 140, 3010, 3, 110, 4),  # econ §2; §7 Vnish: 3 × 110
    _spec("Antminer S19 XP Hydro", "Antminer", 257, 5346, 3, None, 0),  # econ §2
    _spec("Antminer S19 Pro+", "Antminer", 120, 3355, 3, 120, 4),  # approx.; new_api capture
    _spec("Antminer S21", "Antminer", 200, 3500, 3, 108, 4),  # econ §2; §7: 3 × 108
    _spec("Antminer S21+", "Antminer", 216, 3564, 3, None, 4),  # econ §2
    _spec("Antminer S21 Pro", "Antminer", 234, 3510, 3, None, 4),  # econ §2
    _spec("Antminer S21 XP", "Antminer", 270, 3645, 3, None, 4),  # econ §2
    _spec("Antminer S21 Hydro", "Antminer", 335, 5360, 3, None, 0),  # econ §2
    _spec("Antminer S21 XP Hydro", "Antminer", 473, 5676, 3, None, 0),  # econ §2
    # Whatsminer (MicroBT). Variant letters after the family pick the chip bin.
    _spec("Whatsminer M50", "Whatsminer", 118, 3422, 3, 105, 2),  # econ §2; VH50 3 × 105
    _spec("Whatsminer M50VH50", "Whatsminer", 118, 3422, 3, 105, 2),  # §6.4
    _spec("Whatsminer M50VH90", "Whatsminer", 119, 3510, 3, 117, 2),  # §7 capture
    _spec("Whatsminer M50VG30", "Whatsminer", 118, 3422, 3, 156, 2),  # §6.4 chips
    _spec("Whatsminer M50S", "Whatsminer", 126, 3276, 3, None, 2),  # econ §2
    _spec("Whatsminer M60", "Whatsminer", 172, 3422, 3, None, 2),  # econ §2
    _spec("Whatsminer M60S", "Whatsminer", 186, 3441, 3, None, 2),  # econ §2
    _spec("Whatsminer M66S", "Whatsminer", 298, 5348, 3, None, 0),  # econ §2 (immersion)
    # Avalon (Canaan).
    _spec("AvalonMiner 1246", "Avalon", 90, 3420, 3, None, 4),  # approx. vendor spec
    _spec("Avalon Q", "Avalon", 90, 1674, None, None, None),  # approx. vendor spec
    _spec("Avalon Nano 3", "Avalon", 4, 140, 1, None, 1),  # approx. vendor spec
)

_VENDOR_WORDS = re.compile(r"ANTMINER|WHATSMINER|BITMAIN|MICROBT|AVALONMINER|AVALON|CANAAN")
_SEPARATORS = re.compile(r"[\s_\-]+")


def model_key(model: str) -> str:
    """Normalise a model string for lookup: `"Antminer S19j Pro"` → `"S19JPRO"`."""
    text = model.upper().split(" (", 1)[0]  # "Antminer S19 XP (Vnish 1.2.0)" → drop the suffix
    text = _VENDOR_WORDS.sub("", text)
    return _SEPARATORS.sub("", text)


_BY_KEY: dict[str, ModelSpec] = {model_key(spec.name): spec for spec in _TABLE}
_KEYS_LONGEST_FIRST = sorted(_BY_KEY, key=len, reverse=True)


@lru_cache(maxsize=256)
def lookup(model: str | None) -> ModelSpec | None:
    """The nameplate for a model string as firmwares report it, or None if unknown."""
    if not model:
        return None
    key = model_key(model)
    if not key:
        return None
    spec = _BY_KEY.get(key) or _BY_KEY.get(whatsminer_family_key(key))
    if spec is not None:
        return spec
    for candidate in _KEYS_LONGEST_FIRST:
        # Require at least 3 characters so a bare "Q" or "3" cannot claim a random model.
        if len(candidate) >= 3 and key.startswith(candidate):
            return _BY_KEY[candidate]
    return None


def whatsminer_family_key(model: str) -> str:
    """pyasic's Whatsminer family key: drop `_`, last character → `0` (`M50_VH51` → `M50VH50`)."""
    compact = model.replace("_", "").strip()
    return compact[:-1] + "0" if compact and compact[-1].isdigit() else compact
