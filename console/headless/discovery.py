"""Home Assistant MQTT discovery, device-based form (HA 2024.11+): one retained document per
device at `<discovery prefix>/device/<object id>/config` describing the device and all its
entities.

Shape (keys abbreviated as HA documents them: `dev` device, `o` origin, `cmps` components,
`p` platform, `stat_t` state_topic, `avty` availability, `uniq_id` unique_id, ...):

* `dev`: identifiers, name, manufacturer, model, firmware of the miner or GPU;
* `o`: hashpivot and its version;
* shared options inherited by every component: the device's state topic, and availability
  from *both* the bridge's will topic and the device's own availability topic
  (`avty_mode: all`: an entity is available only while the bridge is up and the device is
  answering);
* `cmps`: sensors for hashrate, power, temperature and profit, reading the `summary` of the
  device document; for a GPU also its mode: a `select` that sends a `gpu.switch` command when
  commands are enabled, else a read-only sensor.

Values the device does not report render as `None`, which HA shows as "unknown", never 0.
The profit sensor is only announced once the device's status carries earnings.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Final

import msgspec

from console.headless.payloads import struct_fields
from console.headless.topics import Topics, ha_object_id
from console.model import DeviceKind, DeviceStatus
from drivers.cgminer.reading import AsicReading
from drivers.gpu_reading import GpuReading

GPU_MODES: Final = ("mining", "ai", "idle")
"""The modes a GPU can be switched to (the `gpu.switch` action's `mode`)."""


def _version() -> str:
    try:
        return metadata.version("hashpivot")
    except metadata.PackageNotFoundError:
        return "0+unknown"


ORIGIN: Final = {"name": "hashpivot", "sw": _version()}

_encode = msgspec.json.Encoder().encode


def _number(path: str, scale: str | None = None, digits: int = 1) -> str:
    """A value template that renders the number at `value_json.<path>`, or None."""
    value = f"value_json.{path}"
    shown = f"({value} / {scale})" if scale else value
    return f"{{{{ {shown} | round({digits}) if {value} is not none else None }}}}"


class Identity(msgspec.Struct, frozen=True):
    """What the discovery document depends on; it is re-published when this changes."""

    kind: str
    name: str
    manufacturer: str | None
    model: str | None
    firmware: str | None
    has_profit: bool


def identity(status: DeviceStatus) -> Identity:
    """Runs for every changed device (10,000 a second at scale), so it looks only at the
    status fields that can hold a reading or earnings."""
    make = firmware = None
    model = status.model
    has_profit = False
    for name in struct_fields(type(status)):
        value = getattr(status, name)
        if isinstance(value, AsicReading):
            make = value.make
            firmware = value.firmware_version
            model = model or value.model
        elif isinstance(value, GpuReading):
            make = "NVIDIA"
            firmware = value.static.driver_version
            model = model or value.static.name
        elif value is not None:
            has_profit = has_profit or getattr(value, "profit_usd_per_day", None) is not None
    return Identity(
        kind=status.kind.value,
        name=status.name,
        manufacturer=make,
        model=model,
        firmware=firmware,
        has_profit=has_profit,
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
