"""Sealed Temporal payloads: what Exosuit sends through Temporal, only Exosuit can read or forge.

Every payload between Exosuit and Temporal goes through `PayloadSealer`, a payload codec:
AES-256-GCM with a key derived from the root secret (`EXOSUIT_SECRET_KEY`), a key id in the
payload's metadata so that older keys (`EXOSUIT_PREVIOUS_SECRET_KEYS`) still open what they
sealed, and the workflow's id bound into the authenticated data, so a sealed payload cannot
be moved to another task. A payload that Exosuit did not seal (a `temporal workflow update`
sent straight to the server, say) is not opened: it becomes a payload of an encoding no
converter reads, so the update carrying it is rejected and changes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from exosuit.payload_types import ExosuitPayloadConverter

__all__ = ["Payload", "PayloadSealer", "sealed_converter", "workflow_of"]

SEALED = b"binary/exosuit-sealed"
REFUSED = b"binary/exosuit-refused"  # no converter reads it: whatever carries it is rejected
KEY_ID = "exosuit-key"
WORKFLOW = "exosuit-workflow"
_NONCE = 12


def derive_key(secret: str) -> bytes:
    """The sealing key: HKDF-style extract-and-expand of the root secret (never the secret)."""
    extracted = hmac.new(b"exosuit payload seal", secret.encode(), hashlib.sha256).digest()
    return hmac.new(extracted, b"exosuit payload seal v1\x01", hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"key id" + key).hexdigest()[:16]


class PayloadSealer(PayloadCodec, WithSerializationContext):
    """Seals with the current key; opens with the current or any previous one."""

    def __init__(self, secrets: Sequence[str], workflow_id: str = "") -> None:
        if not secrets:
            raise ValueError("sealing needs at least one secret")
        keys = [derive_key(secret) for secret in secrets]
        # A cipher per key id, made once: Temporal asks for a sealer per workflow or activity
        # (with_context), and each shares these.
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self._current = key_id(keys[0])
        self._workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> Self:
        workflow_id = ""
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id or ""
        sealer = copy.copy(self)  # the same keys and ciphers, bound to this workflow
        sealer._workflow_id = workflow_id
        return sealer

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) or refused() for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE)
        workflow = self._workflow_id.encode()
        box = self._ciphers[self._current].encrypt(
            nonce, payload.SerializeToString(), self._current.encode() + b"|" + workflow
        )
        metadata = {"encoding": SEALED, KEY_ID: self._current.encode(), WORKFLOW: workflow}
        return Payload(metadata=metadata, data=nonce + box)

    def open(self, payload: Payload) -> Payload | None:
        """The payload inside a sealed one; None if it is not sealed, or not by a key we hold."""
        if payload.metadata.get("encoding") != SEALED:
            return None
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None or len(payload.data) <= _NONCE:
            return None
        aad = kid.encode() + b"|" + payload.metadata.get(WORKFLOW, b"")
        try:
            inner = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], aad)
        except InvalidTag:
            return None
        return Payload.FromString(inner)


def refused() -> Payload:
    return Payload(metadata={"encoding": REFUSED}, data=b"")


def workflow_of(payload: Payload) -> str | None:
    """The workflow a sealed payload belongs to (its metadata, bound by the seal)."""
    workflow = payload.metadata.get(WORKFLOW)
    return (
        workflow.decode(errors="replace") if payload.metadata.get("encoding") == SEALED and workflow else None
    )


def sealed_converter(secrets: Sequence[str]) -> DataConverter:
    """Temporal's default data converter with every payload sealed, and dataclasses decoded
    with their type hints resolved once (exosuit/payload_types.py)."""
    return dataclasses.replace(
        DataConverter.default,
        payload_converter_class=ExosuitPayloadConverter,
        payload_codec=PayloadSealer(secrets),
    )
