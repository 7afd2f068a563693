"""The tolerant JSON decoder for CGMiner-family replies.

`decode(raw)` turns the bytes of one reply into a JSON object and names every repair it had to
make, so a reading survives a firmware's broken JSON and the operator can still see that it was
broken (`AsicReading.repairs`).

Fast path first: strip trailing NUL/whitespace and hand the bytes to `msgspec.json.decode`. Well
formed replies (nearly all of them) cost one C call. Only when that fails do the repairs run, one
at a time in a fixed order, re-trying the decode after each one that changed something, so that
a reply is not "repaired" more than it needs.

Repair names (stable; they appear in readings and dashboards):

=============================== ======= =====================================================
name                            quirk   what was wrong
=============================== ======= =====================================================
`trailing_nul`                  Q1      NUL byte(s) after the JSON (handed to `decode`; the
                                        client treats one NUL as the frame end, not a repair)
`trailing_whitespace`           -       spaces / CR / LF after the JSON
`invalid_utf8`                  Q17     bytes that are not UTF-8 (decoded with U+FFFD)
`leading_comma_reply`           Q9      the reply starts with `,` (`,"id":1}`)
`raw_newlines`                  Q6      raw CR/LF inside the JSON (inside strings: invalid)
`missing_comma_between_objects` Q3      `}{` between array elements
`leading_comma_in_array`        Q4      `[,{`
`trailing_comma`                Q5      `,}` / `,]`
`missing_comma_after_string`    Q7      `"value""key":` (btminer 2023-01-06)
`non_finite_number`             Q8      bare `inf` / `nan` → `null`
`error_code_dict_list`          Q11     `"error_code":["110":"..."]` → an object
=============================== ======= =====================================================

Deviation from pyasic, on purpose: non-finite numbers become `None` (JSON `null`), not `0`.
hashpivot shows a value the hardware did not really report as `None` ("—"), never as 0, and a
0 hashrate or temperature would be a lie that looks like a fault. Quoted `"inf"`/`"nan"` strings
are valid JSON and are left to the field parsers, which read them as `None` too.

Not repaired, on purpose: a truncated reply (Q10). pyasic cuts after the last comma and closes
the object, which silently yields a partial object that looks complete (a summary without its
last fields, a pools list missing pools). hashpivot raises `TruncatedReply` saying how many bytes
arrived: a clear error is safer than a plausible half-reading, and the next poll usually works.

Errors: `EmptyReply` (Q18), `ProxyConnectFailed` (Q19, `Socket connect failed...`),
`NonJsonReply` (other plain text), `TruncatedReply` (Q10), `DecodeError` for anything else;
no other exception escapes `decode`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec

from drivers.cgminer.errors import (
    DecodeError,
    EmptyReply,
    NonJsonReply,
    ProxyConnectFailed,
    TruncatedReply,
)

_TAIL_BYTES = b"\x00 \t\r\n"
_json_decode = msgspec.json.decode


class Decoded(NamedTuple):
    """A decoded reply: the JSON object and the names of the repairs that were needed."""

    obj: dict[str, Any]
    repairs: tuple[str, ...]


def decode(raw: bytes, typed: Callable[[bytes], Any] | None = None) -> Decoded:
    """Decode one reply into a JSON object, repairing known firmware quirks.

    `typed`: a msgspec decoder of the reply's expected shape that leaves out what no one reads
    (`client.plan_join`), tried first; a reply of another shape is decoded in full instead, and
    broken JSON is repaired as always. Raises `DecodeError` (or one of its subclasses) and
    nothing else.
    """
    try:
        body = raw.rstrip(_TAIL_BYTES)
        repairs: tuple[str, ...] = () if len(body) == len(raw) else _tail_repairs(raw, len(body))
        if not body:
            raise EmptyReply()
        try:
            if typed is None:
                obj = _json_decode(body)
            else:
                try:
                    obj = typed(body)
                except msgspec.ValidationError:  # whole JSON, an unexpected shape: all of it
                    obj = _json_decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return _repair_and_decode(body, repairs, len(raw))
        if type(obj) is not dict:
            raise DecodeError(
                f"reply is JSON but not an object (a {type(obj).__name__})",
                bytes_received=len(raw),
            )
        return Decoded(obj, repairs)
    except DecodeError:
        raise
    except Exception as exc:  # the contract: only DecodeError leaves this function
        raise DecodeError(
            f"unexpected {type(exc).__name__} while decoding a {len(raw)}-byte reply: {exc}",
            bytes_received=len(raw),
        ) from exc


def _tail_repairs(raw: bytes, body_len: int) -> tuple[str, ...]:
    tail = raw[body_len:]
    names: list[str] = []
    if b"\x00" in tail:
        names.append("trailing_nul")
    if tail.strip(b"\x00"):
        names.append("trailing_whitespace")
    return tuple(names)


# --- the repairs, in the order they are tried ---------------------------------------------------


def _leading_comma_reply(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith(","):
        return "{" + stripped[1:]
    return text


def _raw_newlines(text: str) -> str:
    # pyasic removes them outright; outside strings they were whitespace, inside strings they
    # were illegal raw control characters, so deleting them is right in both places.
    return text.replace("\r", "").replace("\n", "")


_MISSING_COMMA_OBJECTS = re.compile(r"}\s*{")
_LEADING_COMMA_ARRAY = re.compile(r"\[\s*,")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
# `"value""key":` — a closing quote directly followed by the opening quote of the next key.
# The look-behind excludes `:""`, `[""`, `,""` and `{""` (a legitimate empty string) and `\"`.
_MISSING_COMMA_AFTER_STRING = re.compile(r'(?<=[^\\:,\[{\s])""(?=[^"\\,:{}\[\]]+"\s*:)')
_NON_FINITE = re.compile(r"(?<=[:\[,])(\s*)[-+]?(?:inf(?:inity)?|nan)(?=\s*[,\]}])", re.IGNORECASE)
_ERROR_CODE_DICT_LIST = re.compile(r'("error_code"\s*:\s*)\[(\s*"[^\[\]{}]*)\]')


def _sub(pattern: re.Pattern[str], replacement: str) -> Callable[[str], str]:
    def repair(text: str) -> str:
        return pattern.sub(replacement, text)

    return repair


_REPAIRS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("leading_comma_reply", _leading_comma_reply),
    ("raw_newlines", _raw_newlines),
    ("missing_comma_between_objects", _sub(_MISSING_COMMA_OBJECTS, "},{")),
    ("leading_comma_in_array", _sub(_LEADING_COMMA_ARRAY, "[")),
    ("trailing_comma", _sub(_TRAILING_COMMA, r"\1")),
    ("missing_comma_after_string", _sub(_MISSING_COMMA_AFTER_STRING, '","')),
    ("non_finite_number", _sub(_NON_FINITE, r"\1null")),
    ("error_code_dict_list", _sub(_ERROR_CODE_DICT_LIST, r"\1{\2}")),
)

_PROXY_TEXT = re.compile(r"socket connect failed", re.IGNORECASE)


def _repair_and_decode(body: bytes, tail_repairs: tuple[str, ...], raw_len: int) -> Decoded:
    repairs = list(tail_repairs)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        repairs.append("invalid_utf8")

    start = text.lstrip()[:1]
    if start not in ("{", "[", ","):
        if _PROXY_TEXT.search(text):
            raise ProxyConnectFailed(text.strip(), bytes_received=raw_len)
        raise NonJsonReply(text.strip(), bytes_received=raw_len)

    last_error = ""
    if "invalid_utf8" in repairs:
        obj, last_error = _try_decode(text)
        if obj is not None:
            return Decoded(obj, tuple(repairs))

    for name, repair in _REPAIRS:
        repaired = repair(text)
        if repaired == text:
            continue
        text = repaired
        repairs.append(name)
        obj, last_error = _try_decode(text)
        if obj is not None:
            return Decoded(obj, tuple(repairs))

    if not last_error:
        _obj, last_error = _try_decode(text)
    truncation = _truncation(text)
    if truncation is not None or "truncated" in last_error:
        raise TruncatedReply(raw_len, truncation or last_error)
    raise DecodeError(
        f"malformed JSON in a {raw_len}-byte reply after repairs {repairs or '(none)'}: "
        f"{last_error}{_context(text, last_error)}",
        bytes_received=raw_len,
    )


def _try_decode(text: str) -> tuple[dict[str, Any] | None, str]:
    try:
        obj = _json_decode(text)
    except msgspec.DecodeError as exc:
        return None, str(exc)
    if type(obj) is not dict:
        return None, f"JSON is not an object (a {type(obj).__name__})"
    return obj, ""


_BYTE_POSITION = re.compile(r"\(byte (\d+)\)")


def _context(text: str, error: str) -> str:
    """A short excerpt around the byte msgspec complained about, for the error message."""
    match = _BYTE_POSITION.search(error)
    if match is None:
        return ""
    encoded = text.encode("utf-8", errors="replace")
    at = int(match.group(1))
    excerpt = encoded[max(0, at - 40) : at + 40].decode("utf-8", errors="replace")
    return f"; near {excerpt!r}"


def _truncation(text: str) -> str | None:
    """Describe why `text` is an incomplete JSON value, or None if its brackets are balanced."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    if in_string:
        return "ends inside a string"
    if depth > 0:
        return f"{depth} unclosed bracket(s)"
    return None
