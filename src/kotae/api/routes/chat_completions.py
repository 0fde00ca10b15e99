"""/v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, MeteredProjectDep
from kotae.api.disconnect import cancel_on_disconnect
from kotae.api.sse import sse_response
from kotae.providers.inference.base import CancelToken
from kotae.schemas.chat_completions import CreateChatCompletion

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
        events = service.stream(backend, chat, model, admission, include_usage)
        return sse_response(events, done_marker=True)
    cancel = CancelToken()
    result = await cancel_on_disconnect(
        request, cancel, service.create(backend, chat, model, admission, cancel)
    )
    return JSONResponse(result.model_dump(mode="json", exclude_unset=True, by_alias=True))
