"""The `hashpivot` command as an operator runs it: real processes, real sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IP = "127.0.51.1"  # a range no other test uses, so port 4028 is free on every address


def hashpivot(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.fixture
def simulate() -> Iterator[list[str]]:
    """`hashpivot simulate` in its own process; yields the lines it printed per miner."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "simulate", "--asics", "12", "--base-ip", BASE_IP],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 12:
        line = proc.stdout.readline()
        assert line, "simulate exited early"
        if line.startswith("127."):
            lines.append(line)
    try:
        yield lines
    finally:
        proc.terminate()
        proc.wait(10)


def test_snapshot_json_reports_each_simulated_miner(simulate: list[str], tmp_path: Path) -> None:
    entries = []
    expected: dict[str, tuple[str, str]] = {}
    for i, line in enumerate(simulate):
        endpoint, persona, *rest = line.split()
        host, port = endpoint.split(":")
        assert port == "4028"  # one loopback IP per miner on the standard port
        model = " ".join(w for w in rest if "=" not in w)
        name = f"m{i:02d}"
        expected[name] = (persona, model)
        entries.append(f'[[asics]]\nname = "{name}"\nhost = "{host}"\n')
    site = tmp_path / "site.toml"
    site.write_text('[site]\nname = "lab"\n[host]\nenabled = false\n\n' + "\n".join(entries))

    result = hashpivot("snapshot", "--config", str(site), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "hashpivot.snapshot/1"
    assert doc["totals"]["devices"] == 12
    for device in doc["devices"]:
        reading = device["reading"]
        assert reading is not None, device
        assert device["freshness"] == "fresh"
        persona, model = expected[device["name"]]
        assert reading["firmware"] == persona
        # The driver's model name may carry the vendor's suffix ("Whatsminer M50VH50").
        assert all(word.lower() in reading["model"].lower() for word in model.split()), (
            model,
            reading["model"],
        )
        assert reading["hashrate_5s_hs"] > 1e12  # every simulated model is > 1 TH/s
    assert doc["totals"]["hashrate_hs"] > 12e12


def test_snapshot_table_on_the_bundled_demo_site() -> None:
    result = hashpivot("snapshot")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "MODEL", "FIRMWARE"]
    assert "demo: 48 devices" in result.stdout  # 40 ASICs and 8 GPUs
    gpu_rows = [line for line in lines if "gpu/" in line]
    assert len(gpu_rows) == 8 and all("NVIDIA" in row for row in gpu_rows)
    for family in ("antminer_stock", "whatsminer", "braiins", "luxos", "avalon", "vnish"):
        assert family in result.stdout


def test_config_check_reports_every_problem_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[site]\nname = "x"\n[poller]\nmax_concurency = 3\n'
        '[[asics]]\nname = "a"\nhost = "192.0.2.1"\nport = "4028a"\n'
        '[[asics]]\nname = "a"\nhost = "192.0.2.2"\n'
    )
    result = hashpivot("config", "check", str(bad))
    assert result.returncode == 1
    err = result.stderr
    assert "did you mean 'max_concurrency'" in err
    assert "asics[0]" in err and "port" in err
    assert "duplicate" in err.lower()
    assert str(bad) in err

    good = hashpivot("config", "check", str(ROOT / "config" / "demo.toml"))
    assert good.returncode == 0, good.stderr


def test_snapshot_with_a_broken_config_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nname = "x"\n[[asics]]\nname = "a"\n')
    result = hashpivot("snapshot", "--config", str(bad))
    assert result.returncode == 2
    assert "host" in result.stderr and str(bad) in result.stderr


def test_simulate_refuses_a_non_loopback_base_ip() -> None:
    result = hashpivot("simulate", "--asics", "1", "--base-ip", "192.0.2.1")
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_headless_paths_never_import_textual() -> None:
    code = (
        "import sys, console.cli, console.site, console.report, console.poller, console.store; "
        "print('textual' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_demo_address_taken_gives_a_clear_error() -> None:
    import socket

    with socket.socket() as squatter:
        # Earlier tests leave TIME_WAIT connections on this address; a listener may still bind.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.2.1", 4028))  # the demo site's first miner
        squatter.listen()
        result = hashpivot("snapshot")
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_gpus_prints_a_config_the_console_runs_on(tmp_path: Path) -> None:
    created = hashpivot("simulate", "--gpus", "2", "--gpu-dir", str(tmp_path / "gpus"))
    assert created.returncode == 0, created.stderr
    assert created.stderr.count("GPU-") == 2
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "g"\nstate_dir = "{tmp_path / "state"}"\n' + created.stdout)
    result = hashpivot("snapshot", "--json", "--config", str(site))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    gpus = [d for d in doc["devices"] if d["kind"] == "gpu"]
    assert [g["model"] for g in gpus] == ["NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 4090"]
    assert all(g["freshness"] == "fresh" and g["gpu"]["mode"] == "idle" for g in gpus)
    again = hashpivot("simulate", "--gpus", "3", "--gpu-dir", str(tmp_path / "gpus"))
    assert again.returncode == 2 and "already holds 2 simulated GPUs" in again.stderr
