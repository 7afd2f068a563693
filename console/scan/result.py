"""What a scan found: three classes of host, counts, and the report that `--json` prints as is.

The field order and names of these Structs *are* the JSON shape documented in docs/scan.md
(schema `hashpivot.scan/1`): change one only together with that page and the schema version.

* `IdentifiedHost`   the CGMiner API answered and detection named the firmware family;
* `UnidentifiedHost` a port was open, but identification did not succeed — `reason` says how it
                     failed and `answered` quotes (truncated) what came back, so an operator can
                     tell an SSH daemon from a miner whose API is locked down;
* `SilentHost`       nothing accepted a connection on the API port.

A value the device did not report is None (`—` in the table), never a guess.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

SCHEMA = "hashpivot.scan/1"
ANSWER_MAX_CHARS = 200
"""How much of an unidentified host's answer a report quotes."""


class Unidentified(StrEnum):
    """Why an open host was not identified."""

    NO_REPLY = "no_reply"
    """Connected, but no complete answer within the identification deadline (a hung API)."""
    EMPTY = "empty"
    """Closed without sending a byte (typically a CGMiner `api-allow` list excluding us)."""
    NOT_CGMINER = "not_cgminer"
    """Answered, but not with the CGMiner JSON API (another service on the port, or a proxy)."""
    BAD_REPLY = "bad_reply"
    """Answered JSON-ish bytes that could not be decoded (truncated, oversized, broken)."""
    API_ERROR = "api_error"
    """The API answered every question with an error (access denied, invalid command)."""
    UNRECOGNISED = "unrecognised"
    """A working CGMiner-style API without the markers of any known firmware family."""
    CONNECTION_LOST = "connection_lost"
    """Open at the probe, then refused or reset while being identified."""
    OTHER_PORT = "other_port"
    """The API port is silent but another miner API port is open (Whatsminer API V3 on 4433)."""
    INTERRUPTED = "interrupted"
    """The scan was stopped (Ctrl-C) before this host's identification finished."""


class Silence(StrEnum):
    """How the API port failed to accept a connection."""

    REFUSED = "refused"
    """Reset at once: the host is up, nothing listens on the port."""
    TIMEOUT = "timeout"
    """No answer within the probe deadline: no host, or a firewall dropping packets."""
    UNREACHABLE = "unreachable"
    """No route to the host (the local stack or a router said so)."""


class IdentifiedHost(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    make: str
    model: str | None
    firmware: str
    """The firmware family, a `drivers.cgminer.reading.Firmware` value (`antminer_stock`, ...)."""
    firmware_version: str | None
    warnings: tuple[str, ...]
    open_ports: tuple[int, ...]
    identify_s: float
    """Seconds identification took (all requests, version to dialect details)."""
    config_name: str | None = None
    """The `[[asics]]` entry of `--config` at the same address and port; None if none (or no
    config was given)."""


class UnidentifiedHost(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    """The port the evidence came from: the API port, or the other port that was open."""
    reason: Unidentified
    answered: str
    """What came back (or did not), at most `ANSWER_MAX_CHARS` characters."""
    open_ports: tuple[int, ...]
    identify_s: float | None
    """Seconds spent on identification; None when it was not attempted or was interrupted."""


class SilentHost(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    reason: Silence


class ScanCounts(msgspec.Struct, frozen=True, kw_only=True):
    hosts: int
    """Addresses in the targets."""
    probed: int
    open: int
    """Hosts with at least one probed port open (identified + unidentified)."""
    identified: int
    unidentified: int
    silent: int
    not_probed: int
    """Addresses never probed because the scan was interrupted."""


class ScanSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The knobs a scan ran with, so a report says what "silent" or "no_reply" meant."""

    port: int
    other_ports: tuple[int, ...]
    probe_timeout_s: float
    probe_concurrency: int
    identify_timeout_s: float
    identify_concurrency: int


class ScanReport(msgspec.Struct, frozen=True, kw_only=True):
    schema: str
    targets: tuple[str, ...]
    started_at: str
    """UTC, ISO 8601 with a Z."""
    duration_s: float
    probe_s: float | None
    """Seconds until the last probe ended (None if the probe stage did not finish)."""
    complete: bool
    """False when the scan was interrupted: then some hosts are unprobed or `interrupted`."""
    settings: ScanSettings
    counts: ScanCounts
    identified: tuple[IdentifiedHost, ...]
    unidentified: tuple[UnidentifiedHost, ...]
    silent: tuple[SilentHost, ...]


def truncate(text: str, limit: int = ANSWER_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "ANSWER_MAX_CHARS",
    "SCHEMA",
    "IdentifiedHost",
    "ScanCounts",
    "ScanReport",
    "ScanSettings",
    "Silence",
    "SilentHost",
    "Unidentified",
    "UnidentifiedHost",
    "truncate",
]
