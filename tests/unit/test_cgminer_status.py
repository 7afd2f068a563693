"""STATUS in every shape firmwares send it (§1.5, Q12, Q13, Q25, Q26) and the error mapping."""

from __future__ import annotations

import pytest

from drivers.cgminer.errors import AccessDenied, CommandError, DecodeError, InvalidCommand
from drivers.cgminer.status import Status, error_for, parse_status


def test_array_form() -> None:
    status = parse_status(
        {
            "STATUS": [
                {
                    "STATUS": "S",
                    "When": 1755615295,
                    "Code": 11,
                    "Msg": "Summary",
                    "Description": "cgminer 4.11.1",
                }
            ],
            "id": 1,
        }
    )
    assert status == Status("S", 11, "Summary", "cgminer 4.11.1", 1755615295)
    assert status.ok


@pytest.mark.parametrize("word", ["RESTART", "BYE"])
def test_flat_restart_and_bye_are_success(word: str) -> None:
    status = parse_status({"STATUS": word, "id": 1})
    assert status.ok
    assert status.msg == word


def test_q12_flat_whatsminer_form_with_object_msg() -> None:
    status = parse_status(
        {
            "STATUS": "S",
            "When": 1761064196,
            "Code": 131,
            "Msg": {"api_ver": "2.0.5", "fw_ver": "20230803.11.REL"},
            "Description": "",
        }
    )
    assert status.ok
    assert status.code == 131
    assert status.msg == ""  # the object is data, not a message


def test_q25_flat_invalid_cmd() -> None:
    reply = {
        "STATUS": "E",
        "When": 1761064196,
        "Code": 14,
        "Msg": "invalid cmd",
        "Description": "whatsminer v1.1",
    }
    status = parse_status(reply)
    assert not status.ok
    assert isinstance(error_for("version", status), InvalidCommand)


def test_q13_object_form_with_lowercase_keys() -> None:
    status = parse_status(
        {
            "STATUS": {"STATUS": "S", "when": 1703024668, "Msg": "stats", "api_version": "1.0.0"},
            "INFO": {},
        }
    )
    assert status.ok
    assert status.when == 1703024668
    assert status.msg == "stats"


def test_q13_all_lowercase() -> None:
    status = parse_status({"status": {"status": "E", "code": 45, "msg": "denied"}})
    assert status.letter == "E"
    assert status.code == 45


def test_q26_code_14_without_description() -> None:
    status = parse_status(
        {"STATUS": [{"STATUS": "E", "When": 1, "Code": 14, "Msg": "Invalid command"}], "id": 1}
    )
    assert status.description == ""
    error = error_for("bogus", status)
    assert isinstance(error, InvalidCommand)
    assert "bogus" in str(error)


def test_code_45_is_access_denied() -> None:
    status = parse_status(
        {
            "STATUS": [
                {
                    "STATUS": "E",
                    "When": 1,
                    "Code": 45,
                    "Msg": "Access denied to 'devdetails' command",
                    "Description": "cgminer 1.0.0",
                }
            ],
            "id": 1,
        }
    )
    error = error_for("devdetails", status)
    assert isinstance(error, AccessDenied)
    assert error.code == 45
    assert isinstance(error, CommandError)


def test_whatsminer_permission_denied() -> None:
    status = parse_status({"STATUS": "E", "When": 1, "Code": 45, "Msg": "permission denied"})
    assert isinstance(error_for("power_off", status), AccessDenied)


def test_other_failure_is_a_plain_command_error() -> None:
    status = parse_status(
        {"STATUS": [{"STATUS": "E", "Code": 26, "Msg": "Invalid pool id 7 - range is 0 - 2"}]}
    )
    error = error_for("switchpool", status)
    assert type(error) is CommandError
    assert error.msg.startswith("Invalid pool id")


def test_info_and_warning_letters() -> None:
    assert parse_status({"STATUS": [{"STATUS": "I", "Code": 49}]}).ok
    assert not parse_status({"STATUS": [{"STATUS": "W", "Code": 102}]}).ok
    assert not parse_status({"STATUS": [{"STATUS": "F", "Code": -1}]}).ok


def test_numbers_as_strings_in_status() -> None:
    status = parse_status({"STATUS": [{"STATUS": "S", "When": "1755615295", "Code": "11"}]})
    assert status.code == 11
    assert status.when == 1755615295


@pytest.mark.parametrize("reply", [{}, {"STATUS": []}, {"STATUS": 5}, {"id": 1}])
def test_missing_or_malformed_status(reply: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        parse_status(reply)
