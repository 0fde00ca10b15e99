"""A model's thinking as the response shows it: `reasoning` checked against the model,
mapped onto it (its config's efforts), and each turn's thinking made a reasoning item, with
a summary written by the same model when asked and a sealed copy for stateless clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from kotae.config import OPENAI_REASONING_NAMES, ModelConfig
from kotae.errors import InvalidRequest
from kotae.providers.inference.base import (
    CancelToken,
    ChatBackend,
    ChatMessage,
    ChatRequest,
    Finished,
    ReasoningDelta,
    StreamChunk,
    TextDelta,
    with_system_note,
)
from kotae.schemas.responses import CreateResponse
from kotae.services.responses.events import ResponseEmitter, StreamEvent

ENCRYPTED = "reasoning.encrypted_content"
SUMMARY_TOKENS = {"concise": 96, "auto": 192, "detailed": 384}
SUMMARY_ASK = (
    "Summarize the reasoning the user gives you {size}, in the language it is written in. "
    "Say what was worked out and how, as 'I ...'. Write only the summary."
)
SUMMARY_SIZE = {
    "concise": "in one or two sentences",
    "auto": "in a short paragraph",
    "detailed": "in a few short paragraphs",
}


def summary_mode(req: CreateResponse) -> str | None:
    r = req.reasoning
    return (r.summary or r.generate_summary) if r is not None else None


def check_reasoning(req: CreateResponse, cfg: ModelConfig, asked_as: str) -> None:
    """A summary alone asks nothing of the model and is accepted (Codex sends it to every
    model); an effort must be one the model can follow."""
    effort = req.reasoning.effort if req.reasoning is not None else None
    check_effort(effort, cfg, asked_as, "reasoning.effort")


def check_effort(effort: str | None, cfg: ModelConfig, asked_as: str, param: str) -> None:
    """An effort on a model that does not think is refused, as OpenAI refuses it for its
    models that do not reason; unless the client asked for one of OpenAI's reasoning models
    by name (Codex does, and sends an effort whatever serves it here)."""
    if effort is None or cfg.thinking is not None:
        return
    if any(fnmatch.fnmatchcase(asked_as, name) for name in OPENAI_REASONING_NAMES):
        return
    raise InvalidRequest(
        f"Unsupported parameter: '{param}' is not supported with this model "
        f"('{cfg.id}' does not reason; its config has no thinking table).",
        param=param,
        code="unsupported_parameter",
    )


def reasoning_echo(req: CreateResponse, cfg: ModelConfig) -> dict[str, Any]:
    """`reasoning` as the response shows it: the effort in force (the model's default when
    it thinks and none was sent) and the summary asked for."""
    effort = req.reasoning.effort if req.reasoning is not None else None
    if effort is None and cfg.thinking is not None:
        effort = cfg.thinking.default_effort
    return {"effort": effort, "summary": summary_mode(req)}


def apply_effort(request: ChatRequest, cfg: ModelConfig, effort: Any) -> ChatRequest:
    """The engine request with what the effort sets for this model (its config)."""
    if cfg.thinking is None:
        return request
    setting = cfg.thinking.setting(effort)
    messages = request.messages
    if setting.system_line:
        messages = with_system_note(messages, setting.system_line)
    return dataclasses.replace(
        request,
        messages=messages,
        template_kwargs={**request.template_kwargs, **setting.template_kwargs},
        body={**request.body, **setting.body},
        thinking_budget=setting.budget_tokens,
        opens_thinking=cfg.thinking.opens,
    )


@dataclass
class ReasoningPlan:
    """What a response does with each turn's thinking."""

    summary: str | None = None  # "auto" | "concise" | "detailed": written when asked
    seal: Callable[[str], str] | None = None  # include=["reasoning.encrypted_content"]
    # The engine request of a summary pass (the model with thinking turned down).
    summary_request: ChatRequest | None = None


_END = object()


class TurnThoughts:
    """One model turn's chunks with its thinking made a reasoning item: opened by the first
    thought, closed before anything else the turn says (its summary, when asked, written
    while the answer waits), so the item always precedes the message or calls."""

    def __init__(
        self,
        emitter: ResponseEmitter,
        backend: ChatBackend,
        plan: ReasoningPlan,
        cancel: CancelToken,
    ) -> None:
        self._emitter = emitter
        self._backend = backend
        self._plan = plan
        self._cancel = cancel
        self.summary_cost: Finished | None = None
        self.reasoning = ""  # this turn's thinking, for the next turn's messages

    async def through(
        self, chunks: AsyncIterator[StreamChunk]
    ) -> AsyncIterator[StreamEvent | StreamChunk]:
        emitter = self._emitter
        async for chunk in chunks:
            if isinstance(chunk, ReasoningDelta):
                if emitter.message_open:
                    continue  # thinking after the answer began: not the answer's, not shown
                if not emitter.reasoning_open:
                    for event in emitter.start_reasoning():
                        yield event
                self.reasoning += chunk.text
                yield emitter.reasoning_delta(chunk.text)
                continue
            if emitter.reasoning_open:
                if self._plan.summary and self._plan.summary_request is not None:
                    # The rest of the turn is read on while the summary is written (an
                    # engine that runs one request at a time finishes this one first).
                    async for item in self._while_summarizing(chunk, chunks):
                        yield item
                    return
                async for closing in self._closed_with_summary():
                    yield closing
            yield chunk
        if emitter.reasoning_open:  # thinking to the end (the output cap)
            async for closing in self._closed_with_summary():
                yield closing

    async def _while_summarizing(
        self, first: StreamChunk, rest: AsyncIterator[StreamChunk]
    ) -> AsyncIterator[StreamEvent | StreamChunk]:
        held: asyncio.Queue[object] = asyncio.Queue()
        held.put_nowait(first)

        async def read_on() -> None:
            try:
                async for chunk in rest:
                    held.put_nowait(chunk)
            except BaseException as exc:  # handed to the reader below
                held.put_nowait(exc)
                return
            held.put_nowait(_END)

        task = asyncio.create_task(read_on())
        try:
            async for event in self._closed_with_summary():
                yield event
            while (item := await held.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, StreamChunk)
                yield item
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _closed_with_summary(self) -> AsyncIterator[StreamEvent]:
        emitter = self._emitter
        text = emitter.reasoning_text()
        for event in emitter.finish_reasoning_text():
            yield event
        if self._plan.summary and self._plan.summary_request is not None and text.strip():
            yield emitter.start_summary()
            async for piece in self._summary(text):
                yield emitter.summary_delta(piece)
            for event in emitter.finish_summary():
                yield event
        yield emitter.finish_reasoning(self._plan.seal(text) if self._plan.seal else None)

    async def _summary(self, reasoning: str) -> AsyncIterator[str]:
        """The summary pass: the same model, thinking turned down, a short answer."""
        base = self._plan.summary_request
        assert base is not None and self._plan.summary is not None
        mode = self._plan.summary
        request = dataclasses.replace(
            base,
            messages=with_system_note(
                [ChatMessage("user", reasoning)],
                SUMMARY_ASK.format(size=SUMMARY_SIZE[mode]),
            ),
            max_tokens=SUMMARY_TOKENS[mode],
        )
        started = False
        async for chunk in self._backend.stream(request, self._cancel.child()):
            if isinstance(chunk, TextDelta):
                piece = chunk.text if started else chunk.text.lstrip()
                if piece:
                    started = True
                    yield piece
            elif isinstance(chunk, Finished):
                self.summary_cost = chunk
