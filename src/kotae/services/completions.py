"""The legacy `POST /v1/completions`: a text prompt continued as it is (no chat template), on
the same engines, for older clients and evaluation harnesses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types import Completion

from kotae import ids
from kotae.errors import InvalidRequest
from kotae.ops.metrics import Metrics
from kotae.providers.inference.base import (
    Admission,
    CancelToken,
    ChatBackend,
    ChatRequest,
    Finished,
    TextDelta,
    TokenLogprob,
    admit,
)
from kotae.schemas.completions import CreateCompletion
from kotae.services.chat_completions import nth_choice
from kotae.services.models import ModelRegistry

MAX_PROMPTS = 64


class Chunk:
    """One streamed text_completion chunk, written as it is."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def model_dump_json(self, *, exclude_unset: bool = False, by_alias: bool | None = None) -> str:
        return json.dumps(self.body, ensure_ascii=False)


class CompletionsService:
    def __init__(self, registry: ModelRegistry, metrics: Metrics | None = None) -> None:
        self._registry = registry
        self._metrics = metrics

    async def prepare(
        self, project_id: str, req: CreateCompletion
    ) -> tuple[ChatBackend, list[list[ChatRequest]], str, Admission]:
        """The engine, and for each prompt its n requests (choice i with seed + i)."""
        prompts = _prompts(req)
        if req.suffix:
            raise InvalidRequest(
                "suffix (insertion) is not supported by this server's engines.", param="suffix"
            )
        if req.best_of is not None and req.best_of != (req.n or 1):
            raise InvalidRequest("best_of other than n is not supported.", param="best_of")
        entry = await asyncio.to_thread(self._registry.resolve, req.model, project_id)
        backend = self._registry.backend_for(entry)
        admission = admit(backend)
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        requests = [
            [
                nth_choice(
                    ChatRequest(
                        messages=[],
                        prompt=prompt,
                        max_tokens=max(1, req.max_tokens if req.max_tokens is not None else 16),
                        temperature=req.temperature
                        if req.temperature is not None
                        else entry.config.default_temperature,
                        top_p=req.top_p if req.top_p is not None else entry.config.default_top_p,
                        stop=stop,
                        seed=req.seed,
                        stream=bool(req.stream),
                        logprobs=req.logprobs is not None,
                        top_logprobs=req.logprobs or 0,
                    ),
                    i,
                )
                for i in range(req.n or 1)
            ]
            for prompt in prompts
        ]
        return backend, requests, entry.config.id, admission

    async def create(
        self,
        backend: ChatBackend,
        requests: list[list[ChatRequest]],
        model: str,
        admission: Admission,
        echo: bool,
        cancel: CancelToken | None = None,
    ) -> Completion:
        try:
            choices = []
            input_tokens = output_tokens = 0
            for index, (choice, request) in enumerate(_choices(requests)):
                text, scored, finished = await self._one(backend, request, cancel)
                if choice == 0:  # a prompt is counted once, however many its choices
                    input_tokens += finished.input_tokens
                output_tokens += finished.output_tokens
                head = (request.prompt or "") if echo else ""
                choices.append(
                    {
                        "index": index,
                        "text": head + text,
                        "finish_reason": _finish(finished),
                        "logprobs": _legacy(scored, len(head)) if request.logprobs else None,
                    }
                )
        finally:
            admission.release()
        self._count(model, input_tokens, output_tokens)
        return Completion.model_validate(
            {
                "id": ids.new_id("cmpl"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": _usage(input_tokens, output_tokens),
            }
        )

    async def _one(
        self, backend: ChatBackend, request: ChatRequest, cancel: CancelToken | None
    ) -> tuple[str, list[TokenLogprob], Finished]:
        text: list[str] = []
        scored: list[TokenLogprob] = []
        finished: Finished | None = None
        async for chunk in backend.stream(request, cancel or CancelToken()):
            if isinstance(chunk, TextDelta):
                text.append(chunk.text)
                scored.extend(chunk.logprobs or [])
            elif isinstance(chunk, Finished):
                finished = chunk
        assert finished is not None
        return "".join(text), scored, finished

    async def stream(
        self,
        backend: ChatBackend,
        requests: list[list[ChatRequest]],
        model: str,
        admission: Admission,
        echo: bool,
        include_usage: bool,
    ) -> AsyncIterator[Chunk]:
        base = {
            "id": ids.new_id("cmpl"),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
        }

        def chunk(index: int, text: str, finish: str | None, logprobs: Any = None) -> Chunk:
            # A chunk's finish_reason is null until its last: the SDK's type says otherwise.
            choice = {"index": index, "text": text, "finish_reason": finish, "logprobs": logprobs}
            return Chunk({**base, "choices": [choice]})

        input_tokens = output_tokens = 0
        try:
            for index, (choice, request) in enumerate(_choices(requests)):
                offset = 0
                if echo and request.prompt:
                    yield chunk(index, request.prompt, None)
                    offset = len(request.prompt)
                async for item in backend.stream(request, CancelToken()):
                    if isinstance(item, TextDelta):
                        scored = _legacy(item.logprobs or [], offset) if request.logprobs else None
                        offset += len(item.text)
                        yield chunk(index, item.text, None, scored)
                    elif isinstance(item, Finished):
                        if choice == 0:
                            input_tokens += item.input_tokens
                        output_tokens += item.output_tokens
                        yield chunk(index, "", _finish(item))
        finally:
            admission.release()
        self._count(model, input_tokens, output_tokens)
        if include_usage:
            yield Chunk({**base, "choices": [], "usage": _usage(input_tokens, output_tokens)})

    def _count(self, model: str, input_tokens: int, output_tokens: int) -> None:
        if self._metrics is not None:
            self._metrics.usage(model, input_tokens, output_tokens)


def _choices(requests: list[list[ChatRequest]]) -> list[tuple[int, ChatRequest]]:
    """Every request in order, with its choice number within its prompt."""
    return [(i, request) for group in requests for i, request in enumerate(group)]


def _finish(finished: Finished) -> str:
    return "length" if finished.reason == "length" else "stop"


def _prompts(req: CreateCompletion) -> list[str]:
    prompt = req.prompt
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise InvalidRequest("prompt must not be empty.", param="prompt")
    if all(isinstance(p, str) for p in prompt):
        if len(prompt) > MAX_PROMPTS:
            raise InvalidRequest(f"At most {MAX_PROMPTS} prompts a request.", param="prompt")
        return [str(p) for p in prompt]
    # Token ids belong to one tokenizer; the engines here each have their own.
    raise InvalidRequest(
        "Token-array prompts are not supported: send the prompt as text.", param="prompt"
    )


def _legacy(scored: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """Logprobs in the legacy shape: parallel lists, and each token's text offset."""
    offsets = []
    for t in scored:
        offsets.append(offset)
        offset += len(t.token)
    return {
        "tokens": [t.token for t in scored],
        "token_logprobs": [t.logprob for t in scored],
        "top_logprobs": [{tok: lp for tok, _, lp in t.top} for t in scored],
        "text_offset": offsets,
    }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
