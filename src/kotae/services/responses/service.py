"""ResponsesService: create (plain, streamed, background), retrieve, delete, cancel, input items.

Every path runs the same event stream (`_run`); a non-streamed response is that stream drained.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompactionItem,
    ResponseCompletedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseUsage,
)
from openai.types.responses.response import Conversation as ResponseConversation

from kotae import ids
from kotae.config import Settings
from kotae.errors import (
    InvalidRequest,
    KotaeError,
    NotFound,
    RateLimited,
    queue_full,
    refuse_unknown,
)
from kotae.net.fetch import Fetcher
from kotae.ops.metrics import Metrics
from kotae.providers.inference.base import (
    CancelToken,
    ChatBackend,
    ChatRequest,
    Finished,
    TokenLogprob,
    ToolCall,
)
from kotae.providers.web_search.base import WebSearchProvider
from kotae.schemas.responses import (
    CompactResponse,
    CreateResponse,
    FormatJsonObject,
    FormatJsonSchema,
    check_includes,
)
from kotae.services.conversations import ConversationsService
from kotae.services.images import ImagesService
from kotae.services.models import ModelEntry, ModelRegistry
from kotae.services.responses import compaction
from kotae.services.responses.builtin import ToolDeps, ToolRun
from kotae.services.responses.builtin.image_generation import ImageGeneration
from kotae.services.responses.context import PromptContext, build_context
from kotae.services.responses.convert import item_text, normalize_input, to_chat_messages
from kotae.services.responses.events import ResponseEmitter, StreamEvent
from kotae.services.responses.loop import AgentLoop, plus
from kotae.services.responses.media import Media, MediaResolver, has_media
from kotae.services.responses.summary import summarize
from kotae.services.responses.tools import ToolSetup, parse_tools
from kotae.services.vector_stores.service import VectorStoresService
from kotae.storage.repositories.responses import ItemPage, ResponseRepository

LOGPROBS = "message.output_text.logprobs"


def usage_of(finished: Finished, spent: list[int]) -> ResponseUsage:
    """The answer's tokens plus those `spent` (input, output, cached) on turns before it."""
    return ResponseUsage.model_validate(
        {
            "input_tokens": finished.input_tokens + spent[0],
            "input_tokens_details": {
                "cached_tokens": finished.cached_tokens + spent[2],
                "cache_write_tokens": 0,
            },
            "output_tokens": finished.output_tokens + spent[1],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": finished.input_tokens + finished.output_tokens + spent[0] + spent[1],
        }
    )


def compaction_threshold(entries: list[dict[str, Any]] | None, window: int) -> int | None:
    """The token count over which a create compacts its thread first (context_management),
    or None when it never does. Without a threshold: 80% of the context window."""
    for i, entry in enumerate(entries or []):
        if entry.get("type") != "compaction":
            raise InvalidRequest(
                f"Invalid value for 'context_management[{i}].type': only 'compaction' is "
                "supported.",
                param=f"context_management[{i}].type",
                code="invalid_value",
            )
        refuse_unknown(entry, {"type", "compact_threshold"}, f"context_management[{i}]")
        value = entry.get("compact_threshold")
        if value is None:
            return window * 4 // 5
        if not isinstance(value, int) or isinstance(value, bool) or value < 1000:
            raise InvalidRequest(
                f"Invalid value for 'context_management[{i}].compact_threshold': an integer of "
                "at least 1000.",
                param=f"context_management[{i}].compact_threshold",
                code="invalid_value",
            )
        return value
    return None


def wants_logprobs(req: CreateResponse) -> bool:
    return bool(req.top_logprobs) or LOGPROBS in (req.include or [])


