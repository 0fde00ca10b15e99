"""The Standard Webhooks signature the `openai` SDK checks (`client.webhooks.unwrap`):
HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}" with the endpoint's secret,
sent as "v1,<base64>" (several, space-separated, while an old secret is still honoured)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def hint(secret: str) -> str:
    """What the API shows of a secret after it was created: enough to tell two apart."""
    return f"{secret[: len(PREFIX) + 2]}...{secret[-4:]}"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len(PREFIX) :]) if secret.startswith(PREFIX) else secret.encode()
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(
    secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, message_id, timestamp, body) for s in secrets_in_use
        ),
        "content-type": "application/json",
        "user-agent": "kotae-webhooks",
    }
