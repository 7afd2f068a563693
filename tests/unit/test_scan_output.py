"""Scan output: the JSON shape, the table, TOML that appends safely, and the progress lines."""

from __future__ import annotations

import io
import json
import tomllib
from typing import Any

import msgspec

from console.config import AsicConfig
from console.scan.engine import LiveCounts
from console.scan.output import (
    ConfigIndex,
    asics_toml,
    entry_name,
    mark_in_config,
    report_json,
    report_table,
    toml_string,
)
from console.scan.progress import ProgressDisplay, bar_line, counts_text
from console.scan.result import (
    SCHEMA,
    IdentifiedHost,
    ScanCounts,
    ScanReport,
    ScanSettings,
    Silence,
    SilentHost,
    Unidentified,
    UnidentifiedHost,
)


def identified(host: str, **fields: Any) -> IdentifiedHost:
    values: dict[str, Any] = {
        "host": host,
        "port": 4028,
        "make": "Antminer",
        "model": "Antminer S19j Pro",
        "firmware": "antminer_stock",
        "firmware_version": "Mon Dec 26 17:10:01 CST 2022",
        "warnings": (),
        "open_ports": (4028,),
        "identify_s": 0.002,
    }
    values.update(fields)
    return IdentifiedHost(**values)


def report(*hosts: IdentifiedHost, complete: bool = True) -> ScanReport:
    unidentified = (
        UnidentifiedHost(
            host="10.0.3.9",
            port=4028,
            reason=Unidentified.NO_REPLY,
            answered="no complete answer within 5 s",
            open_ports=(4028,),
            identify_s=5.0,
        ),
    )
    silent = (
        SilentHost(host="10.0.3.7", reason=Silence.REFUSED),
        SilentHost(host="10.0.3.8", reason=Silence.TIMEOUT),
    )
    return ScanReport(
        schema=SCHEMA,
        targets=("10.0.3.0/28",),
        started_at="2026-01-02T03:04:05.000Z",
        duration_s=1.5,
        probe_s=1.0,
        complete=complete,
        settings=ScanSettings(
            port=4028,
            other_ports=(4433,),
            probe_timeout_s=1.0,
            probe_concurrency=256,
            identify_timeout_s=5.0,
            identify_concurrency=64,
        ),
        counts=ScanCounts(
            hosts=14,
            probed=14 if complete else 10,
            open=len(hosts) + 1,
            identified=len(hosts),
            unidentified=1,
            silent=2,
            not_probed=0 if complete else 4,
        ),
        identified=hosts,
        unidentified=unidentified,
        silent=silent,
    )


def test_json_shape_is_the_documented_one() -> None:
    doc = json.loads(report_json(report(identified("10.0.3.1"))))
    assert list(doc) == [
        "schema",
        "targets",
        "started_at",
        "duration_s",
        "probe_s",
        "complete",
        "settings",
        "counts",
        "identified",
        "unidentified",
        "silent",
    ]
    assert doc["schema"] == "hashpivot.scan/1"
    assert list(doc["identified"][0]) == [
        "host",
        "port",
        "make",
        "model",
        "firmware",
        "firmware_version",
        "warnings",
        "open_ports",
        "identify_s",
        "config_name",
    ]
    assert list(doc["unidentified"][0]) == [
        "host",
        "port",
        "reason",
        "answered",
        "open_ports",
        "identify_s",
    ]
    assert doc["silent"] == [
        {"host": "10.0.3.7", "reason": "refused"},
        {"host": "10.0.3.8", "reason": "timeout"},
    ]


def test_table_shows_missing_values_as_a_dash_and_device_text_on_one_line() -> None:
    text = report_table(report(identified("10.0.3.1", model=None, firmware_version="1\n2")))
    lines = text.splitlines()
    assert lines[0].split() == ["HOST", "PORT", "MAKE", "MODEL", "FIRMWARE", "VERSION"]
    assert "—" in lines[1] and "1?2" in lines[1]
    assert "Open but not identified (1):" in text
    assert lines[-1] == (
        "14 addresses: 1 identified, 1 open but not identified, 2 silent (1 refused, 1 timeout)"
    )
    partial = report_table(report(identified("10.0.3.1"), complete=False))
    assert partial.splitlines()[-1].endswith("; interrupted, 4 not probed")