def last_user_words(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            words = item_text(item).strip()
            if words:
                return words
    return ""


def latest_picture(p: Prepared) -> bytes | None:
    """The newest image in the thread: an input image or an earlier generated one."""
    for item in reversed([*p.history, *p.new_items]):
        if item.get("type") == "image_generation_call" and item.get("result"):
            return base64.b64decode(item["result"])
        if item.get("type", "message") == "message":
            for j in reversed(range(len(item.get("content") or []))):
                found = p.media.get((item.get("id", ""), j))
                if found is not None and found.picture is not None:
                    return found.picture
    return None


log = logging.getLogger("kotae.responses")
CHECKPOINT_SECONDS = 1.0  # a running stored response's row is written at least this often
CHECKPOINT_EVENTS = ("response.in_progress", "response.output_item.done")
FOLLOW_POLL_SECONDS = 0.5  # a stream followed from the store, for one that runs elsewhere
RESTARTED = (
    "The server running this response stopped before it finished (a restart or a crash); "
    "the output so far is kept."
)
TERMINAL_EVENTS = (ResponseCompletedEvent, ResponseIncompleteEvent, ResponseFailedEvent)


@dataclass
class Prepared:
    project_id: str
    request: CreateResponse
    tools: ToolSetup
    entry: ModelEntry
    backend: ChatBackend
    context: PromptContext
    new_items: list[dict[str, Any]]
    response: Response
    history: list[dict[str, Any]] = field(default_factory=list)
    media: dict[tuple[str, int], Media] = field(default_factory=dict)
    emitter: ResponseEmitter | None = None  # set once it runs
    compaction: Any = None  # the compaction item made before the answer (context_management)
    compaction_cost: Finished | None = None
    saved: bool = False  # its row exists already (stored while it runs)


@dataclass
class BackgroundRun:
    """Events of a background response, kept so streams can follow or replay it."""

    cancel: CancelToken
    events: list[StreamEvent] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class ResponsesService:
    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        repo: ResponseRepository,
        vector_stores: VectorStoresService,
        web_provider: WebSearchProvider | None = None,
        fetcher: Fetcher | None = None,
        conversations: ConversationsService | None = None,
        media: MediaResolver | None = None,
        images: ImagesService | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._images = images
        self._conversations = conversations
        self._media = media
        self._vector_stores = vector_stores
        self._web = web_provider
        self._fetcher = fetcher
        self._settings = settings
        self._registry = registry
        self._repo = repo
        self._background: dict[str, BackgroundRun] = {}
        # This process, as the owner of the responses it runs (leases in the store).
        self.owner = secrets.token_hex(8)

    # -- create -----------------------------------------------------------------------------

    async def prepare(self, project_id: str, req: CreateResponse) -> Prepared:
        """Everything that can reject a request, before any event is sent."""
        self._check_unsupported(req)
        tools = parse_tools(req.tools, req.tool_choice)
        entry = await asyncio.to_thread(self._registry.resolve, req.model, project_id)
        backend = self._registry.backend_for(entry)
        backend.check_capacity()
        conversation_id = _conversation_id(req.conversation)
        history = await self._history(project_id, req.previous_response_id, conversation_id)
        new_items = normalize_input(await self._resolve_references(project_id, req.input))
        if not new_items and not history:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input")
        _check_approvals([*history, *new_items], new_items)
        deps = self._tool_deps()
        for tool in tools.builtins:
            index = next(i for i, t in enumerate(req.tools or []) if t is tool.raw)
            await tool.check(project_id, f"tools[{index}]", deps, [*history, *new_items])
        compacted: list[Any] = []
        threshold = compaction_threshold(req.context_management, backend.context_window)
        if threshold is not None:
            count = await backend.count_tokens(to_chat_messages([*history, *new_items]))
            if count > threshold:
                # Over the threshold: the model summarizes the thread before it answers, and
                # the compaction item leads this response's output.
                summary, spent_on_summary = await summarize(
                    backend, [*history, *new_items], req.instructions, CancelToken()
                )
                made = compaction.item(summary)
                history = compaction.apply([*history, made])
                compacted = [ResponseCompactionItem.model_validate(made), spent_on_summary]
        media = None
        if self._media is not None and has_media(history + new_items):
            media = await self._media.resolve(
                project_id, history, new_items, vision=entry.config.sees_images
            )
        max_out = req.max_output_tokens or self._settings.max_output_tokens_default
        context = await build_context(
            backend,
            instructions=req.instructions,
            history=history,
            new_items=new_items,
            max_output_tokens=max_out,
            truncation=req.truncation or "disabled",
            tools=tools.functions if tools.mode != "none" else None,
            media=media,
        )
        prepared = Prepared(
            project_id,
            req,
            tools,
            entry,
            backend,
            context,
            new_items,
            self._new_response(req, entry, tools),
        )
        prepared.history, prepared.media = history, media or {}
        if compacted:
            prepared.compaction, prepared.compaction_cost = compacted
        for tool in tools.builtins:
            if isinstance(tool, ImageGeneration):
                tool.picture = lambda: latest_picture(prepared)
                if tool.edits and latest_picture(prepared) is None:
                    raise InvalidRequest(
                        "action 'edit' needs an image in the input or an earlier generated one.",
                        param="tools",
                    )
        if conversation_id is not None:
            prepared.response.conversation = ResponseConversation(id=conversation_id)
        return prepared

    async def _history(
        self, project_id: str, previous_response_id: str | None, conversation_id: str | None
    ) -> list[dict[str, Any]]:
        """The items of the thread a request continues."""
        history: list[dict[str, Any]] = []
        if previous_response_id:
            turns = await asyncio.to_thread(self._repo.thread, project_id, previous_response_id)
            if turns is None:
                raise InvalidRequest(
                    f"Previous response with id '{previous_response_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            for turn in turns:
                history.extend(turn.input_items)
                history.extend(turn.output_items)
        if conversation_id is not None:
            assert self._conversations is not None
            history = await asyncio.to_thread(
                self._conversations.items, project_id, conversation_id, "conversation"
            )
        return history

    async def count_input_tokens(self, project_id: str, req: CreateResponse) -> int:
        """The tokens `req` would give the model, counted as a create would build them."""
        return (await self.prepare(project_id, req)).context.input_tokens

    async def compact(self, project_id: str, req: CompactResponse) -> dict[str, Any]:
        """The thread (previous_response_id and input) as its user messages and one compaction
        item holding the model's summary of the rest."""
        entry = await asyncio.to_thread(self._registry.resolve, req.model, project_id)
        backend = self._registry.backend_for(entry)
        backend.check_capacity()
        history = await self._history(project_id, req.previous_response_id, None)
        items = [
            *history,
            *normalize_input(await self._resolve_references(project_id, req.input)),
        ]
        if not items:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input")
        summary, finished = await summarize(backend, items, req.instructions, CancelToken())
        return {
            "id": ids.response_id(),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [*compaction.kept_messages(items), compaction.item(summary)],
            "usage": usage_of(finished, [0, 0, 0]).model_dump(mode="json"),
        }

    async def _resolve_references(
        self, project_id: str, raw: str | list[dict[str, Any]] | None
    ) -> str | list[dict[str, Any]] | None:
        """`item_reference` items replaced by the stored items they name (this project's)."""
        if not isinstance(raw, list) or not any(
            item.get("type") == "item_reference" for item in raw
        ):
            return raw
        resolved = []
        for i, item in enumerate(raw):
            if item.get("type") != "item_reference":
                resolved.append(item)
                continue
            item_id = item.get("id")
            if not isinstance(item_id, str) or not item_id:
                raise InvalidRequest(
                    f"Missing required parameter: 'input[{i}].id'.", param=f"input[{i}].id"
                )
            refuse_unknown(item, {"type", "id"}, f"input[{i}]")
            found = await asyncio.to_thread(self._repo.find_item, project_id, item_id)
            if found is None:
                raise InvalidRequest(
                    f"Item with id '{item_id}' not found.", param=f"input[{i}]", code="not_found"
                )
            resolved.append(found)
        return resolved

    def _check_unsupported(self, req: CreateResponse) -> None:
        check_includes(req.include)
        if req.conversation is not None and req.previous_response_id:
            raise InvalidRequest(
                "Use either conversation or previous_response_id, not both.",
                param="conversation",
            )
        if req.prompt is not None:
            raise InvalidRequest("Prompt templates are not supported.", param="prompt")
        for name in ("moderation", "image", "access_programs"):
            if getattr(req, name):
                raise InvalidRequest(f"'{name}' is not supported by this server.", param=name)
        if req.background and not req.store:
            raise InvalidRequest(
                "Background responses must be stored (store=true).", param="background"
            )

    def _new_response(self, req: CreateResponse, entry: ModelEntry, tools: ToolSetup) -> Response:
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
                "tool_choice": _echo_choice(req.tool_choice),
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
                "reasoning": {"effort": None, "summary": None},
                "service_tier": "default",
                "top_logprobs": req.top_logprobs or 0,
                # No "usage" until the end: optional and never null in OpenAI's schema.
                "error": None,
                "incomplete_details": None,
            }
        )

    def _chat_request(self, p: Prepared) -> ChatRequest:
        r = p.response
        fmt = r.text.format if r.text else None
        response_format: dict[str, Any] | None = None
        if fmt is not None and fmt.type == "json_schema":
            response_format = {"type": "json_schema", "name": fmt.name, "schema": fmt.schema_}
        elif fmt is not None and fmt.type == "json_object":
            response_format = {"type": "json_object"}
        return ChatRequest(
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

    async def _run(
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
        request = self._chat_request(p)
        spent = [0, 0, 0]  # input, output, cached tokens of turns before the answer
        if p.compaction is not None and p.compaction_cost is not None:
            for event in emitter.whole_item(p.compaction):
                yield event
            spent = plus(spent, p.compaction_cost)
        run = ToolRun(
            emitter,
            p.project_id,
            list(p.request.include or []),
            cancel,
            self._tool_deps(),
            # The user's own words, without the automatic descriptions of their images.
            question=last_user_words(p.new_items),
            constrained=not p.entry.config.native_tools,
            history=p.history,
            new_items=p.new_items,
        )
        loop = AgentLoop(
            p.backend,
            request,
            p.tools,
            run,
            native=p.entry.config.native_tools,
            max_tool_calls=p.request.max_tool_calls,
            max_turns=self._settings.max_model_turns,
            client_call_events=lambda call: self._call_events(emitter, p, call),
        )
        try:
            async for step in loop.events():
                yield step
        except KotaeError as exc:
            if not background and not p.request.stream:
                raise
            if emitter.message_open:  # the text so far stays, marked unfinished
                for event in emitter.finish_message("incomplete"):
                    yield event
            yield emitter.failed(exc.message)
            await self._persist(p, emitter.response, background)
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
                await self._persist(p, emitter.response, background)
            return
        terminal = (
            emitter.incomplete(usage, "max_output_tokens")
            if truncated
            else emitter.completed(usage)
        )
        # Stored before the client hears "completed", so an immediate follow-up that names
        # this response as previous_response_id finds it.
        await self._persist(p, emitter.response, background)
        yield terminal

    def _tool_deps(self) -> ToolDeps:
        return ToolDeps(self._settings, self._vector_stores, self._web, self._fetcher, self._images)

    @staticmethod
    def _call_events(
        emitter: ResponseEmitter, p: Prepared, call: ToolCall
    ) -> Sequence[StreamEvent]:
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

    async def _persist(self, p: Prepared, response: Response, background: bool) -> None:
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

    async def create(self, p: Prepared, cancel: CancelToken | None = None) -> Response:
        """A plain (non-streamed) response: the event stream, drained. `cancel` is set when
        the client goes away: the work stops and nothing is stored."""
        final = p.response
        async for event in self._run(p, cancel or CancelToken(), background=False):
            if isinstance(event, TERMINAL_EVENTS):
                final = event.response
        return final

    def stream(self, p: Prepared) -> AsyncIterator[StreamEvent]:
        events = self._run(p, CancelToken(), background=False)
        return self._checkpointed(p, events) if p.request.store else events

    async def _save_running(self, p: Prepared, *, request: str | None = None) -> None:
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
                owner=None if request else self.owner,
                lease_seconds=self._settings.lease_seconds,
                request=request,
            )
        )
        p.saved = True

    async def _checkpointed(
        self, p: Prepared, events: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[StreamEvent]:
        """A stored response's row kept current while it runs: saved at its first event, then
        written at each item's end and at least every CHECKPOINT_SECONDS."""
        last = time.monotonic()
        async for event in events:
            if not p.saved:
                await self._save_running(p)
            elif not isinstance(event, TERMINAL_EVENTS) and p.emitter is not None:
                now = time.monotonic()
                if event.type in CHECKPOINT_EVENTS or now - last >= CHECKPOINT_SECONDS:
                    last = now
                    body = p.emitter.partial().model_dump(
                        mode="json", exclude_unset=True, by_alias=True
                    )
                    await asyncio.to_thread(self._repo.update_body, p.project_id, body)
            yield event

    async def enqueue(self, p: Prepared) -> None:
        """A background response for a worker (this replica runs `--no-worker`): its row,
        queued with its request, which a worker takes (`serve_queue`). The limit on waiting
        ones holds across replicas: it is counted in the database."""
        waiting = await asyncio.to_thread(self._repo.waiting)
        if waiting >= self._settings.max_waiting_responses:
            raise queue_full("The background response queue", waiting)
        request = p.request.model_dump_json(exclude_unset=True, by_alias=True)
        await self._save_running(p, request=request)

    async def serve_queue(self) -> None:
        """Forever: take background responses that API replicas queued, while this process
        has room for them (`worker_responses`), and run them as if they were made here."""
        while True:
            taken = None
            try:
                running = sum(1 for run in self._background.values() if not run.done)
                if running < self._settings.worker_responses:
                    taken = await asyncio.to_thread(
                        self._repo.claim, self.owner, self._settings.lease_seconds
                    )
                if taken is not None:
                    await self._start_taken(*taken)
            except Exception:
                log.exception("taking a queued background response failed")
            if taken is None:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def _start_taken(self, project_id: str, response_id: str, request: str) -> None:
        stored = await asyncio.to_thread(self._repo.get, project_id, response_id)
        if stored is None:  # deleted (or expired) meanwhile
            return
        try:
            p = await self.prepare(project_id, CreateResponse.model_validate_json(request))
        except RateLimited:  # no room in this process's engine now: back in the queue
            await asyncio.to_thread(self._repo.unclaim, response_id, self.owner, request)
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
            return
        except Exception as exc:  # what changed since it was queued (a deleted thread...)
            message = exc.message if isinstance(exc, KotaeError) else "The server failed."
            if not isinstance(exc, KotaeError):
                log.exception("preparing queued response %s failed", response_id)
            body = {**stored, "status": "failed"}
            body["error"] = {"code": "server_error", "message": message}
            await asyncio.to_thread(self._repo.fail, project_id, response_id, body)
            return
        # The same response the replica answered with: its id, time and input items (the
        # ones stored, with their ids, which a conversation appends).
        p.response.id, p.response.created_at = response_id, stored["created_at"]
        page = await asyncio.to_thread(
            lambda: self._repo.list_input_items(
                project_id, response_id, limit=10**6, order="asc", after=None, before=None
            )
        )
        if page is not None:
            p.new_items = page.items
        p.saved = True
        await self.start_background(p)

    async def start_background(self, p: Prepared) -> BackgroundRun:
        if not p.saved:
            await self._save_running(p)
        reserve = getattr(p.backend, "reserve", None)
        release = reserve() if reserve is not None else None
        run = BackgroundRun(cancel=CancelToken())
        self._background[p.response.id] = run

        async def drive() -> None:
            try:
                events = self._checkpointed(p, self._run(p, run.cancel, background=True))
                async for event in events:
                    # Stored before anyone sees it: a stream resumed after a restart gets the
                    # same numbers, and never misses the end.
                    data = event.model_dump_json(exclude_unset=True, by_alias=True)
                    await asyncio.to_thread(
                        self._repo.add_event, p.response.id, event.sequence_number, event.type, data
                    )
                    run.events.append(event)
                    run.changed.set()
            except Exception as exc:  # a crash must not leave it "in progress" forever
                p.response.status = "failed"
                await self._persist(p, p.response, True)
                raise exc
            finally:
                if release is not None:
                    release()
                run.done = True
                run.changed.set()
                # Followers replay from the store once the run is over.
                asyncio.get_running_loop().call_later(60, self._background.pop, p.response.id, None)

        run.task = asyncio.create_task(drive())
        return run

    async def follow(
        self, run: BackgroundRun, starting_after: int | None
    ) -> AsyncIterator[StreamEvent]:
        index = 0
        while True:
            while index < len(run.events):
                event = run.events[index]
                index += 1
                if starting_after is None or event.sequence_number > starting_after:
                    yield event
            if run.done:
                return
            run.changed.clear()
            if index < len(run.events):
                continue
            await run.changed.wait()

    # -- retrieve, delete, cancel, input items --------------------------------------------------

    async def retrieve(self, project_id: str, response_id: str) -> Response:
        body = await asyncio.to_thread(self._repo.get, project_id, response_id)
        if body is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return Response.model_validate(upgrade_body(body))

    def live(self, response_id: str) -> BackgroundRun | None:
        return self._background.get(response_id)

    async def replay(
        self, project_id: str, response_id: str, starting_after: int | None
    ) -> AsyncIterator[Any]:
        """The events of a stored response. A background one's come from the store with the
        numbers they were sent with, then live while it runs here (or from the store, polled,
        while another process runs it or until a lapsed lease ends it); others are rebuilt."""
        response = await self.retrieve(project_id, response_id)
        if response.background:
            last = -1 if starting_after is None else starting_after
            while True:
                for stored in await asyncio.to_thread(self._repo.events, response_id, last):
                    last = stored.sequence_number
                    yield stored
                run = self._background.get(response_id)
                if run is not None:
                    async for event in self.follow(run, last):
                        yield event
                    return
                status = await asyncio.to_thread(self._repo.status, project_id, response_id)
                if status not in ("queued", "in_progress"):
                    for stored in await asyncio.to_thread(self._repo.events, response_id, last):
                        yield stored
                    return
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        for event in replay_events(response):
            if starting_after is None or event.sequence_number > starting_after:
                yield event

    async def delete(self, project_id: str, response_id: str) -> None:
        run = self._background.get(response_id)
        if run is not None and not run.done:
            run.cancel.cancel()
        if not await asyncio.to_thread(self._repo.delete, project_id, response_id):
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")

    async def cancel(self, project_id: str, response_id: str) -> Response:
        response = await self.retrieve(project_id, response_id)
        if not response.background:
            raise InvalidRequest(
                "Only responses created with background=true can be cancelled.",
                param="response_id",
            )
        run = self._background.get(response_id)
        if response.status in ("queued", "in_progress") and run is not None:
            run.cancel.cancel()
            if run.task is not None:
                await asyncio.wait({run.task}, timeout=30)
            return await self.retrieve(project_id, response_id)
        if response.status == "queued" and await asyncio.to_thread(
            self._repo.cancel_waiting, project_id, response_id
        ):  # no worker had taken it yet
            return await self.retrieve(project_id, response_id)
        if response.status in ("queued", "in_progress"):
            # Another process runs it: flag it for that one, and wait for it to stop.
            await asyncio.to_thread(self._repo.request_cancel, project_id, response_id)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status = await asyncio.to_thread(self._repo.status, project_id, response_id)
                if status not in ("queued", "in_progress"):
                    break
                await asyncio.sleep(FOLLOW_POLL_SECONDS / 5)
            return await self.retrieve(project_id, response_id)
        if response.status == "cancelled":
            return response
        raise InvalidRequest(
            f"Cannot cancel a response with status '{response.status}'.", param="response_id"
        )

    async def list_stored(
        self, project_id: str, *, limit: int, order: str, after: str | None, before: str | None
    ) -> tuple[list[Response], bool]:
        """A project's stored responses and whether more follow (kotae's own list: OpenAI
        shows them only in its dashboard; kotae's console reads them here)."""
        found = await asyncio.to_thread(
            lambda: self._repo.list_responses(
                project_id, limit=limit, order=order, after=after, before=before
            )
        )
        return [Response.model_validate(upgrade_body(b)) for b in found.items], found.has_more

    async def input_items(
        self,
        project_id: str,
        response_id: str,
        *,
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
    ) -> ItemPage:
        page = await asyncio.to_thread(
            lambda: self._repo.list_input_items(
                project_id, response_id, limit=limit, order=order, after=after, before=before
            )
        )
        if page is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return page

    async def keep_leases(self) -> None:
        """Forever: renew the leases of what this process runs, and fail what a dead one left
        running (its lease lapsed). The first sweep runs at once. Between sweeps, while
        background responses run here, a cancel asked on another replica is looked for every
        half second."""
        every = max(0.2, self._settings.lease_seconds / 3)
        next_sweep = 0.0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + every
                    await asyncio.to_thread(
                        self._repo.renew, self.owner, self._settings.lease_seconds
                    )
                    failed = await asyncio.to_thread(self._repo.fail_lapsed, RESTARTED)
                    if failed:
                        log.warning("%d responses were cut off by a stopped server: failed", failed)
                if any(not run.done for run in self._background.values()):
                    asked = await asyncio.to_thread(self._repo.cancel_requests, self.owner)
                    for response_id in asked:
                        run = self._background.get(response_id)
                        if run is not None and not run.done:
                            run.cancel.cancel()  # cancelled on another replica
            except Exception:
                log.exception("renewing response leases failed")
            await asyncio.sleep(min(every, FOLLOW_POLL_SECONDS))

    async def shutdown(self) -> None:
        for run in list(self._background.values()):
            run.cancel.cancel()
        tasks = [r.task for r in self._background.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=30)


def replay_events(response: Response) -> list[StreamEvent]:
    """A finished response told again as events, through the same emitter."""
    body = response.model_dump(mode="json", exclude_unset=True, by_alias=True)
    body.pop("usage", None)  # absent until the end, as in the live stream
    start = Response.model_validate(
        {**body, "output": [], "status": "in_progress", "incomplete_details": None, "error": None}
    )
    kept = any(
        getattr(part, "logprobs", None)
        for item in response.output
        if item.type == "message"
        for part in item.content
    )
    emitter = ResponseEmitter(start, keep_logprobs=kept)
    events: list[StreamEvent] = [emitter.created(), emitter.in_progress()]
    for item in response.output:
        if item.type == "web_search_call":
            events.extend(
                emitter.start_web_search(getattr(item.action, "query", None) or "", item.id)
            )
            sources = getattr(item.action, "sources", None)
            events.extend(
                emitter.finish_web_search([s.url for s in sources] if sources is not None else None)
            )
            emitter.response.output[-1] = item
            continue
        if item.type == "file_search_call":
            events.extend(emitter.start_file_search(list(item.queries), item.id))
            events.extend(
                emitter.finish_file_search(
                    [r.model_dump() for r in item.results] if item.results is not None else None
                )
            )
            emitter.response.output[-1] = item
            continue
        if item.type == "function_call":
            events.extend(
                emitter.function_call(
                    item.call_id, item.name, item.arguments, item.id, item.namespace
                )
            )
            continue
        if item.type == "custom_tool_call":
            events.extend(emitter.custom_tool_call(item.call_id, item.name, item.input, item.id))
            continue
        if item.type in ("shell_call", "local_shell_call", "apply_patch_call"):
            events.extend(emitter.whole_item(item))
            continue
        if item.type != "message":
            continue
        events.extend(emitter.start_message(item.id))
        text = "".join(getattr(part, "text", "") for part in item.content)
        tokens = [
            TokenLogprob(
                t.token, t.bytes, t.logprob, [(a.token, a.bytes, a.logprob) for a in t.top_logprobs]
            )
            for part in item.content
            for t in getattr(part, "logprobs", None) or []
        ]
        if text:
            events.append(emitter.text_delta(text, tokens or None))
        events.extend(
            emitter.finish_message("incomplete" if item.status == "incomplete" else "completed")
        )
    usage = response.usage or ResponseUsage.model_validate(
        {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 0,
        }
    )
    if response.status == "incomplete":
        events.append(emitter.incomplete(usage, "max_output_tokens"))
    elif response.status == "failed":
        events.append(emitter.failed(response.error.message if response.error else "failed"))
    elif response.status == "completed":
        events.append(emitter.completed(usage))
    return events


def upgrade_body(body: dict[str, Any]) -> dict[str, Any]:
    """A stored body as this version reads it. Before 0.1.1 a json_schema format was stored
    under the Python name `schema_` instead of the wire name `schema`."""
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict) and "schema_" in fmt:
        fmt["schema"] = fmt.pop("schema_")
    return body


