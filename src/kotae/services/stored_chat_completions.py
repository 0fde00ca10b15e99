"""Chat completions made with `store: true`: kept per project, listed (by model and metadata),
read back with their request's messages, their metadata updated, deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
from openai.types.chat import ChatCompletionChunk
from sqlalchemy import Engine, Table, delete, select, update

from kotae.errors import NotFound
from kotae.schemas.chat_completions import ChatMessageIn, CreateChatCompletion
from kotae.storage.orm import StoredChatCompletion
from kotae.storage.repositories.paging import cursor_page

TABLE = cast(Table, StoredChatCompletion.__table__)


class StoredChatCompletions:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, project_id: str, req: CreateChatCompletion, body: dict[str, Any]) -> None:
        metadata = dict(req.metadata or {})
        body = {**body, "metadata": metadata}
        messages = [_message(body["id"], i, m) for i, m in enumerate(req.messages)]
        with self._engine.begin() as conn:
            conn.execute(
                TABLE.insert(),
                {
                    "id": body["id"],
                    "project_id": project_id,
                    "created_at": body["created"],
                    "model": body["model"],
                    "metadata": metadata,
                    "body": body,
                    "messages": messages,
                },
            )

    async def keep_stream(
        self,
        project_id: str,
        req: CreateChatCompletion,
        chunks: AsyncIterator[ChatCompletionChunk],
    ) -> AsyncIterator[ChatCompletionChunk]:
        """The stream as it goes, stored once it has ended (a stream cut short is not)."""
        seen: list[ChatCompletionChunk] = []
        async for chunk in chunks:
            seen.append(chunk)
            yield chunk
        if seen:
            await anyio.to_thread.run_sync(self.save, project_id, req, assembled(seen))

    def _row(self, project_id: str, completion_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(TABLE).where(TABLE.c.id == completion_id, TABLE.c.project_id == project_id)
            ).first()
        if row is None:
            raise NotFound(
                f"Chat completion with id '{completion_id}' not found.", param="completion_id"
            )
        return dict(row._mapping)

    def retrieve(self, project_id: str, completion_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._row(project_id, completion_id)["body"]
        return body

    def page(
        self,
        project_id: str,
        *,
        model: str | None,
        metadata: dict[str, str],
        limit: int,
        order: str,
        after: str | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        query = select(TABLE.c.body, TABLE.c.metadata).where(TABLE.c.project_id == project_id)
        if model:
            query = query.where(TABLE.c.model == model)
        query = query.order_by(TABLE.c.pk.desc() if order == "desc" else TABLE.c.pk)
        with self._engine.connect() as conn:
            rows = [
                r.body
                for r in conn.execute(query)
                if all(r.metadata.get(k) == v for k, v in metadata.items())
            ]
        return cursor_page(rows, "id", limit, after, None)

    def messages(
        self, project_id: str, completion_id: str, *, limit: int, order: str, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        rows: list[dict[str, Any]] = [*self._row(project_id, completion_id)["messages"]]
        if order == "desc":
            rows.reverse()
        return cursor_page(rows, "id", limit, after, None)

    def update(self, project_id: str, completion_id: str, metadata: dict[str, str]) -> Any:
        body = {**self.retrieve(project_id, completion_id), "metadata": metadata}
        with self._engine.begin() as conn:
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id == completion_id, TABLE.c.project_id == project_id)
                .values(metadata=metadata, body=body)
            )
        return body

    def delete(self, project_id: str, completion_id: str) -> None:
        self._row(project_id, completion_id)
        with self._engine.begin() as conn:
            conn.execute(
                delete(TABLE).where(TABLE.c.id == completion_id, TABLE.c.project_id == project_id)
            )


def _message(completion_id: str, index: int, m: ChatMessageIn) -> dict[str, Any]:
    """A request message as OpenAI lists it: its text as `content`, and its parts (text and
    image_url) as `content_parts` when it was sent as parts."""
    parts = None
    content = m.get("content")
    text = content if isinstance(content, str) else None
    if isinstance(content, list):
        parts = [p for p in content if p.get("type") in ("text", "image_url")]
        text = "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")
    shown: dict[str, Any] = {
        "id": f"{completion_id}-{index}",
        "role": m["role"],
        "content": text,
        "refusal": m.get("refusal"),
        "name": m.get("name"),
        "content_parts": parts,
    }
    if m.get("tool_calls"):
        shown["tool_calls"] = m.get("tool_calls")
    if m.get("tool_call_id"):
        shown["tool_call_id"] = m.get("tool_call_id")
    return shown


def assembled(chunks: list[ChatCompletionChunk]) -> dict[str, Any]:
    """The chat.completion a stream of chunks adds up to."""
    first = chunks[0]
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.usage or usage
        for c in chunk.choices:
            choice = choices.setdefault(
                c.index,
                {
                    "index": c.index,
                    "message": {"role": "assistant", "content": "", "refusal": None},
                    "finish_reason": None,
                    "logprobs": None,
                },
            )
            message = choice["message"]
            message["content"] += c.delta.content or ""
            for call in c.delta.tool_calls or []:
                calls = message.setdefault("tool_calls", [])
                calls.append(call.model_dump(exclude={"index"}, exclude_none=True))
            if c.finish_reason:
                choice["finish_reason"] = c.finish_reason
            if c.logprobs is not None:
                scored = choice["logprobs"] or {"content": [], "refusal": None}
                scored["content"] += [t.model_dump() for t in c.logprobs.content or []]
                choice["logprobs"] = scored
    for choice in choices.values():
        if choice["message"].get("tool_calls") and not choice["message"]["content"]:
            choice["message"]["content"] = None
    return {
        "id": first.id,
        "object": "chat.completion",
        "created": first.created,
        "model": first.model,
        "choices": [choices[i] for i in sorted(choices)],
        "usage": usage.model_dump() if usage else None,
    }
