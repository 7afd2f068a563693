"""Recognising the firmware family of a device from its `version` / `devdetails` / `stats`.

`classify` is pure (testable on canned replies); `detect` does the I/O: `version` first (enough
for Antminer stock, Vnish, LuxOS, Braiins, Avalon), `devdetails` only when `version` is not
conclusive (Whatsminer answers `version` with `invalid cmd`, Q25; plain cgminer may be a fork),
`stats` as a last resort (Q31: Vnish builds that do not answer `version`). Then the dialect's own
one-off commands (Whatsminer `get_version`, Braiins `devdetails`) are read for `identify`.

Unlike pyasic's substring test on raw text (§6.2), markers are looked for in keys and in the
status text, in an order where vendor forks win over the generic names they also carry
(a Vnish `Type` contains "Antminer", a LuxOS reply contains "CGMiner"-style fields).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from drivers.cgminer.client import Reply, request
from drivers.cgminer.dialects.base import Dialect, Identity, Replies
from drivers.cgminer.dialects.registry import DIALECTS
from drivers.cgminer.errors import TRANSPORT_ERRORS, CgminerError, DetectionFailed
from drivers.cgminer.reading import Firmware
from drivers.cgminer.status import error_for

Answer = Reply | CgminerError | None


def _blob(answer: Answer) -> tuple[str, dict[str, Any]]:
    """Lower-case searchable text of an answer, and its first data record (if any)."""
    if answer is None:
        return "", {}
    if isinstance(answer, CgminerError):
        return str(answer).lower(), {}
    parts = [answer.status.msg, answer.status.description]
    first: dict[str, Any] = {}
    for key, value in answer.data.items():
        if key in ("STATUS", "id"):
            continue
        parts.append(key)
        if isinstance(value, list):
            for record in value:
                if isinstance(record, dict):
                    if not first:
                        first = record
                    for field, item in record.items():
                        parts.append(field)
                        if isinstance(item, str):
                            parts.append(item)
        elif isinstance(value, str):
            parts.append(value)
    return " ".join(parts).lower(), first


def classify(version: Answer, devdetails: Answer = None, stats: Answer = None) -> Firmware | None:
    """The firmware family the answers point to, or None when nothing is conclusive."""
    text, record = _blob(version)
    version_ok = isinstance(version, Reply) and version.status.ok
    detail_text, _detail = _blob(devdetails)
    combined = f"{text} {detail_text}"
    if "boser" in combined or "bosminer" in combined:
        return Firmware.BRAIINS
    if "bitmicro" in combined or "btminer" in combined or "whatsminer" in combined:
        return Firmware.WHATSMINER
    if "luxminer" in combined:
        return Firmware.LUXOS
    if "vnish" in combined:
        return Firmware.VNISH
    if version_ok and ("PROD" in record or "MODEL" in record):
        return Firmware.AVALON
    if "avalon" in combined:
        return Firmware.AVALON
    if version_ok and ("antminer" in text or "bmminer" in text):
        return Firmware.ANTMINER_STOCK
    stats_text, _stats_record = _blob(stats)
    if "vnish" in stats_text:
        return Firmware.VNISH
    if "antminer" in stats_text:
        return Firmware.ANTMINER_STOCK
    if version_ok and ("cgminer" in text or "CGMiner" in record):
        return Firmware.CGMINER
    # Q31 on a plain build: no version, but other reads answer in cgminer's own words. Only
    # decided once `stats` was probed too, so a Vnish (also "cgminer 4.11.1") is not misread.
    for other in (devdetails, stats) if stats is not None else ():
        if (
            isinstance(other, Reply)
            and other.status.ok
            and "cgminer" in other.status.description.lower()
        ):
            return Firmware.CGMINER
    return None


async def _ask(host: str, port: int, name: str, timeout_s: float) -> Reply | CgminerError:
    """A reply (status OK) or the error for it; transport errors propagate (the device is down)."""
    try:
        reply = await request(host, port, name, timeout_s=timeout_s)
    except TRANSPORT_ERRORS:
        raise
    except CgminerError as exc:
        return exc
    return reply if reply.status.ok else error_for(name, reply.status)


async def detect(
    host: str, port: int, *, timeout_s: float, expected: Firmware | None = None
) -> tuple[Dialect, Identity]:
    """Recognise the device and read what its dialect needs to identify it."""
    answers: dict[str, Reply | CgminerError] = {}
    version = await _ask(host, port, "version", timeout_s)
    answers["version"] = version
    firmware = classify(version)
    if firmware is None or firmware is Firmware.CGMINER:
        answers["devdetails"] = await _ask(host, port, "devdetails", timeout_s)
        firmware = classify(version, answers["devdetails"]) or firmware
    if firmware is None:
        answers["stats"] = await _ask(host, port, "stats", timeout_s)
        firmware = classify(version, answers.get("devdetails"), answers["stats"])

    warnings: list[str] = []
    if firmware is None:
        if expected is None and all(isinstance(a, CgminerError) for a in answers.values()):
            # Nothing answered at all (access denied, empty, garbage): that error says more
            # than "unrecognised".
            assert isinstance(version, CgminerError)
            raise version
        if expected is None:
            answered = "; ".join(f"{name}: {_short(answer)}" for name, answer in answers.items())
            raise DetectionFailed(
                f"{host}:{port}: no known firmware markers in version/devdetails/stats ({answered})"
            )
        firmware = expected
        warnings.append(f"firmware not recognised; using the configured {expected.value}")
    elif expected is not None and expected is not firmware:
        warnings.append(
            f"configured as {expected.value} but detected {firmware.value}; using detected"
        )

    dialect = DIALECTS[firmware]
    missing = [name for name in dialect.detail_commands if name not in answers]
    if missing:
        fetched = await asyncio.gather(*(_ask(host, port, name, timeout_s) for name in missing))
        answers.update(zip(missing, fetched, strict=True))
    details: Replies = answers
    identity = dialect.identify(version if isinstance(version, Reply) else None, details)
    if warnings:
        identity = Identity(
            firmware=identity.firmware,
            make=identity.make,
            model=identity.model,
            firmware_version=identity.firmware_version,
            warnings=(*identity.warnings, *warnings),
            details=identity.details,
        )
    return dialect, identity


ANSWER_SHOWN_CHARS = 160
"""How much of each answer a `DetectionFailed` message quotes: enough to see what spoke."""


def _short(answer: Answer) -> str:
    """The status line and the start of the data of one answer, for an operator to read."""
    if isinstance(answer, Reply):
        text = f"{answer.status.letter} {answer.status.msg!r}"
        data = {key: value for key, value in answer.data.items() if key not in ("STATUS", "id")}
        if data:
            try:
                text += " " + msgspec.json.encode(data).decode("utf-8", errors="replace")
            except (TypeError, ValueError, OverflowError):
                text += " " + repr(data)
    else:
        text = str(answer)
    if len(text) > ANSWER_SHOWN_CHARS:
        text = text[: ANSWER_SHOWN_CHARS - 3] + "..."
    return text