def test_toml_entries_load_and_skip_hosts_in_the_config() -> None:
    index = ConfigIndex.of(
        [
            AsicConfig(name="rack-01", host="10.0.3.1"),
            AsicConfig(name="antminer-s19j-pro-10-0-3-2", host="10.0.3.20"),
            AsicConfig(name="by-name", host="miner-3.site.lan"),
        ]
    )
    scanned = report(
        identified("10.0.3.1"),
        identified("10.0.3.2"),
        identified("10.0.3.3", model=None, firmware="cgminer"),
        identified("10.0.3.4", port=14028, model='Evil"\n[[asics]]\nname="x'),
    )
    out = asics_toml(scanned, index)
    assert [h.host for h in out.skipped] == ["10.0.3.1"]
    entries = tomllib.loads(out.text)["asics"]
    assert [e["host"] for e in entries] == ["10.0.3.2", "10.0.3.3", "10.0.3.4"]
    # A name the config already uses is not reused.
    assert entries[0]["name"] == "antminer-s19j-pro-10-0-3-2-2"
    assert entries[1]["name"] == "cgminer-10-0-3-3" and "model" not in entries[1]
    # A miner cannot inject keys through its model text; the port is kept when not 4028.
    assert entries[2]["model"] == 'Evil"\n[[asics]]\nname="x'
    assert entries[2]["port"] == 14028
    assert len(entries) == 3
    for entry in entries:
        AsicConfig(**entry)  # every entry is a valid [[asics]] entry
        msgspec.convert(entry, AsicConfig)
    assert index.hostname_entries == ("by-name (miner-3.site.lan)",)


def test_addresses_are_compared_as_addresses() -> None:
    index = ConfigIndex.of([AsicConfig(name="v6", host="0:0::1"), AsicConfig(name="a", host="::2")])
    marked = mark_in_config(report(identified("::1"), identified("::3")), index)
    assert [h.config_name for h in marked.identified] == ["v6", None]
    assert "IN CONFIG" in report_table(marked, with_config=True).splitlines()[0]


def test_entry_names_fit_the_config_rules() -> None:
    taken: set[str] = set()
    long_model = "Antminer S21 XP Hydro Ultra Edition With A Very Long Marketing Name Indeed"
    name = entry_name(identified("10.200.300.4", model=long_model), taken)
    assert len(name) <= 64 and name.endswith("-10-200-300-4")
    again = entry_name(identified("10.200.300.4", model=long_model), taken)
    assert again != name and len(again) <= 64


def test_toml_string_escapes_everything_toml_forbids() -> None:
    text = 'a"b\\c\x00\x1f\x7f\tz é'
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text


def test_progress_renderings() -> None:
    live = LiveCounts(1024)
    live.probed, live.open, live.identified, live.unidentified, live.identifying = 512, 9, 7, 1, 1
    text = counts_text(live, 2.0)
    assert text == (
        "512/1024 probed, 9 open, 7 identified, 1 unidentified, 1 identifying, 256 hosts/s, 2.0 s"
    )
    line = bar_line(live, 2.0, 200)
    assert line.startswith("scan [" + "#" * 15 + "." * 15 + "] 512/1024 probed")
    assert len(bar_line(live, 2.0, 40)) == 39  # never wraps a narrow terminal
    live.probe_s = 1.0  # probing ended after 1 s: the rate is the sweep's, not diluted
    assert "512 hosts/s" in counts_text(live, 4.0)


def test_plain_progress_prints_changes_only() -> None:
    live = LiveCounts(10)
    now = [0.0]
    out = io.StringIO()
    display = ProgressDisplay(live, out, tty=False, started=0.0, clock=lambda: now[0])
    now[0] = 1.0
    live.probed = 5
    display.draw()
    display.draw()  # nothing changed: no second line
    live.probed = 10
    display.close("scan done")
    assert out.getvalue().splitlines() == [
        "scan: 5/10 probed, 0 open, 0 identified, 0 unidentified, 5 hosts/s, 1.0 s",
        "scan: 10/10 probed, 0 open, 0 identified, 0 unidentified, 10 hosts/s, 1.0 s",
        "scan done",
    ]
