"""`hashpivot headless` as an operator runs it: a real process, a real mosquitto, commands
sent with `mosquitto_pub`, and the process stopped by SIGTERM or killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gpu_site import gpu_site_toml
from tests.mqtt_broker import Mosquitto, Subscriber, broker, make_broker, retained

__all__ = ["broker", "make_broker"]

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("127.0.81.1", "127.0.81.2")  # this suite's loopback range; ports are ephemeral
PREFIX = "hp"
BASE = f"{PREFIX}/v1/cli"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Headless:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def headless(tmp_path: Path, broker: Mosquitto) -> Iterator[Headless]:
    """`hashpivot headless` over two in-process simulated miners (a privileged LuxOS and a
    stock Antminer), commands on."""
    config = tmp_path / "site.toml"
    config.write_text(
        f'[site]\nname = "cli"\nstate_dir = "{tmp_path / "state"}"\n'
        "[poller]\nasic_poll_interval_s = 0.5\nasic_timeout_s = 1.0\n"
        "[host]\nenabled = false\n"
        "[mqtt]\ncommands = true\npublish_interval_s = 0.2\n"
        f'[[asics]]\nname = "lux"\nhost = "{HOSTS[0]}"\nport = {free_port(HOSTS[0])}\n'
        'model = "Antminer S19j Pro"\nprivileged = true\n'
        '[asics.simulate]\npersona = "luxos"\nseed = 3\n'
        f'[[asics]]\nname = "stock"\nhost = "{HOSTS[1]}"\nport = {free_port(HOSTS[1])}\n'
        'model = "Antminer S21"\n[asics.simulate]\npersona = "antminer_stock"\nseed = 4\n'
    )
    log = tmp_path / "headless.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console.cli",
                "headless",
                "--config",
                str(config),
                "--mqtt",
                f"{broker.url}/{PREFIX}",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield Headless(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def online(sub: Subscriber, run: Headless) -> None:
    def up() -> bool:
        assert run.proc.poll() is None, run.output()
        last = sub.last(f"{BASE}/bridge/availability")
        return (
            last is not None
            and last.payload == b"online"
            and bool(sub.on(f"{BASE}/device/lux/state"))
        )

    await sub.wait_for(up, timeout_s=60, what="the headless bridge online with lux's state")


def mosquitto_pub(broker: Mosquitto, topic: str, body: dict[str, object], *v5: str) -> None:
    subprocess.run(
        [
            MOSQUITTO_PUB,
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            json.dumps(body),
            *v5,
        ],
        check=True,
        timeout=10,
    )


def states(sub: Subscriber, device: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in sub.on(f"{BASE}/device/{device}/state")]


async def test_mosquitto_pub_curtails_a_luxos_miner_then_kill_9_leaves_the_will(
    broker: Mosquitto, headless: Headless
) -> None:
    async with Subscriber(broker, f"{BASE}/#", "me/#") as sub:
        await online(sub, headless)
        mosquitto_pub(broker, f"{BASE}/cmd/asic.curtail", {"device": "lux", "request_id": "p1"})
        await sub.wait_for(lambda: sub.on(f"{BASE}/reply/p1"), what="the curtail reply")
        reply = json.loads(sub.on(f"{BASE}/reply/p1")[0].payload)
        assert reply["ok"] is True and reply["code"] == "ok", reply

        # Executed, and seen in the state topic: commanded curtailed, then the firmware
        # reporting it and the hashrate falling to nothing.
        def curtailed() -> bool:
            return any(
                s["commanded"] == "curtailed"
                and s["reading"]["state"] == "curtailed"  # type: ignore[index]
                and s["observed"] == "idle"
                for s in states(sub, "lux")
            )

        await sub.wait_for(curtailed, timeout_s=30, what="lux curtailed in its state topic")
        assert all(s["commanded"] == "mining" for s in states(sub, "stock"))

        # MQTT v5 from the command line: reply on the response topic, correlated.
        mosquitto_pub(
            broker,
            f"{BASE}/cmd/asic.wake",
            {"device": "lux"},
            "-V",
            "mqttv5",
            "-D",
            "publish",
            "response-topic",
            "me/reply",
            "-D",
            "publish",
            "correlation-data",
            "wake-1",
        )
        await sub.wait_for(lambda: sub.on("me/reply"), what="the v5 reply")
        woke = json.loads(sub.on("me/reply")[0].payload)
        assert woke["ok"] is True and woke["request_id"] == "wake-1", woke
        await sub.wait_for(
            lambda: states(sub, "lux")[-1]["commanded"] == "mining", what="lux mining again"
        )

        headless.proc.send_signal(signal.SIGKILL)
        headless.proc.wait(10)
        # The broker notices the dead TCP connection and publishes the last will.
        await sub.wait_for(
            lambda: sub.last(f"{BASE}/bridge/availability").payload == b"offline",  # type: ignore[union-attr]
            what="the will",
        )
    [kept] = await retained(broker, f"{BASE}/bridge/availability")
    assert kept.payload == b"offline"
    # A dropped connection, not a clean DISCONNECT (which would have discarded the will).
    assert "Client hashpivot-cli closed its connection." in broker.log()
    assert "Client hashpivot-cli disconnected." not in broker.log()


async def test_sigterm_stops_gracefully_with_offline(broker: Mosquitto, headless: Headless) -> None:
    async with Subscriber(broker, f"{BASE}/#") as sub:
        await online(sub, headless)
        headless.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(headless.proc.wait, 30)
        assert code == 0, headless.output()
        await sub.wait_for(
            lambda: sub.last(f"{BASE}/bridge/availability").payload == b"offline",  # type: ignore[union-attr]
            what="offline",
        )
    [kept] = await retained(broker, f"{BASE}/bridge/availability")
    assert kept.payload == b"offline"
    assert "Client hashpivot-cli disconnected." in broker.log()  # a clean disconnect


def test_bad_broker_url_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "headless", "--mqtt", "http://127.0.0.1/x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "expected mqtt:// or mqtts://" in done.stderr and "Traceback" not in done.stderr


# ---- a GPU switched to AI and back with mosquitto_pub ---------------------------------------

GPU_BASE = f"{PREFIX}/v1/gpu-cli"


@pytest.fixture
def headless_gpus(tmp_path: Path, broker: Mosquitto) -> Iterator[Headless]:
    """`hashpivot headless` on a simulated GPU site: one RTX 4090 mining (a simulated miner
    process with its HTTP API), one AI job queued, commands on."""
    config = gpu_site_toml(
        tmp_path,
        site="gpu-cli",
        modes=("mining",),
        models=("rtx4090",),
        gpu_poll_interval_s=0.25,
        mqtt="commands = true\npublish_interval_s = 0.2\n",
    )
    log = tmp_path / "headless-gpus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console.cli",
                "headless",
                "--config",
                str(config),
                "--mqtt",
                f"{broker.url}/{PREFIX}",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield Headless(proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a simulated site stops its miner and job
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def test_mosquitto_pub_switches_a_gpu_to_ai_and_back(
    broker: Mosquitto, headless_gpus: Headless
) -> None:
    run = headless_gpus
    state_topic = f"{GPU_BASE}/device/g0/state"

    def gpu_states() -> list[dict[str, object]]:
        assert run.proc.poll() is None, run.output()
        return [json.loads(m.payload)["gpu"] or {} for m in sub.on(state_topic)]

    def mining(views: list[dict[str, object]]) -> bool:
        return any(
            v.get("state") == "MINING" and (v.get("miner_hashrate_hs") or 0) > 0  # type: ignore[operator]
            for v in views
        )

    async with Subscriber(broker, f"{GPU_BASE}/#") as sub:
        await sub.wait_for(
            lambda: mining(gpu_states()), timeout_s=90, what="g0 mining with hashrate"
        )

        mosquitto_pub(
            broker, f"{GPU_BASE}/cmd/gpu.switch", {"device": "g0", "mode": "ai", "request_id": "ai"}
        )
        await sub.wait_for(
            lambda: sub.on(f"{GPU_BASE}/reply/ai"), timeout_s=90, what="the switch-to-AI reply"
        )
        reply = json.loads(sub.on(f"{GPU_BASE}/reply/ai")[0].payload)
        assert reply["ok"] is True and reply["code"] == "ok", reply

        def running_the_job() -> bool:
            return any(
                v.get("state") == "AI_RUNNING"
                and isinstance(v.get("job"), dict)
                and v["job"]["name"] == "finetune"  # type: ignore[index]
                for v in gpu_states()
            )

        await sub.wait_for(running_the_job, timeout_s=60, what="g0 AI_RUNNING with the job")
        seen = len(sub.on(state_topic))
        ai = json.loads(sub.on(state_topic)[-1].payload)
        assert ai["commanded"] == "ai" and ai["summary"]["hashrate_hs"] is None  # no miner

        mosquitto_pub(
            broker,
            f"{GPU_BASE}/cmd/gpu.switch",
            {"device": "g0", "mode": "mining", "request_id": "back"},
        )
        await sub.wait_for(
            lambda: sub.on(f"{GPU_BASE}/reply/back"), timeout_s=90, what="the switch-back reply"
        )
        back = json.loads(sub.on(f"{GPU_BASE}/reply/back")[0].payload)
        assert back["ok"] is True and back["code"] == "ok", back
        await sub.wait_for(
            lambda: mining(gpu_states()[seen:]), timeout_s=60, what="g0 mining again"
        )
        hashing = next(
            doc
            for doc in (json.loads(m.payload) for m in sub.on(state_topic)[seen:])
            if mining([doc["gpu"] or {}])
        )
        assert hashing["commanded"] == "mining" and hashing["observed"] == "hashing"
        assert hashing["summary"]["hashrate_hs"] == hashing["gpu"]["miner_hashrate_hs"]
        # The job went back in line, its run booked, as the queue on jobs/state says.
        await sub.wait_for(
            lambda: any(
                j["name"] == "finetune"
                and j["state"] == "requeued"
                and j["gpu_uuid"] is None
                and j["runtime_s"] > 0
                and j["earned_usd"] > 0
                for j in json.loads(sub.last(f"{GPU_BASE}/jobs/state").payload)["jobs"]  # type: ignore[union-attr]
            ),
            timeout_s=30,
            what="the job requeued on jobs/state",
        )
