"""Rendering a `ScanReport`: the table (default), JSON (`--json`) and `[[asics]]` TOML (`--toml`).

The TOML is meant to be appended to a site config (`hashpivot scan ... --toml >> site.toml`), so:

* a host already in the given config (same address and port) is never written again — the
  caller says on stderr which were skipped;
* generated names never collide with names in the config or with each other;
* everything that came from a device (model, firmware version) is escaped: a miner must not be
  able to inject keys into the operator's config through a newline in its `Type` field.

Addresses in the config are compared as addresses (`10.0.0.07` is not `10.0.0.7`, `::1` equals
`0::1`); entries that use a hostname cannot be compared without DNS and are reported as such.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from console.config import DEFAULT_CGMINER_PORT, AsicConfig
from console.model import MISSING
from console.scan.result import IdentifiedHost, ScanReport, Silence

NAME_MAX_CHARS = 64  # `DeviceName` in console.config


def report_json(report: ScanReport) -> bytes:
    """The `--json` document (schema `hashpivot.scan/1`, docs/scan.md), newline-terminated."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"


# --- table --------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(row) for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in (list(headers), *rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return lines


def _show(value: str | None) -> str:
    return MISSING if value is None or value == "" else value


def _one_line(text: str) -> str:
    """Device text on one printable line (control characters would corrupt the table)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def summary_text(report: ScanReport) -> str:
    """`1024 addresses: 500 identified, 3 open but not identified, 521 silent (...)`."""
    counts = report.counts
    silent_by: dict[str, int] = {}
    for host in report.silent:
        silent_by[host.reason.value] = silent_by.get(host.reason.value, 0) + 1
    order = [reason.value for reason in Silence]
    detail = ", ".join(f"{silent_by[r]} {r}" for r in order if r in silent_by)
    text = (
        f"{counts.hosts} addresses: {counts.identified} identified, "
        f"{counts.unidentified} open but not identified, {counts.silent} silent"
    )
    if detail:
        text += f" ({detail})"
    if not report.complete:
        text += f"; interrupted, {counts.not_probed} not probed"
    return text


def report_table(report: ScanReport, *, with_config: bool = False) -> str:
    """The default output; `with_config` adds the IN CONFIG column (entry name or `—`)."""
    lines: list[str] = []
    if report.identified:
        headers: tuple[str, ...] = ("HOST", "PORT", "MAKE", "MODEL", "FIRMWARE", "VERSION")
        rows = [
            [
                h.host,
                str(h.port),
                _one_line(h.make),
                _one_line(_show(h.model)),
                h.firmware,
                _one_line(_show(h.firmware_version)),
            ]
            for h in report.identified
        ]
        if with_config:
            headers += ("IN CONFIG",)
            for row, h in zip(rows, report.identified, strict=True):
                row.append(_show(h.config_name))
        lines += _table(headers, rows)
    else:
        lines.append("No miner identified.")
    if report.unidentified:
        lines += ["", f"Open but not identified ({len(report.unidentified)}):"]
        lines += _table(
            ("HOST", "PORT", "REASON", "ANSWERED"),
            (
                (h.host, str(h.port), h.reason.value, _one_line(h.answered))
                for h in report.unidentified
            ),
        )
    lines += ["", summary_text(report)]
    return "\n".join(lines) + "\n"


# --- TOML ---------------------------------------------------------------------------------------


def _address_key(host: str) -> str | None:
    try:
        return ipaddress.ip_address(host.strip("[]")).compressed
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ConfigIndex:
    """What a site config already holds, for matching scan results against it."""

    by_endpoint: dict[tuple[str, int], str]
    """(address, port) → entry name, for entries whose host is an IP address."""
    names: frozenset[str]
    hostname_entries: tuple[str, ...]
    """`name (host)` of entries that use a hostname: not comparable without DNS."""

    @classmethod
    def of(cls, asics: Iterable[AsicConfig]) -> ConfigIndex:
        by_endpoint: dict[tuple[str, int], str] = {}
        hostnames: list[str] = []
        names: set[str] = set()
        for asic in asics:
            names.add(asic.name)
            key = _address_key(asic.host)
            if key is None:
                hostnames.append(f"{asic.name} ({asic.host})")
            else:
                by_endpoint.setdefault((key, asic.port), asic.name)
        return cls(by_endpoint, frozenset(names), tuple(hostnames))

    def name_for(self, host: str, port: int) -> str | None:
        key = _address_key(host)
        return None if key is None else self.by_endpoint.get((key, port))


def mark_in_config(report: ScanReport, index: ConfigIndex) -> ScanReport:
    """The report with `config_name` set on identified hosts the config already has."""
    identified = tuple(
        msgspec.structs.replace(h, config_name=index.name_for(h.host, h.port))
        for h in report.identified
    )
    return msgspec.structs.replace(report, identified=identified)


_SLUG_DROP = re.compile(r"[^a-z0-9]+")


def entry_name(host: IdentifiedHost, taken: set[str]) -> str:
    """`antminer-s19j-pro-10-0-3-21`: the model (or firmware) and the address, unique."""
    what = _SLUG_DROP.sub("-", (host.model or host.firmware).lower()).strip("-") or "miner"
    where = _SLUG_DROP.sub("-", host.host.lower()).strip("-")
    if host.port != DEFAULT_CGMINER_PORT:
        where += f"-{host.port}"
    base = f"{what[: NAME_MAX_CHARS - len(where) - 1].rstrip('-')}-{where}"[-NAME_MAX_CHARS:]
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: NAME_MAX_CHARS - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04X}" if code < 0xD800 else "\\uFFFD")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _comment(text: str) -> str:
    return "# " + "".join(ch if ch.isprintable() else "?" for ch in text)


@dataclass(frozen=True, slots=True)
class TomlOutput:
    text: str
    written: tuple[IdentifiedHost, ...]
    skipped: tuple[IdentifiedHost, ...]
    """Identified hosts left out because the config already has them (`config_name` set)."""


def asics_toml(report: ScanReport, index: ConfigIndex | None = None) -> TomlOutput:
    """`[[asics]]` entries for identified hosts the config does not already hold."""
    taken = set(index.names) if index else set()
    written: list[IdentifiedHost] = []
    skipped: list[IdentifiedHost] = []
    blocks: list[str] = []
    for host in report.identified:
        if index is not None and index.name_for(host.host, host.port) is not None:
            skipped.append(host)
            continue
        written.append(host)
        about = f"{host.model or 'model not reported'}: {host.firmware} firmware"
        if host.firmware_version:
            about += f" {host.firmware_version}"
        lines = [
            _comment(about),
            "[[asics]]",
            f"name = {toml_string(entry_name(host, taken))}",
            f"host = {toml_string(host.host)}",
        ]
        if host.port != DEFAULT_CGMINER_PORT:
            lines.append(f"port = {host.port}")
        if host.model:
            lines.append(f"model = {toml_string(host.model)}")
        blocks.append("\n".join(lines))
    header = _comment(
        f"hashpivot scan {' '.join(report.targets)} at {report.started_at}: "
        f"{len(written)} new miner(s)"
        + (f", {len(skipped)} already in the config" if skipped else "")
        + ("" if report.complete else " (scan interrupted: partial)")
    )
    # A leading blank line: appended to a file without a final newline, the header comment
    # must not run into that file's last line.
    text = "\n" + "\n\n".join([header, *blocks]) + "\n"
    return TomlOutput(text, tuple(written), tuple(skipped))


__all__ = [
    "ConfigIndex",
    "TomlOutput",
    "asics_toml",
    "entry_name",
    "mark_in_config",
    "report_json",
    "report_table",
    "summary_text",
    "toml_string",
]
