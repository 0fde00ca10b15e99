"""One response's run: the agent loop's events through the emitter, the row kept current
while it runs (checkpoints), and the finished response stored.

Every path runs the same event stream (`Runner.events`); a non-streamed response is that
stream drained."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseUsage,
)

from kotae.config import Settings
from kotae.errors import KotaeError
from kotae.ops.metrics import Metrics
from kotae.providers.inference.base import CancelToken, ChatRequest, Finished, ToolCall
from kotae.schemas.responses import CreateResponse
from kotae.services.conversations import ConversationsService
from kotae.services.responses.agent_items import agent_call_item
from kotae.services.responses.builtin import ToolDeps, ToolRun
from kotae.services.responses.convert import item_text
from kotae.services.responses.events import ResponseEmitter, StreamEvent
from kotae.services.responses.loop import AgentLoop, plus
from kotae.services.responses.prepare import Prepared
from kotae.services.responses.reasoning import (
    ENCRYPTED,
    ReasoningPlan,
    apply_effort,
    summary_mode,
)
from kotae.services.responses.sealing import Sealer
from kotae.storage.repositories.responses import ResponseRepository

LOGPROBS = "message.output_text.logprobs"
CHECKPOINT_SECONDS = 1.0  # a running stored response's row is written at least this often
CHECKPOINT_EVENTS = ("response.in_progress", "response.output_item.done")
TERMINAL_EVENTS = (ResponseCompletedEvent, ResponseIncompleteEvent, ResponseFailedEvent)
# Kept in a stored body beside the response, never shown: the live stream's last number.
SEQUENCE_END = "_kotae_sequence_end"


class Runner:
    def __init__(
        self,
        settings: Settings,
        repo: ResponseRepository,
        tool_deps: ToolDeps,
        owner: str,
        conversations: ConversationsService | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._tool_deps = tool_deps
        self._owner = owner
        self._conversations = conversations
        self._metrics = metrics
        self.sealer: Sealer | None = None  # seals reasoning for include=[ENCRYPTED]

    async def create(self, p: Prepared, cancel: CancelToken | None = None) -> Response:
        """A plain (non-streamed) response: the event stream, drained. `cancel` is set when
        the client goes away: the work stops and nothing is stored."""
        final = p.response
        async for event in self.events(p, cancel or CancelToken(), background=False):
            if isinstance(event, TERMINAL_EVENTS):
                final = event.response
        return final

    def stream(self, p: Prepared) -> AsyncIterator[StreamEvent]:
        events = self.events(p, CancelToken(), background=False)
        return self.checkpointed(p, events) if p.request.store else events

    async def events(
        self, p: Prepared, cancel: CancelToken, *, background: bool
    ) -> AsyncIterator[StreamEvent]:
        """The response's events; its place in the engine's queue is given back at the end,
        however it ends (a client that leaves closes this generator)."""
        try:
            async for event in self._events(p, cancel, background=background):
                yield event
        finally:
            p.admission.release()

    async def _events(
        self, p: Prepared, cancel: CancelToken, *, background: bool
    ) -> AsyncIterator[StreamEvent]:
        emitter = ResponseEmitter(
            p.response,
            snapshots=p.request.stream or background,
            keep_logprobs=LOGPROBS in (p.request.include or []),
        )
        p.emitter = emitter
        yield emitter.created()
        if background:
            yield emitter.queued()
        yield emitter.in_progress()
        spent = [0, 0, 0, 0]  # input, output, cached, reasoning tokens before the answer
        if p.compaction is not None and p.compaction_cost is not None:
            for event in emitter.whole_item(p.compaction):
                yield event
            spent = plus(spent, p.compaction_cost)
        run = ToolRun(
            emitter,
            p.project_id,
            list(p.request.include or []),
            cancel,
            self._tool_deps,
            # The user's own words, without the automatic descriptions of their images.
            question=last_user_words(p.new_items),
            constrained=not p.entry.config.native_tools,
            history=p.history,
            new_items=p.new_items,
        )
        base = chat_request(p)
        loop = AgentLoop(
            p.backend,
            base,
            p.tools,
            run,
            native=p.entry.config.native_tools,
            max_tool_calls=p.request.max_tool_calls,
            max_turns=self._settings.max_model_turns,
            client_call_events=lambda call: client_call_events(emitter, p, call),
            reasoning=self.reasoning_plan(p, base),
        )
        try:
            async for step in loop.events():
                yield step
        except KotaeError as exc:
            if not background and not p.request.stream:
                raise
            if emitter.reasoning_open:  # the thinking so far stays, marked unfinished
                for event in emitter.finish_reasoning_text():
                    yield event
                yield emitter.finish_reasoning(status="incomplete")
            if emitter.message_open:  # the text so far stays, marked unfinished
                for event in emitter.finish_message("incomplete"):
                    yield event
            yield emitter.failed(exc.message)
            await self.persist(p, emitter.response, background)
            return
        assert loop.end is not None
        finished = loop.end.finished
        spent = [a + b for a, b in zip(spent, loop.end.spent, strict=True)]
        assert finished is not None
        truncated = finished.reason == "length"
        cancelled = finished.reason == "cancelled"
        if cancelled:  # what was said so far stays, unfinished; no empty message is made up
            if emitter.message_open:
                for event in emitter.finish_message("incomplete"):
                    yield event
        elif not emitter.message_open and not loop.end.for_client:
            for event in emitter.start_message():
                yield event
        if emitter.message_open and loop.end.cites:
            text = emitter.open_text()
            notes = [note for cite in loop.end.cites for note in cite(text)]
            for event in emitter.annotate(notes):
                yield event
        if emitter.message_open:
            for event in emitter.finish_message("incomplete" if truncated else "completed"):
                yield event
        usage = usage_of(finished, spent)
        if self._metrics is not None:
            self._metrics.usage(p.response.model, usage.input_tokens, usage.output_tokens)
        if cancelled:
            emitter.response.usage = usage
            emitter.cancelled()
            if background:  # otherwise the client that would read it is gone
                await self.persist(p, emitter.response, background)
            return
        terminal = (
            emitter.incomplete(usage, "max_output_tokens")
            if truncated
            else emitter.completed(usage)
        )
        # Stored before the client hears "completed", so an immediate follow-up that names
        # this response as previous_response_id finds it.
        await self.persist(p, emitter.response, background)
        yield terminal

    def reasoning_plan(self, p: Prepared, base: ChatRequest) -> ReasoningPlan:
        """What this response does with the model's thinking: a summary pass when asked (the
        model with its thinking turned down), a sealed copy when included."""
        sealer = self.sealer
        project = p.project_id
        cfg = p.entry.config
        summary = summary_mode(p.request)
        return ReasoningPlan(
            summary=summary,
            seal=(lambda text: sealer.seal(project, text))
            if sealer is not None and ENCRYPTED in (p.request.include or [])
            else None,
            summary_request=apply_effort(
                dataclasses.replace(
                    base,
                    response_format=None,
                    logprobs=False,
                    top_logprobs=0,
                    temperature=0.2,
                    template_kwargs={},
                    body={},
                ),
                cfg,
                "none",
            )
            if summary
            else None,
        )

    async def persist(self, p: Prepared, response: Response, background: bool) -> None:
        conversation = response.conversation
        if conversation is not None and response.status != "failed":
            assert self._conversations is not None
            outputs = [
                o.model_dump(mode="json", exclude_none=True, by_alias=True) for o in response.output
            ]
            await asyncio.to_thread(
                self._conversations.append, conversation.id, p.new_items + outputs
            )
        if not p.request.store:
            return
        body = response.model_dump(mode="json", exclude_unset=True, by_alias=True)
        if p.emitter is not None and not background:
            # A replay of this stream ends on the number its terminal event had (store.py).
            body[SEQUENCE_END] = p.emitter.last_sequence
        if background or p.saved:
            await asyncio.to_thread(self._repo.update_body, p.project_id, body)
        elif response.status != "failed":
            await asyncio.to_thread(
                self._repo.save,
                p.project_id,
                body,
                p.new_items,
                self._settings.response_ttl_seconds,
            )

    async def save_running(self, p: Prepared, *, request: str | None = None) -> None:
        """The row of a response that runs: visible (retrieve, cancel, input_items) from its
        first event, owned by this process under a lease; or, with its `request`, waiting
        for a worker (no owner yet)."""
        body = p.response.model_dump(mode="json", exclude_unset=True, by_alias=True)
        await asyncio.to_thread(
            lambda: self._repo.save(
                p.project_id,
                body,
                p.new_items,
                self._settings.response_ttl_seconds,
                owner=None if request else self._owner,
                lease_seconds=self._settings.lease_seconds,
                request=request,
            )
        )
        p.saved = True

    async def checkpointed(
        self, p: Prepared, events: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[StreamEvent]:
        """A stored response's row kept current while it runs: saved at its first event, then
        written at each item's end and at least every CHECKPOINT_SECONDS."""
        last = time.monotonic()
        async for event in events:
            if not p.saved:
                await self.save_running(p)
            elif not isinstance(event, TERMINAL_EVENTS) and p.emitter is not None:
                now = time.monotonic()
                if event.type in CHECKPOINT_EVENTS or now - last >= CHECKPOINT_SECONDS:
                    last = now
                    body = p.emitter.partial().model_dump(
                        mode="json", exclude_unset=True, by_alias=True
                    )
                    await asyncio.to_thread(self._repo.update_body, p.project_id, body)
            yield event


