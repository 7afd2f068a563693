"""A real mosquitto for tests: started on a free loopback port, killed at teardown.

`Mosquitto` writes its own config (`listener <port> 127.0.0.1`, no persistence, log to a file,
`user root` when the tests run as root so it can read files in pytest's 0700 temp dirs),
optionally with a password file (made by the real `mosquitto_passwd`), an ACL file, and a
TLS listener with a CA and server certificate generated here. `restart()` brings it back on the
same port, as a broker restarted by its operator would. Fixtures: `broker` (anonymous),
`make_broker` (build your own). `Subscriber` is a small aiomqtt client that records what it
receives, with `wait_for(...)`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("hashpivot test CA"))
        .issuer_name(name("hashpivot test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def pem_key(private: ec.EllipticCurvePrivateKey) -> bytes:
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = (
        x509.CertificateBuilder()
        .subject_name(name("hashpivot-bridge"))
        .issuer_name(ca_cert.subject)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "client.pem",
        directory / "client.key",
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(pem_key(key))
    files.client_cert_file.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    files.client_key_file.write_bytes(pem_key(client_key))
    return files


@dataclass
class Mosquitto:
    """One mosquitto process. `users` makes a password file and refuses anonymous clients."""

    workdir: Path
    users: dict[str, str] | None = None
    acl: str | None = None
    tls: TlsFiles | None = None
    require_client_cert: bool = False
    port: int = field(default_factory=free_port)
    host: str = HOST
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def _config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
            ]
            if self.require_client_cert:
                lines.append("require_certificate true")
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            passwd = self.workdir / "passwd"
            passwd.unlink(missing_ok=True)
            for i, (user, password) in enumerate(self.users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run(
                    [MOSQUITTO_PASSWD, *flags, str(passwd), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        if self.acl is not None:
            acl = self.workdir / "acl"
            acl.write_text(self.acl)
            lines.append(f"acl_file {acl}")
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout_s: float = 10.0) -> None:
        for tool in (MOSQUITTO, MOSQUITTO_PASSWD):
            if not os.access(tool, os.X_OK):
                # Fail, not skip: these tests are the proof that the MQTT bridge works.
                pytest.fail(
                    f"{tool} not found: install mosquitto and mosquitto-clients "
                    "(apt-get install mosquitto mosquitto-clients; .ci/run does it)"
                )
        config = self._config()
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                log = self.log_path.read_text() if self.log_path.exists() else ""
                pytest.fail(f"mosquitto exited ({self._proc.returncode}): {err}{log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"mosquitto did not accept connections on port {self.port}")
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    started: list[Mosquitto] = []

    def make(**kwargs: object) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto-{len(started)}", **kwargs)  # type: ignore[arg-type]
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(make_broker: Callable[..., Mosquitto]) -> Mosquitto:
    return make_broker()


def unique_prefix(name: str) -> str:
    """A topic prefix no other test shares (one broker per test anyway; belt and braces)."""
    return f"t{uuid.uuid4().hex[:8]}-{name}"[:48]


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: object | None = None


class Subscriber:
    """Records every message on some topic filters; `wait_for` polls the record."""

    def __init__(self, broker: Mosquitto, *filters: str, **client_kwargs: object) -> None:
        self.broker = broker
        self.filters = filters
        self.client_kwargs = client_kwargs
        self.messages: list[Received] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        async with aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            protocol=aiomqtt.ProtocolVersion.V5,
            **self.client_kwargs,  # type: ignore[arg-type]
        ) as client:
            for topic_filter in self.filters:
                await client.subscribe(topic_filter, qos=1)
            self._ready.set()
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                self.messages.append(
                    Received(message.topic.value, payload, message.retain, message.properties)
                )

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    async def wait_for(
        self, predicate: Callable[[], object], timeout_s: float = 15.0, what: str = ""
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                topics = sorted({m.topic for m in self.messages})[:40]
                pytest.fail(f"timed out waiting for {what or predicate}; saw topics {topics}")
            await asyncio.sleep(0.02)


async def retained(broker: Mosquitto, topic_filter: str, settle_s: float = 0.5) -> list[Received]:
    """What a brand-new subscriber gets right after subscribing: the retained messages."""
    async with Subscriber(broker, topic_filter) as sub:
        await asyncio.sleep(settle_s)
        return [m for m in sub.messages if m.retain]


async def publish(broker: Mosquitto, topic: str, payload: bytes, **kwargs: object) -> None:
    async with aiomqtt.Client(
        broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        await client.publish(topic, payload, qos=1, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "Mosquitto",
    "Subscriber",
    "broker",
    "make_broker",
    "make_tls_files",
    "publish",
    "retained",
    "unique_prefix",
]
