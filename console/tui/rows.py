"""Pure presentation of a device as fleet-table cells: text, style and sort key per column.

Kept free of widgets so it can be tested without a terminal and reused by any table. A row is
a device's status plus its `Money` (the earnings columns of the priced snapshot; None when
the device is not priced). Every state is spelled out in words and every loss has its minus
sign, so the table reads the same with colours off (`NO_COLOR`).

Each column has a `priority`: a narrow terminal shows the most important columns that fit
(80 columns: name, state, freshness, hashrate, power, profit...), a wider one shows more,
always in the display order of `COLUMNS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from console.model import MISSING, DeviceKind, DeviceStatus, fmt_hashrate, fmt_num, fmt_usd
from console.tui.states import FRESH_STYLE, STATE_STYLE

SortValue = float | str
SortKey = tuple[int, SortValue]


class Money(NamedTuple):
    """A device's earnings cells, USD per day; None = unknown (shown as "—")."""

    revenue: float | None
    cost: float | None
    profit: float | None
    switch_gain: float | None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    right: bool
    priority: int
    """Lower is more important: columns are dropped from the highest priority up until the
    rest fit the terminal."""
    text: Callable[[DeviceStatus, Money | None], str]
    sort: Callable[[DeviceStatus, Money | None], SortValue | None]


def _hashrate(d: DeviceStatus, m: Money | None = None) -> float | None:
    if d.gpu is not None:
        # A GPU's hashrate is another algorithm's (MH/s of KawPow, say): shown, never summed.
        return d.gpu.miner_hashrate_hs if d.gpu.state == "MINING" else None
    return d.reading.hashrate_5s_hs if d.reading else None


def _util(d: DeviceStatus) -> float | None:
    gpu = d.gpu
    sample = gpu.nvml.sample if gpu is not None and gpu.nvml is not None else None
    return sample.util_gpu_pct if sample is not None else None


def _hashrate_text(d: DeviceStatus, m: Money | None = None) -> str:
    """ASICs: their hashrate. GPUs: the miner's hashrate while mining, else utilisation."""
    hashrate = _hashrate(d)
    if d.gpu is None or hashrate is not None:
        return fmt_hashrate(hashrate)
    util = _util(d)
    return MISSING if util is None else f"{util:.0f}% util"


def _temp(d: DeviceStatus, m: Money | None = None) -> float | None:
    if d.gpu is not None:
        return d.gpu.temp_c
    return d.reading.temp_max_c if d.reading else None


def _power(d: DeviceStatus, m: Money | None = None) -> float | None:
    if d.gpu is not None:
        return d.gpu.power_w
    return d.reading.power_w if d.reading else None


def _jth(d: DeviceStatus, m: Money | None = None) -> float | None:
    return d.reading.efficiency_j_per_th if d.reading else None


def _power_text(d: DeviceStatus, m: Money | None = None) -> str:
    power = _power(d)
    if power is None:
        return MISSING
    # An asterisk marks nameplate estimates: never pass an estimate off as a measurement.
    estimated = d.reading is not None and d.reading.power_estimated
    return fmt_num(power, ".0f", "W") + ("*" if estimated else " ")


def note(d: DeviceStatus, m: Money | None = None) -> str:
    if d.last_error:
        return d.last_error
    gpu = d.gpu
    if gpu is not None:
        if gpu.error:
            return gpu.error
        if gpu.job is not None:
            return f"job {gpu.job.id} {gpu.job.name} ({gpu.job.progress:.0%})"
        if gpu.switching:
            # A miner being launched does not answer its API yet: that is the step, not a
            # fault (the detail screen still shows the API error).
            return f"switching: {gpu.state.lower().replace('_', ' ')}"
        return gpu.miner_error or ""
    r = d.reading
    if r is not None and r.warnings:
        return r.warnings[0]
    return ""


def _usd(value: float | None) -> str:
    return fmt_usd(value, ",.2f")


def _money(field: int) -> Callable[[DeviceStatus, Money | None], float | None]:
    def get(d: DeviceStatus, m: Money | None) -> float | None:
        return None if m is None else m[field]

    return get


