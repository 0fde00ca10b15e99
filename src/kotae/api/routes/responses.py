"""/v1/responses: create, list (kotae's own), retrieve (optionally streamed), delete, cancel,
input_items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, MeteredProjectDep, ProjectDep
from kotae.api.disconnect import cancel_on_disconnect, stop_on_disconnect
from kotae.api.pagination import Order, check_limit, page
from kotae.api.params import Includes, Limit, ResponseId
from kotae.api.sse import sse_response
from kotae.api.wire import wire
from kotae.providers.inference.base import CancelToken
from kotae.schemas.responses import CompactResponse, CountInputTokens, CreateResponse

router = APIRouter(route_class=BoundedRoute, prefix="/v1/responses", tags=["responses"])


def _json(model: Any) -> Response:
    return Response(
        model.model_dump_json(exclude_unset=True, by_alias=True), media_type="application/json"
    )


@router.post("")
async def create_response(
    req: CreateResponse, request: Request, container: ContainerDep, project: MeteredProjectDep
) -> Response:
    service = container.responses
    preparing = service.prepare(project, req)
    # A background request is accepted even if its client leaves; others stop preparing.
    prepared = await (preparing if req.background else stop_on_disconnect(request, preparing))
    if req.background and not container.settings.run_worker and not prepared.tools.holds_secrets:
        # A worker runs it from the stored request. One whose tools carry credentials runs
        # here instead: they are held in this process's memory, never stored for a worker.
        await service.enqueue(prepared)  # a worker runs it; followed from the store
        if req.stream:
            return sse_response(service.replay(project, prepared.response.id, None))
        return _json(prepared.response)
    if req.background:
        run = await service.start_background(prepared)
        if req.stream:
            return sse_response(service.follow(run, None))
        return _json(prepared.response)
    if req.stream:
        return sse_response(service.stream(prepared))
    cancel = CancelToken()
    return _json(await cancel_on_disconnect(request, cancel, service.create(prepared, cancel)))


@router.post("/compact")
async def compact_response(
    req: CompactResponse, container: ContainerDep, project: MeteredProjectDep
) -> JSONResponse:
    return JSONResponse(await container.responses.compact(project, req))


@router.post("/input_tokens")
async def count_input_tokens(
    req: CountInputTokens, container: ContainerDep, project: ProjectDep
) -> JSONResponse:
    count = await container.responses.count_input_tokens(project, req.as_create())
    return JSONResponse({"object": "response.input_tokens", "input_tokens": count})


@router.get("")
async def list_responses(
    container: ContainerDep,
    project: ProjectDep,
    limit: Limit = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> JSONResponse:
    """kotae's own: the project's stored responses, newest first (OpenAI has no such route;
    the console's log reads it)."""
    found, more = await container.responses.list_stored(
        project, limit=check_limit(limit), order=order, after=after, before=before
    )
    return JSONResponse(page([wire(r) for r in found], more))


@router.get("/{response_id}")
async def retrieve_response(
    response_id: ResponseId,
    container: ContainerDep,
    project: ProjectDep,
    _include: Includes,
    stream: bool = False,
    starting_after: int | None = None,
) -> Response:
    if stream:
        # Checked before the stream starts, so a missing id is a 404, not an SSE error.
        await container.responses.retrieve(project, response_id)
        return sse_response(container.responses.replay(project, response_id, starting_after))
    return _json(await container.responses.retrieve(project, response_id))


@router.delete("/{response_id}")
async def delete_response(
    response_id: ResponseId, container: ContainerDep, project: ProjectDep
) -> JSONResponse:
    await container.responses.delete(project, response_id)
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


@router.post("/{response_id}/cancel")
async def cancel_response(
    response_id: ResponseId, container: ContainerDep, project: ProjectDep
) -> Response:
    return _json(await container.responses.cancel(project, response_id))


@router.get("/{response_id}/input_items")
async def list_input_items(
    response_id: ResponseId,
    container: ContainerDep,
    project: ProjectDep,
    _include: Includes,
    limit: Limit = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> JSONResponse:
    result = await container.responses.input_items(
        project, response_id, limit=check_limit(limit), order=order, after=after, before=before
    )
    return JSONResponse(page(result.items, result.has_more))
