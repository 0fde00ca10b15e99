"""Compaction: a long thread replaced by its user messages and one `compaction` item that
holds a summary the model wrote of everything else.

OpenAI encrypts the compaction's content; here it is the summary, base64-encoded behind a
marker (readable by whoever holds the item: it never leaves the user's own server)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from kotae import ids
from kotae.errors import InvalidRequest

MARKER = "kotae-compaction-v1:"


def encode(summary: str) -> str:
    data = json.dumps({"summary": summary}, ensure_ascii=False).encode()
    return MARKER + base64.urlsafe_b64encode(data).decode()


def decode(content: str) -> str | None:
    """The summary in a compaction's content, or None when this server did not make it."""
    if not content.startswith(MARKER):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(content[len(MARKER) :]))
    except (ValueError, binascii.Error):
        return None
    summary = data.get("summary") if isinstance(data, dict) else None
    return summary if isinstance(summary, str) else None


def item(summary: str) -> dict[str, Any]:
    return {"id": ids.new_id("cmp"), "type": "compaction", "encrypted_content": encode(summary)}


def checked(raw: dict[str, Any], param: str) -> dict[str, Any]:
    """A compaction item sent back as input."""
    content = raw.get("encrypted_content")
    if not isinstance(content, str) or decode(content) is None:
        raise InvalidRequest(
            f"Invalid '{param}.encrypted_content': not a compaction made by this server.",
            param=f"{param}.encrypted_content",
            code="invalid_value",
        )
    return {
        "id": raw.get("id") or ids.new_id("cmp"),
        "type": "compaction",
        "encrypted_content": content,
    }


def apply(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The thread as the model sees it: before the last compaction only user messages stay
    (the summary stands for the rest)."""
    last = max((i for i, it in enumerate(items) if it.get("type") == "compaction"), default=-1)
    if last < 0:
        return items
    kept = [it for it in items[:last] if _is_user_message(it)]
    return kept + items[last:]


def kept_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a compaction keeps word for word: the user's messages."""
    return [it for it in apply(items) if _is_user_message(it)]


def _is_user_message(it: dict[str, Any]) -> bool:
    return it.get("type", "message") == "message" and it.get("role") == "user"
