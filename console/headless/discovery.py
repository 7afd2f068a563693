"""Home Assistant MQTT discovery, device-based form (HA 2024.11+): one retained document per
device at `<discovery prefix>/device/<object id>/config` describing the device and all its
entities.

Shape (keys abbreviated as HA documents them: `dev` device, `o` origin, `cmps` components,
`p` platform, `stat_t` state_topic, `avty` availability, `uniq_id` unique_id, ...):

* `dev`: identifiers, name, manufacturer, model, firmware of the miner, or for a GPU "NVIDIA",
  its NVML name and driver version;
* `o`: hashpivot and its version;
* shared options inherited by every component: the device's state topic, and availability
  from *both* the bridge's will topic and the device's own availability topic
  (`avty_mode: all`: an entity is available only while the bridge is up and the device is
  answering);
* `cmps`: sensors for hashrate, power, temperature and (when the site prices its devices)
  profit, reading the `summary` of the device document; for a GPU also its utilisation, its
  switch state (MINING, AI_RUNNING, ...), the AI job on it, its switch gain (when priced), and
  its mode: a `select` that sends a `gpu.switch` command when commands are enabled, else a
  read-only sensor.

Values the device does not report render as `None`, which HA shows as "unknown", never 0.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Final

import msgspec

from console.headless.topics import Topics, ha_object_id
from console.model import DeviceKind, DeviceStatus

GPU_MODES: Final = ("mining", "ai", "idle")
"""The modes a GPU can be switched to (the `gpu.switch` action's `mode`)."""


def _version() -> str:
    try:
        return metadata.version("hashpivot")
    except metadata.PackageNotFoundError:
        return "0+unknown"


ORIGIN: Final = {"name": "hashpivot", "sw": _version()}

_encode = msgspec.json.Encoder().encode


def _number(path: str, scale: str | None = None, digits: int = 1, within: str | None = None) -> str:
    """A value template that renders the number at `value_json.<path>`, or None. `within`: a
    parent object that may itself be null (checked first)."""
    value = f"value_json.{path}"
    shown = f"({value} / {scale})" if scale else value
    known = f"{value} is not none"
    if within:
        known = f"value_json.{within} and {known}"
    return f"{{{{ {shown} | round({digits}) if {known} else None }}}}"


class Identity(msgspec.Struct, frozen=True):
    """What the discovery document depends on; it is re-published when this changes."""

    kind: str
    name: str
    manufacturer: str | None
    model: str | None
    firmware: str | None
    has_profit: bool


def identity(status: DeviceStatus, *, priced: bool = False) -> Identity:
    """Runs for every changed device (10,000 a second at scale). `priced`: the site computes
    earnings (the snapshot has them), so the profit entities exist; a device the model cannot
    price right now shows them as unknown rather than losing them."""
    make = firmware = None
    model = status.model
    if status.gpu is not None:
        make = "NVIDIA"
        static = status.gpu.nvml.static if status.gpu.nvml is not None else None
        if static is not None and static.identified:
            firmware = static.driver_version
            model = model or static.name
    elif status.reading is not None:
        make = status.reading.make
        firmware = status.reading.firmware_version
        model = model or status.reading.model
    return Identity(
        kind=status.kind.value,
        name=status.name,
        manufacturer=make,
        model=model,
        firmware=firmware,
        has_profit=priced,
    )


def _sensors(uid: str, ident: Identity) -> dict[str, dict[str, Any]]:
    gpu = ident.kind == DeviceKind.GPU.value
    # ASIC hashrates are tens to hundreds of TH/s; GPU hashrates (Ethash-like) are MH/s.
    unit, scale = ("MH/s", "1e6") if gpu else ("TH/s", "1e12")
    components: dict[str, dict[str, Any]] = {
        "hashrate": {
            "p": "sensor",
            "name": "Hashrate",
            "uniq_id": f"{uid}_hashrate",
            "unit_of_meas": unit,
            "stat_cla": "measurement",
            "ic": "mdi:pickaxe",
            "val_tpl": _number("summary.hashrate_hs", scale, 3),
        },
        "power": {
            "p": "sensor",
            "name": "Power",
            "uniq_id": f"{uid}_power",
            "dev_cla": "power",
            "unit_of_meas": "W",
            "stat_cla": "measurement",
            "val_tpl": _number("summary.power_w", digits=1),
        },
        "temperature": {
            "p": "sensor",
            "name": "Temperature",
            "uniq_id": f"{uid}_temperature",
            "dev_cla": "temperature",
            "unit_of_meas": "°C",
            "stat_cla": "measurement",
            "val_tpl": _number("summary.temp_c", digits=1),
        },
    }
    if ident.has_profit:
        # HA's "monetary" class forbids a measurement state class, and a rate per day is not
        # a total, so profit is a plain measurement in USD/d.
        components["profit"] = {
            "p": "sensor",
            "name": "Profit",
            "uniq_id": f"{uid}_profit",
            "unit_of_meas": "USD/d",
            "stat_cla": "measurement",
            "ic": "mdi:cash",
            "val_tpl": _number("summary.profit_usd_per_day", digits=2),
        }
    return components


def _gpu_sensors(uid: str, ident: Identity) -> dict[str, dict[str, Any]]:
    """A GPU's own entities, read from the `gpu` view (and the earnings row) of its document."""
    components: dict[str, dict[str, Any]] = {
        "utilisation": {
            "p": "sensor",
            "name": "GPU utilisation",
            "uniq_id": f"{uid}_utilisation",
            "unit_of_meas": "%",
            "stat_cla": "measurement",
            "ic": "mdi:gauge",
            "val_tpl": _number("summary.gpu_util_pct", digits=0),
        },
        "state": {
            "p": "sensor",
            "name": "Switch state",
            "uniq_id": f"{uid}_state",
            "ic": "mdi:state-machine",
            "val_tpl": "{{ value_json.gpu.state if value_json.gpu else None }}",
        },
        "job": {
            "p": "sensor",
            "name": "AI job",
            "uniq_id": f"{uid}_job",
            "ic": "mdi:brain",
            # "none" is a known state (no job on the GPU); unknown only without a GPU view.
            "val_tpl": (
                "{{ (value_json.gpu.job.name if value_json.gpu.job else 'none') "
                "if value_json.gpu else None }}"
            ),
        },
    }
    if ident.has_profit:
        components["switch_gain"] = {
            "p": "sensor",
            "name": "Switch gain",
            "uniq_id": f"{uid}_switch_gain",
            "unit_of_meas": "USD/d",
            "stat_cla": "measurement",
            "ic": "mdi:swap-horizontal-bold",
            "val_tpl": _number("earnings.switch_gain_usd_per_day", digits=2, within="earnings"),
        }
    return components


def _gpu_mode(uid: str, device_id: str, topics: Topics, commands: bool) -> dict[str, Any]:
    if not commands:
        return {
            "p": "sensor",
            "name": "Mode",
            "uniq_id": f"{uid}_mode",
            "ic": "mdi:swap-horizontal",
            "val_tpl": "{{ value_json.commanded }}",
        }
    # HA publishes the chosen option through cmd_tpl: a gpu.switch command naming the device.
    # HA cannot say which user chose it, so the actor is recorded as unverified.
    command = _encode({"device": device_id, "mode": "__MODE__", "actor": "homeassistant"})
    return {
        "p": "select",
        "name": "Mode",
        "uniq_id": f"{uid}_mode",
        "ic": "mdi:swap-horizontal",
        "cmd_t": topics.command("gpu.switch"),
        "cmd_tpl": command.decode().replace("__MODE__", "{{ value }}"),
        "ops": list(GPU_MODES),
        "val_tpl": "{{ value_json.commanded }}",
    }


def discovery_document(
    status: DeviceStatus, topics: Topics, *, commands: bool, ident: Identity | None = None
) -> bytes:
    """The retained discovery payload for one device."""
    ident = ident or identity(status)
    uid = ha_object_id(topics.site, status.device_id)
    device: dict[str, Any] = {"ids": [uid], "name": ident.name}
    if ident.manufacturer:
        device["mf"] = ident.manufacturer
    if ident.model:
        device["mdl"] = ident.model
    if ident.firmware:
        device["sw"] = ident.firmware
    components = _sensors(uid, ident)
    if ident.kind == DeviceKind.GPU.value:
        components.update(_gpu_sensors(uid, ident))
        components["mode"] = _gpu_mode(uid, status.device_id, topics, commands)
    document = {
        "dev": device,
        "o": ORIGIN,
        "stat_t": topics.device_state(status.device_id),
        "avty": [
            {"t": topics.bridge_availability},
            {"t": topics.device_availability(status.device_id)},
        ],
        "avty_mode": "all",
        "qos": 1,
        "cmps": components,
    }
    return _encode(document)
