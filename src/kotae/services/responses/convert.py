"""Request input -> stored items -> chat messages for the engine."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from kotae import ids
from kotae.errors import InvalidRequest, invalid_from, refuse_unknown
from kotae.providers.inference.base import ChatMessage, Role, ToolCall
from kotae.schemas.responses import (
    CustomToolCallItem,
    CustomToolCallOutputItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    MessageItem,
    ReasoningItem,
    Refusal,
)
from kotae.services.responses import compaction
from kotae.services.responses.media import Media

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


def normalize_input(
    raw: str | list[dict[str, Any]] | None, param: str = "input"
) -> list[dict[str, Any]]:
    """The request's `input` as stored items (OpenAI's input-item shapes, each with an id)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_message("user", [{"type": "input_text", "text": raw}])]
    items = []
    for i, raw_item in enumerate(raw):
        kind = raw_item.get("type", "message")
        given = raw_item.get("id")
        if given is not None and (not isinstance(given, str) or not given):
            raise InvalidRequest(
                f"Invalid '{param}[{i}].id': an item id is a non-empty string.",
                param=f"{param}[{i}].id",
                code="invalid_type",
            )
        if kind in AGENT_ITEMS:
            items.append(_agent_item(raw_item, i, param))
            continue
        if kind == "compaction":
            items.append(compaction.checked(raw_item, f"{param}[{i}]"))
            continue
        if kind == "mcp_approval_response":
            items.append(_approval_response(raw_item, f"{param}[{i}]"))
            continue
        if kind in PAST_CALLS:  # an earlier turn's tool call, sent back as it was output
            items.append({**raw_item, "id": raw_item.get("id") or ids.new_id(PAST_CALLS[kind])})
            continue
        model = _INPUT_TYPES.get(kind)
        if model is None:
            raise InvalidRequest(
                f"Input items of type '{kind}' are not supported yet.", param=f"{param}[{i}].type"
            )
        try:
            item = model.model_validate(raw_item)
        except ValidationError as exc:
            raise invalid_from(exc, "input item", f"{param}[{i}]") from exc
        if isinstance(item, MessageItem):
            items.append(_from_message(item, i))
        elif isinstance(item, FunctionCallItem):
            items.append(
                {
                    "id": item.id or ids.new_id("fc"),
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                    "status": "completed",
                }
            )
        elif isinstance(item, ReasoningItem):
            items.append(
                {
                    **item.model_dump(exclude_none=True),
                    "id": item.id or ids.new_id("rs"),
                    "summary": [s.model_dump() for s in item.summary],
                }
            )
        elif isinstance(item, CustomToolCallItem):
            items.append(
                {
                    "id": item.id or ids.new_id("ctc"),
                    "type": "custom_tool_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "input": item.input,
                }
            )
        elif isinstance(item, CustomToolCallOutputItem):
            items.append(
                {
                    "id": item.id or ids.new_id("ctco"),
                    "type": "custom_tool_call_output",
                    "call_id": item.call_id,
                    "output": _output_text(item.output),
                }
            )
        elif isinstance(item, FunctionCallOutputItem):
            output = item.output
            if not isinstance(output, str):
                output = "\n".join(
                    str(p.get("text", ""))
                    for p in output
                    if p.get("type") in ("input_text", "output_text")
                )
            items.append(
                {
                    "id": item.id or ids.new_id("fco"),
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "output": output,
                    "status": "completed",
                }
            )
    return items


# Built-in tool calls of earlier turns (and their id prefixes): kept in the thread as sent.
PAST_CALLS = {
    "image_generation_call": "ig",
    "file_search_call": "fs",
    "web_search_call": "ws",
    "mcp_list_tools": "mcpl",
    "mcp_call": "mcp",
    "mcp_approval_request": "mcpr",
    "code_interpreter_call": "ci",
}

_INPUT_TYPES: dict[str, type[Any]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "custom_tool_call": CustomToolCallItem,
    "custom_tool_call_output": CustomToolCallOutputItem,
    "reasoning": ReasoningItem,
}


AGENT_ITEMS = {
    "shell_call",
    "shell_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
}


