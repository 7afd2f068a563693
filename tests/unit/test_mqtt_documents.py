"""Headless MQTT, without a broker: URLs, settings, topics, documents, HA discovery, and the
publisher's change detection over a real `Store`. Device statuses, GPU views and snapshots are
the console's own (`DeviceStatus`, `GpuView`, priced by the real earnings model), and the job
queue is a real `JobQueue` over SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest

from console.config import MarketConfig, PowerConfig, check_config, format_problem, load_config
from console.economics import JobOffers, fleet_earnings
from console.fleet_inputs import FleetInputsBuilder, GpuEconomics
from console.gpu_site import JobsSeen
from console.headless.commands import SCHEMAS
from console.headless.discovery import discovery_document, identity
from console.headless.outbox import Outbox
from console.headless.payloads import (
    BridgeCounters,
    availability,
    device_document,
    encode_status,
    jobs_body,
    jobs_state,
    site_state,
    summarise,
)
from console.headless.publisher import Publisher
from console.headless.settings import SettingsError, resolve
from console.headless.topics import Topics, ha_object_id
from console.headless.transport import reconnect_delay_s
from console.headless.url import BrokerUrlError, parse_broker_url, redact
from console.market import REFERENCE_AS_OF, StaticMarket, market_at
from console.model import (
    CommandedMode,
    DeviceKind,
    DeviceStatus,
    Freshness,
    GpuJobView,
    GpuView,
    Observed,
    Snapshot,
)
from console.store import DeviceInfo, Store
from console.workloads.db import WorkloadDb
from console.workloads.queue import JobQueue, parse_job_spec
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState
from drivers.gpu_reading import GpuHealth, GpuReading, GpuSample, GpuStatic
from drivers.processes import ProcessIdentity
from tests.ha_discovery import render, validate

TOPICS = Topics("hp", "north", "homeassistant")


def asic_reading(hashrate_hs: float = 104e12) -> AsicReading:
    return AsicReading(
        firmware=Firmware.LUXOS,
        make="Antminer",
        model="Antminer S19j Pro",
        firmware_version="2024.1",
        hashrate_5s_hs=hashrate_hs,
        hashrate_avg_hs=hashrate_hs,
        nominal_hashrate_hs=104e12,
        power_w=3068.0,
        boards=(BoardReading(index=0, chips_found=126, temp_chip_c=71.5),),
        state=MinerState.MINING,
    )


def asic_status(**kw: object) -> DeviceStatus:
    fields: dict[str, object] = {
        "device_id": "row1.s19-01",
        "kind": DeviceKind.ASIC,
        "name": "row1.s19-01",
        "host": "192.0.2.10",
        "port": 4028,
        "model": "Antminer S19j Pro",
        "commanded": CommandedMode.MINING,
        "observed": Observed.HASHING,
        "freshness": Freshness.FRESH,
        "reading": asic_reading(),
        "last_ok_at": 1000.0,
    }
    fields.update(kw)
    return DeviceStatus(**fields)  # type: ignore[arg-type]


GPU_UUID = "GPU-5f2a0c1e-0000-4000-8000-000000000001"
MARKET = market_at(StaticMarket.from_config(MarketConfig(), PowerConfig()), REFERENCE_AS_OF)


def nvml_reading(power_w: float = 312.5, util_pct: float | None = 97.0) -> GpuReading:
    return GpuReading(
        static=GpuStatic(
            uuid=GPU_UUID,
            index=0,
            name="NVIDIA GeForce RTX 4090",
            pci_bus_id="00000000:01:00.0",
            memory_total_bytes=24 << 30,
            power_limit_default_w=450.0,
            driver_version="550.54",
        ),
        health=GpuHealth.OK,
        sample=GpuSample(taken_at=1000.0, power_w=power_w, temp_gpu_c=64.0, util_gpu_pct=util_pct),
    )


def mining_view(hashrate_hs: float = 61.5e6, power_w: float = 312.5) -> GpuView:
    """A GPU mining, as `GpuSide` records it: NVML, the state machine, and its miner's API."""
    return GpuView(
        uuid=GPU_UUID,
        nvml=nvml_reading(power_w),
        mode="mining",
        state="MINING",
        switching=False,
        mode_since=900.0,
        miner_pid=4242,
        miner_hashrate_hs=hashrate_hs,
        miner_algorithm="kawpow",
    )


def ai_view() -> GpuView:
    """The same GPU running an AI job: no miner, so no hashrate."""
    return GpuView(
        uuid=GPU_UUID,
        nvml=nvml_reading(380.0),
        mode="ai",
        state="AI_RUNNING",
        switching=False,
        mode_since=950.0,
        job=GpuJobView(
            id=7,
            name="finetune",
            customer="acme",
            state="running",
            rate_usd_per_gpu_hour=1.5,
            progress=0.25,
            runtime_s=600.0,
            earned_usd=0.25,
        ),
    )


