"""Turning a persona's `Reply` into the exact bytes a firmware puts on the wire, quirks included.

Structural quirks change the reply before encoding (flat STATUS Q12, STATUS object Q13, numbers as
strings Q14, key typos Q15, quoted values Q16, `"11500 M"` integers Q30, bare `inf`/`nan` Q8).
Byte quirks then bend the encoded text (`}{` Q3, `[,{` Q4, `,}` Q5, raw newlines Q6, `""temp0`
Q7, leading comma Q9, 0xaa byte Q17, truncation Q10) and framing adds the NUL or not (Q1/Q2) and,
as an explicit fault only, trailing whitespace. Quirks whose effect is a firmware *behaviour*
rather than a byte pattern (Q11, Q22–Q29, Q31) are applied by the personas; connection-level
ones (Q18–Q21) by the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from simulators.asic.encoding import F2, Raw, encode, encode_text
from simulators.asic.personas.base import Body, Persona, Reply

# Q15: the stock Antminer typos, applied to record keys.
TYPOS = {"Temperature": "Tenperature", "Pool Stale%": "Pool Stale%%"}
# Q16: values that firmware wraps in single quotes (version-ish strings, never model names).
QUOTED_KEYS = frozenset(
    {
        "Firmware Version",
        "CompileTime",
        "Miner",
        "BMMiner",
        "CGMiner",
        "LUXminer",
        "BOSer",
        "fw_ver",
        "miner_version",
        "Cgminer",
    }
)
# Q30: integer fields that some builds print as "<n> <unit>" strings.
SUFFIXED = {
    "frequency": "MHz",
    "total_freqavg": "MHz",
    "freq_avg": "MHz",
    "Chip Frequency": "MHz",
    "Target Freq": "MHz",
    "Power": "W",
    "Power Limit": "W",
    "Watts": "W",
    "Frequency": "MHz",
}
# Q8: the fields Avalon-style builds print as bare inf / nan.
NONFINITE = {
    "Work Utility": "inf",
    "Utility": "inf",
    "Device Hardware%": "nan",
    "Device Rejected%": "nan",
    "DH": "nan",
}

GARBAGE = b"\x15STATUS=?garbage<<not json>>}{]] \x07\x7f"
SOCKET_TEXT = b"Socket connect failed: Connection refused\n"


def _map_records(body: Body, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Body:
    out: Body = {}
    for k, v in body.items():
        if k != "STATUS" and isinstance(v, list):
            out[k] = [fn(r) if isinstance(r, dict) else r for r in v]
        elif k != "STATUS" and isinstance(v, dict):
            out[k] = fn(v)
        else:
            out[k] = v
    return out


def _deep(rec: Any, fn: Callable[[str, Any], tuple[str, Any]]) -> Any:
    if isinstance(rec, dict):
        out = {}
        for k, v in rec.items():
            nk, nv = fn(k, _deep(v, fn))
            out[nk] = nv
        return out
    if isinstance(rec, list):
        return [_deep(v, fn) for v in rec]
    return rec


def _stringify(k: str, v: Any) -> tuple[str, Any]:
    if isinstance(v, bool) or v is None or isinstance(v, Raw):
        return k, v
    if isinstance(v, int):
        return k, str(v)
    if isinstance(v, float):
        return k, encode(v)
    return k, v


def _typos(k: str, v: Any) -> tuple[str, Any]:
    return TYPOS.get(k, k), v


def _quote(k: str, v: Any) -> tuple[str, Any]:
    if k in QUOTED_KEYS and isinstance(v, str) and not v.startswith("'"):
        return k, f"'{v}'"
    return k, v


def _suffix(k: str, v: Any) -> tuple[str, Any]:
    unit = SUFFIXED.get(k)
    if unit and isinstance(v, (int, float)) and not isinstance(v, bool):
        return k, f"{round(v):d} {unit}"
    return k, v


def _nonfinite(k: str, v: Any) -> tuple[str, Any]:
    if k in NONFINITE and isinstance(v, (int, float)) and not isinstance(v, bool):
        return k, Raw(NONFINITE[k])
    return k, v


def _first_status(body: Body) -> dict[str, Any] | None:
    st = body.get("STATUS")
    if isinstance(st, list) and st and isinstance(st[0], dict):
        return st[0]
    return None


def transform(body: Body, reply: Reply, active: Callable[[str], bool]) -> Body:
    """Apply the structural quirks to one single-command body."""
    for q, fn in (
        ("Q15", _typos),
        ("Q16", _quote),
        ("Q30", _suffix),
        ("Q8", _nonfinite),
        ("Q14", _stringify),
    ):
        if active(q):
            body = _map_records(body, partial(_deep, fn=fn))
    st = _first_status(body)
    if st is not None and not reply.flat_ok:
        if active("Q13"):
            msg = reply.command.split("+")[0] or str(st.get("Msg", ""))
            new: Body = {
                "STATUS": {
                    "STATUS": st["STATUS"],
                    "when": st["When"],
                    "Msg": msg,
                    "api_version": "1.0.0",
                }
            }
            new.update((k, v) for k, v in body.items() if k not in ("STATUS", "id"))
            body = new
        elif active("Q12"):
            new = dict(st)
            new.update((k, v) for k, v in body.items() if k != "STATUS")
            body = new
    return body


def _q3(text: str) -> str:
    start = text.find('"STATS":[')
    i = text.find("},{", max(start, 0))
    return text if i < 0 else text[: i + 1] + text[i + 2 :]


def _q4(text: str) -> str:
    for m in re.finditer(r'"([^"]+)":\[\{', text):
        if m.group(1) != "STATUS":
            i = m.end() - 1
            return text[:i] + "," + text[i:]
    return text


_Q7_FIELD = re.compile(r'("[^"{}\[\]]+":"(?:[^"\\]|\\.)*")(,)')


def _q7(text: str, temp: float) -> str:
    start = max(text.find("],"), 0)
    m = _Q7_FIELD.search(text, start)
    if m is None:
        return text
    return text[: m.end(1)] + f'"temp0":{F2(temp).fmt % temp}' + text[m.end(1) :]


def _q17(data: bytes) -> bytes:
    # Prefer a pool user or a name; else the first string value after the STATUS block.
    for key in (b'"User":"', b'"Name":"', b'"Type":"'):
        i = data.find(key)
        if i >= 0:
            j = i + len(key)
            return data[:j] + b"\xaa" + data[j:]
    m = re.search(rb'":"', data[max(data.find(b"],"), 0) :])
    if m is None:
        return data + b"\xaa"
    j = max(data.find(b"],"), 0) + m.end()
    return data[:j] + b"\xaa" + data[j:]


def encode_reply(
    reply: Reply,
    persona: Persona,
    active: Callable[[str], bool],
    *,
    text_mode: bool,
    chip_temp: float,
) -> bytes:
    """The body bytes (no framing) for a reply, structural and byte quirks applied."""
    if reply.raw is not None:
        return reply.raw
    if reply.sections is not None:
        if text_mode:
            return "".join(
                f"CMD={name}|" + encode_text(transform(sec, reply, active))
                for name, sec in reply.sections
            ).encode("utf-8")
        joined: Body = {name: [transform(sec, reply, active)] for name, sec in reply.sections}
        joined["id"] = 1
        body = joined
    else:
        body = transform(reply.body or {}, reply, active)
        if text_mode:
            return encode_text(body).encode("utf-8")
    text = encode(body)
    if active("Q3"):
        text = _q3(text)
    if active("Q4"):
        text = _q4(text)
    if active("Q5"):
        text = text.replace("}]", ",}]")
    if active("Q6"):
        text = text.replace("},{", "},\n{").replace('],"', '],\n"')
    if active("Q7"):
        text = _q7(text, chip_temp)
    if active("Q9") and text.startswith("{"):
        text = "," + text[1:]
    data = text.encode("utf-8")
    if active("Q17"):
        data = _q17(data)
    return data


def frame(body: bytes, *, nul: bool, trailing_space: bool, truncate: bool) -> bytes:
    """Add the trailing NUL (or not), optional trailing whitespace, optional truncation (Q10)."""
    if truncate:
        # Cut mid-way through the body, never at a clean boundary; no NUL follows.
        return body[: max(1, len(body) // 2)]
    if trailing_space:
        body += b" \r\n"
    return body + b"\x00" if nul else body
