"""/v1/chat/completions on the same backends, for the many tools that still speak it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from kotae import ids
from kotae.config import ModelConfig, Settings
from kotae.errors import ContextLengthExceeded, InvalidRequest
from kotae.ops.metrics import Metrics
from kotae.providers.inference.base import (
    Admission,
    CancelToken,
    ChatBackend,
    ChatMessage,
    ChatRequest,
    Finished,
    Role,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    admit,
)
from kotae.schemas.chat_completions import ChatMessageIn, CreateChatCompletion
from kotae.services.models import ModelRegistry
from kotae.services.responses.context import (
    BIG_THREAD,
    refuse_message_count,
    refuse_oversized,
    tools_text,
)
from kotae.services.responses.media import MediaResolver, has_media
from kotae.services.responses.reasoning import apply_effort, check_effort
from kotae.services.responses.tools import read_tools

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


class ChatCompletionsService:
    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        media: MediaResolver | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._settings = settings
        self._registry = registry
        self._media = media

    async def prepare(
        self, project_id: str, req: CreateChatCompletion
    ) -> tuple[ChatBackend, ChatRequest, str, Admission]:
        """The engine, its request and the model's name, with a place in the engine's queue
        held until `create` or `stream` ends (a refusal here gives it back)."""
        if req.top_logprobs and not req.logprobs:
            raise InvalidRequest("top_logprobs needs logprobs set to true.", param="top_logprobs")
        entry = await asyncio.to_thread(self._registry.resolve, req.model, project_id)
        check_effort(req.reasoning_effort, entry.config, req.model, "reasoning_effort")
        backend = self._registry.backend_for(entry)
        admission = admit(backend)
        chat = await admission.hold(self._chat_request(project_id, req, entry, backend))
        return backend, chat, entry.config.id, admission

    async def _chat_request(
        self, project_id: str, req: CreateChatCompletion, entry: Any, backend: ChatBackend
    ) -> ChatRequest:
        # Counted before they are converted (each is one engine message, a token at least),
        # and a long list converted off the event loop: 100,000 of them held it ~0.5 s.
        refuse_message_count(len(req.messages), backend.context_window, "messages")
        if len(req.messages) > BIG_THREAD:
            messages = await asyncio.to_thread(_messages, req.messages)
        else:
            messages = _messages(req.messages)
        await self._add_media(project_id, req, messages, entry.config)
        tools = await read_tools(
            [_responses_tool(t, i) for i, t in enumerate(req.tools or [])],
            _responses_choice(req.tool_choice),
        )
        max_out = (
            req.max_completion_tokens or req.max_tokens or self._settings.max_output_tokens_default
        )
        # The tools offered are part of the prompt the engine renders.
        offered = tools.functions if tools.mode != "none" and tools.functions else None
        tool_chars = await tools_text(offered, backend.context_window)
        refuse_oversized(messages, backend.context_window, "messages", tool_chars)
        tokens = await backend.count_tokens(messages, offered)
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
            tools=tools.functions,
            tool_mode=tools.mode,
            allowed_tools=tools.allowed_functions(),
            parallel_tool_calls=req.parallel_tool_calls is not False,
            stream=req.stream,
            logprobs=bool(req.logprobs),
            top_logprobs=req.top_logprobs or 0,
            repeat_penalty=entry.config.repeat_penalty,
            loop_guard=entry.config.loop_guard,
        )
        return apply_effort(chat, entry.config, req.reasoning_effort)

    async def create(
        self,
        backend: ChatBackend,
        chat: ChatRequest,
        model: str,
        admission: Admission,
        cancel: CancelToken | None = None,
        n: int = 1,
    ) -> ChatCompletion:
        try:
            return await self._create(backend, chat, model, cancel, n)
        finally:
            admission.release()

    async def stream(
        self,
        backend: ChatBackend,
        chat: ChatRequest,
        model: str,
        admission: Admission,
        include_usage: bool,
        n: int = 1,
    ) -> AsyncIterator[ChatCompletionChunk]:
        try:
            async for chunk in self._stream(backend, chat, model, include_usage, n):
                yield chunk
        finally:
            admission.release()

    async def _create(
        self,
        backend: ChatBackend,
        chat: ChatRequest,
        model: str,
        cancel: CancelToken | None = None,
        n: int = 1,
    ) -> ChatCompletion:
        choices = []
        usage = Finished("stop", 0, 0, 0)
        for index in range(n):  # one engine slot: the choices are sampled one after another
            choice, finished = await self._choice(backend, nth_choice(chat, index), index, cancel)
            choices.append(choice)
            usage = _plus(usage, finished, first=index == 0)
        self._count(model, usage)
        return ChatCompletion.model_validate(
            {
                "id": ids.new_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": _usage(usage),
            }
        )

    async def _choice(
        self, backend: ChatBackend, chat: ChatRequest, index: int, cancel: CancelToken | None
    ) -> tuple[dict[str, Any], Finished]:
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        finished: Finished | None = None
        tokens: list[dict[str, Any]] = []
        async for chunk in backend.stream(chat, cancel or CancelToken()):
            if isinstance(chunk, TextDelta):
                text.append(chunk.text)
                tokens.extend(_logprob(t) for t in chunk.logprobs or [])
            elif isinstance(chunk, ToolCallDelta):
                calls.append(_call(chunk))
            elif isinstance(chunk, Finished):  # thinking is not shown here, as at OpenAI
                finished = chunk
        assert finished is not None
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(text) or None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        elif message["content"] is None:
            message["content"] = ""
        choice = {
            "index": index,
            "finish_reason": _finish(finished),
            "message": message,
            "logprobs": {"content": tokens, "refusal": None} if chat.logprobs else None,
        }
        return choice, finished

    async def _stream(
        self,
        backend: ChatBackend,
        chat: ChatRequest,
        model: str,
        include_usage: bool,
        n: int = 1,
    ) -> AsyncIterator[ChatCompletionChunk]:
        base = {
            "id": ids.new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        def chunk(
            index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
        ) -> ChatCompletionChunk:
            choice = {"index": index, "delta": delta, "finish_reason": finish}
            if logprobs is not None:
                choice["logprobs"] = logprobs
            return ChatCompletionChunk.model_validate({**base, "choices": [choice]})

        usage = Finished("stop", 0, 0, 0)
        for choice in range(n):
            yield chunk(choice, {"role": "assistant", "content": ""})
            calls = 0
            async for item in backend.stream(nth_choice(chat, choice), CancelToken()):
                if isinstance(item, TextDelta):
                    scored = None
                    if chat.logprobs:
                        scored = {
                            "content": [_logprob(t) for t in item.logprobs or []],
                            "refusal": None,
                        }
                    yield chunk(choice, {"content": item.text}, logprobs=scored)
                elif isinstance(item, ToolCallDelta):
                    yield chunk(choice, {"tool_calls": [{"index": calls, **_call(item)}]})
                    calls += 1
                elif isinstance(item, Finished):
                    usage = _plus(usage, item, first=choice == 0)
                    yield chunk(choice, {}, _finish(item))
        self._count(model, usage)
        if include_usage:
            yield ChatCompletionChunk.model_validate(
                {**base, "choices": [], "usage": _usage(usage)}
            )

    def _count(self, model: str, finished: Finished) -> None:
        if self._metrics is not None:
            self._metrics.usage(model, finished.input_tokens, finished.output_tokens)

    async def _add_media(
        self,
        project_id: str,
        req: CreateChatCompletion,
        messages: list[ChatMessage],
        cfg: ModelConfig,
    ) -> None:
        """image_url and file parts, resolved as the Responses API resolves its own."""
        if self._media is None or not any(isinstance(m.get("content"), list) for m in req.messages):
            return  # text only: no item made for each message
        items = [
            {"id": str(i), "type": "message", "content": _media_parts(m.get("content"))}
            for i, m in enumerate(req.messages)
        ]
        if not has_media(items):
            return
        found = await self._media.resolve(
            project_id,
            [],
            items,
            vision=cfg.sees_images,
            param="messages",
        )
        for (index, _), media in found.items():
            message = messages[int(index)]
            media.attach(message)


def nth_choice(chat: ChatRequest, index: int) -> ChatRequest:
    """The request of choice `index`: with a seed, each choice gets its own (seed + index),
    so n choices are n samples, and the same request gives the same n again."""
    if index == 0 or chat.seed is None:
        return chat
    return dataclasses.replace(chat, seed=chat.seed + index)


def _plus(total: Finished, more: Finished, *, first: bool) -> Finished:
    """Usage over the choices: the prompt counted once (as OpenAI bills n), every
    completion counted."""
    return dataclasses.replace(
        more,
        input_tokens=more.input_tokens if first else total.input_tokens,
        cached_tokens=more.cached_tokens if first else total.cached_tokens,
        output_tokens=total.output_tokens + more.output_tokens,
    )


def _logprob(token: TokenLogprob) -> dict[str, Any]:
    return {
        "token": token.token,
        "bytes": token.bytes,
        "logprob": token.logprob,
        "top_logprobs": [{"token": t, "bytes": b, "logprob": lp} for t, b, lp in token.top],
    }


def _finish(finished: Finished) -> str:
    return {"length": "length", "tool_calls": "tool_calls"}.get(finished.reason, "stop")


def _call(delta: ToolCallDelta) -> dict[str, Any]:
    c = delta.call
    return {
        "id": c.call_id,
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments},
    }


def _media_parts(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Chat content parts in the Responses shape (text parts become placeholders, so the
    indices still match)."""
    if not isinstance(content, list):
        return []
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, dict) else image
            parts.append({"type": "input_image", "image_url": url})
        elif part.get("type") == "file":
            file = part.get("file") or {}
            parts.append({"type": "input_file", **file})
        else:
            parts.append({"type": "input_text", "text": ""})
    return parts


