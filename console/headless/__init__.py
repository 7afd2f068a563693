"""Headless mode: the site's snapshots published to MQTT, commands taken from MQTT.

Modules, one job each:

* `url`: broker URLs (`mqtt[s]://user@host:port/prefix`) parsed and checked;
* `settings`: the `[mqtt]` table + `--mqtt` URL + secrets resolved into `BridgeSettings`;
* `topics`: the versioned topic schema (`<prefix>/v1/<site>/...`), the one place topics are built;
* `payloads`: JSON documents for device, site, jobs and event topics (msgspec);
* `discovery`: Home Assistant device-based discovery documents;
* `commands`: the command allow-list, payload validation, replies;
* `outbox`: the bounded outgoing queue that coalesces state while the broker is away;
* `publisher`: snapshot → outgoing messages (only what changed, plus a periodic refresh);
* `transport`: the only module that talks MQTT (aiomqtt): connect, reconnect, TLS, will;
* `service`: wires a running `Site` to all of the above; `hashpivot headless` runs it.

Nothing here imports Textual. Importing this package imports nothing else: the CLI imports
`console.headless.service` when the `headless` subcommand runs.
"""
