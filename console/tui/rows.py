"""Pure presentation of a device as table cells: text, style and a sort key per column.

Kept free of widgets so it can be tested without a terminal and reused by any table. Every
state is spelled out in words, so the table reads the same with colours off (`NO_COLOR`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text

from console.model import MISSING, DeviceStatus, fmt_hashrate, fmt_num
from console.tui.states import FRESH_STYLE, STATE_STYLE

SortKey = tuple[int, float | str]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    right: bool
    text: Callable[[DeviceStatus], str]
    sort: Callable[[DeviceStatus], float | str | None]


def _hashrate(d: DeviceStatus) -> float | None:
    return d.reading.hashrate_5s_hs if d.reading else None


def _temp(d: DeviceStatus) -> float | None:
    return d.reading.temp_max_c if d.reading else None


def _power(d: DeviceStatus) -> float | None:
    return d.reading.power_w if d.reading else None


def _jth(d: DeviceStatus) -> float | None:
    return d.reading.efficiency_j_per_th if d.reading else None


def _power_text(d: DeviceStatus) -> str:
    r = d.reading
    if r is None or r.power_w is None:
        return MISSING
    # An asterisk marks nameplate estimates: never pass an estimate off as a measurement.
    return fmt_num(r.power_w, ".0f", "W") + ("*" if r.power_estimated else " ")


def _note(d: DeviceStatus) -> str:
    if d.last_error:
        return d.last_error
    r = d.reading
    if r is not None and r.warnings:
        return r.warnings[0]
    return ""


# Ordered for an 80-column SSH window: what an operator scans first fits on the left.
COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", 18, False, lambda d: d.name, lambda d: d.name),
    Column("state", "State", 9, False, lambda d: d.observed.value, lambda d: d.observed.value),
    Column("fresh", "Fresh", 7, False, lambda d: d.freshness.value, lambda d: d.freshness.value),
    Column("hashrate", "Hashrate", 11, True, lambda d: fmt_hashrate(_hashrate(d)), _hashrate),
    Column("temp", "Temp", 5, True, lambda d: fmt_num(_temp(d), ".0f", "°C"), _temp),
    Column("power", "Power", 7, True, _power_text, _power),
    Column("jth", "J/TH", 5, True, lambda d: fmt_num(_jth(d), ".1f"), _jth),
    Column("model", "Model", 18, False, lambda d: d.model or MISSING, lambda d: d.model or ""),
    Column("mode", "Mode", 9, False, lambda d: d.commanded.value, lambda d: d.commanded.value),
    Column("kind", "Kind", 4, False, lambda d: d.kind.value, lambda d: d.kind.value),
    Column("note", "Note", 40, False, _note, _note),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
_BY_KEY = {c.key: c for c in COLUMNS}


def cell_texts(d: DeviceStatus) -> tuple[str, ...]:
    """The plain text of every column: what the table diffs on."""
    return tuple(c.text(d) for c in COLUMNS)


def styled(column_key: str, text: str, d: DeviceStatus) -> Text:
    column = _BY_KEY[column_key]
    style = ""
    if column_key == "state":
        style = STATE_STYLE[d.observed]
    elif column_key == "fresh":
        style = FRESH_STYLE[d.freshness]
    elif column_key == "note" and d.last_error:
        style = "red"
    clipped = text if len(text) <= column.width else text[: column.width - 1] + "…"
    return Text(clipped, style=style, justify="right" if column.right else "left", no_wrap=True)


def sort_key(column_key: str, d: DeviceStatus, *, reverse: bool = False) -> SortKey:
    """Key for a sort by `column_key`. Unreported values end up last in either direction
    (the caller sorts with `reverse`, which would otherwise bring them to the top)."""
    value = _BY_KEY[column_key].sort(d)
    missing_rank = 0 if reverse else 1
    if value is None or value == "":
        return (missing_rank, 0.0)
    return (1 - missing_rank, value)
