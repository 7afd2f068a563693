"""Byte-exact JSON writing the way cgminer's `api.c` prints values, plus the text (`|`) form.

cgminer does not use a JSON library for replies: it prints each value with a fixed format
(`%.2f` for hashrates and temperatures, `%.8f` for difficulties, `%.4f` for percentages) and
escapes only `"` and `\\`. Values carry their format in their type (`F2`, `F4`, `F6`, `F8`, `Raw`);
msgspec does the fast part and calls back for those, so every number prints exactly as the firmware
prints it and the quirk layer can then bend the bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec


class F2(float):
    """A float printed as ``%.2f`` (MHS, temperatures, utility, frequency)."""

    __slots__ = ()
    fmt = "%.2f"


class F4(float):
    """A float printed as ``%.4f`` (percentages, Total MH)."""

    __slots__ = ()
    fmt = "%.4f"


class F6(float):
    """A float printed as ``%.6f`` (timevals such as Wait/Max/Min)."""

    __slots__ = ()
    fmt = "%.6f"


class F8(float):
    """A float printed as ``%.8f`` (difficulties)."""

    __slots__ = ()
    fmt = "%.8f"


class Raw(str):
    """Text emitted verbatim, unquoted (bare ``inf``, a hand-built fragment)."""

    __slots__ = ()


def _fmt_float(v: float) -> str:
    fmt = getattr(v, "fmt", None)
    if fmt is not None:
        return str(fmt % v)
    if v != v or v in (float("inf"), float("-inf")):
        return "0"
    r = repr(float(v))
    return r


# The fixed-format floats, by exact type, as bytes formats: tens of these go through the hook in
# every rendered reply, so the common case is one dict lookup and one bytes `%` (no getattr, no
# str → bytes round trip). Output is byte-identical to `_fmt_float`.
_BYTES_FORMATS: dict[type, bytes] = {F2: b"%.2f", F4: b"%.4f", F6: b"%.6f", F8: b"%.8f"}


def _hook(v: Any) -> msgspec.Raw:
    # msgspec hands us the float/str subclasses it does not know: print them cgminer's way.
    fmt = _BYTES_FORMATS.get(type(v))
    if fmt is not None:
        return msgspec.Raw(fmt % v)
    if isinstance(v, Raw):
        return msgspec.Raw(v.encode("utf-8"))
    if isinstance(v, float):
        return msgspec.Raw(_fmt_float(v).encode("ascii"))
    raise TypeError(f"cannot encode {type(v).__name__}")


def encode_bytes(obj: Any) -> bytes:
    """Render `obj` (dicts keep insertion order) as cgminer prints it, as UTF-8 bytes.

    Strings are escaped the JSON way, which for firmware data (no control characters) is the
    same as cgminer's `"`/`\\`-only escaping.
    """
    return _ENCODER.encode(obj)


def encode(obj: Any) -> str:
    """`encode_bytes` as text."""
    return _ENCODER.encode(obj).decode("utf-8")


_ENCODER = msgspec.json.Encoder(enc_hook=_hook)


PREFIXED_SECTIONS = frozenset({"SUMMARY", "VERSION", "CONFIG", "COIN", "CHECK", "LCD", "ASCS"})


def _text_escape(s: str) -> str:
    for ch in ("\\", "|", ",", "="):
        if ch in s:
            s = s.replace(ch, "\\" + ch)
    return s


def _text_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _fmt_float(v)
    if isinstance(v, (list, tuple, dict)):
        return _text_escape(encode(v))
    if v is None:
        return ""
    return _text_escape(str(v))


def _text_fields(rec: dict[str, Any]) -> str:
    return ",".join(f"{_text_escape(k)}={_text_value(v)}" for k, v in rec.items())


def encode_text(reply: dict[str, Any]) -> str:
    """The text-mode (`cmd|param`) form of a reply (§1.7): `STATUS=S,...|NAME,k=v,...|`."""
    parts: list[str] = []
    status = reply.get("STATUS")
    if isinstance(status, list) and status:
        parts.append(_text_fields(status[0]) + "|")
    elif isinstance(status, dict):
        parts.append(_text_fields(status) + "|")
    elif status is not None:
        parts.append(f"STATUS={_text_escape(str(status))}|")
    for key, records in reply.items():
        if key in ("STATUS", "id") or not isinstance(records, list):
            continue
        for rec in records:
            if not isinstance(rec, dict):
                continue
            # Single-object sections carry a name prefix; per-device records start with their id.
            prefix = f"{_text_escape(key)}," if key in PREFIXED_SECTIONS else ""
            parts.append(prefix + _text_fields(rec) + "|")
    return "".join(parts)
