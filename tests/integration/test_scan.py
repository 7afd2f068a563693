"""`hashpivot scan` against simulated fleets over real loopback sockets, and as a real process.

Every miner listens on its own loopback address at port 4028, like a site's management subnet.
This file owns 127.0.72.0 - 127.0.75.255 (one /26 or smaller per test, so tests never share an
address); nothing here is ever pointed at a non-loopback address.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import resource
import signal
import socket
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from console.config import load_config
from console.scan.engine import WHATSMINER_V3_PORT, Scanner, ScanOptions
from console.scan.result import ScanReport, Silence, Unidentified
from console.scan.targets import parse_targets
from simulators.asic import AsicFleet, Fault, MinerSpec

ROOT = Path(__file__).resolve().parents[2]

# (persona, simulated model, expected make): every firmware personality, several models.
PERSONAS = [
    ("antminer_stock", "Antminer S19j Pro", "Antminer"),
    ("antminer_stock", "Antminer S21", "Antminer"),
    ("whatsminer", "Whatsminer M50", "Whatsminer"),
    ("whatsminer", "Whatsminer M60S", "Whatsminer"),
    ("braiins", "Antminer S19j Pro", "Antminer"),
    ("luxos", "Antminer S19j Pro", "Antminer"),
    ("avalon", "AvalonMiner 1246", "Avalon"),
    ("vnish", "Antminer S19 XP", "Antminer"),
    ("cgminer", "Antminer S21", "cgminer"),
]

FAST = ScanOptions(probe_timeout_s=1.0, identify_timeout_s=1.0)


def spec(persona: str, model: str, host: str, *faults: Fault) -> MinerSpec:
    return MinerSpec(persona=persona, model=model, host=host, faults=faults, noise=False)


async def scan(cidr: str, options: ScanOptions = FAST) -> ScanReport:
    return await Scanner(parse_targets([cidr]), options).run()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def servers() -> AsyncIterator[Callable[[str, int, Handler], Awaitable[None]]]:
    """Plain TCP servers (not miners) on fixed loopback addresses, closed after the test."""
    async with AsyncExitStack() as stack:

        async def start(host: str, port: int, handler: Handler) -> None:
            server = await asyncio.start_server(handler, host, port, reuse_address=True)
            stack.push_async_callback(server.wait_closed)
            stack.callback(server.close)

        yield start


async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request like any server would, answer something that is not the miner API."""
    await reader.read(4096)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nServer: lighttpd\r\n\r\n<html>bad</html>")
    await writer.drain()
    writer.close()


async def banner_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Speak first and hang up, like an SSH daemon that dislikes what it heard."""
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    writer.close()


async def unknown_cgminer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A working CGMiner-style API from a firmware nobody knows: same reply to every command."""
    await reader.read(4096)
    writer.write(
        b'{"STATUS":[{"STATUS":"S","When":1,"Code":22,"Msg":"Versions","Description":"x 1"}],'
        b'"VERSION":[{"FooMiner":"1.0","Type":"Mystery X1"}],"id":1}\x00'
    )
    await writer.drain()
    writer.close()


async def stay_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)
    writer.close()


# --- the engine ---------------------------------------------------------------------------------


async def test_every_firmware_personality_is_identified() -> None:
    specs = [spec(p, m, f"127.0.72.{10 + i}") for i, (p, m, _) in enumerate(PERSONAS)]
    async with AsicFleet(specs):
        report = await scan("127.0.72.0/27")
    assert report.complete
    assert report.counts.identified == len(PERSONAS)
    assert report.counts.unidentified == 0
    assert report.counts.silent == 30 - len(PERSONAS)
    assert report.counts.probed == report.counts.hosts == 30
    found = {h.host: h for h in report.identified}
    for s, (persona, model, make) in zip(specs, PERSONAS, strict=True):
        host = found[s.host]
        assert host.firmware == persona, s
        assert host.make == make, s
        assert host.port == 4028
        assert host.open_ports == (4028,)
        if persona == "cgminer":
            assert host.model is None  # a plain cgminer does not say what hardware it drives
        else:
            assert host.model is not None
            # The driver keeps the vendor's variant ("Whatsminer M50VH50" for an M50).
            assert all(w.lower() in host.model.lower() for w in model.split()), host.model
        assert host.firmware_version
    assert [h.host for h in report.identified] == sorted(found, key=lambda a: int(a.split(".")[3]))


