"""Whatsminer API V2 privileged commands: the token flow and the AES envelope (§4.2).

1. `get_token` → flat reply, `Msg: {time, salt, newsalt}` (code 134).
2. `host_passwd_md5` = hash part of md5-crypt(password, salt);
   `host_sign` = hash part of md5-crypt(host_passwd_md5 + time, newsalt).
3. AES-256-ECB key = sha256(host_passwd_md5); the plaintext JSON `{"cmd":..., "token":
   host_sign, ...arguments}` is zero-padded to 16 bytes; the request is
   `{"enc":1,"data":"<base64>"}`.
4. The reply is `{"enc":"<base64>"}` → decrypt, strip NULs, decode; errors may come back
   unencrypted (e.g. 135 "check token error").

Tokens are cached for 30 minutes per device (too many `get_token` calls give 136 "over max
connect"); a token error refreshes once. The password comes from the device's config; the
`cryptography` package provides AES (imported only when a Whatsminer write is made).
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any, NamedTuple

import msgspec

from drivers.cgminer.client import Reply, fetch
from drivers.cgminer.control import Channel
from drivers.cgminer.decoder import decode
from drivers.cgminer.errors import ControlNotPermitted, DecodeError
from drivers.cgminer.md5crypt import md5_crypt_hash
from drivers.cgminer.status import error_for, parse_status

TOKEN_TTL_S = 30 * 60
_TOKEN_ERRORS = frozenset({135, 136})


class Token(NamedTuple):
    sign: str
    key: bytes
    created_s: float


def derive_token(password: str, salt: str, when: str, newsalt: str) -> tuple[str, bytes]:
    """(host_sign, AES key) from the password and a `get_token` reply."""
    passwd_md5 = md5_crypt_hash(password, salt)
    sign = md5_crypt_hash(passwd_md5 + when, newsalt)
    return sign, hashlib.sha256(passwd_md5.encode("utf-8")).digest()


def _cipher(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ControlNotPermitted(
            "Whatsminer writes need the 'cryptography' package (AES-256-ECB)"
        ) from exc
    # ECB is what the firmware speaks; this is its protocol, not a design choice of ours.
    return Cipher(algorithms.AES(key), modes.ECB())


def encrypt_command(token: Token, command: dict[str, Any]) -> bytes:
    """The `{"enc":1,"data":...}` request bytes for a privileged command."""
    plaintext = msgspec.json.encode({**command, "token": token.sign})
    plaintext += b"\x00" * (-len(plaintext) % 16)
    encryptor = _cipher(token.key).encryptor()
    sealed = encryptor.update(plaintext) + encryptor.finalize()
    return msgspec.json.encode({"enc": 1, "data": base64.b64encode(sealed).decode("ascii")})


def decrypt_reply(token: Token, sealed_b64: str) -> dict[str, Any]:
    try:
        sealed = base64.b64decode(sealed_b64)
        decryptor = _cipher(token.key).decryptor()
        plaintext = (decryptor.update(sealed) + decryptor.finalize()).rstrip(b"\x00")
    except ControlNotPermitted:
        raise
    except Exception as exc:
        raise DecodeError(f"Whatsminer encrypted reply could not be decrypted: {exc}") from exc
    return decode(plaintext).obj


class WhatsminerAuth:
    """Token cache and privileged-command sender for one device."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token | None = None

    async def _get_token(self, channel: Channel) -> Token:
        if channel.password is None:
            raise ControlNotPermitted(
                "Whatsminer writes need the device's API admin password in its config"
            )
        reply = await channel.send("get_token")
        message = reply.data.get("Msg")
        if not reply.status.ok or not isinstance(message, dict):
            raise error_for("get_token", reply.status)
        try:
            sign, key = derive_token(
                channel.password,
                str(message["salt"]),
                str(message["time"]),
                str(message["newsalt"]),
            )
        except KeyError as exc:
            raise DecodeError(f"get_token: reply lacks {exc}") from None
        self._token = Token(sign, key, time.monotonic())
        return self._token

    async def token(self, channel: Channel) -> Token:
        token = self._token
        if token is not None and time.monotonic() - token.created_s < TOKEN_TTL_S:
            return token
        return await self._get_token(channel)

    async def send(self, channel: Channel, command: str, **arguments: str) -> Reply:
        """Send a privileged command; a failed STATUS comes back in the reply, not raised."""
        reply = await self._send_once(channel, await self.token(channel), command, arguments)
        if not reply.status.ok and reply.status.code in _TOKEN_ERRORS:
            self._token = None
            reply = await self._send_once(
                channel, await self._get_token(channel), command, arguments
            )
        return reply

    async def _send_once(
        self, channel: Channel, token: Token, command: str, arguments: dict[str, str]
    ) -> Reply:
        payload = encrypt_command(token, {"cmd": command, **arguments})
        body = await fetch(channel.host, channel.port, payload, timeout_s=channel.timeout_s)
        data, repairs = decode(body)
        sealed = data.get("enc")
        if isinstance(sealed, str):
            data = decrypt_reply(token, sealed)
        return Reply(command, data, parse_status(data), repairs)