def _messages(given: list[ChatMessageIn]) -> list[ChatMessage]:
    return [_message(m, i) for i, m in enumerate(given)]


def _message(m: ChatMessageIn, index: int) -> ChatMessage:
    content = m.get("content")
    if m["role"] == "tool":
        if not m.get("tool_call_id"):
            raise InvalidRequest(
                "Tool messages need tool_call_id.", param=f"messages[{index}].tool_call_id"
            )
        return ChatMessage("tool", _text(content, index), tool_call_id=m.get("tool_call_id"))
    calls = [
        ToolCall(
            str(c.get("id", "")),
            str(c.get("function", {}).get("name", "")),
            str(c.get("function", {}).get("arguments", "{}")),
        )
        for c in m.get("tool_calls") or []
    ]
    return ChatMessage(_ROLES[m["role"]], _text(content, index), tool_calls=calls)


def _responses_tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    """Chat's {"type": "function", "function": {...}} as the Responses tool shape."""
    if tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        raise InvalidRequest("Only function tools are supported.", param=f"tools[{index}]")
    return {"type": "function", **tool["function"]}


def _responses_choice(choice: str | dict[str, Any] | None) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "name": (choice.get("function") or {}).get("name")}
    return choice


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
        if part.get("type") in ("image_url", "file"):
            continue  # resolved by _add_media
        if part.get("type") != "text":
            raise InvalidRequest(
                f"Content of type '{part.get('type')}' is not supported yet.",
                param=f"messages[{index}].content[{j}].type",
            )
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)
