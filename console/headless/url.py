"""Broker URLs: `mqtt[s]://[user[:password]@]host[:port][/prefix]` parsed into a `BrokerUrl`.

`mqtt://` is plain TCP (default port 1883), `mqtts://` is TLS (default port 8883). The path,
if any, is the topic prefix under which everything is published (default `hashpivot`).
A password may appear in a URL given on the command line, but it is never required there: the
`[mqtt]` config table names an environment variable or a file instead, and the config file
itself may not carry one (`console.config` refuses it).

Used by `console.config` (to check the `url` key) and `console.headless.settings`; pure
string handling, no I/O.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

import msgspec

DEFAULT_PREFIX: Final = "hashpivot"
DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}

_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")


class BrokerUrl(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed broker URL."""

    tls: bool
    host: str
    port: int
    prefix: str
    username: str | None = None
    password: str | None = None


class BrokerUrlError(ValueError):
    """A URL that cannot name a broker; `hint` says how to write it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def check_prefix(prefix: str) -> str | None:
    """Why `prefix` cannot be a topic prefix, or None when it can.

    Levels are limited to letters, digits, `_`, `.` and `-` so that no prefix can contain a
    wildcard, an empty level, or start with `$` (reserved for broker topics)."""
    if not prefix:
        return "the topic prefix is empty"
    for level in prefix.split("/"):
        if not _LEVEL.match(level):
            return (
                f"topic prefix {prefix!r} has a level {level!r}; levels use only letters, "
                "digits, '_', '.' and '-' and may not be empty"
            )
    return None


def parse_broker_url(text: str) -> BrokerUrl:
    """Parse a broker URL; raise `BrokerUrlError` saying what is wrong and how to write it."""
    example = "mqtt://broker.example:1883/hashpivot (or mqtts:// for TLS)"
    try:
        parts: SplitResult = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"not a broker URL: {text!r} ({exc})", f"write {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BrokerUrlError(
            f"broker URL {text!r} has scheme {parts.scheme or '(none)'!r}; "
            "expected mqtt:// or mqtts://",
            f"write {example}",
        )
    host = parts.hostname
    if not host:
        raise BrokerUrlError(f"broker URL {text!r} names no host", f"write {example}")
    if parts.query or parts.fragment:
        raise BrokerUrlError(
            f"broker URL {text!r} has a query or fragment; options go in the [mqtt] table",
            "remove everything after '?' or '#'; TLS files and the like are [mqtt] keys",
        )
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    problem = check_prefix(prefix)
    if problem is not None:
        raise BrokerUrlError(problem, "write the prefix as one or more levels, e.g. /hashpivot")
    if port == 0:
        raise BrokerUrlError(f"broker URL {text!r} has port 0", "write a port 1..65535")
    return BrokerUrl(
        tls=scheme == "mqtts",
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        prefix=prefix,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def redact(text: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return text
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()
