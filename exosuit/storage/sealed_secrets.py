"""Secrets Exosuit must read back (webhook signing secrets), sealed at rest with the root secret.

AES-256-GCM with a key derived from the root secret for this purpose alone; the key id goes
with the sealed text, so after a rotation (`EXOSUIT_PREVIOUS_SECRET_KEYS`) old rows still open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PURPOSE = b"exosuit stored secrets v1"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _kid(key: bytes) -> str:
    return hashlib.sha256(b"kid" + key).hexdigest()[:12]


class SecretBox:
    """Seals with the current root secret; opens with it or any previous one."""

    def __init__(self, secrets: Sequence[str]) -> None:
        keys = [_key(s) for s in secrets]
        self._current = keys[0]
        self._keys = {_kid(k): k for k in keys}

    def seal(self, plain: str, *, bound_to: str) -> str:
        """`kid.base64(nonce + ciphertext)`; `bound_to` (the row's id) must match when opened."""
        nonce = os.urandom(12)
        box = AESGCM(self._current).encrypt(nonce, plain.encode(), bound_to.encode())
        return f"{_kid(self._current)}.{base64.b64encode(nonce + box).decode()}"

    def open(self, sealed: str, *, bound_to: str) -> str:
        kid, _, data = sealed.partition(".")
        key = self._keys.get(kid)
        if key is None:
            raise LookupError("sealed with a root secret this deployment no longer holds")
        raw = base64.b64decode(data)
        return AESGCM(key).decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