_revenue, _cost, _profit, _gain = (_money(i) for i in range(4))


def _gain_text(d: DeviceStatus, m: Money | None) -> str:
    # Only GPUs have another mode to switch to; an ASIC's cell stays empty, not "—".
    if d.kind is not DeviceKind.GPU:
        return ""
    return _usd(_gain(d, m))


def _name(d: DeviceStatus, m: Money | None = None) -> str:
    return d.name


# Display order: what an operator scans first is on the left. Priorities pick what fits:
# at 80 columns name, state, freshness, hashrate, temperature, power, profit (and kind); at
# 160 everything but the note, which the detail screen shows in full.
COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", 16, False, 0, _name, _name),
    Column("kind", "Kind", 4, False, 13, lambda d, m: d.kind.value, lambda d, m: d.kind.value),
    Column(
        "state",
        "State",
        11,
        False,
        1,
        lambda d, m: d.observed.value.replace("_", " "),
        lambda d, m: d.observed.value,
    ),
    Column(
        "fresh",
        "Fresh",
        7,
        False,
        2,
        lambda d, m: d.freshness.value,
        lambda d, m: d.freshness.value,
    ),
    Column(
        "mode",
        "Mode",
        9,
        False,
        11,
        lambda d, m: d.commanded.value,
        lambda d, m: d.commanded.value,
    ),
    Column("hashrate", "Hashrate", 10, True, 4, _hashrate_text, _hashrate),
    Column("temp", "Temp", 5, True, 6, lambda d, m: fmt_num(_temp(d), ".0f", "°C"), _temp),
    Column("power", "Power", 7, True, 5, _power_text, _power),
    Column("jth", "J/TH", 5, True, 9, lambda d, m: fmt_num(_jth(d), ".1f"), _jth),
    Column("revenue", "Rev/day", 9, True, 7, lambda d, m: _usd(_revenue(d, m)), _revenue),
    Column("cost", "Cost/day", 9, True, 8, lambda d, m: _usd(_cost(d, m)), _cost),
    Column("profit", "Profit/day", 10, True, 3, lambda d, m: _usd(_profit(d, m)), _profit),
    Column("gain", "Switch gain", 11, True, 10, _gain_text, _gain),
    Column(
        "model",
        "Model",
        18,
        False,
        12,
        lambda d, m: d.model or MISSING,
        lambda d, m: d.model or "",
    ),
    Column("note", "Note", 40, False, 14, note, note),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
MONEY_KEYS = frozenset({"revenue", "cost", "profit", "gain"})
"""The columns that come from the earnings (they move with the market, not the device)."""
BY_KEY = {c.key: c for c in COLUMNS}


def cell_texts(d: DeviceStatus, m: Money | None) -> tuple[str, ...]:
    """The plain text of every column: what the table diffs and filters on."""
    return tuple(c.text(d, m) for c in COLUMNS)


def cell_style(column_key: str, d: DeviceStatus, m: Money | None) -> str:
    """The colour of one cell (a Rich style string; "" for none). The text already says it."""
    if column_key == "state":
        return STATE_STYLE[d.observed]
    if column_key == "fresh":
        return FRESH_STYLE[d.freshness]
    if column_key == "note" and (d.last_error or (d.gpu is not None and d.gpu.error)):
        return "red"
    if column_key in ("profit", "gain") and m is not None:
        value = m.profit if column_key == "profit" else m.switch_gain
        if value is not None and value < 0:
            return "red"
    return ""


def sort_key(
    column_key: str, d: DeviceStatus, m: Money | None, *, reverse: bool = False
) -> SortKey:
    """Key for a sort by `column_key`. Unreported values end up last in either direction
    (the caller sorts with `reverse`, which would otherwise bring them to the top)."""
    value = BY_KEY[column_key].sort(d, m)
    missing_rank = 0 if reverse else 1
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return (missing_rank, 0.0)
    return (1 - missing_rank, value)
