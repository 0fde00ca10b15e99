"""Request input -> stored items -> chat messages for the engine."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from kotae import ids
from kotae.errors import InvalidRequest
from kotae.providers.inference.base import ChatMessage, Role
from kotae.schemas.responses import InputFile, InputImage, MessageItem, Refusal

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


def normalize_input(raw: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The request's `input` as stored items (OpenAI's input-item shapes, each with an id)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_message("user", [{"type": "input_text", "text": raw}])]
    items = []
    for i, raw_item in enumerate(raw):
        kind = raw_item.get("type", "message")
        if kind != "message":
            raise InvalidRequest(
                f"Input items of type '{kind}' are not supported yet.", param=f"input[{i}].type"
            )
        try:
            item = MessageItem.model_validate(raw_item)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidRequest(
                f"Invalid input item: {err['msg']}", param=f"input[{i}].{where}".rstrip(".")
            ) from exc
        items.append(_from_message(item, i))
    return items


def _from_message(item: MessageItem, index: int) -> dict[str, Any]:
    if isinstance(item.content, str):
        parts: list[dict[str, Any]] = [
            {
                "type": "output_text" if item.role == "assistant" else "input_text",
                "text": item.content,
            }
        ]
        if item.role == "assistant":
            parts[0]["annotations"] = []
    else:
        parts = []
        for j, part in enumerate(item.content):
            if isinstance(part, InputImage | InputFile):
                raise InvalidRequest(
                    f"Content of type '{part.type}' is not supported by this server yet.",
                    param=f"input[{index}].content[{j}].type",
                )
            if isinstance(part, Refusal):
                parts.append({"type": "refusal", "refusal": part.refusal})
            elif part.type == "output_text":
                parts.append({"type": "output_text", "text": part.text, "annotations": []})
            else:
                parts.append({"type": "input_text", "text": part.text})
    return _message(item.role, parts)


def _message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": ids.message_id(),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": content,
    }


def item_text(item: dict[str, Any]) -> str:
    texts = []
    for part in item.get("content") or []:
        if part.get("type") in ("input_text", "output_text"):
            texts.append(part.get("text") or "")
        elif part.get("type") == "refusal":
            texts.append(part.get("refusal") or "")
    return "\n".join(texts)


def to_chat_messages(items: list[dict[str, Any]]) -> list[ChatMessage]:
    """Stored items (inputs and earlier outputs) as engine messages."""
    messages = []
    for item in items:
        if item.get("type", "message") != "message":
            continue
        role = _ROLES.get(item.get("role", "user"), "user")
        messages.append(ChatMessage(role=role, content=item_text(item)))
    return messages
