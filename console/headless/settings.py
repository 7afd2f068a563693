"""What `hashpivot headless` runs with: the `[mqtt]` table, the `--mqtt` URL and the secrets,
resolved once into `BridgeSettings`.

Precedence: the `--mqtt` URL (host, port, TLS or not, prefix, user, password) over the
`[mqtt]` table's `url` and `username`; the password from the URL, else the variable named by
`password_env`, else the file named by `password_file`, else `HASHPIVOT_MQTT_PASSWORD` when it
is set. Problems are `SettingsError`s whose message says what to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from console.config import MqttConfig, SiteConfig
from console.headless.transport import BrokerSettings, TlsSettings
from console.headless.url import BrokerUrlError, parse_broker_url, redact

PASSWORD_ENV: Final = "HASHPIVOT_MQTT_PASSWORD"


class SettingsError(ValueError):
    """The bridge cannot start with these settings; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class BridgeSettings:
    broker: BrokerSettings
    site: str
    prefix: str
    discovery: bool
    discovery_prefix: str
    commands: bool
    publish_interval_s: float
    full_refresh_s: float
    queue_max: int
    url_shown: str
    """The broker URL without its password, for logs."""


def _password(mqtt: MqttConfig, url_password: str | None, env: Mapping[str, str]) -> str | None:
    if url_password is not None:
        return url_password
    if mqtt.password_env:
        value = env.get(mqtt.password_env)
        if value is None:
            raise SettingsError(
                f"[mqtt] password_env names {mqtt.password_env}, which is not set; export it "
                "before starting hashpivot headless"
            )
        return value
    if mqtt.password_file:
        path = Path(mqtt.password_file).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise SettingsError(
                f"[mqtt] password_file {str(path)!r} cannot be read: {exc.strerror or exc}; "
                "check the path and that this user may read it"
            ) from None
        return lines[0].strip() if lines else ""
    return env.get(PASSWORD_ENV)


def resolve(
    config: SiteConfig, url: str | None = None, env: Mapping[str, str] | None = None
) -> BridgeSettings:
    env = os.environ if env is None else env
    mqtt = config.mqtt
    text = url if url is not None else mqtt.url
    try:
        parsed = parse_broker_url(text)
    except BrokerUrlError as exc:
        raise SettingsError(f"--mqtt: {exc.message} ({exc.hint})") from None
    tls_keys = [
        key
        for key, value in (
            ("ca_file", mqtt.ca_file),
            ("cert_file", mqtt.cert_file),
            ("key_file", mqtt.key_file),
            ("tls_insecure", mqtt.tls_insecure or None),
        )
        if value is not None
    ]
    if tls_keys and not parsed.tls:
        raise SettingsError(
            f"[mqtt] sets {', '.join(tls_keys)} but the broker URL {redact(text)} is mqtt:// "
            "(plain TCP); use mqtts://"
        )
    username = parsed.username if parsed.username is not None else mqtt.username
    password = _password(mqtt, parsed.password, env)
    if username is None and password is not None:
        explicit = parsed.password is not None or mqtt.password_env or mqtt.password_file
        if explicit:
            raise SettingsError(
                "a broker password is set but no user name; add user@ to the URL or "
                "username to [mqtt]"
            )
        password = None  # HASHPIVOT_MQTT_PASSWORD for some other setup; MQTT needs a user
    tls = (
        TlsSettings(
            ca_file=mqtt.ca_file,
            cert_file=mqtt.cert_file,
            key_file=mqtt.key_file,
            insecure=mqtt.tls_insecure,
        )
        if parsed.tls
        else None
    )
    site = config.site.name
    return BridgeSettings(
        broker=BrokerSettings(
            host=parsed.host,
            port=parsed.port,
            client_id=mqtt.client_id or f"hashpivot-{site}",
            username=username,
            password=password,
            tls=tls,
            keepalive_s=mqtt.keepalive_s,
            reconnect_max_s=mqtt.reconnect_max_s,
        ),
        site=site,
        prefix=parsed.prefix,
        discovery=mqtt.discovery,
        discovery_prefix=mqtt.discovery_prefix,
        commands=mqtt.commands,
        publish_interval_s=mqtt.publish_interval_s,
        full_refresh_s=mqtt.full_refresh_s,
        queue_max=mqtt.queue_max,
        url_shown=redact(text),
    )
