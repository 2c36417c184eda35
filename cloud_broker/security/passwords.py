"""Passwords for MQTT accounts, hashed exactly as mosquitto 2.0's `mosquitto_passwd` does.

mosquitto 2.0 password-file line (checked against `mosquitto_passwd -c -b FILE user pass`
from mosquitto 2.0.11)::

    user:$7$101$<base64 12-byte salt>$<base64 64-byte PBKDF2-HMAC-SHA512(password, salt, 101)>

Base64 is the standard alphabet with padding; the salt is the raw decoded bytes and the
password is its UTF-8 bytes. `$6$<salt>$<sha512(password + salt)>` (mosquitto 1.x) is accepted
by `verify_password` too, so files written by older tools can still be checked.

Plain passwords are returned once by `generate_password` and never stored or logged here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64


def generate_password(length: int = 24) -> str:
    """A random URL-safe password of exactly `length` characters (at least 16)."""
    if length < 16:
        raise ValueError(f"password length {length} is below the minimum of 16")
    return secrets.token_urlsafe(length)[:length]


def _pbkdf2(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS,
                  salt: bytes | None = None) -> str:
    """`$7$101$<salt>$<hash>` as mosquitto_passwd writes it; a fresh random salt by default."""
    if not password:
        raise ValueError("empty password")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(_pbkdf2(password, salt, iterations))}"


def verify_password(password: str, hashed: str) -> bool:
    """True if `password` matches a `$7$` (PBKDF2-SHA512) or `$6$` (SHA512) mosquitto hash.

    A malformed hash verifies as False rather than raising: callers treat it as a refusal.
    """
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[0] == "" and parts[1] == "7":
            iterations = int(parts[2])
            salt = base64.b64decode(parts[3], validate=True)
            expected = base64.b64decode(parts[4], validate=True)
            if iterations < 1:
                return False
            return hmac.compare_digest(_pbkdf2(password, salt, iterations), expected)
        if len(parts) == 4 and parts[0] == "" and parts[1] == "6":
            salt = base64.b64decode(parts[2], validate=True)
            expected = base64.b64decode(parts[3], validate=True)
            digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
            return hmac.compare_digest(digest, expected)
    except (ValueError, binascii.Error):
        return False
    return False
