"""The Response object a request starts as: every field the request sets, echoed as OpenAI
echoes it, with no output and no usage yet."""

from __future__ import annotations

import time
from typing import Any

from openai.types.responses import Response

from kotae import ids
from kotae.schemas.responses import CreateResponse, FormatJsonObject, FormatJsonSchema
from kotae.services.models import ModelEntry
from kotae.services.responses.reasoning import reasoning_echo
from kotae.services.responses.tools import ToolSetup


def new_response(req: CreateResponse, entry: ModelEntry, tools: ToolSetup) -> Response:
    fmt = req.text.format if req.text and req.text.format else None
    text_format: dict[str, Any] = {"type": "text"}
    if isinstance(fmt, FormatJsonSchema):
        text_format = {
            "type": "json_schema",
            "name": fmt.name,
            "schema": fmt.schema_,
            "strict": fmt.strict,
        }
        if fmt.description is not None:
            text_format["description"] = fmt.description
    elif isinstance(fmt, FormatJsonObject):
        text_format = {"type": "json_object"}
    cfg = entry.config
    return Response.model_validate(
        {
            "id": ids.response_id(),
            "object": "response",
            "created_at": int(time.time()),
            "status": "queued" if req.background else "in_progress",
            "background": req.background,
            "model": cfg.id,
            "output": [],
            "instructions": req.instructions,
            "previous_response_id": req.previous_response_id,
            "temperature": req.temperature
            if req.temperature is not None
            else cfg.default_temperature,
            "top_p": req.top_p if req.top_p is not None else cfg.default_top_p,
            "max_output_tokens": req.max_output_tokens,
            "max_tool_calls": req.max_tool_calls,
            "metadata": req.metadata or {},
            "parallel_tool_calls": True
            if req.parallel_tool_calls is None
            else req.parallel_tool_calls,
            "tool_choice": echo_choice(req.tool_choice),
            "tools": tools.echo,
            "text": {
                "format": text_format,
                "verbosity": (req.text.verbosity if req.text else None) or "medium",
            },
            "truncation": req.truncation or "disabled",
            "store": req.store,
            **({"user": req.user} if req.user is not None else {}),
            "safety_identifier": req.safety_identifier,
            "prompt_cache_key": req.prompt_cache_key,
            "prompt": _prompt_echo(req),
            "reasoning": reasoning_echo(req, cfg),
            "service_tier": "default",
            "top_logprobs": req.top_logprobs or 0,
            # No "usage" until the end: optional and never null in OpenAI's schema.
            "error": None,
            "incomplete_details": None,
        }
    )


def echo_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any]:
    # The SDK's response types know web search choices only by their preview names.
    if isinstance(choice, dict) and choice.get("type") in ("web_search", "web_search_2025_08_26"):
        return {"type": "web_search_preview"}
    return choice or "auto"


def _prompt_echo(req: CreateResponse) -> dict[str, Any] | None:
    """The request's `prompt` as the response shows it (an image part with its `detail`)."""
    if req.prompt is None:
        return None
    shown = req.prompt.model_dump(exclude_none=True)
    for name, value in (shown.get("variables") or {}).items():
        if isinstance(value, dict) and value.get("type") == "input_image":
            shown["variables"][name] = {"detail": "auto", **value}
    return shown
