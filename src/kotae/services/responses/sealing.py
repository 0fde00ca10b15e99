"""Reasoning a client carries between stateless requests (`store: false` with
`include=["reasoning.encrypted_content"]`): sealed with the server's key, bound to the
project, so only this server, for this project, can open it, and any change is seen."""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "kotae-rs1."
NONCE_BYTES = 12


class Sealer:
    def __init__(self, secret: str) -> None:
        # Its own key from the installation's secret (shared by every replica): a key is
        # never used for two purposes.
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"kotae reasoning seal"
        ).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, project_id: str, reasoning: str) -> str:
        """AES-GCM over the reasoning, the project's id as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        data = json.dumps({"reasoning": reasoning}, ensure_ascii=False).encode()
        sealed = self._aead.encrypt(nonce, data, project_id.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, project_id: str, blob: str) -> str | None:
        """The reasoning sealed in `blob`, or None when it was not sealed here, for this
        project, or was changed."""
        if not blob.startswith(PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(blob[len(PREFIX) :].encode())
            if len(raw) <= NONCE_BYTES:
                return None
            data = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], project_id.encode())
            reasoning = json.loads(data).get("reasoning")
        except (ValueError, binascii.Error, InvalidTag, AttributeError):
            return None
        return reasoning if isinstance(reasoning, str) else None
