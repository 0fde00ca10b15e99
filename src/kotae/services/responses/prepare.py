"""A create request made ready to run (`Prepared`), or refused before any event is sent.

`Preparer.prepare` is one pipeline, read top to bottom: check the request, resolve the model
and the thread, normalize the input, check approvals and tools, compact, fit the context, and
make the response's shell."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import Response, ResponseCompactionItem
from openai.types.responses.response import Conversation as ResponseConversation

from kotae import ids
from kotae.config import Settings
from kotae.errors import InvalidRequest, refuse_unknown
from kotae.ops.metrics import Metrics
from kotae.providers.inference.base import (
    Admission,
    CancelToken,
    ChatBackend,
    Finished,
    admit,
)
from kotae.schemas.responses import CreateResponse, check_includes
from kotae.services.conversations import ConversationsService
from kotae.services.models import ModelEntry, ModelRegistry
from kotae.services.prompts import PromptsService, Rendered
from kotae.services.responses import compaction
from kotae.services.responses.builtin import ToolDeps
from kotae.services.responses.builtin.image_generation import ImageGeneration
from kotae.services.responses.context import (
    BIG_THREAD,
    PromptContext,
    build_context,
    refuse_many_messages,
)
from kotae.services.responses.convert import normalize_input, to_chat_messages
from kotae.services.responses.events import ResponseEmitter
from kotae.services.responses.media import Media, MediaResolver, has_media
from kotae.services.responses.reasoning import check_reasoning
from kotae.services.responses.sealing import Sealer
from kotae.services.responses.shell import new_response
from kotae.services.responses.summary import summarize
from kotae.services.responses.tools import ToolSetup, read_tools
from kotae.storage.repositories.responses import ResponseRepository

Items = list[dict[str, Any]]
log = logging.getLogger("kotae.responses")


@dataclass
class Prepared:
    project_id: str
    request: CreateResponse
    tools: ToolSetup
    entry: ModelEntry
    backend: ChatBackend
    context: PromptContext
    new_items: Items
    response: Response
    history: Items = field(default_factory=list)
    media: dict[tuple[str, int], Media] = field(default_factory=dict)
    emitter: ResponseEmitter | None = None  # set once it runs
    compaction: Any = None  # the compaction item made before the answer (context_management)
    compaction_cost: Finished | None = None
    saved: bool = False  # its row exists already (stored while it runs)
    # Its place in the engine's queue, from acceptance to the run's end (run.py releases it).
    admission: Admission = field(default_factory=Admission)


class Preparer:
    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        repo: ResponseRepository,
        tool_deps: ToolDeps,
        conversations: ConversationsService | None,
        media: MediaResolver | None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._settings = settings
        self._registry = registry
        self._repo = repo
        self._tool_deps = tool_deps
        self._conversations = conversations
        self._media = media
        self.prompts: PromptsService | None = None  # reusable prompts (`prompt` on a create)
        self.sealer: Sealer | None = None  # opens reasoning sent back encrypted

    async def prepare(self, project_id: str, req: CreateResponse) -> Prepared:
        """Everything that can reject a request, before any event is sent. The request holds
        a place in its engine's queue from here; a refusal gives it back."""
        check_request(req)
        tools = await read_tools(req.tools, req.tool_choice)
        template = None
        if req.prompt is not None:
            if self.prompts is None:
                raise InvalidRequest("Prompt templates are not set up here.", param="prompt")
            template = await asyncio.to_thread(
                self.prompts.render, project_id, req.prompt.model_dump(exclude_none=True)
            )
        model = req.model or (template.model if template is not None else None)
        if not model:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model")
        entry, backend, admission = await self.model(model, project_id)
        try:
            check_reasoning(req, entry.config, model)
        except InvalidRequest:
            admission.release()
            raise
        prepared = await admission.hold(
            self._prepare(project_id, req, tools, entry, backend, template)
        )
        prepared.admission = admission
        return prepared

    async def _prepare(
        self,
        project_id: str,
        req: CreateResponse,
        tools: ToolSetup,
        entry: ModelEntry,
        backend: ChatBackend,
        template: Rendered | None = None,
    ) -> Prepared:
        conversation_id = conversation_id_of(req.conversation)
        if req.truncation != "auto" and req.context_management is None:
            refuse_many_messages(req.input, backend.context_window)
        history = await self.thread(project_id, req.previous_response_id, conversation_id)
        given = await self.resolve_references(project_id, req.input)
        if isinstance(given, list) and len(given) > BIG_THREAD:
            new_items = await asyncio.to_thread(normalize_input, given)  # not on the loop
        else:
            new_items = normalize_input(given)
        self._open_sealed(project_id, new_items)
        instructions = req.instructions
        if template is not None:
            # The prompt's messages come first, then the request's own input.
            new_items = [*normalize_input(template.messages), *new_items]
            instructions = "\n\n".join(i for i in (template.instructions, instructions) if i)
            instructions = instructions or None
        if not new_items and not history:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input")
        check_approvals([*history, *new_items], new_items)
        for tool, why in tools.drop_unavailable(self._tool_deps):
            log.warning("%s offered but not set up: left off the menu (%s)", tool.kind, why)
            if self._metrics is not None:
                self._metrics.tools_unavailable.labels(tool.kind).inc()
        for tool in tools.builtins:
            await tool.check(
                project_id, f"tools[{tool.index}]", self._tool_deps, [*history, *new_items]
            )
        history, compacted = await self._compact_if_over(
            req, backend, history, new_items, instructions
        )
        media = None
        if self._media is not None and has_media(history + new_items):
            media = await self._media.resolve(
                project_id, history, new_items, vision=entry.config.sees_images
            )
        context = await build_context(
            backend,
            instructions=instructions,
            history=history,
            new_items=new_items,
            max_output_tokens=req.max_output_tokens or self._settings.max_output_tokens_default,
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
            new_response(req, entry, tools),
            history=history,
            media=media or {},
        )
        if compacted is not None:
            prepared.compaction, prepared.compaction_cost = compacted
        prepared.response.instructions = instructions
        _bind_image_tools(prepared)
        if conversation_id is not None:
            prepared.response.conversation = ResponseConversation(id=conversation_id)
        return prepared

    def _open_sealed(self, project_id: str, items: Items) -> None:
        """Reasoning items sent back with their `encrypted_content`: opened (this server's,
        this project's, unchanged, or a 400) so the model sees its earlier thinking."""
        for i, item in enumerate(items):
            blob = item.get("encrypted_content") if item.get("type") == "reasoning" else None
            if blob is None:
                continue
            opened = self.sealer.open(project_id, blob) if self.sealer is not None else None
            if opened is None:
                raise InvalidRequest(
                    f"Invalid 'input[{i}].encrypted_content': it was not sealed by this "
                    "server for this project, or it was changed.",
                    param=f"input[{i}].encrypted_content",
                    code="invalid_encrypted_content",
                )
            if not item.get("content"):
                item["content"] = [{"type": "reasoning_text", "text": opened}]

    async def model(self, name: str, project_id: str) -> tuple[ModelEntry, ChatBackend, Admission]:
        """The model a request names, its engine, and a place in that engine's queue (a 429
        when it is full). Resolved off the event loop: a fine-tuned adapter may download the
        first time."""
        entry = await asyncio.to_thread(self._registry.resolve, name, project_id)
        backend = self._registry.backend_for(entry)
        return entry, backend, admit(backend)

    async def thread(
        self, project_id: str, previous_response_id: str | None, conversation_id: str | None
    ) -> Items:
        """The items of the thread a request continues."""
        history: Items = []
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

    async def resolve_references(
        self, project_id: str, raw: str | Items | None
    ) -> str | Items | None:
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

    async def _compact_if_over(
        self,
        req: CreateResponse,
        backend: ChatBackend,
        history: Items,
        new_items: Items,
        instructions: str | None,
    ) -> tuple[Items, tuple[ResponseCompactionItem, Finished] | None]:
        """Over `context_management`'s threshold, the model summarizes the thread before it
        answers: the history becomes that summary, and its item leads this response's output."""
        threshold = compaction_threshold(req.context_management, backend.context_window)
        if threshold is None:
            return history, None
        count = await backend.count_tokens(to_chat_messages([*history, *new_items]))
        if count <= threshold:
            return history, None
        summary, spent = await summarize(
            backend, [*history, *new_items], instructions, CancelToken()
        )
        made = compaction.item(summary)
        return compaction.apply([*history, made]), (
            ResponseCompactionItem.model_validate(made),
            spent,
        )


