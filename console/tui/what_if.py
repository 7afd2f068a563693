"""The what-if panel's arithmetic and text, without widgets: a market the operator types in,
the fleet and every device priced under it, and where they break even.

`evaluate(snapshot, btc_price_usd, difficulty, power_usd_per_kwh)` turns the typed values into
a `MarketScenario` (factors against the snapshot's own market) and prices the snapshot's
`FleetInputs` (the same arrays the live figures come from) with `console.economics.what_if`
for the fleet totals and `console.economics.compute` for the per-device columns. Nothing is
approximated: a GPU's revenue does not move with the BTC price, an ASIC's does, and every
device's power cost moves with the power price.

Breakevens (at the other two typed values):

* fleet BTC price: where ASIC revenue plus GPU revenue covers the power cost; ASIC revenue is
  proportional to the BTC price, so `btc × (cost − gpu revenue) / asic revenue`;
* fleet difficulty: ASIC revenue is inversely proportional to it, `D × asic / (cost − gpu)`;
* fleet power price: cost is proportional to it, `power × revenue / cost`;
* per device: its breakeven power price (from the model) and, for ASICs, the BTC price at
  which it stops making money, `btc × cost / revenue`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from console.config import MarketScenario
from console.economics import (
    KIND_ASIC,
    EarningsColumns,
    EarningsTotals,
    MarketParams,
    compute,
    what_if,
)
from console.model import MISSING, Snapshot, fmt_usd

F64 = npt.NDArray[np.float64]
TERA = 1e12


class WhatIfInputError(ValueError):
    """A typed value that is not a usable price or difficulty, in operator words."""


_NUMBER = re.compile(r"^\s*\$?\s*([+-]?[0-9][0-9,_]*\.?[0-9]*|[+-]?\.[0-9]+)\s*(%?)\s*$")


def parse_value(text: str, current: float, what: str) -> float:
    """A positive number, or a change against `current`: "95000", "$95,000", "-10%", "+5%".

    Raises `WhatIfInputError` with the reason and an example."""
    match = _NUMBER.match(text)
    if not match:
        raise WhatIfInputError(f"{what}: {text.strip()!r} is not a number (e.g. 95000 or -10%)")
    number = float(match.group(1).replace(",", "").replace("_", ""))
    if match.group(2):
        value = current * (1 + number / 100)
    elif match.group(1).startswith(("+", "-")):
        raise WhatIfInputError(f"{what}: give a value or a change in % (e.g. -10%), not {text!r}")
    else:
        value = number
    if not math.isfinite(value) or value <= 0:
        raise WhatIfInputError(f"{what}: must be above zero, got {value:g}")
    return value


@dataclass(frozen=True)
class MarketNow:
    """The three figures the panel changes, as the snapshot's market has them."""

    btc_price_usd: float
    difficulty: float
    power_usd_per_kwh: float

    @classmethod
    def of(cls, snapshot: Snapshot) -> MarketNow | None:
        m = snapshot.market
        if m is None:
            return None
        return cls(
            m.btc_price_usd.value, m.network_difficulty.value, m.power_price_usd_per_kwh.value
        )


@dataclass(frozen=True)
class WhatIf:
    """The fleet under the typed market, next to the fleet now."""

    market: MarketNow  # what the operator typed
    scenario: MarketScenario
    device_ids: tuple[str, ...]
    names: tuple[str, ...]
    now: EarningsTotals
    then: EarningsTotals
    profit_now: F64  # per device, USD/day (NaN unknown)
    profit_then: F64
    breakeven_usd_per_kwh: F64  # per device, under the typed BTC price and difficulty
    breakeven_btc_price_usd: F64  # per ASIC, under the typed difficulty and power price
    fleet_breakeven_btc_price_usd: float | None
    fleet_breakeven_difficulty: float | None
    fleet_breakeven_usd_per_kwh: float | None

    @property
    def change(self) -> F64:
        return self.profit_then - self.profit_now

    @property
    def losing(self) -> int:
        """Devices that lose money under the typed market."""
        return int(np.count_nonzero(self.profit_then < 0))

    @property
    def priced(self) -> int:
        return int(np.count_nonzero(np.isfinite(self.profit_then)))


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator <= 0 or numerator <= 0:
        return None
    return numerator / denominator


