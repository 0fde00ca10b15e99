"""Remote engines that speak OpenAI's /v1/chat/completions: vLLM, SGLang, Ollama, llama.cpp
server."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp

from kotae import ids
from kotae.errors import BackendError, ContextLengthExceeded, InvalidRequest
from kotae.providers.inference import tool_calls
from kotae.providers.inference.base import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    Finished,
    FunctionSpec,
    ReasoningDelta,
    StreamChunk,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    with_system_note,
)
from kotae.providers.inference.thinking import ThinkSplitter
from kotae.providers.inference.upstreams import UpstreamPool

# Failures before the engine saw the request: safe to send it to another server.
CONNECTION_ERRORS = (
    aiohttp.ClientConnectorError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
)


def estimate_tokens(messages: list[ChatMessage]) -> int:
    # The protocol has no tokenizer endpoint; about 3 characters a token, plus each
    # message's template overhead, errs on the long side for English and Japanese alike.
    return sum(len(m.content) // 3 + 4 for m in messages) + 2


class OpenAICompatBackend:
    def __init__(
        self,
        model_id: str,
        base_url: str | list[str],
        *,
        remote_model: str | None = None,
        api_key: str | None = None,
        context_window: int = 4096,
        timeout: float = 600.0,
        tool_calling: str = "native",
    ) -> None:
        # "constrained": the engine has no tool calling; tools go through the prompt and
        # its JSON-schema output instead.
        self._constrained_tools = tool_calling == "constrained"
        self.model_id = model_id
        self.context_window = context_window
        self.capabilities = Capabilities(json_schema=True, exact_token_count=False)
        self._remote_model = remote_model or model_id
        # llama-cpp-python's server takes schemas as {"type": "json_object", "schema": ...}
        # and rejects OpenAI's json_schema; learnt on the first refusal.
        self._schema_in_json_object = False
        # One server, or a pool of replicas of the same model.
        self.pool = UpstreamPool([base_url] if isinstance(base_url, str) else base_url)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=10.0)
        # aiohttp, not httpx: a third of the CPU per request, measured here (0.6 vs 1.6 ms).
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: it binds to the running loop
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    @contextlib.asynccontextmanager
    async def _post(self, payload: dict[str, Any]) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer of the first server, least busy first, that takes the connection. A
        connection error is the only failure moved on from: the request never reached that
        engine, so no token was produced there."""
        error: BaseException | None = None
        for upstream in self.pool.candidates():
            async with self.pool.using(upstream):
                # A raw prompt (legacy completions) goes to the engine's own /completions.
                path = "completions" if "prompt" in payload else "chat/completions"
                request = self._client().post(f"{upstream.base_url}/{path}", json=payload)
                try:
                    resp = await request.__aenter__()
                except CONNECTION_ERRORS as exc:
                    self.pool.failed(upstream, exc, self._client())
                    error = exc
                    continue
                try:
                    yield resp
                finally:
                    await request.__aexit__(None, None, None)
                self.pool.succeeded(upstream)
                return
        assert error is not None
        raise error

    async def count_tokens(
        self, messages: list[ChatMessage], tools: list[FunctionSpec] | None = None
    ) -> int:
        extra = sum(len(json.dumps(t.parameters)) // 3 + 10 for t in tools or [])
        return estimate_tokens(messages) + extra

    def check_capacity(self) -> None:
        # The remote engine queues (or answers 429) itself.
        return None

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self._remote_model,
            "messages": [_wire_message(m) for m in request.messages],
            # Both spellings: llama.cpp's server reads only max_tokens.
            "max_tokens": request.max_tokens,
            "max_completion_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            payload["stop"] = request.stop
        if request.template_kwargs:
            payload["chat_template_kwargs"] = request.template_kwargs
        payload.update(request.body)
        if request.prompt is not None:
            payload.pop("chat_template_kwargs", None)
            del payload["messages"], payload["max_completion_tokens"]
            payload["prompt"] = request.prompt
            if request.seed is not None:
                payload["seed"] = request.seed
            return payload
        tools = [
            t
            for t in request.tools
            if request.allowed_tools is None or t.name in request.allowed_tools
        ]
        if tools and request.tool_mode != "none":
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description or "",
                        "parameters": t.parameters,
                        "strict": t.strict,
                    },
                }
                for t in tools
            ]
            if request.tool_mode == "required" and len(tools) == 1:
                payload["tool_choice"] = {"type": "function", "function": {"name": tools[0].name}}
            else:
                payload["tool_choice"] = request.tool_mode
            payload["parallel_tool_calls"] = request.parallel_tool_calls
        if request.seed is not None:
            payload["seed"] = request.seed
        if request.logprobs:
            payload["logprobs"] = True
            payload["top_logprobs"] = request.top_logprobs
        fmt = request.response_format
        if fmt and fmt["type"] == "json_schema" and self._schema_in_json_object:
            payload["response_format"] = {"type": "json_object", "schema": fmt["schema"]}
        elif fmt and fmt["type"] == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": fmt.get("name", "output"),
                    "schema": fmt["schema"],
                    "strict": True,
                },
            }
        elif fmt and fmt["type"] == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    async def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        visible = [
            t
            for t in request.tools
            if request.allowed_tools is None or t.name in request.allowed_tools
        ]
        if self._constrained_tools and visible and request.tool_mode != "none":
            async for chunk in self._constrained(request, visible, cancel):
                yield chunk
            return
        async for chunk in self._plain(request, cancel):
            yield chunk

    async def _constrained(
        self, request: ChatRequest, tools: list[FunctionSpec], cancel: CancelToken
    ) -> AsyncIterator[StreamChunk]:
        """Tools for an engine without tool calling: described in the prompt, and a required
        call decoded by the engine's own JSON-schema output (constrained decoding)."""
        required = request.tool_mode == "required"
        hint = tool_calls.system_prompt(tools, required)
        shown = with_system_note(
            [
                ChatMessage(m["role"], m["content"])
                for m in tool_calls.template_messages(request.messages, native=False)
            ],
            hint,
        )
        fmt = request.response_format
        if required:
            fmt = {
                "type": "json_schema",
                "name": "tool_call",
                "schema": tool_calls.call_schema(tools),
            }
        inner = dataclasses.replace(
            request, messages=shown, tools=[], tool_mode="none", response_format=fmt, stream=False
        )
        text = ""
        finished: Finished | None = None
        async for chunk in self._plain(inner, cancel):
            if isinstance(chunk, TextDelta):
                text += chunk.text
            elif isinstance(chunk, ReasoningDelta):
                yield chunk
            elif isinstance(chunk, Finished):
                finished = chunk
        assert finished is not None
        calls: list[tuple[str, str]] = []
        if required:
            try:
                body = json.loads(text)
                args = body["arguments"]
                calls = [
                    (
                        str(body["name"]),
                        args if isinstance(args, str) else json.dumps(args, ensure_ascii=False),
                    )
                ]
            except (ValueError, KeyError, TypeError):
                calls = []
        else:
            parsed = tool_calls.parse_calls(text)
            if parsed is not None:
                text, calls = parsed
        if text and not (required and calls):
            yield TextDelta(text)
        for name, arguments in calls:
            yield ToolCallDelta(ToolCall(ids.new_id("call"), name, arguments))
        if calls:
            finished = dataclasses.replace(finished, reason="tool_calls")
        yield finished

    async def _plain(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        schema = request.response_format and request.response_format["type"] == "json_schema"
        try:
            async for chunk in self._stream(request, cancel):
                yield chunk
        except _SchemaRefused:
            if not schema or self._schema_in_json_object:
                raise BackendError(
                    f"Model server for '{self.model_id}' refused response_format."
                ) from None
            self._schema_in_json_object = True
            async for chunk in self._stream(request, cancel):
                yield chunk

    async def _stream(
        self, request: ChatRequest, cancel: CancelToken
    ) -> AsyncIterator[StreamChunk]:
        if not request.stream:
            async for chunk in self._whole(request):
                yield chunk
            return
        prompt_estimate = estimate_tokens(request.messages)
        output_count = 0
        finish: str | None = None
        usage: dict[str, Any] | None = None
        calls = _CallAssembler()
        splitter = ThinkSplitter(request.opens_thinking)
        thought = 0  # reasoning deltas, when the usage does not count them
        try:
            async with self._post(self._payload(request)) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    if output_count == 0 and "response_format" in text:
                        raise _SchemaRefused
                    raise _remote_error(resp.status, text)
                async for raw in resp.content:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if cancel.cancelled:
                        yield Finished("cancelled", prompt_estimate, output_count)
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        thinking = reasoning_of(delta)
                        if thinking:
                            output_count += 1
                            thought += 1
                            yield ReasoningDelta(thinking)
                        piece = delta.get("content") or choice.get("text")
                        if piece and request.prompt is not None:
                            output_count += 1
                            yield TextDelta(piece, read_logprobs(choice, request))
                        elif piece:
                            output_count += 1
                            for part in splitter.feed(piece):
                                if isinstance(part, TextDelta):
                                    part.logprobs = read_logprobs(choice, request)
                                else:
                                    thought += 1
                                yield part
                        for call in delta.get("tool_calls") or []:
                            calls.add(call)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"Model server for '{self.model_id}' failed: {exc}") from exc
        if finish is None:
            # A stream cut without finish_reason is not an answer (llama.cpp's server does
            # this when another request interrupts it).
            raise BackendError(f"Model server for '{self.model_id}' ended the stream early.")
        for part in splitter.flush():
            yield part
        for call in calls.finished():
            yield ToolCallDelta(call)
        input_tokens = int(usage["prompt_tokens"]) if usage else prompt_estimate
        output_tokens = int(usage["completion_tokens"]) if usage else output_count
        cached = 0
        if usage and isinstance(usage.get("prompt_tokens_details"), dict):
            cached = int(usage["prompt_tokens_details"].get("cached_tokens") or 0)
        reasoning = reasoning_tokens(usage or {}, thought)
        yield Finished(
            _reason(finish, bool(calls.calls)),
            input_tokens,
            output_tokens,
            cached,
            min(reasoning, output_tokens),
        )

    async def _whole(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        payload = self._payload(request)
        payload["stream"] = False
        del payload["stream_options"]
        try:
            async with self._post(payload) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"Model server for '{self.model_id}' failed: {exc}") from exc
        if status >= 400:
            if "response_format" in text:
                raise _SchemaRefused
            raise _remote_error(status, text)
        body = json.loads(text)
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        thinking = reasoning_of(message)
        if thinking:
            yield ReasoningDelta(thinking)
        content = message.get("content") or choice.get("text") or ""
        pieces: list[StreamChunk] = []
        if content and request.prompt is None:
            splitter = ThinkSplitter(request.opens_thinking)
            pieces = [*splitter.feed(content), *splitter.flush()]
            thinking = thinking or "".join(p.text for p in pieces if isinstance(p, ReasoningDelta))
        elif content:
            pieces = [TextDelta(content)]
        said = "".join(p.text for p in pieces if isinstance(p, TextDelta))
        for piece in pieces:
            if isinstance(piece, ReasoningDelta):
                yield piece
        if said:
            yield TextDelta(said, read_logprobs(choice, request))
        assembler = _CallAssembler()
        for i, call in enumerate(message.get("tool_calls") or []):
            assembler.add({**call, "index": i})
        for call in assembler.finished():
            yield ToolCallDelta(call)
        usage = body.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        output_tokens = int(usage.get("completion_tokens") or 0)
        yield Finished(
            _reason(choice.get("finish_reason"), bool(assembler.calls)),
            int(usage.get("prompt_tokens") or estimate_tokens(request.messages)),
            output_tokens,
            int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
            min(reasoning_tokens(usage, len(thinking) // 4 if thinking else 0), output_tokens),
        )

    async def close(self) -> None:
        await self.pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


def reasoning_of(delta: dict[str, Any]) -> str:
    """The thinking in a chat-completions delta or message, as each engine names it: vLLM's
    `reasoning` (and its older `reasoning_content`, both sent by versions in between),
    llama.cpp server's and SGLang's `reasoning_content`, Ollama's `reasoning` (`thinking`
    on its own API)."""
    for name in ("reasoning_content", "reasoning", "thinking"):
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def reasoning_tokens(usage: dict[str, Any], counted: int) -> int:
    """The usage's reasoning tokens where the engine reports them, else `counted`."""
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict) and details.get("reasoning_tokens") is not None:
        return int(details["reasoning_tokens"])
    return counted


def read_logprobs(choice: dict[str, Any], request: ChatRequest) -> list[TokenLogprob] | None:
    """A chat-completions choice's `logprobs.content`, as the engine-neutral tokens."""
    if not request.logprobs:
        return None
    content = (choice.get("logprobs") or {}).get("content") or []
    out = []
    for token in content:
        raw = token.get("bytes") or list(str(token.get("token", "")).encode())
        top = [
            (
                str(alt.get("token", "")),
                alt.get("bytes") or list(str(alt.get("token", "")).encode()),
                float(alt.get("logprob") or 0.0),
            )
            for alt in token.get("top_logprobs") or []
        ]
        out.append(
            TokenLogprob(str(token.get("token", "")), raw, float(token.get("logprob") or 0.0), top)
        )
    return out


class _CallAssembler:
    """Tool calls from chat-completions deltas: pieces keyed by index, joined at the end."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, delta: dict[str, Any]) -> None:
        slot = self.calls.setdefault(
            int(delta.get("index", 0)), {"id": "", "name": "", "arguments": ""}
        )
        if delta.get("id"):
            slot["id"] = str(delta["id"])
        fn = delta.get("function") or {}
        if fn.get("name"):
            slot["name"] += str(fn["name"])
        if fn.get("arguments"):
            args = fn["arguments"]
            slot["arguments"] += args if isinstance(args, str) else json.dumps(args)

    def finished(self) -> list[ToolCall]:
        return [
            ToolCall(c["id"] or ids.new_id("call"), c["name"], c["arguments"] or "{}")
            for _, c in sorted(self.calls.items())
        ]


def _reason(finish: str | None, had_calls: bool) -> Literal["stop", "length", "tool_calls"]:
    if had_calls:
        return "tool_calls"
    return "length" if finish == "length" else "stop"


def _wire_message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.images:  # only set for models configured with vision = true
        out["content"] = [{"type": "text", "text": m.content}] + [
            {"type": "image_url", "image_url": {"url": url}} for url in m.images
        ]
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.reasoning:
        # Both spellings: vLLM reads `reasoning` (older versions `reasoning_content`, as
        # llama.cpp's server does), Ollama `reasoning`. A template that drops past thinking
        # drops it there.
        out["reasoning_content"] = m.reasoning
        out["reasoning"] = m.reasoning
    return out


class _SchemaRefused(Exception):
    pass


def _remote_error(status: int, text: str) -> Exception:
    try:
        body = json.loads(text)
        err = body.get("error") if isinstance(body, dict) else None
        message = str(err.get("message") if isinstance(err, dict) else body)
    except ValueError:
        message = text[:500]
    if "context" in message.lower() and ("length" in message.lower() or "window" in message):
        return ContextLengthExceeded(message, param="input")
    if 400 <= status < 500:
        return InvalidRequest(f"Model server rejected the request: {message}")
    return BackendError(f"Model server error ({status}): {message}")