def check_request(req: CreateResponse) -> None:
    """What this server refuses whatever the thread: unknown includes, unsupported options."""
    check_includes(req.include)
    if req.conversation is not None and req.previous_response_id:
        raise InvalidRequest(
            "Use either conversation or previous_response_id, not both.",
            param="conversation",
        )
    for name in ("moderation", "image", "access_programs"):
        if getattr(req, name):
            raise InvalidRequest(f"'{name}' is not supported by this server.", param=name)
    if req.background and not req.store:
        raise InvalidRequest(
            "Background responses must be stored (store=true).", param="background"
        )


def conversation_id_of(conversation: str | dict[str, Any] | None) -> str | None:
    if conversation is None:
        return None
    if isinstance(conversation, str):
        return ids.expect_prefix(conversation, "conv_", "conversation")
    value = conversation.get("id")
    if not isinstance(value, str):
        raise InvalidRequest("conversation needs an id.", param="conversation.id")
    return ids.expect_prefix(value, "conv_", "conversation.id")


def check_approvals(thread: Items, new_items: Items) -> None:
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


def compaction_threshold(entries: Items | None, window: int) -> int | None:
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


def _bind_image_tools(p: Prepared) -> None:
    """An image_generation tool edits the thread's newest picture: it must have one."""
    for tool in p.tools.builtins:
        if isinstance(tool, ImageGeneration):
            tool.picture = lambda: latest_picture(p)
            if tool.edits and latest_picture(p) is None:
                raise InvalidRequest(
                    "action 'edit' needs an image in the input or an earlier generated one.",
                    param="tools",
                )