async def test_hung_silent_and_misbehaving_hosts_are_classified(
    servers: Callable[[str, int, Handler], Awaitable[None]],
) -> None:
    net = "127.0.72.64/26"
    specs = [
        spec("antminer_stock", "Antminer S19j Pro", "127.0.72.65"),
        spec("antminer_stock", "Antminer S21", "127.0.72.66", Fault("hang")),
        spec("whatsminer", "Whatsminer M50", "127.0.72.67", Fault("hang")),
        spec("antminer_stock", "Antminer S21", "127.0.72.68", Fault("refuse")),
        spec("antminer_stock", "Antminer S21", "127.0.72.69", Fault("access_denied")),
        spec("antminer_stock", "Antminer S21", "127.0.72.70", Fault("malformed")),
        spec("antminer_stock", "Antminer S21", "127.0.72.71", Fault("truncate")),
    ]
    await servers("127.0.72.80", 4028, answer_garbage)
    await servers("127.0.72.81", 4028, banner_then_close)
    await servers("127.0.72.82", 4028, stay_silent)
    await servers("127.0.72.83", WHATSMINER_V3_PORT, stay_silent)
    await servers("127.0.72.84", 4028, unknown_cgminer)
    async with AsicFleet(specs):
        report = await scan(net)

    assert report.complete
    assert [h.host for h in report.identified] == ["127.0.72.65"]
    reasons = {h.host: h for h in report.unidentified}
    assert {host: h.reason for host, h in reasons.items()} == {
        "127.0.72.66": Unidentified.NO_REPLY,
        "127.0.72.67": Unidentified.NO_REPLY,
        "127.0.72.69": Unidentified.API_ERROR,
        "127.0.72.70": Unidentified.NOT_CGMINER,
        "127.0.72.71": Unidentified.BAD_REPLY,
        "127.0.72.80": Unidentified.NOT_CGMINER,
        "127.0.72.81": Unidentified.NOT_CGMINER,
        "127.0.72.82": Unidentified.EMPTY,
        "127.0.72.83": Unidentified.OTHER_PORT,
        "127.0.72.84": Unidentified.UNRECOGNISED,
    }
    # What they answered is quoted, so an operator can tell a web server from a locked miner.
    assert "HTTP/1.1 400 Bad Request" in reasons["127.0.72.80"].answered
    assert "SSH-2.0-OpenSSH_9.6" in reasons["127.0.72.81"].answered
    assert "Access denied" in reasons["127.0.72.69"].answered
    assert "within 1 s" in reasons["127.0.72.66"].answered
    assert "Mystery X1" in reasons["127.0.72.84"].answered
    assert reasons["127.0.72.83"].port == WHATSMINER_V3_PORT
    assert reasons["127.0.72.83"].open_ports == (WHATSMINER_V3_PORT,)
    assert all(len(h.answered) <= 200 for h in report.unidentified)
    # A miner refusing connections and an address with nothing at all are both silent.
    silent = {h.host: h.reason for h in report.silent}
    assert silent["127.0.72.68"] is Silence.REFUSED
    assert silent["127.0.72.100"] is Silence.REFUSED
    assert report.counts.silent == 62 - 1 - len(reasons)
    assert report.counts.open == 1 + len(reasons)


