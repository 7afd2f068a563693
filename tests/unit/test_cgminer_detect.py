"""Recognising the firmware family from `version` / `devdetails` / `stats` replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drivers.cgminer.client import Reply
from drivers.cgminer.dialects import DIALECTS, classify
from drivers.cgminer.errors import AccessDenied, CgminerError, EmptyReply
from drivers.cgminer.reading import Firmware
from drivers.cgminer.status import error_for, parse_status

FIXTURES = Path(__file__).parent / "cgminer_fixtures"


def answer(data: dict[str, Any], command: str = "version") -> Reply | CgminerError:
    status = parse_status(data)
    return Reply(command, data, status) if status.ok else error_for(command, status)


def fixture(name: str, command: str) -> Reply | CgminerError:
    return answer(json.loads((FIXTURES / f"{name}.json").read_text())[command], command)


def version(record: dict[str, Any], msg: str = "CGMiner versions", desc: str = "") -> Reply:
    data = {
        "STATUS": [{"STATUS": "S", "When": 1, "Code": 22, "Msg": msg, "Description": desc}],
        "VERSION": [record],
        "id": 1,
    }
    reply = answer(data)
    assert isinstance(reply, Reply)
    return reply


@pytest.mark.parametrize(
    ("name", "firmware"),
    [
        ("antminer_s19jpro", Firmware.ANTMINER_STOCK),
        ("vnish_s19xp", Firmware.VNISH),
        ("luxos_s19kpro", Firmware.LUXOS),
        ("braiins_s19jpro", Firmware.BRAIINS),
        ("avalon_1246", Firmware.AVALON),
    ],
)
def test_version_alone_is_enough(name: str, firmware: Firmware) -> None:
    assert classify(fixture(name, "version")) is firmware


def test_whatsminer_needs_devdetails() -> None:
    version_answer = fixture("whatsminer_m50", "version")  # Q25 flat "invalid cmd"
    assert classify(version_answer, fixture("whatsminer_m50", "devdetails")) is Firmware.WHATSMINER


def test_whatsminer_devdetails_alone() -> None:
    denied = AccessDenied("version", parse_status({"STATUS": "E", "Code": 45, "Msg": "x"}))
    assert classify(denied, fixture("whatsminer_m50", "devdetails")) is Firmware.WHATSMINER


def test_plain_cgminer_is_recognised_as_cgminer() -> None:
    assert classify(fixture("cgminer_generic", "version")) is Firmware.CGMINER


def test_hiveon_is_stock_layout() -> None:
    reply = version(
        {"BMMiner": "4.11.1 rwglr", "API": "3.1", "Type": "Antminer S19JPRO Hiveon"},
        msg="BMMiner versions",
    )
    assert classify(reply) is Firmware.ANTMINER_STOCK


def test_old_bosminer_key() -> None:
    assert classify(version({"BOSminer": "0.2.0-xyz", "API": "3.7"})) is Firmware.BRAIINS


def test_vnish_wins_over_antminer() -> None:
    reply = version({"CGMiner": "4.11.1", "Type": "Antminer S21 Hydro (Vnish 1.2.6)"})
    assert classify(reply) is Firmware.VNISH


def test_q31_vnish_from_stats_when_version_is_silent() -> None:
    stats = answer(
        {
            "STATUS": [{"STATUS": "S", "When": 1, "Code": 70, "Msg": "CGMiner stats"}],
            "STATS": [{"Cgminer": "4.11.1", "Type": "Antminer S19 XP (Vnish 1.3.0-alpha)"}],
            "id": 1,
        },
        "stats",
    )
    assert classify(EmptyReply(), EmptyReply(), stats) is Firmware.VNISH


def test_avalon_from_devdetails() -> None:
    devdetails = answer(
        {
            "STATUS": [{"STATUS": "S", "When": 1, "Code": 69, "Msg": "Device Details"}],
            "DEVDETAILS": [{"DEVDETAILS": 0, "Name": "AVALON", "Driver": "avalon", "Model": ""}],
            "id": 1,
        },
        "devdetails",
    )
    assert classify(EmptyReply(), devdetails) is Firmware.AVALON


def test_nothing_conclusive() -> None:
    assert classify(EmptyReply()) is None
    assert classify(None) is None


def test_every_dialect_declares_its_commands() -> None:
    for firmware, dialect in DIALECTS.items():
        assert dialect.firmware is firmware
        assert "summary" in dialect.poll_commands
        assert "pools" in dialect.poll_commands
