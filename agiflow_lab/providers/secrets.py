"""Provider API keys at rest: Fernet encryption with a key that every AGIFlow process shares.

The key comes from ``AGIFLOW_SECRET_KEY`` when set (deployments that keep secrets in their own store),
otherwise from a key file (``Settings.secret_key_path``, default ``<data_dir>/secret.key``) created on
first use with mode 0600. The server passes the file's path to its workers and evaluation kernels so
they decrypt with the same key. Several keys may be given (one per line in the file, comma-separated in
the environment): the first encrypts, all decrypt, so a key can be rotated without losing old secrets.

Creating the file is race-free across processes: the key is written to a private temporary file and
hard-linked into place, which fails if another process got there first — then that process's key is
used. Nobody ever reads a half-written key.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from agiflow_lab.config import ENV_PREFIX, Settings
from agiflow_lab.errors import AgiflowError

log = logging.getLogger(__name__)

ENV_KEY = f"{ENV_PREFIX}SECRET_KEY"
REDACTED = "[redacted]"
# Vendor error messages quote a masked key ("sk-proj-abc1****wxyz"); drop even the visible ends.
_KEY_LIKE = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*]{4,}|\*{4,}[A-Za-z0-9_\-]{0,8}")


class SecretKeyError(AgiflowError):
    """The secret key is unusable or does not match what encrypted a stored credential: an operator's problem."""

    status = 500
    code = "secret_key_error"


class SecretBox:
    """Encrypts and decrypts short secrets; its repr never shows a key."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                f"the secret key is not a valid Fernet key (32 url-safe base64 bytes): {exc}"
            ) from None

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"a stored credential cannot be decrypted with this server's secret key; was {ENV_KEY} or the "
                "key file changed? Restore the old key (it may be listed after the new one) or set the API key again"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"


def load_cipher(settings: Settings) -> SecretBox:
    """The process's cipher. Blocking (may create the key file): call it at start-up or in a thread."""
    if env := os.environ.get(ENV_KEY, "").strip():
        return SecretBox(_split(env.replace(",", "\n").encode()))
    return SecretBox(read_or_create_key(settings.secret_key_path))


def _split(data: bytes) -> list[bytes]:
    return [line.strip() for line in data.splitlines() if line.strip()]


def _read_keys(path: Path) -> list[bytes]:
    keys = _split(path.read_bytes())
    if not keys:
        raise SecretKeyError(f"the secret key file {path} is empty")
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning("secret key file %s is readable by other users (mode %o); chmod 600 it", path, mode & 0o777)
    return keys


def read_or_create_key(path: Path) -> list[bytes]:
    try:
        return _read_keys(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_keys(path)  # another process won the race: everyone uses its key
        log.info("created secret key file %s", path)
    finally:
        tmp.unlink(missing_ok=True)
    return [key]


def redact(text: str, *secrets_: str | None) -> str:
    """``text`` without the given secrets or anything shaped like a (masked) vendor API key."""
    for secret in secrets_:
        if secret:
            text = text.replace(secret, REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)