def gpu_economics(status: DeviceStatus) -> GpuEconomics | None:
    """What the site's GPU side hands the earnings model, from the same fields it reads."""
    view = status.gpu
    if view is None:
        return None
    static = view.nvml.static if view.nvml else None
    doing = {"MINING": "mining", "AI_RUNNING": "ai"}.get(view.state, "idle")
    return GpuEconomics(
        mode=doing,  # type: ignore[arg-type]
        power_w=view.power_w,
        model=static.name if static else None,
        vram_bytes=static.memory_total_bytes if static else None,
        power_limit_w=static.power_limit_default_w if static else None,
        algorithm="kawpow",
        hashrate_hs=view.miner_hashrate_hs if doing == "mining" else None,
        mining_hashrate_hs=61.5e6,
        mining_power_w=312.5,
        job_rate_usd_per_hour=view.job.rate_usd_per_gpu_hour if view.job else None,
    )


def gpu_info(name: str = "rig1-gpu0") -> DeviceInfo:
    return DeviceInfo(
        device_id=name,
        kind=DeviceKind.GPU,
        name=name,
        host="localhost",
        port=0,
        model=None,
        interval_s=1.0,
        stale_after_s=3.0,
        lost_after_s=10.0,
    )


def priced(snapshot: Snapshot, builder: FleetInputsBuilder | None = None) -> Snapshot:
    """`snapshot` with market and earnings, as `Site.snapshot()` returns it."""
    inputs = (builder or FleetInputsBuilder(gpu_economics)).build(snapshot)
    offers = JobOffers(np.array([2.0]), np.array([16e9]))  # one queued job a 4090 fits
    earnings = fleet_earnings(inputs, MARKET, offers=offers)
    return msgspec.structs.replace(snapshot, market=MARKET, earnings=earnings)


def mixed_site(view: GpuView | None = None) -> Store:
    """A real store with an ASIC and a GPU that both have a reading at t=1000."""
    store = Store("north", [info("row1.s19-01"), gpu_info()], clock=lambda: 1000.5)
    store.record_ok("row1.s19-01", asic_reading(), at=1000.0)
    store.record_gpu("rig1-gpu0", view or mining_view(), 1000.0, None)
    return store


def gpu_status(view: GpuView | None = None) -> tuple[DeviceStatus, Snapshot]:
    snapshot = priced(mixed_site(view).snapshot())
    return snapshot.devices[1], snapshot


# ---- URLs and settings ---------------------------------------------------------------------


def test_broker_urls() -> None:
    url = parse_broker_url("mqtt://op%40site:p%2Fss@192.0.2.5:1884/sites/north")
    assert (url.tls, url.host, url.port, url.prefix) == (False, "192.0.2.5", 1884, "sites/north")
    assert (url.username, url.password) == ("op@site", "p/ss")
    tls = parse_broker_url("mqtts://broker.example")
    assert (tls.tls, tls.port, tls.prefix, tls.username) == (True, 8883, "hashpivot", None)
    assert parse_broker_url("mqtt://[::1]/x").host == "::1"
    assert redact("mqtt://u:secret@h/p") == "mqtt://u:***@h/p"
    for bad, words in [
        ("http://h", "scheme"),
        ("mqtt:///p", "no host"),
        ("mqtt://h/a/+/b", "level '+'"),
        ("mqtt://h/a//b", "level ''"),
        ("mqtt://h/p?insecure=1", "query"),
        ("mqtt://h:99999", "not a broker URL"),
    ]:
        with pytest.raises(BrokerUrlError) as info:
            parse_broker_url(bad)
        assert words in info.value.message, (bad, info.value.message)


