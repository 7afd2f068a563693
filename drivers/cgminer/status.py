"""Reading the `STATUS` part of a CGMiner-family reply, in every shape firmwares send it.

Shapes accepted (protocol reference §1.5, Q12, Q13, Q25):

* the array form `{"STATUS":[{"STATUS":"S","When":..,"Code":11,"Msg":"Summary","Description":..}]}`;
* the flat string form of `quit` / `restart`: `{"STATUS":"BYE"}`, `{"STATUS":"RESTART"}` (success);
* the flat Whatsminer form: `{"STATUS":"S","When":..,"Code":131,"Msg":{...},"Description":""}`;
* the object form with lowercase keys (Antminer `new_api` / CGI):
  `{"STATUS":{"STATUS":"S","when":..}}`.

A reply is a success iff the letter is `S` or `I`. `error_for` maps a failed status to the most
specific `CommandError` subclass (45 → `AccessDenied`, 14 → `InvalidCommand`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from drivers.cgminer.errors import AccessDenied, CommandError, DecodeError, InvalidCommand

_LETTERS = frozenset("SIWEF")
# Flat words some firmwares send instead of a letter; both acknowledge the command.
_FLAT_SUCCESS_WORDS = frozenset({"RESTART", "BYE"})

CODE_INVALID_COMMAND = 14
CODE_ACCESS_DENIED = 45


class Status(msgspec.Struct, frozen=True, gc=False):
    """One reply's status: letter (`S`/`I`/`W`/`E`/`F`), code, message, description, time.

    Scalars only, so `gc=False` (never in a cycle; one per command of every poll).
    """

    letter: str
    code: int | None = None
    msg: str = ""
    description: str = ""
    when: int | None = None

    @property
    def ok(self) -> bool:
        """True iff the device reported success (`S`) or information (`I`)."""
        return self.letter == "S" or self.letter == "I"


def _int_or_none(value: Any) -> int | None:
    if type(value) is int:
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    # Whatsminer puts a whole object in `Msg` for get_* commands: that is data, not a message.
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _field(record: Mapping[str, Any], name: str) -> Any:
    # Q13: the CGI / new_api form spells the same keys in lower case.
    value = record.get(name)
    return record.get(name.lower()) if value is None else value


def _from_record(record: Mapping[str, Any]) -> Status:
    letter = record.get("STATUS")
    code = record.get("Code")
    if type(letter) is str and type(code) is int:
        # The standard cgminer form, by far the most common: no case folding needed, and the
        # usual types are tested inline (three of these per poll, on every poll).
        when = record.get("When")
        msg = record.get("Msg")
        description = record.get("Description")
        return Status(
            letter if letter in _LETTERS else _letter(letter),
            code,
            msg if type(msg) is str else _text(msg),
            description if type(description) is str else _text(description),
            when if type(when) is int else _int_or_none(when),
        )
    return Status(
        _letter(_field(record, "STATUS")),
        _int_or_none(_field(record, "Code")),
        _text(_field(record, "Msg")),
        _text(_field(record, "Description")),
        _int_or_none(_field(record, "When")),
    )


def _letter(value: Any) -> str:
    word = str(value).strip().upper() if value is not None else ""
    if word in _LETTERS:
        return word
    if word in _FLAT_SUCCESS_WORDS:
        return "S"
    return word or "?"


def parse_status(reply: Mapping[str, Any]) -> Status:
    """Return the status of one (single-command) reply.

    Raises `DecodeError` when the reply has no recognisable `STATUS` at all.
    """
    raw = reply.get("STATUS")
    if raw is None:
        raw = reply.get("status")
        if raw is None:
            raise DecodeError("reply has no STATUS")
    if type(raw) is list:
        if raw and isinstance(raw[0], dict):
            return _from_record(raw[0])
        raise DecodeError("reply STATUS is an empty or malformed list")
    if type(raw) is dict:
        return _from_record(raw)
    if type(raw) is str:
        word = raw.strip().upper()
        if word in _FLAT_SUCCESS_WORDS:
            return Status("S", None, word, "", None)
        # Flat Whatsminer form (Q12): the letter is the value, the rest sits beside it.
        return Status(
            _letter(word),
            _int_or_none(reply.get("Code")),
            _text(reply.get("Msg")),
            _text(reply.get("Description")),
            _int_or_none(reply.get("When")),
        )
    raise DecodeError(f"reply STATUS has an unexpected type: {type(raw).__name__}")


def error_for(command: str, status: Status) -> CommandError:
    """The most specific `CommandError` for a failed `status` of `command`."""
    msg = status.msg.lower()
    if status.code == CODE_ACCESS_DENIED or "access denied" in msg or "permission denied" in msg:
        return AccessDenied(command, status)
    if status.code == CODE_INVALID_COMMAND or "invalid cmd" in msg or "invalid command" in msg:
        return InvalidCommand(command, status)
    return CommandError(command, status)
