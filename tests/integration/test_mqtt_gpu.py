"""The headless bridge on a simulated GPU site, against a real mosquitto: the GPU documents and
Home Assistant entities from the real `GpuView` and earnings, the real AI queue on `jobs/state`,
the workloads' switch steps on `events/switch`, and a failed job on `events/site`.

Real pieces only, as in tests/integration/test_site_gpus.py: the NVML driver over the real
pynvml binding over the simulated NVML library, the simulated miner and AI jobs as real OS
processes, the miner's HTTP API, SQLite state; commands arrive over MQTT."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.config import load_config
from console.headless.service import Bridge, site_bridge
from console.headless.settings import resolve
from console.headless.topics import ha_object_id
from console.site import Site
from simulators.gpu_state import _gpu_uuid
from tests.gpu_site import SEED, gpu_site_toml
from tests.ha_discovery import render, validate
from tests.mqtt_broker import Mosquitto, Subscriber, broker, make_broker, publish, unique_prefix

__all__ = ["broker", "make_broker"]


class Run:
    def __init__(self, bridge: Bridge, site: Site, prefix: str) -> None:
        self.bridge = bridge
        self.site = site
        self.prefix = prefix

    def topic(self, rest: str) -> str:
        return f"{self.prefix}/v1/gpus/{rest}"


@pytest.fixture
async def running(
    tmp_path: Path, broker: Mosquitto, request: pytest.FixtureRequest
) -> AsyncIterator[Run]:
    """A mining GPU (g0) and an idle one (g1), commands on."""
    prefix = unique_prefix(request.node.name)
    path = gpu_site_toml(
        tmp_path,
        mqtt=f'url = "{broker.url}/{prefix}"\ncommands = true\npublish_interval_s = 0.1\n',
        gpu_poll_interval_s=0.25,
    )
    config = load_config(path)
    async with Site(config) as site:
        bridge = site_bridge(site, resolve(config, env={}))
        stop = asyncio.Event()
        task = asyncio.create_task(bridge.run(stop))
        try:
            yield Run(bridge, site, prefix)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


def documents(sub: Subscriber, topic: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in sub.on(topic)]


def gpu_state(sub: Subscriber, run: Run, name: str) -> list[dict[str, object]]:
    return documents(sub, run.topic(f"device/{name}/state"))


def latest_jobs(sub: Subscriber, run: Run) -> list[dict[str, object]]:
    found = documents(sub, run.topic("jobs/state"))
    return found[-1]["jobs"] if found else []  # type: ignore[return-value]


async def test_gpu_documents_queue_switch_steps_and_a_failed_job(
    broker: Mosquitto, running: Run
) -> None:
    run = running
    async with Subscriber(broker, f"{run.prefix}/#", "homeassistant/#") as sub:

        def mining_with_earnings() -> bool:
            docs = gpu_state(sub, run, "g0")
            return bool(docs) and (
                docs[-1]["gpu"] is not None
                and docs[-1]["gpu"]["state"] == "MINING"  # type: ignore[index]
                and (docs[-1]["summary"]["hashrate_hs"] or 0) > 0  # type: ignore[index]
                and docs[-1]["earnings"] is not None
            )

        await sub.wait_for(mining_with_earnings, timeout_s=60, what="g0 mining, priced")
        g0 = gpu_state(sub, run, "g0")[-1]
        gpu, summary, earnings = g0["gpu"], g0["summary"], g0["earnings"]
        assert isinstance(gpu, dict) and isinstance(summary, dict) and isinstance(earnings, dict)
        assert summary["hashrate_hs"] == gpu["miner_hashrate_hs"]  # the miner's own figure
        assert summary["power_w"] == gpu["nvml"]["sample"]["power_w"]
        assert gpu["nvml"]["static"]["uuid"] == _gpu_uuid(SEED, 0) and gpu["miner_pid"]
        assert earnings["mode"] == "mining" and earnings["other_mode"] == "ai"
        assert earnings["switch_gain_usd_per_day"] is not None
        assert summary["profit_usd_per_day"] == earnings["profit_usd_per_day"]

        # Home Assistant: the GPU's entities, valid, reading the real document.
        topic = f"homeassistant/device/{ha_object_id('gpus', 'g0')}/config"
        await sub.wait_for(lambda: sub.on(topic), what="g0's discovery")
        doc = validate(topic, sub.on(topic)[-1].payload)
        assert doc["device"]["manufacturer"] == "NVIDIA" and doc["device"]["model"]
        values = {
            key: render(c["value_template"], value_json=g0) for key, c in doc["components"].items()
        }
        assert values["state"] == "MINING" and values["job"] == "none"
        assert float(values["hashrate"]) > 0 and values["mode"] == "mining"
        assert doc["components"]["mode"]["platform"] == "select"

        # The queue: the site's seeded job, without its command line.
        await sub.wait_for(lambda: latest_jobs(sub, run), what="the queue on jobs/state")
        [finetune] = latest_jobs(sub, run)
        assert (finetune["name"], finetune["state"], finetune["customer"]) == (
            "finetune",
            "queued",
            "acme",
        )
        assert "argv" not in finetune and "env" not in finetune

        # A job whose command fails at once, submitted over MQTT with a secret in its env,
        # then run on the idle GPU: the failure reaches events/site.
        failing = {
            "argv": [sys.executable, "-c", "import sys; sys.exit(3)"],
            "name": "broken",
            "customer": "acme",
            "rate_usd_per_gpu_hour": 2.0,
            "min_vram_bytes": 1_000_000_000,
            "priority": 10,
            "env": {"HF_TOKEN": "token-in-env"},
        }
        await publish(
            broker,
            run.topic("cmd/job.submit"),
            json.dumps({"job": failing, "request_id": "submit-1"}).encode(),
        )
        await sub.wait_for(lambda: sub.on(run.topic("reply/submit-1")), what="submit reply")
        submitted = json.loads(sub.on(run.topic("reply/submit-1"))[0].payload)
        assert submitted["ok"] is True, submitted
        broken_id = submitted["detail"]["job_id"]
        await sub.wait_for(
            lambda: any(j["id"] == broken_id for j in latest_jobs(sub, run)),
            what="the submitted job on jobs/state",
        )
        published = [m for m in sub.messages if "/cmd/" not in m.topic]  # ours, not the bridge's
        assert not any(b"token-in-env" in m.payload for m in published)

        command = {"device": "g1", "mode": "ai", "job_id": broken_id, "request_id": "sw-1"}
        await publish(broker, run.topic("cmd/gpu.switch"), json.dumps(command).encode())
        await sub.wait_for(
            lambda: sub.on(run.topic("reply/sw-1")), timeout_s=60, what="switch reply"
        )
        reply = json.loads(sub.on(run.topic("reply/sw-1"))[0].payload)
        # The job's process exits before it shows on the GPU: the switch fails at confirm
        # and holds the GPU for an operator.
        assert reply["ok"] is False and reply["code"] == "failed", reply
        assert "exited before it showed on the GPU" in reply["message"]
        switch_id = reply["detail"]["switch_id"]

        def alarms() -> list[dict[str, object]]:
            return documents(sub, run.topic("events/site"))

        await sub.wait_for(
            lambda: any(a["event"] == "job_failed" for a in alarms()),
            timeout_s=60,
            what="job_failed on events/site",
        )
        failed = next(a for a in alarms() if a["event"] == "job_failed")
        assert failed["subject"] == f"job {broken_id}" and failed["severity"] == "error"
        assert "broken" in str(failed["message"])
        [switch_failed] = [a for a in alarms() if a["event"] == "switch_failed"]
        assert switch_failed["subject"] == "g1" and "confirm" in str(switch_failed["message"])
        assert not any(m.retain for m in sub.on(run.topic("events/site")))

        # Every step of that switch, in order, on events/switch.
        steps = [
            e for e in documents(sub, run.topic("events/switch")) if e["switch_id"] == switch_id
        ]
        assert steps and all(e["gpu"] == "g1" and e["uuid"] == _gpu_uuid(SEED, 1) for e in steps)
        assert steps[0]["step"] == "precheck" and steps[0]["status"] == "started"
        assert any(e["step"] == "launch" for e in steps)
        assert any(
            e["step"] == "state" and e["detail"].get("to_state")
            for e in steps  # type: ignore[union-attr]
        )
        assert not any(m.retain for m in sub.on(run.topic("events/switch")))
        await sub.wait_for(
            lambda: any(
                j["id"] == broken_id and j["state"] == "failed" for j in latest_jobs(sub, run)
            ),
            timeout_s=30,
            what="the job failed on jobs/state",
        )
        broken = next(j for j in latest_jobs(sub, run) if j["id"] == broken_id)
        assert broken["last_error"] and broken["attempts"] == 1

        # The held GPU, given up on over MQTT (`op`): back to where it came from.
        await sub.wait_for(
            lambda: gpu_state(sub, run, "g1")[-1]["gpu"]["state"] == "FAULTED",  # type: ignore[index]
            what="g1 held FAULTED in its state",
        )
        await publish(
            broker,
            run.topic("cmd/gpu.switch"),
            json.dumps({"device": "g1", "op": "abort", "request_id": "abort-1"}).encode(),
        )
        await sub.wait_for(
            lambda: sub.on(run.topic("reply/abort-1")), timeout_s=60, what="abort reply"
        )
        aborted = json.loads(sub.on(run.topic("reply/abort-1"))[0].payload)
        assert aborted["ok"] is True, aborted
        await sub.wait_for(
            lambda: gpu_state(sub, run, "g1")[-1]["gpu"]["state"] == "IDLE",  # type: ignore[index]
            what="g1 idle again in its state",
        )
