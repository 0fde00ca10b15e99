"""/v1/chat/completions."""

from __future__ import annotations

import re
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, MeteredProjectDep, ProjectDep
from kotae.api.disconnect import cancel_on_disconnect
from kotae.api.pagination import Order, check_limit, page
from kotae.api.params import CompletionId, Limit
from kotae.api.sse import sse_response
from kotae.providers.inference.base import CancelToken
from kotae.schemas.chat_completions import CreateChatCompletion
from kotae.schemas.common import WithMetadata

router = APIRouter(route_class=BoundedRoute, prefix="/v1/chat", tags=["chat"])


@router.post("/completions")
async def create_chat_completion(
    req: CreateChatCompletion,
    request: Request,
    container: ContainerDep,
    project_id: MeteredProjectDep,
) -> Response:
    service = container.chat_completions
    backend, chat, model, admission = await service.prepare(project_id, req)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = service.stream(backend, chat, model, admission, include_usage, req.n or 1)
        if req.store:
            events = container.stored_chat_completions.keep_stream(project_id, req, events)
        return sse_response(events, done_marker=True)
    cancel = CancelToken()
    result = await cancel_on_disconnect(
        request, cancel, service.create(backend, chat, model, admission, cancel, req.n or 1)
    )
    body = result.model_dump(mode="json", exclude_unset=True, by_alias=True)
    if req.store:
        await to_thread.run_sync(container.stored_chat_completions.save, project_id, req, body)
        body["metadata"] = req.metadata or {}
    return JSONResponse(body)


_METADATA_KEY = re.compile(r"^metadata\[(.+)\]$")


@router.get("/completions")
async def list_chat_completions(
    request: Request,
    c: ContainerDep,
    p: ProjectDep,
    model: str | None = None,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
) -> Any:
    """The project's stored chat completions (`store: true`), by model and metadata
    (`metadata[key]=value`, as the SDKs send it)."""
    metadata = {
        m.group(1): value
        for key, value in request.query_params.multi_items()
        if (m := _METADATA_KEY.match(key))
    }
    rows, more = await to_thread.run_sync(
        lambda: c.stored_chat_completions.page(
            p, model=model, metadata=metadata, limit=check_limit(limit), order=order, after=after
        )
    )
    return page(rows, more)


@router.get("/completions/{completion_id}")
async def retrieve_chat_completion(
    completion_id: CompletionId, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.stored_chat_completions.retrieve, p, completion_id)


class UpdateChatCompletion(WithMetadata):
    metadata: Annotated[dict[str, str], Field(max_length=16)]


@router.post("/completions/{completion_id}")
async def update_chat_completion(
    completion_id: CompletionId, req: UpdateChatCompletion, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(
        c.stored_chat_completions.update, p, completion_id, req.metadata
    )


@router.delete("/completions/{completion_id}")
async def delete_chat_completion(
    completion_id: CompletionId, c: ContainerDep, p: ProjectDep
) -> Any:
    await to_thread.run_sync(c.stored_chat_completions.delete, p, completion_id)
    return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}


@router.get("/completions/{completion_id}/messages")
async def list_chat_completion_messages(
    completion_id: CompletionId,
    c: ContainerDep,
    p: ProjectDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
) -> Any:
    rows, more = await to_thread.run_sync(
        lambda: c.stored_chat_completions.messages(
            p, completion_id, limit=check_limit(limit), order=order, after=after
        )
    )
    return page(rows, more)