def evaluate(
    snapshot: Snapshot, btc_price_usd: float, difficulty: float, power_usd_per_kwh: float
) -> WhatIf | None:
    """The fleet priced under the typed market; None without a priced snapshot."""
    e, now = snapshot.earnings, MarketNow.of(snapshot)
    if e is None or now is None or snapshot.market is None:
        return None
    scenario = MarketScenario(
        name="what-if",
        btc_price_factor=btc_price_usd / now.btc_price_usd,
        difficulty_factor=difficulty / now.difficulty,
        power_price_factor=power_usd_per_kwh / now.power_usd_per_kwh,
    )
    params = MarketParams.of(snapshot.market)
    # Queued AI jobs only move a GPU's estimate in its *other* mode, which the panel does not
    # show: the current-mode figures below do not depend on them.
    totals = what_if(e.inputs, params, scenario).totals
    columns: EarningsColumns = compute(e.inputs, params.scaled(scenario))
    then = columns.profit_usd_per_day
    asic = e.inputs.kind == KIND_ASIC
    revenue, cost = columns.revenue_usd_per_day, columns.power_cost_usd_per_day
    with np.errstate(divide="ignore", invalid="ignore"):
        be_btc = np.where(asic & (revenue > 0), btc_price_usd * cost / revenue, np.nan)
    other = totals.gpu_mining_revenue_usd_per_day + totals.ai_revenue_usd_per_day
    gap = totals.power_cost_usd_per_day - other  # what ASIC revenue must cover
    asic_revenue = totals.asic_revenue_usd_per_day
    fleet_btc = _ratio(gap, asic_revenue)
    fleet_difficulty = _ratio(asic_revenue, gap)
    fleet_power = _ratio(totals.revenue_usd_per_day, totals.power_cost_usd_per_day)
    by_id = {d.device_id: d.name for d in snapshot.devices}
    return WhatIf(
        market=MarketNow(btc_price_usd, difficulty, power_usd_per_kwh),
        scenario=scenario,
        device_ids=e.device_ids,
        names=tuple(by_id.get(i, i) for i in e.device_ids),
        now=e.totals,
        then=totals,
        profit_now=e.columns.profit_usd_per_day,
        profit_then=then,
        breakeven_usd_per_kwh=columns.breakeven_usd_per_kwh,
        breakeven_btc_price_usd=be_btc,
        fleet_breakeven_btc_price_usd=None if fleet_btc is None else fleet_btc * btc_price_usd,
        fleet_breakeven_difficulty=None
        if fleet_difficulty is None
        else fleet_difficulty * difficulty,
        fleet_breakeven_usd_per_kwh=None
        if fleet_power is None
        else fleet_power * power_usd_per_kwh,
    )


# --- text ------------------------------------------------------------------------------------


def usd(value: float | None, spec: str = ",.2f") -> str:
    return fmt_usd(None if value is None or not math.isfinite(value) else value, spec)


def signed_usd(value: float | None) -> str:
    """`+$1.20`, `-$0.82`, `$0.00`; `—` when unknown."""
    if value is None or not math.isfinite(value):
        return MISSING
    text = fmt_usd(value)
    return "+" + text if value > 0.005 else text


def fleet_breakeven_lines(w: WhatIf) -> list[str]:
    """The market values at which the whole fleet's profit is zero, each at the other two
    typed values; "—" where there is none (no ASIC revenue, or GPUs alone cover the cost)."""
    btc = w.fleet_breakeven_btc_price_usd
    difficulty = w.fleet_breakeven_difficulty
    power = w.fleet_breakeven_usd_per_kwh
    return [
        f"BTC {MISSING if btc is None else f'${btc:,.0f}'}",
        f"difficulty {MISSING if difficulty is None else f'{difficulty / TERA:,.2f} T'}",
        f"power {MISSING if power is None else f'${power:.4f}/kWh'}",
    ]
