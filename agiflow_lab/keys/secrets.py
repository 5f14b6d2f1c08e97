"""Key format and hashing.

A key is ``agf_<id>_<secret>`` with 256 random bits of secret. Because the secret is random (not a
password a person chose) a single SHA-256 is enough to make the stored hash useless to a thief, and
it keeps verification cheap on the hot path; a slow KDF would only cost latency.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "agf_"


def new_key() -> tuple[str, str, str]:
    """Returns (key id, whole key, hash of the secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """Split a presented key into (id, secret); None if it is not shaped like one of ours."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def display_prefix(key_id: str) -> str:
    return f"{PREFIX}{key_id}_…"
