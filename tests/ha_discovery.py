"""Checks a device-based discovery payload the way Home Assistant's MQTT integration does.

Written from HA's documentation and its discovery schema (`components/mqtt/schemas.py`
`DEVICE_DISCOVERY_SCHEMA`, `abbreviations.py`, the sensor and select platform schemas):

* abbreviations are expanded first (`dev` → device, `cmps` → components, `p` → platform, ...);
* `device` needs `identifiers` or `connections`; `origin` needs `name`; `components` maps ids
  to configs that each name a supported `platform`;
* shared options (state/command topics, availability) are inherited by each component;
* availability: a list of `{topic, payload_available, payload_not_available}` with a valid
  subscribe topic, and `availability_mode` one of all / any / latest;
* sensor: needs a state topic; device_class / unit pairs must be ones HA accepts;
  select: needs `command_topic` (no wildcards) and non-empty `options`;
* object ids and unique ids: `[a-zA-Z0-9_-]`, unique ids unique.

Unlike HA, which ignores unknown keys, this checker refuses them: an unknown key is almost
always a typo that HA would silently drop. `render` evaluates a value template with Jinja2
(HA's template engine) against a real state document.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2

ABBREVIATIONS = {
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "cmd_t": "command_topic",
    "cmd_tpl": "command_template",
    "cmps": "components",
    "dev": "device",
    "dev_cla": "device_class",
    "ic": "icon",
    "name": "name",
    "o": "origin",
    "ops": "options",
    "p": "platform",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "qos": "qos",
    "stat_cla": "state_class",
    "stat_t": "state_topic",
    "t": "topic",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS = {
    "cns": "connections",
    "cu": "configuration_url",
    "ids": "identifiers",
    "name": "name",
    "mf": "manufacturer",
    "mdl": "model",
    "sw": "sw_version",
    "hw": "hw_version",
    "sn": "serial_number",
    "sa": "suggested_area",
}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

SHARED = {
    "availability",
    "availability_mode",
    "availability_topic",
    "command_topic",
    "payload_available",
    "payload_not_available",
    "state_topic",
}
TOP_LEVEL = SHARED | {"device", "origin", "components", "qos", "encoding"}
COMMON_ENTITY = {"platform", "name", "unique_id", "icon", "value_template", "qos"}
PLATFORM_KEYS = {
    "sensor": COMMON_ENTITY | {"device_class", "unit_of_measurement", "state_class"},
    "select": COMMON_ENTITY | {"command_template", "options"},
}
SUPPORTED_PLATFORMS = {
    "alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover",
    "device_tracker", "event", "fan", "humidifier", "image", "lawn_mower", "light", "lock",
    "notify", "number", "scene", "select", "sensor", "siren", "switch", "tag", "text",
    "update", "vacuum", "valve", "water_heater",
}  # fmt: skip
SENSOR_UNITS = {"power": {"W", "kW", "MW", "mW"}, "temperature": {"°C", "°F", "K"}}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
ID = re.compile(r"^[a-zA-Z0-9_-]+$")
DISCOVERY_TOPIC = re.compile(r"^(?P<prefix>.+)/device/(?P<object_id>[a-zA-Z0-9_-]+)/config$")


def _expand(mapping: dict[str, Any], table: dict[str, str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        full = table.get(key, key)
        if full in out:
            raise AssertionError(f"{where}: {key!r} given twice (abbreviated and in full)")
        out[full] = value
    return out


def _subscribe_topic(topic: object, where: str) -> None:
    assert isinstance(topic, str) and topic, f"{where}: topic must be a non-empty string"
    for level in topic.split("/"):
        if "#" in level or "+" in level:
            assert level in ("#", "+"), f"{where}: bad wildcard in {topic!r}"
    assert "#" not in topic[:-1], f"{where}: '#' only as the last level: {topic!r}"


def _publish_topic(topic: object, where: str) -> None:
    assert isinstance(topic, str) and topic, f"{where}: topic must be a non-empty string"
    assert "+" not in topic and "#" not in topic, f"{where}: wildcard in publish topic {topic!r}"


def validate(topic: str, payload: bytes) -> dict[str, Any]:
    """Validate one discovery message; returns it expanded, each component with inherited
    shared options, so tests can look inside. Raises AssertionError naming the problem."""
    match = DISCOVERY_TOPIC.match(topic)
    assert match, f"not a device discovery topic: {topic!r}"
    doc = json.loads(payload)
    assert isinstance(doc, dict), "payload must be a JSON object"
    doc = _expand(doc, ABBREVIATIONS, "top level")
    unknown = set(doc) - TOP_LEVEL
    assert not unknown, f"unknown top-level keys {unknown}"

    device = _expand(doc["device"], DEVICE_ABBREVIATIONS, "device")
    unknown = set(device) - set(DEVICE_ABBREVIATIONS.values()) - {"via_device"}
    assert not unknown, f"unknown device keys {unknown}"
    assert device.get("identifiers") or device.get("connections"), "device needs identifiers"
    ids = device.get("identifiers")
    assert isinstance(ids, list | str), "identifiers: a list of strings"
    for key in ("name", "manufacturer", "model", "sw_version"):
        if key in device:
            assert isinstance(device[key], str), f"device.{key} must be a string"

    origin = _expand(doc["origin"], ORIGIN_ABBREVIATIONS, "origin")
    assert isinstance(origin.get("name"), str) and origin["name"], "origin needs a name"
    assert set(origin) <= set(ORIGIN_ABBREVIATIONS.values()), f"unknown origin keys {origin}"

    if "qos" in doc:
        assert doc["qos"] in (0, 1, 2), "qos must be 0, 1 or 2"
    components = doc["components"]
    assert isinstance(components, dict) and components, "components: a non-empty mapping"
    shared = {k: v for k, v in doc.items() if k in SHARED}
    expanded: dict[str, dict[str, Any]] = {}
    unique_ids: set[str] = set()
    for component_id, raw in components.items():
        where = f"components.{component_id}"
        assert ID.match(component_id), f"{where}: id must match [a-zA-Z0-9_-]+"
        config = _expand(raw, ABBREVIATIONS, where)
        platform = config.get("platform")
        assert platform in SUPPORTED_PLATFORMS, f"{where}: unsupported platform {platform!r}"
        allowed = PLATFORM_KEYS[platform] | SHARED
        unknown = set(config) - allowed
        assert not unknown, f"{where}: unknown keys {unknown}"
        for key, value in shared.items():
            config.setdefault(key, value)
        unique_id = config.get("unique_id")
        assert isinstance(unique_id, str) and ID.match(unique_id), f"{where}: unique_id"
        assert unique_id not in unique_ids, f"{where}: duplicate unique_id {unique_id}"
        unique_ids.add(unique_id)
        _check_availability(config, where)
        if platform == "sensor":
            _subscribe_topic(config.get("state_topic"), f"{where}.state_topic")
            device_class = config.get("device_class")
            if device_class is not None:
                assert device_class in SENSOR_UNITS, f"{where}: device_class {device_class}"
                unit = config.get("unit_of_measurement")
                assert unit in SENSOR_UNITS[device_class], f"{where}: unit {unit!r}"
            if "state_class" in config:
                assert config["state_class"] in STATE_CLASSES, f"{where}: state_class"
        if platform == "select":
            _publish_topic(config.get("command_topic"), f"{where}.command_topic")
            options = config.get("options")
            assert isinstance(options, list) and options, f"{where}: options"
            assert all(isinstance(o, str) for o in options), f"{where}: options are strings"
            if "state_topic" in config:
                _subscribe_topic(config["state_topic"], f"{where}.state_topic")
        for key in ("value_template", "command_template"):
            if key in config:
                jinja2.Environment().parse(config[key])  # syntax must be valid Jinja
        expanded[component_id] = config
    doc["components"] = expanded
    doc["device"] = device
    doc["origin"] = origin
    doc["object_id"] = match["object_id"]
    return doc


def _check_availability(config: dict[str, Any], where: str) -> None:
    if "availability" in config:
        assert "availability_topic" not in config, f"{where}: availability and _topic"
        entries = config["availability"]
        entries = entries if isinstance(entries, list) else [entries]
        for entry in entries:
            entry = _expand(entry, ABBREVIATIONS, f"{where}.availability")
            allowed = {"topic", "payload_available", "payload_not_available", "value_template"}
            assert set(entry) <= allowed, f"{where}: availability keys {entry}"
            _subscribe_topic(entry.get("topic"), f"{where}.availability.topic")
    if "availability_mode" in config:
        assert config["availability_mode"] in ("all", "any", "latest"), f"{where}: mode"


def render(template: str, **variables: Any) -> str:
    """Render an HA template (value_template with `value_json`, command_template with
    `value`) the way HA would for the parts our templates use."""
    return jinja2.Environment().from_string(template).render(**variables).strip()
