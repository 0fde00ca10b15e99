"""/v1/chat/completions on the same backends, for the many tools that still speak it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from kotae import ids
from kotae.config import Settings
from kotae.errors import ContextLengthExceeded, InvalidRequest
from kotae.providers.inference.base import (
    CancelToken,
    ChatBackend,
    ChatMessage,
    ChatRequest,
    Finished,
    TextDelta,
)
from kotae.schemas.chat_completions import CreateChatCompletion
from kotae.services.models import ModelRegistry

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ChatCompletionsService:
    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self._settings = settings
        self._registry = registry

    async def prepare(self, req: CreateChatCompletion) -> tuple[ChatBackend, ChatRequest, str]:
        if req.tools:
            raise InvalidRequest("Tools are not supported by this server yet.", param="tools")
        if req.logprobs:
            raise InvalidRequest("logprobs is not supported yet.", param="logprobs")
        entry = self._registry.resolve(req.model)
        backend = self._registry.backend(req.model)
        backend.check_capacity()
        messages = [
            ChatMessage(_ROLES[m.role], _text(m.content, i))  # type: ignore[arg-type]
            for i, m in enumerate(req.messages)
        ]
        max_out = (
            req.max_completion_tokens or req.max_tokens or self._settings.max_output_tokens_default
        )
        tokens = await backend.count_tokens(messages)
        if tokens + 16 > backend.context_window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {backend.context_window} tokens; "
                f"your messages are {tokens} tokens.",
                param="messages",
            )
        fmt: dict[str, Any] | None = None
        if req.response_format and req.response_format.type == "json_object":
            fmt = {"type": "json_object"}
        elif req.response_format and req.response_format.type == "json_schema":
            if req.response_format.json_schema is None:
                raise InvalidRequest(
                    "json_schema is required.", param="response_format.json_schema"
                )
            fmt = {"type": "json_schema", "schema": req.response_format.json_schema.schema_}
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        chat = ChatRequest(
            messages=messages,
            max_tokens=min(max_out, backend.context_window - tokens),
            temperature=req.temperature
            if req.temperature is not None
            else entry.config.default_temperature,
            top_p=req.top_p if req.top_p is not None else entry.config.default_top_p,
            response_format=fmt,
            stop=stop,
            seed=req.seed,
            stream=req.stream,
        )
        return backend, chat, entry.config.id

    async def create(self, backend: ChatBackend, chat: ChatRequest, model: str) -> ChatCompletion:
        text: list[str] = []
        finished: Finished | None = None
        async for chunk in backend.stream(chat, CancelToken()):
            if isinstance(chunk, TextDelta):
                text.append(chunk.text)
            else:
                finished = chunk
        assert finished is not None
        return ChatCompletion.model_validate(
            {
                "id": ids.new_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "length" if finished.reason == "length" else "stop",
                        "message": {"role": "assistant", "content": "".join(text)},
                        "logprobs": None,
                    }
                ],
                "usage": _usage(finished),
            }
        )

    async def stream(
        self, backend: ChatBackend, chat: ChatRequest, model: str, include_usage: bool
    ) -> AsyncIterator[ChatCompletionChunk]:
        base = {
            "id": ids.new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk.model_validate(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            )

        yield chunk({"role": "assistant", "content": ""})
        async for item in backend.stream(chat, CancelToken()):
            if isinstance(item, TextDelta):
                yield chunk({"content": item.text})
            else:
                yield chunk({}, "length" if item.reason == "length" else "stop")
                if include_usage:
                    yield ChatCompletionChunk.model_validate(
                        {**base, "choices": [], "usage": _usage(item)}
                    )


def _usage(finished: Finished) -> dict[str, Any]:
    return {
        "prompt_tokens": finished.input_tokens,
        "completion_tokens": finished.output_tokens,
        "total_tokens": finished.input_tokens + finished.output_tokens,
        "prompt_tokens_details": {"cached_tokens": finished.cached_tokens},
    }


def _text(content: str | list[dict[str, Any]] | None, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part.get("type") != "text":
            raise InvalidRequest(
                f"Content of type '{part.get('type')}' is not supported yet.",
                param=f"messages[{index}].content[{j}].type",
            )
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)
