"""Parsing one API request the way cgminer's `api.c` reads it (§1.2).

The request is whatever arrived in the first segment: a JSON object (first byte ``{``) of which
only ``command``, ``parameter`` (string, integer or real) and, on Antminers, ``new_api`` are read;
or the text form ``CMD`` / ``CMD|PARAM``. Whatsminer's encrypted privileged envelope
``{"enc":1,"data":...}`` is kept for the persona that understands it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Request:
    command: str | None
    parameter: str | None = None
    new_api: bool = False
    text_mode: bool = False
    error: tuple[int, str] | None = None
    """Parser error as (code, message): 23 invalid JSON, 24 missing command, 14 bad command."""
    enc: dict[str, Any] | None = None
    """The decoded Whatsminer ``{"enc":1,"data":...}`` envelope, if that is what arrived."""
    extra: dict[str, Any] | None = None
    """Other JSON keys (Whatsminer privileged arguments after decryption)."""

    @property
    def cache_key(self) -> tuple[str | None, str | None, bool, bool]:
        return (self.command, self.parameter, self.new_api, self.text_mode)


def _param(value: Any) -> str | None:
    # cgminer reads string, integer (%d) and real (%f) parameters; anything else is ignored.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:f}"
    return None


def parse_request(data: bytes) -> Request:
    text = data.rstrip(b"\x00 \t\r\n")
    if text[:1] == b"{":
        try:
            obj = json.loads(text.decode("utf-8", errors="replace"))
        except ValueError:
            return Request(None, error=(23, "Invalid JSON"))
        return request_from_json(obj)
    line = text.decode("utf-8", errors="replace")
    cmd, sep, param = line.partition("|")
    return Request(cmd, param if sep else None, text_mode=True)


def request_from_json(obj: Any) -> Request:
    if not isinstance(obj, dict):
        return Request(None, error=(23, "Invalid JSON"))
    if "enc" in obj and "command" not in obj and "cmd" not in obj:
        return Request(None, enc=obj)
    if "command" not in obj:
        if isinstance(obj.get("cmd"), str):
            # Decrypted Whatsminer privileged commands use "cmd"; keep the other keys as arguments.
            extra = {k: v for k, v in obj.items() if k != "cmd"}
            return Request(obj["cmd"], _param(obj.get("param")), extra=extra)
        return Request(None, error=(24, "Missing JSON 'command'"))
    cmd = obj["command"]
    if not isinstance(cmd, str):
        return Request(None, error=(14, "Invalid command"))
    new_api = obj.get("new_api") is True
    return Request(cmd, _param(obj.get("parameter")), new_api=new_api)
