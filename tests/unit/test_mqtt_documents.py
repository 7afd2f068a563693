"""Headless MQTT, without a broker: URLs, settings, topics, documents, HA discovery, and the
publisher's change detection over a real `Store`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import msgspec
import pytest

from console.config import check_config, format_problem, load_config
from console.headless.commands import SCHEMAS
from console.headless.discovery import discovery_document, identity
from console.headless.outbox import Outbox
from console.headless.payloads import (
    BridgeCounters,
    availability,
    device_document,
    encode_status,
    site_state,
    summarise,
)
from console.headless.publisher import Publisher
from console.headless.settings import SettingsError, resolve
from console.headless.topics import Topics, ha_object_id
from console.headless.transport import reconnect_delay_s
from console.headless.url import BrokerUrlError, parse_broker_url, redact
from console.model import CommandedMode, DeviceKind, DeviceStatus, Freshness, Observed
from console.store import DeviceInfo, Store
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState
from drivers.gpu_reading import GpuHealth, GpuReading, GpuSample, GpuStatic
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


class Earnings(msgspec.Struct, frozen=True, kw_only=True):
    """Stands in for the earnings the economics work will attach to a device."""

    revenue_usd_per_day: float
    profit_usd_per_day: float


class GpuStatus(DeviceStatus, frozen=True, kw_only=True):
    """A GPU's status as the GPU work will carry it: the NVML reading in its own field
    (`summarise` and `identity` find readings by type, not by field name)."""

    gpu: GpuReading | None = None
    earnings: Earnings | None = None


def gpu_status(**kw: object) -> GpuStatus:
    reading = GpuReading(
        static=GpuStatic(
            uuid="GPU-5f2a",
            index=0,
            name="NVIDIA GeForce RTX 4090",
            pci_bus_id="00000000:01:00.0",
            memory_total_bytes=24 << 30,
            driver_version="550.54",
        ),
        health=GpuHealth.OK,
        sample=GpuSample(taken_at=1000.0, power_w=312.5, temp_gpu_c=64.0),
    )
    fields: dict[str, object] = {
        "device_id": "rig1-gpu0",
        "kind": DeviceKind.GPU,
        "name": "rig1-gpu0",
        "host": "localhost",
        "port": 0,
        "model": None,
        "commanded": CommandedMode.AI,
        "observed": Observed.RUNNING_JOB,
        "freshness": Freshness.FRESH,
        "gpu": reading,
        "earnings": Earnings(revenue_usd_per_day=4.1, profit_usd_per_day=2.35),
    }
    fields.update(kw)
    return GpuStatus(**fields)  # type: ignore[arg-type]


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
    }
    assert doc["device_id"] == "row1.s19-01" and doc["commanded"] == "mining"
    assert doc["reading"]["firmware"] == "luxos" and doc["problem"] is False
    assert availability(status) == b"online"


def test_lost_device_reports_nothing_current_and_is_offline() -> None:
    lost = asic_status(freshness=Freshness.LOST, observed=Observed.UNKNOWN)
    assert summarise(lost) == summarise(asic_status(reading=None))
    assert summarise(lost).power_w is None
    assert availability(lost) == b"offline"
    assert availability(asic_status(freshness=Freshness.STALE)) == b"online"
    assert availability(asic_status(freshness=Freshness.PENDING, reading=None)) == b"offline"


def test_gpu_summary_from_its_reading_and_earnings() -> None:
    summary = summarise(gpu_status())
    assert (summary.power_w, summary.temp_c, summary.profit_usd_per_day) == (312.5, 64.0, 2.35)
    assert summary.hashrate_hs is None  # no GPU miner reading yet: unknown, not 0
    nan = gpu_status(earnings=Earnings(revenue_usd_per_day=1, profit_usd_per_day=math.nan))
    assert summarise(nan).profit_usd_per_day is None


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


def check_entities(status: DeviceStatus, *, commands: bool) -> dict[str, object]:
    topic = TOPICS.discovery(ha_object_id("north", status.device_id))
    doc = validate(topic, discovery_document(status, TOPICS, commands=commands))
    state = json.loads(device_document(status, encode_status(status), 1000.0))
    values: dict[str, object] = {}
    for key, component in doc["components"].items():
        assert component["state_topic"] == TOPICS.device_state(status.device_id)
        avail = [a["t"] for a in component["availability"]]
        assert avail == [TOPICS.bridge_availability, TOPICS.device_availability(status.device_id)]
        assert component["availability_mode"] == "all"
        values[key] = render(component["value_template"], value_json=state)
    return {"doc": doc, "values": values}


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
    status = gpu_status()
    checked = check_entities(status, commands=True)
    doc, values = checked["doc"], checked["values"]
    assert isinstance(doc, dict) and isinstance(values, dict)
    components = doc["components"]
    assert set(components) == {"hashrate", "power", "temperature", "profit", "mode"}
    assert components["hashrate"]["unit_of_measurement"] == "MH/s"
    assert values["power"] == "312.5" and values["temperature"] == "64.0"
    assert values["profit"] == "2.35" and values["mode"] == "ai"
    mode = components["mode"]
    assert mode["platform"] == "select" and mode["options"] == ["mining", "ai", "idle"]
    assert values["mode"] in mode["options"]
    assert mode["command_topic"] == TOPICS.command("gpu.switch")
    sent = render(mode["command_template"], value="mining").encode()
    command = msgspec.json.decode(sent, type=SCHEMAS["gpu.switch"])
    assert command.target() == "rig1-gpu0" and command.params() == {"mode": "mining"}
    assert doc["device"]["manufacturer"] == "NVIDIA"
    assert doc["device"]["model"] == "NVIDIA GeForce RTX 4090"


def test_gpu_mode_is_read_only_while_commands_are_off() -> None:
    doc = check_entities(gpu_status(), commands=False)["doc"]
    assert isinstance(doc, dict)
    assert doc["components"]["mode"]["platform"] == "sensor"
    assert "command_topic" not in doc["components"]["mode"]
    assert all(c["platform"] == "sensor" for c in doc["components"].values())


def test_identity_changes_when_earnings_appear() -> None:
    assert identity(gpu_status()).has_profit
    assert not identity(gpu_status(earnings=None)).has_profit


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