def black_hole(host: str) -> list[socket.socket]:
    """An address that drops connection attempts, like an empty address on a real LAN.

    A listener with a backlog of 0 whose one queue slot holds a connection nobody accepts:
    Linux then drops further SYNs, so a connect gets neither an answer nor a refusal.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 4028))
    listener.listen(0)
    return [listener, socket.create_connection((host, 4028), timeout=5)]


async def test_an_address_that_drops_connection_attempts_is_silent_after_the_deadline() -> None:
    holes = black_hole("127.0.74.2")
    try:
        async with AsicFleet([spec("avalon", "AvalonMiner 1246", "127.0.74.1")]):
            report = await scan("127.0.74.0/29", ScanOptions(probe_timeout_s=0.3))
    finally:
        for sock in holes:
            sock.close()
    assert report.complete
    assert [h.host for h in report.identified] == ["127.0.74.1"]
    silent = {h.host: h.reason for h in report.silent}
    assert silent.pop("127.0.74.2") is Silence.TIMEOUT
    assert set(silent.values()) == {Silence.REFUSED}


async def test_identification_starts_before_the_sweep_ends() -> None:
    """Streaming: with one prober, the first miner is identified while addresses remain."""
    specs = [spec("antminer_stock", "Antminer S19j Pro", "127.0.72.129")]
    seen_unprobed_at_identification: list[int] = []
    async with AsicFleet(specs):
        scanner = Scanner(
            parse_targets(["127.0.72.128/26"]),
            ScanOptions(probe_concurrency=1, identify_timeout_s=1.0, other_ports=()),
        )

        async def watch() -> None:
            while scanner.live.identified == 0:
                await asyncio.sleep(0)
            seen_unprobed_at_identification.append(scanner.live.hosts - scanner.live.probed)

        watcher = asyncio.create_task(watch())
        report = await scanner.run()
        await watcher
    assert report.counts.identified == 1
    assert seen_unprobed_at_identification[0] > 0


async def test_stop_keeps_what_was_found() -> None:
    specs = [
        spec("antminer_stock", "Antminer S19j Pro", "127.0.72.193"),
        spec("luxos", "Antminer S19j Pro", "127.0.72.194"),
        spec("antminer_stock", "Antminer S21", "127.0.72.195", Fault("hang")),
    ]
    async with AsicFleet(specs):
        scanner = Scanner(parse_targets(["127.0.72.192/26"]), ScanOptions(identify_timeout_s=60))
        task = asyncio.create_task(scanner.run())
        while scanner.live.identified < 2 or scanner.live.probed < scanner.live.hosts:
            await asyncio.sleep(0.01)
        scanner.stop()
        report = await task
    assert not report.complete
    assert [h.host for h in report.identified] == ["127.0.72.193", "127.0.72.194"]
    assert [(h.host, h.reason) for h in report.unidentified] == [
        ("127.0.72.195", Unidentified.INTERRUPTED)
    ]
    assert report.counts.not_probed == 0


# --- the command, as a real process --------------------------------------------------------------


async def hashpivot(
    *args: str, stderr: int | None = None, open_files: int | None = None
) -> asyncio.subprocess.Process:
    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "console.cli",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if stderr is None else stderr,
        preexec_fn=limit,
    )


async def run_cli(*args: str, open_files: int | None = None) -> tuple[int, str, str]:
    proc = await hashpivot(*args, open_files=open_files)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


PLAIN_PROGRESS = re.compile(
    r"^scan: \d+/\d+ probed, \d+ open, \d+ identified, \d+ unidentified"
    r"(, \d+ identifying)?, \d+ hosts/s, \d+\.\d s$"
)


async def test_cli_json_and_plain_progress_when_not_a_terminal() -> None:
    specs = [
        spec("antminer_stock", "Antminer S19j Pro", "127.0.73.1"),
        spec("whatsminer", "Whatsminer M50", "127.0.73.2"),
        spec("antminer_stock", "Antminer S21", "127.0.73.3", Fault("hang")),
    ]
    async with AsicFleet(specs):
        rc, out, err = await run_cli("scan", "127.0.73.0/28", "--json", "--identify-timeout", "1")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "hashpivot.scan/1"
    assert doc["complete"] is True
    assert doc["counts"] == {
        "hosts": 14,
        "probed": 14,
        "open": 3,
        "identified": 2,
        "unidentified": 1,
        "silent": 11,
        "not_probed": 0,
    }
    assert [(h["host"], h["firmware"]) for h in doc["identified"]] == [
        ("127.0.73.1", "antminer_stock"),
        ("127.0.73.2", "whatsminer"),
    ]
    assert doc["unidentified"][0]["reason"] == "no_reply"
    assert {h["reason"] for h in doc["silent"]} == {"refused"}
    # stderr is a pipe: plain lines, no carriage returns or escape sequences.
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert lines[0].startswith("scan: 14 address(es) in 127.0.73.0/28")
    assert any(PLAIN_PROGRESS.match(line) for line in lines), err
    assert all(PLAIN_PROGRESS.match(line) for line in lines[1:-1]), err
    assert lines[-1].startswith("scan done in ")


async def test_cli_table_is_the_default() -> None:
    specs = [spec("braiins", "Antminer S19j Pro", "127.0.73.17")]
    async with AsicFleet(specs):
        rc, out, err = await run_cli("scan", "127.0.73.16/30", "--quiet")
    assert rc == 0, err
    header, row, *rest = out.splitlines()
    assert header.split() == ["HOST", "PORT", "MAKE", "MODEL", "FIRMWARE", "VERSION"]
    assert row.split()[:2] == ["127.0.73.17", "4028"]
    assert "braiins" in row and "Antminer S19j Pro" in row
    assert rest[-1] == "2 addresses: 1 identified, 0 open but not identified, 1 silent (1 refused)"
    assert err == ""  # --quiet


async def test_cli_toml_skips_hosts_already_in_the_config(tmp_path: Path) -> None:
    specs = [
        spec("antminer_stock", "Antminer S19j Pro", "127.0.73.33"),
        spec("vnish", "Antminer S19 XP", "127.0.73.34"),
        spec("avalon", "AvalonMiner 1246", "127.0.73.35"),
        spec("cgminer", "Antminer S21", "127.0.73.36"),
    ]
    site = tmp_path / "site.toml"
    site.write_text(
        '[site]\nname = "lab"\n[host]\nenabled = false\n\n'
        '[[asics]]\nname = "rack1-01"\nhost = "127.0.73.33"\n\n'
        '[[asics]]\nname = "rack1-02"\nhost = "127.0.73.35"\nport = 4028\n\n'
        # Same address, another port: a different endpoint, so .34 is still new.
        '[[asics]]\nname = "rack1-03"\nhost = "127.0.73.34"\nport = 14028\n'
    )
    async with AsicFleet(specs):
        rc, out, err = await run_cli(
            "scan", "127.0.73.32/29", "--toml", "--config", str(site), "--quiet"
        )
    assert rc == 0, err
    entries = tomllib.loads(out)["asics"]
    assert [e["host"] for e in entries] == ["127.0.73.34", "127.0.73.36"]
    assert entries[0]["model"] == "Antminer S19 XP"
    assert "model" not in entries[1]  # plain cgminer: no model reported, none invented
    assert "skipped 2 host(s) already in" in err
    assert "127.0.73.33 (as rack1-01)" in err and "127.0.73.35 (as rack1-02)" in err
    # Appending the output gives a config that loads, with every miner exactly once.
    site.write_text(site.read_text() + out)
    config = load_config(site)
    hosts = [(a.host, a.port) for a in config.asics]
    assert len(hosts) == len(set(hosts)) == 5


async def test_cli_ctrl_c_prints_partial_results_and_exits_cleanly() -> None:
    specs = [
        spec("antminer_stock", "Antminer S19j Pro", "127.0.73.49"),
        spec("luxos", "Antminer S19j Pro", "127.0.73.50"),
        spec("avalon", "AvalonMiner 1246", "127.0.73.51"),
        spec("antminer_stock", "Antminer S21", "127.0.73.52", Fault("hang")),
    ]
    async with AsicFleet(specs):
        # The hung miner would hold the scan for 120 s: only Ctrl-C can end it in time.
        proc = await hashpivot("scan", "127.0.73.48/28", "--json", "--identify-timeout", "120")
        assert proc.stderr is not None
        seen: list[str] = []
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, f"scan ended early: {seen}"
                seen.append(line)
                if ", 3 identified," in line and "14/14 probed" in line:
                    break
        proc.send_signal(signal.SIGINT)
        out, rest = await asyncio.wait_for(proc.communicate(), 30)
    err = "".join(seen) + rest.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "scan interrupted in" in err
    doc = json.loads(out)
    assert doc["complete"] is False
    assert [h["host"] for h in doc["identified"]] == ["127.0.73.49", "127.0.73.50", "127.0.73.51"]
    assert [(h["host"], h["reason"]) for h in doc["unidentified"]] == [
        ("127.0.73.52", "interrupted")
    ]


async def test_cli_draws_a_progress_bar_on_a_terminal() -> None:
    specs = [spec("antminer_stock", "Antminer S19j Pro", "127.0.73.65")]
    master, slave = pty.openpty()
    try:
        async with AsicFleet(specs):
            proc = await hashpivot("scan", "127.0.73.64/28", "--json", stderr=slave)
            os.close(slave)
            slave = -1
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child side is closed and everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0
    assert json.loads(out)["counts"]["identified"] == 1
    text = drawn.decode()
    assert "\r" in text and "scan [" in text and "\x1b[K" in text
    assert "14/14 probed" in text
    assert text.rstrip().splitlines()[-1].startswith("scan done in ")


async def test_cli_fits_its_concurrency_to_a_low_open_file_limit() -> None:
    specs = [
        spec("antminer_stock", "Antminer S19j Pro", "127.0.73.81"),
        spec("whatsminer", "Whatsminer M60S", "127.0.73.94"),
    ]
    async with AsicFleet(specs):
        rc, out, err = await run_cli("scan", "127.0.73.80/28", "--json", open_files=200)
    assert rc == 0, err
    assert "note: the open-file limit is 200 (ulimit -n); probing " in err
    doc = json.loads(out)
    assert [h["host"] for h in doc["identified"]] == ["127.0.73.81", "127.0.73.94"]
    settings = doc["settings"]
    sockets = settings["probe_concurrency"] * 2 + settings["identify_concurrency"] * 3
    assert sockets <= 200 - 64


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("127.0.73.0/33", ["'127.0.73.0/33'", "/33", "fix:"]),
        ("127.0.73.300", ["'127.0.73.300'", "not an IPv4", "fix:"]),
        ("lab-net", ["'lab-net'", "fix:"]),
        ("127.0.0.0/16", ["65,534 addresses", "--force"]),
    ],
)
async def test_cli_bad_target_is_a_clear_error(target: str, words: list[str]) -> None:
    rc, out, err = await run_cli("scan", target)
    assert rc == 2
    assert out == ""
    assert err.startswith("hashpivot scan: ")
    for word in words:
        assert word in err, err
