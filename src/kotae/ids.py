"""Object ids shaped like OpenAI's: a prefix and random hex."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def response_id() -> str:
    return new_id("resp")


def message_id() -> str:
    return new_id("msg")


def api_key() -> str:
    return "sk-kotae-" + secrets.token_urlsafe(32)