def _echo_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any]:
    # The SDK's response types know web search choices only by their preview names.
    if isinstance(choice, dict) and choice.get("type") in ("web_search", "web_search_2025_08_26"):
        return {"type": "web_search_preview"}
    return choice or "auto"


def agent_call_item(kind: str, call_id: str, args: dict[str, Any]) -> Any:
    """The item a coding agent expects for its own tools."""
    from openai.types.responses import ResponseApplyPatchToolCall, ResponseFunctionShellToolCall
    from openai.types.responses.response_output_item import LocalShellCall

    if kind == "shell":
        return ResponseFunctionShellToolCall.model_validate(
            {
                "id": ids.new_id("sh"),
                "type": "shell_call",
                "call_id": call_id,
                "status": "completed",
                "action": {
                    "commands": list(args.get("commands") or []),
                    "timeout_ms": None,
                    "max_output_length": None,
                },
            }
        )
    if kind == "local_shell":
        return LocalShellCall.model_validate(
            {
                "id": ids.new_id("lsh"),
                "type": "local_shell_call",
                "call_id": call_id,
                "status": "completed",
                "action": {
                    "type": "exec",
                    "command": list(args.get("command") or []),
                    "env": {},
                    "working_directory": args.get("working_directory"),
                },
            }
        )
    operation: dict[str, Any] = {
        "type": args.get("type") or "create_file",
        "path": str(args.get("path") or ""),
    }
    if operation["type"] != "delete_file":
        operation["diff"] = str(args.get("diff") or "")
    return ResponseApplyPatchToolCall.model_validate(
        {
            "id": ids.new_id("apc"),
            "type": "apply_patch_call",
            "call_id": call_id,
            "status": "completed",
            "operation": operation,
        }
    )


def _conversation_id(conversation: str | dict[str, Any] | None) -> str | None:
    if conversation is None:
        return None
    if isinstance(conversation, str):
        return ids.expect_prefix(conversation, "conv_", "conversation")
    value = conversation.get("id")
    if not isinstance(value, str):
        raise InvalidRequest("conversation needs an id.", param="conversation.id")
    return ids.expect_prefix(value, "conv_", "conversation.id")


def _check_approvals(thread: list[dict[str, Any]], new_items: list[dict[str, Any]]) -> None:
    """Each mcp_approval_response answers an approval request of this thread (another
    project's, or another thread's, is not found here)."""
    asked = {item.get("id") for item in thread if item.get("type") == "mcp_approval_request"}
    for i, item in enumerate(new_items):
        if item.get("type") == "mcp_approval_response" and item["approval_request_id"] not in asked:
            raise InvalidRequest(
                f"No approval request with id '{item['approval_request_id']}' in this "
                "conversation.",
                param=f"input[{i}].approval_request_id",
                code="not_found",
            )
