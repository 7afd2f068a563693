"""md5-crypt (`$1$`), the FreeBSD/glibc MD5 password hash, as Whatsminer's token flow needs it.

Written here rather than taken from passlib (unmaintained, and a large dependency for 40
lines). Algorithm: Poul-Henning Kamp's md5crypt, as documented in glibc `crypt(3)`.
"""

from __future__ import annotations

from hashlib import md5

_MAGIC = b"$1$"
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Byte triples of the final digest, in the order md5crypt encodes them.
_GROUPS = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))


def _to64(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(chars)


def md5_crypt(password: str, salt: str) -> str:
    """The full `$1$<salt>$<hash>` string for `password` (salt: up to 8 characters, no `$`)."""
    secret = password.encode("utf-8")
    salt_bytes = salt.encode("utf-8").split(b"$", 1)[0][:8]

    alternate = md5(secret + salt_bytes + secret).digest()
    context = md5(secret + _MAGIC + salt_bytes)
    for remaining in range(len(secret), 0, -16):
        context.update(alternate[: min(16, remaining)])
    length = len(secret)
    while length:
        context.update(b"\x00" if length & 1 else secret[:1])
        length >>= 1
    digest = context.digest()

    # 1000 rounds, deliberately slow (the point of the algorithm).
    for round_number in range(1000):
        step = md5()
        step.update(secret if round_number & 1 else digest)
        if round_number % 3:
            step.update(salt_bytes)
        if round_number % 7:
            step.update(secret)
        step.update(digest if round_number & 1 else secret)
        digest = step.digest()

    encoded = "".join(
        _to64((digest[a] << 16) | (digest[b] << 8) | digest[c], 4) for a, b, c in _GROUPS
    )
    encoded += _to64(digest[11], 2)
    return f"$1${salt_bytes.decode('utf-8', errors='replace')}${encoded}"


def md5_crypt_hash(password: str, salt: str) -> str:
    """Only the hash part (after the third `$`), which is what Whatsminer's flow uses."""
    return md5_crypt(password, salt).rsplit("$", 1)[1]
