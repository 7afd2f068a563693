"""Lenient conversion of reply values: the numbers and strings firmwares actually send.

Firmwares send numbers as strings (Q14: `"GHS 5s":"14046.04"`), `""` for an absent chain,
durations as `"0:00:03"`, difficulties as `"524K"`, units glued on (`"3250 W"`, Q30
`"11500 M..."`), values wrapped in single quotes (Q16: `"'20210322.22.REL'"`) and non-finite
floats (Q8). These functions turn all of that into `float | None` / `str | None`, and say *why*
a value was None, so the caller can tell "absent" (silent) from "malformed" (a warning) from
"non-finite" (a repair).

Pure functions, no I/O; the hot path (an int or finite float) returns after one type check.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any


class Why(Enum):
    """Why a value could not be read as a number."""

    OK = "ok"
    ABSENT = "absent"  # missing key, JSON null or ""
    NON_FINITE = "non_finite"  # inf / nan, quoted or not
    MALFORMED = "malformed"  # present but not a number


_SUFFIX = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
# A number glued to a magnitude suffix at the very end: "524K", "1.2M" (pool difficulties).
_SUFFIXED = re.compile(r"([-+]?\d+(?:\.\d+)?)([KMGTP])")
# A leading number followed by a space and anything (a unit or a label): "3250 W", "11500 M...".
_LEADING = re.compile(r"[-+]?\d+(?:\.\d+)?(?=\s|$)")
_CLOCK = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})")
_QUOTES = "'\" \t"


def parse_number(value: Any) -> tuple[float | None, Why]:
    """Read `value` as a finite float; `(None, why)` when that is not possible."""
    kind = type(value)
    if kind is float:
        if value - value == 0.0:  # false for inf and nan
            return value, Why.OK
        return None, Why.NON_FINITE
    if kind is int:
        return float(value), Why.OK
    if value is None:
        return None, Why.ABSENT
    if kind is str:
        return _parse_text(value)
    if kind is bool:
        return None, Why.MALFORMED
    if isinstance(value, int | float):
        return parse_number(float(value))
    return None, Why.MALFORMED


def _parse_text(value: str) -> tuple[float | None, Why]:
    text = value.strip(_QUOTES)
    if not text:
        return None, Why.ABSENT
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if number - number == 0.0:
            return number, Why.OK
        return None, Why.NON_FINITE
    match = _SUFFIXED.fullmatch(text)
    if match is not None:
        return float(match.group(1)) * _SUFFIX[match.group(2)], Why.OK
    match = _CLOCK.fullmatch(text)
    if match is not None:
        hours, minutes, seconds = (int(group) for group in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds), Why.OK
    match = _LEADING.match(text)
    if match is not None:
        return float(match.group(0)), Why.OK
    return None, Why.MALFORMED


def number_or_none(value: Any) -> float | None:
    """`parse_number` without the reason."""
    return parse_number(value)[0]


_EDGES = frozenset("' \t\r\n")


def clean_text(value: Any) -> str | None:
    """A string value with Q16 single quotes and whitespace stripped; None when empty/absent."""
    if type(value) is str:
        if value and value[0] not in _EDGES and value[-1] not in _EDGES:
            return value  # the common case: nothing to strip
    elif value is None:
        return None
    text = str(value).strip().strip("'").strip()
    return text or None


def truthy(value: Any) -> bool | None:
    """JSON booleans and the string spellings firmwares use (`"true"`, `"Y"`, `"1"`)."""
    if type(value) is bool:
        return value
    if value is None:
        return None
    text = str(value).strip().strip("'").lower()
    if text in ("true", "y", "yes", "1", "on"):
        return True
    if text in ("false", "n", "no", "0", "off", ""):
        return False
    return None


def sensor_values(value: Any) -> list[float]:
    """The non-zero readings of a sensor group: `"62-62-74-74"`, `[59,59,73,73]`, `"52-75"`.

    Zeros mean "no sensor" on these firmwares (`"0-0-0-0"` = absent chain), so they are dropped.
    """
    if value is None:
        return []
    if type(value) is str:
        # Fast path for the common "62-62-74-74" form: plain, finite, non-negative numbers.
        try:
            numbers = list(map(float, value.split("-")))
        except ValueError:
            pass
        else:
            total = sum(numbers)
            if total - total == 0.0:  # false if any is inf / nan
                return numbers if 0.0 not in numbers else [n for n in numbers if n]
    if isinstance(value, list):
        parts: list[Any] = value
    elif isinstance(value, int | float) and type(value) is not bool:
        parts = [value]
    else:
        parts = str(value).strip(_QUOTES).replace(" ", "-").split("-")
    readings: list[float] = []
    for part in parts:
        number, _why = parse_number(part)
        if number is not None and number != 0.0:
            readings.append(number)
    return readings


def mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# Sensor-group strings repeat endlessly ("51-51-68-68": whole-degree readings, a few boards, a
# fleet of the same models), so their mean is memoised: a dict hit instead of split + 4 float()
# + a list per board per poll. Bounded: cleared when full, so odd firmwares cannot grow it.
_SENSOR_MEANS: dict[str, float | None] = {}
_SENSOR_MEANS_MAX = 4096


def sensor_mean(value: Any) -> float | None:
    """`mean_or_none(sensor_values(value))`, memoised for the string form."""
    if type(value) is not str:
        return mean_or_none(sensor_values(value))
    if value in _SENSOR_MEANS:
        return _SENSOR_MEANS[value]
    mean = mean_or_none(sensor_values(value))
    if len(_SENSOR_MEANS) >= _SENSOR_MEANS_MAX:
        _SENSOR_MEANS.clear()
    _SENSOR_MEANS[value] = mean
    return mean
