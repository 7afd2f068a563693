"""The cryptography of the Whatsminer (btminer API V2) privileged-command token flow (§4.2).

`get_token` hands out (time, salt, newsalt). The client derives
``host_passwd_md5 = md5crypt(password, salt).hash`` and
``host_sign = md5crypt(host_passwd_md5 + time, newsalt).hash``, then sends
``{"enc":1,"data":base64(AES-256-ECB(key, zero-padded JSON {"cmd":..., "token":host_sign, ...}))}``
with ``key = sha256(host_passwd_md5)``. Replies come back as ``{"enc":"<base64 AES>"}``.

md5-crypt (the FreeBSD ``$1$`` scheme) is implemented here rather than borrowed from passlib, which
is only a dependency of the test oracle. AES comes from `cryptography`.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, count: int) -> str:
    out = []
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def md5_crypt(password: str, salt: str) -> str:
    """The full md5-crypt string ``$1$<salt>$<hash>`` (salt truncated to 8 characters)."""
    pw = password.encode("utf-8")
    s = salt.encode("utf-8")[:8]
    magic = b"$1$"
    alt = hashlib.md5(pw + s + pw).digest()
    ctx = hashlib.md5(pw + magic + s)
    remaining = len(pw)
    while remaining > 0:
        ctx.update(alt[: min(16, remaining)])
        remaining -= 16
    i = len(pw)
    while i:
        ctx.update(b"\0" if i & 1 else pw[:1])
        i >>= 1
    final = ctx.digest()
    for r in range(1000):
        c = hashlib.md5()
        c.update(pw if r & 1 else final)
        if r % 3:
            c.update(s)
        if r % 7:
            c.update(pw)
        c.update(final if r & 1 else pw)
        final = c.digest()
    f = final
    encoded = (
        _to64((f[0] << 16) | (f[6] << 8) | f[12], 4)
        + _to64((f[1] << 16) | (f[7] << 8) | f[13], 4)
        + _to64((f[2] << 16) | (f[8] << 8) | f[14], 4)
        + _to64((f[3] << 16) | (f[9] << 8) | f[15], 4)
        + _to64((f[4] << 16) | (f[10] << 8) | f[5], 4)
        + _to64(f[11], 2)
    )
    return f"$1${s.decode('utf-8')}${encoded}"


def crypt_hash(password: str, salt: str) -> str:
    """Only the hash part of md5-crypt (what btminer calls host_passwd_md5 / host_sign)."""
    return md5_crypt(password, salt).split("$")[3]


def host_passwd_md5(password: str, salt: str) -> str:
    return crypt_hash(password, salt)


def host_sign(passwd_md5: str, time_str: str, newsalt: str) -> str:
    return crypt_hash(passwd_md5 + time_str, newsalt)


def aes_key(passwd_md5: str) -> bytes:
    return hashlib.sha256(passwd_md5.encode("utf-8")).digest()


def _zero_pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 16)


def encrypt(key: bytes, plaintext: bytes) -> str:
    """AES-256-ECB over the zero-padded plaintext, base64 without newlines."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(enc.update(_zero_pad(plaintext)) + enc.finalize()).decode("ascii")


def decrypt(key: bytes, b64: str) -> bytes:
    """Inverse of `encrypt`; trailing NUL padding removed. Raises ValueError on bad input."""
    raw = base64.b64decode(b64, validate=False)
    if not raw or len(raw) % 16:
        raise ValueError("ciphertext is not a whole number of AES blocks")
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return (dec.update(raw) + dec.finalize()).rstrip(b"\0")