def _agent_item(raw: dict[str, Any], index: int, param: str) -> dict[str, Any]:
    """Coding agents' tool calls and their outputs, kept as sent (with an id)."""
    call_id = raw.get("call_id") or (
        raw.get("id") if raw["type"] == "local_shell_call_output" else None
    )
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(
            f"{raw['type']} items need a call_id.", param=f"{param}[{index}].call_id"
        )
    item = dict(raw)
    item["id"] = item.get("id") or ids.new_id("item")
    item["call_id"] = call_id
    # Stored as the output resource OpenAI lists: a status always, and the nullable fields
    # that resource requires present.
    if item.get("status") is None and item["type"] != "local_shell_call_output":
        item["status"] = "completed"
    for name in REQUIRED_NULLABLE.get(item["type"], ()):
        item.setdefault(name, None)
    if item["type"] == "shell_call" and isinstance(item.get("action"), dict):
        item["action"] = {"timeout_ms": None, "max_output_length": None, **item["action"]}
    return item


REQUIRED_NULLABLE = {"shell_call_output": ("max_output_length",), "shell_call": ("environment",)}


def _approval_response(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The client's answer to an mcp_approval_request."""
    request_id = raw.get("approval_request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidRequest(
            f"Missing required parameter: '{where}.approval_request_id'.",
            param=f"{where}.approval_request_id",
        )
    if not isinstance(raw.get("approve"), bool):
        raise InvalidRequest(
            f"Invalid '{where}.approve': a boolean.", param=f"{where}.approve", code="invalid_type"
        )
    refuse_unknown(raw, {"type", "id", "approval_request_id", "approve", "reason"}, where)
    return {**raw, "id": raw.get("id") or ids.new_id("mcpa")}


def _agent_call(item: dict[str, Any]) -> ToolCall:
    kind = item["type"]
    action = item.get("action") or {}
    if kind == "shell_call":
        args: dict[str, Any] = {"commands": action.get("commands") or []}
        return ToolCall(item["call_id"], "shell", json.dumps(args, ensure_ascii=False))
    if kind == "local_shell_call":
        args = {"command": action.get("command") or []}
        return ToolCall(item["call_id"], "local_shell", json.dumps(args, ensure_ascii=False))
    op = item.get("operation") or {}
    args = {"type": op.get("type"), "path": op.get("path"), "diff": op.get("diff", "")}
    return ToolCall(item["call_id"], "apply_patch", json.dumps(args, ensure_ascii=False))


def _agent_output(item: dict[str, Any]) -> str:
    out = item.get("output")
    if isinstance(out, list):  # shell_call_output: [{stdout, stderr, outcome}]
        return "\n".join(
            f"{o.get('stdout', '')}{o.get('stderr', '')}" for o in out if isinstance(o, dict)
        )
    return str(out if out is not None else item.get("status", ""))


def _output_text(output: str | list[dict[str, Any]]) -> str:
    if isinstance(output, str):
        return output
    return "\n".join(
        str(p.get("text", "")) for p in output if p.get("type") in ("input_text", "output_text")
    )


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
        for part in item.content:
            if isinstance(part, InputImage):
                parts.append(
                    {
                        "type": "input_image",
                        "image_url": part.image_url,
                        "file_id": part.file_id,
                        "detail": part.detail or "auto",
                    }
                )
            elif isinstance(part, InputFile):
                parts.append(part.model_dump(exclude_none=True))
            elif isinstance(part, Refusal):
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


# Items that always begin an engine message of their own (tool calls join the assistant turn
# before them, reasoning the turn after it, and other kinds give none).
NEW_MESSAGE_KINDS = frozenset(
    {
        "message",
        "image_generation_call",
        "file_search_call",
        "compaction",
        "mcp_call",
        "mcp_approval_request",
        "code_interpreter_call",
        "web_search_call",
        "function_call_output",
        "custom_tool_call_output",
        "shell_call_output",
        "local_shell_call_output",
        "apply_patch_call_output",
    }
)


def newest_items(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The newest items that still give the newest `count` engine messages exactly as all of
    `items` would (compaction already applied): they start at the item that begins the message
    before those, where the conversion's state (the last turn, pending thinking) is the same
    either way. Older items can never reach the model when at most `count` messages fit."""
    seen = 0
    for i in range(len(items) - 1, -1, -1):
        if items[i].get("type", "message") in NEW_MESSAGE_KINDS:
            seen += 1
            if seen > count:
                return items[i:]
    return items


def to_chat_messages(
    items: list[dict[str, Any]], media: dict[tuple[str, int], Media] | None = None
) -> list[ChatMessage]:
    """Stored items (inputs and earlier outputs) as engine messages. Function calls join the
    assistant turn they belong to; their outputs become tool turns. Image and file parts take
    what `media` resolved for them."""
    messages: list[ChatMessage] = []
    thought = ""  # a reasoning item's text, for the assistant turn that follows it
    for item in compaction.apply(items):
        kind = item.get("type", "message")
        if kind == "reasoning":
            thought = reasoning_text(item)
            continue
        if kind == "message":
            role = _ROLES.get(item.get("role", "user"), "user")
            message = ChatMessage(role=role, content=item_text(item))
            for j, part in enumerate(item.get("content") or []):
                found = (media or {}).get((item.get("id", ""), j))
                if part.get("type") in ("input_image", "input_file") and found is not None:
                    found.attach(message)
            messages.append(message)
        elif kind in ("function_call", "custom_tool_call"):
            name = item["name"]
            if item.get("namespace"):
                name = f"{item['namespace']}__{name}"
            arguments = (
                (item.get("arguments") or "{}")
                if kind == "function_call"
                else (json.dumps({"input": item.get("input", "")}, ensure_ascii=False))
            )
            call = ToolCall(item["call_id"], name, arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                last.tool_calls.append(call)
            else:
                messages.append(ChatMessage("assistant", "", tool_calls=[call]))
        elif kind == "image_generation_call":
            prompt = item.get("revised_prompt") or ""
            messages.append(ChatMessage("assistant", f"(generated an image: {prompt})"))
        elif kind == "file_search_call":
            # The thread remembers that a search ran; its excerpts served that turn only.
            queries = ", ".join(item.get("queries") or [])
            messages.append(ChatMessage("assistant", f"(searched the files for: {queries})"))
        elif kind == "compaction":
            summary = compaction.decode(item.get("encrypted_content") or "") or ""
            messages.append(
                ChatMessage("assistant", f"(summary of the conversation before this: {summary})")
            )
        elif kind == "mcp_call":
            said = item.get("output") if item.get("error") is None else "(it failed)"
            messages.append(
                ChatMessage(
                    "assistant",
                    f"(called {item.get('name')} on {item.get('server_label')} with "
                    f"{item.get('arguments') or '{}'}: {said})",
                )
            )
        elif kind == "mcp_approval_request":
            messages.append(
                ChatMessage(
                    "assistant",
                    f"(asked the user to approve calling {item.get('name')} on "
                    f"{item.get('server_label')})",
                )
            )
        elif kind == "code_interpreter_call":
            logs = "".join(
                str(o.get("logs") or "") for o in item.get("outputs") or [] if "logs" in o
            )
            said = f" Its output:\n{logs[:2000]}" if logs else ""
            messages.append(
                ChatMessage(
                    "assistant", f"(ran this Python code:\n{item.get('code') or ''}\n){said}"
                )
            )
        elif kind == "web_search_call":
            query = (item.get("action") or {}).get("query") or ""
            messages.append(ChatMessage("assistant", f"(searched the web for: {query})"))
        elif kind in ("shell_call", "local_shell_call", "apply_patch_call"):
            call = _agent_call(item)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                last.tool_calls.append(call)
            else:
                messages.append(ChatMessage("assistant", "", tool_calls=[call]))
        elif kind in ("shell_call_output", "local_shell_call_output", "apply_patch_call_output"):
            messages.append(ChatMessage("tool", _agent_output(item), tool_call_id=item["call_id"]))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                ChatMessage("tool", str(item.get("output", "")), tool_call_id=item["call_id"])
            )
        if thought and messages:
            last = messages[-1]
            if last.role == "assistant" and not last.reasoning:
                last.reasoning = thought
            thought = ""
    return messages


def reasoning_text(item: dict[str, Any]) -> str:
    """A reasoning item's thinking: its text, else its summary (all some servers keep)."""
    parts = item.get("content") or []
    text = "".join(str(p.get("text", "")) for p in parts if p.get("type") == "reasoning_text")
    if not text:
        text = "\n\n".join(str(p.get("text", "")) for p in item.get("summary") or [])
    return text