def chat_request(p: Prepared) -> ChatRequest:
    """What the engine is asked on each turn, from the response's echoed settings."""
    r = p.response
    fmt = r.text.format if r.text else None
    response_format: dict[str, Any] | None = None
    if fmt is not None and fmt.type == "json_schema":
        response_format = {"type": "json_schema", "name": fmt.name, "schema": fmt.schema_}
    elif fmt is not None and fmt.type == "json_object":
        response_format = {"type": "json_object"}
    effort = p.request.reasoning.effort if p.request.reasoning is not None else None
    request = ChatRequest(
        messages=p.context.messages,
        max_tokens=p.context.max_output_tokens,
        temperature=float(r.temperature if r.temperature is not None else 1.0),
        top_p=float(r.top_p if r.top_p is not None else 1.0),
        response_format=response_format,
        parallel_tool_calls=p.request.parallel_tool_calls is not False,
        stream=p.request.stream or p.request.background,
        logprobs=wants_logprobs(p.request),
        top_logprobs=p.request.top_logprobs or 0,
        repeat_penalty=p.entry.config.repeat_penalty,
        loop_guard=p.entry.config.loop_guard,
    )
    return apply_effort(request, p.entry.config, effort)


def client_call_events(
    emitter: ResponseEmitter, p: Prepared, call: ToolCall
) -> Sequence[StreamEvent]:
    """A call of a client's tool (function, custom, a coding agent's own): its item's events."""
    kind, namespace, name = p.tools.lookup.get(call.name, ("function", None, call.name))
    if kind in ("shell", "local_shell", "apply_patch"):
        try:
            args = json.loads(call.arguments)
        except ValueError:
            args = {}
        return emitter.whole_item(agent_call_item(kind, call.call_id, args))
    if kind == "custom":
        try:
            text = str(json.loads(call.arguments).get("input", ""))
        except (ValueError, AttributeError):
            text = call.arguments
        return emitter.custom_tool_call(call.call_id, name, text)
    return emitter.function_call(call.call_id, name, call.arguments, namespace=namespace)


def usage_of(finished: Finished, spent: list[int]) -> ResponseUsage:
    """The answer's tokens plus those `spent` (input, output, cached, reasoning) on turns
    before it."""
    return ResponseUsage.model_validate(
        {
            "input_tokens": finished.input_tokens + spent[0],
            "input_tokens_details": {
                "cached_tokens": finished.cached_tokens + spent[2],
                "cache_write_tokens": 0,
            },
            "output_tokens": finished.output_tokens + spent[1],
            "output_tokens_details": {
                "reasoning_tokens": finished.reasoning_tokens + spent[3],
            },
            "total_tokens": finished.input_tokens + finished.output_tokens + spent[0] + spent[1],
        }
    )


def wants_logprobs(req: CreateResponse) -> bool:
    return bool(req.top_logprobs) or LOGPROBS in (req.include or [])


def last_user_words(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            words = item_text(item).strip()
            if words:
                return words
    return ""