def site_file(tmp_path: Path, mqtt: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nname = "north"\n[mqtt]\n{mqtt}')
    return path


def test_settings_precedence_and_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt.pass"
    secret.write_text("from-file\n")
    config = load_config(
        site_file(
            tmp_path,
            f'url = "mqtts://bridge@192.0.2.5/hp"\npassword_file = "{secret}"\n'
            f'ca_file = "{tmp_path / "ca.pem"}"\ncommands = true\n',
        )
    )
    s = resolve(config, env={})
    assert (s.broker.host, s.broker.port, s.prefix) == ("192.0.2.5", 8883, "hp")
    assert (s.broker.username, s.broker.password) == ("bridge", "from-file")
    assert s.broker.client_id == "hashpivot-north" and s.commands and s.discovery
    assert s.broker.tls is not None and not s.broker.tls.insecure
    # The command line's URL wins, with its own password.
    s = resolve(config, "mqtts://op:pw@192.0.2.6:9000/other", env={})
    assert (s.broker.host, s.broker.port, s.prefix, s.broker.password) == (
        "192.0.2.6",
        9000,
        "other",
        "pw",
    )
    assert "pw" not in s.url_shown
    # TLS files with a plain-TCP URL from the command line: refused, with what to do.
    with pytest.raises(SettingsError, match="use mqtts://"):
        resolve(config, "mqtt://192.0.2.6")


def test_mqtt_table_problems_name_the_key_and_the_fix(tmp_path: Path) -> None:
    path = site_file(
        tmp_path,
        'url = "mqtt://bridge:hunter2@192.0.2.5/hp"\nusername = "b"\n'
        'ca_file = "/etc/ca.pem"\nkey_file = "/etc/k.pem"\n'
        'password_env = "P"\npassword_file = "/etc/p"\ndiscovery_prefix = "home/+"\n',
    )
    problems = {p.key_path: p for p in check_config(path)}
    assert set(problems) == {
        "mqtt.url",
        "mqtt.username",
        "mqtt.ca_file",
        "mqtt.key_file",
        "mqtt.password_file",
        "mqtt.discovery_prefix",
    }
    url = problems["mqtt.url"]
    assert "password" in url.message and "password_env" in url.hint and url.line == 4
    assert "mqtts://" in problems["mqtt.ca_file"].hint
    text = format_problem(problems["mqtt.password_file"])
    assert text.startswith(f"{path}: mqtt (line 9): password_file: both password_env")
    bad = site_file(tmp_path, 'url = "http://192.0.2.5"\n')
    [problem] = check_config(bad)
    assert "expected mqtt:// or mqtts://" in problem.message and "mqtt://" in problem.hint
    # Certificate checks can only be given up explicitly, and only over TLS.
    assert (
        check_config(site_file(tmp_path, 'url = "mqtts://b.example/x"\ntls_insecure = true')) == []
    )
    [plain] = check_config(site_file(tmp_path, 'url = "mqtt://b.example/x"\ntls_insecure = true'))
    assert plain.key_path == "mqtt.tls_insecure"


def test_password_sources(tmp_path: Path) -> None:
    named = load_config(site_file(tmp_path, 'username = "b"\npassword_env = "MY_PASS"\n'))
    assert resolve(named, env={"MY_PASS": "x"}).broker.password == "x"
    with pytest.raises(SettingsError, match="MY_PASS, which is not set"):
        resolve(named, env={})
    default = load_config(site_file(tmp_path, 'username = "b"\n'))
    assert resolve(default, env={"HASHPIVOT_MQTT_PASSWORD": "d"}).broker.password == "d"
    anonymous = load_config(site_file(tmp_path))
    assert resolve(anonymous, env={"HASHPIVOT_MQTT_PASSWORD": "d"}).broker.password is None
    missing = load_config(site_file(tmp_path, f'username = "b"\npassword_file = "{tmp_path}/no"'))
    with pytest.raises(SettingsError, match="cannot be read"):
        resolve(missing, env={})


def test_reconnect_delay_doubles_to_a_cap_with_jitter() -> None:
    ceilings = [reconnect_delay_s(n, 0.5, 60, 1.0 - 1e-12) for n in range(12)]
    assert ceilings[:4] == pytest.approx([0.5, 1.0, 2.0, 4.0])
    assert max(ceilings) == pytest.approx(60)
    assert reconnect_delay_s(3, 0.5, 60, 0.0) == pytest.approx(2.0)  # half the ceiling
    assert reconnect_delay_s(10_000, 0.5, 60, 0.5) <= 60  # no overflow after a long outage


# ---- topics ---------------------------------------------------------------------------------


def test_topics_and_ids() -> None:
    assert TOPICS.device_state("m1") == "hp/v1/north/device/m1/state"
    assert TOPICS.device_availability("m1") == "hp/v1/north/device/m1/availability"
    assert TOPICS.bridge_availability == "hp/v1/north/bridge/availability"
    assert TOPICS.reply("r-1") == "hp/v1/north/reply/r-1"
    assert TOPICS.parse_command("hp/v1/north/cmd/asic.curtail") == ("asic.curtail", None)
    assert TOPICS.parse_command("hp/v1/north/cmd/asic.wake/alice") == ("asic.wake", "alice")
    assert TOPICS.parse_command("hp/v1/north/cmd/a/b/c") is None
    assert TOPICS.parse_command("hp/v1/south/cmd/asic.wake") is None
    assert ha_object_id("north", "m-1_a") == "hashpivot_north_m-1_a"
    dotted, underscored = ha_object_id("north", "a.b"), ha_object_id("north", "a_b")
    assert dotted != underscored and dotted.startswith("hashpivot_north_a_b_")


# ---- device documents -----------------------------------------------------------------------


def test_device_document_carries_the_whole_status_and_a_summary() -> None:
    status = asic_status()
    doc = json.loads(device_document(status, encode_status(status), 1001.5))
    assert doc["schema"] == "hashpivot.mqtt.device/1" and doc["ts"] == 1001.5
    assert doc["summary"] == {
        "hashrate_hs": 104e12,
        "power_w": 3068.0,
        "temp_c": 71.5,
        "profit_usd_per_day": None,
        "gpu_util_pct": None,
    }
    assert doc["earnings"] is None  # not priced: unknown, not 0
    assert doc["device_id"] == "row1.s19-01" and doc["commanded"] == "mining"
    assert doc["reading"]["firmware"] == "luxos" and doc["problem"] is False
    assert availability(status) == b"online"


def test_priced_asic_document_carries_its_earnings_row() -> None:
    snapshot = priced(mixed_site().snapshot())
    assert snapshot.earnings is not None
    status, row = snapshot.devices[0], snapshot.earnings.by_id("row1.s19-01")
    assert row is not None and row.profit_usd_per_day is not None
    doc = json.loads(device_document(status, encode_status(status), 1001.0, row))
    assert doc["summary"]["profit_usd_per_day"] == pytest.approx(row.profit_usd_per_day)
    earnings = doc["earnings"]
    assert earnings == msgspec.to_builtins(row)  # the snapshot JSON's per-device shape
    assert earnings["revenue_usd_per_day"] > 0 and earnings["power_cost_usd_per_day"] > 0
    assert earnings["profit_usd_per_day"] == pytest.approx(
        earnings["revenue_usd_per_day"] - earnings["power_cost_usd_per_day"]
    )
    assert earnings["mode"] is None and earnings["switch_gain_usd_per_day"] is None  # an ASIC


def test_lost_device_reports_nothing_current_and_is_offline() -> None:
    lost = asic_status(freshness=Freshness.LOST, observed=Observed.UNKNOWN)
    assert summarise(lost) == summarise(asic_status(reading=None))
    assert summarise(lost).power_w is None
    assert availability(lost) == b"offline"
    assert availability(asic_status(freshness=Freshness.STALE)) == b"online"
    assert availability(asic_status(freshness=Freshness.PENDING, reading=None)) == b"offline"
    status, snapshot = gpu_status()
    lost_gpu = msgspec.structs.replace(status, freshness=Freshness.LOST)
    assert snapshot.earnings is not None
    assert summarise(lost_gpu, snapshot.earnings.by_id("rig1-gpu0")).hashrate_hs is None


def test_mining_gpu_summary_is_its_miner_nvml_and_earnings() -> None:
    status, snapshot = gpu_status(mining_view(hashrate_hs=61.5e6))
    assert snapshot.earnings is not None
    row = snapshot.earnings.by_id("rig1-gpu0")
    assert row is not None and row.mode == "mining" and row.other_mode == "ai"
    summary = summarise(status, row)
    assert summary.hashrate_hs == 61.5e6  # from the miner's API, not NVML
    assert (summary.power_w, summary.temp_c, summary.gpu_util_pct) == (312.5, 64.0, 97.0)
    assert summary.profit_usd_per_day == pytest.approx(row.profit_usd_per_day)
    doc = json.loads(device_document(status, encode_status(status), 1001.0, row))
    assert doc["gpu"]["state"] == "MINING" and doc["gpu"]["miner_hashrate_hs"] == 61.5e6
    assert doc["gpu"]["nvml"]["static"]["uuid"] == GPU_UUID and doc["reading"] is None
    assert doc["earnings"]["switch_gain_usd_per_day"] == pytest.approx(row.switch_gain_usd_per_day)
    assert doc["earnings"]["other_profit_usd_per_day"] is not None


def test_ai_gpu_has_no_hashrate_and_carries_its_job() -> None:
    status, snapshot = gpu_status(ai_view())
    assert snapshot.earnings is not None
    row = snapshot.earnings.by_id("rig1-gpu0")
    assert row is not None and row.mode == "ai" and row.revenue_usd_per_day
    summary = summarise(status, row)
    assert summary.hashrate_hs is None and summary.power_w == 380.0  # no miner: unknown
    doc = json.loads(device_document(status, encode_status(status), 1001.0, row))
    assert doc["observed"] == "running_job" and doc["commanded"] == "ai"
    assert doc["gpu"]["job"]["name"] == "finetune" and doc["gpu"]["job"]["progress"] == 0.25
    # A GPU NVML cannot read: known mode and state, unknown numbers.
    blind = msgspec.structs.replace(ai_view(), nvml=None)
    unknown = summarise(msgspec.structs.replace(status, gpu=blind))
    assert (unknown.power_w, unknown.temp_c, unknown.gpu_util_pct) == (None, None, None)


def test_site_state_has_totals_host_and_bridge_counters(tmp_path: Path) -> None:
    store = Store("north", [info("m1")], clock=lambda: 2000.0)
    store.record_ok("m1", asic_reading(), at=1999.0)
    counters = BridgeCounters(
        connected=True,
        connects=1,
        published=10,
        queued=0,
        coalesced=3,
        dropped=1,
        commands=0,
        commands_refused=0,
    )
    body, document = site_state(store.snapshot(), counters)
    doc = json.loads(document)
    assert doc["schema"] == "hashpivot.mqtt.site/1" and doc["ts"] == 2000.0
    assert doc["totals"]["devices"] == 1 and doc["totals"]["hashrate_hs"] == 104e12
    assert doc["bridge"]["coalesced"] == 3 and doc["bridge"]["dropped"] == 1
    assert "devices" not in doc and b'"ts"' not in body


# ---- Home Assistant discovery ---------------------------------------------------------------


def check_entities(
    status: DeviceStatus, *, commands: bool, snapshot: Snapshot | None = None
) -> dict[str, object]:
    """Validate the discovery document of `status` and render every entity against its state
    document; `snapshot`: the priced snapshot it comes from (its earnings row goes in)."""
    fleet = snapshot.earnings if snapshot is not None else None
    row = fleet.by_id(status.device_id) if fleet is not None else None
    topic = TOPICS.discovery(ha_object_id("north", status.device_id))
    ident = identity(status, priced=fleet is not None)
    doc = validate(topic, discovery_document(status, TOPICS, commands=commands, ident=ident))
    state_bytes = device_document(status, encode_status(status), 1000.0, row)
    state = json.loads(state_bytes)
    values: dict[str, object] = {}
    for key, component in doc["components"].items():
        assert component["state_topic"] == TOPICS.device_state(status.device_id)
        avail = [a["t"] for a in component["availability"]]
        assert avail == [TOPICS.bridge_availability, TOPICS.device_availability(status.device_id)]
        assert component["availability_mode"] == "all"
        values[key] = render(component["value_template"], value_json=state)
    return {"doc": doc, "values": values, "state": state_bytes}


def test_asic_discovery_is_valid_and_its_templates_read_the_state() -> None:
    checked = check_entities(asic_status(), commands=True)
    doc, values = checked["doc"], checked["values"]
    assert isinstance(doc, dict) and isinstance(values, dict)
    assert set(doc["components"]) == {"hashrate", "power", "temperature"}  # no earnings yet
    assert values == {"hashrate": "104.0", "power": "3068.0", "temperature": "71.5"}
    assert doc["device"]["identifiers"] == [doc["object_id"]]
    assert doc["device"]["manufacturer"] == "Antminer"
    assert doc["device"]["sw_version"] == "2024.1"
    # Unknown values render as None (HA: "unknown"), never 0.
    blank = check_entities(asic_status(reading=None), commands=True)["values"]
    assert blank == {"hashrate": "None", "power": "None", "temperature": "None"}


def test_gpu_discovery_has_a_mode_select_that_sends_a_valid_switch_command() -> None:
    status, snapshot = gpu_status(ai_view())
    checked = check_entities(status, commands=True, snapshot=snapshot)
    doc, values = checked["doc"], checked["values"]
    assert isinstance(doc, dict) and isinstance(values, dict)
    components = doc["components"]
    assert set(components) == {
        "hashrate",
        "power",
        "temperature",
        "profit",
        "utilisation",
        "state",
        "job",
        "switch_gain",
        "mode",
    }
    assert components["hashrate"]["unit_of_measurement"] == "MH/s"
    assert values["hashrate"] == "None"  # running a job: no miner, no hashrate
    assert values["power"] == "380.0" and values["temperature"] == "64.0"
    assert values["utilisation"] == "97.0"
    assert values["state"] == "AI_RUNNING" and values["job"] == "finetune"
    state = json.loads(checked["state"])  # type: ignore[arg-type]
    assert values["mode"] == "ai" and float(values["profit"]) == pytest.approx(
        state["earnings"]["profit_usd_per_day"], abs=0.01
    )
    assert float(values["switch_gain"]) < 0  # mining would earn less than the job pays
    mode = components["mode"]
    assert mode["platform"] == "select" and mode["options"] == ["mining", "ai", "idle"]
    assert values["mode"] in mode["options"]
    assert mode["command_topic"] == TOPICS.command("gpu.switch")
    sent = render(mode["command_template"], value="mining").encode()
    command = msgspec.json.decode(sent, type=SCHEMAS["gpu.switch"])
    assert command.target() == "rig1-gpu0" and command.params() == {"mode": "mining"}
    assert doc["device"]["manufacturer"] == "NVIDIA"
    assert doc["device"]["model"] == "NVIDIA GeForce RTX 4090"
    assert doc["device"]["sw_version"] == "550.54"


def test_gpu_entities_of_a_mining_gpu_and_of_one_not_yet_seen() -> None:
    status, snapshot = gpu_status(mining_view(hashrate_hs=61.5e6))
    values = check_entities(status, commands=True, snapshot=snapshot)["values"]
    assert isinstance(values, dict)
    assert values["hashrate"] == "61.5" and values["state"] == "MINING"
    assert values["job"] == "none"  # no job: a known state, not unknown
    # Before the first GPU tick there is no view and no earnings: every entity is unknown.
    store = Store("north", [gpu_info()], clock=lambda: 1000.5)
    fresh = priced(store.snapshot())
    pending = fresh.devices[0]
    assert pending.gpu is None and pending.freshness is Freshness.PENDING
    values = check_entities(pending, commands=True, snapshot=fresh)["values"]
    assert isinstance(values, dict)
    assert {v for k, v in values.items() if k != "mode"} == {"None"}


def test_gpu_mode_is_read_only_while_commands_are_off() -> None:
    status, snapshot = gpu_status()
    doc = check_entities(status, commands=False, snapshot=snapshot)["doc"]
    assert isinstance(doc, dict)
    assert doc["components"]["mode"]["platform"] == "sensor"
    assert "command_topic" not in doc["components"]["mode"]
    assert all(c["platform"] == "sensor" for c in doc["components"].values())


def test_identity_follows_the_sites_pricing_and_the_gpus_nvml_identity() -> None:
    status, _snapshot = gpu_status()
    assert identity(status, priced=True).has_profit
    assert not identity(status).has_profit
    ident = identity(status)
    assert (ident.manufacturer, ident.model, ident.firmware) == (
        "NVIDIA",
        "NVIDIA GeForce RTX 4090",
        "550.54",
    )
    assert identity(msgspec.structs.replace(status, gpu=None)).firmware is None


# ---- the publisher over a real store --------------------------------------------------------


def info(device_id: str) -> DeviceInfo:
    return DeviceInfo(
        device_id=device_id,
        kind=DeviceKind.ASIC,
        name=device_id,
        host="192.0.2.1",
        port=4028,
        model="Antminer S19j Pro",
        interval_s=30,
        stale_after_s=75,
        lost_after_s=300,
    )


def counters() -> BridgeCounters:
    return BridgeCounters(
        connected=True,
        connects=1,
        published=0,
        queued=0,
        coalesced=0,
        dropped=0,
        commands=0,
        commands_refused=0,
    )


def test_publisher_sends_only_changes_and_transition_events() -> None:
    now = [1000.0]
    store = Store("north", [info("m1"), info("m2")], clock=lambda: now[0])
    outbox = Outbox(1000)
    publisher = Publisher(TOPICS, outbox, discovery=True, commands=False, full_refresh_s=300)
    store.record_ok("m1", asic_reading(), at=now[0])
    store.record_ok("m2", asic_reading(), at=now[0])
    publisher.publish(store.snapshot(), counters())
    first = {m.topic for m in outbox.take_all()}
    for device in ("m1", "m2"):
        assert {TOPICS.device_state(device), TOPICS.device_availability(device)} <= first
        assert TOPICS.discovery(ha_object_id("north", device)) in first
    assert {TOPICS.site_state, TOPICS.jobs_state} <= first

    now[0] += 1
    store.record_ok("m1", asic_reading(90e12), at=now[0])  # only m1 changed
    publisher.publish(store.snapshot(), counters())
    second = {m.topic for m in outbox.take_all()}
    assert TOPICS.device_state("m1") in second and TOPICS.device_state("m2") not in second
    assert TOPICS.jobs_state not in second  # the (empty) queue did not change
    assert not any("availability" in t or "homeassistant" in t for t in second)

    now[0] += 400  # m2 has not answered for 400 s: lost
    store.record_ok("m1", asic_reading(), at=now[0])
    publisher.publish(store.snapshot(), counters())
    third = {m.topic: m for m in outbox.take_all()}
    assert third[TOPICS.device_availability("m2")].payload == b"offline"
    lost = json.loads(third[TOPICS.device_events("m2")].payload)
    assert (lost["event"], lost["previous"], lost["freshness"]) == ("lost", "fresh", "lost")
    assert not third[TOPICS.device_events("m2")].retain

    publisher.refresh()  # after a reconnect: everything again, no repeated events
    publisher.publish(store.snapshot(), counters())
    fourth = {m.topic for m in outbox.take_all()}
    assert {TOPICS.device_state("m1"), TOPICS.device_state("m2")} <= fourth
    assert not any("/events/" in t for t in fourth)


def test_earnings_follow_status_changes_and_the_full_refresh() -> None:
    now = [1000.5]
    store = Store("north", [info("row1.s19-01"), gpu_info()], clock=lambda: now[0])
    store.record_ok("row1.s19-01", asic_reading(), at=1000.0)
    store.record_gpu("rig1-gpu0", mining_view(), 1000.0, None)
    builder = FleetInputsBuilder(gpu_economics)
    outbox = Outbox(1000)
    publisher = Publisher(TOPICS, outbox, discovery=True, commands=True, full_refresh_s=300)
    publisher.publish(priced(store.snapshot(), builder), counters())
    first = {m.topic: m for m in outbox.take_all()}
    gpu_doc = json.loads(first[TOPICS.device_state("rig1-gpu0")].payload)
    assert gpu_doc["earnings"]["mode"] == "mining" and gpu_doc["summary"]["hashrate_hs"] == 61.5e6
    discovery = json.loads(first[TOPICS.discovery(ha_object_id("north", "rig1-gpu0"))].payload)
    assert {"profit", "switch_gain", "mode", "job"} <= set(discovery["cmps"])

    # The same statuses priced at another power price: no device document is re-sent (the
    # status objects are the ones already published); the site's earnings are.
    cheaper = msgspec.structs.replace(
        MARKET,
        power_price_usd_per_kwh=msgspec.structs.replace(MARKET.power_price_usd_per_kwh, value=0.01),
    )
    snapshot = store.snapshot()
    inputs = builder.build(snapshot)
    repriced = msgspec.structs.replace(
        snapshot, market=cheaper, earnings=fleet_earnings(inputs, cheaper)
    )
    publisher.publish(repriced, counters())
    second = {m.topic for m in outbox.take_all()}
    assert second == {TOPICS.site_state}

    # A new reading of the GPU: its document carries the earnings of that snapshot.
    now[0] += 1
    store.record_gpu("rig1-gpu0", mining_view(hashrate_hs=70e6), now[0], None)
    snapshot = store.snapshot()
    fleet = fleet_earnings(builder.build(snapshot), cheaper)
    publisher.publish(msgspec.structs.replace(snapshot, earnings=fleet), counters())
    third = {m.topic: m for m in outbox.take_all()}
    assert TOPICS.device_state("row1.s19-01") not in third
    doc = json.loads(third[TOPICS.device_state("rig1-gpu0")].payload)
    row = fleet.by_id("rig1-gpu0")
    assert row is not None and doc["earnings"] == msgspec.to_builtins(row)
    assert doc["summary"]["hashrate_hs"] == 70e6

    # The full refresh re-sends the ASIC too, with the earnings of now.
    now[0] += 400
    store.record_ok("row1.s19-01", asic_reading(), at=now[0])
    snapshot = store.snapshot()
    publisher.publish(
        msgspec.structs.replace(
            snapshot, earnings=fleet_earnings(builder.build(snapshot), cheaper)
        ),
        counters(),
    )
    fourth = {m.topic: m for m in outbox.take_all()}
    asic_doc = json.loads(fourth[TOPICS.device_state("row1.s19-01")].payload)
    first_asic = json.loads(first[TOPICS.device_state("row1.s19-01")].payload)
    assert asic_doc["earnings"]["profit_usd_per_day"] > first_asic["earnings"]["profit_usd_per_day"]


# ---- the AI job queue -----------------------------------------------------------------------


async def test_jobs_state_lists_the_real_queue_without_argv_or_env(tmp_path: Path) -> None:
    clock = [5000.0]
    db = WorkloadDb.in_state_dir(tmp_path / "state")
    queue = JobQueue(db, tmp_path / "state" / "jobs", clock=lambda: clock[0])
    try:
        running = await queue.submit(
            parse_job_spec(
                {
                    "argv": ["python", "train.py", "--api-key", "key-in-argv"],
                    "name": "finetune",
                    "customer": "acme",
                    "rate_usd_per_gpu_hour": 1.8,
                    "priority": 3,
                    "env": {"HF_TOKEN": "token-in-env"},
                }
            ),
            submitted_by="alice",
        )
        waiting = await queue.submit(
            parse_job_spec({"argv": ["x"], "name": "eval", "min_vram_bytes": 40_000_000_000})
        )
        await queue.claim_next(GPU_UUID, None)
        await queue.mark_launched(
            running.id, ProcessIdentity(pid=77, create_time=1.0, cmdline=("python",))
        )
        await queue.mark_running(running.id)
        clock[0] += 600  # ten minutes into its run
        for n in range(60):  # a long history of finished jobs
            old = await queue.submit(parse_job_spec({"argv": ["x"], "name": f"old-{n}"}))
            await queue.cancel(old.id)
            clock[0] += 1
        seen = JobsSeen(clock[0], tuple(await queue.list_jobs()))
    finally:
        db.close()

    body = jobs_body(seen)
    assert b"key-in-argv" not in body and b"token-in-env" not in body and b"argv" not in body
    doc = json.loads(jobs_state(body, seen.at or 0.0))
    assert doc["schema"] == "hashpivot.mqtt.jobs/1" and doc["ts"] == seen.at
    jobs = doc["jobs"]
    first, second = jobs[0], jobs[1]
    assert (first["name"], first["state"], first["gpu_uuid"]) == ("finetune", "running", GPU_UUID)
    assert (first["customer"], first["priority"], first["rate_usd_per_gpu_hour"]) == (
        "acme",
        3,
        1.8,
    )
    assert first["runtime_s"] == pytest.approx(660.0)  # 600 s + the 60 s of history
    assert first["earned_usd"] == pytest.approx(660.0 / 3600 * 1.8)
    assert (second["name"], second["state"], second["gpu_uuid"]) == ("eval", "queued", None)
    assert second["min_vram_bytes"] == 40_000_000_000 and second["runtime_s"] == 0
    # Finished jobs: only the most recent 50, newest first.
    finished = jobs[2:]
    assert len(finished) == 50 and {j["state"] for j in finished} == {"cancelled"}
    assert finished[0]["name"] == "old-59" and finished[-1]["name"] == "old-10"
    assert waiting.id == second["id"]


def test_publisher_sends_the_job_queue_when_it_changes() -> None:
    store = Store("north", [info("m1")], clock=lambda: 1000.0)
    outbox = Outbox(100)
    seen = [JobsSeen(None, ())]
    publisher = Publisher(
        TOPICS, outbox, discovery=False, commands=False, full_refresh_s=300, jobs=lambda: seen[0]
    )
    publisher.publish(store.snapshot(), counters())
    empty = {m.topic: m for m in outbox.take_all()}[TOPICS.jobs_state]
    assert json.loads(empty.payload) == {
        "schema": "hashpivot.mqtt.jobs/1",
        "ts": 1000.0,
        "jobs": [],
    }
    publisher.publish(store.snapshot(), counters())
    assert TOPICS.jobs_state not in {m.topic for m in outbox.take_all()}


def test_a_look_cut_short_by_the_next_one_still_publishes_every_change() -> None:
    """The bridge encodes a look in slices; when the next look (or a reconnect's publish) starts
    before the last slice, the devices not reached yet are published with the next one."""
    now = [1000.0]
    ids = [f"m{i}" for i in range(5)]
    store = Store("north", [info(i) for i in ids], clock=lambda: now[0])
    outbox = Outbox(1000)
    publisher = Publisher(TOPICS, outbox, discovery=False, commands=False, full_refresh_s=300)
    for device in ids:
        store.record_ok(device, asic_reading(), at=now[0])
    publisher.publish(store.snapshot(), counters())
    outbox.take_all()

    now[0] += 1
    for device in ids:
        store.record_ok(device, asic_reading(90e12), at=now[0])
    assert publisher.begin(store.snapshot()) == 5
    publisher.publish_pending(2)
    assert publisher.pending == 3
    now[0] += 0.25
    store.record_ok("m4", asic_reading(100e12), at=now[0])  # one of those left changes again
    assert publisher.begin(store.snapshot()) == 3
    publisher.publish_pending()
    assert publisher.pending == 0
    states = {m.topic: json.loads(m.payload) for m in outbox.take_all()}
    assert set(states) == {TOPICS.device_state(i) for i in ids}
    assert states[TOPICS.device_state("m4")]["reading"]["hashrate_5s_hs"] == 100e12
    assert publisher.begin(store.snapshot()) == 0  # nothing left over


def test_earnings_rows_are_found_by_id_when_not_in_the_snapshot_order() -> None:
    """A snapshot combined with earnings built from another device order (or a subset) still
    gets each device's own row, and None for a device the earnings do not cover."""
    store = Store("north", [info("m1"), info("m2"), info("m3")], clock=lambda: 1000.5)
    other = Store("north", [info("m2"), info("m1")], clock=lambda: 1000.5)
    for s, hashrate in ((store, 90e12), (other, 90e12)):
        s.record_ok("m1", asic_reading(hashrate), at=1000.0)
        s.record_ok("m2", asic_reading(100e12), at=1000.0)
    store.record_ok("m3", asic_reading(), at=1000.0)
    fleet = priced(other.snapshot()).earnings
    assert fleet is not None
    outbox = Outbox(1000)
    publisher = Publisher(TOPICS, outbox, discovery=False, commands=False, full_refresh_s=300)
    publisher.publish(msgspec.structs.replace(store.snapshot(), earnings=fleet), counters())
    docs = {m.topic: json.loads(m.payload) for m in outbox.take_all() if m.qos == 0}
    for device in ("m1", "m2"):
        row = fleet.by_id(device)
        assert row is not None
        assert docs[TOPICS.device_state(device)]["earnings"] == msgspec.to_builtins(row)
    assert docs[TOPICS.device_state("m3")]["earnings"] is None
