"""The text form of the API (§1.2, §1.7): `cmd|param` requests and `|`-separated replies.

Modern clients use JSON; the text form exists for old firmware and for debugging. Replies are
parsed into the same dict shape as the JSON form, so one set of dialect parsers serves both:

    STATUS=S,When=1731551852,Code=11,Msg=Summary,Description=cgminer 4.11.1|SUMMARY,Elapsed=5,...|
    → {"STATUS":[{"STATUS":"S","When":1731551852,...}],"SUMMARY":[{"Elapsed":5,...}]}

Sections are split by `|`, fields by `,`, names from values by `=`; a backslash escapes the next
character. A single-record section starts with a bare name (`SUMMARY,`); multi-record sections
are one `|`-terminated record each, named after their first key (`POOL=0,...` → `POOLS`). Text
joins start each command with `CMD=name`.
"""

from __future__ import annotations

from typing import Any

from drivers.cgminer.errors import DecodeError

# First key of a record → the JSON section name cgminer uses for the same data.
_SECTION_FOR_KEY = {
    "POOL": "POOLS",
    "ASC": "DEVS",
    "PGA": "DEVS",
    "STATS": "STATS",
    "DEVDETAILS": "DEVDETAILS",
}


def encode_text_request(command: str, parameter: str | None) -> bytes:
    """`cmd` or `cmd|param`, with no newline (cgminer does not trim one, §1.2)."""
    if "|" in command or "\n" in command:
        raise ValueError(f"invalid command name for the text form: {command!r}")
    text = command if parameter is None else f"{command}|{parameter}"
    return text.encode("utf-8")


def _split(text: str, separator: str) -> list[str]:
    """Split on unescaped `separator`, keeping escapes in place (removed by `_unescape`)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def _scalar(text: str) -> Any:
    """Numbers become numbers (like the JSON form); everything else stays a string."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _partition_field(field: str) -> tuple[str, str] | None:
    """Split `Name=Value` at the first unescaped `=`; None when there is none."""
    escaped = False
    for index, char in enumerate(field):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=":
            return field[:index], field[index + 1 :]
    return None


def _parse_single(sections: list[str]) -> dict[str, Any]:
    reply: dict[str, Any] = {}
    for section in sections:
        if not section:
            continue
        fields = _split(section, ",")
        name: str | None = None
        first = _partition_field(fields[0])
        if first is None:
            name = _unescape(fields[0]).strip()
            fields = fields[1:]
        record: dict[str, Any] = {}
        for field in fields:
            pair = _partition_field(field)
            if pair is None:
                continue
            record[_unescape(pair[0])] = _scalar(_unescape(pair[1]))
        if name is None:
            assert first is not None
            key = _unescape(first[0])
            name = _SECTION_FOR_KEY.get(key, key)
        reply.setdefault(name, []).append(record)
    if "STATUS" not in reply:
        raise DecodeError("text reply has no STATUS section")
    return reply


def parse_text_reply(text: str) -> dict[str, Any]:
    """Parse a text-form reply (single or `CMD=` join) into the JSON-form dict shape."""
    sections = _split(text.strip("\x00\r\n "), "|")
    if not any(sections):
        raise DecodeError("empty text reply")
    if not sections[0].startswith("CMD="):
        return _parse_single(sections)
    joined: dict[str, Any] = {}
    command: str | None = None
    chunk: list[str] = []
    for section in sections:
        if section.startswith("CMD="):
            if command is not None:
                joined[command] = [_parse_single(chunk)]
            command = _unescape(section[4:])
            chunk = []
        else:
            chunk.append(section)
    if command is not None:
        joined[command] = [_parse_single(chunk)]
    return joined
