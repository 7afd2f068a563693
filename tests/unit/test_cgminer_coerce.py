"""Lenient values (Q14, Q15, Q16, Q30, Q8) and the nameplate table."""

from __future__ import annotations

import math

import pytest

from drivers.cgminer.coerce import (
    Why,
    clean_text,
    mean_or_none,
    parse_number,
    sensor_mean,
    sensor_values,
    truthy,
)
from drivers.cgminer.models import lookup, model_key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (14046, 14046.0),
        (103950.12, 103950.12),
        ("14046.04", 14046.04),  # Q14: numbers as strings
        (" 37603.30 ", 37603.3),
        ("524K", 524000.0),  # Q14: pool difficulty
        ("1.2M", 1.2e6),
        ("0:00:03", 3.0),  # Q14: H:MM:SS
        ("12:34:56", 45296.0),
        ("11500 MHz", 11500.0),  # Q30
        ("11500 M...", 11500.0),
        ("3250 W", 3250.0),
        ("'42'", 42.0),  # Q16
    ],
)
def test_numbers(value: object, expected: float) -> None:
    number, why = parse_number(value)
    assert why is Why.OK
    assert number == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "  ", "''"])
def test_absent(value: object) -> None:
    assert parse_number(value) == (None, Why.ABSENT)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, "inf", "nan", "-nan", "'inf'"])
def test_non_finite_is_none_not_zero(value: object) -> None:
    assert parse_number(value) == (None, Why.NON_FINITE)


@pytest.mark.parametrize("value", ["Alive", True, [1], {"a": 1}, "abc 12"])
def test_malformed(value: object) -> None:
    assert parse_number(value) == (None, Why.MALFORMED)


def test_clean_text_strips_q16_quotes() -> None:
    assert clean_text("'20210322.22.REL'") == "20210322.22.REL"
    assert clean_text("  ") is None
    assert clean_text(None) is None
    assert clean_text(5) == "5"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("true", True), ("Y", True), ("false", False), ("N", False), (None, None)],
)
def test_truthy(value: object, expected: bool | None) -> None:
    assert truthy(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("62-62-74-74", [62, 62, 74, 74]),
        ("0-0-0-0", []),  # absent chain
        ("52-75", [52, 75]),  # Vnish min-max
        ([59, 59, 73, 73], [59, 59, 73, 73]),
        ([0, 0, 60, 0], [60]),
        ("", []),
        (None, []),
        (70, [70]),
    ],
)
def test_sensor_values(value: object, expected: list[float]) -> None:
    assert sensor_values(value) == expected


def test_mean_or_none() -> None:
    assert mean_or_none([]) is None
    assert mean_or_none([62, 74]) == 68


@pytest.mark.parametrize(
    "value",
    ["62-62-74-74", "0-0-0-0", "0-0-60-0", "'52-75'", "inf-60", "x-y", "", None, [59, 0, 73], 70],
)
def test_sensor_mean_is_the_memoised_mean_of_sensor_values(value: object) -> None:
    expected = mean_or_none(sensor_values(value))
    assert sensor_mean(value) == expected
    assert sensor_mean(value) == expected  # the second call is answered from the memo


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("Antminer S19j Pro", "Antminer S19j Pro"),
        ("Antminer S19JPRO Hiveon", "Antminer S19j Pro"),
        ("Antminer S19 XP (Vnish 1.2.0-rc1)", "Antminer S19 XP"),
        ("Antminer S19 XP Hydro", "Antminer S19 XP Hydro"),
        ("Antminer S21", "Antminer S21"),
        ("Whatsminer M50VH50", "Whatsminer M50VH50"),
        ("Whatsminer M50VH51", "Whatsminer M50VH50"),  # pyasic: last char -> 0
        ("M50_VH91", "Whatsminer M50VH90"),
        ("Whatsminer M50SVH50", "Whatsminer M50S"),
        ("Whatsminer M60SVK40", "Whatsminer M60S"),
        ("AvalonMiner 1246", "AvalonMiner 1246"),
    ],
)
def test_model_lookup(model: str, name: str) -> None:
    spec = lookup(model)
    assert spec is not None
    assert spec.name == name


def test_unknown_models() -> None:
    assert lookup(None) is None
    assert lookup("") is None
    assert lookup("Antminer BHB42XXX") is None
    assert model_key("Antminer S19j Pro") == "S19JPRO"


def test_nameplates_from_economics() -> None:
    s19jpro = lookup("Antminer S19j Pro")
    assert s19jpro is not None
    assert (s19jpro.nominal_ths, s19jpro.power_w, s19jpro.boards, s19jpro.chips_per_board) == (
        104,
        3068,
        3,
        126,
    )
    s21 = lookup("Antminer S21")
    assert s21 is not None and (s21.nominal_ths, s21.power_w, s21.chips_per_board) == (
        200,
        3500,
        108,
    )
